"""The readers of a file's own metadata, one module a job (engine.file_metadata, the reader, and
the modules it reads each container with): each imports on its own (no import cycle), the names
callers import from engine.file_metadata still come from there, and the notes the moved readers
make are logged where they always were."""
from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine.file_metadata as file_metadata
from engine.riff_metadata import riff_fields
from tests.conftest import tone
from tests.test_bad_inputs import pcm16, wav_bytes
from tests.test_file_metadata import ixml_chunk, with_trailing_chunk

ROOT = Path(__file__).resolve().parents[1]

#: the modules engine.file_metadata was split into, and itself
READER_MODULES = ("engine.metadata_values", "engine.markers", "engine.ixml", "engine.iff_chunks",
                  "engine.riff_metadata", "engine.aiff_metadata", "engine.tag_comments", "engine.file_metadata")

#: where the names callers and tests import from engine.file_metadata live now
MOVED = {"engine.markers": ("Marker", "MAX_MARKERS", "parse_markers"),
         "engine.metadata_values": ("MAX_VALUE",),
         "engine.riff_metadata": ("riff_fields",),
         "engine.ixml": ("ixml_fields",),
         "engine.aiff_metadata": ("aiff_markers",),
         "engine.tag_comments": ("comment_fields", "CommentFields", "ogg_comments", "id3_user_texts"),
         "engine.iff_chunks": ("wave_chunks", "WaveChunk")}


@pytest.mark.parametrize("module", READER_MODULES)
def test_each_reader_module_imports_first_in_a_fresh_interpreter(module):
    """Imported before any other, a module whose imports went round in a cycle fails here."""
    code = f"import {module} as m; print(m.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip()).is_relative_to(ROOT), done.stdout      # this tree's, not an installed copy


@pytest.mark.parametrize("module", sorted(MOVED))
def test_names_moved_out_of_file_metadata_are_still_imported_from_it(module):
    """Each moved name is the same object from engine.file_metadata as from its own module."""
    home = importlib.import_module(module)
    for name in MOVED[module]:
        assert getattr(file_metadata, name) is getattr(home, name), name


def test_a_moved_readers_note_is_still_logged_as_engine_file_metadata(tmp_path, caplog):
    """The WAV reader's note on an iXML chunk that is not XML, with no list to put it on, is a
    warning naming the file from the ``engine.file_metadata`` logger, as before the split."""
    path = tmp_path / "broken_ixml.wav"
    path.write_bytes(with_trailing_chunk(wav_bytes(pcm16(tone(440, 0.5, 16000))),
                                         ixml_chunk("<BWFXML><USER><DESCRIPTION>cut off")))
    with caplog.at_level(logging.WARNING):
        assert riff_fields(path) == {}
    said = [(r.name, r.getMessage()) for r in caplog.records]
    assert len(said) == 1 and said[0][0] == "engine.file_metadata", said
    assert said[0][1].startswith(f"{path}: iXML chunk not read (not well-formed XML"), said

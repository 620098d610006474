"""A library copied by macOS to an exFAT or network drive: every file has a ``._`` twin.

The twins (AppleDouble: Finder metadata) are not sounds, and libsndfile, opening an MP3 by its
path, reads the twin as a Sound Designer II resource fork and fails. Both are handled.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from engine.audio import audio_files, decode, open_sound, probe
from engine.errors import UnreadableAudio
from engine.export import excerpt_wav
from engine.file_metadata import read_metadata
from indexer import build_index
from engine.system_files import APPLEDOUBLE_MAGIC
from indexer.scan import SKIPPED_METADATA
from tests.conftest import tone, write
from tests.index_fakes import FakeModel

SR = 44_100
#: the head of a real AppleDouble file (version 2, "Mac OS X", two entries), then padding
TWIN = (APPLEDOUBLE_MAGIC + b"\x00\x02\x00\x00Mac OS X        \x00\x02\x00\x00\x00\x09\x00\x00\x00\x32"
        b"\x00\x00\x0e\xb0\x00\x00\x00\x02\x00\x00\x0e\xe2\x00\x00\x01\x1e" + bytes(4000))


def with_twin(path):
    path.with_name("._" + path.name).write_bytes(TWIN)
    return path


@pytest.fixture
def mp3(tmp_path):
    path = tmp_path / "lib" / "bell.mp3"
    path.parent.mkdir()
    with sf.SoundFile(str(path), "w", SR, 1, format="MP3") as f:
        f.title = "Church bell"
        f.write(tone(660, 2.0, SR))
    return with_twin(path)


def test_an_mp3_beside_its_twin_opens(mp3):
    with pytest.raises(sf.LibsndfileError, match="resource fork"):
        sf.SoundFile(str(mp3))          # libsndfile alone: what soundsift works around
    with open_sound(mp3) as f:
        assert (f.format, f.samplerate, f.channels) == ("MP3", SR, 1)
        stream = f._stream
    assert stream.closed
    info = probe(mp3)
    assert (info.format, info.sample_rate) == ("MP3", SR) and info.duration == pytest.approx(2.0, abs=0.1)
    audio = decode(mp3, 16_000)
    assert len(audio) == pytest.approx(32_000, abs=2_000) and np.abs(audio).max() > 0.3
    assert read_metadata(mp3) == {"title": "Church bell"}
    data, start, end = excerpt_wav(mp3, 0.5, 1.5)
    assert (start, end) == (0.5, 1.5) and sf.info(io.BytesIO(data)).frames == SR
    from ui.components.thumbnails import envelope
    env = envelope(mp3, columns=50)
    assert env.shape == (50, 2) and env[:, 1].max() > 0.3


def test_a_file_that_is_not_audio_beside_a_twin_is_still_one_clear_error(tmp_path):
    junk = with_twin(tmp_path / "notes.mp3")
    junk.write_bytes(b"not an mp3 at all " * 64)
    with pytest.raises(UnreadableAudio, match=r"notes\.mp3: not readable as audio \(.*Format not recognised"):
        probe(junk)


def test_a_library_copied_by_macos_indexes_whole(mp3):
    lib = mp3.parent
    with_twin(write(lib / "door.wav", tone(300, 1.5, SR), SR))
    with_twin(write(lib / "sub" / "rain.flac", tone(900, 2.5, SR), SR))
    s = build_index([lib], lib.parent / "idx", FakeModel(), workers=0, progress=False)
    assert (s.added, s.failed, s.errors) == (3, 0, [])
    assert s.skipped == {SKIPPED_METADATA: 3}


def test_tag_and_caption_folders_pass_over_them_too(mp3):
    """engine.audio.audio_files (soundsift tag and caption on a folder) follows the scan's rules."""
    lib = mp3.parent
    door = with_twin(write(lib / "door.wav", tone(300, 1.5, SR), SR))
    (lib / ".Trashes" / "501").mkdir(parents=True)
    write(lib / ".Trashes" / "501" / "old.wav", tone(200, 1.0, SR), SR)
    write(lib / "__MACOSX" / "door.wav", tone(300, 1.0, SR), SR)
    assert audio_files([lib]) == [mp3, door]

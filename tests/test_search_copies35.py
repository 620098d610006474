"""One hit per recording (engine.query_copies): hard links and byte-identical copies of one file
collapse into one hit listing the others as ``copies``, in the Python API, ``soundsift search``
and ``similar`` (``--all-copies`` for one hit per name), the HTTP API (``all_copies=1``) and the
page's cards; a tie that is not the same bytes stays two hits."""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.filters import Filters
from engine.query import SoundIndex
from engine.query_hits import Hit
from indexer import build_index
from tests.cli_width import wide_terminal
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel

SR = 16000


@pytest.fixture
def library(tmp_path) -> tuple[Path, Path]:
    """A library holding one recording under four names (``a.wav``; ``Copy of a.wav``, a copy
    whose name says so and which the walk meets first; ``links/a.wav``, a hard link;
    ``other/a-backup.wav``, a byte-identical copy), ``flipped.wav`` (a.wav's samples negated:
    other bytes of the same size and the same vectors, so it ties with a.wav on everything but
    its bytes) and three other recordings; indexed with FakeModel. Yields (library, index)."""
    lib = (tmp_path / "lib").resolve()
    a = write(lib / "a.wav", tone(440, 2.0, SR), SR)
    shutil.copyfile(a, lib / "Copy of a.wav")
    (lib / "links").mkdir()
    os.link(a, lib / "links" / "a.wav")
    (lib / "other").mkdir()
    shutil.copyfile(a, lib / "other" / "a-backup.wav")
    write(lib / "flipped.wav", -tone(440, 2.0, SR), SR)
    write(lib / "noise.wav", noise(2.0, SR, seed=3), SR)
    write(lib / "sweep.wav", chirp(200, 3000, 2.0, SR), SR)
    write(lib / "low.wav", tone(150, 2.0, SR), SR)
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return lib, idx


NAMES = {"a.wav", "Copy of a.wav", "links/a.wav", "other/a-backup.wav"}


def rel(lib: Path, path: str) -> str:
    return os.path.relpath(path, lib)


def a_vector(idx: Path) -> np.ndarray:
    with SoundIndex.open(idx, model=FakeModel()) as index:
        return index.file_vector(index.file_id_for_path(idx.parent / "lib" / "a.wav"))


def test_the_names_of_one_recording_are_one_hit_listing_the_others(library):
    lib, idx = library
    with SoundIndex.open(idx, model=FakeModel()) as index:
        every = index.search_vectors(a_vector(idx), k=8, collapse_copies=False)
        hits = index.search_vectors(a_vector(idx), k=5)
    # today's order (one hit per name) puts the name marked as a copy first among a.wav's names
    assert [rel(lib, h.path) for h in every if rel(lib, h.path) in NAMES][0] == "Copy of a.wav"
    assert {rel(lib, h.path) for h in every[:5]} == NAMES | {"flipped.wav"}
    flipped = next(h for h in every if rel(lib, h.path) == "flipped.wav")
    assert abs(flipped.score - every[1].score) < 1e-6 and flipped.start == every[1].start
    assert (lib / "flipped.wav").stat().st_size == (lib / "a.wav").stat().st_size
    assert all(h.copies == [] for h in every)
    names = [rel(lib, h.path) for h in hits]
    assert len(hits) == 5 and len(set(names)) == 5            # 5 recordings, fetched past the copies
    assert set(names) & NAMES == {"a.wav"}                    # the original leads (engine.keeper.is_copy_name)
    a_hit = hits[names.index("a.wav")]
    assert sorted(rel(lib, c) for c in a_hit.copies) == sorted(NAMES - {"a.wav"})
    assert "flipped.wav" in names                             # ties on everything but its bytes: its own hit
    assert a_hit.to_dict()["copies"] == a_hit.copies and hits[names.index("low.wav")].to_dict()["copies"] == []


def test_segments_keyword_and_similar_collapse_too(library):
    lib, idx = library
    with SoundIndex.open(idx, model=FakeModel()) as index:
        segments = index.search_vectors(a_vector(idx), k=3, per_file=False)
        worded = index.search_text("backup", k=4, keywords=True)
        copy_word = index.search_text("copy", k=4, keywords=True)
        like = index.similar_to_file(str(lib / "Copy of a.wav"), k=4)
        apart = index.similar_to_file(str(lib / "Copy of a.wav"), k=5, collapse_copies=False)
        moment = index.similar_to_file(str(lib / "links" / "a.wav"), k=4, start=0.5, end=1.5)   # decoded
    first = next(h for h in segments if rel(lib, h.path) in NAMES)
    assert {rel(lib, p) for p in (first.path, *first.copies)} == NAMES
    assert sum(rel(lib, h.path) in NAMES for h in segments) == 1
    assert sum(rel(lib, h.path) in NAMES for h in worded) == 1   # its copies found on the sound side
    assert rel(lib, worded[0].path) == "other/a-backup.wav" and len(worded[0].copies) == 3
    # placed by a copy's name, led by the original, with the words' score of the name that matched
    assert rel(lib, copy_word[0].path) == "a.wav" and copy_word[0].keywords > 0
    # more like a file: it leads its own recording, whatever its name says
    assert rel(lib, like[0].path) == "Copy of a.wav"
    assert sorted(rel(lib, c) for c in like[0].copies) == sorted(NAMES - {"Copy of a.wav"})
    assert all(rel(lib, h.path) not in NAMES for h in like[1:])
    assert rel(lib, apart[0].path) == "Copy of a.wav" and {rel(lib, h.path) for h in apart} == NAMES | {"flipped.wav"}
    assert rel(lib, moment[0].path) == "links/a.wav" and moment[0].score == 1.0
    assert sorted(rel(lib, c) for c in moment[0].copies) == sorted(NAMES - {"links/a.wav"})
    assert all(rel(lib, h.path) not in NAMES for h in moment[1:])


def test_a_copy_the_filter_leaves_out_is_not_listed(library):
    lib, idx = library
    with SoundIndex.open(idx, model=FakeModel()) as index:
        hits = index.search_vectors(a_vector(idx), k=3, filters=Filters(path_prefix=str(lib / "other") + "/"))
        at_top = index.search_vectors(a_vector(idx), k=3, filters=Filters(formats=("wav",), max_duration=5))
    assert [rel(lib, h.path) for h in hits][:1] == ["other/a-backup.wav"] and hits[0].copies == []
    assert [len(h.copies) for h in at_top if rel(lib, h.path) in NAMES] == [3]


def test_a_copy_that_cannot_be_read_stays_its_own_hit(library, caplog):
    lib, idx = library
    (lib / "other" / "a-backup.wav").unlink()                 # gone since it was indexed
    with SoundIndex.open(idx, model=FakeModel()) as index, caplog.at_level(logging.WARNING, "engine.query_copies"):
        hits = index.search_vectors(a_vector(idx), k=5)
    names = [rel(lib, h.path) for h in hits]
    assert "other/a-backup.wav" in names
    assert sorted(rel(lib, c) for c in hits[names.index("a.wav")].copies) == ["Copy of a.wav", "links/a.wav"]
    assert any("a-backup.wav" in r.getMessage() and "hit of its own" in r.getMessage() for r in caplog.records)


def test_bytes_are_read_once_and_only_for_ties_of_one_size(tmp_path):
    from engine.query_copies import SameRecording, collapse_copies
    one = write(tmp_path / "one.wav", tone(440, 1.0, SR), SR)
    two = tmp_path / "two.wav"
    shutil.copyfile(one, two)
    longer = write(tmp_path / "longer.wav", tone(440, 1.5, SR), SR)

    def hit(path: Path, score: float, fid: int, duration: float = 1.0) -> Hit:
        return Hit(str(path), 0.0, 1.0, score, fid, fid, duration, "WAV", SR)
    same = SameRecording()
    hits = [hit(one, 0.9, 1), hit(longer, 0.9, 2, 1.5), hit(two, 0.9, 3), hit(one, 0.5, 4, 1.5)]
    out = collapse_copies(hits, same)
    assert [h.file_id for h in out] == [1, 2, 4] and out[0].copies == [str(two)]
    assert same.read == 2                         # one.wav and two.wav; longer.wav differs in duration
    collapse_copies(hits, same)
    assert same.read == 2                         # cached for the search
    later = SameRecording()                       # ties after the k wanted recordings are not read
    assert [h.file_id for h in collapse_copies(hits[1:3] + hits[:1], later, k=1)] == [2] and later.read == 0


@pytest.fixture
def fake_model(monkeypatch):
    """The CLI and the server load FakeModel as the index's model."""
    import engine.models
    monkeypatch.setattr(engine.models, "load_model", lambda *a, **k: FakeModel())


def test_cli_search_and_similar_list_copies_unless_all_copies(library, fake_model):
    from ui.cli import app
    lib, idx = library
    runner = CliRunner()
    found = runner.invoke(app, ["search", "a tone", "--index", str(idx), "-k", "8", "--json"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.stdout)
    assert all("copies" in h for h in hits)
    assert sum(rel(lib, h["path"]) in NAMES for h in hits) == 1
    every = json.loads(runner.invoke(app, ["search", "a tone", "--index", str(idx), "-k", "8", "--json",
                                           "--all-copies"]).stdout)
    assert {rel(lib, h["path"]) for h in every} >= NAMES and all(h["copies"] == [] for h in every)
    table = runner.invoke(app, ["similar", str(lib / "a.wav"), "--index", str(idx), "-k", "3"],
                          env=wide_terminal(lib, lib))           # the folder column; "also at:" paths
    assert table.exit_code == 0, table.output
    assert table.stdout.count("also at:") == 3 and "other/a-backup.wav" in table.stdout
    similar = json.loads(runner.invoke(app, ["similar", str(lib / "a.wav"), "--index", str(idx), "-k", "5",
                                             "--json", "--all-copies"]).stdout)
    assert [rel(lib, h["path"]) for h in similar][0] == "a.wav" and similar[0]["same_recording"] is True
    assert sum(rel(lib, h["path"]) in NAMES for h in similar) == 4


def test_http_search_and_similar_take_all_copies(library):
    from tests.test_server import get, serving
    lib, idx = library
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        _, hits, _ = get(f"{url}/search?q=tone&k=8")
        _, every, _ = get(f"{url}/search?q=tone&k=8&all_copies=1")
        _, like, _ = get(f"{url}/similar?file={quote(str(lib / 'a.wav'))}&k=3")
        _, posted, _ = get(f"{url}/similar?k=5&all_copies=1", data=(lib / "a.wav").read_bytes())
    assert sum(rel(lib, h["path"]) in NAMES for h in hits) == 1 and all("copies" in h for h in hits)
    assert {rel(lib, h["path"]) for h in every} >= NAMES
    assert rel(lib, like[0]["path"]) == "a.wav" and len(like[0]["copies"]) == 3 and like[0]["same_recording"]
    assert sum(rel(lib, h["path"]) in NAMES for h in posted) == 4


def test_a_card_names_the_copies(tmp_path):
    from ui.components.search_tab import copies_caption
    root = str(tmp_path)
    hit = Hit(str(tmp_path / "a.wav"), 0.0, 1.0, 0.9, 1, 1, 1.0, "WAV", SR,
              copies=[str(tmp_path / "links" / "a*.wav")])
    assert copies_caption(hit, root) == r":material/content_copy: also at links/a\*.wav"
    assert copies_caption(Hit(str(tmp_path / "b.wav"), 0.0, 1.0, 0.9, 2, 2, 1.0, "WAV", SR), root) is None

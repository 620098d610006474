"""Exporting a result whose file changed since it was indexed (session 40).

A file replaced by another recording (shorter, or edited to the same length) after indexing was
exported from its new audio without a word: a span cut out of other sound (or past its end,
padded with silence), a whole file the search never matched. Results now carry the file's size
and modification time as indexed (engine.query.Hit.size, .mtime_ns), and export, the page's
downloads and its zip leave such a file out with one line naming it, by the indexer's own rule
(another size or mtime_ns: engine.file_state), one stat a result, no read."""
from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.errors import UnreadableAudio
from engine.export import MANIFEST, NOT_EXPORTED, export_hits, export_zip
from engine.query import SoundIndex
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_index_moves import index
from ui.components import downloads as dl

SR = 16_000
BASE_NS = 1_600_000_000_000_000_000


@pytest.fixture
def indexed(tmp_path) -> tuple[Path, Path]:
    """A library of a 6 s recording (three 2 s segments), a 1 s tone and a 2 s chirp, indexed."""
    lib = (tmp_path / "Library").resolve()
    write(lib / "long.wav", noise(6.0, SR, seed=3), SR)
    write(lib / "short.wav", tone(440, 1.0, SR), SR)
    write(lib / "sweep.wav", chirp(200, 900, 2.0, SR), SR)
    for i, name in enumerate(("long.wav", "short.wav", "sweep.wav")):
        os.utime(lib / name, ns=(BASE_NS + i * 7_777_777_777,) * 2)
    idx = tmp_path / "idx"
    index([lib], idx)
    return lib, idx


def segment_hits(idx: Path, *paths: Path) -> list:
    """Every stored segment of ``paths`` as a hit (engine.query: the catalog's details with it)."""
    with SoundIndex.open(idx, model=FakeModel()) as si:
        return [h for p in paths for h in si.file_segments(p)[0]]


def replace_file(path: Path, audio, mtime_ns: int) -> None:
    write(path, audio, SR)
    os.utime(path, ns=(mtime_ns,) * 2)


def test_search_results_carry_the_files_size_and_time_as_indexed(indexed):
    lib, idx = indexed
    with SoundIndex.open(idx, model=FakeModel()) as si:
        hits = si.search_vectors(si.file_vector(lib / "short.wav")[None], k=3, per_file=True)
        states = si.file_states()
    assert {h.path for h in hits} == {str(lib / n) for n in ("long.wav", "short.wav", "sweep.wav")}
    for h in hits:
        assert (h.size, h.mtime_ns) == states[h.path] == (os.stat(h.path).st_size, os.stat(h.path).st_mtime_ns)
        assert "size" not in h.to_dict() and "mtime_ns" not in h.to_dict()     # --json keeps its shape


def test_a_file_replaced_since_it_was_indexed_is_left_out_with_one_line_and_the_others_written(indexed, tmp_path):
    lib, idx = indexed
    long = segment_hits(idx, lib / "long.wav")
    hits = [long[0], long[-1], *segment_hits(idx, lib / "short.wav", lib / "sweep.wav")]
    assert [(Path(h.path).name, h.start, h.end) for h in hits] == [
        ("long.wav", 0.0, 2.0), ("long.wav", 4.0, 6.0), ("short.wav", 0.0, 1.0), ("sweep.wav", 0.0, 2.0)]
    replace_file(lib / "long.wav", noise(3.0, SR, seed=9), BASE_NS + 99_000_000_000)   # shorter: 4–6 s past its end
    replace_file(lib / "short.wav", chirp(900, 200, 1.0, SR), BASE_NS + 98_000_000_000)  # same length, edited
    result = export_hits(hits, tmp_path / "picks")
    assert [(w.path.name, w.kind) for w in result.written] == [("04_sweep.wav", "file")]
    assert [p for p, _ in result.failed] == [str(lib / "long.wav")] * 2 + [str(lib / "short.wav")]
    for _, reason in result.failed:
        assert reason.startswith("changed since it was indexed (") and "soundsift index" in reason
    size_then = hits[0].size
    size_now = os.stat(lib / "long.wav").st_size
    assert f"{size_now:,} bytes now, {size_then:,} when it was indexed" in result.failed[0][1]
    assert "modified " in result.failed[2][1] and " when it was indexed" in result.failed[2][1]   # same size: the time
    with open(tmp_path / "picks" / MANIFEST, newline="", encoding="utf-8") as f:
        assert [row["source"] for row in csv.DictReader(f)] == [str(lib / "sweep.wav")]
    assert sorted(p.name for p in (tmp_path / "picks").iterdir()) == ["04_sweep.wav", MANIFEST]


def test_whole_files_of_changed_files_are_left_out_too(indexed, tmp_path):
    lib, idx = indexed
    hits = [segment_hits(idx, lib / "long.wav")[2], *segment_hits(idx, lib / "sweep.wav")]   # 2–4 s of long, sweep
    replace_file(lib / "long.wav", noise(8.0, SR, seed=9), BASE_NS + 99_000_000_000)
    result = export_hits(hits, tmp_path / "picks", whole_files=True)
    assert [w.path.name for w in result.written] == ["02_sweep.wav"]
    assert [p for p, _ in result.failed] == [str(lib / "long.wav")]


def test_a_file_rewritten_with_the_same_bytes_but_a_new_time_is_changed_by_the_indexers_rule(indexed, tmp_path):
    lib, idx = indexed
    (hit,) = segment_hits(idx, lib / "short.wav")
    os.utime(lib / "short.wav", ns=(BASE_NS + 55_000_000_000,) * 2)
    assert export_hits([hit], tmp_path / "picks").failed[0][0] == str(lib / "short.wav")
    os.utime(lib / "short.wav", ns=(hit.mtime_ns,) * 2)               # as indexed again: exported
    assert [w.path.name for w in export_hits([hit], tmp_path / "picks").written] == ["01_short.wav"]


def test_the_pages_zip_lists_a_changed_file_as_not_exported(indexed):
    lib, idx = indexed
    hits = [*segment_hits(idx, lib / "long.wav")[-2:], *segment_hits(idx, lib / "sweep.wav")]
    replace_file(lib / "long.wav", noise(3.0, SR, seed=9), BASE_NS + 99_000_000_000)
    data, result = export_zip(hits)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == sorted(["03_sweep.wav", MANIFEST, NOT_EXPORTED])
        lines = zf.read(NOT_EXPORTED).decode("utf-8").splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{lib / 'long.wav'}: changed since it was indexed (")
                                   for line in lines)


def record_of(path: Path, size: int, mtime_ns: int):
    return SimpleNamespace(path=str(path), name=path.name, folder=str(path.parent), duration=6.0, size=size,
                           mtime_ns=mtime_ns, sample_rate=SR, channels=1)


def test_the_pages_downloads_of_a_changed_file(indexed):
    lib, idx = indexed
    long = lib / "long.wav"
    (first, *_), (sweep,) = segment_hits(idx, long), segment_hits(idx, lib / "sweep.wav")
    record = record_of(long, first.size, first.mtime_ns)
    assert dl.gone_note(record) is None
    match, whole = dl.downloads(first, record)
    assert match["data"]()[:4] == b"RIFF" and whole["data"]() == long.read_bytes()
    replace_file(long, noise(3.0, SR, seed=9), BASE_NS + 99_000_000_000)     # between the drawing and the click
    for button in (match, whole):
        with pytest.raises(UnreadableAudio, match="changed since it was indexed"):
            button["data"]()
    assert dl.unavailable(str(long), (first.size, first.mtime_ns)) == dl.CHANGED
    assert "long.wav changed since it was indexed" in dl.gone_note(record)
    listed = [(first, record), (sweep, record_of(lib / "sweep.wav", sweep.size, sweep.mtime_ns))]
    assert dl.left_out_note(listed) == (":material/warning: Not in the zip: long.wav (changed since it was "
                                        "indexed); index the library again")
    assert dl.results_download(listed, "q")["label"] == "Download this result (.zip)"


def test_soundsift_export_says_which_file_changed_in_one_line(indexed, tmp_path, monkeypatch):
    from rich.console import Console

    from ui.cli import results

    lib, idx = indexed
    hits = [segment_hits(idx, lib / "long.wav")[0], *segment_hits(idx, lib / "sweep.wav")]
    replace_file(lib / "long.wav", noise(3.0, SR, seed=9), BASE_NS + 99_000_000_000)
    buf = io.StringIO()
    monkeypatch.setattr(results, "err_console", Console(file=buf, width=400, markup=False))
    results.export_results(hits, tmp_path / "out", False, 0.0, "rain")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"not exported: {lib / 'long.wav'}: changed since it was indexed (")
    assert lines[0].endswith("run `soundsift index` on its folder again, then search again")
    assert lines[1].startswith("exported 1 of 2 results")

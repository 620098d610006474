"""A fresh-eyes audit (session 34) of what a script writer and a librarian use: the Python API,
`info`, `sheet export`, `relocate` and `search --export`. Each test failed before its fix:
`sheet export` whose filters keep no file says which filter value no indexed file has (as search
and duplicates do; it wrote a header-only sheet without a hint), and with `--zero-shot` and one
label says that label scores 1 for every file (as `tag` does); `relocate OLD NEW` with OLD or NEW
a file says so (it said "no such folder" of a file that exists); an indexed file emptied since
is not exported as a 0-byte "result"; SoundIndex given a dict for ``filters`` raises InvalidQuery
(an AttributeError from deep in the search); `info` gives a small vectors file in kB (it read
"0.0 MB"); `--pad` beside `--whole-files` says it pads nothing; an excerpt's name gives its
padded times exactly ("9.75-20.25s", not "9.8-20.2s")."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.errors import RelocationFailed
from engine.export import export_hits
from engine.query import Hit
from indexer import build_index
from indexer.relocate import relocate
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app

SR = 16_000


@pytest.fixture
def library(tmp_path):
    """Two short sounds, indexed with the fake model: (library folder, index folder)."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "rain.wav", noise(2.0, SR, seed=1), SR)
    write(lib / "beep.wav", tone(880, 2.0, SR), SR)
    index_dir = tmp_path / "idx"
    assert build_index([lib], index_dir, FakeModel(), workers=0, progress=False).added == 2
    return lib, index_dir


def test_sheet_export_says_which_filter_value_no_file_has(library, tmp_path):
    _, index_dir = library
    out = tmp_path / "sheet.csv"
    result = CliRunner().invoke(app, ["sheet", "export", str(out), "--index", str(index_dir), "--format", "mp3"])
    assert result.exit_code == 0, result.stderr
    assert "wrote 0 files" in result.stdout
    assert "note: no indexed file has format mp3 (this index: WAV)" in result.stderr
    as_json = CliRunner().invoke(app, ["sheet", "export", str(out), "--index", str(index_dir),
                                       "--path-prefix", str(tmp_path / "elsewhere"), "--json"])
    assert json.loads(as_json.stdout)["files"] == 0
    assert f"no indexed file has path prefix {tmp_path / 'elsewhere'}" in as_json.stderr
    kept = CliRunner().invoke(app, ["sheet", "export", str(out), "--index", str(index_dir), "--format", "wav"])
    assert "wrote 2 files" in kept.stdout and "note:" not in kept.stderr      # nothing to say


def test_relocate_to_a_file_says_it_is_a_file(library, tmp_path):
    lib, index_dir = library
    moved = tmp_path / "moved"
    moved.mkdir()
    target = write(moved / "beep.wav", tone(880, 2.0, SR), SR)
    with pytest.raises(RelocationFailed, match=r"beep\.wav: a file, not a folder") as caught:
        relocate(index_dir, lib, target, dry_run=True)
    assert "no such folder" not in str(caught.value)
    with pytest.raises(RelocationFailed, match=r"beep\.wav: a file, not a folder .*give the folder as OLD"):
        relocate(index_dir, lib / "beep.wav", moved, dry_run=True)     # said "the one file … not at the same place"
    with pytest.raises(RelocationFailed, match=r"nowhere: no such folder"):      # unchanged
        relocate(index_dir, lib, tmp_path / "nowhere", dry_run=True)


def test_an_emptied_file_is_not_exported_as_a_result(tmp_path):
    lib = tmp_path / "lib"
    kept = write(lib / "kept.wav", tone(440, 1.0, SR), SR)
    emptied = write(lib / "emptied.wav", tone(220, 1.0, SR), SR)
    emptied.write_bytes(b"")                       # truncated since it was indexed
    hits = [Hit(path=str(p), start=0.0, end=1.0, score=0.5, file_id=i, segment_id=i, duration=1.0,
                format="WAV", sample_rate=SR, folder=str(lib)) for i, p in enumerate((emptied, kept), 1)]
    result = export_hits(hits, tmp_path / "picks", query="tone")
    assert [w.path.name for w in result.written] == ["02_kept.wav"]
    assert result.failed == [(str(emptied), "empty: the file is 0 bytes now")]
    assert not (tmp_path / "picks" / "01_emptied.wav").exists()
    assert Path(result.written[0].path).read_bytes() == kept.read_bytes()


def test_filters_given_as_a_dict_are_one_clear_error(library):
    """README: bad arguments raise InvalidQuery before any work; a dict of Filters' fields gave
    AttributeError: 'dict' object has no attribute 'active' from deep in the search."""
    from engine.errors import InvalidQuery
    from engine.filters import Filters
    from engine.query import SoundIndex

    _, index_dir = library
    with SoundIndex.open(index_dir, model=FakeModel()) as index:
        calls = [lambda f: index.search_text("rain", filters=f),
                 lambda f: index.search_vectors(index.file_vectors().vectors[0], filters=f),
                 lambda f: index.similar_to_file(index.file_vectors().paths[0], filters=f),
                 lambda f: index.file_vectors(f)]
        for call in calls:
            with pytest.raises(InvalidQuery, match=r"filters must be an engine\.filters\.Filters.*got dict"):
                call({"min_duration": 1.0})
            assert call(Filters(min_duration=1.0)) is not None           # a Filters still works


def test_info_gives_a_small_vectors_file_in_kB_not_0_0_MB(library):
    from indexer.write import human_size     # the one size formatter (cmd_info had a twin)
    _, index_dir = library
    result = CliRunner().invoke(app, ["info", "--index", str(index_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "vectors file" in line)
    size = json.loads(CliRunner().invoke(app, ["info", "--index", str(index_dir), "--json"]).stdout)["vectors_bytes"]
    assert size < 100_000 and f"({human_size(size)})" in row and "0.0 MiB" not in row


def test_pad_with_whole_files_says_it_pads_nothing(library, tmp_path):
    lib, index_dir = library                       # similar to an indexed file: its stored vectors, no model
    out = tmp_path / "picks"
    result = CliRunner().invoke(app, ["similar", str(lib / "rain.wav"), "--index", str(index_dir), "-k", "1",
                                      "--export", str(out), "--whole-files", "--pad", "1"])
    assert result.exit_code == 0, result.stderr
    assert "note: --pad has no effect with --whole-files" in result.stderr
    assert len(list(out.glob("01_*.wav"))) == 1                    # still exported, whole
    plain = CliRunner().invoke(app, ["similar", str(lib / "rain.wav"), "--index", str(index_dir), "-k", "1",
                                     "--export", str(out), "--pad", "1"])
    assert plain.exit_code == 0 and "--pad has no effect" not in plain.stderr


def test_sheet_export_zero_shot_with_one_label_says_it_scores_1(tmp_path, tiny_clap_dir):
    """As `tag` does: one label is every file's best tag, score 1; the sheet said nothing."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "hiss.wav", noise(1.0, SR, seed=2), SR)
    write(lib / "tone.wav", tone(440, 1.0, SR), SR)
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    out = tmp_path / "tags.csv"
    one = CliRunner().invoke(app, ["sheet", "export", str(out), "--index", str(idx), "--zero-shot", "1",
                                   "--labels", "dog"])
    assert one.exit_code == 0, one.output
    assert "note: one label ('dog'): a score is a label's share among the labels given" in one.stderr
    two = CliRunner().invoke(app, ["sheet", "export", str(out), "--index", str(idx), "--zero-shot", "1",
                                   "--labels", "dog,rain"])
    assert two.exit_code == 0 and "note:" not in two.stderr


def test_an_excerpts_name_gives_its_padded_times_exactly(tmp_path):
    """A 0.25 s pad around 10–20 s cuts 9.75–20.25 s (10.5 s); the name said "9.8-20.2s" (10.4 s)."""
    import soundfile as sf

    src = write(tmp_path / "lib" / "long.wav", tone(300, 30.0, SR), SR)
    match = Hit(path=str(src), start=10.0, end=20.0, score=0.5, file_id=1, segment_id=1, duration=30.0,
                format="WAV", sample_rate=SR, folder=str(src.parent))
    result = export_hits([match], tmp_path / "picks", pad=0.25)
    (item,) = result.written
    assert item.path.name == "01_long_9.75-20.25s.wav" and (item.start, item.end) == (9.75, 20.25)
    assert sf.info(str(item.path)).frames == int(10.5 * SR)
    plain = export_hits([match], tmp_path / "picks", pad=1.0).written[0]
    assert plain.path.name == "01_long_9.0-21.0s.wav"                # a tenth that is exact: as before

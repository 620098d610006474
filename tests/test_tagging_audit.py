"""Zero-shot tagging and `soundsift caption` as a sound designer uses them: label files as other
tools write them, labels holding commas, files edited since they were indexed, a file named
twice, options that would be silently ignored, and a manifest name `soundsift train` cannot read."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import chirp, noise, tone, write
from engine.vocabulary import load_labels_file, parse_labels
from ui.cli import app

SR = 16000
LABELS = "beep,hiss,sweep"


pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_labels_file_saved_by_windows_tools_reads_as_written(tmp_path):
    """A byte-order mark (Notepad, Excel's "CSV UTF-8"), CRLF line ends, blank lines, comments,
    duplicates in another case or spacing: the labels as meant, the first spelling kept."""
    text = tmp_path / "labels.txt"
    text.write_bytes("\ufeffdog barking\r\n\r\n# mine\r\nrain\r\n  rain  \r\nDog  Barking\r\n"
                     "Inside, small room\r\npiano\r\n".encode("utf-8"))
    assert load_labels_file(text) == ["dog barking", "rain", "Inside, small room", "piano"]
    sheet = tmp_path / "labels.csv"
    sheet.write_bytes('\ufeffdisplay_name,mid\r\ndog barking,/m/1\r\n"Inside, small room",/m/2\r\n'.encode("utf-8"))
    assert load_labels_file(sheet) == ["dog barking", "Inside, small room"]


def test_labels_argument_takes_a_quoted_label_with_a_comma():
    """73 AudioSet labels hold a comma ("Walk, footsteps"): quoted, --labels keeps them whole."""
    assert parse_labels('"Walk, footsteps", Rain,"Inside, small room"') == [
        "Walk, footsteps", "Rain", "Inside, small room"]
    assert parse_labels('12" vinyl crackle, rain') == ['12" vinyl crackle', "rain"]    # a lone quote is a quote
    assert parse_labels("dog, Dog ,rain") == ["dog", "rain"]


def test_a_tag_cell_quotes_a_label_holding_a_comma_so_it_reads_back():
    """`soundsift tag DIR` printed 'Walk, footsteps 0.40, Rain 0.30': three labels to the eye;
    quoted, the cell reads as --labels takes it, and quoting then splitting gives the labels back."""
    from engine.vocabulary import quoted, split_list
    from ui.cli.cmd_tag import _tag_cell

    tags = [{"label": "Walk, footsteps", "score": 0.4}, {"label": "Rain", "score": 0.3},
            {"label": 'a "12", b', "score": 0.1}]
    assert _tag_cell(tags, 0.0) == '"Walk, footsteps" 0.40, Rain 0.30, "a ""12"", b" 0.10'
    assert split_list(", ".join(quoted(t["label"]) for t in tags)) == [t["label"] for t in tags]


@pytest.fixture
def small_index(tmp_path, tiny_clap_dir):  # noqa: F811
    from indexer import build_index
    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(1000, 2.0, SR), SR)
    write(lib / "sweep.wav", chirp(300, 3000, 2.0, SR), SR)
    index_dir = tmp_path / "idx"
    build_index([lib], index=index_dir, model=str(tiny_clap_dir), workers=0, progress=False)
    return lib, index_dir


def _rewrite(path: Path, data: np.ndarray) -> None:
    """Edit a file in place (as an editor saving over it does), its time moved on."""
    st = os.stat(path)
    write(path, data, SR)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


@pytest.mark.parametrize("same_length", [False, True])
def test_tag_with_index_embeds_a_file_edited_since_it_was_indexed(small_index, tiny_clap_dir, same_length):  # noqa: F811
    """Stored vectors describe the audio as it was indexed; a file edited since (re-rendered,
    trimmed, even to the same length) is tagged from its audio now, in a folder and on a timeline."""
    lib, index_dir = small_index
    edited = lib / "beep.wav"
    _rewrite(edited, noise(2.0 if same_length else 7.0, SR, seed=9))
    rows = json.loads(run("tag", lib, "--index", index_dir, "--labels", LABELS, "--top", 3, "--json").stdout)["files"]
    assert {r["path"]: r["from_index"] for r in rows} == {str(edited): False, str(lib / "sweep.wav"): True}
    alone = run("tag", edited, "-m", tiny_clap_dir, "--labels", LABELS, "--top", 3, "--json")
    now = json.loads(alone.stdout)["files"][0]["tags"]
    got = next(r["tags"] for r in rows if r["path"] == str(edited))
    assert [t["label"] for t in got] == [t["label"] for t in now]
    assert [t["score"] for t in got] == pytest.approx([t["score"] for t in now], abs=1e-5)
    timeline = run("tag", edited, "--index", index_dir, "--labels", LABELS, "--timeline", "--json")
    assert timeline.exit_code == 0, timeline.stderr
    spans = json.loads(timeline.stdout)["segments"]
    assert spans[-1]["end"] == pytest.approx(2.0 if same_length else 7.0)
    table = run("tag", edited, "--index", index_dir, "--labels", LABELS, "--timeline")
    assert "(decoded)" in table.stdout
    unedited = run("tag", lib / "sweep.wav", "--index", index_dir, "--labels", LABELS, "--timeline")
    assert "(stored vectors)" in unedited.stdout


def test_a_file_named_twice_is_tagged_and_captioned_once(tmp_path, tiny_clap_dir):  # noqa: F811
    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(1000, 1.0, SR), SR)
    write(lib / "hiss.wav", noise(1.0, SR), SR)
    again = lib / ".." / "lib" / "beep.wav"
    rows = json.loads(run("tag", lib, again, "-m", tiny_clap_dir, "--labels", LABELS, "--json").stdout)["files"]
    assert sorted(r["path"] for r in rows) == [str(lib / "beep.wav"), str(lib / "hiss.wav")]
    out = tmp_path / "m.jsonl"
    result = run("caption", lib, again, "--source", "model", "-m", tiny_clap_dir, "--labels", LABELS,
                 "--threshold", 0, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert sorted(json.loads(line)["audio"] for line in out.read_text().splitlines()) == [
        "lib/beep.wav", "lib/hiss.wav"]          # relative to the manifest's folder (session 40)
    assert "of 2 files" in result.stdout


@pytest.mark.parametrize("source", ["yamnet", "metadata"])
def test_caption_refuses_zero_shot_labels_its_source_would_ignore(tmp_path, source):
    write(tmp_path / "beep.wav", tone(1000, 1.0, SR), SR)
    out = tmp_path / "m.jsonl"
    for option, value in (("--labels", LABELS), ("--labels-file", tmp_path / "l.txt")):
        result = run("caption", tmp_path / "beep.wav", "--source", source, option, value, "--out", out)
        assert result.exit_code != 0
        assert "--source model or both" in result.stderr and not out.exists()


def test_caption_refuses_a_manifest_name_train_would_not_read_as_jsonl(tmp_path):
    """--out writes JSONL; `soundsift train` reads a .csv/.tsv as CSV (and a name without
    .jsonl/.json/.ndjson not at all), so such a name is refused before any work."""
    write(tmp_path / "beep.wav", tone(1000, 1.0, SR), SR)
    for name in ("blat.csv", "blat.tsv", "blat"):
        result = run("caption", tmp_path / "beep.wav", "--out", tmp_path / name)
        assert result.exit_code != 0 and ".jsonl" in result.stderr
        assert not (tmp_path / name).exists()

"""`soundsift tag` and `soundsift caption` walked through as a sound designer tags a folder: a
labels file saved as "Unicode" text, a single label (whose softmax score is 1 for anything),
sounds too short to be told apart (a 10 ms beep is tagged "Silence"), and what `caption`'s last
line says of the files it wrote no captions for."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from conftest import noise, tone, write
from engine.vocabulary import load_labels_file
from test_tag_caption_leftovers import LABELS, SR, run, said     # the same CLI helpers and labels

pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


@pytest.fixture
def folder(tmp_path) -> Path:
    """A long-enough beep and hiss, and a 10 ms click of a beep."""
    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(1000, 1.0, SR), SR)
    write(lib / "hiss.wav", noise(1.5, SR, seed=5), SR)
    write(lib / "blip.wav", tone(1000, 0.01, SR), SR)
    return lib


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_labels_file_saved_as_unicode_text_reads_as_written(tmp_path, encoding):
    """Excel's "Unicode Text" and Notepad's "Unicode" save UTF-16 with a byte-order mark: it was
    refused as "could not be read as UTF-8 text"."""
    path = tmp_path / "labels.txt"
    text = "# mine\r\ndog barking\r\n\r\nSäge über Holz\r\nrain\r\n"
    path.write_bytes(("\ufeff" + text).encode(encoding) if encoding == "utf-16-be" else text.encode(encoding))
    assert load_labels_file(path) == ["dog barking", "Säge über Holz", "rain"]
    sheet = tmp_path / "labels.csv"
    sheet.write_bytes('display_name,mid\r\n"Walk, footsteps",/m/1\r\nRain,/m/2\r\n'.encode("utf-16"))
    assert load_labels_file(sheet) == ["Walk, footsteps", "Rain"]


def test_a_csv_labels_file_passes_over_comment_lines_as_a_text_one_does(tmp_path):
    """README: `#` comments are fine in a labels file; in a CSV one before the header was taken
    for the header ("needs a column named … found: # my vocabulary"), and one among the rows
    for a label."""
    sheet = tmp_path / "labels.csv"
    sheet.write_text("# my vocabulary\ndisplay_name,mid\nDog,/m/1\n# not this one\n\n  # nor this\nRain,/m/2\n",
                     encoding="utf-8")
    assert load_labels_file(sheet) == ["Dog", "Rain"]


def test_a_labels_file_in_another_encoding_is_still_refused_by_name(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("Säge\nrain\n".encode("cp1252"))
    result = run("tag", tmp_path / "x.wav", "--labels-file", path)
    assert result.exit_code == 1 and f"labels file {path} could not be read as UTF-8 text" in said(result.stderr)


def test_tag_with_one_label_says_its_score_is_1_for_every_sound(folder, tiny_clap_dir):  # noqa: F811
    """A softmax over one label is 1 whatever the sound: `tag DIR --labels "door slam"` printed
    "door slam 1.00" for every file and said nothing."""
    result = run("tag", folder, "-m", tiny_clap_dir, "--labels", "door slam, Door  Slam", "--json")
    assert result.exit_code == 0, result.output
    assert {t["score"] for row in json.loads(result.stdout)["files"] for t in row["tags"]} == {1.0}
    assert "note: one label ('door slam'): a score is a label's share among the labels given, so it scores 1 " \
           "for every sound" in said(result.stderr)
    timeline = run("tag", folder / "hiss.wav", "--timeline", "-m", tiny_clap_dir, "--labels", "door slam")
    assert timeline.exit_code == 0 and "one label ('door slam')" in said(timeline.stderr)
    several = run("tag", folder, "-m", tiny_clap_dir, "--labels", LABELS)
    assert several.exit_code == 0 and "one label" not in several.stderr


def test_caption_with_one_label_says_every_file_gets_it(folder, tmp_path, tiny_clap_dir):  # noqa: F811
    out = tmp_path / "m.jsonl"
    result = run("caption", folder, "--out", out, "--source", "model", "-m", tiny_clap_dir, "--labels", "beep",
                 "--threshold", "0.99")
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 3              # every file, even at 0.99
    assert "one label ('beep')" in said(result.stderr) and "every file gets it as a tag" in said(result.stderr)


def test_tag_says_a_sound_too_short_to_tell_is_one(folder, tmp_path, tiny_clap_dir):  # noqa: F811
    """A 10 ms beep was tagged "Silence 0.99" by the bundled models (padded to YAMNet's 0.975 s)
    with nothing said; now a note names each file under 0.1 s, in every form of `tag`."""
    note = "blip.wav is 0.010 s long, under 0.1 s: too short for the model to tell what it is"
    many = run("tag", folder, "-m", tiny_clap_dir, "--labels", LABELS)
    assert many.exit_code == 0, many.output
    assert said(many.stderr).count(note) == 1
    assert "beep.wav is" not in many.stderr and "hiss.wav is" not in many.stderr
    as_json = run("tag", folder, "-m", tiny_clap_dir, "--labels", LABELS, "--json")
    assert len(json.loads(as_json.stdout)["files"]) == 3 and note in said(as_json.stderr)      # stdout stays JSON
    for args in ([folder / "blip.wav"], [folder / "blip.wav", "--timeline"]):
        one = run("tag", *args, "-m", tiny_clap_dir, "--labels", LABELS)
        assert one.exit_code == 0 and note in said(one.stderr), one.output
    assert "is 1.000 s long" not in run("tag", folder / "beep.wav", "-m", tiny_clap_dir, "--labels", LABELS).stderr

    from indexer import build_index
    index = tmp_path / "idx"
    build_index([folder], index=index, model=str(tiny_clap_dir), workers=0, progress=False)
    stored = run("tag", folder, "--index", index, "--labels", LABELS, "--json")       # the catalog's durations
    assert stored.exit_code == 0 and all(r["from_index"] for r in json.loads(stored.stdout)["files"]), stored.output
    assert said(stored.stderr).count(note) == 1
    timeline = run("tag", folder / "blip.wav", "--timeline", "--index", index, "--labels", LABELS)
    assert "(stored vectors)" in timeline.stdout and note in said(timeline.stderr)


def test_caption_warns_of_a_sound_too_short_to_caption(folder, tmp_path, tiny_clap_dir):  # noqa: F811
    """Its "Silence" tag would become the training caption "silence" of a beep."""
    result = run("caption", folder, "--out", tmp_path / "m.jsonl", "--source", "model", "-m", tiny_clap_dir,
                 "--labels", LABELS, "--threshold", "0")
    assert result.exit_code == 0, result.output
    line = said(result.stderr)
    assert "blip.wav is 0.010 s long, under 0.1 s: too short for the taggers to tell what it is" in line
    assert "beep.wav is" not in line and "hiss.wav is" not in line


def test_caption_counts_the_files_it_wrote_no_captions_for(folder, tmp_path, tiny_clap_dir, monkeypatch):  # noqa: F811
    """"captioned 2 of 3 files" left the third to be found among the log lines."""
    import trainer.caption_loop as caption_loop

    real = caption_loop.ZeroShotTagger.tags
    monkeypatch.setattr(caption_loop.ZeroShotTagger, "tags",          # hiss.wav: nothing certain enough
                        lambda self, path, *a: [] if Path(path).name == "hiss.wav" else real(self, path, *a))
    result = run("caption", folder, "--out", tmp_path / "m.jsonl", "--source", "model", "-m", tiny_clap_dir,
                 "--labels", LABELS, "--threshold", "0.2")
    assert result.exit_code == 0, result.output
    assert "captioned 2 of 3 files" in said(result.stdout)
    assert "; 1 without captions (no tag reached --threshold 0.2)" in said(result.stdout)


def test_caption_from_metadata_counts_the_files_that_describe_nothing(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    with sf.SoundFile(str(lib / "door.wav"), "w", SR, 1) as f:
        f.title = "Door slam, wooden"
        f.write(tone(200, 0.5, SR))
    write(lib / "bare.wav", tone(300, 0.5, SR), SR)
    result = run("caption", lib, "--source", "metadata", "--out", tmp_path / "m.jsonl")
    assert result.exit_code == 0, result.output
    assert "captioned 1 of 2 files" in said(result.stdout)
    assert "1 without captions (no description, title, comment or keywords)" in said(result.stdout)


@pytest.mark.parametrize("json_out", [False, True])
def test_a_caption_run_that_captions_nothing_keeps_the_manifest_there_and_fails(tmp_path, json_out):
    """Run again on unreadable files (or at a --threshold nothing reaches), `caption` emptied the
    manifest an earlier run wrote at --out, then said "error: no captions"; with --json it
    also exited 0."""
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    out = tmp_path / "blat.jsonl"
    earlier = '{"audio": "door.wav", "captions": ["a door slam"], "tags": ["Door"]}\n'
    out.write_text(earlier, encoding="utf-8")
    result = run("caption", tmp_path / "broken.wav", "--out", out, *(["--json"] if json_out else []))
    assert result.exit_code == 1, result.output
    assert out.read_text(encoding="utf-8") == earlier
    assert "error: no captions: none of them could be read" in said(result.stderr)
    if json_out:
        report = json.loads(result.stdout)
        assert report["rows"] == 0 and report["manifest"] is None and len(report["errors"]) == 1
    else:
        assert f"captioned 0 of 1 file → {out} not written; 1 unreadable" in said(result.stdout)

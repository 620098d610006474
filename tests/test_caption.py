"""`soundsift caption`: tags → captions → a training manifest, and captions stored in a catalog."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from engine.catalog import Caption, File, Tag
from tests.conftest import catalog_session, chirp, noise, tone, write
from trainer.captions import captions_from_tags
from trainer.caption_loop import TagScore, merge_tags, top_tags
from trainer.datasets import read_manifest
from ui.cli import app

SR = 16000
LABELS = ["beep", "hiss", "sweep"]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unlabeled")
    write(root / "a" / "beep.wav", tone(1000, 1.0, SR), SR)
    write(root / "a" / "hiss.flac", noise(1.5, SR, seed=2), SR)
    write(root / "b" / "sweep.wav", chirp(300, 3000, 1.0, SR), SR)
    (root / "b" / "broken.wav").write_bytes(b"RIFF\x00\x00 not audio at all")
    return root


def test_top_tags_and_merge_are_pinned():
    scores = np.array([0.1, 0.7, 0.3, 0.7, 0.05])
    got = top_tags(["a", "b", "c", "d", "e"], scores, 3, 0.2, "yamnet")
    assert [(t.label, t.score) for t in got] == [("b", 0.7), ("d", 0.7), ("c", 0.3)]
    assert top_tags(["a", "b"], np.array([0.1, 0.15]), 5, 0.2, "x") == []
    merged = merge_tags([TagScore("Dog", 0.4, "yamnet"), TagScore("Rain", 0.2, "yamnet")],
                        [TagScore("dog", 0.9, "zeroshot"), TagScore("wind", 0.3, "zeroshot")], top_k=2)
    assert [(t.label, t.source) for t in merged] == [("dog", "zeroshot"), ("wind", "zeroshot")]


def test_caption_with_model_tags_writes_manifest_and_stores_in_index(tmp_path, library, tiny_clap_dir):
    from indexer import build_index
    index = tmp_path / "idx"
    build_index([library], index=index, model=tiny_clap_dir, workers=0, progress=False)
    out = tmp_path / "blat.jsonl"
    args = ["caption", str(library), "--out", str(out), "--index", str(index), "--source", "model",
            "--model", str(tiny_clap_dir), "--labels", ",".join(LABELS), "--top-k", "2", "--threshold", "0",
            "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 3 and len(report["errors"]) == 1 and report["errors"][0]["path"].endswith("broken.wav")
    assert report["stored"] == {"files": 3, "not_in_index": 0, "tags": 6, "captions": 9, "left_bare": 0}

    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(Path(r["audio"]).name for r in rows) == ["beep.wav", "hiss.flac", "sweep.wav"]
    for r in rows:
        assert len(r["tags"]) == 2 and set(r["tags"]) <= set(LABELS)
        scores = [t["score"] for t in r["tag_scores"]]
        assert scores == sorted(scores, reverse=True) and all(t["source"] == "zeroshot" for t in r["tag_scores"])
        assert len(r["captions"]) == 3
        assert r["captions"][1] == f"This is a sound of {r['tags'][0]} and {r['tags'][1]}."
    items = read_manifest(out)                   # the manifest is training data as it stands
    assert [i.captions for i in items] == [r["captions"] for r in rows]

    def catalog_state():
        with catalog_session(index) as s:
            caps = s.execute(select(File.path, Caption.text, Caption.source).join(Caption)).all()
            tags = s.execute(select(File.path, Tag.label, Tag.source).join(Tag)).all()
        return sorted(caps), sorted(tags)

    caps, tags = catalog_state()
    assert len(caps) == 9 and {c.source for c in caps} == {"blat"}
    by_row = {Path(r["audio"]).name: r for r in rows}
    for path, text, _ in caps:
        assert text in by_row[Path(path).name]["captions"]
    assert len(tags) == 6 and {t.source for t in tags} == {"zeroshot"}

    again = CliRunner().invoke(app, args)          # re-captioning replaces, never duplicates
    assert again.exit_code == 0, again.output
    assert catalog_state() == (caps, tags)


def test_caption_with_yamnet_audioset_tags(tmp_path, library):
    from engine.towers.yamnet import class_names
    out = tmp_path / "m.jsonl"
    result = CliRunner().invoke(app, ["caption", str(library / "a" / "hiss.flac"), str(library / "a" / "beep.wav"),
                                      "--out", str(out), "--top-k", "3", "--threshold", "0", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    names = set(class_names())
    assert len(rows) == 2
    for r in rows:
        assert len(r["tags"]) == 3 and set(r["tags"]) <= names
        assert r["captions"] == captions_from_tags(r["tags"], 3)
        assert all(t["source"] == "yamnet" and 0 <= t["score"] <= 1 for t in r["tag_scores"])
    high = CliRunner().invoke(app, ["caption", str(library / "a"), "--out", str(tmp_path / "none.jsonl"),
                                    "--threshold", "1.0", "--json"])
    assert json.loads(high.stdout)["rows"] == 0          # nothing certain enough: no rows


def test_yamnet_tagger_lifts_a_quiet_file_before_tagging(tmp_path):
    """A file 40 dB down (peak ≈ −48 dBFS) is tagged as its copy at −20 dBFS peak; a file above
    −20 dBFS is tagged as it is."""
    from trainer.caption_loop import YamnetTagger

    loud = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * SR) / SR)).astype(np.float32) + noise(2.0, SR, seed=4, amp=0.02)
    quiet = loud * np.float32(10 ** (-40 / 20))
    write(tmp_path / "loud.wav", loud, SR, subtype="FLOAT")
    write(tmp_path / "quiet.wav", quiet, SR, subtype="FLOAT")
    tagger = YamnetTagger()
    tower = tagger.tower
    assert tower.weights == "float"

    def posteriors(wave: np.ndarray) -> np.ndarray:
        return tower.clip_features(tower.log_mel(wave))["posteriors"]
    at_minus_20 = quiet * np.float32(10 ** (-20 / 20) / np.abs(quiet).max())
    np.testing.assert_allclose(tagger.scores(tmp_path / "quiet.wav"), posteriors(at_minus_20), atol=1e-4)
    assert np.abs(posteriors(quiet) - posteriors(at_minus_20)).max() > 0.1     # the lift matters here
    np.testing.assert_allclose(tagger.scores(tmp_path / "loud.wav"), posteriors(loud), atol=1e-6)


def test_caption_errors_are_one_line(tmp_path, library):
    result = CliRunner().invoke(app, ["caption", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "no such file or folder" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["caption", str(tmp_path)])
    assert result.exit_code == 1 and "no audio files" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["caption", str(library / "a"), "--source", "radio"])
    assert result.exit_code == 1 and "--source must be one of yamnet, model, both" in " ".join(result.output.split())


def _caption_rows(index: Path) -> tuple[int, int]:
    with catalog_session(index) as s:
        return len(s.scalars(select(Caption.id)).all()), len(s.scalars(select(Tag.id)).all())


def test_caption_into_an_index_being_written_is_refused_like_index(tmp_path, library, tiny_clap_dir, monkeypatch):
    import os

    from engine.errors import IndexBusy
    from engine.layout import IndexLayout
    from indexer import build_index
    from indexer.write import WriterLock
    import trainer.caption_loop as caption_loop

    index = tmp_path / "idx"
    build_index([library / "a"], index=index, model=tiny_clap_dir, workers=0, progress=False)
    out = tmp_path / "blat.jsonl"
    args = ["caption", str(library / "a"), "--out", str(out), "--index", str(index), "--source", "model",
            "--model", str(tiny_clap_dir), "--labels", ",".join(LABELS), "--threshold", "0", "--json"]
    with WriterLock(IndexLayout(index).lock):            # another writer (an index run) holds the index
        busy = CliRunner().invoke(app, args)
    assert busy.exit_code == 1 and isinstance(busy.exception, SystemExit)
    message = " ".join(busy.output.split())
    assert f"index {index} is being written by another process (process {os.getpid()})" in message
    assert _caption_rows(index) == (0, 0) and not out.exists()       # nothing written anywhere

    store = caption_loop.store_in_catalog

    def store_checking_the_lock(*a, **kw):              # the catalog write happens under the writer lock
        with pytest.raises(IndexBusy):
            WriterLock(IndexLayout(index).lock).acquire()
        return store(*a, **kw)
    monkeypatch.setattr(caption_loop, "store_in_catalog", store_checking_the_lock)
    free = CliRunner().invoke(app, args)                 # free again: writes as before
    assert free.exit_code == 0, free.output
    assert json.loads(free.stdout)["stored"] == {"files": 2, "not_in_index": 0, "tags": 6, "captions": 6,
                                                 "left_bare": 0}
    assert _caption_rows(index) == (6, 6) and out.is_file()
    with WriterLock(IndexLayout(index).lock):            # and the lock was released afterwards
        pass
    nothing = CliRunner().invoke(app, [*args[:-3], "--threshold", "1", "--json"])   # no tag reaches 1
    assert nothing.exit_code == 1 and json.loads(nothing.stdout)["stored"] is None
    assert "keeps its tags and captions" in " ".join(nothing.output.split())
    assert _caption_rows(index) == (6, 6)               # a failed run removed them all before


def test_caption_into_a_missing_index_fails_before_any_work(tmp_path, library):
    out = tmp_path / "m.jsonl"
    result = CliRunner().invoke(app, ["caption", str(library / "a"), "--out", str(out),
                                      "--index", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert f"no index at {tmp_path / 'nowhere'}" in " ".join(result.output.split())
    assert not out.exists() and not (tmp_path / "nowhere").exists()


def test_caption_from_the_descriptions_files_carry(tmp_path, library):
    """--source metadata: a described library's own words become its captions (bext description,
    title, comment, in that order, each once); an undescribed file is left out of the manifest,
    a broken one reported; with --index it is refused (the index holds the metadata already)."""
    import soundfile as sf

    from tests.test_file_metadata import bext_chunk
    from tests.test_bad_inputs import pcm16, wav_bytes

    lib = tmp_path / "described"
    lib.mkdir()
    with sf.SoundFile(str(lib / "door.flac"), "w", SR, 1, format="FLAC") as f:
        f.title, f.comment = "Door slam, oak", "Door slam, oak"       # the same words twice: once
        f.write(tone(300, 1.0, SR))
    (lib / "rain.wav").write_bytes(wav_bytes(pcm16(noise(1.0, SR, seed=3)), rate=SR,
                                             extra_chunks=bext_chunk(b"Rain on a tin roof, heavy")))
    write(lib / "plain.wav", tone(900, 1.0, SR), SR)
    (lib / "broken.wav").write_bytes(b"RIFF\x00\x00 not audio at all")
    out = tmp_path / "own.jsonl"
    result = CliRunner().invoke(app, ["caption", str(lib), "--source", "metadata", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 2 and len(report["errors"]) == 1 and report["errors"][0]["path"].endswith("broken.wav")
    rows = {Path(r["audio"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["door.flac"]["captions"] == ["Door slam, oak"] and rows["door.flac"]["tags"] == []
    assert {r["source"] for r in rows.values()} == {"metadata"}
    assert rows["rain.wav"]["captions"] == ["Rain on a tin roof, heavy"]
    items = read_manifest(out)                                # what `soundsift train` reads
    assert sorted(i.captions[0] for i in items) == ["Door slam, oak", "Rain on a tin roof, heavy"]
    refused = CliRunner().invoke(app, ["caption", str(lib), "--source", "metadata", "--index", str(tmp_path / "i")])
    assert refused.exit_code == 1 and "drop --index" in refused.stderr
    empty = CliRunner().invoke(app, ["caption", str(lib / "plain.wav"), "--source", "metadata", "--out",
                                     str(tmp_path / "none.jsonl")])       # says nothing of itself: no manifest to train on
    said = " ".join(empty.stderr.split())
    assert empty.exit_code == 1 and "captioned 0 of 1 file " in " ".join(empty.stdout.split())     # the summary: stdout
    assert "error: no captions: none of them carries a description, title or comment" in said


def test_caption_from_metadata_uses_ixml_keywords_while_there_is_room(tmp_path):
    """A file whose iXML carries only keywords gets captions made from them as from tags; one
    with a description and a title gets the keywords as its third caption."""
    from tests.test_bad_inputs import pcm16, wav_bytes
    from tests.test_file_metadata import ixml_chunk, with_trailing_chunk
    from trainer.caption_loop import described_files

    lib = tmp_path / "ixml"
    lib.mkdir()
    only = lib / "only_keywords.wav"
    only.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(1.0, SR, seed=4)), rate=SR), ixml_chunk(
        "<BWFXML><USER><KEYWORDS>hinge; squeak, door</KEYWORDS></USER></BWFXML>")))
    full = lib / "full.wav"
    full.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(1.0, SR, seed=5)), rate=SR), ixml_chunk(
        "<BWFXML><USER><FXNAME>Gate Creak</FXNAME><DESCRIPTION>Old iron gate creaking open</DESCRIPTION>"
        "<KEYWORDS>gate, metal</KEYWORDS></USER></BWFXML>")))
    done, errors = described_files([only, full])
    assert errors == []
    by_name = {Path(d.path).name: d.captions for d in done}
    assert by_name["only_keywords.wav"] == ["hinge, squeak and door", "This is a sound of hinge, squeak and door.",
                                            "The sound of hinge, squeak and door."]
    assert by_name["full.wav"] == ["Old iron gate creaking open", "Gate Creak", "gate and metal"]


def test_caption_from_a_library_sheet_for_files_that_carry_nothing(tmp_path):
    """--sheet: the BBC archive's numbered files carry no words, its CSV does; the sheet's
    description and title become the captions (after the file's own), its keywords fill the
    room left; --sheet without --source metadata is refused."""
    import soundfile as sf

    lib = tmp_path / "BBC"
    write(lib / "07076051.wav", noise(1.0, SR, seed=1), SR)
    with sf.SoundFile(str(lib / "07076052.wav"), "w", SR, 1) as f:
        f.title = "Steam train"
        f.write(tone(300, 1.0, SR))
    write(lib / "07076053.wav", tone(600, 1.0, SR), SR)          # the sheet does not name it
    sheet = tmp_path / "BBCSoundEffects.csv"
    sheet.write_text('"location","description","category","Keywords"\n'
                     '"07076051.wav","Skylark singing high above a meadow","Nature: Birds","lark, song"\n'
                     '"07076052.wav","Steam train departing, whistle","Transport: Trains",""\n')
    out = tmp_path / "bbc.jsonl"
    result = CliRunner().invoke(app, ["caption", str(lib), "--source", "metadata", "--sheet", str(sheet),
                                      "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rows = {Path(r["audio"]).name: r["captions"] for r in map(json.loads, out.read_text().splitlines())}
    assert rows == {"07076051.wav": ["Skylark singing high above a meadow", "lark and song",
                                     "This is a sound of lark and song."],
                    "07076052.wav": ["Steam train", "Steam train departing, whistle"]}
    refused = CliRunner().invoke(app, ["caption", str(lib), "--sheet", str(sheet), "--out", str(out)])
    assert refused.exit_code == 1 and "--sheet gives descriptions: it goes with --source metadata" in refused.stderr

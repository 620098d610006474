"""`soundsift tag` and `soundsift caption`, what an audit left: YAMNet's whole-file pass in
bounded chunks, a missing path among several, ``tag --min-score``, a folder given as
``--labels-file``, and what ``caption --index`` says it stored."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import catalog_session, chirp, noise, tone, write
from tests.cli_width import wide_terminal
from ui.cli import app

SR = 16000
LABELS = "beep,hiss,sweep"


pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def said(text: str) -> str:
    return " ".join(text.split())


# -- 1. YAMNet over a whole file, in bounded chunks -------------------------------------------

def _take(seconds: float, sr: int, seed: int, amp: float = 1.0) -> np.ndarray:
    """A recording that changes over time: a sweep, then noise bursts, then a hum."""
    third = seconds / 3
    mono = np.concatenate([chirp(200, 4000, third, sr), noise(third, sr, seed=seed, amp=0.2),
                           tone(120, third, sr, amp=0.4)])
    return (mono * np.float32(amp)).astype(np.float32)


def _whole_file(tagger, path: Path) -> np.ndarray:
    """What the tagger gave before: the whole file decoded, lifted, and run at once."""
    from engine.audio import decode
    from engine.towers import yamnet
    wave = yamnet.lift_quiet(decode(path, SR), yamnet.QUIET_PEAK_DB, yamnet.MAX_LIFT_DB)
    return tagger.tower.clip_features(tagger.tower.log_mel(wave))["posteriors"]


def _counting_runs(monkeypatch, tower) -> list[int]:
    """The number of patches of each network call ``tower`` makes from now on."""
    sizes: list[int] = []
    real = tower.run_patches

    def run_patches(patches):
        sizes.append(int(patches.shape[0]))
        return real(patches)
    monkeypatch.setattr(tower, "run_patches", run_patches)
    return sizes


def test_caption_yamnet_pass_runs_a_long_file_in_bounded_chunks_with_the_same_tags(tmp_path, monkeypatch):
    """A file longer than one chunk (chunks of 4 patches here, ≈ 2 s) is run 4 patches at a time,
    never whole, and gives the posteriors of the whole-file pass; so does a 44.1 kHz stereo file
    (resampled as it streams)."""
    from engine.audio import decode
    from engine.towers import yamnet
    from trainer.caption_loop import YamnetTagger

    stereo = _take(12.0, 44100, seed=1)
    path = write(tmp_path / "take.flac", np.stack([stereo, stereo[::-1]], axis=1), 44100)
    tagger = YamnetTagger()
    expected = _whole_file(tagger, path)
    n_patches = tagger.tower.patches(tagger.tower.log_mel(decode(path, SR))).shape[0]
    assert n_patches > 8                                          # several chunks
    monkeypatch.setattr(yamnet, "STREAM_CHUNK_PATCHES", 4, raising=False)
    sizes = _counting_runs(monkeypatch, tagger.tower)
    got = tagger.scores(path)
    assert sizes and max(sizes) <= 4 and sum(sizes) == n_patches     # every patch once, 4 at most a call
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert list(np.argsort(-got)[:5]) == list(np.argsort(-expected)[:5])


@pytest.mark.parametrize("hold_samples", [None, 3 * SR])
def test_caption_yamnet_pass_lifts_a_quiet_long_file_as_the_whole_file_pass(tmp_path, monkeypatch, hold_samples):
    """The quiet-file lift needs the whole file's peak: a quiet file is held while short, read
    twice when longer than what is held (3 s here), and lifted exactly as before."""
    from engine.towers import yamnet
    from trainer.caption_loop import YamnetTagger

    path = write(tmp_path / "quiet.wav", _take(9.0, SR, seed=2, amp=10 ** (-40 / 20)), SR, subtype="FLOAT")
    tagger = YamnetTagger()
    expected = _whole_file(tagger, path)
    monkeypatch.setattr(yamnet, "STREAM_CHUNK_PATCHES", 3, raising=False)
    if hold_samples is not None:
        monkeypatch.setattr(yamnet, "LIFT_HOLD_SAMPLES", hold_samples, raising=False)
    sizes = _counting_runs(monkeypatch, tagger.tower)
    np.testing.assert_allclose(tagger.scores(path), expected, atol=1e-5)
    assert max(sizes) <= 3


@pytest.mark.parametrize("weights", ["int8", "float"])
def test_stream_features_equal_clip_features_whatever_the_block_sizes(weights):
    """Frames and patches straddling blocks, audio shorter than one patch, exactly one patch."""
    from engine.towers import yamnet

    tower = yamnet.shared_tower(0, weights)
    for wave in (_take(7.3, SR, seed=3), tone(440, 0.4, SR), noise(yamnet.MIN_SAMPLES / SR, SR, seed=4),
                 np.zeros(0, np.float32)):
        whole = tower.clip_features(tower.log_mel(wave))
        for block in (len(wave) or 1, 7777, 160, 399):
            blocks = [wave[i:i + block] for i in range(0, len(wave), block)]
            got = tower.stream_features(blocks, chunk_patches=2)
            np.testing.assert_allclose(got["posteriors"], whole["posteriors"], atol=1e-5)
            np.testing.assert_allclose(got["embedding"], whole["embedding"], atol=1e-4)


# -- 2. a path that does not exist among several ----------------------------------------------

@pytest.fixture
def takes(tmp_path) -> Path:
    folder = tmp_path / "takes"
    write(folder / "beep.wav", tone(1000, 1.0, SR), SR)
    write(folder / "hiss.wav", noise(1.5, SR, seed=5), SR)
    return folder


def test_tag_warns_of_each_missing_path_and_tags_the_rest(takes, tmp_path, tiny_clap_dir):  # noqa: F811
    gone = tmp_path / "missing.wav"
    result = run("tag", takes / "beep.wav", gone, takes / "hiss.wav", "-m", tiny_clap_dir, "--labels", LABELS,
                 "--json")
    assert result.exit_code == 0, result.output
    assert [Path(r["path"]).name for r in json.loads(result.stdout)["files"]] == ["beep.wav", "hiss.wav"]
    assert said(result.stderr).count(f"{gone}: no such file or folder") == 1
    assert "1 path not found" in said(result.stderr) and "error" not in result.stderr
    table = CliRunner().invoke(app, ["tag", str(takes), str(gone), "-m", str(tiny_clap_dir), "--labels", LABELS],
                               env=wide_terminal(takes))                # a folder beside it too
    assert table.exit_code == 0 and "beep.wav" in table.stdout and "hiss.wav" in table.stdout
    nothing = run("tag", gone, tmp_path / "gone.flac", "-m", tiny_clap_dir, "--labels", LABELS)
    assert nothing.exit_code == 1                         # nothing left to do
    assert said(nothing.stderr).count("no such file or folder") == 2 and "error:" in nothing.stderr
    alone = run("tag", gone, "-m", tiny_clap_dir, "--labels", LABELS)          # one path: its error, as before
    assert alone.exit_code == 1 and f"{gone}: no such file or folder" in said(alone.stderr)


def test_caption_warns_of_each_missing_path_and_captions_the_rest(takes, tmp_path, tiny_clap_dir):  # noqa: F811
    gone = tmp_path / "missing.wav"
    out = tmp_path / "blat.jsonl"
    args = ["caption", takes, gone, "--out", out, "--source", "model", "--model", tiny_clap_dir,
            "--labels", LABELS, "--threshold", "0"]
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows"] == 2 and report["missing"] == [str(gone)]
    assert said(result.stderr).count(f"{gone}: no such file or folder") == 1
    plain = run(*args)
    assert plain.exit_code == 0 and "captioned 2 of 2 files" in said(plain.stdout)     # the summary: stdout
    assert "1 path not found" in said(plain.stdout)
    nothing = run("caption", gone, tmp_path / "gone.flac", "--out", out)
    assert nothing.exit_code == 1 and said(nothing.stderr).count("no such file or folder") == 2


def test_audio_files_still_refuses_a_missing_path_unless_asked_to_collect_it(takes, tmp_path):
    from engine.audio import audio_files
    from engine.errors import InvalidQuery

    gone = tmp_path / "gone.wav"
    with pytest.raises(InvalidQuery, match="gone.wav: no such file or folder"):
        audio_files([takes, gone])
    missing: list[Path] = []
    assert [p.name for p in audio_files([gone, takes], missing=missing)] == ["beep.wav", "hiss.wav"]
    assert missing == [gone]


# -- 3. tag --min-score -----------------------------------------------------------------------

def test_tag_min_score_leaves_out_lower_tags_for_files_timelines_and_json(takes, tiny_clap_dir):  # noqa: F811
    beep = takes / "beep.wav"
    every = json.loads(run("tag", beep, "-m", tiny_clap_dir, "--labels", LABELS, "--json").stdout)["files"][0]["tags"]
    scores = [t["score"] for t in every]
    assert len(scores) == 3 and scores[0] > scores[1]
    cut = (scores[0] + scores[1]) / 2
    kept = json.loads(run("tag", beep, "-m", tiny_clap_dir, "--labels", LABELS, "--json",
                          "--min-score", cut).stdout)["files"][0]["tags"]
    assert kept == every[:1]
    none = run("tag", beep, "-m", tiny_clap_dir, "--labels", LABELS, "--min-score", 0.99)
    assert none.exit_code == 0 and "no tag scores 0.99 or more" in said(none.stdout)
    assert json.loads(run("tag", beep, "-m", tiny_clap_dir, "--labels", LABELS, "--json",
                          "--min-score", 0.99).stdout)["files"][0]["tags"] == []

    rows = json.loads(run("tag", takes, "-m", tiny_clap_dir, "--labels", LABELS, "--json",
                          "--min-score", cut).stdout)["files"]
    assert len(rows) == 2 and all(t["score"] >= cut for r in rows for t in r["tags"])
    assert [t["label"] for t in rows[0]["tags"]] == [every[0]["label"]]
    table = run("tag", takes, "-m", tiny_clap_dir, "--labels", LABELS, "--min-score", 0.99)
    assert table.exit_code == 0 and said(table.stdout).count("no tag scores 0.99 or more") == 2

    spans = json.loads(run("tag", beep, "-m", tiny_clap_dir, "--labels", LABELS, "--timeline", "--json",
                           "--min-score", cut).stdout)["segments"]
    assert spans and all(t["score"] >= cut for s in spans for t in s["tags"])
    low = run("tag", beep, "-m", tiny_clap_dir, "--labels", LABELS, "--timeline", "--min-score", 0.99)
    assert low.exit_code == 0 and "no tag scores 0.99 or more" in said(low.stdout)
    assert run("tag", beep, "-m", tiny_clap_dir, "--min-score", 1.5).exit_code == 2    # a score is 0–1


# -- 4. a folder as --labels-file -------------------------------------------------------------

def test_a_folder_given_as_labels_file_is_named_as_one(takes, tmp_path, tiny_clap_dir):  # noqa: F811
    from engine.errors import InvalidQuery
    from engine.vocabulary import load_labels_file

    with pytest.raises(InvalidQuery) as e:
        load_labels_file(tmp_path)
    assert str(e.value) == f"{tmp_path}: is a folder; --labels-file must name a text file"
    result = run("tag", takes / "beep.wav", "-m", tiny_clap_dir, "--labels-file", tmp_path)
    assert result.exit_code == 1
    assert f"{tmp_path}: is a folder; --labels-file must name a text file" in said(result.stderr)
    assert "Errno" not in result.stderr


# -- 5. what caption --index says it stored ---------------------------------------------------

def test_caption_index_counts_files_left_without_tags_apart(takes, tmp_path, tiny_clap_dir, monkeypatch):  # noqa: F811
    """A file no tag reached the threshold for has its earlier tags removed: it is not counted
    among the files tags were stored for, and the line says it was left with none."""
    from engine.catalog import File, Tag
    from indexer import build_index
    import trainer.caption_loop as caption_loop

    index = tmp_path / "idx"
    build_index([takes], index=index, model=str(tiny_clap_dir), workers=0, progress=False)
    args = ["caption", takes, "--out", tmp_path / "m.jsonl", "--index", index, "--source", "model",
            "--model", tiny_clap_dir, "--labels", LABELS, "--threshold", "0", "--top-k", "2"]
    first = run(*args)
    assert first.exit_code == 0, first.output
    assert "stored 4 tags and 6 captions for 2 files in the index" in said(first.stdout)

    real = caption_loop.ZeroShotTagger.tags
    monkeypatch.setattr(caption_loop.ZeroShotTagger, "tags",        # hiss.wav: nothing certain enough now
                        lambda self, path, *a: [] if Path(path).name == "hiss.wav" else real(self, path, *a))
    again = run(*args)
    assert again.exit_code == 0, again.output
    line = said(again.stdout)
    assert "stored 2 tags and 3 captions for 1 file in the index" in line
    assert "1 file got none (no tag reached --threshold): its earlier tags and captions removed" in line
    with catalog_session(index) as s:
        tagged = {Path(p).name for p in s.scalars(select(File.path).join(Tag, Tag.file_id == File.id))}
    assert tagged == {"beep.wav"}

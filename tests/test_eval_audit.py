"""`soundsift eval` audit (helper-53): what a researcher's data and a broken model do to the figures.

Fast: FakeModel-style CountingModel, a few short generated clips, no network.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import noise, tone, write
from engine.errors import InvalidDataset
from eval_fakes import CountingModel
from trainer.evaluation import metrics as M
from trainer.evaluation.cache import EmbeddingCache
from trainer.evaluation.datasets import load_classification
from trainer.evaluation.report import write_retrieval_report, write_zeroshot_report
from trainer.evaluation.runner import evaluate_zeroshot
from ui.cli import app

SR = 16000


# --------------------------------------------------------------------------- a diverged model
def test_nan_logits_are_never_a_hit_in_zero_shot():
    """A model whose weights went NaN (a diverged fine-tune) scored zero-shot top-1 = 1.0: every
    comparison with NaN is False, so the true class ranked 0. NaN ranks last (pessimistic)."""
    logits = np.full((4, 3), np.nan)
    got = M.zeroshot_from_logits(logits, [0, 1, 2, 0], ["a", "b", "c"])
    assert got["top1"] == 0.0 and got["top5"] == 1.0           # 3 classes: rank 3 is within 5
    assert M.class_ranks(logits, [0, 1, 2, 0]).tolist() == [3, 3, 3, 3]
    one = np.array([[np.nan, 0.2, 0.1],      # true class NaN: last
                    [0.9, np.nan, 0.1],      # another class NaN: counts against the true one
                    [0.1, 0.2, 0.9]])
    assert M.class_ranks(one, [0, 0, 2]).tolist() == [3, 2, 1]
    assert M.predictions(one, [0, 0, 2]).tolist()[0] != 0       # a NaN true class is not predicted


def test_nan_scores_rank_last_in_retrieval():
    """A relevant item scored NaN ranked first in the text→audio/audio→text ranks."""
    scores = np.array([[np.nan, 0.5, 0.9],
                       [0.1, np.nan, 0.2]])
    ranks = M.relevant_ranks(scores, [[0], [0]])
    assert [r.tolist() for r in ranks] == [[3], [3]]    # NaN relevant: after both others; NaN other: ahead
    audio = np.full((3, 4), np.nan)
    text = np.eye(3, 4)
    got = M.retrieval_metrics(audio, text, [0, 1, 2])
    assert got["t2a"]["R@1"] == 0.0 and got["a2t"]["R@1"] == 0.0
    got = M.label_t2a_metrics(audio, text, [0, 1, 2])
    assert got["R@1"] == 0.0


class NanAudioModel(CountingModel):
    def embed_audio(self, waveforms):
        return np.full((len(waveforms), self.dim), np.nan, dtype=np.float32)


def test_zeroshot_eval_of_a_nan_model_scores_zero_and_warns(tmp_path, caplog):
    d = tmp_path / "audio"
    write(d / "a.wav", tone(300, 0.5, SR), SR)
    write(d / "b.wav", noise(0.5, SR), SR)
    csv = tmp_path / "labels.csv"
    csv.write_text("audio,label\na.wav,tone\nb.wav,noise\n")
    with caplog.at_level("WARNING"):
        got = evaluate_zeroshot(csv, d, NanAudioModel(), use_cache=False, progress=False)
    assert got["top1"] == 0.0 and got["t2a"]["R@1"] == 0.0
    assert "not finite" in caplog.text and "a.wav" in caplog.text


# --------------------------------------------------------------------------- labels
def test_generic_labels_differing_in_case_are_one_class(tmp_path):
    """'Sine Tone' and 'sine tone' became two classes with the same prompt for a case-blind text
    tower, so pessimistic ties made every clip of both wrong. As retrieval's captions and tag's
    labels files: compared case-folded, the first spelling kept."""
    d = tmp_path / "audio"
    for n in ("a", "b", "c"):
        write(d / f"{n}.wav", tone(300, 0.3, SR), SR)
    csv = tmp_path / "labels.csv"
    csv.write_text("audio,label\na.wav,sine tone\nb.wav,Sine_Tone\nc.wav,noise\n")
    data = load_classification(csv, d)
    assert data.labels == ["noise", "sine tone"]
    assert data.targets == [1, 1, 0]


def test_numbered_classes_differing_only_in_case_are_refused(tmp_path):
    d = tmp_path / "audio"
    write(d / "1-1-A-0.wav", tone(300, 0.3, SR), SR)
    write(d / "1-2-A-1.wav", tone(600, 0.3, SR), SR)
    csv = tmp_path / "esc50.csv"
    csv.write_text("filename,fold,target,category\n1-1-A-0.wav,1,0,dog\n1-2-A-1.wav,1,1,Dog\n")
    with pytest.raises(InvalidDataset, match="share one label"):
        load_classification(csv, d)


# --------------------------------------------------------------------------- the dataset argument
def test_a_folder_given_as_the_dataset_is_named_as_a_folder(tmp_path):
    """`soundsift eval zeroshot byclass -a byclass` said 'no such file' of a folder that exists."""
    (tmp_path / "byclass" / "dog").mkdir(parents=True)
    res = CliRunner().invoke(app, ["eval", "zeroshot", str(tmp_path / "byclass"), "-a", str(tmp_path),
                                   "--no-cache"])
    assert res.exit_code != 0
    msg = " ".join(res.stderr.split())
    assert "no such file" not in msg and "is a folder" in msg and "audio, label" in msg


# --------------------------------------------------------------------------- file names not in UTF-8
needs_bytes_names = pytest.mark.skipif(sys.platform in ("darwin", "win32"),
                                       reason="the file system must accept non-UTF-8 names")


@needs_bytes_names
def test_cache_takes_a_path_that_is_not_utf8(tmp_path):
    """A folder named in Latin-1 (`--audio-dir $'caf\\xe9'`) ended in a UnicodeEncodeError
    traceback from SQLite."""
    ascii_file = write(tmp_path / "b.wav", tone(300, 0.3, SR), SR)
    folder = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9"))
    folder.mkdir()
    p = folder / "a.wav"
    p.write_bytes(ascii_file.read_bytes())
    with EmbeddingCache(tmp_path / "cache") as cache:
        h = cache.content_hash(p)
        assert h == cache.content_hash(p) and len(h) == 40
    with EmbeddingCache(tmp_path / "cache") as cache:                # ordinary paths still keyed by text
        assert cache.content_hash(ascii_file) == h
        assert cache._db.execute("SELECT typeof(path) FROM file_hashes WHERE path = ?",
                                 (str(ascii_file.resolve()),)).fetchone() == ("text",)


def test_reports_take_a_source_name_that_is_not_utf8(tmp_path):
    """`soundsift eval retrieval $'simple\\xe9.csv' --report rep` crashed writing report.md."""
    source = os.fsdecode(b"data/simpl\xe9.csv")
    row = {k: 0.5 for k in ("R@1", "R@5", "R@10", "mAP@10", "median_rank", "mean_rank")}
    result = {"t2a": row, "a2t": row, "n_audio": 2, "n_captions": 2, "model": os.fsdecode(b"m\xe9")}
    md = write_retrieval_report(tmp_path / "r", result, {"text → audio": np.array([0.5, 1.0])}, source=source)
    text = md.read_text(encoding="utf-8")
    assert "simpl" in text and ".csv" in text
    zs = {"top1": 0.5, "top5": 1.0, "top10": 1.0, "mAP@10": 0.75, "per_class": {"a": 1.0, "b": 0.0}, "n": 2,
          "model": "m"}
    md = write_zeroshot_report(tmp_path / "z", zs, np.eye(2, dtype=int), ["a", "b"], "{label}", source=source)
    assert "simpl" in md.read_text(encoding="utf-8")


def test_audio_under_a_name_that_is_not_utf8_decodes(tmp_path):
    """`soundsift eval … -a $'caf\\xe9' --no-cache` said "not readable as audio ('utf-8' codec can't
    encode …)": soundfile encodes a str path strictly, and Python holds such a name with surrogate
    escapes; engine.audio.open_sound hands it the bytes."""
    import soundfile as sf

    from engine.audio import audio_files, decode

    folder = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9")
    os.makedirs(folder)
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.float32)
    sf.write(os.fsencode(folder) + b"/t\xf6ne.wav", wave, 8000, format="WAV")
    (found,) = audio_files([folder])
    got = decode(str(found), 8000)
    assert got.shape == (8000,) and np.allclose(got, wave, atol=1e-4)

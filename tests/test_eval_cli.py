"""`soundsift eval …` end to end on the tiny random CLAP, checked against an independent computation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import chirp, noise, tone, write
from engine.audio import decode
from engine.models import load_model
from test_eval_metrics import brute_metrics
from ui.cli import app

SR = 22050
RETRIEVAL_KEYS = {"R@1", "R@5", "R@10", "mAP@10", "median_rank", "mean_rank"}


@pytest.fixture(scope="module")
def clotho(tmp_path_factory):
    root = tmp_path_factory.mktemp("clotho")
    audio = root / "audio"
    write(audio / "hum.wav", tone(220, 1.0, SR), SR)
    write(audio / "beep.wav", tone(3000, 0.6, SR), SR)
    write(audio / "hiss.flac", noise(0.8, SR, seed=4), SR)
    write(audio / "sweep.wav", chirp(100, 8000, 1.2, SR), SR)
    csv = root / "clotho_captions_evaluation.csv"
    csv.write_text(
        "file_name,caption_1,caption_2\n"
        "hum.wav,a low hum,low bass tone\n"
        "beep.wav,a high beep,high pitch sine\n"
        "hiss.flac,white noise,loud hiss of wind\n"
        "sweep.wav,a synth sweep,a tone rising in pitch\n")
    return csv, audio


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


def test_retrieval_json_matches_independent_computation(clotho, tiny_clap_dir, tmp_path):
    csv, audio = clotho
    res = run("eval", "retrieval", str(csv), "--audio-dir", str(audio), "--model", str(tiny_clap_dir),
              "--json", "--cache-dir", str(tmp_path / "cache"), "--batch-size", "3")
    assert res.exit_code == 0, res.stderr
    got = json.loads(res.stdout)
    assert set(got) == {"t2a", "a2t", "n_audio", "n_captions", "model"}
    assert got["n_audio"] == 4 and got["n_captions"] == 8 and got["model"] == str(tiny_clap_dir)

    model = load_model(tiny_clap_dir)                  # independent: one clip at a time
    names = ["hum.wav", "beep.wav", "hiss.flac", "sweep.wav"]
    a = np.concatenate([model.embed_audio([decode(audio / n, model.sample_rate)]) for n in names])
    captions = ["a low hum", "low bass tone", "a high beep", "high pitch sine", "white noise",
                "loud hiss of wind", "a synth sweep", "a tone rising in pitch"]
    t = model.embed_text(captions)
    expected = brute_metrics(a.astype(np.float64) @ t.astype(np.float64).T, [0, 0, 1, 1, 2, 2, 3, 3])
    for direction in ("t2a", "a2t"):
        assert set(got[direction]) == RETRIEVAL_KEYS
        for key in RETRIEVAL_KEYS:
            assert got[direction][key] == pytest.approx(expected[direction][key], abs=1e-6), (direction, key)
        for key in ("R@1", "R@5", "R@10", "mAP@10"):
            assert 0.0 <= got[direction][key] <= 1.0

    again = run("eval", "retrieval", str(csv), "--audio-dir", str(audio), "--model", str(tiny_clap_dir),
                "--json", "--cache-dir", str(tmp_path / "cache"))
    assert again.exit_code == 0 and json.loads(again.stdout) == got   # from the cache, same figures


def test_zeroshot_json_and_report(clotho, tiny_clap_dir, tmp_path):
    _, audio = clotho
    csv = tmp_path / "esc50.csv"
    csv.write_text("filename,fold,target,category\nhum.wav,1,0,low_hum\nbeep.wav,1,1,beep\n"
                   "hiss.flac,2,2,white_noise\nsweep.wav,2,3,synth_sweep\n")
    report = tmp_path / "report"
    res = run("eval", "zeroshot", str(csv), "--audio-dir", str(audio), "--model", str(tiny_clap_dir),
              "--json", "--no-cache", "--template", "the sound of {label}", "--report", str(report))
    assert res.exit_code == 0, res.stderr
    got = json.loads(res.stdout)
    assert set(got) == {"top1", "top5", "top10", "mAP@10", "per_class", "per_fold", "n", "model", "t2a",
                        "t2a_queries"}
    assert got["t2a_queries"] == 4 and set(got["t2a"]) == RETRIEVAL_KEYS
    assert got["t2a"]["R@5"] == 1.0 and 1 <= got["t2a"]["mean_rank"] <= 4   # 4 clips: always within 5
    assert got["n"] == 4 and set(got["per_class"]) == {"low hum", "beep", "white noise", "synth sweep"}
    assert got["top5"] == 1.0                                  # four classes: always within 5
    assert got["top1"] == pytest.approx(np.mean(list(got["per_class"].values())))
    assert {k: v["n"] for k, v in got["per_fold"].items()} == {"1": 2, "2": 2}
    assert (report / "report.md").is_file() and (report / "confusion_matrix.png").is_file()


def test_missing_audio_row_is_a_clear_cli_error(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text("file_name,caption_1\nnot_there.wav,silence\n")
    res = run("eval", "retrieval", str(csv), "--audio-dir", str(tmp_path), "--json", "--no-cache")
    assert res.exit_code == 1 and res.stdout == ""
    message = " ".join(res.stderr.split())          # rich wraps long lines
    assert "c.csv: line 2: audio file 'not_there.wav' not found" in message


def test_template_without_placeholder_is_rejected(clotho, tmp_path):
    _, audio = clotho
    csv = tmp_path / "g.csv"
    csv.write_text("audio,label\nhum.wav,hum\n")
    res = run("eval", "zeroshot", str(csv), "--audio-dir", str(audio), "--template", "a sound", "--no-cache")
    assert res.exit_code == 1 and "no {label} placeholder" in " ".join(res.stderr.split())
    res = run("eval", "zeroshot", str(csv), "--audio-dir", str(audio), "--query-template", "x", "--no-cache")
    assert res.exit_code == 1 and "template 'x' has no {label} placeholder" in " ".join(res.stderr.split())


def test_help():
    for args in (["eval", "--help"], ["eval", "retrieval", "--help"], ["eval", "zeroshot", "--help"]):
        res = run(*args)
        assert res.exit_code == 0 and "Usage" in res.stdout

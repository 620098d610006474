"""Evaluation reports: Markdown plus valid PNG plots, from the runner functions."""
from __future__ import annotations

import re

import pytest
from PIL import Image

from conftest import noise, tone, write
from eval_fakes import CountingModel
from trainer.evaluation.runner import evaluate_retrieval, evaluate_zeroshot

SR = 16000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def linked_images(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


@pytest.fixture
def library(tmp_path):
    d = tmp_path / "audio"
    freqs = {"a.wav": 300, "b.wav": 1200, "c.wav": 4000}
    for name, f in freqs.items():
        write(d / name, tone(f, 0.5, SR), SR)
    write(d / "d.wav", noise(0.5, SR, seed=2), SR)
    return d


def test_retrieval_report(library, tmp_path):
    csv = tmp_path / "captions.csv"
    csv.write_text("audio,caption\na.wav,low hum\nb.wav,mid tone\nc.wav,high beep\nd.wav,white noise\n"
                   "a.wav,a quiet hum\n")
    out = tmp_path / "report"
    result = evaluate_retrieval(csv, library, CountingModel(), use_cache=False, progress=False,
                                report_dir=out)
    assert result["n_audio"] == 4 and result["n_captions"] == 5 and result["model"] == "fake:fake-v1"
    md = (out / "report.md").read_text()
    assert md.startswith("# Retrieval evaluation")
    assert "| text → audio |" in md and "| audio → text |" in md
    assert f"| {100 * result['t2a']['R@1']:.2f} % |" in md
    assert linked_images(md) == ["recall_at_k.png"]
    assert_png(out / "recall_at_k.png")


def test_zeroshot_report_with_folds(library, tmp_path):
    csv = tmp_path / "esc.csv"
    csv.write_text("filename,fold,target,category\na.wav,1,0,low_hum\nb.wav,1,1,mid_tone\n"
                   "c.wav,2,2,high_beep\nd.wav,2,3,white_noise\n")
    out = tmp_path / "zs"
    result = evaluate_zeroshot(csv, library, CountingModel(), use_cache=False, progress=False,
                               report_dir=out)
    assert set(result["per_class"]) == {"low hum", "mid tone", "high beep", "white noise"}
    assert set(result["per_fold"]) == {"1", "2"}
    md = (out / "report.md").read_text()
    assert md.startswith("# Zero-shot classification")
    assert "## Per fold" in md and "| white noise |" in md and "This is a sound of {label}." in md
    assert "each of the 4 classes queries every clip as `{label}`" in md
    assert f"| {100 * result['t2a']['R@1']:.2f} % |" in md
    assert set(linked_images(md)) == {"per_class_accuracy.png", "confusion_matrix.png"}
    for name in linked_images(md):
        assert_png(out / name)

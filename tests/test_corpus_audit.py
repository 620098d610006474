"""`soundsift corpus audit`: a group whose own label the model does not hear comes first."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from engine.errors import InvalidDataset
from engine.models import load_model
from tests.conftest import noise, tone
from trainer.corpus.audit import audit_manifest, format_report
from ui.cli import app

SR = 44100


def _manifest(tmp_path: Path) -> Path:
    """Noise and tones labelled truly by one source, and noise labelled "speech" by another."""
    rows = []
    for k in range(3):
        for name, label, source, wave in [
                (f"noise{k}.wav", "white noise", "synth", noise(2.0, SR, seed=k)),
                (f"tone{k}.wav", "sine wave", "synth", tone(330 + 110 * k, 2.0, SR, amp=0.3)),
                (f"bad{k}.wav", "speech", "mislabelled", noise(2.0, SR, seed=10 + k))]:
            sf.write(str(tmp_path / name), wave.astype(np.float32), SR)
            rows.append({"audio": name, "tags": [label], "source": source})
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def base():
    return load_model("soundsift-base")


def test_audit_puts_the_mislabelled_group_first(tmp_path, base):
    report = audit_manifest(_manifest(tmp_path), base, progress=False)
    assert (report.clips, report.labels, len(report.groups)) == (9, 3, 3)
    worst = report.groups[0]
    assert (worst.source, worst.label, worst.clips, worst.top1) == ("mislabelled", "speech", 3, 0.0)
    assert worst.median_rank > 1 and worst.heard_as[0][0] == "white noise"
    assert all(p.endswith(".wav") and "bad" in p for p in worst.examples)
    assert {(g.label, g.median_rank, g.top1) for g in report.groups[1:]} == {("white noise", 1.0, 1.0),
                                                                             ("sine wave", 1.0, 1.0)}
    assert "mislabelled | speech | white noise (3)" in format_report(report)[2]
    assert len(audit_manifest(tmp_path / "train.jsonl", base, min_clips=4, progress=False).groups) == 0


def test_audit_names_the_missing_file_and_goes_on_past_an_unreadable_one(tmp_path, base):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"audio": "gone.wav", "tags": ["dog"]}) + "\n")
    with pytest.raises(InvalidDataset, match="gone.wav"):
        audit_manifest(path, base, progress=False)
    manifest = _manifest(tmp_path)
    (tmp_path / "broken.wav").write_text("not audio")
    with manifest.open("a") as f:
        f.write(json.dumps({"audio": "broken.wav", "tags": ["dog"], "source": "x"}) + "\n")
    report = audit_manifest(manifest, base, progress=False)
    assert report.clips == 9 and len(report.skipped) == 1 and report.skipped[0]["path"].endswith("broken.wav")
    assert report.groups[0].label == "speech"
    assert format_report(report)[-1].startswith("left out (unreadable): ") and "broken.wav" in format_report(report)[-1]


def test_cli_corpus_audit_json(tmp_path):
    result = CliRunner().invoke(app, ["corpus", "audit", str(_manifest(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["groups"][0]["source"] == "mislabelled" and report["model"] == "soundsift-base"


def test_cli_corpus_audit_bars_only_when_asked_off_a_terminal(tmp_path):
    manifest = str(_manifest(tmp_path))
    quiet = CliRunner().invoke(app, ["corpus", "audit", manifest])       # stderr is not a terminal
    assert quiet.exit_code == 0, quiet.output
    assert "embedding audio" not in quiet.stderr and "mislabelled" in quiet.stdout
    shown = CliRunner().invoke(app, ["corpus", "audit", manifest, "--progress"])
    assert shown.exit_code == 0 and "embedding audio" in shown.stderr


def test_extra_labels_compete_so_a_small_manifest_still_shows_a_wrong_label(tmp_path, base):
    rows = []
    for k in range(2):
        sf.write(str(tmp_path / f"n{k}.wav"), noise(2.0, SR, seed=k).astype(np.float32), SR)
        sf.write(str(tmp_path / f"t{k}.wav"), tone(440 + 220 * k, 2.0, SR, amp=0.3).astype(np.float32), SR)
        rows += [{"audio": f"n{k}.wav", "tags": ["white noise"]}, {"audio": f"t{k}.wav", "tags": ["dog barking"]}]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    alone = {g.label: g.median_rank for g in audit_manifest(path, base, progress=False).groups}
    assert alone == {"dog barking": 1.0, "white noise": 1.0}        # two labels: the wrong one still wins
    report = audit_manifest(path, base, extra_labels=["Sine wave", "White noise", "Bark"], progress=False)
    assert (report.labels, report.extra_labels) == (2, 2)            # "White noise" is the manifest's own
    worst = report.groups[0]
    assert worst.label == "dog barking" and worst.median_rank > 1 and worst.heard_as[0][0] == "Sine wave"

"""`soundsift corpus labels`: a corpus manifest → the audio,label CSV `soundsift eval zeroshot` reads."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.errors import InvalidDataset
from tests.conftest import tone, write
from trainer.corpus.eval_labels import label_rows, write_label_csv
from trainer.evaluation.datasets import load_classification
from ui.cli import app

SR = 8000
#: (audio as the manifest writes it, tags, label field)
ROWS = [
    ("audio/synth/beep-1.flac", ["beep", "tone"], "beep"),
    ("audio/gcompris/door, closing.flac", ["door closing"], "door closing"),
    ("audio/gcompris/gun-reload.flac", ["gun_reload"], "gun reload"),
    ("audio/speech/speech-2.flac", [], "speech"),                  # no tags: the label field
    ("audio/synth/beep-2.flac", ["beep"], "beep"),
]


@pytest.fixture
def manifest(tmp_path) -> Path:
    corpus = tmp_path / "corpus"
    lines = []
    for i, (audio, tags, label) in enumerate(ROWS):
        write(corpus / audio, tone(300 + 100 * i, 0.2, SR), SR)
        lines.append(json.dumps({"audio": audio, "captions": [label], "tags": tags, "label": label,
                                 "source": "test"}))
    (corpus / "val.jsonl").write_text("\n".join(lines) + "\n")
    return corpus / "val.jsonl"


def test_written_csv_round_trips_through_the_zeroshot_reader(manifest, tmp_path):
    out = tmp_path / "runs" / "val_labels.csv"        # elsewhere than the manifest: paths stay relative to it
    result = write_label_csv(manifest, out, exclude=["gun reload"])
    assert result.excluded == 1 and result.unmatched == []
    with out.open(newline="", encoding="utf-8") as f:
        written = list(csv.reader(f))
    assert written == [["audio", "label"],
                       ["audio/synth/beep-1.flac", "beep"],
                       ["audio/gcompris/door, closing.flac", "door closing"],
                       ["audio/speech/speech-2.flac", "speech"],
                       ["audio/synth/beep-2.flac", "beep"]]
    dataset = load_classification(out, manifest.parent)      # -a is the manifest's folder
    assert dataset.format == "generic" and dataset.labels == ["beep", "door closing", "speech"]
    assert dataset.audio_paths == [manifest.parent / row[0] for row in written[1:]]
    assert [dataset.labels[t] for t in dataset.targets] == ["beep", "door closing", "speech", "beep"]


def test_exclusion_compares_labels_as_the_evaluator_does(manifest):
    kept = label_rows(manifest, exclude=["gun reload", "beep", "not a label"])
    assert [label for _, label in kept.rows] == ["door closing", "speech"]
    assert kept.excluded == 3 and kept.unmatched == ["not a label"]
    everything = label_rows(manifest)
    assert ("audio/gcompris/gun-reload.flac", "gun_reload") in everything.rows
    assert everything.labels == ["beep", "door closing", "gun reload", "speech"]


def test_cli_writes_the_csv_and_summarises(manifest, tmp_path):
    out = tmp_path / "labels.csv"
    result = CliRunner().invoke(app, ["corpus", "labels", str(manifest), "--out", str(out),
                                      "--exclude-labels", "gun reload, speech", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {"out": str(out), "rows": 3, "labels": 2, "excluded_rows": 2,
                       "unmatched_exclude_labels": [], "audio_dir": str(manifest.parent)}
    assert load_classification(out, manifest.parent).labels == ["beep", "door closing"]


@pytest.mark.parametrize("row,needle", [
    ({"audio": "audio/synth/beep-1.flac", "captions": ["x"]}, r"val.jsonl:2: audio/synth/beep-1.flac has neither tags nor a label"),
    ({"audio": "audio/nowhere.flac", "tags": ["x"]}, r"val.jsonl:2: audio file 'audio/nowhere.flac' not found in"),
    ({"tags": ["x"]}, r"val.jsonl:2: no audio path"),
])
def test_bad_rows_are_named_by_line(manifest, tmp_path, row, needle):
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join([lines[0], json.dumps(row), *lines[1:]]) + "\n")
    with pytest.raises(InvalidDataset, match=needle):
        write_label_csv(manifest, tmp_path / "labels.csv")
    assert not (tmp_path / "labels.csv").exists()


def test_cli_error_when_everything_is_excluded(manifest, tmp_path):
    result = CliRunner().invoke(app, ["corpus", "labels", str(manifest), "--out", str(tmp_path / "l.csv"),
                                      "--exclude-labels", "beep,door closing,gun reload,speech"])
    assert result.exit_code == 1
    assert f"{manifest}: no items left to write after excluding 5" in " ".join(result.output.split())
    assert not (tmp_path / "l.csv").exists()

"""Session 42 (h219): a trained model's record of its data (``extra.trained.data`` in its
config.json) holds normalised paths, and data inside the soundsift checkout (the project's
corpus/) relative to it: soundsift-base retrained and copied into engine/models/weights/ names no
machine's folder in a committed file, and its config.json (which its fingerprint hashes) is the
same wherever it was trained. ``soundsift eval``'s warning still finds such a record's data."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import trainer.trained_on as trained_on
from trainer.cached_train import CachedTrainConfig, trained_data
from trainer.config import DatasetSpec
from trainer.trained_on import data_record, file_sha256, trained_on_this


def checkout(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A soundsift checkout at ``root`` (taken as the repository) with the bundled recipe's
    layout: a cached-features config in trainer/configs/ naming ../../corpus/ manifests."""
    (root / "trainer" / "configs").mkdir(parents=True)
    (root / "corpus").mkdir()
    for name in ("train.jsonl", "val.jsonl"):
        (root / "corpus" / name).write_text(json.dumps({"audio": "a.wav", "caption": name}) + "\n")
    (root / "trainer" / "configs" / "base.json").write_text(json.dumps({
        "trainer": "cached-features", "train_manifest": "../../corpus/train.jsonl",
        "val_manifest": "../../corpus/val.jsonl"}))
    monkeypatch.setattr(trained_on, "REPO_ROOT", root.resolve(), raising=False)
    return root


def test_the_bundled_recipes_record_names_no_machine_folder(tmp_path, monkeypatch):
    """`soundsift train trainer/configs/soundsift_base.json` (final_with_val) recorded
    trainer/configs/../../corpus/val.jsonl as the path and /home/…/corpus/val.jsonl resolved."""
    root = checkout(tmp_path / "soundsift", monkeypatch)
    monkeypatch.chdir(root)
    for given in ("trainer/configs/base.json", str(root / "trainer" / "configs" / "base.json")):
        record = trained_data(CachedTrainConfig.from_file(given), with_val=True)
        assert [(e["path"], e["resolved"]) for e in record] == [
            ("corpus/train.jsonl", "corpus/train.jsonl"), ("corpus/val.jsonl", "corpus/val.jsonl")], given
        assert record[1]["fingerprint"] == file_sha256(root / "corpus" / "val.jsonl")
        assert str(tmp_path) not in json.dumps(record)


def test_two_checkouts_record_the_same(tmp_path, monkeypatch):
    """The same corpus trained on in two folders: the same record (so the same config.json)."""
    records = []
    for where in ("a", "b"):
        root = checkout(tmp_path / where / "soundsift", monkeypatch)
        monkeypatch.chdir(root)
        records.append(data_record([DatasetSpec("manifest", "trainer/configs/../../corpus/train.jsonl"),
                                    DatasetSpec("clotho", str(root / "corpus" / "val.jsonl"),
                                                audio_dir=str(root / "corpus"))]))
    assert records[0] == records[1]
    assert records[0][1]["audio_dir"] == "corpus"


def test_data_outside_the_checkout_stays_absolute_and_normalised(tmp_path, monkeypatch):
    checkout(tmp_path / "soundsift", monkeypatch)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "sounds.jsonl").write_text("{}\n")
    entry = data_record([DatasetSpec("manifest", str(mine / "x" / ".." / "sounds.jsonl"))])[0]
    assert (entry["path"], entry["resolved"]) == (str(mine / "sounds.jsonl"), str((mine / "sounds.jsonl").resolve()))


def test_eval_finds_a_record_relative_to_the_checkout(tmp_path, monkeypatch):
    """By fingerprint as before, and by path (the manifest edited since) through the relative record."""
    root = checkout(tmp_path / "soundsift", monkeypatch)
    val = root / "corpus" / "val.jsonl"
    record = {"trainer": "cached-features",
              "data": [{"format": "manifest", "path": "corpus/val.jsonl", "resolved": "corpus/val.jsonl",
                        "fingerprint": file_sha256(val)}]}
    model = SimpleNamespace(name="soundsift-base", config=SimpleNamespace(extra={"trained": record}))
    assert trained_on_this(model, val).matched_by == "fingerprint"
    val.write_text(val.read_text() + json.dumps({"audio": "b.wav", "caption": "more"}) + "\n")
    found = trained_on_this(model, val)
    assert found is not None and found.matched_by == "path"
    assert found.message == "soundsift-base trained on corpus/val.jsonl (this file, changed since): these figures " \
                            "are fit, not validation"
    other = tmp_path / "val.jsonl"                      # another file of that name, outside the checkout
    other.write_text("{}\n")
    assert trained_on_this(model, other) is None

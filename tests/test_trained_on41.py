"""A trained model says what it trained on, `soundsift eval` warns on a model's own training data,
and a fine-tune's log holds its start's validation at step 0 (session 41)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from tests.eval_fakes import CountingModel
from tests.test_train_loop import TinyClap, datasets, kinds_items, make_cfg
from tests.test_trainer_dogfood40 import BASE_RECORD, RecordedClap
from trainer.config import DatasetSpec, config_from_dict
from trainer.evaluation.runner import evaluate_retrieval, evaluate_zeroshot
from trainer.loop import fit
from trainer.train import run_training
from ui.cli import app

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "trainer" / "configs" / "toy.json"


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    return kinds_items(tmp_path_factory.mktemp("sounds"), 2)


def write_manifest(path: Path, items) -> Path:
    path.write_text("".join(json.dumps({"audio": it.audio, "caption": it.captions[0], "tags": it.tags}) + "\n"
                            for it in items))
    return path


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def trained_record(out: Path) -> dict:
    return json.loads((out / "model" / "config.json").read_text())["extra"]["trained"]


# --------------------------------------------------------------------------- 1. the record of the data

def test_a_fine_tune_records_its_data_and_keeps_its_starts(tmp_path, items, monkeypatch):
    """config.json said steps, seed, batch and clip count, but not which data: a model evaluated
    on the manifest it fine-tuned on could not be told from one validated."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfgs").mkdir()
    manifest = write_manifest(tmp_path / "cfgs" / "mine.jsonl", items)
    cfg = {"model": {"init": "soundsift-base"}, "data": {"train": [{"format": "manifest", "path": "mine.jsonl"}]},
           "steps": 1, "batch_size": 4, "progress": False, "out_dir": "run1"}
    run_training(config_from_dict(cfg, "cfgs"), model=RecordedClap())
    first = trained_record(tmp_path / "run1")
    assert first["data"] == [{"format": "manifest", "path": "cfgs/mine.jsonl", "resolved": str(manifest.resolve()),
                              "fingerprint": sha256(manifest)}]
    assert first["train_items"] == len(items) and first["started_from"] == BASE_RECORD   # the start keeps its own

    # a fine-tune of that model on another manifest: both sets are in the chain
    other = write_manifest(tmp_path / "cfgs" / "more.jsonl", items[:6])
    cfg2 = {**cfg, "data": {"train": [{"format": "manifest", "path": "more.jsonl"}]}, "out_dir": "run2"}
    run_training(config_from_dict(cfg2, "cfgs"), model=RecordedClap(extra={"trained": first}))
    second = trained_record(tmp_path / "run2")
    assert second["data"][0]["fingerprint"] == sha256(other)
    assert second["started_from"] == first and second["started_from"]["started_from"] == BASE_RECORD


def test_folders_and_shards_are_fingerprinted_by_names_and_sizes(tmp_path):
    from trainer.trained_on import data_record
    lib = tmp_path / "lib"
    for name, size in (("dog/a.wav", 10), ("cat/b.wav", 20)):
        (lib / name).parent.mkdir(parents=True, exist_ok=True)
        (lib / name).write_bytes(b"x" * size)
    before = data_record([DatasetSpec("folders", str(lib))])[0]
    assert before["fingerprint"].startswith("files-sha256:") and before["resolved"] == str(lib.resolve())
    (lib / "dog" / "a.wav").write_bytes(b"y" * 10)                  # same names and sizes: the same set
    assert data_record([DatasetSpec("folders", str(lib))])[0]["fingerprint"] == before["fingerprint"]
    (lib / "dog" / "a.wav").write_bytes(b"y" * 11)
    assert data_record([DatasetSpec("folders", str(lib))])[0]["fingerprint"] != before["fingerprint"]


# --------------------------------------------------------------------------- 2. eval warns

class RecordedModel(CountingModel):
    """A loaded model whose module's config carries a training record, as SoundsiftClapModel's."""

    def __init__(self, trained: dict | None, name: str = "runs/mine/model") -> None:
        super().__init__(window_seconds=30.0)
        self.name = name
        self.module = SimpleNamespace(config=SimpleNamespace(extra={"trained": trained} if trained else {}))


def eval_manifest(tmp_path: Path) -> Path:
    from tests.conftest import noise, tone, write
    rows = []
    for i, (label, audio) in enumerate((("hum", tone(200, 1.0, 16000)), ("whistle", tone(3000, 1.0, 16000)),
                                        ("hiss", noise(1.0, 16000, seed=1)))):
        write(tmp_path / f"{i}.wav", audio, 16000)
        rows.append({"audio": f"{i}.wav", "caption": f"a {label}", "tags": [label]})
    path = tmp_path / "my_sounds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def record_of(path: Path, given: str, **kw) -> dict:
    return {"trainer": "loop", "steps": 3, **kw,
            "data": [{"format": "manifest", "path": given, "resolved": str(path.resolve()),
                      "fingerprint": sha256(path)}]}


def test_eval_warns_on_the_models_own_training_data(tmp_path, caplog):
    manifest = eval_manifest(tmp_path)
    model = RecordedModel(record_of(manifest, "my_sounds.jsonl", started_from=BASE_RECORD))
    result = evaluate_retrieval(manifest, model=model, use_cache=False, progress=False, report_dir=tmp_path / "r")
    said = "runs/mine/model trained on my_sounds.jsonl: these figures are fit, not validation"
    assert f"- **warning**: {said}" in (tmp_path / "r" / "report.md").read_text()      # a report read alone says it
    assert result["warning"] == said and [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [said]
    assert result["trained_on_this"] == {"model": "runs/mine/model", "trained_on": "my_sounds.jsonl",
                                         "matched_by": "fingerprint", "generation": 0, "ancestor": None}
    # an audio,label CSV is a training manifest too (labels read as tags)
    labels = tmp_path / "labels.csv"
    labels.write_text("audio,label\n0.wav,hum\n1.wav,whistle\n2.wav,hiss\n")
    zeroshot = evaluate_zeroshot(labels, model=RecordedModel(record_of(labels, "labels.csv")), use_cache=False,
                                 progress=False)
    assert zeroshot["warning"] == said.replace("my_sounds.jsonl", "labels.csv")


def test_a_copy_is_found_by_content_an_edited_file_by_path_and_a_start_by_the_chain(tmp_path):
    from trainer.trained_on import trained_on_this
    manifest = eval_manifest(tmp_path)
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(manifest.read_bytes())
    assert trained_on_this(RecordedModel(record_of(manifest, "a.jsonl")), copy).matched_by == "fingerprint"
    edited = record_of(manifest, "a.jsonl")
    edited["data"][0]["fingerprint"] = "sha256:0"                   # the manifest changed since training
    found = trained_on_this(RecordedModel(edited), manifest)
    assert found.matched_by == "path" and "trained on a.jsonl (this file, changed since): these" in found.message
    # a fine-tune of a model that trained on it: the start's record names the data
    child = {"trainer": "loop", "init": "runs/mine/model", "data": [],
             "started_from": record_of(manifest, "my_sounds.jsonl")}
    found = trained_on_this(RecordedModel(child, name="runs/blat/model"), manifest)
    assert (found.generation, found.message) == (
        1, "runs/blat/model started from runs/mine/model, which trained on my_sounds.jsonl: "
           "these figures are fit, not validation")


def test_no_warning_for_other_data_or_a_model_recording_none(tmp_path, caplog):
    manifest = eval_manifest(tmp_path)
    other = tmp_path / "other.jsonl"
    other.write_text("{}\n")
    for model in (RecordedModel(record_of(other, "other.jsonl")), RecordedModel(BASE_RECORD),
                  RecordedModel(None), CountingModel(window_seconds=30.0)):
        result = evaluate_retrieval(manifest, model=model, use_cache=False, progress=False)
        assert "warning" not in result and "trained_on_this" not in result
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


@pytest.mark.usefixtures("minilm_memo")
def test_the_cli_warns_on_the_training_manifest_of_a_trained_model(tmp_path):
    """End to end: `soundsift train` the toy config, then `soundsift eval retrieval` of its
    training manifest warns in one line and in --json; of its validation manifest it does not."""
    out = tmp_path / "toy"
    trained = CliRunner().invoke(app, ["train", str(TOY), "--out", str(out), "--steps", "1", "--no-progress"])
    assert trained.exit_code == 0, trained.output
    train = out / "toy-data" / "train.jsonl"
    record = trained_record(out)["data"]
    assert record == [{"format": "manifest", "path": str(train), "resolved": str(train.resolve()),
                       "fingerprint": sha256(train)}]
    cache = ["--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    result = CliRunner().invoke(app, ["eval", "retrieval", str(train), "--model", str(out / "model"), "--json", *cache])
    assert result.exit_code == 0, result.output
    said = f"{out / 'model'} trained on {train}: these figures are fit, not validation"
    assert [line for line in result.stderr.splitlines() if "WARNING" in line] == [
        f"WARNING trainer.evaluation.runner: {said}"]
    assert json.loads(result.stdout)["warning"] == said
    val = CliRunner().invoke(app, ["eval", "retrieval", str(out / "toy-data" / "val.jsonl"), "--model",
                                   str(out / "model"), "--json", *cache])
    assert val.exit_code == 0 and "warning" not in json.loads(val.stdout) and "fit, not" not in val.stderr


# --------------------------------------------------------------------------- 3. validation at step 0

def log_events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_a_fine_tune_validates_at_step_0_once(tmp_path, items):
    """A fine-tune's log began with step 1: its gain over its start needed another evaluation."""
    train, val = datasets(items)
    cfg = make_cfg(tmp_path, steps=3, checkpoint_every=1, model={"init": "soundsift-base"})
    torch.manual_seed(0)
    result = fit(RecordedClap(), train, cfg, val_set=val, max_steps=2)
    fit(RecordedClap(), train, cfg, val_set=val, resume=True)       # --resume does not validate step 0 again
    events = log_events(Path(cfg.out_dir))
    validations = [e["step"] for e in events if e["event"] == "validation"]
    assert validations == [0, 3]
    assert [e["event"] for e in events][:3] == ["start", "validation", "step"]      # before the first update
    assert result.validation is not None and result.validated_at == 0
    # the same run without it trains to the same losses
    plain = make_cfg(tmp_path / "plain", steps=3, model={"init": "soundsift-base"}, validate_at_start=False)
    torch.manual_seed(0)                                            # the same start
    assert fit(RecordedClap(), train, plain, val_set=val, max_steps=2).losses == result.losses
    assert not [e for e in log_events(Path(plain.out_dir)) if e["event"] == "validation"]


def test_validation_at_start_is_off_for_a_fresh_model_unless_asked(tmp_path, items):
    train, val = datasets(items)
    fresh = make_cfg(tmp_path / "a", steps=1)
    fit(TinyClap(), train, fresh, val_set=val)
    assert [e["step"] for e in log_events(Path(fresh.out_dir)) if e["event"] == "validation"] == [1]
    asked = make_cfg(tmp_path / "b", steps=1, validate_at_start=True)
    fit(TinyClap(), train, asked, val_set=val)
    assert [e["step"] for e in log_events(Path(asked.out_dir)) if e["event"] == "validation"] == [0, 1]

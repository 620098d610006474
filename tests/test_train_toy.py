"""`soundsift train` on the example toy config, and training configs as data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine.errors import InvalidConfig, InvalidOutput
from tests.conftest import tone
from trainer.config import load_config
from ui.cli import app

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "trainer" / "configs" / "toy.json"

# the model each `train` builds encodes the 521 class names with MiniLM: once per run (conftest)
pytestmark = pytest.mark.usefixtures("minilm_memo")


def test_toy_config_trains_into_a_model_folder_load_model_reads(tmp_path):
    out = tmp_path / "toy"
    result = CliRunner().invoke(app, ["train", str(TOY), "--out", str(out), "--steps", "4", "--json",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 4 and summary["model_dir"] == str(out / "model")
    assert summary["validation"]["n"] == 14 and summary["validation"]["zeroshot"]["classes"] == 7
    assert (out / "toy-data" / "train.jsonl").is_file()
    assert len(list((out / "toy-data" / "audio").rglob("*.wav"))) == 70

    from engine.models import load_model
    model = load_model(out / "model")
    assert model.sample_rate == 16000 and model.window_seconds == 1.0
    a = model.embed_audio([tone(200, 1.0, 16000), tone(3000, 1.0, 16000)])
    t = model.embed_text(["a low tone", "a high tone"])
    assert a.shape == t.shape == (2, model.dim)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    events = [json.loads(line)["event"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert events[0] == "start" and events[-1] == "end" and events.count("step") == 4
    again = CliRunner().invoke(app, ["train", str(TOY), "--out", str(out), "--steps", "4", "--no-progress"])
    said = " ".join(again.stderr.split())                   # a second run there would mix its checkpoints in
    assert again.exit_code == 1 and "holds the checkpoints of an earlier run (newest: step-0000004)" in said
    assert "Traceback" not in said and len(list((out / "checkpoints").iterdir())) == 1


def test_configs_load_from_toml_with_paths_relative_to_the_file(tmp_path):
    (tmp_path / "cfg.toml").write_text(
        'steps = 50\nbatch_size = 4\n[model]\ninit = "soundsift-base"\n'
        '[[data.train]]\nformat = "manifest"\npath = "mine.csv"\n'
        '[[data.train]]\nformat = "webdataset"\npath = ["shards/a.tar", "shards/b.tar"]\n'
        '[data.augment]\nmix = 0.2\nnoise_snr_db = [5, 30]\n')
    cfg = load_config(tmp_path / "cfg.toml", steps=9)
    assert cfg.steps == 9 and cfg.batch_size == 4 and cfg.model.init == "soundsift-base"
    assert cfg.data.train[0].path == str(tmp_path / "mine.csv")
    assert cfg.data.train[1].path == [str(tmp_path / "shards/a.tar"), str(tmp_path / "shards/b.tar")]
    assert cfg.data.augment.mix == 0.2 and cfg.data.augment.noise_snr_db == (5.0, 30.0)
    assert load_config(TOY).data.toy.per_class == 8


@pytest.mark.parametrize("text,needle", [
    ('{"stepz": 3, "data": {"toy": {}}}', "unknown key.*stepz"),
    ('{"steps": "many", "data": {"toy": {}}}', r"config.steps: expected int"),
    ('{"batch_size": 1, "data": {"toy": {}}}', "at least 2"),
    ('{"steps": 3}', "data.train is empty"),
    ('{"data": {"train": [{"format": "manifest"}]}}', "has no 'path'"),
    ('{"data": {"toy": {}}, ', "c.json: not a valid JSON config"),
    ('{"data": {"toy": {}}, "zeroshot_prompt": "a sound of {}"}', "zeroshot_prompt 'a sound of {}' has no {label}"),
])
def test_bad_configs_are_reported(tmp_path, text, needle):
    (tmp_path / "c.json").write_text(text)
    with pytest.raises(InvalidConfig, match=needle):
        load_config(tmp_path / "c.json")


@pytest.mark.parametrize("name,needle", [("c.toml", "c.toml: not a valid TOML config"),
                                         ("c.wav", "c.wav: not a valid JSON config")])
def test_config_syntax_errors_name_the_format_read(tmp_path, name, needle):
    """A .toml file is read as TOML, any other name as JSON (a .wav given by mistake too)."""
    (tmp_path / name).write_text("RIFF not a config [[")
    with pytest.raises(InvalidConfig, match=needle):
        load_config(tmp_path / name)


def test_devices_and_output_folders_are_checked_before_training(tmp_path, monkeypatch):
    from trainer.loop import pick_device
    from trainer.train import run_training

    (tmp_path / "c.json").write_text('{"device": "banana", "data": {"toy": {}}}')
    with pytest.raises(InvalidConfig, match="config.device 'banana': use auto, cpu, cuda"):
        load_config(tmp_path / "c.json")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto").type == "cpu" and pick_device("cpu").type == "cpu"
    with pytest.raises(InvalidConfig, match="device 'cuda:1': no CUDA GPU is usable here"):
        pick_device("cuda:1")
    (tmp_path / "taken").write_text("x")
    with pytest.raises(InvalidOutput, match="taken: is a file; --out must name a folder"):
        run_training(load_config(TOY, steps=1), out_dir=tmp_path / "taken")
    with pytest.raises(InvalidConfig, match="no CUDA GPU"):
        run_training(load_config(TOY, steps=1, device="cuda"), out_dir=tmp_path / "gpu")
    assert not (tmp_path / "gpu").exists()


def test_cli_reports_config_errors_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["train", str(tmp_path / "absent.json")])
    assert result.exit_code == 1
    assert "config file not found" in " ".join(result.output.split())


def test_a_model_config_typo_is_said_before_any_data_is_made(tmp_path):
    config = json.loads(TOY.read_text())
    config["model"] = {"config": {**config.get("model", {}).get("config", {}), "window_secs": 1.0}}
    (tmp_path / "typo.json").write_text(json.dumps(config))
    result = CliRunner().invoke(app, ["train", str(tmp_path / "typo.json"), "--out", str(tmp_path / "run"),
                                      "--no-progress"])
    said = " ".join(result.stderr.split())
    assert result.exit_code == 1 and "model.config" in said and "window_secs" in said, said
    assert not (tmp_path / "run").exists()                 # no toy data generated first

"""`torchrun -m ui.cli train`: the README's multi-process command, run for real on the CPU (Gloo)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.distributed import local_device_index, torchrun_process_group

REPO = Path(__file__).resolve().parents[1]


def _config(path: Path, batch_size: int) -> Path:
    cfg = {
        "model": {"config": {"window_seconds": 1.0, "use_yamnet_embedding": True, "text_adapter": True}},
        "data": {"toy": {"per_class": 4, "val_per_class": 1, "seconds": 1.0, "sample_rate": 16000, "seed": 0},
                 "clip_seconds": 1.0, "num_workers": 0},
        "optim": {"lr": 0.002, "weight_decay": 0.0, "warmup_steps": 1, "grad_clip": 1.0},
        "seed": 0, "steps": 3, "batch_size": batch_size, "checkpoint_every": 0, "val_every": 0,
        "log_every": 1, "device": "cpu"}
    path.write_text(json.dumps(cfg))
    return path


def _step_losses(out: Path) -> list[float]:
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [e["loss"] for e in events if e["event"] == "step"]


def _train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_torchrun_two_ranks_train_like_one_process_with_the_global_batch(tmp_path):
    """2 ranks × 4 clips under torchrun == 1 process × 8: the CLI joins the process group itself."""
    one = _train(["-m", "ui.cli", "train", str(_config(tmp_path / "b8.json", 8)), "--out", str(tmp_path / "one"),
                  "--json", "--no-progress"], REPO)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _train(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                  "-m", "ui.cli", "train", str(_config(tmp_path / "b4.json", 4)), "--out", str(tmp_path / "two"),
                  "--json", "--no-progress"], REPO)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "rank 1 of 2 joined the gloo process group" in two.stderr
    summary = json.loads(two.stdout)          # rank 0 alone prints: exactly one JSON document
    assert summary["steps"] == 3 and summary["model_dir"] == str(tmp_path / "two" / "model")
    single = _step_losses(tmp_path / "one")
    assert len(single) == 3
    np.testing.assert_allclose(_step_losses(tmp_path / "two"), single, rtol=1e-5)
    from engine.models import load_model
    model = load_model(tmp_path / "two" / "model")
    assert model.embed_text(["a dog barking"]).shape == (1, model.dim)


def test_without_torchrun_no_process_group_is_made(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with torchrun_process_group("cpu") as (rank, world):
        assert (rank, world) == (0, 1)
        assert not torch.distributed.is_initialized()


def test_each_rank_drives_the_gpu_torchrun_names(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert local_device_index(rank=11) == 3     # rank 11 on the second 8-GPU node → its GPU 3


@pytest.mark.parametrize("world", [1, 2])
def test_a_stopped_run_says_how_to_continue_it_with_as_many_processes(tmp_path, monkeypatch, world):
    """--max-steps under torchrun: the line names the torchrun command (the same number of
    processes resumes exactly), not a one-process `soundsift train`."""
    from trainer import distributed
    from trainer.loop import TrainResult
    from ui.cli import cmd_train
    monkeypatch.setattr(distributed, "launched_world_size", lambda: world)
    # rich's width setter fixes the width: patched through it, the undo left stderr's console at a fixed
    # 80 columns for the rest of the run ($COLUMNS of later tests unread); _width's undo gives None back
    monkeypatch.setattr(cmd_train.err_console, "_width", 300)
    with cmd_train.err_console.capture() as captured:
        cmd_train._report(TrainResult(tmp_path, tmp_path / "model", 2, 1.0), Path("mine.json"), None, False)
    launch = ("torchrun --standalone --nproc_per_node 2 -m ui.cli train" if world == 2 else "soundsift train")
    assert f"stopped at step 2; continue with: {launch} mine.json --resume" in captured.get()

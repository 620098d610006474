"""How a training run ends when it is stopped or its validation fails (helper-72): under
torchrun a signal to any rank stops every rank at one step, checkpointed; a validation that
fails never takes the trained steps with it."""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.test_train_loop import SR, TinyClap, datasets, kinds_items, make_cfg
from trainer.datasets import AudioTextDataset, Item
from trainer.distributed import exit_torchrun_process
from trainer.loop import fit, latest_checkpoint

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
needs_distributed = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")


@pytest.fixture(scope="module")
def items(tmp_path_factory) -> list[Item]:
    return kinds_items(tmp_path_factory.mktemp("sounds"), 3)


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------- stops under torch.distributed

class SignalAt(TinyClap):
    """A TinyClap (no dropout) whose process gets ``signum`` during its ``at``-th audio forward."""

    def __init__(self, at: int, signum: int) -> None:
        super().__init__(dropout=0.0)
        self.calls, self.at, self.signum = 0, at, signum

    def encode_audio(self, audio):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)
        return super().encode_audio(audio)


def _rank_fit(rank: int, world: int, store: str, items, tmp: str, resume: bool, signalled: int, out) -> None:
    """One rank of a Gloo run of 5 steps × 4 clips; rank ``signalled`` gets SIGTERM at step 2."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                                         timeout=timedelta(seconds=120))
    try:
        torch.manual_seed(0)
        train, _ = datasets(items)
        model = SignalAt(2 if rank == signalled else 0, signal.SIGTERM)
        result = fit(model, train, make_cfg(Path(tmp), steps=5, batch_size=4), resume=resume)
        out[rank] = {"steps": result.steps, "interrupted": result.interrupted, "losses": result.losses}
    finally:
        torch.distributed.destroy_process_group()
    exit_torchrun_process(0)   # no Gloo teardown at interpreter exit (see tests/test_loss.py)


def _two_ranks(tmp_path: Path, items, name: str, resume: bool, signalled: int) -> dict:
    ctx = torch.multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        shared = manager.dict()
        torch.multiprocessing.start_processes(
            _rank_fit, args=(2, str(tmp_path / f"rendezvous-{name}"), items, str(tmp_path / "two"), resume,
                             signalled, shared),
            nprocs=2, join=True, start_method="spawn")
        return dict(shared)


@needs_distributed
def test_sigterm_to_one_rank_stops_both_at_that_step_checkpointed_and_resume_is_exact(tmp_path, items):
    """SIGTERM to rank 1 alone (torchrun forwards its signal to every rank; a scheduler may signal
    one): it used to kill that rank and leave the other failing in its next collective, nothing
    saved since the last checkpoint. Now both finish step 2, rank 0 checkpoints it, and a 2-rank
    --resume continues as if nothing happened (2 × 4 clips == 1 process × 8)."""
    torch.manual_seed(0)
    train, _ = datasets(items)
    straight = fit(TinyClap(dropout=0.0), train, make_cfg(tmp_path / "one", steps=5, batch_size=8))
    stopped = _two_ranks(tmp_path, items, "a", resume=False, signalled=1)
    assert stopped[0]["steps"] == stopped[1]["steps"] == 2
    assert stopped[0]["interrupted"] and stopped[1]["interrupted"]
    out = tmp_path / "two" / "run"
    assert latest_checkpoint(out).name == "step-0000002"
    assert not (out / "model").exists()
    assert [e["step"] for e in _events(out) if e["event"] == "interrupted"] == [2]
    resumed = _two_ranks(tmp_path, items, "b", resume=True, signalled=-1)
    assert resumed[0]["steps"] == 5 and not resumed[0]["interrupted"]
    np.testing.assert_allclose(stopped[0]["losses"] + resumed[0]["losses"], straight.losses, rtol=1e-5)
    assert (out / "model" / "model.safetensors").is_file()


def _torchrun_config(path: Path) -> Path:
    cfg = {
        "model": {"config": {"window_seconds": 1.0, "use_yamnet_embedding": True, "text_adapter": True}},
        "data": {"toy": {"per_class": 4, "val_per_class": 1, "seconds": 1.0, "sample_rate": 16000, "seed": 0},
                 "clip_seconds": 1.0, "num_workers": 0},
        "optim": {"lr": 0.002, "weight_decay": 0.0, "warmup_steps": 1, "grad_clip": 1.0},
        "seed": 0, "steps": 100000, "batch_size": 4, "checkpoint_every": 0, "val_every": 0,
        "log_every": 1, "device": "cpu"}
    path.write_text(json.dumps(cfg))
    return path


def _torchrun(config: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "ui.cli", "train", str(config), "--out", str(out), "--no-progress", *extra],
                            cwd=REPO, text=True, **popen)


def _wait_for_a_step(proc: subprocess.Popen, out: Path, err: Path) -> None:
    """Until rank 0 has logged a training step (the run is under way)."""
    deadline = time.monotonic() + 300      # a bound for a hung run, not a measurement
    log_file = out / "log.jsonl"         # read as text: its last line may be half-written
    while not (log_file.is_file() and '"event": "step"' in log_file.read_text()):
        assert proc.poll() is None, f"torchrun ended before its first step:\n{err.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no step logged:\n{err.read_text()[-3000:]}"
        time.sleep(0.05)


@needs_distributed
def test_ctrl_c_in_a_terminal_stops_torchrun_with_a_checkpoint_and_resume_continues(tmp_path):
    """Ctrl-C in a terminal: SIGINT to torchrun and its workers at once, then torchrun forwards it
    to the workers again. The workers used to die at the first (KeyboardInterrupt), keeping
    nothing; now they finish the step under way, rank 0 checkpoints it and says how to go on."""
    config, out, err = _torchrun_config(tmp_path / "long.json"), tmp_path / "run", tmp_path / "stderr.txt"
    with err.open("w") as stderr:
        proc = _torchrun(config, out, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        try:
            _wait_for_a_step(proc, out, err)
            os.killpg(proc.pid, signal.SIGINT)       # what the terminal does: the whole foreground group
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    said = err.read_text()
    assert proc.returncode != 0, said[-3000:]         # torchrun itself ends with an error when signalled
    stopped = [e["step"] for e in _events(out) if e["event"] == "interrupted"]
    assert len(stopped) == 1, said[-3000:]
    step = stopped[0]
    assert latest_checkpoint(out).name == f"step-{step:07d}"
    assert not (out / "model").exists()
    assert (f"stopped at step {step}; continue with: torchrun --standalone --nproc_per_node 2 -m ui.cli train"
            in " ".join(said.split()))
    resumed = _torchrun(config, out, "--resume", "--max-steps", str(step + 1), "--json",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr_text = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr_text[-3000:]
    assert json.loads(stdout)["steps"] == step + 1
    events = _events(out)
    assert [e["step"] for e in events if e["event"] == "resume"] == [step]
    assert [e["step"] for e in events if e["event"] == "step"][-1] == step + 1


def _sigterm_self_then_exit_3() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(3)         # reached only when the SIGTERM did not end the process


@needs_distributed
def test_a_forked_dataloader_worker_still_ends_on_sigterm():
    """The ranks' SIGTERM handler is inherited by forked DataLoader workers: there it must not
    keep them alive (they are ended with SIGTERM at shutdown)."""
    from trainer.loop import _StopRequest
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork here")
    with _StopRequest(world=2) as request:
        assert signal.getsignal(signal.SIGTERM) == request._handle
        child = multiprocessing.get_context("fork").Process(target=_sigterm_self_then_exit_3)
        child.start()
        child.join()
    assert child.exitcode == -signal.SIGTERM
    assert not request.requested
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# --------------------------------------------------------------------------- validation failures

class FailsToValidate(TinyClap):
    """A TinyClap whose ``failing`` validations (counted from 1) raise ``error``."""

    def __init__(self, error: BaseException, failing: set[int]) -> None:
        super().__init__()
        self.error, self.failing, self.validations = error, failing, 0

    def train(self, mode: bool = True):
        self.validations += not mode        # validate() puts the model in eval mode once
        return super().train(mode)

    def encode_audio(self, audio):
        if not self.training and self.validations in self.failing:
            raise self.error
        return super().encode_audio(audio)


def _val_set(items) -> AudioTextDataset:
    return AudioTextDataset(items[:6], SR, 0.5, train=False)


def test_a_validation_failing_at_the_last_step_keeps_the_checkpoint_and_the_model(tmp_path, items, caplog):
    """Out of memory in the final validation used to end the run before its final checkpoint
    and model: every step lost. Now both are written, the cause is said and logged, and the
    result names it (the CLI exits non-zero on it)."""
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=3)
    caplog.set_level(logging.WARNING)
    model = FailsToValidate(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), {1})
    result = fit(model, train, cfg, val_set=_val_set(items))
    out = Path(cfg.out_dir)
    assert result.steps == 3 and not result.interrupted
    assert latest_checkpoint(out).name == "step-0000003"
    assert (out / "model" / "model.safetensors").is_file()
    assert result.validation is None
    assert result.validation_error == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert json.loads((out / "summary.json").read_text())["validation_error"] == result.validation_error
    assert any("step 3: validation failed (OutOfMemoryError: CUDA out of memory" in r.getMessage()
               for r in caplog.records)
    assert [(e["step"], e["reason"]) for e in _events(out) if e["event"] == "validation_failed"] == \
        [(3, result.validation_error)]


def test_a_validation_failing_mid_run_is_said_and_the_run_goes_on(tmp_path, items, caplog):
    """A periodic validation raising on a bad batch no longer ends the run (losing the steps since
    the last checkpoint); the last validation, which worked, is the run's result."""
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=4, val_every=2)
    caplog.set_level(logging.WARNING)
    result = fit(FailsToValidate(ValueError("a bad batch"), {1}), train, cfg, val_set=_val_set(items))
    assert result.steps == 4 and result.validation is not None and result.validation_error is None
    events = _events(Path(cfg.out_dir))
    assert [e["step"] for e in events if e["event"] == "validation_failed"] == [2]
    assert [e["step"] for e in events if e["event"] == "validation"] == [4]
    assert any("step 2: validation failed (ValueError: a bad batch); training goes on" in r.getMessage()
               for r in caplog.records)


def test_figures_from_an_earlier_step_say_which_step_when_the_final_validation_fails(tmp_path, items):
    """When the final validation fails, the result's figures are the last ones that worked, and
    the result and summary.json say which step they are from (they were shown as the final ones)."""
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=4, val_every=2)
    result = fit(FailsToValidate(ValueError("a bad batch"), {2}), train, cfg, val_set=_val_set(items))
    assert result.validation is not None and result.validated_at == 2
    assert result.validation_error == "ValueError: a bad batch"
    assert json.loads((Path(cfg.out_dir) / "summary.json").read_text())["validation_step"] == 2


def test_ctrl_c_during_the_final_validation_keeps_the_final_checkpoint(tmp_path, items):
    """The final checkpoint is written before the final validation: a second Ctrl-C (or a crash)
    there no longer loses the run."""
    train, _ = datasets(items)
    cfg = make_cfg(tmp_path, steps=3)
    with pytest.raises(KeyboardInterrupt):
        fit(FailsToValidate(KeyboardInterrupt(), {1}), train, cfg, val_set=_val_set(items))
    assert latest_checkpoint(cfg.out_dir).name == "step-0000003"


def test_cli_a_failed_final_validation_exits_1_naming_the_cause(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import trainer.loop as loop
    from ui.cli import app

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(loop, "validate", out_of_memory)
    toy = REPO / "trainer" / "configs" / "toy.json"
    out = tmp_path / "toy"
    result = CliRunner().invoke(app, ["train", str(toy), "--out", str(out), "--steps", "2", "--no-progress"])
    said = " ".join(result.stderr.split())
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), said     # not the error itself
    assert "error: the final validation failed (OutOfMemoryError: CUDA out of memory" in said
    assert f"the model in {out / 'model'} is complete" in said
    assert (out / "model" / "model.safetensors").is_file()
    assert latest_checkpoint(out).name == "step-0000002"

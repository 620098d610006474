"""The training loop on a tiny in-test model: loss goes down, checkpoint → resume is exact."""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engine.errors import InvalidConfig
from tests.conftest import chirp, noise, tone, write
from trainer.augment import AugmentConfig
from trainer.config import config_from_dict
from trainer.datasets import AudioTextDataset, Item
from trainer.distributed import exit_torchrun_process
from trainer.loop import checkpoint_dirs, fit, latest_checkpoint, lr_factor, param_groups, validate

SR = 8000


class TinyClap(nn.Module):
    """Spectrum → linear audio tower; hashed character trigrams → linear text tower."""

    def __init__(self, dim: int = 16, buckets: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.config = type("Cfg", (), {"window_seconds": 0.5})()
        self.sample_rate = SR
        self.buckets = buckets
        self.audio_proj = nn.Sequential(nn.Linear(65, 32), nn.Dropout(dropout), nn.Linear(32, dim))
        self.text_emb = nn.EmbeddingBag(buckets, dim, mode="mean")
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(audio, n_fft=128, hop_length=64, window=torch.hann_window(128), return_complex=True)
        feats = torch.log1p(spec.abs().mean(-1))
        return nn.functional.normalize(self.audio_proj(feats), dim=-1)

    def encode_text(self, texts) -> torch.Tensor:
        ids, offsets = [], []
        for t in texts:
            offsets.append(len(ids))
            s = f"  {t.lower()} "
            ids += [zlib.crc32(s[i:i + 3].encode()) % self.buckets for i in range(len(s) - 2)]
        out = self.text_emb(torch.tensor(ids), torch.tensor(offsets))
        return nn.functional.normalize(out, dim=-1)

    def save_pretrained(self, folder) -> None:
        from safetensors.torch import save_file
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({"model_type": "tiny-test"}))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))


KINDS = {
    "a low hum": lambda i: tone(150 + 10 * i, 0.7, SR),
    "a high whistle": lambda i: tone(2500 + 50 * i, 0.7, SR),
    "static hiss": lambda i: noise(0.7, SR, seed=i),
    "a rising sweep": lambda i: chirp(200, 3500, 0.7, SR),
}


def kinds_items(root: Path, per_kind: int) -> list[Item]:
    """``per_kind`` generated clips of each of :data:`KINDS` under ``root``, captioned by kind."""
    items = []
    for label, make in KINDS.items():
        for i in range(per_kind):
            path = write(root / label.replace(" ", "_") / f"{i}.wav", make(i), SR)
            items.append(Item(str(path), [label], [label.split(" ", 1)[-1]]))
    return items


@pytest.fixture(scope="module")
def toy_items(tmp_path_factory) -> list[Item]:
    return kinds_items(tmp_path_factory.mktemp("toy"), 6)


def make_cfg(tmp_path: Path, **kw):
    base = {"data": {"train": [{"format": "manifest", "path": "unused.jsonl"}], "num_workers": 0},
            "optim": {"lr": 0.05, "warmup_steps": 2, "weight_decay": 0.01},
            "steps": 12, "batch_size": 8, "seed": 1, "progress": False, "out_dir": str(tmp_path / "run")}
    base.update(kw)
    return config_from_dict(base, tmp_path)


def datasets(items, augment=None):
    train = AudioTextDataset(items, SR, 0.5, train=True, augment=augment or AugmentConfig(
        gain_db=3.0, loudness=0.0, band_limit=0.3, codec=0.0, noise=0.3, reverb=0.0), seed=1)
    return train, AudioTextDataset(items, SR, 0.5, train=False)


def test_lr_schedule_warmup_then_cosine():
    assert [round(lr_factor(s, 4, 12), 4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 4, 12) == pytest.approx(1.0)
    assert lr_factor(8, 4, 12) == pytest.approx(0.5)
    assert lr_factor(12, 4, 12) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(12, 4, 12, min_ratio=0.1) == pytest.approx(0.1)


def test_param_groups_exclude_bias_and_logit_scale_from_decay():
    model = TinyClap()
    decay, no_decay = param_groups(model, 0.1)
    named = {id(p): n for n, p in model.named_parameters()}
    assert {named[id(p)] for p in no_decay["params"]} == {"logit_scale", "audio_proj.0.bias", "audio_proj.2.bias"}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    frozen = TinyClap()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(InvalidConfig, match="no trainable parameters"):
        param_groups(frozen, 0.1)


def test_few_steps_lower_the_loss_and_write_a_model(tmp_path, toy_items):
    torch.manual_seed(0)
    model = TinyClap()
    train, val = datasets(toy_items)
    before = validate(model, val)
    cfg = make_cfg(tmp_path, steps=30, val_every=15, checkpoint_every=10, keep_checkpoints=2)
    result = fit(model, train, cfg, val_set=val)
    first, last = np.mean(result.losses[:3]), np.mean(result.losses[-3:])
    assert last < first - 0.3, result.losses
    assert result.validation["t2a"]["R@1"] > before["t2a"]["R@1"]
    assert result.validation["zeroshot"]["classes"] == 4

    out = Path(cfg.out_dir)
    assert (out / "model" / "config.json").is_file() and (out / "model" / "model.safetensors").is_file()
    assert [p.name for p in checkpoint_dirs(out)] == ["step-0000020", "step-0000030"]   # keep 2
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("step") == 30
    assert [e["step"] for e in events if e["event"] == "validation"] == [15, 30]
    assert all(0 < e["logit_scale"] <= 100 for e in events if e["event"] == "step")
    logged = [e["lr"] for e in events if e["event"] == "step"]           # the rate each step used
    assert logged == pytest.approx([0.05 * lr_factor(s, 2, 30) for s in range(30)])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 30 and summary["validation"]["n"] == len(toy_items)


@pytest.mark.parametrize("accum", [1, 2])
def test_resume_gives_the_same_next_step_loss(tmp_path, toy_items, accum):
    train, _ = datasets(toy_items)
    steps = 6

    torch.manual_seed(0)
    straight = fit(TinyClap(), train, make_cfg(tmp_path / "a", steps=steps, accum_steps=accum))

    torch.manual_seed(0)
    cfg = make_cfg(tmp_path / "b", steps=steps, accum_steps=accum, checkpoint_every=2)
    first = fit(TinyClap(), train, cfg, max_steps=3)             # the session "ends" after step 3
    assert first.steps == 3 and not (Path(cfg.out_dir) / "model").exists()
    assert latest_checkpoint(cfg.out_dir).name == "step-0000003"
    torch.manual_seed(123)                                       # a new process: other RNG, other init
    resumed = fit(TinyClap(), train, cfg, resume=True)
    assert resumed.steps == steps
    assert first.losses == straight.losses[:3]
    assert resumed.losses == straight.losses[3:]                 # bitwise, step 4 onwards
    a = (Path(tmp_path / "a" / "run" / "model") / "model.safetensors").read_bytes()
    b = (Path(cfg.out_dir) / "model" / "model.safetensors").read_bytes()
    assert a == b


def test_resume_without_checkpoint_starts_fresh(tmp_path, toy_items):
    train, _ = datasets(toy_items, AugmentConfig.off())
    result = fit(TinyClap(), train, make_cfg(tmp_path, steps=2), resume=True)
    assert result.steps == 2 and len(result.losses) == 2


def test_decoding_in_worker_processes_gives_the_same_batches(tmp_path, toy_items):
    train, _ = datasets(toy_items)
    torch.manual_seed(0)
    inline = fit(TinyClap(), train, make_cfg(tmp_path / "a", steps=2))
    torch.manual_seed(0)
    cfg = make_cfg(tmp_path / "b", steps=2)
    cfg.data.num_workers = 2
    workers = fit(TinyClap(), train, cfg)
    assert workers.losses == inline.losses


def _rank_fit(rank: int, world: int, store: str, items, tmp: str, out) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        train, _ = datasets(items)
        result = fit(TinyClap(dropout=0.0), train, make_cfg(Path(tmp), steps=3, batch_size=4))
        out[rank] = result.losses
    finally:
        torch.distributed.destroy_process_group()
    exit_torchrun_process(0)   # no Gloo teardown at interpreter exit (see tests/test_loss.py)


def test_two_ranks_train_like_one_process_with_the_global_batch(tmp_path, toy_items):
    """torchrun-style: 2 ranks × 4 items, gathered loss, averaged gradients == 1 process × 8."""
    torch.manual_seed(0)
    train, _ = datasets(toy_items)
    single = fit(TinyClap(dropout=0.0), train, make_cfg(tmp_path / "one", steps=3, batch_size=8))
    ctx = torch.multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        shared = manager.dict()
        torch.multiprocessing.start_processes(_rank_fit, args=(2, str(tmp_path / "rendezvous"), toy_items, str(tmp_path / "two"), shared),
                                              nprocs=2, join=True, start_method="spawn")
        losses = dict(shared)
    np.testing.assert_allclose(losses[0], single.losses, rtol=1e-5)
    np.testing.assert_allclose(losses[1], single.losses, rtol=1e-5)
    assert (tmp_path / "two" / "run" / "model" / "model.safetensors").is_file()   # written by rank 0


def test_a_resume_with_another_number_of_processes_is_told(tmp_path, toy_items, caplog):
    """A checkpoint keeps how many processes wrote it; resuming with another count (a torchrun
    run of 2 resumed as one process) continues, with a warning that the global batch changed."""
    import logging

    from trainer.loop import STATE_FILE
    train, _ = datasets(toy_items)
    cfg = make_cfg(tmp_path, steps=4, checkpoint_every=2)
    fit(TinyClap(), train, cfg, max_steps=2)
    state_file = latest_checkpoint(cfg.out_dir) / STATE_FILE
    state = torch.load(state_file, weights_only=True)
    assert state["world_size"] == 1
    caplog.set_level(logging.WARNING, logger="trainer.loop")
    assert fit(TinyClap(), train, cfg, max_steps=3, resume=True).steps == 3
    assert not [r for r in caplog.records if "process" in r.getMessage()]
    state = torch.load(latest_checkpoint(cfg.out_dir) / STATE_FILE, weights_only=True)
    state["world_size"] = 2                                     # as rank 0 of a torchrun of 2 writes it
    torch.save(state, latest_checkpoint(cfg.out_dir) / STATE_FILE)
    assert fit(TinyClap(), train, cfg, resume=True).steps == 4
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("written by a run of 2 processes and this one has 1 (global batch "
               f"{2 * cfg.batch_size} → {cfg.batch_size})" in m and "resume it with 2" in m for m in said), said


def test_validation_counts_clips_sharing_a_caption_as_right_answers(monkeypatch):
    """A labelled validation set (clips share captions): perfect embeddings score 1 both ways."""
    import trainer.loop as loop
    items = [Item("a.wav", ["footsteps"]), Item("b.wav", ["Footsteps "]),
             Item("c.wav", ["rain", "light rain"]), Item("d.wav", ["light rain"])]
    e = np.eye(3, dtype=np.float32)
    key = {"footsteps": e[0], "rain": e[1], "light rain": e[2]}
    audio = np.stack([e[0], e[0], (e[1] + e[2]) / np.sqrt(2), e[2]])
    text = np.stack([key[it.captions[0].strip().lower()] for it in items])
    monkeypatch.setattr(loop, "embed_dataset", lambda *a, **k: (audio, text))
    got = validate(TinyClap(), AudioTextDataset(items, SR, 0.5, train=False))
    perfect = {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "mAP@10": 1.0,
               "median_rank": 1.0, "mean_rank": 1.0}
    assert got["t2a"] == perfect and got["a2t"] == perfect and got["n"] == 4
    assert "zeroshot" not in got                         # no tags


def test_a_batch_larger_than_the_data_stops_before_anything_is_written(tmp_path, toy_items):
    """The run says so at once and leaves no out folder behind (a later run with a smaller
    batch_size would otherwise meet an earlier run's log)."""
    from engine.errors import InvalidDataset
    train, _ = datasets(toy_items)
    cfg = make_cfg(tmp_path / "out", steps=2, batch_size=len(train) + 1)
    with pytest.raises(InvalidDataset, match=f"batch size {len(train) + 1} is larger than the training set"):
        fit(TinyClap(), train, cfg)
    assert not (tmp_path / "out").exists()

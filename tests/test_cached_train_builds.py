"""The cached trainer builds what it needs once: one MiniLM per run, each list of class texts
encoded once, and the final ``final_with_val`` run re-initialised on the seeds' module rather than
built anew — with exactly the state, history and saved weights a new module gives.

A tiny corpus of generated clips and the real frozen towers (YAMNet ONNX, MiniLM).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import chirp, noise, tone, write
from trainer import cached_train
from trainer.cached_train import CachedTrainConfig, TextBank, build_module, class_prior

SR = 16000

# every module encodes the 521 AudioSet class texts; fresh builds here are the references
pytestmark = pytest.mark.usefixtures("minilm_memo")
CLIPS = {"beep": lambda: tone(880, 1.5, SR), "hiss": lambda: noise(1.5, SR, seed=3),
         "sweep": lambda: chirp(300, 3000, 1.5, SR), "hum": lambda: tone(60, 1.5, SR, amp=0.3)}
#: the bundled soundsift-base's text side: names and descriptions, mixed with the MiniLM baseline
BASE_TEXT = {"space": "audioset", "minilm_mix": 0.15, "class_text_template": ["{name}", "{description}"],
             "train_text_classes": False}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("builds-corpus")
    for split in ("train", "val"):
        rows = []
        for label, make in CLIPS.items():
            audio = write(root / split / f"{label}.wav", make(), SR)
            rows.append({"audio": audio.relative_to(root).as_posix(), "tags": [label],
                         "captions": [label, f"the sound of {label}"]})
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # the feature caches first: computing one builds a feature model of its own (trainer.precompute)
    cfg = _config(root, root)
    cached_train.validation_as_training(cfg, *cached_train.load_splits(cfg))
    return root


def _config(corpus: Path, tmp_path: Path, **overrides) -> CachedTrainConfig:
    return CachedTrainConfig(**{
        "train_manifest": str(corpus / "train.jsonl"), "val_manifest": str(corpus / "val.jsonl"),
        "cache_dir": str(corpus / "cache"), "views": 2, "augment": {"codec": 0.0}, "variant": "yamnet",
        "steps": 6, "batch_size": 4, "lr": 0.01, "warmup_steps": 2, "seeds": [0], "val_every": 3,
        "final_with_val": True, "out": str(tmp_path / "model"), **overrides})


@pytest.mark.parametrize("space, modules", [("audioset", 2), ("minilm", 1)])
def test_a_run_loads_minilm_once_and_encodes_each_class_list_once(corpus, tmp_path, monkeypatch, space, modules):
    """Before: a module per use (start, tag–text baseline, final run), each loading MiniLM and
    encoding its class texts (the feature caches are ready, so no feature model is built). Now
    the audioset run builds its own module and the baseline's (a different model) on one tower;
    the minilm run, whose start is the baseline, builds one."""
    from engine.models.soundsift_clap import SoundsiftClap
    from engine.towers.minilm import MiniLMTextTower
    from engine.towers.yamnet import class_names

    loads, builds, encoded = [], [], Counter()
    load, build, encode = MiniLMTextTower.__init__, SoundsiftClap.__init__, MiniLMTextTower.encode_many

    def loaded(self, *args, **kwargs):
        loads.append(1)
        load(self, *args, **kwargs)

    def built(self, *args, **kwargs):
        builds.append(1)
        build(self, *args, **kwargs)

    def counted(self, texts, *args, **kwargs):
        encoded[tuple(texts)] += 1
        return encode(self, texts, *args, **kwargs)

    monkeypatch.setattr(MiniLMTextTower, "__init__", loaded)
    monkeypatch.setattr(SoundsiftClap, "__init__", built)
    monkeypatch.setattr(MiniLMTextTower, "encode_many", counted)
    cfg = _config(corpus, tmp_path, **BASE_TEXT) if space == "audioset" else _config(
        corpus, tmp_path, class_text_template=["{name}", "{description}"])
    cached_train.run(cfg)
    assert len(loads) == 1 and len(builds) == modules
    class_lists = {texts: n for texts, n in encoded.items() if len(texts) == len(class_names())}
    assert len(class_lists) == 2 and tuple(class_names()) in class_lists      # names, descriptions
    assert set(class_lists.values()) == {1}, "a list of class texts was encoded again"


def test_the_final_run_is_what_a_new_module_trains_to(corpus, tmp_path):
    """The final run on the seeds' (trained) module: the same history and saved weights as the
    final run on a module built anew with the joined class prior (what the trainer did before)."""
    from safetensors.torch import load_file

    from trainer.cached_train import prepare, train_run, validation_as_training

    cfg = _config(corpus, tmp_path, seeds=[1, 0], **BASE_TEXT)     # seed 0 last: its trained weights stay
    report = cached_train.run(cfg)
    train, val, _, bank, _ = prepare(cfg)
    joined = validation_as_training(cfg, train, val)
    fresh = build_module(cfg, class_prior(joined.cache))            # its own MiniLM, class texts encoded anew
    init = {k: v.detach().clone() for k, v in fresh.state_dict().items()}
    history = train_run(fresh, cfg, joined, val, bank, cfg.seed, init, set(joined.labels))
    assert json.dumps(history) == json.dumps(report["history"])      # NaN figures (no unseen labels) too
    saved, expected = load_file(str(Path(cfg.out) / "model.safetensors")), fresh.trainable_state_dict()
    assert saved.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(saved[name], tensor), name


@pytest.fixture(scope="module")
def aisfx_weights(tmp_path_factory) -> str:
    """A random (seeded) aisfx EmbeddingNet saved as trainer/convert_aisfx.py saves the real one."""
    from safetensors.torch import save_file

    from engine.towers.aisfx import EmbeddingNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("aisfx") / "aisfx.safetensors"
    save_file({k: v.contiguous() for k, v in EmbeddingNet().state_dict().items()}, str(path))
    return str(path)


@pytest.mark.parametrize("overrides", [
    {"variant": "both", **BASE_TEXT},                                # soundsift-base
    {"variant": "yamnet", **BASE_TEXT},                              # soundsift-fast
    {"variant": "aisfx", "space": "audioset", "text_adapter": True},   # class branch off, adapter on
    {"variant": "yamnet", "class_text_template": ["{name}", "{description}"]},   # minilm space
], ids=["both", "yamnet", "aisfx", "minilm"])
def test_init_module_gives_a_trained_module_the_state_of_a_new_one(aisfx_weights, overrides):
    """Tensor by tensor, exactly: a module built with one prior, its weights moved as training
    moves them, then :func:`init_module` with another prior == :func:`build_module` with that
    prior; the same parameters train, and every submodule is in the same mode."""
    from engine.towers.minilm import MiniLMTextTower
    from engine.towers.yamnet import NUM_CLASSES
    from trainer.cached_train import init_module, trainable

    cfg = CachedTrainConfig(aisfx_weights=aisfx_weights, **overrides)
    rng = np.random.default_rng(0)
    first, joined = (rng.random(NUM_CLASSES).astype(np.float32) for _ in range(2))
    bank = TextBank(MiniLMTextTower())
    module = build_module(cfg, first, bank)
    with torch.no_grad():
        for p in trainable(module).values():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    init_module(module, cfg, joined, bank)
    fresh = build_module(cfg, joined)
    state, expected = module.state_dict(), fresh.state_dict()
    assert state.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name
    assert ({n: p.requires_grad for n, p in module.named_parameters()}
            == {n: p.requires_grad for n, p in fresh.named_parameters()})
    assert [(n, m.training) for n, m in module.named_modules()] == [(n, m.training) for n, m in fresh.named_modules()]
    if cfg.space == "audioset" and cfg.variant != "aisfx":     # the prior did change what it sets
        before = build_module(cfg, first, bank).state_dict()["class_proj.weight"]
        assert not torch.equal(state["class_proj.weight"], before)


def test_only_a_frozen_text_tower_is_shared():
    from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig
    from engine.towers.minilm import MiniLMTextTower

    frozen = MiniLMTextTower()
    assert SoundsiftClap(SoundsiftClapConfig(), text_tower=frozen).text is frozen
    with pytest.raises(ValueError, match="frozen text tower"):
        SoundsiftClap(SoundsiftClapConfig(), text_tower=MiniLMTextTower(trainable=True))
    with pytest.raises(ValueError, match="frozen text tower"):
        SoundsiftClap(SoundsiftClapConfig(text_trainable=True), text_tower=frozen)

"""Cached frozen features (trainer.precompute) and training on them (trainer.cached_train).

The real frozen towers (YAMNet ONNX, MiniLM) on a few generated clips; the check that matters:
projecting cached features gives exactly what the saved model computes from the audio.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.errors import InvalidDataset
from engine.models import load_model
from tests.conftest import chirp, noise, tone, write
from trainer.augment import AugmentConfig
from trainer.cached_train import (CachedTrainConfig, Split, TextBank, build_module, clip_vectors, evaluate,
                                  project_rows, train_run)
from trainer.datasets import read_manifest
from trainer.precompute import FeatureCache, build_cache

SR = 16000

# each run builds its modules with init_baseline, which encodes the 521 AudioSet class names
pytestmark = pytest.mark.usefixtures("minilm_memo")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    clips = {"beep": tone(880, 2.0, 22050), "hiss": noise(12.5, 22050, seed=3),
             "sweep": chirp(300, 3000, 0.6, 22050), "hum": tone(60, 3.0, 22050, amp=0.3)}
    rows = [{"audio": str(write(root / f"{k}.flac", v, 22050)), "captions": [k, f"the sound of {k}"],
             "tags": [k]} for k, v in clips.items()]
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return read_manifest(root / "m.jsonl"), root


@pytest.fixture(scope="module")
def extractor():
    """One baseline module both extracts features and trains (MiniLM loads once)."""
    return build_module(CachedTrainConfig(variant="yamnet")).eval()


@pytest.fixture(scope="module")
def val_cache(corpus, extractor, tmp_path_factory):
    return build_cache(corpus[0], tmp_path_factory.mktemp("val") / "val.npz", views=0, model=extractor)


@pytest.fixture(scope="module")
def train_cache(corpus, extractor, tmp_path_factory):
    items, _ = corpus
    path = tmp_path_factory.mktemp("cache") / "train.npz"
    aug = AugmentConfig(codec=0.0)    # keep the test fast; the codec path is tested in test_augment
    return build_cache(items, path, views=3, seed=5, augment=aug, save_every=2, model=extractor), path


def test_training_views_shapes_and_clean_first_view(corpus, extractor, train_cache):
    items, _ = corpus
    cache, _ = train_cache
    assert len(cache) == 3 * len(items) and cache.aisfx is None
    assert cache.posteriors.shape == (12, 521) and cache.embedding.shape == (12, 1024)
    np.testing.assert_array_equal(cache.item, np.repeat(np.arange(4), 3))
    np.testing.assert_array_equal(cache.view, np.tile(np.arange(3), 4))
    # view 0 is the clean first window (whole clip when shorter), as inference sees it
    from trainer.datasets import load_clip
    wave = load_clip(items[1].audio, SR, None, None)[:10 * SR]
    clean = extractor.extract_features([wave])[0]
    np.testing.assert_allclose(cache.posteriors[3], clean.posteriors[0].numpy(), atol=1e-6)
    # augmented views differ from the clean one
    assert not np.allclose(cache.embedding[3], cache.embedding[4])


def test_views_are_deterministic_and_rerun_reuses_the_cache(corpus, extractor, train_cache, tmp_path):
    items, _ = corpus
    cache, path = train_cache
    again = build_cache(items, tmp_path / "again.npz", views=3, seed=5, augment=AugmentConfig(codec=0.0),
                        model=extractor)
    np.testing.assert_array_equal(again.posteriors, cache.posteriors)
    # complete cache: nothing is recomputed (a model that would fail if used)
    reused = build_cache(items, path, views=3, seed=5, augment=AugmentConfig(codec=0.0), model=object())
    np.testing.assert_array_equal(reused.embedding, cache.embedding)
    with pytest.raises(InvalidDataset, match="other settings"):
        build_cache(items, path, views=4, seed=5, augment=AugmentConfig(codec=0.0), model=object())
    with pytest.raises(InvalidDataset, match="other settings"):     # features of another input level
        build_cache(items, path, views=3, seed=5, augment=AugmentConfig(codec=0.0), yamnet_min_peak_db=-20.0,
                    model=object())


def test_first_index_draws_the_views_of_an_appended_manifest(corpus, extractor, train_cache, tmp_path):
    items, _ = corpus
    cache, path = train_cache
    tail = build_cache(items[2:], tmp_path / "tail.npz", views=3, seed=5, augment=AugmentConfig(codec=0.0),
                       first_index=2, model=extractor)
    rows = cache.item >= 2              # items 2 and 3 of the whole manifest, drawn the same way
    np.testing.assert_allclose(tail.embedding, cache.embedding[rows], atol=1e-6)
    np.testing.assert_array_equal(tail.item, cache.item[rows] - 2)
    assert tail.meta["first_index"] == 2 and "first_index" not in cache.meta
    with pytest.raises(InvalidDataset, match="other settings"):     # another offset is another cache
        build_cache(items[2:], tmp_path / "tail.npz", views=3, seed=5, augment=AugmentConfig(codec=0.0),
                    model=object())


def test_partial_cache_is_finished_not_redone(corpus, extractor, train_cache, tmp_path):
    items, _ = corpus
    cache, path = train_cache
    partial = FeatureCache.load(path)
    keep = partial.item < 2
    partial.posteriors, partial.embedding = partial.posteriors[keep], partial.embedding[keep]
    partial.item, partial.view = partial.item[keep], partial.view[keep]
    partial.meta["done_items"] = 2
    partial.save(tmp_path / "p.npz")
    done = build_cache(items, tmp_path / "p.npz", views=3, seed=5, augment=AugmentConfig(codec=0.0),
                       model=extractor)
    np.testing.assert_allclose(done.posteriors, cache.posteriors, atol=1e-6)
    assert FeatureCache.load(tmp_path / "p.npz").done_items() == 4


def test_cache_of_a_manifest_that_grew_is_extended_as_a_rebuild_would_be(corpus, extractor, train_cache,
                                                                        tmp_path):
    items, _ = corpus
    cache, _ = train_cache
    aug = AugmentConfig(codec=0.0)
    build_cache(items[:2], tmp_path / "grown.npz", views=3, seed=5, augment=aug, model=extractor)
    grown = build_cache(items, tmp_path / "grown.npz", views=3, seed=5, augment=aug, model=extractor)
    np.testing.assert_allclose(grown.embedding, cache.embedding, atol=1e-6)
    np.testing.assert_array_equal(grown.item, cache.item)
    saved = FeatureCache.load(tmp_path / "grown.npz").meta
    assert {k: saved[k] for k in ("items", "items_sha1", "done_items")} == \
        {k: cache.meta[k] for k in ("items", "items_sha1", "done_items")}
    # anything but growth at the end is another corpus: shrunk, reordered, or changed in front
    for other in (items[:1], items[::-1], items[1:]):
        with pytest.raises(InvalidDataset, match="other settings or items"):
            build_cache(other, tmp_path / "grown.npz", views=3, seed=5, augment=aug, model=object())


def test_eval_segments_follow_the_index_policy(val_cache):
    cache = val_cache
    # the 12.5 s clip → windows [0, 10) and the end-aligned [2.5, 12.5); the others one each
    np.testing.assert_array_equal(cache.item, [0, 1, 1, 2, 3])
    np.testing.assert_array_equal(cache.view, [0, 0, 1, 0, 0])


def test_trained_projection_saves_to_a_model_that_matches_the_cache(corpus, extractor, train_cache, val_cache,
                                                                   tmp_path):
    items, _ = corpus
    cache, _ = train_cache
    cfg = CachedTrainConfig(variant="yamnet", steps=30, batch_size=4, lr=1e-2, warmup_steps=2,
                            decay_to_init=0.0, val_every=10)
    module = extractor
    train, val = Split.of(items, cache), Split.of(items, val_cache)
    bank = TextBank(module.text)
    bank.add([c for it in items for c in it.captions] + [f"This is a sound of {x}." for x in val.labels])
    init = {k: v.clone() for k, v in module.state_dict().items()}
    before = evaluate(module, val, bank)
    history = train_run(module, cfg, train, val, bank, 0, init, set(train.labels))
    assert [h["step"] for h in history] == [0, 10, 20, 30]
    assert {k: history[0][k] for k in before} == before
    # the zero-initialised branches moved, so the model is no longer the baseline
    assert module.embedding_proj.weight.abs().sum() > 0
    module.save_pretrained(tmp_path / "m")
    model = load_model(tmp_path / "m")
    from trainer.datasets import load_clip
    waves = [load_clip(it.audio, SR, None, None) for it in items if "hiss" not in str(it.audio)]
    expected = clip_vectors(module, val)[[0, 2, 3]]
    np.testing.assert_allclose(model.embed_audio(waves), expected, atol=1e-5)
    with torch.no_grad():
        rows = project_rows(module, val_cache, np.array([0])).numpy()
    np.testing.assert_allclose(rows[0], expected[0], atol=1e-5)


def test_audioset_space_trains_from_the_cache_prior_and_saves_a_matching_model(corpus, train_cache, val_cache,
                                                                              tmp_path):
    from trainer.cached_train import class_prior

    items, _ = corpus
    cache, _ = train_cache
    prior = class_prior(cache)
    np.testing.assert_allclose(prior, cache.posteriors[cache.view == 0].mean(0))
    cfg = CachedTrainConfig(variant="yamnet", space="audioset", steps=20, batch_size=4, lr=1e-2, warmup_steps=2,
                            decay_to_init=0.0, val_every=10, everyday_exclude=["hiss"])
    module = build_module(cfg, prior)
    assert module.config.dim == 521
    # the untrained start is the prior-scaled posteriors
    expected = val_cache.posteriors / (prior + 1e-3) ** cfg.class_prior_power
    with torch.no_grad():
        start = project_rows(module, val_cache, slice(None)).numpy()
    np.testing.assert_allclose(start, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)
    train, val = Split.of(items, cache), Split.of(items, val_cache)
    bank = TextBank(module.text)
    bank.add([c for it in items for c in it.captions] + val.labels + [f"This is a sound of {x}." for x in val.labels])
    init = {k: v.clone() for k, v in module.state_dict().items()}
    text_before = module.class_text.detach().clone()
    history = train_run(module, cfg, train, val, bank, 0, init, set(train.labels))
    assert [h["step"] for h in history] == [0, 10, 20]
    # figures over the everyday labels (all but "hiss") are reported beside the full ones
    assert "zs_top1_everyday" in history[-1] and "zs_top1_everyday" in history[0]
    assert not torch.allclose(module.class_text.detach(), text_before)
    # train_text_classes=False keeps the text side's class table and τ where they started
    frozen_cfg = CachedTrainConfig(**{**cfg.__dict__, "train_text_classes": False})
    frozen = build_module(frozen_cfg, prior)
    tau_before = frozen.log_text_temperature.detach().clone()
    frozen_init = {k: v.clone() for k, v in frozen.state_dict().items()}
    train_run(frozen, frozen_cfg, train, val, bank, 0, frozen_init, set(train.labels))
    assert torch.equal(frozen.class_text.detach(), text_before)
    assert torch.equal(frozen.log_text_temperature.detach(), tau_before)
    assert not torch.equal(frozen.class_proj.weight.detach(), frozen_init["class_proj.weight"])
    module.save_pretrained(tmp_path / "m")
    model = load_model(tmp_path / "m")
    from trainer.datasets import load_clip
    waves = [load_clip(it.audio, SR, None, None) for it in items if "hiss" not in str(it.audio)]
    np.testing.assert_allclose(model.embed_audio(waves), clip_vectors(module, val)[[0, 2, 3]], atol=1e-5)
    from trainer.cached_train import encode_texts
    with torch.no_grad():
        cached = encode_texts(module, bank, ["beep", "the sound of hum"]).numpy()
    np.testing.assert_allclose(model.embed_text(["beep", "the sound of hum"]), cached, atol=1e-5)


def test_take_selects_rows_of_every_array_and_can_renumber_items():
    rng = np.random.default_rng(0)
    cache = FeatureCache(rng.random((6, 521), np.float32), rng.random((6, 1024), np.float32),
                         np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 1, 0, 1]),
                         rng.random((6, 512), np.float32), {"done_items": 3})
    clean = cache.take(cache.view == 0)
    assert len(clean) == 3 and clean.item.tolist() == [0, 1, 2] and clean.view.tolist() == [0, 0, 0]
    np.testing.assert_array_equal(clean.aisfx, cache.aisfx[[0, 2, 4]])
    np.testing.assert_array_equal(clean.posteriors, cache.posteriors[[0, 2, 4]])
    last = cache.take(np.array([4, 5]), item=np.array([0, 0]))
    assert last.item.tolist() == [0, 0] and last.meta == cache.meta and last.meta is not cache.meta
    np.testing.assert_array_equal(last.embedding, cache.embedding[4:])
    assert FeatureCache(cache.posteriors, cache.embedding, cache.item, cache.view).take([1]).aisfx is None


def test_minilm_mix_trains_from_the_cache_and_saves_a_matching_model(corpus, train_cache, val_cache, tmp_path):
    """The cached trainer computes the mixed vectors as the saved model does (audio and text)."""
    from trainer.cached_train import class_prior, encode_texts

    items, _ = corpus
    cache, _ = train_cache
    cfg = CachedTrainConfig(variant="yamnet", space="audioset", minilm_mix=0.25, steps=10, batch_size=4,
                            lr=1e-2, warmup_steps=2, decay_to_init=0.0, val_every=10, train_text_classes=False)
    module = build_module(cfg, class_prior(cache))
    train, val = Split.of(items, cache), Split.of(items, val_cache)
    bank = TextBank(module.text)
    bank.add([c for it in items for c in it.captions] + val.labels + [f"This is a sound of {x}." for x in val.labels])
    init = {k: v.clone() for k, v in module.state_dict().items()}
    train_run(module, cfg, train, val, bank, 0, init, set(train.labels))
    assert not torch.equal(module.embedding_proj.weight.detach(), init["embedding_proj.weight"])
    assert torch.equal(module.mix_class_table, init["mix_class_table"])      # the baseline's part stays frozen
    module.save_pretrained(tmp_path / "m")
    model = load_model(tmp_path / "m")
    assert model.dim == 521 + 384
    from trainer.datasets import load_clip
    waves = [load_clip(it.audio, SR, None, None) for it in items if "hiss" not in str(it.audio)]
    np.testing.assert_allclose(model.embed_audio(waves), clip_vectors(module, val)[[0, 2, 3]], atol=1e-5)
    with torch.no_grad():
        cached = encode_texts(module, bank, ["beep", "the sound of hum"]).numpy()
    np.testing.assert_allclose(model.embed_text(["beep", "the sound of hum"]), cached, atol=1e-5)

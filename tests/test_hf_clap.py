"""Hugging Face CLAP backend: parity with transformers' own pipeline, determinism, errors."""
from __future__ import annotations

import shutil
from itertools import cycle

import numpy as np
import pytest
import torch
from conftest import chirp, noise, tone
from tests.tiny_models import make_tiny_clap

from engine.errors import ModelUnavailable
from engine.models import load_model
from engine.models.clap_features import fusion_crop_starts
from engine.models.hf_clap import HFClapModel

SR = 48_000


def _clips(seconds: list[float]) -> list[np.ndarray]:
    """Distinct content per clip (tone, noise, chirp in turn) of the given lengths."""
    makers = [lambda s: tone(440, s, SR), lambda s: noise(s, SR, seed=1),
              lambda s: chirp(200, 9000, s, SR), lambda s: tone(2500, s, SR, amp=0.2) + noise(s, SR, amp=0.05),
              lambda s: chirp(6000, 300, s, SR) * np.linspace(0, 1, int(s * SR), dtype=np.float32),
              lambda s: np.sign(tone(120, s, SR)) * 0.3, lambda s: tone(5000, s, SR) + tone(90, s, SR)]
    return [makers[i % len(makers)](s).astype(np.float32) for i, s in enumerate(seconds)]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(-1)


def _reference_audio(folder, clips: list[np.ndarray]) -> np.ndarray:
    """transformers' ClapProcessor → ClapModel.get_audio_features, one clip per call, with the
    honest is_longer flag (transformers marks a short clip 'longer' when none in the batch is)."""
    from transformers import ClapModel, ClapProcessor

    model = ClapModel.from_pretrained(folder).eval()
    processor = ClapProcessor.from_pretrained(folder)
    fe = processor.feature_extractor
    rows = []
    for clip in clips:
        inputs = processor(audio=[clip], sampling_rate=SR, return_tensors="pt")
        chunk_frames = fe.nb_max_samples // fe.hop_length + 1
        honest = len(clip) > fe.nb_max_samples and inputs["input_features"].shape[1] == 4 \
            and (len(clip) // fe.hop_length + 1) > chunk_frames
        inputs["is_longer"][:] = honest
        with torch.inference_mode():
            out = model.get_audio_features(**inputs)
        rows.append(getattr(out, "pooler_output", out)[0].numpy())
    return np.stack(rows)


@pytest.fixture
def fixed_transformers_crops(monkeypatch):
    """Make transformers' random crops the fixed ones soundsift takes (front/middle/back of
    its three ranges for fusion, offset 0 for rand_trunc)."""
    picks = cycle([lambda r: r[0], lambda r: r[len(r) // 2], lambda r: r[-1]])
    monkeypatch.setattr(np.random, "choice", lambda a, *args, **kw: next(picks)(np.asarray(a)))
    monkeypatch.setattr(np.random, "randint", lambda low, high=None, *args, **kw: 0)


@pytest.fixture(scope="module")
def unfused(tiny_clap_dir) -> HFClapModel:
    return load_model(tiny_clap_dir)


@pytest.fixture(scope="module")
def fused(tiny_fused_clap_dir) -> HFClapModel:
    return load_model(tiny_fused_clap_dir)


def test_factory_loads_tiny_folders_as_hf_clap(unfused, fused, tiny_clap_dir):
    for model, is_fused in ((unfused, False), (fused, True)):
        assert isinstance(model, HFClapModel)
        assert (model.sample_rate, model.dim, model.window_seconds) == (SR, 32, 10.0)
        assert model.fused is is_fused
        assert model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
        assert not model.model.training
    assert unfused.name == str(tiny_clap_dir)


@pytest.mark.parametrize("which", ["unfused", "fused"])
def test_audio_features_equal_transformers_extractor(which, request, fixed_transformers_crops):
    model = request.getfixturevalue(which)
    from transformers import ClapFeatureExtractor

    hf = ClapFeatureExtractor.from_pretrained(request.getfixturevalue(
        "tiny_fused_clap_dir" if which == "fused" else "tiny_clap_dir"))
    for clip in _clips([0.05, 3.0, 10.0, 14.0]):
        ours, _ = model.features([clip])
        theirs = hf([clip], sampling_rate=SR, return_tensors="pt")["input_features"]
        assert ours.shape == theirs.shape
        # log-mel dB values (floor -100 dB); both sides keep the FFT in complex64
        assert torch.allclose(ours.cpu(), theirs, atol=1e-3), float((ours.cpu() - theirs).abs().max())


@pytest.mark.parametrize("which,folder", [("unfused", "tiny_clap_dir"), ("fused", "tiny_fused_clap_dir")])
def test_embed_audio_equals_transformers(which, folder, request, fixed_transformers_crops):
    model = request.getfixturevalue(which)
    clips = _clips([0.5, 3.0, 7.3, 10.0, 14.0, 25.0])  # the last two exceed the 10 s window
    ours = model.embed_audio(clips)
    theirs = _reference_audio(request.getfixturevalue(folder), clips)
    assert ours.dtype == np.float32 and ours.shape == (len(clips), 32)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (_cos(ours, theirs) >= 0.9999).all(), _cos(ours, theirs)
    # the threshold can fail: distinct clips are further apart than it allows
    off_diagonal = (ours @ ours.T)[~np.eye(len(clips), dtype=bool)]
    assert off_diagonal.max() < 0.9999


@pytest.mark.parametrize("which", ["unfused", "fused"])
def test_clip_alone_equals_clip_in_any_batch(which, request):
    model = request.getfixturevalue(which)
    clips = _clips([0.5, 3.0, 10.0, 12.5, 1.0])
    batch = model.embed_audio(clips)
    alone = np.concatenate([model.embed_audio([c]) for c in clips])
    reversed_batch = model.embed_audio(clips[::-1])[::-1]
    model.audio_batch_size, saved = 2, model.audio_batch_size
    try:
        small_batches = model.embed_audio(clips)
    finally:
        model.audio_batch_size = saved
    for other in (alone, reversed_batch, small_batches):
        assert (_cos(batch, other) >= 0.9999).all()


def test_fused_is_longer_is_honest(fused):
    _, longer = fused.features(_clips([0.5, 10.0, 10.005, 10.5, 30.0]))
    # 10.005 s is within one hop of the window: transformers uses it whole, not fused
    assert longer[:, 0].tolist() == [False, False, False, True, True]


def test_fusion_crop_starts_are_fixed_front_middle_back():
    assert fusion_crop_starts(1401, 1001) == (0, 201, 400)
    # two offsets: ranges [0], [1], [] → the empty back range falls back to 0 (as transformers)
    assert fusion_crop_starts(1002, 1001) == (0, 1, 0)
    assert fusion_crop_starts(3001, 1001) == (0, 1000, 2000)


def test_unfused_long_clip_takes_the_front_window(unfused):
    clip = np.concatenate(_clips([10.0, 8.0]))
    front, whole = unfused.embed_audio([clip[: 10 * SR], clip])
    assert _cos(front, whole) >= 0.9999
    tail = unfused.embed_audio([clip[-10 * SR:]])[0]
    assert _cos(tail, whole) < 0.9999


def test_fused_long_clip_is_deterministic_and_uses_whole_clip(fused):
    clip = np.concatenate(_clips([10.0, 8.0]))
    first, again = fused.embed_audio([clip]), fused.embed_audio([clip])
    np.testing.assert_array_equal(first, again)
    assert _cos(first[0], fused.embed_audio([clip[: 10 * SR]])[0]) < 0.9999


def test_embed_audio_edge_cases(unfused):
    assert unfused.embed_audio([]).shape == (0, 32)
    tiny = unfused.embed_audio([np.full(1, 0.1, np.float32)])
    assert np.isfinite(tiny).all() and tiny.shape == (1, 32)
    with pytest.raises(ValueError, match="waveform 1: .*empty"):
        unfused.embed_audio([np.ones(100, np.float32), np.zeros(0, np.float32)])
    with pytest.raises(ValueError, match="waveform 0: .*NaN"):
        unfused.embed_audio([np.array([0.1, np.nan, 0.2], np.float32)])
    with pytest.raises(ValueError, match="waveform 0: .*1-D mono"):
        unfused.embed_audio([np.zeros((2, 4800), np.float32)])


TEXTS = ["a dog barking", "rain", "this is a sound of thunder and wind in the storm", "",
         "Glass BREAK!!", "ünïcödé 日本語 🎹 piano"]


@pytest.mark.parametrize("which,folder", [("unfused", "tiny_clap_dir"), ("fused", "tiny_fused_clap_dir")])
def test_embed_text_equals_transformers(which, folder, request):
    from transformers import ClapModel, ClapProcessor

    model = request.getfixturevalue(which)
    ref_model = ClapModel.from_pretrained(request.getfixturevalue(folder)).eval()
    processor = ClapProcessor.from_pretrained(request.getfixturevalue(folder))
    ours = model.embed_text(TEXTS)
    rows = []
    for text in TEXTS:
        with torch.inference_mode():
            out = ref_model.get_text_features(**processor(text=[text], return_tensors="pt"))
        rows.append(getattr(out, "pooler_output", out)[0].numpy())
    theirs = np.stack(rows)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 32)
    assert (_cos(ours, theirs) >= 0.9999).all(), _cos(ours, theirs)
    assert (ours @ ours.T)[~np.eye(len(TEXTS), dtype=bool)].max() < 0.9999


def test_text_padding_and_batching_do_not_change_vectors(unfused):
    batch = unfused.embed_text(TEXTS)
    alone = np.concatenate([unfused.embed_text([t]) for t in TEXTS])
    unfused.text_batch_size, saved = 4, unfused.text_batch_size
    try:
        split = unfused.embed_text(TEXTS)
    finally:
        unfused.text_batch_size = saved
    assert (_cos(batch, alone) >= 0.9999).all()
    assert (_cos(batch, split) >= 0.9999).all()


def test_long_text_is_truncated_to_a_tiny_checkpoints_own_limit(unfused):
    assert unfused.text_max_length == 64      # its own limit, under LAION-CLAP's 77
    head = " ".join(["dog bark"] * 80)  # far beyond 64 tokens
    a, b = unfused.embed_text([head + " rain", head + " thunder storm piano"])
    assert _cos(a, b) >= 0.99999
    short_a, short_b = unfused.embed_text(["dog bark rain", "dog bark thunder storm piano"])
    assert _cos(short_a, short_b) < 0.9999


def test_embed_text_rejects_non_strings(unfused):
    with pytest.raises(TypeError, match="text 1 is int"):
        unfused.embed_text(["ok", 3])
    with pytest.raises(TypeError, match="list of strings"):
        unfused.embed_text("a single string")


def test_fingerprint_stable_and_tied_to_weights(tiny_clap_dir, unfused, fused, tmp_path):
    assert load_model(tiny_clap_dir).fingerprint == unfused.fingerprint
    assert unfused.fingerprint.startswith("hf-clap/1:")
    assert fused.fingerprint != unfused.fingerprint
    other_seed = load_model(make_tiny_clap(tmp_path / "seed1", seed=1))
    assert other_seed.fingerprint != unfused.fingerprint
    copy = shutil.copytree(tiny_clap_dir, tmp_path / "copy")
    assert load_model(copy).fingerprint == unfused.fingerprint  # a copy elsewhere: same model


def test_unknown_hub_id_offline_is_model_unavailable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match=r"(?i)nobody-here/no-such-clap.*connect once.*local folder"):
        load_model("nobody-here/no-such-clap")


def test_folder_without_weights_is_model_unavailable(tiny_clap_dir, tmp_path):
    folder = tmp_path / "no_weights"
    folder.mkdir()
    shutil.copy(tiny_clap_dir / "config.json", folder / "config.json")
    with pytest.raises(ModelUnavailable, match=r"no_weights: no weights"):
        load_model(folder)


def test_folder_without_tokenizer_is_model_unavailable(tiny_clap_dir, tmp_path):
    folder = shutil.copytree(tiny_clap_dir, tmp_path / "no_tokenizer")
    for f in folder.glob("tokenizer*"):
        f.unlink()
    for f in folder.glob("vocab.json"):
        f.unlink()
    with pytest.raises(ModelUnavailable, match=r"no_tokenizer: could not load the CLAP checkpoint.*special tokens"):
        load_model(folder)


def test_a_hub_id_is_loaded_from_the_cache_before_the_hub_is_asked():
    """A checkpoint downloaded once loads with local_files_only (no hub request, no retries on
    an offline machine); only what is not cached goes to the hub; a local folder is read as is."""
    from engine.models.hf_clap import _from_cache_first

    calls = []

    class Cached:
        @staticmethod
        def from_pretrained(source, local_files_only=False):
            calls.append(("cached", local_files_only))
            return "model"

    class NotCached:
        @staticmethod
        def from_pretrained(source, local_files_only=False):
            calls.append(("not cached", local_files_only))
            if local_files_only:
                raise OSError("not in the cache")
            return "downloaded"

    assert _from_cache_first("laion/x", False, Cached) == ("model",) and calls == [("cached", True)]
    calls.clear()
    assert _from_cache_first("laion/x", False, Cached, NotCached) == ("model", "downloaded")
    assert calls == [("cached", True), ("not cached", True), ("cached", False), ("not cached", False)]
    calls.clear()
    assert _from_cache_first("/models/x", True, Cached) == ("model",) and calls == [("cached", False)]

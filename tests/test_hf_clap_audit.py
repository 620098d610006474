"""Hugging Face CLAP backend against transformers' own pipeline, beyond tests/test_hf_clap.py:
checkpoints stored in half precision, tokenizers that pad on the left, every padding mode of
the feature extractor, the fused ``is_longer`` flag around the window, and zero-shot scores
against ``ClapModel``'s own ``logits_per_audio``."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tests.test_hf_clap import SR, _clips, _cos

from engine import zeroshot
from engine.models import load_model
from engine.models.hf_clap import HFClapModel

pytestmark = pytest.mark.usefixtures("private_cache")

FOLDERS = {"unfused": "tiny_clap_dir", "fused": "tiny_fused_clap_dir"}
TEXTS = ["dog", "a dog barking in the rain with thunder and wind", "glass break", "piano music"]


def _reference_short(reference, extractor, clips: list[np.ndarray]) -> np.ndarray:
    """transformers' extractor → ClapModel.get_audio_features, one clip of at most the window per
    call, not marked 'longer' (transformers marks a lone short clip 'longer' at random)."""
    rows = []
    for clip in clips:
        assert len(clip) <= extractor.nb_max_samples
        inputs = extractor([clip], sampling_rate=SR, return_tensors="pt")
        inputs["is_longer"][:] = False
        with torch.inference_mode():
            out = reference.get_audio_features(**inputs)
        rows.append(getattr(out, "pooler_output", out)[0].numpy())
    return np.stack(rows)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("which", ["unfused", "fused"])
def test_checkpoint_stored_in_half_precision_embeds_like_its_float32_upcast(which, dtype, request, tmp_path):
    """transformers 5 loads such a checkpoint in its stored dtype; the audio tower then failed on
    the float32 features ("mixed dtype"). Now it runs in float32, equal to the reference pipeline
    on the same weights upcast."""
    from transformers import ClapFeatureExtractor, ClapModel

    folder = shutil.copytree(request.getfixturevalue(FOLDERS[which]), tmp_path / "half")
    ClapModel.from_pretrained(folder).to(dtype).save_pretrained(folder)
    assert ClapModel.from_pretrained(folder).dtype == dtype  # what the loader is handed

    model = load_model(folder)
    clips = _clips([0.5, 10.0, 14.0])
    ours = model.embed_audio(clips)
    reference = ClapModel.from_pretrained(folder).float().eval()
    theirs = _reference_short(reference, ClapFeatureExtractor.from_pretrained(folder), clips[:2])
    assert (_cos(ours[:2], theirs) >= 0.9999).all(), _cos(ours[:2], theirs)
    assert np.isfinite(ours).all()
    assert model.model.dtype == torch.float32


def test_left_padding_tokenizer_config_does_not_make_text_vectors_batch_dependent(tiny_clap_dir, tmp_path):
    """The text pooler reads token 0; a tokenizer_config.json asking for left padding made it a pad
    token for every text of a batch but the longest (cosine down to 0.47 to the text alone)."""
    folder = shutil.copytree(tiny_clap_dir, tmp_path / "left")
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "padding_side": "left"}))

    model = load_model(folder)
    assert model.tokenizer.padding_side == "left"  # the setting really reached the tokenizer
    batch = model.embed_text(TEXTS)
    alone = np.concatenate([model.embed_text([t]) for t in TEXTS])
    assert (_cos(batch, alone) >= 0.9999).all(), _cos(batch, alone)
    assert (_cos(batch, load_model(tiny_clap_dir).embed_text(TEXTS)) >= 0.9999).all()


@pytest.mark.parametrize("padding", ["pad", "repeat", "repeatpad"])
@pytest.mark.parametrize("which", ["unfused", "fused"])
def test_every_padding_mode_equals_transformers(which, padding, request):
    """The checkpoint's ``padding`` (preprocessor_config.json) is honoured, whichever it is."""
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

    folder = request.getfixturevalue(FOLDERS[which])
    reference = ClapModel.from_pretrained(folder).eval()
    extractor = ClapFeatureExtractor.from_pretrained(folder, padding=padding)
    model = HFClapModel.from_parts(reference, extractor, AutoTokenizer.from_pretrained(folder),
                                   name=f"{which}-{padding}", device="cpu")
    assert model.features.params.padding == padding
    clips = _clips([0.3, 2.7, 6.1])
    ours = model.embed_audio(clips)
    assert (_cos(ours, _reference_short(reference, extractor, clips)) >= 0.9999).all()


def test_fused_is_longer_equals_transformers_per_clip_flag(tiny_fused_clap_dir):
    """Our flag is transformers' own per-clip one (``_get_input_mel``), before its batch-level step
    that marks a random clip 'longer' when none is."""
    from transformers import ClapFeatureExtractor

    model = load_model(tiny_fused_clap_dir)
    extractor = ClapFeatureExtractor.from_pretrained(tiny_fused_clap_dir)
    window = extractor.nb_max_samples
    lengths = [1, window - 1, window, window + 1, window + extractor.hop_length - 1,
               window + extractor.hop_length, 2 * window]
    clips = [np.resize(c, n).astype(np.float32) for c, n in zip(_clips([1.0] * len(lengths)), lengths)]
    _, ours = model.features(clips)
    np.random.seed(0)
    theirs = [bool(extractor._get_input_mel(np.asarray(c, np.float64), window, "fusion", "repeatpad")[1])
              for c in clips]
    assert ours[:, 0].tolist() == theirs == [False] * 5 + [True, True]


@pytest.mark.parametrize("which", ["unfused", "fused"])
def test_zero_shot_scores_equal_transformers_logits_per_audio(which, request):
    """Tag scores are softmax over the labels of ClapModel's ``logits_per_audio`` (cosine times
    exp(logit_scale_a)), on L2-normalised vectors."""
    from transformers import ClapModel, ClapProcessor

    folder = request.getfixturevalue(FOLDERS[which])
    model = load_model(folder)
    reference = ClapModel.from_pretrained(folder).eval()
    processor = ClapProcessor.from_pretrained(folder)
    assert model.logit_scale == pytest.approx(float(reference.logit_scale_a.detach().exp()), rel=1e-6)
    clip = _clips([4.0])[0]
    tags = zeroshot.tag(model, model.embed_audio([clip])[0], TEXTS, top=len(TEXTS), template="{label}")
    ours = {t["label"]: t["score"] for t in tags}
    text_inputs = processor(text=TEXTS, return_tensors="pt", padding=True)
    audio_inputs = processor.feature_extractor([clip], sampling_rate=SR, return_tensors="pt")
    audio_inputs["is_longer"][:] = False
    with torch.inference_mode():
        out = reference(**text_inputs, **audio_inputs)
    theirs = out.logits_per_audio.softmax(dim=-1)[0].numpy()
    np.testing.assert_allclose([ours[t] for t in TEXTS], theirs, atol=1e-4)
    assert theirs.max() - theirs.min() > 0.05  # the labels are told apart: the check can fail

"""Tiny random Hugging Face CLAP checkpoints for tests: offline, built in about a second.

``make_tiny_clap(folder)`` writes a folder that ``engine.load_model(folder)`` reads like a
downloaded ``laion/clap-htsat-*`` checkpoint: ``config.json`` (``model_type: "clap"``),
``model.safetensors``, ``preprocessor_config.json`` and a RoBERTa byte-level BPE tokenizer
trained in-process on a small word list. The audio side keeps the real feature extractor
(48 kHz, 64 mel bins, hop 480, 10 s window, repeatpad) and the real spectrogram geometry
(``spec_size`` 256), with a two-stage HTSAT of width 16/32; the text side is a two-layer
RoBERTa of width 32; both project to 32 dimensions.

The session fixtures ``tiny_clap_dir`` / ``tiny_fused_clap_dir`` reach every test through
``tests/conftest.py``; test modules request them by name and do not import them.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

#: words the tiny tokenizer is trained on (covers the usual test prompts)
WORDS = (
    "this is a sound of the an and with in on at from dog bark barking cat meow rain thunder "
    "storm wind car engine motor door knock bell ring water drip splash bird chirp birds "
    "footsteps glass break music piano guitar drum drums speech voice talking laugh crowd "
    "applause siren alarm fire crackle wave waves ocean sea river noise tone sine beep click "
    "hum buzz whoosh impact explosion gun shot train plane helicopter keyboard typing phone "
    "clock tick silence loud quiet low high pitch bass sweep chirp white pink synth pad"
).split()

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa ids 0..4
TEXT_MAX_LENGTH = 64


def _train_tokenizer(out_dir: Path, vocab_size: int = 400):
    """A RoBERTa byte-level BPE tokenizer trained on :data:`WORDS` (deterministic)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    corpus = [" ".join(WORDS)] * 4 + WORDS
    bpe.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=1,
                            special_tokens=SPECIAL_TOKENS, show_progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        bpe.save_model(tmp)  # vocab.json + merges.txt
        return RobertaTokenizerFast.from_pretrained(tmp, model_max_length=TEXT_MAX_LENGTH)


def tiny_clap_config(fused: bool = False, vocab_size: int = 400):
    """The ClapConfig of the tiny model (random weights come from ``ClapModel(config)``)."""
    from transformers import ClapAudioConfig, ClapConfig, ClapTextConfig

    text = ClapTextConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=TEXT_MAX_LENGTH + 2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    audio = ClapAudioConfig(
        spec_size=256, num_mel_bins=64, window_size=8, patch_size=4, patch_stride=(4, 4),
        patch_embeds_hidden_size=16, hidden_size=32,  # 16 * 2 ** (stages - 1)
        depths=(1, 1), num_attention_heads=(1, 2), num_hidden_layers=2, mlp_ratio=2.0,
        enable_fusion=fused, fusion_type=None, aff_block_r=4, num_classes=10,
        hidden_dropout_prob=0.0,
    )
    return ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=32)


def make_tiny_clap(folder: Path, fused: bool = False, *, seed: int = 0) -> Path:
    """Write a tiny random transformers CLAP checkpoint (model + processor) into ``folder``.

    ``fused=True`` gives a fusion checkpoint (``audio_config.enable_fusion``, feature
    extractor ``truncation="fusion"``) like ``laion/clap-htsat-fused``; otherwise an unfused
    one (``truncation="rand_trunc"``) like ``laion/clap-htsat-unfused``. Same seed, same weights.
    """
    import torch
    from transformers import ClapFeatureExtractor, ClapModel, ClapProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(folder)
    feature_extractor = ClapFeatureExtractor(
        feature_size=64, sampling_rate=48_000, hop_length=480, max_length_s=10,
        fft_window_size=1024, frequency_min=50, frequency_max=14_000,
        truncation="fusion" if fused else "rand_trunc", padding="repeatpad",
    )
    torch.manual_seed(seed)
    model = ClapModel(tiny_clap_config(fused=fused, vocab_size=len(tokenizer))).eval()
    _randomize_norm_stats(model, seed)
    _spread_text_weights(model, seed)
    model.save_pretrained(folder)
    ClapProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def _randomize_norm_stats(model, seed: int) -> None:
    """Give BatchNorm running stats plausible values for log-mel input (dB around -50 ± 20).

    Fresh BatchNorm has mean 0 / var 1, which would leave dB-scale features unnormalised;
    these stats keep activations in a sane range so that parity checks are meaningful.
    """
    import torch

    g = torch.Generator().manual_seed(seed + 1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(-50.0 + 5.0 * torch.randn(n, generator=g))
            module.running_var.copy_(400.0 * (0.5 + torch.rand(n, generator=g)))


def _spread_text_weights(model, seed: int) -> None:
    """Re-draw the text tower's weights wider than transformers' init (std 0.02).

    With the default init every text maps to nearly the same vector (cosine ≈ 0.995), which
    would make text search in tests meaningless; these weights spread texts apart (mean
    pairwise cosine ≈ 0.75).
    """
    import torch

    g = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for pname, p in model.text_model.named_parameters():
            if p.dim() != 2:
                continue
            std = 1.0 if "embeddings" in pname else 2.0 / p.shape[1] ** 0.5
            p.copy_(torch.randn(p.shape, generator=g) * std)
        for layer in (model.text_projection.linear1, model.text_projection.linear2):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 1.5 / layer.weight.shape[1] ** 0.5)


@pytest.fixture(scope="session")
def tiny_clap_dir(tmp_path_factory) -> Path:
    """A tiny unfused CLAP checkpoint folder (like laion/clap-htsat-unfused), built once."""
    return make_tiny_clap(tmp_path_factory.mktemp("tiny_clap"), fused=False)


@pytest.fixture(scope="session")
def tiny_fused_clap_dir(tmp_path_factory) -> Path:
    """A tiny fused CLAP checkpoint folder (like laion/clap-htsat-fused), built once."""
    return make_tiny_clap(tmp_path_factory.mktemp("tiny_fused_clap"), fused=True)

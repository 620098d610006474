"""Carrier phrases (engine.prompt_carriers): "This is a sound of {label}." is read as "{label}" by a
model whose config lists the carriers, in the query layer and in the cached trainer alike."""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ModelUnavailable
from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig
from engine.prompt_carriers import CARRIERS, strip_carrier
from engine.towers import yamnet
from engine.zeroshot import DEFAULT_TEMPLATE

# each module's init_baseline encodes the 521 AudioSet class names: once per run is enough
pytestmark = pytest.mark.usefixtures("minilm_memo")


@pytest.mark.parametrize("text, read", [
    ("This is a sound of dog barking.", "dog barking"),       # the zero-shot prompt
    ("the sound of rain on a roof", "rain on a roof"),
    ("THE SOUND OF thunder!", "thunder"),
    ("A recording of: a busy street", "a busy street"),
    ("soundscape of a city", "soundscape of a city"),          # whole words only
    ("sound of", "sound of"),                                  # nothing would be left
    ("dog barking in the sound of rain", "dog barking in the sound of rain"),   # leading only
])
def test_strip_carrier(text, read):
    assert strip_carrier(text) == read
    assert strip_carrier(text, []) == text


def _module(carriers: list[str]) -> SoundsiftClap:
    cfg = SoundsiftClapConfig(space="audioset", dim=yamnet.NUM_CLASSES, text_adapter=False,
                              use_yamnet_embedding=False, minilm_mix=0.15, query_carriers=carriers)
    return SoundsiftClap(cfg).init_baseline(np.full(yamnet.NUM_CLASSES, 0.01)).eval()


def test_a_model_with_carriers_reads_the_prompt_as_its_label():
    import torch

    with_carriers, without = _module(list(CARRIERS)), _module([])
    labels = ["dog barking", "hail", "church bells"]
    prompts = [DEFAULT_TEMPLATE.format(label=x) for x in labels]
    with torch.no_grad():
        assert torch.equal(with_carriers.encode_text(prompts), with_carriers.encode_text(labels))
        assert not torch.allclose(without.encode_text(prompts), without.encode_text(labels))
        assert torch.equal(without.encode_text(labels), with_carriers.encode_text(labels))
    assert with_carriers.query_texts(prompts) == labels and without.query_texts(prompts) == prompts


def test_the_cached_trainer_reads_texts_as_the_model_does(tmp_path):
    """encode_texts (cached MiniLM vectors → text_head) gives the model's own encode_text."""
    import torch

    from trainer.cached_train import TextBank, encode_texts

    module = _module(list(CARRIERS))
    bank = TextBank(module.text)
    texts = ["This is a sound of hail.", "hail", "the sound of a kettle whistling"]
    with torch.no_grad():
        np.testing.assert_allclose(encode_texts(module, bank, texts).numpy(),
                                   module.encode_text(texts).numpy(), atol=1e-6)


@pytest.mark.parametrize("carriers", [["This is a sound of"], [" sound of"], [""], "sound of"])
def test_carriers_must_be_lower_case_phrases(carriers):
    cfg = SoundsiftClapConfig(space="audioset", dim=yamnet.NUM_CLASSES, query_carriers=carriers)
    with pytest.raises(ModelUnavailable, match="query_carriers must be a list of lower-case phrases"):
        cfg.check()

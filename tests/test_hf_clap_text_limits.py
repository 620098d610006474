"""Hugging Face CLAP text side: texts cut at LAION-CLAP's 77 tokens (not the tokenizer's 512), the
limit configurable, and the text encoding part of the text fingerprint, so label vectors cached on
disk with another encoding are not used as if they were this one's, while indexes (audio vectors,
keyed by the fingerprint, which leaves the text encoding out) stay valid."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import noise, tone, write

from engine import zeroshot
from engine.errors import ModelUnavailable
from engine.models import load_model
from engine.models import hf_clap
from engine.models.hf_clap import HFClapModel

pytestmark = pytest.mark.usefixtures("private_cache")

ENV = "SOUNDSIFT_CLAP_TEXT_TOKENS"      # as README documents it

#: far beyond 77 tokens (two per repetition); the tails differ only after token 100
HEAD = " ".join(["dog bark"] * 50)
LONG = [HEAD + " rain", HEAD + " thunder storm piano"]


@pytest.fixture(scope="module")
def laion_dir(tiny_clap_dir, tmp_path_factory) -> Path:
    """The tiny checkpoint with laion/*'s text geometry: 514 position embeddings (512 tokens after
    RoBERTa's offset of 2) and a tokenizer whose model_max_length is 512, like roberta-base's."""
    from transformers import AutoTokenizer, ClapConfig, ClapFeatureExtractor, ClapModel

    folder = tmp_path_factory.mktemp("laion_shaped")
    small = ClapModel.from_pretrained(tiny_clap_dir).state_dict()
    config = ClapConfig.from_pretrained(tiny_clap_dir)
    config.text_config.max_position_embeddings = 514
    torch.manual_seed(0)
    model = ClapModel(config).eval()
    state = model.state_dict()
    g = torch.Generator().manual_seed(3)
    for key, value in small.items():
        if value.shape == state[key].shape:
            state[key] = value
        elif key.endswith("position_embeddings.weight"):     # the tiny rows, then more of their kind
            wide = torch.randn(state[key].shape, generator=g) * value.std()
            wide[: len(value)] = value
            state[key] = wide
    model.load_state_dict(state)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_clap_dir, model_max_length=512).save_pretrained(folder)
    ClapFeatureExtractor.from_pretrained(tiny_clap_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def laion(laion_dir) -> HFClapModel:
    return load_model(laion_dir)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(-1)


def _laion_clap_reference(folder: Path, texts: list[str]) -> np.ndarray:
    """LAION-CLAP's own text encoding (src/laion_clap/hook.py, CLAP_Module.tokenizer: RoBERTa,
    padding="max_length", truncation=True, max_length=77) through transformers' ClapModel."""
    from transformers import AutoTokenizer, ClapModel

    model = ClapModel.from_pretrained(folder).eval()
    tokens = AutoTokenizer.from_pretrained(folder)(texts, padding="max_length", truncation=True,
                                                   max_length=77, return_tensors="pt")
    with torch.inference_mode():
        out = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    return getattr(out, "pooler_output", out).numpy()


def test_laion_shaped_checkpoint_cuts_text_at_77_tokens_like_laion_clap(laion, laion_dir):
    assert min(len(laion.tokenizer(t)["input_ids"]) for t in LONG) > 100
    a, b = laion.embed_text(LONG)
    assert _cos(a, b) >= 0.99999                   # what differs lies past token 77
    assert laion.text_limit == 512 and laion.text_max_length == 77
    texts = [*LONG, "dog bark rain", "a dog barking in the rain with thunder and wind"]
    ours, theirs = laion.embed_text(texts), _laion_clap_reference(laion_dir, texts)
    assert (_cos(ours, theirs) >= 0.9999).all(), _cos(ours, theirs)


def test_text_limit_is_configurable_and_enters_the_text_fingerprint_only(laion, laion_dir, monkeypatch):
    full = HFClapModel.load(laion_dir, text_max_tokens=512)
    assert full.text_max_length == 512
    a, b = full.embed_text(LONG)
    assert _cos(a, b) < 0.9999                     # the whole text counts again
    assert full.text_fingerprint != laion.text_fingerprint
    assert full.fingerprint == laion.fingerprint   # audio vectors do not depend on it
    assert full.text_fingerprint.startswith(f"{hf_clap.BACKEND_VERSION}:")
    assert full.text_fingerprint != full.fingerprint
    monkeypatch.setenv(ENV, "512")
    assert load_model(laion_dir).text_fingerprint == full.text_fingerprint
    monkeypatch.delenv(ENV)
    assert load_model(laion_dir).text_fingerprint == laion.text_fingerprint    # stable across loads


@pytest.mark.parametrize("value", ["abc", "2", "513", "-5", "77.5"])
def test_a_bad_text_limit_in_the_environment_is_one_clear_error(laion_dir, monkeypatch, value):
    monkeypatch.setenv(ENV, value)
    with pytest.raises(ModelUnavailable) as e:
        load_model(laion_dir)
    assert str(e.value).startswith(f"${ENV}={value!r}: expected a whole number "
                                   "of tokens from 3 to 512")


def test_a_bad_text_limit_argument_is_refused(laion_dir, laion):
    with pytest.raises(ValueError, match="from 3 to 512"):
        HFClapModel.load(laion_dir, text_max_tokens=600)
    with pytest.raises(ValueError, match="from 3 to 512"):
        laion.text_max_length = 2
    assert laion.text_max_length == 77


def test_text_fingerprint_covers_the_text_pipeline_version(laion, monkeypatch):
    """A change to how soundsift encodes text (a new TEXT_PIPELINE_VERSION) is a new text
    fingerprint; the fingerprint indexes record stays."""
    before, audio = laion.text_fingerprint, laion.fingerprint
    monkeypatch.setattr(hf_clap, "TEXT_PIPELINE_VERSION", "hf-clap-text/next", raising=False)
    assert laion.text_fingerprint != before
    assert laion.fingerprint == audio


def test_label_vectors_cached_under_another_text_encoding_are_not_reused(laion_dir):
    """Label vectors on disk are keyed by the fingerprint: made with one text limit, they were
    served unchanged after the limit changed (the fingerprint did not say how text is encoded)."""
    model = load_model(laion_dir)
    labels = [HEAD + " rain", HEAD + " thunder storm piano", "glass break"]
    model.text_max_length = 512                    # an earlier encoding of the same checkpoint
    earlier = zeroshot.label_vectors(model, labels)
    zeroshot._label_cache.clear()                  # a new process: only the disk cache is left
    model.text_max_length = 77
    now = zeroshot.label_vectors(model, labels)
    expected = model.embed_text(zeroshot.class_prompts(labels, zeroshot.DEFAULT_TEMPLATE))
    assert (_cos(now, expected) >= 0.99999).all(), _cos(now, expected)
    assert _cos(now, earlier).min() < 0.9999       # the long labels really differ between the two


def test_index_built_under_another_text_limit_is_searched_without_a_rebuild(laion_dir, tmp_path, monkeypatch):
    """An index holds audio vectors, which the text limit does not touch: built while texts were
    cut at 512 tokens (as soundsift did before), it is searched under the 77-token default with
    no `--rebuild` (re-embedding a library with a large checkpoint takes hours), and a short
    query ranks as it did."""
    from engine.query import SoundIndex
    from indexer import build_index

    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(880, 1.0, 48_000), 48_000)
    write(lib / "hiss.wav", noise(1.0, 48_000), 48_000)
    folder = shutil.copytree(laion_dir, tmp_path / "laion")
    index = tmp_path / "idx"
    monkeypatch.setenv(ENV, "512")
    build_index([lib], index=index, model=str(folder), workers=0, progress=False)
    with SoundIndex.open(index) as idx:
        before = [(h.path, round(h.score, 5)) for h in idx.search_text("dog bark", k=2)]
    monkeypatch.delenv(ENV)
    with SoundIndex.open(index) as idx:
        assert idx.model.text_max_length == 77
        after = [(h.path, round(h.score, 5)) for h in idx.search_text("dog bark", k=2)]
        long_hits = idx.search_text(LONG[0], k=2)
    assert after == before and len(after) == 2
    assert {h.path for h in long_hits} == {p for p, _ in before}

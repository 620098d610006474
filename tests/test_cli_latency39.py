"""Session 39: a one-shot ``soundsift search`` does no work a text query does not need.

YAMNet's ONNX session is built on the first audio, not with its tower; the text tower's BERT is
not randomly initialised before the file's weights replace it; the digests that fingerprint a
model are kept on disk for later processes. Each keeps every vector as it was.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from engine.towers import cache, minilm, yamnet
from engine.towers.bert import BertEncoder

from tests.conftest import tone

pytestmark = pytest.mark.usefixtures("private_cache", "minilm_memo")

TINY_BERT = {"model_type": "bert", "vocab_size": 53, "hidden_size": 16, "num_hidden_layers": 2,
             "num_attention_heads": 2, "intermediate_size": 24, "max_position_embeddings": 20,
             "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0}


@pytest.fixture
def sessions_built(monkeypatch):
    """The YAMNet onnxruntime sessions built from now on (the process's shared towers forgotten)."""
    built: list[object] = []
    real = yamnet.YamnetTower._int8_session

    def counting(*args):
        built.append(real(*args))
        return built[-1]

    monkeypatch.setattr(yamnet, "_SHARED", {})
    monkeypatch.setattr(yamnet.YamnetTower, "_int8_session", staticmethod(counting))
    return built


def test_a_text_query_builds_no_yamnet_session_and_audio_builds_it_once(sessions_built):
    from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig, SoundsiftClapModel

    module = SoundsiftClap(SoundsiftClapConfig()).init_baseline()
    model = SoundsiftClapModel(module, name="tiny", fingerprint="x")
    text = model.embed_text(["dog barking", "rain on a roof"])
    assert sessions_built == []                                    # a search by text never runs YAMNet
    sr = model.sample_rate
    first = model.embed_audio([tone(440, 1.0, sr)])
    again = model.embed_audio([tone(440, 1.0, sr)])
    assert len(sessions_built) == 1 and np.array_equal(first, again)         # one session per tower
    assert module._yamnet._session is sessions_built[0]
    assert text.shape == (2, model.dim) and first.shape == (1, model.dim)


def _bert_folder(tmp_path, seed: int = 0):
    """A tiny BERT folder (config.json + model.safetensors) with random weights drawn from ``seed``."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    state = {f"bert.{k}": v.clone() for k, v in BertEncoder(TINY_BERT).state_dict().items()}
    (tmp_path / "config.json").write_text(json.dumps(TINY_BERT))
    save_file(state, str(tmp_path / "model.safetensors"))
    return tmp_path, {k.removeprefix("bert."): v for k, v in state.items()}


def test_loading_a_bert_folder_draws_no_random_init_and_keeps_the_files_weights(tmp_path):
    folder, saved = _bert_folder(tmp_path)
    torch.manual_seed(123)
    rng = torch.random.get_rng_state()
    loaded = BertEncoder.from_folder(folder)
    assert torch.equal(torch.random.get_rng_state(), rng)          # nothing drawn only to be overwritten
    state = loaded.state_dict()
    assert set(state) == set(saved) and all(torch.equal(state[k], saved[k]) for k in saved)
    # built directly (a tower to train from scratch), it is still randomly initialised
    torch.manual_seed(1)
    a = BertEncoder(TINY_BERT).state_dict()
    torch.manual_seed(2)
    b = BertEncoder(TINY_BERT).state_dict()
    assert not torch.equal(a["encoder.layer.0.intermediate.dense.weight"], b["encoder.layer.0.intermediate.dense.weight"])
    assert torch.equal(a["embeddings.word_embeddings.weight"][0], torch.zeros(TINY_BERT["hidden_size"]))  # padding row


def test_a_bert_folder_missing_a_weight_is_refused(tmp_path):
    from safetensors.torch import save_file

    folder, saved = _bert_folder(tmp_path)
    saved.pop("encoder.layer.1.output.dense.bias")
    save_file(saved, str(folder / "model.safetensors"))
    with pytest.raises(RuntimeError, match="encoder.layer.1.output.dense.bias"):
        BertEncoder.from_folder(folder)


@pytest.fixture
def hashed(monkeypatch):
    """Names of the files hashed from now on, the process's digests forgotten (a later process)."""
    names: list[str] = []
    real = cache.file_sha256

    def recording(path, *args):
        names.append(os.path.basename(path))
        return real(path, *args)

    monkeypatch.setattr(cache, "file_sha256", recording)
    monkeypatch.setattr(minilm, "file_sha256", recording, raising=False)   # the name it imported before
    monkeypatch.setattr(cache, "_digests", type(cache._digests)())
    monkeypatch.setattr(cache, "_resolved", type(cache._resolved)())
    monkeypatch.setattr(cache, "RECENT_CHANGE_NS", 0)              # the files below were just written
    return names


def _forget_process_digests(monkeypatch) -> None:
    monkeypatch.setattr(cache, "_digests", type(cache._digests)())
    monkeypatch.setattr(cache, "_resolved", type(cache._resolved)())


def test_a_later_process_fingerprints_the_text_weights_without_reading_them(hashed, monkeypatch):
    first = minilm.weights_id()
    assert hashed == ["model.safetensors"]
    _forget_process_digests(monkeypatch)
    assert minilm.weights_id() == first and hashed == ["model.safetensors"]   # read from the disk cache
    assert first == "minilm-sha256:" + cache.file_sha256(minilm.bundled_folder() / "model.safetensors")


def test_a_kept_digest_is_not_trusted_once_the_file_changes_or_is_damaged(hashed, monkeypatch, tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"a" * 100)
    old = cache.stored_file_sha256(f)
    _forget_process_digests(monkeypatch)
    assert cache.stored_file_sha256(f) == old and hashed == ["weights.bin"]
    f.write_bytes(b"b" * 100)                                      # same size, new bytes
    _forget_process_digests(monkeypatch)
    new = cache.stored_file_sha256(f)
    assert new != old and new == cache.file_sha256(f) and hashed.count("weights.bin") == 3
    kept = list((cache.cache_dir() / cache.DIGESTS_FOLDER).iterdir())
    for path in kept:
        path.write_text("not a digest")
    _forget_process_digests(monkeypatch)
    assert cache.stored_file_sha256(f) == new and hashed.count("weights.bin") == 4   # a damaged entry: hashed again


def test_the_model_fingerprint_is_the_same_read_or_kept(hashed, monkeypatch):
    from engine.models.factory import BUNDLED
    from engine.models.soundsift_clap import SoundsiftClapConfig, fingerprint_of

    folder = BUNDLED["soundsift-base"]
    config = SoundsiftClapConfig.from_file(folder / "config.json")
    read = fingerprint_of(folder, config)
    count = len(hashed)
    _forget_process_digests(monkeypatch)
    assert fingerprint_of(folder, config) == read and len(hashed) == count

"""YAMNet's float weights: the TensorFlow checkpoint reader, the converter, the torch network
against the int8 export, the model config key and the feature caches that depend on it."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from engine.errors import ModelUnavailable
from engine.models import load_model
from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig
from engine.towers import yamnet, yamnet_net
from tests.conftest import chirp, noise, tone
from trainer import convert_yamnet, tf_checkpoint

# each init_baseline encodes the 521 class names with MiniLM: once per run, not once per model
pytestmark = pytest.mark.usefixtures("minilm_memo")

SR = 16000


# -- a TensorFlow tensor bundle, written the way TensorFlow lays it out ---------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A table block, keys prefix-compressed against the previous key (one restart point)."""
    out, prev = bytearray(), b""
    for key, value in entries:
        shared = 0
        while shared < min(len(key), len(prev)) and key[shared] == prev[shared]:
            shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        prev = key
    return bytes(out) + struct.pack("<II", 0, 1)


def write_bundle(tensors: dict[str, np.ndarray], strings: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """(index bytes, data bytes) of a one-shard bundle holding ``tensors`` (float32) and string entries."""
    data, entries = bytearray(), [(b"", _field(1, 1))]          # the header: num_shards 1
    for name in sorted(list(tensors) + list(strings)):
        if name in strings:
            entries.append((name.encode(), _field(1, tf_checkpoint.DT_STRING) + _field(5, 3)))
            data += b"abc"
            continue
        array = np.ascontiguousarray(tensors[name], dtype="<f4")
        shape = b"".join(_field(2, _field(1, d)) for d in array.shape)
        entry = _field(1, 1) + _field(2, shape) + _field(4, len(data)) + _field(5, array.nbytes)
        entries.append((name.encode(), entry))
        data += array.tobytes()
    index = bytearray()

    def add(block: bytes) -> bytes:
        handle = _varint(len(index)) + _varint(len(block))
        index.extend(block + b"\x00" + b"\x00" * 4)              # trailer: no compression, crc
        return handle

    data_handle = add(_block(entries))
    meta_handle = add(_block([]))
    index_handle = add(_block([(entries[-1][0], data_handle)]))
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", tf_checkpoint.TABLE_MAGIC)
    return bytes(index) + footer, bytes(data)


def test_bundle_reader_returns_every_numeric_tensor_with_its_shape():
    rng = np.random.default_rng(0)
    tensors = {"net/layer_with_weights-0/kernel": rng.standard_normal((3, 3, 1, 4)).astype(np.float32),
               "net/layer_with_weights-1/beta": rng.standard_normal(4).astype(np.float32),
               "net/layer_with_weights-10/bias": np.float32(2.5) * np.ones(()), "other/x": np.arange(6.0).reshape(2, 3)}
    index, data = write_bundle(tensors, strings=("_CHECKPOINTABLE_OBJECT_GRAPH",))
    got = tf_checkpoint.read_tensors(index, data)
    assert set(got) == set(tensors)                          # the string entry is left out
    for name, value in tensors.items():
        np.testing.assert_array_equal(got[name], np.asarray(value, np.float32))
    assert set(tf_checkpoint.read_tensors(index, data, prefix="net/")) == set(tensors) - {"other/x"}


def test_bundle_reader_refuses_other_files_and_sizes_that_do_not_fit():
    with pytest.raises(tf_checkpoint.CheckpointError, match="no table footer"):
        tf_checkpoint.read_index(b"\x00" * 100)
    index, data = write_bundle({"w": np.ones((4, 4), np.float32)})
    with pytest.raises(tf_checkpoint.CheckpointError, match="does not match"):
        tf_checkpoint.read_tensors(index, data[:20])


def _random_keras_yamnet(prefix: str, rng) -> dict[str, np.ndarray]:
    """YAMNet-shaped Keras variables in TensorFlow layouts (random values)."""
    out, n, in_ch = {}, 0, 1

    def var(name, shape):
        out[f"{prefix}layer_with_weights-{n}/{name}/.ATTRIBUTES/VARIABLE_VALUE"] = \
            rng.standard_normal(shape).astype(np.float32) * 0.1 + (1.0 if name == "moving_variance" else 0.0)

    def bn(ch):
        nonlocal n
        for name in ("beta", "moving_mean", "moving_variance"):
            var(name, (ch,))
        n += 1
    for i, (_, out_ch) in enumerate(yamnet_net.LAYERS):
        if i == 0:
            var("kernel", (3, 3, 1, out_ch)); n += 1; bn(out_ch)
        else:
            var("depthwise_kernel", (3, 3, in_ch, 1)); n += 1; bn(in_ch)
            var("kernel", (1, 1, in_ch, out_ch)); n += 1; bn(out_ch)
        in_ch = out_ch
    var("kernel", (1024, 521)); var("bias", (521,))
    return out


def test_converter_maps_keras_layers_onto_the_torch_network(tmp_path):
    rng = np.random.default_rng(1)
    keras = _random_keras_yamnet("layer-1/layer/_func/_yamnet/", rng)
    # a second model in the same checkpoint (another head) must not be taken instead
    keras["head/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"] = np.ones((1024, 1), np.float32)
    index, data = write_bundle(keras, strings=("_CHECKPOINTABLE_OBJECT_GRAPH",))
    variables = tmp_path / "saved" / "variables"
    variables.mkdir(parents=True)
    (variables / "variables.index").write_bytes(index)
    (variables / "variables.data-00000-of-00001").write_bytes(data)
    out = convert_yamnet.convert(tmp_path / "saved", tmp_path / "yamnet.safetensors", "float32")
    state = yamnet_net.load_net(out).state_dict()

    def tf(n, name):
        return keras[f"layer-1/layer/_func/_yamnet/layer_with_weights-{n}/{name}/.ATTRIBUTES/VARIABLE_VALUE"]
    np.testing.assert_array_equal(state["layers.0.conv.weight"].numpy(), tf(0, "kernel").transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(state["layers.5.0.conv.weight"].numpy()[7, 0], tf(18, "depthwise_kernel")[:, :, 7, 0])
    np.testing.assert_array_equal(state["layers.5.1.conv.weight"].numpy()[:, :, 0, 0], tf(20, "kernel")[0, 0].T)
    np.testing.assert_array_equal(state["layers.5.1.bn.running_var"].numpy(), tf(21, "moving_variance"))
    np.testing.assert_array_equal(state["classifier.weight"].numpy(), tf(54, "kernel").T)
    assert (state["layers.13.1.bn.weight"] == 1).all()         # Keras's batch norms have no scale
    del keras["layer-1/layer/_func/_yamnet/layer_with_weights-54/bias/.ATTRIBUTES/VARIABLE_VALUE"]
    with pytest.raises(KeyError):
        convert_yamnet.yamnet_state(convert_yamnet.keras_layers(keras))


def test_same_padding_is_tensorflows():
    assert yamnet_net.same_padding(96, 2) == (0, 1)           # the extra pixel after
    assert yamnet_net.same_padding(7, 2) == (1, 1)
    assert yamnet_net.same_padding(64, 1) == (1, 1)


# -- the bundled float weights ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def towers():
    return yamnet.shared_tower(0, "int8"), yamnet.shared_tower(0, "float")


def test_float_network_agrees_with_the_int8_export(towers):
    """Both weight sets are YAMNet: on generated sounds their mean posteriors and embeddings
    correlate (here ≥ 0.955 and ≥ 0.93) and their top classes agree. Padding on the wrong side,
    batch-norm ε 10⁻³ or the first kernel transposed give ≤ 0.21 and ≤ 0.74 (measured)."""
    int8, float_ = towers
    for clip in (tone(440, 3.0, SR), noise(2.0, SR, seed=1), chirp(200, 4000, 3.0, SR),
                 tone(1000, 4.0, SR, amp=0.1) + noise(4.0, SR, seed=2, amp=0.05)):
        patches = int8.patches(int8.log_mel(clip))
        a, ea = int8.run_patches(patches)
        b, eb = float_.run_patches(patches)
        pa, pb = (1 / (1 + np.exp(-np.clip(x.mean(0), -50, 50))) for x in (a, b))
        assert np.corrcoef(pa, pb)[0, 1] > 0.9
        assert np.corrcoef(ea.ravel(), eb.ravel())[0, 1] > 0.9
        assert int(a.mean(0).argmax()) == int(b.mean(0).argmax())


def test_float_network_in_onnxruntime_equals_torch(towers):
    net = yamnet_net.load_net()
    patches = towers[0].patches(towers[0].log_mel(noise(3.0, SR, seed=3)))
    with torch.no_grad():
        logits, embedding = net(torch.from_numpy(patches))
    got_logits, got_embedding = towers[1].run_patches(patches)
    np.testing.assert_allclose(got_logits, logits.numpy(), atol=2e-3)
    np.testing.assert_allclose(got_embedding, embedding.numpy(), atol=2e-4)


def test_missing_float_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(ModelUnavailable, match="convert_yamnet"):
        yamnet_net.load_net(tmp_path / "absent.safetensors")
    with pytest.raises(ModelUnavailable, match="not one of"):
        yamnet.YamnetTower(0, "int4")


# -- the model config and the feature caches ----------------------------------------------------

def _config(**kw) -> SoundsiftClapConfig:
    return SoundsiftClapConfig(space="audioset", dim=yamnet.NUM_CLASSES, text_adapter=False, **kw)


def test_yamnet_weights_key_chooses_the_network_and_enters_the_fingerprint_only_when_float(tmp_path):
    SoundsiftClap(_config()).init_baseline().save_pretrained(tmp_path / "int8")
    cfg = json.loads((tmp_path / "int8" / "config.json").read_text())
    before = load_model(tmp_path / "int8").fingerprint
    cfg.pop("yamnet_weights")                                    # a config saved before the key
    (tmp_path / "int8" / "config.json").write_text(json.dumps(cfg))
    old = load_model(tmp_path / "int8")
    assert old.fingerprint == before
    SoundsiftClap(_config(yamnet_weights="float")).init_baseline().save_pretrained(tmp_path / "float")
    new = load_model(tmp_path / "float")
    assert new.fingerprint != before
    clip = [tone(440, 3.0, SR)]
    a, b = old.embed_audio(clip), new.embed_audio(clip)
    assert 0.9 < float((a * b).sum()) < 0.99999                  # the same sound, heard by another network
    with pytest.raises(ModelUnavailable, match="yamnet_weights"):
        SoundsiftClap(_config(yamnet_weights="fp16"))


def test_feature_cache_of_one_network_is_not_continued_with_the_other():
    from trainer.precompute import _continues, items_key
    from trainer.datasets import Item

    items = [Item(audio="a.wav", captions=["a"])]
    meta = {"version": 1, "views": 0, "items": 1, "items_sha1": items_key(items)}
    float_meta = {**meta, "yamnet_weights": "float"}
    assert _continues(meta, meta, items) and _continues(float_meta, float_meta, items)
    assert not _continues(float_meta, meta, items)
    assert not _continues(meta, float_meta, items)

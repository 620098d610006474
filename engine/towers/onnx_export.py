"""A frozen torch network exported to ONNX once per weights and torch version, kept in the cache."""
from __future__ import annotations

import copy
import hashlib
import io
import warnings

import torch
from torch import nn

from engine.towers.cache import cache_dir, keep


#: onnxruntime's switch for its intra-op threads busy-waiting after a run (its default "1")
SPINNING_KEY = "session.intra_op.allow_spinning"


def session_options(num_threads: int = 0, *, spinning: bool = False):
    """onnxruntime options for a frozen tower: ``num_threads`` intra-op threads (0: its default),
    one inter-op thread, warnings and below not logged, and (unless ``spinning``) threads that
    sleep instead of busy-waiting once a run ends.

    The towers run in turn with torch (the aisfx frontend, the projections) and beside the decoder
    processes: on 2 cores, threads left spinning after each run starved those, and in an indexing
    run the aisfx frontend took ≈ 10× its time alone (``benchmarks/indexing.py --before-too``).
    Spinning is a scheduling setting only: the graph, its optimisation level and every output are
    the same."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(num_threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry(SPINNING_KEY, "1" if spinning else "0")
    return options


def exported_onnx(net: nn.Module, example: torch.Tensor, folder: str, version: str, *,
                  input_name: str, output_names: tuple[str, ...]) -> bytes:
    """``net`` as ONNX bytes with a free batch dimension, from ``$SOUNDSIFT_CACHE/folder`` when an
    export of the same weights, torch version and ``version`` is there (exporting takes ≈ 1 s)."""
    h = hashlib.sha256(f"{torch.__version__} opset17 {version}".encode())
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    path = cache_dir() / folder / f"{h.hexdigest()[:24]}.onnx"
    if path.is_file():
        return path.read_bytes()
    plain = copy.deepcopy(net).eval().to(memory_format=torch.contiguous_format)
    buf = io.BytesIO()
    axes = {input_name: {0: "n"}, **{name: {0: "n"} for name in output_names}}
    with warnings.catch_warnings():   # the TorchScript exporter warns that it is deprecated
        warnings.simplefilter("ignore")
        torch.onnx.export(plain, (example,), buf, input_names=[input_name], output_names=list(output_names),
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    data = buf.getvalue()
    keep(path, data, "the exported network")
    return data

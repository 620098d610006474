"""YAMNet's network in torch, for its float weights (the int8 ONNX export is in ``engine.towers.yamnet``).

YAMNet (Google, Apache-2.0; tensorflow/models research/audioset/yamnet) is a MobileNet-v1 on
one (96 frames × 64 log-mel bands) patch: a 3×3 convolution (stride 2, 32 channels), then 13
depthwise-separable blocks (3×3 depthwise + 1×1 pointwise) of 64, 128, 128, 256, 256, 512 (×6),
1024, 1024 channels with strides 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1; every convolution
without bias, followed by batch norm (ε = 10⁻⁴, no scale) and ReLU; TensorFlow "same" padding;
global average pooling gives the 1024-d embedding, a dense layer the 521 AudioSet logits.

The float weights are bundled as ``engine/data/yamnet.safetensors`` (this module's
``state_dict`` keys), converted once from a TensorFlow SavedModel of YAMNet by
``trainer/convert_yamnet.py``. :func:`fastest_for_inference` folds the batch norms and runs the
network with onnxruntime (exported once into the cache), as ``engine.towers.aisfx`` does.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.errors import ModelUnavailable

log = logging.getLogger(__name__)

PATCH_FRAMES, N_MELS = 96, 64
NUM_CLASSES, EMBEDDING_DIM = 521, 1024
BN_EPS = 1e-4
#: (stride, output channels) of the first convolution and the 13 separable blocks
LAYERS = ((2, 32), (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
          (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))
#: the bundled float weights
WEIGHTS_PATH = Path(__file__).resolve().parent.parent / "data" / "yamnet.safetensors"
#: bumped when the ONNX export changes (names its cache entries)
ONNX_EXPORT_VERSION = "yamnet-onnx-1"


def same_padding(size: int, stride: int, kernel: int = 3) -> tuple[int, int]:
    """TensorFlow's "same" padding (before, after) along one axis: the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBN(nn.Module):
    """Convolution (no bias) → batch norm without scale → ReLU, with "same" padding fixed at build time."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, in_hw: tuple[int, int],
                 groups: int = 1) -> None:
        super().__init__()
        ph = same_padding(in_hw[0], stride, kernel) if kernel > 1 else (0, 0)
        pw = same_padding(in_hw[1], stride, kernel) if kernel > 1 else (0, 0)
        self.pad = (pw[0], pw[1], ph[0], ph[1])
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.out_hw = (-(-in_hw[0] // stride), -(-in_hw[1] // stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        return F.relu(self.bn(self.conv(x)))


class YamnetNet(nn.Module):
    """(N, 1, 96, 64) log-mel patches → ((N, 521) logits, (N, 1024) embeddings)."""

    def __init__(self) -> None:
        super().__init__()
        hw = (PATCH_FRAMES, N_MELS)
        layers: list[nn.Module] = []
        in_ch = 1
        for i, (stride, out_ch) in enumerate(LAYERS):
            if i == 0:
                first = ConvBN(in_ch, out_ch, 3, stride, hw)
                layers.append(first)
                hw = first.out_hw
            else:
                depthwise = ConvBN(in_ch, in_ch, 3, stride, hw, groups=in_ch)
                hw = depthwise.out_hw
                layers.append(nn.Sequential(depthwise, ConvBN(in_ch, out_ch, 1, 1, hw)))
            in_ch = out_ch
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(EMBEDDING_DIM, NUM_CLASSES)

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(patches.shape[1:]) != (1, PATCH_FRAMES, N_MELS):
            raise ValueError(f"YAMNet takes (N, 1, {PATCH_FRAMES}, {N_MELS}) patches, got {tuple(patches.shape)}")
        embedding = self.layers(patches).mean(dim=(2, 3))
        return self.classifier(embedding), embedding


def load_net(path: str | Path = WEIGHTS_PATH) -> YamnetNet:
    """A :class:`YamnetNet` with the float weights at ``path`` (stored as float32 or float16; computed in float32)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelUnavailable(
            f"{path}: YAMNet float weights not found; convert them once with python -m trainer.convert_yamnet")
    net = YamnetNet()
    try:
        state = {k: v.float() for k, v in load_file(str(path)).items()}
    except (RuntimeError, OSError) as e:
        raise ModelUnavailable(f"{path}: not a YAMNet safetensors file ({e})") from e
    load_state(net, state, str(path))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def load_state(net: YamnetNet, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``net``; :class:`ModelUnavailable` naming ``where`` unless it fills every
    weight with the right shape (the batch-norm counters, which Keras does not keep, aside)."""
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as e:     # a shape mismatch
        raise ModelUnavailable(f"{where}: not YAMNet's weights ({e})") from e
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ModelUnavailable(f"{where}: not YAMNet's weights (missing {missing[:3]}, "
                               f"unexpected {result.unexpected_keys[:3]})")


def for_inference(net: YamnetNet) -> YamnetNet:
    """A frozen copy with every batch norm folded into its convolution (outputs equal to rounding)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fast = copy.deepcopy(net).eval()
    for module in fast.modules():
        if isinstance(module, ConvBN):
            module.conv, module.bn = fuse_conv_bn_eval(module.conv, module.bn), nn.Identity()
    for p in fast.parameters():
        p.requires_grad_(False)
    return fast


class OnnxYamnet:
    """A :class:`YamnetNet` exported to ONNX (once per weights, kept in the cache) and run with
    onnxruntime: ``run(patches)`` → (logits, embeddings) as numpy arrays."""

    def __init__(self, net: YamnetNet, num_threads: int = 0) -> None:
        import onnxruntime as ort

        from engine.towers.onnx_export import exported_onnx, session_options

        options = session_options(num_threads)
        graph = exported_onnx(net, torch.zeros(2, 1, PATCH_FRAMES, N_MELS), "yamnet-onnx", ONNX_EXPORT_VERSION,
                              input_name="log_mel", output_names=("logits", "embedding"))
        self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def run(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, embedding = self._session.run(["logits", "embedding"], {"log_mel": patches})
        return logits, embedding


class TorchYamnet:
    """The same interface as :class:`OnnxYamnet`, run in torch (the fallback)."""

    def __init__(self, net: YamnetNet) -> None:
        self._net = net

    def run(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            logits, embedding = self._net(torch.from_numpy(patches))
        return logits.numpy(), embedding.numpy()


def fastest_for_inference(net: YamnetNet, num_threads: int = 0) -> OnnxYamnet | TorchYamnet:
    """The folded network in onnxruntime; in torch if the export or onnxruntime fails (logged)."""
    folded = for_inference(net)
    try:
        return OnnxYamnet(folded, num_threads)
    except Exception as e:  # the exporter and onnxruntime raise many types; torch still works
        log.warning("YAMNet float: running it in torch, not onnxruntime (%s: %s)", type(e).__name__, e)
        return TorchYamnet(folded)

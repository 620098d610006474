"""aisfx EmbeddingNet (Ma & Lerch, ISMIR 2022, CC BY 4.0) and its frontend, in torch.

Reimplemented from the aisfx 0.1.2 package (aisfx/models/cnn2d.py, preprocessing.py,
spectrogram/*): 44.1 kHz peak-normalised audio; 2048-sample Hann frames every 1024 samples;
power spectrum → 96 HTK mel bands 0–22.05 kHz with unit-sum triangles; ``log10(10000·x + 1)``
divided by 9.4578 (the paper's min–max constant); blocks of 100 frames (≈2.3 s) with 50 % hop;
a 4-block VGG-style CNN (64-128-256-512 channels) → mean over frequency, max over time → 512-d.

The pretrained weights are converted once by ``trainer/convert_aisfx.py`` into a safetensors
file whose keys are this module's ``state_dict`` keys.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.errors import ModelUnavailable
from engine.towers import aisfx_ids

log = logging.getLogger(__name__)

SAMPLE_RATE = aisfx_ids.SAMPLE_RATE
FRAME_LENGTH = 2048
FRAME_HOP = 1024
N_MELS = 96
F_MIN, F_MAX = 0.0, 22050.0
LOG_SCALE = 1e4
NORM_MAX = 9.457798957824707
BLOCK_FRAMES = 100
BLOCK_HOP = 50
EMBEDDING_DIM = 512
FRONTEND_VERSION = aisfx_ids.FRONTEND_VERSION
INT8_FILE = aisfx_ids.INT8_FILE
#: bumped when the ONNX export of the CNN changes (names its cache entries)
ONNX_EXPORT_VERSION = "aisfx-onnx-1"


def _mel_matrix() -> torch.Tensor:
    """(FRAME_LENGTH//2+1, 96) HTK triangles built in the mel domain, each band summing to 1."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    bins_mel = hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, FRAME_LENGTH // 2 + 1))
    edges = np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    sums = weights.sum(axis=0, keepdims=True)
    weights = weights / np.where(sums > 0, sums, 1.0)
    return torch.from_numpy(weights.astype(np.float32))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run this thread's torch work with ``n`` intra-op threads (None: as set), restored after;
    in the main thread only (the indexer's and the trainer's model calls). torch also takes the
    setting as the process default meanwhile, and a thread that first uses torch then keeps it for
    its life (a server's request thread, a page run): elsewhere nothing is changed."""
    before = torch.get_num_threads()
    if n is None or n == before or threading.current_thread() is not threading.main_thread():
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class AisfxFrontend(nn.Module):
    """44.1 kHz waveform → (frames, 96) normalised log-mel, ≈43 frames per second.

    ``torch_threads``: intra-op threads for one call (None: torch's setting). The model's inference
    copy uses 1 (:meth:`engine.models.soundsift_clap.SoundsiftClapModel.load`): these are a few
    millisecond-long element-wise passes, FFTs and a small product, and on 2 cores, beside the
    onnxruntime towers and the decoder processes, a second thread made them wait for a core far
    longer than it saved (``benchmarks/indexing.py --before-too``). Same numbers either way.
    """

    frames_per_second = SAMPLE_RATE / FRAME_HOP

    def __init__(self, torch_threads: int | None = None) -> None:
        super().__init__()
        self.torch_threads = torch_threads
        self.register_buffer("window", torch.hann_window(FRAME_LENGTH, periodic=False), persistent=False)
        self.register_buffer("mel", _mel_matrix(), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        with torch_threads(self.torch_threads):
            return self._log_mel(waveform)

    def _log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        w = waveform.reshape(-1).to(torch.float32)
        peak = w.abs().max() if w.numel() else w.new_tensor(0.0)
        if peak > 0:
            w = w / peak
        if w.numel() < FRAME_LENGTH // 2 + 1:  # reflect-free centring needs a few samples
            w = F.pad(w, (0, FRAME_LENGTH // 2 + 1 - w.numel()))
        spec = torch.stft(w, n_fft=FRAME_LENGTH, hop_length=FRAME_HOP, window=self.window,
                          center=True, pad_mode="constant", return_complex=True)
        power = spec.abs().pow(2).T  # (frames, bins)
        return torch.log10(LOG_SCALE * (power @ self.mel) + 1.0) / NORM_MAX


def blocks(frames: torch.Tensor) -> torch.Tensor:
    """(T, 96) → (B, 100, 96): zero-pad to one block, then 100-frame blocks every 50 frames."""
    if frames.shape[0] < BLOCK_FRAMES:
        frames = F.pad(frames, (0, 0, 0, BLOCK_FRAMES - frames.shape[0]))
    return frames.unfold(0, BLOCK_FRAMES, BLOCK_HOP).transpose(1, 2).contiguous()


class ConvBlock(nn.Module):
    """Two 3×3 conv + batch-norm + ReLU, then 2-D pooling (aisfx cnn2d.ConvBlock)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.max_pool2d(x, kernel_size=pool)


class EmbeddingNet(nn.Module):
    """(B, 100, 96) log-mel blocks → (B, 512); parameter names match aisfx's ``embedding_net``."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.conv_block1 = ConvBlock(1, width)
        self.conv_block2 = ConvBlock(width, width * 2)
        self.conv_block3 = ConvBlock(width * 2, width * 4)
        self.conv_block4 = ConvBlock(width * 4, width * 8)
        self.out_dim = width * 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)
        x = self.conv_block1(x, (2, 2))
        x = self.conv_block2(x, (2, 2))
        x = self.conv_block3(x, (2, 2))
        x = self.conv_block4(x, (1, 1))
        return x.mean(dim=3).max(dim=2).values


def for_inference(net: EmbeddingNet) -> EmbeddingNet:
    """A frozen copy for inference: each batch norm folded into its convolution, the weights in
    channels-last layout. Its outputs equal ``net``'s to float rounding (≈ 1e-5 here, 1e-7 after
    soundsift-base's projection), and soundsift-base embeds ≈ 1.3–1.4× faster with it on 2 CPU cores
    (``benchmarks/aisfx_inference.py``). It cannot be trained: the batch-norm statistics are gone."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fast = copy.deepcopy(net).eval()
    for block in (fast.conv_block1, fast.conv_block2, fast.conv_block3, fast.conv_block4):
        block.conv1, block.bn1 = fuse_conv_bn_eval(block.conv1, block.bn1), nn.Identity()
        block.conv2, block.bn2 = fuse_conv_bn_eval(block.conv2, block.bn2), nn.Identity()
    for p in fast.parameters():
        p.requires_grad_(False)
    return fast.to(memory_format=torch.channels_last)


class OnnxEmbeddingNet(nn.Module):
    """An :class:`EmbeddingNet` exported to ONNX (once per weights, kept in the cache folder) and
    run with onnxruntime; or, given ``graph``, that ONNX graph (a model folder's int8 copy,
    :data:`INT8_FILE`).

    Inference only (no gradients), outputs equal to the torch CNN's to float rounding. On 2 CPU
    cores onnxruntime runs this CNN ≈ 1.7–2× faster than torch (``benchmarks/aisfx_inference.py``);
    the int8 copy ≈ 3.7× faster again.
    """

    def __init__(self, net: EmbeddingNet | None = None, num_threads: int = 0, *, graph: bytes | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        if (net is None) == (graph is None):
            raise ValueError("give either the net or its ONNX graph")
        self.out_dim = net.out_dim if net is not None else EMBEDDING_DIM
        self.quantized = graph is not None
        from engine.towers.onnx_export import session_options

        options = session_options(num_threads)
        self._session = ort.InferenceSession(graph if graph is not None else _onnx_bytes(net), options,
                                             providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self._session.run(None, {"blocks": blocks})[0])


def _onnx_bytes(net: EmbeddingNet) -> bytes:
    """``net`` as an ONNX graph (batch size free), exported once per weights and torch version and
    kept in the cache folder (``$SOUNDSIFT_CACHE``); exporting takes ≈ 1 s."""
    from engine.towers.onnx_export import exported_onnx

    return exported_onnx(net, torch.zeros(2, BLOCK_FRAMES, N_MELS), "aisfx-onnx", ONNX_EXPORT_VERSION,
                         input_name="blocks", output_names=("embedding",))


def quantized_for_inference(path: str | Path, num_threads: int = 0) -> OnnxEmbeddingNet:
    """The model folder's int8 copy of its aisfx CNN at ``path``, run with onnxruntime.

    No float fallback: the model's fingerprint names this file, so its vectors must come from it;
    a missing or unreadable file is a :class:`ModelUnavailable` saying how to write it again."""
    path = Path(path)
    how = f"write it with python -m trainer.quantize_aisfx {path.parent} --manifest TRAIN.jsonl"
    if not path.is_file():
        raise ModelUnavailable(f"{path}: missing; the model's config says aisfx_int8, so {how}")
    try:
        return OnnxEmbeddingNet(graph=path.read_bytes(), num_threads=num_threads)
    except Exception as e:  # onnxruntime raises its own untyped errors
        raise ModelUnavailable(f"{path}: onnxruntime cannot run it ({type(e).__name__}: {e}); {how}") from e


def fastest_for_inference(net: EmbeddingNet, num_threads: int = 0) -> nn.Module:
    """:class:`OnnxEmbeddingNet` of the batch-norm-folded CNN; the folded torch CNN
    (:func:`for_inference`) if the export or onnxruntime fails (logged with the reason)."""
    folded = for_inference(net)
    try:
        return OnnxEmbeddingNet(folded, num_threads)
    except Exception as e:  # the exporter and onnxruntime raise many types; torch still works
        log.warning("aisfx CNN: running it in torch, not onnxruntime (%s: %s)", type(e).__name__, e)
        return folded


def load_embedding_net(path: str | Path) -> EmbeddingNet:
    """An :class:`EmbeddingNet` with the weights converted by trainer/convert_aisfx.py."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelUnavailable(
            f"{path}: aisfx weights not found; convert them once with "
            "python -m trainer.convert_aisfx --wheel aisfx-0.1.2-py2.py3-none-any.whl --out PATH")
    net = EmbeddingNet()
    try:
        net.load_state_dict(load_file(str(path)))
    except (RuntimeError, OSError) as e:
        raise ModelUnavailable(f"{path}: not an aisfx EmbeddingNet safetensors file ({e})") from e
    return net

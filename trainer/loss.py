"""Symmetric InfoNCE (CLIP/CLAP) loss, with features gathered across ranks under torch.distributed.

As in open_clip's ``ClipLoss``: under ``torchrun`` every rank gathers the audio and text
features of all ranks so each rank contrasts against the global batch. With
``gather_with_grad`` the gather is differentiable (:class:`GatherWithGrad`: every rank's
gradient for this rank's rows is summed back to it, as ``torch.distributed.nn.all_gather``
did before torch deprecated it); without it the gathered copies are constants and this
rank's own slice is put back in place so its gradients still flow. The logit scale is kept in log space and clamped at
ln(100), so logits are never scaled by more than 100.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.distributed import rank_and_world

#: the largest logit scale (CLIP's clamp): ``exp(log_scale) <= 100``
MAX_LOG_SCALE = math.log(100.0)


class GatherWithGrad(torch.autograd.Function):
    """``(B, D)`` on each rank → ``(world × B, D)``, all ranks' rows in rank order, differentiable.

    Each rank's loss depends on every rank's rows, so a row's gradient is the sum over ranks
    of the gradients their losses send it: the backward all-reduces the incoming gradient
    and keeps this rank's slice (a reduce-scatter, written with the one collective that Gloo
    and NCCL both have). Every rank must pass the same shape.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, rank: int, world: int) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(world)]
        torch.distributed.all_gather(parts, x.contiguous())
        ctx.rows = (rank * x.shape[0], (rank + 1) * x.shape[0])
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        total = grad.contiguous().clone()
        torch.distributed.all_reduce(total)
        start, stop = ctx.rows
        return total[start:stop], None, None


def gather_features(audio: torch.Tensor, text: torch.Tensor, *, gather_with_grad: bool = True,
                    rank: int = 0, world_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """All ranks' features concatenated in rank order: ``(world_size * B, D)`` each."""
    if world_size == 1:
        return audio, text
    if gather_with_grad:
        return (GatherWithGrad.apply(audio, rank, world_size),
                GatherWithGrad.apply(text, rank, world_size))
    all_audio = [torch.zeros_like(audio) for _ in range(world_size)]
    all_text = [torch.zeros_like(text) for _ in range(world_size)]
    torch.distributed.all_gather(all_audio, audio)
    torch.distributed.all_gather(all_text, text)
    all_audio[rank] = audio   # the local slice keeps its autograd graph
    all_text[rank] = text
    return torch.cat(all_audio, 0), torch.cat(all_text, 0)


def clamp_log_scale(log_scale: torch.Tensor) -> torch.Tensor:
    """``log_scale`` limited to [0, ln 100] (differentiable inside the range)."""
    return log_scale.clamp(0.0, MAX_LOG_SCALE)


class ContrastiveLoss(nn.Module):
    """Symmetric InfoNCE over matched (audio_i, text_i) pairs.

    ``forward(audio, text, log_scale)`` takes L2-normalised ``(B, D)`` features and the
    logit scale in log space; it returns the mean of the audio→text and text→audio
    cross-entropies. ``local_loss`` contrasts only this rank's rows against the gathered
    columns (less memory, same gradient in expectation).
    """

    def __init__(self, *, gather_with_grad: bool = True, local_loss: bool = False) -> None:
        super().__init__()
        self.gather_with_grad = gather_with_grad
        self.local_loss = local_loss

    def logits(self, audio: torch.Tensor, text: torch.Tensor, log_scale: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(audio→text logits, text→audio logits, target column per row)."""
        rank, world = rank_and_world()
        scale = clamp_log_scale(log_scale).exp()
        all_audio, all_text = gather_features(audio, text, gather_with_grad=self.gather_with_grad,
                                              rank=rank, world_size=world)
        if world > 1 and self.local_loss:
            a2t = scale * audio @ all_text.T
            t2a = scale * text @ all_audio.T
            offset = rank * audio.shape[0]
        else:
            a2t = scale * all_audio @ all_text.T
            t2a = a2t.T
            offset = 0
        targets = torch.arange(a2t.shape[0], device=a2t.device) + offset
        return a2t, t2a, targets

    def forward(self, audio: torch.Tensor, text: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        a2t, t2a, targets = self.logits(audio, text, log_scale)
        if a2t.dtype in (torch.float16, torch.bfloat16):   # softmax in fp32 under AMP
            a2t, t2a = a2t.float(), t2a.float()
        return 0.5 * (F.cross_entropy(a2t, targets) + F.cross_entropy(t2a, targets))

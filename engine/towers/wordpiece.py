"""The text tower's tokenizer, importable without torch: a folder's ``tokenizer.json`` (the
Hugging Face fast tokenizer's own file) read by the ``tokenizers`` library. The torch BERT
(engine.towers.bert) and its numpy inference (engine.towers.bert_numpy) both take its tokens."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch


class WordPieceTokenizer:
    """Texts → padded ``input_ids`` and ``attention_mask``, truncated to ``max_length`` tokens:
    int64 arrays from :meth:`encode`, tensors from a call."""

    def __init__(self, folder: str | Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        pad = self.tokenizer.padding or {}
        self.tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask), each (N, longest text's tokens) int64."""
        encoded = self.tokenizer.encode_batch(list(texts))
        return (np.array([e.ids for e in encoded], dtype=np.int64),
                np.array([e.attention_mask for e in encoded], dtype=np.int64))

    def __call__(self, texts: Sequence[str]) -> dict[str, "torch.Tensor"]:
        import torch

        ids, mask = self.encode(texts)
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}

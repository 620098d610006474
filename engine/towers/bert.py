"""A BERT encoder in plain torch, loading a Hugging Face ``BertModel`` folder's weights.

soundsift's text tower (all-MiniLM-L6-v2, engine.towers.minilm) is a 6-layer BERT. Building it
through ``transformers.AutoModel`` imports most of transformers (about 2.4 s of every command
that embeds text: ``soundsift search``, ``tag``, ``index``); this module is the same network in
about a hundred lines, with the same parameter names (so ``state_dict`` keys, and a fine-tuned
text tower saved by the trainer, are unchanged), and its tokenizer is the folder's
``tokenizer.json`` read by the ``tokenizers`` library (engine.towers.wordpiece).
tests/test_bert_tower.py holds it to transformers' output; engine.towers.bert_numpy is its
inference in numpy, for the commands that embed text only.
"""
from __future__ import annotations

import math
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.towers.bert_numpy import check_plain_bert, encoder_state, folder_config
from engine.towers.wordpiece import WordPieceTokenizer

# WordPieceTokenizer lives in engine.towers.wordpiece (no torch), shared with the numpy inference
__all__ = ["BertEncoder", "WordPieceTokenizer"]

#: True while :meth:`BertEncoder.from_folder` builds an encoder whose every parameter the
#: folder's weights then overwrite: its layers skip their random initialisation (≈ 0.15–0.4 s of
#: a one-shot ``soundsift search`` on 2 CPU cores, drawn only to be thrown away)
_WEIGHTS_FOLLOW: ContextVar[bool] = ContextVar("bert_weights_follow", default=False)


class _Linear(nn.Linear):
    """``nn.Linear``, not initialised while :data:`_WEIGHTS_FOLLOW`."""

    def reset_parameters(self) -> None:
        if not _WEIGHTS_FOLLOW.get():
            super().reset_parameters()


class _Embedding(nn.Embedding):
    """``nn.Embedding``, not initialised while :data:`_WEIGHTS_FOLLOW`."""

    def reset_parameters(self) -> None:
        if not _WEIGHTS_FOLLOW.get():
            super().reset_parameters()


class _LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm``, not initialised while :data:`_WEIGHTS_FOLLOW`."""

    def reset_parameters(self) -> None:
        if not _WEIGHTS_FOLLOW.get():
            super().reset_parameters()


class _Embeddings(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.word_embeddings = _Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c.get("pad_token_id", 0))
        self.position_embeddings = _Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = _Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = _LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c.get("hidden_dropout_prob", 0.0))

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)[None, :]
        x = self.word_embeddings(ids) + self.token_type_embeddings(types) + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(x))


class _SelfAttention(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.query, self.key, self.value = _Linear(h, h), _Linear(h, h), _Linear(h, h)
        self.dropout = nn.Dropout(c.get("attention_probs_dropout_prob", 0.0))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        n, t, h = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(n, t, self.heads, h // self.heads).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(h // self.heads) + bias
        return (self.dropout(scores.softmax(-1)) @ v).transpose(1, 2).reshape(n, t, h)


class _DenseNorm(nn.Module):
    """``LayerNorm(dense(x) + residual)``: BERT's attention output and layer output."""

    def __init__(self, c: dict[str, Any], width: int) -> None:
        super().__init__()
        self.dense = _Linear(width, c["hidden_size"])
        self.LayerNorm = _LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c.get("hidden_dropout_prob", 0.0))

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        setattr(self, "self", _SelfAttention(c))          # BertAttention.self: the parameter names
        self.output = _DenseNorm(c, c["hidden_size"])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.output(getattr(self, "self")(x, bias), x)


class _Intermediate(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.dense = _Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.dense(x))          # BERT's "gelu": the exact (erf) form


class _Layer(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _DenseNorm(c, c["intermediate_size"])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, bias)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(c) for _ in range(c["num_hidden_layers"]))


class _Pooler(nn.Module):
    """Kept for the parameter names of a saved BertModel; sentence embeddings do not use it."""

    def __init__(self, c: dict[str, Any]) -> None:
        super().__init__()
        self.dense = _Linear(c["hidden_size"], c["hidden_size"])


class BertEncoder(nn.Module):
    """A BERT (absolute positions, GELU) from a Hugging Face ``config.json``; ``forward`` gives
    the last hidden states (N, T, hidden) of token ids under an attention mask. In training mode
    its dropouts act where BertModel's do (a fine-tuned text tower, ``text_trainable``)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        check_plain_bert(config)
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)
        self.pooler = _Pooler(config)

    @classmethod
    def from_folder(cls, folder: str | Path) -> "BertEncoder":
        """The encoder of a saved BertModel folder (``config.json`` + ``model.safetensors``)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        config = folder_config(folder)
        state = encoder_state(load_file(str(folder / "model.safetensors")))
        token = _WEIGHTS_FOLLOW.set(True)       # every parameter is the file's (strict load below)
        try:
            model = cls(config)
        finally:
            _WEIGHTS_FOLLOW.reset(token)
        model.load_state_dict(state)
        return model.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids, torch.zeros_like(input_ids))
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.encoder.layer:
            x = layer(x, bias)
        return x

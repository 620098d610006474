"""The inference of engine.towers.bert's BERT in numpy, from the same folder's files.

A command that only embeds text (``soundsift search "…"``) runs the frozen text tower once on a
few tokens; importing torch for it cost more than the rest of the command (≈ 1.3–1.9 s of 2.6 s
of CPU on 2 cores). This is the same network (engine.towers.bert, whose config check and weight
names it shares), for inference only: no dropout, no gradients. It computes in float64, so that
what is left of the difference is torch's float32 rounding: the MiniLM sentence vectors within about
2·10⁻⁷ of the torch tower's, and the bundled models' query vectors, whose text head divides
cosines by a temperature of 0.02, within 10⁻⁵ (tests/test_text_without_torch.py; in float32 they
differed by up to 9.95·10⁻⁶). A query of a few words takes ≈ 0.01–0.1 s; hundreds of texts are
slower than torch's float32 kernels.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def check_plain_bert(config: dict[str, Any]) -> None:
    """ValueError unless ``config`` (a ``config.json``) is the BERT both implementations run:
    absolute positions, the exact GELU."""
    kind = config.get("position_embedding_type", "absolute")
    if config.get("model_type") != "bert" or kind != "absolute" or config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"not a plain BERT (model_type {config.get('model_type')!r}, "
                         f"positions {kind!r}, activation {config.get('hidden_act')!r})")


def folder_config(folder: str | Path) -> dict[str, Any]:
    """A saved BertModel folder's ``config.json``."""
    return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))


def encoder_state(weights: dict[str, Any]) -> dict[str, Any]:
    """A folder's ``model.safetensors`` tensors under BertModel's names: without the ``bert.``
    prefix of a BertFor… checkpoint and without the ``position_ids`` buffer."""
    return {k.removeprefix("bert."): v for k, v in weights.items() if not k.endswith("position_ids")}


def _erfc(z: np.ndarray) -> np.ndarray:
    """The complementary error function in float64, fractional error under 1.2·10⁻⁷ everywhere
    (Numerical Recipes' Chebyshev fit; numpy has no erf, and scipy.special takes ≈ 0.5 s to import)."""
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.5 * a)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    r = t * np.exp(-a * a + poly)
    return np.where(z >= 0, r, 2.0 - r)


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, ``x · Φ(x) = x/2 · erfc(−x/√2)``."""
    return 0.5 * x * _erfc(-x / math.sqrt(2.0))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    return centred / np.sqrt((centred * centred).mean(-1, keepdims=True) + eps) * weight + bias


class NumpyBert:
    """BertEncoder's forward in numpy: token ids under an attention mask → last hidden states."""

    def __init__(self, config: dict[str, Any], state: dict[str, np.ndarray]) -> None:
        check_plain_bert(config)
        self.config = config
        self.state = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
        needed = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                  "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight"]
        needed += [f"encoder.layer.{i}.output.LayerNorm.bias" for i in range(config["num_hidden_layers"])]
        missing = [k for k in needed if k not in self.state]
        if missing:
            raise ValueError(f"the weights lack {', '.join(missing[:3])}")

    @classmethod
    def from_folder(cls, folder: str | Path) -> "NumpyBert":
        """The encoder of a saved BertModel folder (``config.json`` + ``model.safetensors``)."""
        from safetensors.numpy import load_file

        folder = Path(folder)
        return cls(folder_config(folder), encoder_state(load_file(str(folder / "model.safetensors"))))

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        flat = x.reshape(-1, x.shape[-1]) @ self.state[name + ".weight"].T + self.state[name + ".bias"]
        return flat.reshape(*x.shape[:-1], -1)

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return _layer_norm(x, self.state[name + ".weight"], self.state[name + ".bias"], self.config["layer_norm_eps"])

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(N, T) ids and mask → (N, T, hidden) float64."""
        n, t = input_ids.shape
        h, heads = self.config["hidden_size"], self.config["num_attention_heads"]
        width = h // heads
        s = self.state
        x = (s["embeddings.word_embeddings.weight"][input_ids] + s["embeddings.token_type_embeddings.weight"][0]
             + s["embeddings.position_embeddings.weight"][:t])
        x = self._norm(x, "embeddings.LayerNorm")
        bias = (1.0 - attention_mask[:, None, None, :].astype(np.float64)) * np.finfo(np.float32).min

        def split(y: np.ndarray) -> np.ndarray:     # (N, T, H) → (N, heads, T, width), contiguous for BLAS
            return np.ascontiguousarray(y.reshape(n, t, heads, width).transpose(0, 2, 1, 3))
        for i in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            q, k, v = (split(self._linear(x, p + "attention.self." + part)) for part in ("query", "key", "value"))
            scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / math.sqrt(width) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            attended = (scores @ v).transpose(0, 2, 1, 3).reshape(n, t, h)
            x = self._norm(self._linear(attended, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            inner = gelu(self._linear(x, p + "intermediate.dense"))
            x = self._norm(self._linear(inner, p + "output.dense") + x, p + "output.LayerNorm")
        return x

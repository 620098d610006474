"""Which model an index run embeds with, and loading it only when there is audio to embed.

A run over a library that has not changed (the usual cron or ``--watch`` start) embeds no audio:
files whose size and time are unchanged are skipped, removed ones only leave the catalog, and files
that failed before are decoded again but, still failing, reach no model. Such a run needs the index's
model only for what the index's meta already records: its name, fingerprint, dimension, sample rate
and window. :class:`IndexedModel` stands for that model and loads the
weights on first use; loading soundsift-base costs about 1.5–2 s (most of it importing torch), a
laion/* checkpoint more.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.errors import ModelMismatch, ModelUnavailable
from engine.mismatch import PATHS, mismatch_message, model_ref, rebuild_command, short_fingerprint
from engine.models.base import AudioTextModel
from engine.segments import SegmentPolicy

log = logging.getLogger(__name__)

#: meta key: the model a new index was started with (:func:`engine.mismatch.model_ref`), recorded as
#: soon as its writer has created it. Its first commit records the model itself (model_name,
#: model_fingerprint …: :func:`model_meta`); a first run killed or interrupted before that commit
#: leaves only this, and the next run without --model goes on with it rather than the default.
#: Not model_name: readers take an index whose meta names a model for one with vectors.
STARTED_WITH_KEY = "started_with_model"


def model_meta(model: AudioTextModel) -> dict[str, Any]:
    """The meta keys that record ``model`` as an index's model (written with every commit)."""
    return {"model_name": model_ref(model), "model_fingerprint": model.fingerprint,
            "dim": int(model.dim), "sample_rate": int(model.sample_rate),
            "segment_policy": SegmentPolicy(window=float(model.window_seconds)).as_dict()}


def model_for_run(model: AudioTextModel | str | Path | None, writer: Any) -> AudioTextModel:
    """The model an index run embeds with, for the index the open ``writer`` holds: the one given,
    else the index's own (:class:`IndexedModel`, loaded when first needed), else the one its first
    run started with (:data:`STARTED_WITH_KEY`), else the default.

    An index that no commit has recorded a model for yet takes the given model whatever it
    started with (nothing was embedded with that one), and remembers it (:data:`STARTED_WITH_KEY`),
    so a run cut short before its first commit is followed by one with the same model. Raises
    ModelMismatch (:func:`resolve_model`) when the given model is not the one the index was built with.
    """
    meta, root = writer.meta, writer.layout.root
    if meta.get("model_fingerprint"):
        indexed = IndexedModel.of_index(meta, root) if model is None else None
        return indexed or resolve_model(model, meta, root)
    started = meta.get(STARTED_WITH_KEY)
    if model is None and started:
        log.info("%s has no commit yet: indexing with %r, the model its first run started with",
                 root, started)
        model = started
    model = resolve_model(model, meta, root)
    if started != model_ref(model):
        if started:
            log.info("%s has no commit yet: indexing with %r instead of %r, the model its first run "
                     "started with", root, model_ref(model), started)
        writer.update_meta(**{STARTED_WITH_KEY: model_ref(model)})
    return model


def resolve_model(model: AudioTextModel | str | Path | None, meta: dict[str, Any],
                  index_root: str | Path) -> AudioTextModel:
    """The model for an index: the one given, else the one it was built with, else the default.

    Raises ModelMismatch if the index was built with a model of another fingerprint; its
    message says how to go on (engine.mismatch), e.g. ``--rebuild`` when the model changed.
    """
    from engine.models import DEFAULT_MODEL, load_model
    recorded_name = meta.get("model_name")
    recorded_fp = meta.get("model_fingerprint")
    if model is None:
        model = load_model(recorded_name or DEFAULT_MODEL)
    elif not isinstance(model, AudioTextModel):
        model = load_model(model)
    if recorded_fp and model.fingerprint != recorded_fp:
        raise ModelMismatch(mismatch_message(index_root, recorded_name, recorded_fp, model,
                                             searching=False))
    return model


class IndexedModel(AudioTextModel):
    """The model an existing index records in its meta, loaded (and its fingerprint checked
    against the index's, :func:`resolve_model`) on the first :meth:`loaded` or embed call: a model
    whose weights changed under its name stops the run there, before anything is embedded."""

    def __init__(self, meta: dict[str, Any], index_root: str | Path) -> None:
        self.meta, self.index_root = dict(meta), index_root
        self.name = str(meta["model_name"])
        self.fingerprint = str(meta["model_fingerprint"])
        self.dim = int(meta["dim"])
        self.sample_rate = int(meta["sample_rate"])
        self.window_seconds = float(meta["segment_policy"]["window"])
        self._model: AudioTextModel | None = None

    @classmethod
    def of_index(cls, meta: dict[str, Any], index_root: str | Path) -> "IndexedModel | None":
        """The index's model, or None when its meta lacks what a run needs (an index from before
        these keys, or one whose first run never committed)."""
        try:
            return cls(meta, index_root)
        except (KeyError, TypeError, ValueError):
            return None

    def loaded(self) -> AudioTextModel:
        """The model itself, loaded once; ModelMismatch when the weights found under its name are
        no longer the ones the index was built with."""
        if self._model is None:
            self._model = resolve_model(None, self.meta, self.index_root)
        return self._model

    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        return self.loaded().embed_audio(waveforms)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        return self.loaded().embed_text(texts)


def fingerprint_now(name: str) -> str | None:
    """The fingerprint the soundsift model ``name`` (a bundled name or a model folder) has now,
    taken from its files without loading it (engine.models.soundsift_config.fingerprint_of);
    None for another kind of model (a laion/* checkpoint: known only once loaded) or one whose
    folder or config.json is gone (loading it says why)."""
    from engine.models.factory import BUNDLED, model_type_of
    from engine.models.soundsift_config import SoundsiftClapConfig, fingerprint_of

    folder = BUNDLED.get(name.strip()) or Path(name).expanduser()
    try:
        if model_type_of(folder) != "soundsift-clap":
            return None
    except (OSError, ModelUnavailable):      # no such folder, a hub id, unreadable JSON
        return None
    return fingerprint_of(folder, SoundsiftClapConfig.from_file(folder / "config.json"))


def changed_since_indexed(meta: dict[str, Any], index_root: str | Path) -> str | None:
    """What to say when the model an index records (``meta``: model_name, model_fingerprint) has
    other weights under its name now (a soundsift upgrade, a retrained folder), so search,
    tag and serve refuse the index until it is re-embedded; None while it matches, or
    when that cannot be told without loading the model (:func:`fingerprint_now`)."""
    name, recorded = meta.get("model_name"), meta.get("model_fingerprint")
    if not name or not recorded:
        return None
    try:
        now = fingerprint_now(str(name))
    except (ModelUnavailable, OSError) as e:       # loading it will stop at the same
        log.warning("cannot tell whether model %r has changed since index %s was built: %s", name, index_root, e)
        return None
    if now is None or now == recorded:
        return None
    from engine.models import DEFAULT_MODEL
    rebuild = rebuild_command(index_root, None if name == DEFAULT_MODEL else str(name))
    return (f"index {index_root} holds vectors of model {name!r} as it was (fingerprint "
            f"{short_fingerprint(recorded)}), which has changed since (its fingerprint is now "
            f"{short_fingerprint(now)}: a soundsift upgrade or retrained weights): search, tag and serve "
            f"refuse the index until its files are embedded again: `{rebuild}` ({PATHS}: "
            "the folders the index was built from)")


#: (index folder, recorded fingerprint) already checked in this process: a --watch cycle that
#: embeds nothing runs :func:`warn_if_changed` again, which neither hashes the weights again nor
#: repeats its warning
_CHECKED: set[tuple[str, str]] = set()


def warn_if_changed(model: AudioTextModel, writer: Any) -> None:
    """After a run over the index the open ``writer`` holds: a warning when the run embedded
    nothing with the index's own model (:class:`IndexedModel`, never loaded, so never checked)
    and that model has changed since the index was built (:func:`changed_since_indexed`). Such
    a run succeeds, and without this the next search was the first to say the index needs
    re-embedding."""
    if not isinstance(model, IndexedModel) or model._model is not None:
        return
    key = (str(writer.layout.root), model.fingerprint)
    if key in _CHECKED:
        return
    _CHECKED.add(key)
    said = changed_since_indexed(writer.meta, writer.layout.root)
    if said:
        log.warning("%s", said)

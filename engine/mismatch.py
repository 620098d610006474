"""An index's model versus the model asked for: how models are named, and advice that works.

An index records the model it was built with as ``model_name`` (:func:`model_ref`) and
``model_fingerprint``. When a model with another fingerprint is asked for, the advice
depends on the name:

* the same name, another fingerprint: that model has changed since the index was built
  (a soundsift upgrade, retrained weights). Neither it nor ``--model NAME`` can search
  the index any more; ``soundsift index PATH... --index … --rebuild`` re-embeds it.
* another name: use the index's own model, switch the index with ``--rebuild --model``,
  or build a separate index to keep both.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from engine.layout import index_option
from engine.models.base import AudioTextModel

#: the command placeholder for the folders an index was built from (not recorded)
PATHS = "PATH..."


def model_ref(model: AudioTextModel) -> str:
    """How to load ``model`` again later: a local folder as an absolute path, else its name."""
    p = Path(model.name).expanduser()
    return str(p.resolve()) if p.is_dir() else model.name


def short_fingerprint(fingerprint: str, digits: int = 12) -> str:
    """``fingerprint`` cut for messages, keeping a prefix such as ``hf-clap/1:`` whole."""
    head, sep, tail = str(fingerprint).rpartition(":")
    return f"{head}{sep}{tail[:digits]}"


def rebuild_command(index_root: str | Path, model_name: str | None = None) -> str:
    """The command that re-embeds ``index_root`` with ``model_name`` (None: the default model)."""
    cmd = f"soundsift index {PATHS} --index {index_option(index_root)} --rebuild"
    return cmd + (f" --model {shlex.quote(model_name)}" if model_name else "")


def mismatch_message(index_root: str | Path, recorded_name: str | None, recorded_fp: str,
                     model: AudioTextModel, *, searching: bool) -> str:
    """The ModelMismatch message for ``model`` asked of an index built with another fingerprint.

    ``searching``: the user was searching (search, similar, tag …) rather than indexing.
    Every command it suggests works as written, once PATH... is filled in (the folders the
    index was built from).
    """
    from engine.models import DEFAULT_MODEL
    ref = model_ref(model)
    built = (f"index {index_root} was built with model {recorded_name or '?'!r} "
             f"(fingerprint {short_fingerprint(recorded_fp)})")
    now = short_fingerprint(str(model.fingerprint))
    where = f" ({PATHS}: the folders the index was built from)"
    if recorded_name and recorded_name == ref:
        rebuild = rebuild_command(index_root, None if ref == DEFAULT_MODEL else ref)
        return (f"{built}, but model {ref!r} has changed since (its fingerprint is now {now}: "
                "a soundsift upgrade or retrained weights), so the index's vectors no longer "
                f"match it. Re-embed the index with the current {ref!r}: `{rebuild}`{where}")
    if not recorded_name:
        own = ""
    elif searching:
        own = (f"search it with its own model (leave out --model, or pass --model "
               f"{shlex.quote(recorded_name)}); ")
    else:
        own = f"leave out --model to keep indexing it with {recorded_name!r}; "
    separate = f"soundsift index {PATHS} --index NEW_NAME --model {shlex.quote(ref)}"
    return (f"{built}, not with {ref!r} (fingerprint {now}): {own}to switch the index to "
            f"{ref!r}, re-embed it: `{rebuild_command(index_root, ref)}`; to keep both, build "
            f"a separate index: `{separate}`{where}")

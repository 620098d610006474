"""``soundsift relocate OLD NEW``: the library's folder is now somewhere else; keep its index.

A drive mounted at another path (``/Volumes/SFX`` → ``/media/me/SFX``, ``D:`` → ``E:``), a
library copied to a new disk, or its top folder renamed: every indexed path under the old
folder is outside what a run scans, so ``soundsift index NEW`` would embed the whole library
again and keep the old rows. :func:`relocate` rewrites the catalog's paths under ``old`` to
the same paths under ``new`` in one commit, without decoding audio: vectors, tags, captions
and embedded metadata stay. Error rows move with their files.

* A file that is at the new place with the same size (and content fingerprint, where the
  catalog has one) takes that file's modification time (a copy made without keeping times would
  otherwise read as changed and be embedded again); a same-size file with other content keeps
  the old time, so the next run embeds it again.
* A file that is not at the new place is relocated all the same and reported; the next
  ``soundsift index NEW`` drops it (or embeds it again if its size changed).
* A new path the index holds already (``soundsift index NEW`` ran before the relocation)
  keeps its own row; the old row's tags and captions are added to it and the old row goes.
"""
from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from engine.errors import RelocationFailed
from engine.file_metadata import content_fingerprint
from engine.layout import existing_index
from engine.wording import count
from indexer.metadata_sheet import move_sheet_paths
from indexer.moves import Move
from indexer.scan import normalize_root, under_roots
from indexer.write import Changes, IndexWriter

log = logging.getLogger(__name__)

#: the model keys every commit records (indexer.runner writes the same ones)
MODEL_META_KEYS = ("model_name", "model_fingerprint", "dim", "sample_rate", "segment_policy")


@dataclass
class RelocationPlan:
    """Every indexed path under ``old`` → the same path under ``new``."""

    old: str
    new: str
    renames: dict[str, str] = field(default_factory=dict)    # old path → new path
    merged: list[str] = field(default_factory=list)          # new paths indexed already (rows merged)
    missing: list[str] = field(default_factory=list)         # new paths with no file there now
    retimed: int = 0                                         # files whose modification time was taken
    errors: dict[str, str] = field(default_factory=dict)     # error rows: old path → new path
    generation: int = 0                                      # the generation committed (0: dry run)

    @property
    def moved(self) -> int:
        """The files whose row moved (the others' rows merged into the one already at the new place)."""
        return len(self.renames) - len(self.merged)

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "files": len(self.renames), "moved": self.moved,
                "merged": len(self.merged),
                "missing": len(self.missing), "retimed": self.retimed, "errors": len(self.errors),
                "generation": self.generation, "missing_paths": self.missing[:50]}


def new_path(path: str, old: str, new: str) -> str:
    """``path`` (``old`` or inside it) with ``old`` replaced by ``new``."""
    if path == old:
        return new
    return os.path.join(new, os.path.relpath(path, old))


def plan_relocation(paths: Iterable[str], error_paths: Iterable[str], old: str, new: str) -> RelocationPlan:
    """The renames that take the indexed ``paths`` and ``error_paths`` from folder ``old`` to ``new``
    (both absolute), and which new paths the index holds already. Reads nothing from disk."""
    paths = list(paths)
    plan = RelocationPlan(old, new)
    plan.renames = {p: new_path(p, old, new) for p in paths if under_roots(p, [old])}
    staying = {p for p in paths if p not in plan.renames}
    plan.merged = sorted(t for t in plan.renames.values() if t in staying)
    plan.errors = {p: new_path(p, old, new) for p in error_paths if under_roots(p, [old])}
    return plan


def _same_content(path: str, fingerprint: str | None) -> bool:
    """Whether a same-size file at the new place is the indexed one: its content fingerprint
    agrees (engine.file_metadata; files indexed before session 22 have none and are taken on
    size alone). One that differs keeps the old time, so the next run embeds it again."""
    if fingerprint is None:
        return True
    try:
        return content_fingerprint(path) == fingerprint
    except OSError:
        return False


def _file_stat(path: str) -> os.stat_result | None:
    """``os.stat(path)`` of a regular file, else None (missing, a folder, unreadable)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def relocate(index: str | Path | None, old: str | Path, new: str | Path, *,
             dry_run: bool = False) -> RelocationPlan:
    """Move the index's files under folder ``old`` to the same places under folder ``new``.

    ``old`` is taken as written (it may be gone: an unmounted drive), or as what it resolves to
    where the index holds nothing under it as written (a symbolic link); ``new`` must be a folder
    that exists and holds at least one of the files. Raises RelocationFailed (nothing changed)
    otherwise, and IndexNotFound for a missing index. ``dry_run``: plan and report, change nothing.
    """
    layout = existing_index(index)
    old_root = os.path.normpath(os.path.abspath(os.path.expanduser(str(old))))
    # the catalog keeps resolved paths (indexer.scan.normalize_root): OLD named through a symbolic
    # link (``~/Sounds`` → the drive), one left dangling by the unmounted drive included, is
    # also looked up as what it resolves to
    resolved_old = os.path.realpath(old_root)
    new_root = normalize_root(new)
    for given, root, name in ((old, old_root, "OLD"), (new, new_root, "NEW")):
        if os.path.isfile(root):
            raise RelocationFailed(f"{given}: a file, not a folder (relocate moves every indexed file under "
                                   f"the folder OLD to the same place under the folder NEW; give the folder "
                                   f"as {name}); nothing was changed")
    if not os.path.isdir(new_root):
        raise RelocationFailed(f"{new}: no such folder (mount the drive, or check the path); nothing was changed")
    if old_root == new_root:
        raise RelocationFailed(f"{old} and {new} are the same folder; nothing was changed")
    with IndexWriter(layout) as writer:
        state = writer.catalog_state()
        reasons = writer.error_reasons()
        plan = plan_relocation(state, reasons, old_root, new_root)
        if not plan.renames and resolved_old not in (old_root, new_root):
            plan = plan_relocation(state, reasons, resolved_old, new_root)
            if plan.renames:
                old_root = resolved_old
        if not plan.renames:
            raise RelocationFailed(f"index {layout.root} holds no files under {old_root} "
                                   f"(it holds files under {_top_folders(state)}); nothing was changed")
        merged = set(plan.merged)
        stats = {target: _file_stat(target) for target in plan.renames.values()}
        retime = [o for o, t in plan.renames.items() if t not in merged and stats[t] is not None
                  and stats[t].st_size == state[o][0] and stats[t].st_mtime_ns != state[o][1]]
        fingerprints = {o: h.fingerprint for o, h in writer.headers(retime).items()}
        moves = []
        for old_path, target in plan.renames.items():
            st = stats[target]
            if st is None:          # relocated all the same; the next run drops it
                plan.missing.append(target)
            if target in merged:    # that row stays; this one only gives it its tags and captions
                continue
            size, mtime_ns = state[old_path]
            if old_path in fingerprints and _same_content(target, fingerprints[old_path]):
                mtime_ns, plan.retimed = int(st.st_mtime_ns), plan.retimed + 1
            moves.append(Move(old_path, target, size, mtime_ns))
        plan.missing.sort()
        if len(plan.missing) == len(plan.renames):
            n = len(plan.renames)
            raise RelocationFailed(f"{'the one file' if n == 1 else f'none of the {n} files'} indexed under "
                                   f"{old_root} is {'not ' if n == 1 else ''}at the same place under "
                                   f"{new_root} ({'' if n == 1 else 'e.g. '}{plan.missing[0]}): is it "
                                   "the right folder? Nothing was changed")
        if plan.missing:
            log.debug("%d of %s %s not at the new place (e.g. %s); the next `soundsift index %s` drops %s",
                      len(plan.missing), count(len(plan.renames), "file"),
                      "is" if len(plan.missing) == 1 else "are", plan.missing[0], new_root,
                      "it" if len(plan.missing) == 1 else "them")
        if dry_run:
            return plan
        targets = set(plan.renames.values())
        changes = Changes(moves=moves, absorb={o: t for o, t in plan.renames.items() if t in merged},
                          errors={t: reasons[o] for o, t in plan.errors.items() if t not in targets},
                          clear_errors=sorted(plan.errors))
        meta = {k: writer.meta[k] for k in MODEL_META_KEYS if k in writer.meta}
        plan.generation = writer.commit(changes, meta)
        rows = move_sheet_paths(layout,        # a library's sheet moved with it
                                lambda p: new_path(p, old_root, new_root) if under_roots(p, [old_root]) else None)
        log.debug("%d sheet rows now name their sheet under %s", rows, new_root)
    log.debug("relocated %s from %s to %s, merged %d (generation %d)", count(plan.moved, "file"), old_root,
              new_root, len(plan.merged), plan.generation)
    return plan


def _top_folders(state: dict[str, Any], shown: int = 3) -> str:
    """The folders directly holding the index's files, a few of them, for a message."""
    folders = sorted({os.path.dirname(p) for p in state})
    common = os.path.commonpath(folders) if folders else ""
    if common and common != os.sep:
        return common
    return ", ".join(folders[:shown]) + (" …" if len(folders) > shown else "")

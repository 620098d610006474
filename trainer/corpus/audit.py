"""Which labels of a manifest the model hears least: a check for recipes that mislabel files.

Every clip is scored zero-shot against the prompts of all the manifest's labels; clips are grouped
by (source, label) and a group whose own label ranks low for most of its clips — heard as
something else, consistently — is worth listening to. This is how the fillets recipe was found
labelling key presses "speech" (model card, "Label audit"). A manifest with few labels leaves a
wrong label little to lose against, so ``extra_labels`` (e.g. the model's default vocabulary) can
join the competition.

Audit with a model that was **not** trained on the manifest (for the offline corpus: the
training-free tag–text baseline, ``python -m engine.models.soundsift_clap runs/baseline``);
a model trained on wrong labels has learnt them.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.audio import probe
from engine.errors import InvalidDataset, UnreadableAudio
from engine.models.base import AudioTextModel
from engine.zeroshot import DEFAULT_TEMPLATE, class_prompts
from trainer.corpus.eval_labels import labelled_rows
from trainer.evaluation.datasets import label_text
from trainer.evaluation.embed import DEFAULT_BATCH_SIZE, embed_audio_files, embed_texts
from trainer.evaluation.metrics import class_ranks

log = logging.getLogger(__name__)


@dataclass
class GroupAudit:
    """How the model hears the clips one source gave one label."""

    source: str
    label: str
    clips: int
    median_rank: float                        # of the label among all labels (1 = heard as it)
    top1: float                               # share of clips whose first label is their own
    heard_as: list[tuple[str, int]]           # most frequent first labels, with counts
    examples: list[str] = field(default_factory=list)    # the clips whose label ranks lowest


@dataclass
class AuditReport:
    manifest: str
    model: str
    clips: int
    labels: int                               # the manifest's own labels
    extra_labels: int                         # further labels they competed against
    groups: list[GroupAudit]                  # worst first (highest median rank)
    skipped: list[dict[str, str]] = field(default_factory=list)    # {"path", "reason"} of each unreadable file


def _rows(manifest: Path, skipped: list[dict[str, str]]) -> list[tuple[Path, str, str]]:
    """(audio path, label, source) of every item (:func:`labelled_rows`; the label as prompts use it).

    A file that is not readable audio is left out with a warning and its reason in ``skipped``.
    """
    out = []
    for item in labelled_rows(manifest):
        try:
            probe(item.path)
        except UnreadableAudio as e:
            log.warning("%s: left out of the audit: %s", item.where, e)
            skipped.append({"path": e.path, "reason": e.reason})
            continue
        out.append((item.path, label_text(item.label), str(item.row.get("source") or "")))
    if not out:
        raise InvalidDataset(f"{manifest}: no readable items to audit")
    return out


def audit_manifest(manifest: str | Path, model: AudioTextModel, *, template: str = DEFAULT_TEMPLATE,
                   extra_labels: Sequence[str] = (), min_clips: int = 1, examples: int = 3,
                   batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True) -> AuditReport:
    """Score every clip of ``manifest`` against all its labels and rank the (source, label) groups.

    ``extra_labels`` compete too (a rank counts them). Groups with fewer than ``min_clips`` clips
    are left out of the report (not of the scoring).
    """
    manifest = Path(manifest)
    skipped: list[dict[str, str]] = []
    rows = _rows(manifest, skipped)
    own = {label for _, label, _ in rows}
    taken = {x.lower() for x in own}          # "White noise" does not compete with "white noise"
    extra = sorted({x for x in map(label_text, extra_labels) if x and x.lower() not in taken})
    labels = sorted(own) + extra
    if len(labels) < 2:                       # its own label would rank first for every clip
        raise InvalidDataset(f"{manifest}: every clip is labelled {labels[0]!r}, so no other label competes "
                             "and every group would rank it first; add --with-vocabulary (the model's "
                             "labels compete) or audit it with other labelled clips")
    index = {label: i for i, label in enumerate(labels)}
    audio = embed_audio_files(model, [p for p, _, _ in rows], batch_size=batch_size, progress=progress)
    text = embed_texts(model, class_prompts(labels, template), batch_size=batch_size, progress=progress)
    logits = audio.astype(np.float64) @ text.astype(np.float64).T
    targets = np.array([index[label] for _, label, _ in rows])
    ranks = class_ranks(logits, targets)
    first = logits.argmax(axis=1)

    members: dict[tuple[str, str], list[int]] = {}
    for i, (_, label, source) in enumerate(rows):
        members.setdefault((source, label), []).append(i)
    groups = []
    for (source, label), idx in members.items():
        if len(idx) < min_clips:
            continue
        r = ranks[idx]
        worst = [idx[j] for j in np.argsort(-r, kind="stable")[:examples]]
        groups.append(GroupAudit(
            source=source, label=label, clips=len(idx), median_rank=float(np.median(r)),
            top1=float(np.mean(r == 1)),
            heard_as=Counter(labels[first[i]] for i in idx).most_common(3),
            examples=[str(rows[i][0]) for i in worst]))
    groups.sort(key=lambda g: (-g.median_rank, g.top1, g.source, g.label))
    log.info("audit: %d clips, %d labels, %d groups of ≥ %d clips", len(rows), len(own),
             len(groups), min_clips)
    return AuditReport(str(manifest), model.name, len(rows), len(own), len(extra), groups, skipped)


def format_report(report: AuditReport, top: int | None = None) -> Sequence[str]:
    """Plain-text lines, worst group first."""
    extra = f" (+ {report.extra_labels} vocabulary labels)" if report.extra_labels else ""
    lines = [f"{report.manifest}: {report.clips} clips, {report.labels} labels{extra}, model {report.model}",
             "median rank | top-1 | clips | source | label | heard as"]
    for g in report.groups[:top]:
        heard = ", ".join(f"{name} ({n})" for name, n in g.heard_as)
        lines.append(f"{g.median_rank:g} | {g.top1:.2f} | {g.clips} | {g.source or '-'} | {g.label} | {heard}")
    lines += [f"left out (unreadable): {s['path']}: {s['reason']}" for s in report.skipped]
    return lines

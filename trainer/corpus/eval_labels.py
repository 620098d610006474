"""The zero-shot evaluator's label CSV from a corpus manifest (``soundsift corpus labels``).

One ``audio,label`` row per manifest item, the generic format that
:func:`trainer.evaluation.datasets.load_classification` reads: ``audio`` as the manifest
writes it (relative to the manifest's folder, so that folder is ``soundsift eval zeroshot``'s
``-a/--audio-dir``), ``label`` the item's first tag, else its ``label`` field. Labels listed in
``exclude`` are left out (compared as the evaluator compares them: underscores as spaces).
"""
from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from engine.errors import InvalidDataset
from engine.outputs import output_file
from trainer.datasets import manifest_rows, row_audio, row_tags
from trainer.evaluation.datasets import label_text

log = logging.getLogger(__name__)

HEADER = ("audio", "label")


@dataclass
class LabelRows:
    """The rows of a label CSV and what was left out."""

    rows: list[tuple[str, str]] = field(default_factory=list)    # (audio as in the manifest, label)
    excluded: int = 0                                            # items left out by ``exclude``
    unmatched: list[str] = field(default_factory=list)           # ``exclude`` labels no item has

    @property
    def labels(self) -> list[str]:
        """The distinct labels, sorted (the evaluator's class order)."""
        return sorted({label_text(label) for _, label in self.rows})


@dataclass(frozen=True)
class LabelledRow:
    """One manifest item with its label and its audio file, checked."""

    where: str                 # "manifest:line", for messages
    row: dict[str, Any]
    audio: str                 # as the manifest writes it
    label: str                 # its first tag, else its ``label`` field (as written)
    path: Path                 # the audio file (relative paths against the manifest's folder)


def labelled_rows(manifest: str | Path) -> Iterator[LabelledRow]:
    """Every item of ``manifest`` with its label and audio file.

    A row without audio, without a tag or label, or naming a missing file is an InvalidDataset
    naming its line.
    """
    manifest = Path(manifest)
    for where, row in manifest_rows(manifest):
        audio = row_audio(row)
        if not audio:
            raise InvalidDataset(f"{where}: no audio path (expected a key named 'audio' or 'path')")
        tags = row_tags(row)
        label = tags[0] if tags else str(row.get("label") or "").strip()
        if not label_text(label):
            raise InvalidDataset(f"{where}: {audio} has neither tags nor a label; give it 'tags' or 'label'")
        path = Path(audio).expanduser()
        path = path if path.is_absolute() else manifest.parent / path
        if not path.is_file():
            raise InvalidDataset(f"{where}: audio file {audio!r} not found in {manifest.parent}")
        yield LabelledRow(where, row, audio, label, path)


def label_rows(manifest: str | Path, exclude: Sequence[str] = ()) -> LabelRows:
    """``(audio, label)`` of each item of ``manifest`` whose label is not in ``exclude``.

    Every audio file must exist (relative paths against the manifest's folder); a row without
    audio, without a tag or label, or naming a missing file is an InvalidDataset naming its line.
    """
    drop = {label_text(x) for x in exclude if label_text(x)}
    out = LabelRows()
    seen: set[str] = set()
    for item in labelled_rows(manifest):
        seen.add(label_text(item.label))
        if label_text(item.label) in drop:
            out.excluded += 1
            continue
        out.rows.append((item.audio, item.label))
    out.unmatched = sorted(drop - seen)
    if out.unmatched:
        log.warning("%s: no item has the excluded label(s) %s", manifest, ", ".join(out.unmatched))
    if not out.rows:
        raise InvalidDataset(f"{manifest}: no items left to write"
                             + (f" after excluding {out.excluded}" if out.excluded else ""))
    return out


def write_label_csv(manifest: str | Path, out: str | Path, exclude: Sequence[str] = ()) -> LabelRows:
    """Write ``out`` (``audio,label`` CSV, UTF-8) from ``manifest``; atomic replace."""
    out = output_file(out)
    result = label_rows(manifest, exclude)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(result.rows)
    os.replace(tmp, out)
    return result

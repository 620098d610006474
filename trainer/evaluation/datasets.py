"""Evaluation sets read from the CSV formats the papers use, or from a generic manifest.

Retrieval (captions):
  * **Clotho**     ``file_name, caption_1 … caption_5`` — audio at ``<audio_dir>/<file_name>``.
  * **AudioCaps**  ``audiocap_id, youtube_id, start_time, caption`` — one row per caption;
    rows with the same ``(youtube_id, start_time)`` are one clip. The clip's file is the
    first that exists in ``audio_dir`` (searched recursively, any audio extension) among
    the stems ``<youtube_id>_<start_time>``, ``Y<youtube_id>_<start_time>``,
    ``Y<youtube_id>``, ``<youtube_id>``, then ``<audiocap_id>`` of any of its rows
    (``start_time`` as written and as an integer, e.g. ``30`` for ``30.0``).
  * **manifest**   a training manifest, read by :func:`trainer.datasets.read_manifest_entries`
    (what ``soundsift train`` reads: ``audio, caption`` or ``audio, captions, tags`` …, CSV
    with several captions in a cell separated by ``|``, or JSON Lines as ``corpus build`` and
    ``caption --out`` write them); several rows per audio allowed. A row's captions are its
    queries; a row with tags only has the caption training gives it ("This is a sound of
    …"). ``audio`` is relative to ``audio_dir`` unless absolute.

Zero-shot classification (labels; underscores in labels become spaces):
  * **ESC-50**     ``filename, fold, target, category, …`` — audio at ``<audio_dir>/<filename>``.
  * **UrbanSound8K** ``slice_file_name, fold, classID, class`` — audio at
    ``<audio_dir>/fold<k>/<slice_file_name>`` (or directly in ``audio_dir``).
  * **generic**    ``audio, label`` (optional ``fold``) — classes in sorted order; labels that
    differ only in case are one class (the first spelling kept).

The format is recognised from the header. Problems raise
:class:`~engine.errors.InvalidDataset` naming the file and line.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from engine.audio import AUDIO_EXTENSIONS
from engine.errors import InvalidDataset
from trainer.datasets import JSONL_SUFFIXES, csv_delimiter, looks_like_manifest, read_manifest_entries
from trainer.jsonl import iter_objects, not_text, open_text



# formats whose papers score each caption against its own clip only (LAION-CLAP, DCASE task 6b)
PAPER_FORMATS = ("clotho", "audiocaps")


@dataclass
class RetrievalSet:
    """Audio clips and their captions; ``caption_audio[c]`` is caption c's clip index."""

    format: str
    audio_paths: list[Path]
    captions: list[str]
    caption_audio: list[int]

    @property
    def relevance_texts(self) -> list[str] | None:
        """The caption texts :func:`trainer.evaluation.metrics.caption_relevance` compares, or None.

        None for Clotho and AudioCaps: each caption's one right answer is its own clip, as
        LAION-CLAP and DCASE score them (AudioCaps' test split writes 71 caption texts for
        several clips; counting those clips as right answers would lift figures above the
        papers'). A manifest's captions: clips sharing a caption text are each a right answer.
        """
        return None if self.format in PAPER_FORMATS else self.captions


@dataclass
class ClassificationSet:
    """Labelled clips; ``targets[n]`` indexes ``labels``; ``folds`` is None without folds."""

    format: str
    audio_paths: list[Path]
    targets: list[int]
    labels: list[str]
    folds: list[str] | None


@dataclass
class _Row:
    line: int
    fields: dict[str, str]


def label_text(raw: str) -> str:
    """A class name as a prompt uses it: underscores become spaces, whitespace trimmed."""
    return " ".join(raw.replace("_", " ").split())


def label_key(label: str) -> str:
    """How two class names are compared: as :func:`label_text` gives them, case folded."""
    return label_text(label).casefold()


# --------------------------------------------------------------------------- reading
def _read_rows(path: Path) -> tuple[list[str], list[_Row]]:
    """Header and rows of a CSV (or JSON Lines) file; every cell stripped. Its text is read as a
    training manifest's is (:func:`trainer.jsonl.open_text`: UTF-8, or UTF-16 after a byte-order
    mark); text in another encoding is one InvalidDataset naming the file."""
    if path.is_dir():
        raise InvalidDataset(f"{path}: is a folder; pass the dataset's CSV (a folder per class is not "
                             "read: list the clips in an audio, label CSV)")
    if not path.is_file():
        raise InvalidDataset(f"{path}: no such file; pass the dataset's CSV")
    if path.suffix.lower() in JSONL_SUFFIXES:
        return _read_jsonl(path)
    # UTF-8 with or without a byte-order mark, or UTF-16 (Excel's "Unicode Text"), as manifests are read
    with open_text(path, newline="") as f:
        try:
            reader = csv.reader(f, delimiter=csv_delimiter(f, path, path.suffix.lower().lstrip(".")))
            # blank lines above the header are skipped, as blank lines below it
            header = next((cells for cells in reader if any(c.strip() for c in cells)), None)
            if not header:
                raise InvalidDataset(f"{path}: empty file; expected a header row")
            header = [h.strip() for h in header]
            rows = []
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue  # blank line
                if len(cells) != len(header):
                    raise InvalidDataset(
                        f"{path}: line {reader.line_num}: {len(cells)} fields where the header has "
                        f"{len(header)}; quote cells that contain commas")
                rows.append(_Row(reader.line_num, {h: c.strip() for h, c in zip(header, cells)}))
        except UnicodeDecodeError as e:
            raise not_text(path, f, e, "CSV") from e
        except csv.Error as e:
            raise InvalidDataset(f"{path}: malformed CSV ({e})") from e
    if not rows:
        raise InvalidDataset(f"{path}: no data rows below the header")
    return header, rows


def _read_jsonl(path: Path) -> tuple[list[str], list[_Row]]:
    rows: list[_Row] = []
    keys: list[str] = []
    for n, obj in iter_objects(path):
        for k in obj:
            if k not in keys:
                keys.append(k)
        rows.append(_Row(n, {k: str(v).strip() for k, v in obj.items() if v is not None}))
    if not rows:
        raise InvalidDataset(f"{path}: no records")
    return keys, rows


def _open_table(csv_path: str | Path, audio_dir: str | Path | None) -> tuple[Path, list[str], list[_Row], Path]:
    """The table's path, header and rows, and the audio folder (default: the table's folder)."""
    path = Path(csv_path)
    header, rows = _read_rows(path)
    root = Path(audio_dir) if audio_dir is not None else path.parent
    if not root.is_dir():
        raise InvalidDataset(f"{root}: audio folder does not exist; pass --audio-dir")
    return path, header, rows, root


def _cell(path: Path, row: _Row, column: str) -> str:
    value = row.fields.get(column, "")
    if not value:
        raise InvalidDataset(f"{path}: line {row.line}: empty {column!r}")
    return value


def _label(path: Path, row: _Row, column: str) -> str:
    """The row's class name as :func:`label_text` gives it; InvalidDataset when nothing is left
    (a label "_" would be a class with an empty prompt)."""
    raw = _cell(path, row, column)
    label = label_text(raw)
    if not label:
        raise InvalidDataset(f"{path}: line {row.line}: {column!r} is {raw!r}, no class name once "
                             "underscores become spaces")
    return label


def _integer(path: Path, row: _Row, column: str) -> int:
    value = _cell(path, row, column)
    try:
        return int(float(value))
    except ValueError:
        raise InvalidDataset(f"{path}: line {row.line}: {column!r} should be a number, got {value!r}") from None


class _Missing:
    """Collects rows whose audio is missing, then raises one error naming the first."""

    def __init__(self, csv_path: Path, audio_dir: Path) -> None:
        self.csv_path, self.audio_dir = csv_path, audio_dir
        self.rows: list[tuple[int, str]] = []

    def add(self, line: int, what: str) -> None:
        self.rows.append((line, what))

    def raise_if_any(self) -> None:
        if not self.rows:
            return
        line, what = self.rows[0]
        more = f" (and {len(self.rows) - 1} more rows)" if len(self.rows) > 1 else ""
        raise InvalidDataset(
            f"{self.csv_path}: line {line}: audio file {what} not found in {self.audio_dir}{more}; "
            "check --audio-dir or remove the row")


def _resolve(audio_dir: Path, name: str) -> Path:
    p = Path(name).expanduser()
    return p if p.is_absolute() else audio_dir / p


# --------------------------------------------------------------------------- retrieval
def load_retrieval(csv_path: str | Path, audio_dir: str | Path | None = None) -> RetrievalSet:
    """Read a Clotho, AudioCaps or ``audio, caption`` manifest; check every file exists.

    ``audio_dir`` defaults to the CSV's folder.
    """
    path, header, rows, root = _open_table(csv_path, audio_dir)
    cols = set(header)
    caption_cols = sorted((h for h in header if re.fullmatch(r"caption_\d+", h)),
                          key=lambda h: int(h.split("_")[1]))
    if "file_name" in cols and caption_cols:
        fmt, pairs = "clotho", _clotho_pairs(path, rows, root, caption_cols)
    elif {"youtube_id", "start_time", "caption"} <= cols:
        fmt, pairs = "audiocaps", _audiocaps_pairs(path, rows, root)
    elif looks_like_manifest(header):
        fmt, pairs = "manifest", _manifest_pairs(path, root)
    else:
        raise InvalidDataset(
            f"{path}: unrecognised header {header}; expected Clotho (file_name, caption_1…caption_5), "
            "AudioCaps (audiocap_id, youtube_id, start_time, caption) or a training manifest "
            "(audio, caption; or audio, captions, tags …)")
    audio_index: dict[Path, int] = {}
    captions: list[str] = []
    caption_audio: list[int] = []
    for audio, caption in pairs:
        captions.append(caption)
        caption_audio.append(audio_index.setdefault(audio, len(audio_index)))
    return RetrievalSet(fmt, list(audio_index), captions, caption_audio)


def _clotho_pairs(path: Path, rows: list[_Row], root: Path, caption_cols: list[str]) -> list[tuple[Path, str]]:
    missing = _Missing(path, root)
    pairs = []
    for row in rows:
        name = _cell(path, row, "file_name")
        audio = _resolve(root, name)
        if not audio.is_file():
            missing.add(row.line, repr(name))
        pairs.extend((audio, _cell(path, row, c)) for c in caption_cols)
    missing.raise_if_any()
    return pairs


def _manifest_pairs(path: Path, root: Path) -> list[tuple[Path, str]]:
    """(audio, caption) of each caption of a training manifest, read as the trainer reads it."""
    suffix = path.suffix.lower()
    kind = "jsonl" if suffix in JSONL_SUFFIXES else "tsv" if suffix == ".tsv" else "csv"
    missing = _Missing(path, root)
    pairs = []
    for entry in read_manifest_entries(path, root, kind=kind, skip_unusable_rows=True):   # as training leaves them out
        audio = Path(entry.item.audio)
        if not audio.is_file():
            missing.add(entry.line, repr(entry.audio))
        captions = entry.item.captions or [entry.item.caption(None)]   # tags only: training's caption
        pairs.extend((audio, caption) for caption in captions)
    missing.raise_if_any()
    return pairs


def _stem_map(root: Path) -> dict[str, Path]:
    """File stem → path for every audio file under ``root`` (first found wins)."""
    found: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file():
            found.setdefault(p.stem, p)
    return found


def _audiocaps_stems(youtube_id: str, start: str, audiocap_ids: list[str]) -> Iterator[str]:
    starts = [start]
    try:
        as_int = str(int(float(start)))
        if as_int != start:
            starts.append(as_int)
    except ValueError:
        pass
    for s in starts:
        yield f"{youtube_id}_{s}"
    for s in starts:
        yield f"Y{youtube_id}_{s}"
    yield f"Y{youtube_id}"
    yield youtube_id
    yield from audiocap_ids


def _audiocaps_pairs(path: Path, rows: list[_Row], root: Path) -> list[tuple[Path, str]]:
    groups: dict[tuple[str, str], list[_Row]] = {}
    for row in rows:
        key = (_cell(path, row, "youtube_id"), _cell(path, row, "start_time"))
        groups.setdefault(key, []).append(row)
    stems = _stem_map(root)
    missing = _Missing(path, root)
    pairs = []
    for (youtube_id, start), group in groups.items():
        ids = [r.fields["audiocap_id"] for r in group if r.fields.get("audiocap_id")]
        candidates = list(_audiocaps_stems(youtube_id, start, ids))
        audio = next((stems[s] for s in candidates if s in stems), None)
        if audio is None:
            missing.add(group[0].line, f"for youtube_id {youtube_id!r} start_time {start!r} "
                                       f"(tried {', '.join(candidates[:4])}… with any audio extension)")
            continue
        pairs.extend((audio, _cell(path, r, "caption")) for r in group)
    missing.raise_if_any()
    return pairs


# --------------------------------------------------------------------------- zero-shot
def load_classification(csv_path: str | Path, audio_dir: str | Path | None = None) -> ClassificationSet:
    """Read an ESC-50, UrbanSound8K or ``audio, label`` CSV; check every file exists.

    ``audio_dir`` defaults to the CSV's folder.
    """
    path, header, rows, root = _open_table(csv_path, audio_dir)
    cols = set(header)
    if {"filename", "fold", "target", "category"} <= cols:
        return _numbered_classes(path, rows, root, "esc50", "filename", "target", "category",
                                 lambda row, name: [_resolve(root, name)])
    if {"slice_file_name", "fold", "classID", "class"} <= cols:
        return _numbered_classes(
            path, rows, root, "urbansound8k", "slice_file_name", "classID", "class",
            lambda row, name: [root / f"fold{_integer(path, row, 'fold')}" / name, root / name])
    if {"audio", "label"} <= cols:
        return _generic_classes(path, rows, root, has_folds="fold" in cols)
    raise InvalidDataset(
        f"{path}: unrecognised header {header}; expected ESC-50 (filename, fold, target, category), "
        "UrbanSound8K (slice_file_name, fold, classID, class) or generic (audio, label)")


def _numbered_classes(path: Path, rows: list[_Row], root: Path, fmt: str, file_col: str,
                      id_col: str, name_col: str, candidates) -> ClassificationSet:
    missing = _Missing(path, root)
    names: dict[int, str] = {}
    audio, ids, folds = [], [], []
    for row in rows:
        class_id = _integer(path, row, id_col)
        label = _label(path, row, name_col)
        if names.setdefault(class_id, label) != label:
            raise InvalidDataset(f"{path}: line {row.line}: {id_col} {class_id} is {label!r} here but "
                                 f"{names[class_id]!r} earlier; one id must name one class")
        name = _cell(path, row, file_col)
        found = next((p for p in candidates(row, name) if p.is_file()), None)
        if found is None:
            missing.add(row.line, repr(name))
        audio.append(found)
        ids.append(class_id)
        folds.append(str(_integer(path, row, "fold")))
    missing.raise_if_any()
    order = sorted(names)
    index = {class_id: i for i, class_id in enumerate(order)}
    labels = [names[c] for c in order]
    if len({label_key(x) for x in labels}) != len(labels):    # "Dog" and "dog" prompt alike
        raise InvalidDataset(f"{path}: two class ids share one label; labels must be distinct "
                             "(compared ignoring case)")
    return ClassificationSet(fmt, audio, [index[c] for c in ids], labels, folds)


def _generic_classes(path: Path, rows: list[_Row], root: Path, has_folds: bool) -> ClassificationSet:
    missing = _Missing(path, root)
    audio, raw_labels, folds = [], [], []
    for row in rows:
        name = _cell(path, row, "audio")
        p = _resolve(root, name)
        if not p.is_file():
            missing.add(row.line, repr(name))
        audio.append(p)
        raw_labels.append(_label(path, row, "label"))
        if has_folds:
            folds.append(_cell(path, row, "fold"))
    missing.raise_if_any()
    # one class per label compared ignoring case ("Dog" and "dog" would be two classes whose
    # prompts a case-blind text tower embeds alike: every clip of both a pessimistic tie), the
    # first spelling kept, as captions in retrieval and labels files in tagging
    spelling: dict[str, str] = {}
    for x in raw_labels:
        spelling.setdefault(label_key(x), x)
    labels = sorted(spelling.values())
    index = {label_key(label): i for i, label in enumerate(labels)}
    return ClassificationSet("generic", audio, [index[label_key(x)] for x in raw_labels], labels,
                             folds if has_folds else None)

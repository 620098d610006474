"""Training data: audio–text pairs from manifests, class folders, Clotho CSVs and WebDataset shards.

Readers turn each source into a list of :class:`Item` (where the audio is, its captions,
its tags, which source it came from). :class:`AudioTextDataset` decodes items in
DataLoader workers through :mod:`engine.audio` (soundfile → mono → soxr), cuts a
model-window crop (random in training, the first window in validation), picks a caption
(tags without captions become captions by keyword-to-caption), optionally mixes in a
second clip with a joined caption, and applies channel augmentations.

Randomness is a pure function of ``(seed, epoch, index)``: :class:`EpochBatchSampler`
hands the dataset ``(epoch, index)`` keys, so results do not depend on worker count and
a resumed run sees exactly the batches the uninterrupted run would have seen.

Formats
  manifest  .jsonl: one object per line, ``audio`` (or ``path``/``file``/``file_name``/
            ``filename``), ``captions`` / ``caption`` / ``text`` / ``description`` (string or
            list; also ``caption_1`` …), optional ``tags`` / ``tag`` / ``labels`` / ``label``
            (list or ``;``-separated), optional ``source``. .csv/.tsv: the same column names;
            several captions in one cell are separated by ``|``, tags by ``;``; a cell written
            as a list (``["a", "b"]``, or ``['a', 'b']`` as pandas writes one) is that list; a
            .csv (or .txt, as Excel saves "Unicode Text") whose header has ``;`` or tabs and no
            comma is read with that separator. Text is UTF-8, or UTF-16 after its byte-order mark.
            Cells holding NaN, None or null (a missing value as pandas or Python writes one) are
            empty. Rows without an audio path or with neither captions nor tags, and lines that
            are no row (not a JSON object, more cells than the header, a quoted cell running on
            over lines that look like rows), are left out, counted in one warning (an error when
            none is left, or when most lines are no rows).
            Relative audio paths are relative to the manifest's folder (``\\`` read as ``/``
            when no file holds the name as written: a manifest made on Windows; a ``file://``
            URI is the file it names). Captions that are only a number, columns not read
            (but for soundsift's own bookkeeping: split, origin, duration, …), tags with
            commas but no ``;``, and list-like cells that are not lists are said in one
            warning per manifest. The evaluator reads these manifests with this reader.
  folders   ``root/<label>/*.wav``: the folder name is the tag.
  clotho    Clotho CSV (``file_name, caption_1 … caption_5``) with an audio folder; rows without
            captions are left out, counted in one warning.
  webdataset  uncompressed ``.tar`` shards: ``<key>.flac|wav|mp3|ogg`` (or any extension the
            indexer reads: ``.m4a``, ``.opus`` …, decoded from memory as engine.audio decodes
            a file of that name) + ``<key>.json`` with ``"text"`` (string or list) and optional
            ``"tag"``/``"tags"`` (the LAION-Audio-630K layout). Samples without audio, a valid
            .json object or a text or tags are skipped, counted by reason in one warning.
"""
from __future__ import annotations

import ast
import csv
import glob
import json
import logging
import math
import os
import random
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import soxr

from engine.audio import (AUDIO_EXTENSIONS, AudioInfo, audio_files, decode, go_to_frame, header_info,
                          open_sound, open_sound_bytes, probe, read_frames, read_sound_bytes)
from engine.system_files import is_system_folder
from engine.errors import InvalidDataset, UnreadableAudio
from engine.towers import yamnet
from trainer.augment import AugmentConfig, ChannelAugment, mix_clips
from trainer.captions import captions_from_tags, keyword_to_caption
from trainer.jsonl import iter_objects, not_text, open_text

log = logging.getLogger(__name__)

FORMATS = ("manifest", "folders", "clotho", "webdataset")
_AUDIO_KEYS = ("audio", "path", "file", "file_name", "filename")
_CAPTION_KEYS = ("captions", "caption", "text", "description")   # and caption_1, caption_2 …
_TAG_KEYS = ("tags", "tag", "labels", "label")
#: columns soundsift's own manifests carry (``corpus build``, ``caption --out``) that describe the
#: file rather than what it sounds like: read by nothing here, and not worth a warning
_BOOKKEEPING_KEYS = ("split", "origin", "duration", "sample_rate", "channels", "tag_scores")
#: the columns a manifest is read from, as messages name them
MANIFEST_COLUMNS = ("/".join(_AUDIO_KEYS) + " (the audio), " + "/".join(_CAPTION_KEYS)
                    + "/caption_<n> (captions), " + "/".join(_TAG_KEYS) + " (tags), source")
#: manifest names read as JSONL (anything else as CSV/TSV); `soundsift caption --out` must have one
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass(frozen=True)
class TarMember:
    """Audio stored inside an uncompressed tar shard, read by offset (random access)."""

    tar: str
    name: str
    offset: int
    size: int

    def read(self) -> bytes:
        with open(self.tar, "rb") as f:
            f.seek(self.offset)
            return f.read(self.size)

    def __str__(self) -> str:
        return f"{self.tar}:{self.name}"


@dataclass
class Item:
    """One audio–text example."""

    audio: str | TarMember
    captions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = ""
    seconds: float | None = None        # the audio's length, where its header was read (drop_missing)

    def caption(self, rng: random.Random | None = None) -> str:
        """A caption: a random one of ``captions`` (or from ``tags``) with ``rng``, else the first."""
        if self.captions:
            return self.captions[0] if rng is None else rng.choice(self.captions)
        return keyword_to_caption(self.tags, rng)

    def as_json(self) -> dict[str, Any]:
        return {"audio": str(self.audio), "captions": self.captions, "tags": self.tags, "source": self.source}


# --------------------------------------------------------------------------- readers

#: a cell's text that stands for no value, as pandas, numpy and Python write one (NaN, None, null)
_MISSING_TEXTS = frozenset({"nan", "none", "null", "<na>"})
#: a caption that is only a number (an id or a class number in the caption column)
_NUMBER = re.compile(r"[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?")


def _missing(value: Any) -> bool:
    """Whether a cell holds no value: None, a float NaN (JSON's ``NaN``, as Python writes pandas'
    missing values), or text that writes one (``nan``, ``None``, ``null``)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in _MISSING_TEXTS


def _split(value: Any, sep: str) -> list[str]:
    if _missing(value):
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if not _missing(v) and str(v).strip()]
    return [v.strip() for v in str(value).split(sep) if v.strip() and not _missing(v)]


def _list_cell(text: str) -> list[str] | None:
    """A cell written as a list of strings (JSON ``["a", "b"]``, or Python's ``['a', 'b']`` as
    pandas writes a list column to CSV) as that list; None for any other text."""
    s = text.strip()
    if not (s.startswith("[") and s.endswith("]")):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(s)
        except Exception:   # noqa: BLE001 — any text that is not such a list is read as text
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [v.strip() for v in value if v.strip()]
    return None


def _looks_listed(text: str) -> bool:
    s = text.strip()
    return s.startswith("[") and s.endswith("]") and any(c in s for c in ",\"'")


class _ManifestNotes:
    """What one manifest's rows did that its author may not have meant: said once, after the last row."""

    def __init__(self) -> None:
        self.unused: dict[str, str] = {}                 # column not read → first row holding a value
        self.comma_tags: list[tuple[str, str]] = []      # (where, cell): commas but no ';'
        self.bad_lists: list[tuple[str, str, str]] = []  # (where, column, cell): [ … ] but not a list
        self.lists: list[tuple[str, str, str]] = []      # (where, column, cell) read as lists
        self.missing: list[tuple[str, str, str]] = []    # (where, column, cell) holding NaN/None: no value
        self.numbers: list[tuple[str, str]] = []         # (where, caption) that is only a number

    def row(self, where: str, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if (key not in self.unused and not _is_read(key) and key not in _BOOKKEEPING_KEYS
                    and value is not None and str(value).strip() and str(value).strip() not in ("[]", "{}")):
                self.unused[key] = where

    def warning(self, path: Path) -> str | None:
        parts = []
        if self.unused:
            names = ", ".join(repr(k) for k in self.unused)
            parts.append(f"{'columns' if len(self.unused) > 1 else 'column'} {names} "
                         f"{'are' if len(self.unused) > 1 else 'is'} not used (soundsift reads {MANIFEST_COLUMNS})")
        if self.comma_tags:
            where, cell = self.comma_tags[0]
            split = [t.strip() for t in cell.split(",") if t.strip()]
            more = len(self.comma_tags) - 1
            parts.append(f"tags are separated by ';' — {cell.strip()!r} (line {_line(where)}) is one tag; "
                         f"write {'; '.join(split)!r} for {len(split)} tags"
                         + (f" ({more} more {_rows(more)} {'has' if more == 1 else 'have'} commas but no ';' "
                            f"in {'its' if more == 1 else 'their'} tags)" if more else ""))
        if self.bad_lists:
            where, key, cell = self.bad_lists[0]
            more = len(self.bad_lists) - 1
            parts.append(f"the {key} cell {cell.strip()!r} (line {_line(where)}) looks like a list but is not "
                         "a JSON list of strings, so it is read as text"
                         + (f" ({more} more such {'cell' if more == 1 else 'cells'})" if more else "")
                         + "; quote each item: [\"a\", \"b\"]")
        if self.numbers:
            where, caption = self.numbers[0]
            more = len(self.numbers) - 1
            parts.append(f"the caption {caption!r} (line {_line(where)}) is only a number"
                         + (f" ({more} more such {'caption' if more == 1 else 'captions'})" if more else "")
                         + "; it is trained on as that text (an id or a class number in the caption column?)")
        if not parts:
            return None
        if len(parts) == 1:
            return f"{path}: {parts[0]}"
        return f"{path}: {len(parts)} things to check:" + "".join(f"\n  - {p}" for p in parts)


def _rows(n: int) -> str:
    return "row" if n == 1 else "rows"


def _line(where: str) -> str:
    return where.rsplit(":", 1)[-1]


def _is_read(key: Any) -> bool:
    return isinstance(key, str) and (key in _AUDIO_KEYS or key in _CAPTION_KEYS or key in _TAG_KEYS
                                     or key == "source" or key.startswith("caption_"))


def _cell_values(row: dict[str, Any], key: str, sep: str, where: str, notes: _ManifestNotes | None) -> list[str]:
    """The values of one caption or tag cell: a list as it is, a cell written as a list as that
    list, else the text split at ``sep``."""
    value = row.get(key)
    if _missing(value):
        if notes is not None and value is not None and str(value).strip():
            notes.missing.append((where, key, str(value)))
        return []
    if isinstance(value, (list, tuple)):
        return _split(value, sep)
    text = str(value)
    listed = _list_cell(text)
    if listed is not None:
        if notes is not None:
            notes.lists.append((where, key, text))
        return listed
    if notes is not None:
        if _looks_listed(text):
            notes.bad_lists.append((where, key, text))
        elif sep == ";" and "," in text and ";" not in text:
            notes.comma_tags.append((where, text))
    return _split(text, sep)


def row_audio(row: dict[str, Any]) -> str | None:
    """A manifest row's audio path as written (``audio``, ``path``, ``file`` …), or None."""
    audio = next((str(row[k]).strip() for k in _AUDIO_KEYS
                  if row.get(k) and not _missing(row[k]) and str(row[k]).strip()), None)
    return audio or None


def row_tags(row: dict[str, Any], where: str = "", notes: _ManifestNotes | None = None) -> list[str]:
    """A manifest row's tags in order, from ``tags``, ``tag``, ``labels`` and ``label``: each a
    list, a cell written as a list (``["a", "b"]``), or text with the tags separated by ``;``."""
    tags = [t for key in _TAG_KEYS for t in _cell_values(row, key, ";", where, notes)]
    return list(dict.fromkeys(tags))


def row_captions(row: dict[str, Any], caption_sep: str, where: str = "",
                 notes: _ManifestNotes | None = None) -> list[str]:
    """A manifest row's captions in order, without repeats: ``captions``, ``caption``, ``text``,
    ``description`` (each a list, a cell written as a list, or text with captions separated by
    ``caption_sep``), then ``caption_1``, ``caption_2`` …"""
    captions = [c for key in _CAPTION_KEYS for c in _cell_values(row, key, caption_sep, where, notes)]
    captions += [str(row[k]).strip() for k in sorted(k for k in row if isinstance(k, str))
                 if k.startswith("caption_") and not _missing(row[k]) and str(row[k]).strip()]
    if notes is not None:
        notes.numbers += [(where, c) for c in captions if _NUMBER.fullmatch(c)]
    return list(dict.fromkeys(captions))


def looks_like_manifest(columns: Sequence[str]) -> bool:
    """Whether a table with these columns is a manifest :func:`read_manifest` reads: an audio
    column and a caption or tag column."""
    cols = [c for c in columns if isinstance(c, str)]
    return any(k in cols for k in _AUDIO_KEYS) and any(
        k in _CAPTION_KEYS or k in _TAG_KEYS or k.startswith("caption_") for k in cols)


def _row_to_item(row: dict[str, Any], base: Path, where: str, *, caption_sep: str,
                 notes: _ManifestNotes | None = None) -> Item:
    audio = row_audio(row)
    if not audio:
        raise InvalidDataset(f"{where}: no audio path (expected a column/key named "
                             f"{', '.join(repr(k) for k in _AUDIO_KEYS)}){_unread_hint(row)}")
    captions = row_captions(row, caption_sep, where, notes)
    tags = row_tags(row, where, notes)
    if not captions and not tags:
        raise InvalidDataset(f"{where}: {audio} has neither captions nor tags; give it a 'caption' or 'tags' "
                             f"(a manifest is read from {MANIFEST_COLUMNS}){_unread_hint(row)}")
    return Item(str(manifest_audio_path(audio, base)), captions, tags, str(row.get("source") or "").strip())


def _unread_hint(row: dict[str, Any]) -> str:
    """'; its 'wav', 'desc' are not read': the row's filled columns the manifest reader does not
    read, for the message refusing it (a table whose audio column is named 'wav' said only
    which names it expected, not that its own went unread)."""
    unread = [k for k, v in row.items() if not _is_read(k) and v is not None and str(v).strip()]
    return f"; its {', '.join(repr(k) for k in unread)} {'is' if len(unread) == 1 else 'are'} not read" \
        if unread else ""


def manifest_audio_path(audio: str, base: Path) -> Path:
    """Where a manifest's audio path points: relative ones against ``base``; a path written on
    Windows (``sounds\\door.wav``) read with ``/`` where ``\\`` is no separator and no file holds
    the name as written."""
    audio = _uri_path(audio)
    path = Path(audio).expanduser()
    if "\\" in audio and os.sep == "/":
        slashed = Path(audio.replace("\\", "/")).expanduser()
        as_written = path if path.is_absolute() else base / path
        if not as_written.exists():
            path = slashed
    return path if path.is_absolute() else base / path


def _uri_path(audio: str) -> str:
    """The local path a ``file:`` URI names (``file:///data/a%20b.wav`` → ``/data/a b.wav``, as a
    file manager's "copy link" or Python's ``Path.as_uri()`` writes it); any other text as it is."""
    if not audio.lower().startswith("file:"):
        return audio
    from urllib.parse import urlparse
    from urllib.request import url2pathname     # imported here: it brings http and ssl along
    parts = urlparse(audio)
    if parts.netloc not in ("", "localhost"):       # file://server/share/a.wav: a network share
        return url2pathname(f"//{parts.netloc}{parts.path}")
    return url2pathname(parts.path)


def _manifest_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix == ".tsv":
        return "tsv"
    if suffix in (".csv", ".txt"):      # .txt: Excel's "Unicode Text" and "Text (Tab delimited)"
        return "csv"                    # (the separator read from the header: csv_delimiter)
    raise InvalidDataset(f"{path}: unknown manifest type; use .jsonl, .csv or .tsv")


def _numbered_rows(path: Path, kind: str | None = None,
                   bad: list[str] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, raw row)`` of a manifest; ``kind`` ("jsonl", "csv", "tsv") overrides the suffix. A
    line that is no row (not a JSON object, more cells than the header) is an InvalidDataset
    naming it, or with ``bad`` given, its message goes there and the line is passed over."""
    if not path.is_file():
        raise InvalidDataset(f"{path}: manifest not found")
    kind = kind or _manifest_kind(path)
    if kind == "jsonl":
        yield from iter_objects(path, bad)
        return
    with open_text(path, newline="") as f:      # a spreadsheet's byte-order mark read, UTF-16 too
        last = 1                                # the line the last row (or the header) ended on
        try:
            delimiter = csv_delimiter(f, path, kind)
            reader = csv.DictReader(f, delimiter=delimiter)
            if reader.fieldnames:
                reader.fieldnames = [h.strip() for h in reader.fieldnames]   # "audio, caption"
            last = reader.line_num
            for row in reader:
                start, last = last + 1, reader.line_num
                message = _row_trouble(path, start, reader.line_num, row, len(reader.fieldnames or ()), delimiter)
                if message:
                    if bad is None:
                        raise InvalidDataset(message)
                    bad.append(message)
                    continue
                if not any(v and v.strip() for v in row.values()):
                    continue                    # a blank row (",,")
                yield reader.line_num, row
        except UnicodeDecodeError as e:
            raise not_text(path, f, e) from e
        except csv.Error as e:
            raise InvalidDataset(f"{path}: malformed CSV from line {last + 1} ({e}){_csv_error_hint(e)}") from e


def _csv_error_hint(error: csv.Error) -> str:
    """What likely caused a CSV reader's error, as the end of its message."""
    if "field larger than field limit" in str(error):
        return "; a quote left unclosed there runs on to the end of the file"
    return ""


def _row_trouble(path: Path, start: int, end: int, row: dict[Any, Any], header: int, delimiter: str) -> str | None:
    """Why a CSV row read from lines ``start``–``end`` is no row, or None: more cells than the
    ``header`` (an unquoted comma; the extra cells are popped from ``row``), or a quoted cell that runs
    on over lines holding what look like rows of their own (a quote left unclosed swallows them)."""
    extra = row.pop(None, None)     # cells beyond the header's
    if extra and any(str(v).strip() for v in extra):
        return (f"{path}:{end}: {header + len(extra)} fields where the header has {header}; "
                "quote cells that contain commas")
    if end > start:
        swallowed = sum(_looks_like_a_row(line, delimiter) for v in row.values() if isinstance(v, str)
                        for line in v.splitlines()[1:])
        if swallowed:
            return (f"{path}:{start}: a quoted cell runs on to line {end}, taking in what look like {swallowed} "
                    f"more {_rows(swallowed)} (a quote left unclosed?)")
    return None


#: a line naming an audio file, as a manifest row does (:func:`_looks_like_a_row`)
_AUDIO_NAME = re.compile(r"\.(" + "|".join(sorted(e.lstrip(".") for e in AUDIO_EXTENSIONS)) + r")\b", re.IGNORECASE)


def _looks_like_a_row(line: str, delimiter: str) -> bool:
    """Whether a line inside a quoted cell looks like a manifest row: a separator and an audio file's name."""
    return delimiter in line and _AUDIO_NAME.search(line) is not None


def csv_delimiter(f: Any, path: Path, kind: str = "csv") -> str:
    """The cell separator of a CSV manifest or table open as ``f`` (left at its start): ``,``, or ``;`` or a
    tab where the header has no comma but those (as a spreadsheet set to a European locale saves
    "CSV", or a tab-separated file named .csv); a tab for ``kind`` "tsv"."""
    if kind == "tsv":
        return "\t"
    start = f.tell()
    header = next((line for line in f if line.strip()), "")
    f.seek(start)
    if "," not in header:
        for sep, name in ((";", "';'"), ("\t", "tabs")):
            if sep in header:
                log.info("%s: cells separated by %s, read as such", path, name)
                return sep
    return ","


def manifest_rows(path: str | Path, kind: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("<path>:<line>", raw row)`` for each row of a ``.jsonl`` or ``.csv``/``.tsv`` manifest
    (blank rows passed over; a row with more cells than the header is an error)."""
    path = Path(path)
    for n, row in _numbered_rows(path, kind):
        yield f"{path}:{n}", row


@dataclass(frozen=True)
class ManifestEntry:
    """One manifest row as read: where it is, its audio as written, and its item."""

    line: int
    audio: str
    item: Item


def read_manifest_entries(path: str | Path, audio_dir: str | Path | None = None, *,
                          kind: str | None = None, skip_unusable_rows: bool = False) -> list[ManifestEntry]:
    """Every row of a manifest as a :class:`ManifestEntry` (see :func:`read_manifest`);
    ``kind`` ("jsonl", "csv", "tsv") reads the file as that whatever its suffix. A row without
    an audio path or without captions and tags, or a line that is no row (not a JSON object, more
    cells than the header), is an InvalidDataset naming its line, or with ``skip_unusable_rows``
    left out (one warning for all, naming the first; an error when no row is left, or when most
    lines are no rows: a file that is not such a manifest)."""
    path = Path(path)
    base = Path(audio_dir) if audio_dir is not None else path.parent
    kind = kind or _manifest_kind(path)
    caption_sep = "\n" if kind == "jsonl" else "|"
    notes = _ManifestNotes()
    entries: list[ManifestEntry] = []
    malformed: list[str] = []       # why each line that is no row was passed over (skip_unusable_rows)
    unusable: list[str] = []        # why each row without audio, or captions and tags, was left out
    for n, row in _numbered_rows(path, kind, malformed if skip_unusable_rows else None):
        where = f"{path}:{n}"
        notes.row(where, row)
        try:
            item = _row_to_item(row, base, where, caption_sep=caption_sep, notes=notes)
        except InvalidDataset as e:
            if not skip_unusable_rows:
                raise
            unusable.append(str(e))
            continue
        entries.append(ManifestEntry(n, row_audio(row) or "", item))
    left_out = malformed + unusable
    if len(left_out) == 1 and not entries:
        raise InvalidDataset(left_out[0])
    _refuse_mostly_malformed(path, kind, malformed, len(left_out) + len(entries))
    if left_out and not entries:
        raise InvalidDataset(f"{path}: none of its {len(left_out)} rows can be used, e.g. {left_out[0]}")
    if not entries:
        raise InvalidDataset(f"{path}: manifest is empty")
    if left_out:
        log.warning("%s: %d of %d rows left out, e.g. %s%s", path, len(left_out), len(left_out) + len(entries),
                    left_out[0], " (--verbose lists them all)" if len(left_out) > 1 else "")
        for reason in left_out[1:]:
            log.debug("left out: %s", reason)
    _say_paths_from_the_current_folder(path, base, entries)
    _say_windows_drive_paths(path, entries)
    warning = notes.warning(path)
    if warning:
        log.warning("%s", warning)
    if notes.missing:
        where, key, cell = notes.missing[0]
        log.info("%s: %d caption/tag cells hold no value (e.g. %s %r, line %s: a missing value as pandas or "
                 "Python writes one) and are read as empty", path, len(notes.missing), key, cell.strip(), _line(where))
    if notes.lists:
        where, key, cell = notes.lists[0]
        log.info("%s: %d caption/tag cells written as lists (e.g. %s %r, line %s) read as lists",
                 path, len(notes.lists), key, cell.strip(), _line(where))
    return entries


def _refuse_mostly_malformed(path: Path, kind: str, malformed: Sequence[str], rows: int) -> None:
    """InvalidDataset when more than half of a manifest's ``rows`` are ``malformed`` (not a JSON
    object, more cells than the header): a file that is not such a manifest, or a CSV whose
    captions hold unquoted commas, which leaving most of it out would not mend."""
    if len(malformed) * 2 > rows:
        what = "are not JSON objects" if kind == "jsonl" else "have more cells than the header"
        raise InvalidDataset(f"{path}: {len(malformed)} of its {rows} rows {what}, e.g. {malformed[0]}; "
                             f"is it a {'JSON Lines' if kind == 'jsonl' else kind.upper()} manifest?")


def read_manifest(path: str | Path, audio_dir: str | Path | None = None) -> list[Item]:
    """Items of a ``.jsonl`` or ``.csv``/``.tsv`` manifest (see the module docstring); relative
    audio paths against ``audio_dir`` (default: the manifest's folder).

    Columns it does not read, tags that hold commas but no ``;``, and cells that look like a list
    but are not one are said in one warning per manifest; so are rows left out for having no
    audio path or neither captions nor tags (an error when that leaves none).
    """
    return [e.item for e in read_manifest_entries(path, audio_dir, skip_unusable_rows=True)]


def _say_paths_from_the_current_folder(path: Path, base: Path, entries: Sequence[ManifestEntry]) -> None:
    """Warn once when relative audio paths that are not found from ``base`` (the manifest's
    folder, where they are read from) are found from the current folder: written for another
    folder, they would only be said to be missing."""
    found_here = [e for e in entries if e.audio and not Path(e.audio).is_absolute()
                  and not os.path.exists(str(e.item.audio)) and os.path.exists(e.audio)]
    if found_here:
        first = found_here[0]
        log.warning("%s: %d audio %s relative to the current folder, not to %s where a manifest's "
                    "relative paths are read from (e.g. line %d: %s, looked for as %s); write them relative "
                    "to the manifest's folder, or absolute", path, len(found_here),
                    "path is" if len(found_here) == 1 else "paths are", base, first.line, first.audio,
                    first.item.audio)


#: a path that starts with a Windows drive (``C:\\Sounds\\a.wav``, ``D:/a.wav``)
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def _say_windows_drive_paths(path: Path, entries: Sequence[ManifestEntry]) -> None:
    """Warn once, where drive letters are no part of a path (not Windows), when audio paths start
    with one and no file is there: they would only be said to be missing, as relative paths."""
    if os.name == "nt":
        return
    drive = [e for e in entries if _WINDOWS_DRIVE.match(e.audio) and not os.path.exists(str(e.item.audio))]
    if drive:
        first = drive[0]
        log.warning("%s: %d audio %s with a Windows drive (e.g. line %d: %s), which this system has not; write "
                    "them relative to the manifest's folder and copy the sounds beside it", path, len(drive),
                    "path starts" if len(drive) == 1 else "paths start", first.line, first.audio)


def read_class_folders(root: str | Path) -> list[Item]:
    """``root/<label>/<audio>``: each file tagged with its folder's name (macOS's ``._`` files and
    hidden or system folders passed over, engine.system_files)."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidDataset(f"{root}: not a folder of class folders")
    items = [Item(str(p), [], [sub.name.replace("_", " ")], root.name)
             for sub in sorted(p for p in root.iterdir() if p.is_dir() and not is_system_folder(p.name))
             for p in audio_files([sub])]
    if not items:
        raise InvalidDataset(f"{root}: no audio in class folders (expected {root}/<label>/<file>.wav)")
    return items


def read_clotho(csv_path: str | Path, audio_dir: str | Path | None = None) -> list[Item]:
    """A Clotho captions CSV; audio in ``audio_dir`` (default: the CSV's folder)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InvalidDataset(f"{csv_path}: Clotho CSV not found")
    audio_dir = Path(audio_dir) if audio_dir else csv_path.parent
    items = []
    uncaptioned: list[str] = []         # "line: file" of rows whose captions are all empty
    overfull: list[str] = []            # messages of rows with more cells than the header
    with open_text(csv_path, newline="") as f:      # a spreadsheet's byte-order mark read, UTF-16 too
        try:
            reader = csv.DictReader(f, delimiter=csv_delimiter(f, csv_path))
            if "file_name" not in (reader.fieldnames or []):
                raise InvalidDataset(f"{csv_path}: not a Clotho CSV (no 'file_name' column)")
            for row in reader:
                if any(str(v).strip() for v in row.pop(None, None) or []):    # cells beyond the header's
                    overfull.append(f"{csv_path}:{reader.line_num}: more fields than the header has; "
                                    "quote captions that contain commas")
                    continue
                caps = [row[k].strip() for k in sorted(row)
                        if k.startswith("caption") and row[k] and row[k].strip()]
                if caps:
                    items.append(Item(str(audio_dir / row["file_name"]), caps, [], "clotho"))
                elif any(str(v or "").strip() for v in row.values()):
                    uncaptioned.append(f"line {reader.line_num}: {row['file_name']}")
        except UnicodeDecodeError as e:
            raise not_text(csv_path, f, e, "CSV") from e
        except csv.Error as e:
            raise InvalidDataset(f"{csv_path}: malformed CSV ({e})") from e
    if overfull and len(overfull) * 2 > len(overfull) + len(items) + len(uncaptioned):
        raise InvalidDataset(overfull[0] if len(overfull) == 1 else
                             f"{csv_path}: {len(overfull)} of its {len(overfull) + len(items) + len(uncaptioned)} "
                             f"rows have more cells than the header, e.g. {overfull[0]}")
    if not items:
        raise InvalidDataset(f"{csv_path}: no captioned rows")
    if overfull:
        log.warning("%s: %d %s with more cells than the header left out, e.g. %s", csv_path, len(overfull),
                    _rows(len(overfull)), overfull[0])
    if uncaptioned:
        log.warning("%s: %d %s without captions left out (e.g. %s)", csv_path, len(uncaptioned),
                    _rows(len(uncaptioned)), uncaptioned[0])
    return items


def _shard_paths(spec: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(spec, (list, tuple)):
        return [p for s in spec for p in _shard_paths(s)]
    p = Path(spec)
    if p.is_dir():
        return sorted(p.glob("*.tar"))
    if any(ch in str(p) for ch in "*?["):
        return sorted(Path(x) for x in glob.glob(str(p)))
    return [p]


# the first bytes of compressed files, which a random-access shard cannot be
COMPRESSED_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
TAR_BLOCK = 512


def _unreadable_shard(tar_path: Path, error: tarfile.ReadError) -> str:
    """The message for a shard tarfile cannot read: a compressed file, a truncated one (tarfile's
    "unexpected end of data", or a header cut short), or not a tar at all."""
    with tar_path.open("rb") as f:
        head = f.read(8)
    kind = next((name for magic, name in COMPRESSED_MAGIC.items() if head.startswith(magic)), None)
    if kind is None and ("unexpected end of data" in str(error) or "truncated header" in str(error)):
        return (f"{tar_path}: the shard is truncated ({error}); copy or download it again")
    what = f"a {kind}-compressed file" if kind else f"not an uncompressed tar shard ({error})"
    return f"{tar_path}: {what}; WebDataset shards must be plain .tar for random access"


def _refuse_cut_shard(tar_path: Path) -> None:
    """InvalidDataset for a shard cut inside a member's header, which tarfile reads as the end of
    the archive: a tar file is whole 512-byte blocks."""
    size = tar_path.stat().st_size
    if size % TAR_BLOCK:
        raise InvalidDataset(f"{tar_path}: the shard is truncated ({size} bytes, not whole {TAR_BLOCK}-byte "
                             "tar blocks); copy or download it again")


def read_webdataset(shards: str | Path | Sequence[str | Path]) -> list[Item]:
    """Items of WebDataset tar shards (a file, a folder of .tar, a glob, or a list)."""
    paths = _shard_paths(shards)
    if not paths:
        raise InvalidDataset(f"{shards}: no .tar shards found")
    items: list[Item] = []
    skipped: dict[str, list[str]] = {}          # why → the samples ("shard:key") skipped for it
    for tar_path in paths:
        if not tar_path.is_file():
            raise InvalidDataset(f"{tar_path}: shard not found")
        groups: dict[str, dict[str, Any]] = {}
        try:
            with tarfile.open(tar_path, mode="r:") as tar:
                for m in tar:
                    if not m.isfile():
                        continue
                    folder, _, base = m.name.rpartition("/")
                    stem, dot, ext = base.partition(".")
                    key = f"{folder}/{stem}" if folder else stem
                    group = groups.setdefault(key, {})
                    if ext.lower() == "json":
                        group["json"] = _member_json(tar.extractfile(m).read())
                    elif "." + ext.lower().rsplit(".", 1)[-1] in AUDIO_EXTENSIONS:
                        group["audio"] = TarMember(str(tar_path), m.name, m.offset_data, m.size)
        except tarfile.ReadError as e:
            raise InvalidDataset(_unreadable_shard(tar_path, e)) from e
        _refuse_cut_shard(tar_path)
        for key, group in groups.items():
            item, why = _webdataset_item(group, tar_path)
            if item is None:
                skipped.setdefault(why, []).append(f"{tar_path}:{key}")
            else:
                items.append(item)
    if skipped:
        _say_skipped_samples(shards, skipped, len(items))
    if not items:
        raise InvalidDataset(f"{shards}: shards hold no usable (audio, json) samples")
    return items


#: what :func:`_member_json` gives for a member that is not JSON text
_NOT_JSON = object()


def _member_json(data: bytes) -> Any:
    """A shard's .json member as data; :data:`_NOT_JSON` when it is not JSON text (its sample is
    skipped)."""
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _NOT_JSON


def _webdataset_item(group: dict[str, Any], tar_path: Path) -> tuple[Item | None, str]:
    """The item of one shard sample's members, or ``(None, why it is skipped)``."""
    if "audio" not in group:
        return None, "without audio"
    if "json" not in group:
        return None, "without a .json"
    meta = group["json"]
    if meta is _NOT_JSON:
        return None, "whose .json is not valid JSON"
    if not isinstance(meta, dict):
        return None, "whose .json is not a JSON object"
    captions = _split(meta.get("text", meta.get("caption")), "\n")
    tags = _split(meta.get("tags", meta.get("tag")), ";")
    if not captions and not tags:
        return None, 'whose .json has no "text" or "tags"'
    return Item(group["audio"], captions, tags, str(meta.get("source") or tar_path.parent.name)), ""


def _say_skipped_samples(shards: Any, skipped: dict[str, list[str]], kept: int) -> None:
    """One warning for the samples of ``shards`` left out, by reason, each with a first example;
    every one with --verbose."""
    total = sum(len(v) for v in skipped.values())
    reasons = ", ".join(f"{len(keys)} {why} (e.g. {keys[0]})" for why, keys in skipped.items())
    log.warning("%s: %d of %d samples skipped: %s%s", shards, total, total + kept, reasons,
                " (--verbose lists them all)" if total > 1 else "")
    for why, keys in skipped.items():
        for key in keys:
            log.debug("skipped: %s: %s", key, why)


def read_items(kind: str, path: str | Path | Sequence[str | Path], *, audio_dir: str | Path | None = None
               ) -> list[Item]:
    """Dispatch on a dataset format name (one of :data:`FORMATS`)."""
    if kind == "manifest":
        return read_manifest(path)  # type: ignore[arg-type]
    if kind == "folders":
        return read_class_folders(path)  # type: ignore[arg-type]
    if kind == "clotho":
        return read_clotho(path, audio_dir)  # type: ignore[arg-type]
    if kind == "webdataset":
        return read_webdataset(path)
    raise InvalidDataset(f"unknown dataset format {kind!r}; use one of {', '.join(FORMATS)}")


def audio_key(item: Item) -> str:
    """What tells one audio file from another: the normalised path (``a/../b.wav`` is ``b.wav``),
    or the shard and member."""
    return str(item.audio) if isinstance(item.audio, TarMember) else os.path.normpath(item.audio)


def merge_repeated(items: list[Item]) -> list[Item]:
    """One item per audio file: rows naming a file already listed (one row per caption, as
    AudioCaps and many spreadsheets have it, or a manifest listed twice) add their captions and
    tags to its item. Left apart, copies of one clip would meet in a batch as each other's
    negatives, and weigh that clip more."""
    merged: dict[str, Item] = {}
    for item in items:
        key = audio_key(item)
        first = merged.get(key)
        if first is None:
            merged[key] = Item(item.audio, list(item.captions), list(item.tags), item.source)
            continue
        first.captions = list(dict.fromkeys(first.captions + item.captions))
        first.tags = list(dict.fromkeys(first.tags + item.tags))
    if len(merged) < len(items):
        log.info("%d rows name an audio file listed before; their captions and tags were added to its item "
                 "(%d items)", len(items) - len(merged), len(merged))
    return list(merged.values())


MANIFEST_PATHS_HINT = "a manifest's relative paths are read from the manifest's folder"


def paths_hint(kind: str, path: str | Path, audio_dir: str | Path | None = None) -> str:
    """Where a dataset of format ``kind`` looks for its audio, said when none of it is found."""
    if kind == "clotho":
        folder = Path(audio_dir or Path(path).parent).resolve()
        return (f"a Clotho CSV's files are read from its audio_dir, here {folder}"
                f"{'' if audio_dir else ', the CSV folder: the config gives no audio_dir'}")
    return MANIFEST_PATHS_HINT


def drop_missing(items: list[Item], what: str = "training", *, open_members: bool = False,
                 hint: str = MANIFEST_PATHS_HINT) -> list[Item]:
    """Items whose audio file exists and has a readable header; the others are logged
    (``what``: which data, as the messages name it). Audio inside tar shards is opened too with
    ``open_members`` (it is read whole: meant for a validation set, which is decoded whole at
    every validation anyway), else left to fail, and be replaced, when a step reads it. ``hint``
    (:func:`paths_hint`) says where the paths were read from when none of the files is usable."""
    kept, bad = [], []
    for item in items:
        if isinstance(item.audio, TarMember) and not open_members:
            kept.append(item)
            continue
        try:
            info = probe_member(item.audio) if isinstance(item.audio, TarMember) else probe(item.audio)
            item.seconds = info.frames / info.sample_rate if info.sample_rate > 0 else None
            kept.append(item)
        except UnreadableAudio as e:
            bad.append(str(e))
    if bad:
        log.warning("%d of %d %s files unusable and left out, e.g. %s%s", len(bad), len(items), what, bad[0],
                    " (--verbose lists them all)" if len(bad) > 1 else "")
        for reason in bad[1:]:
            log.debug("left out: %s", reason)
    if not kept:
        raise InvalidDataset(f"none of the {len(items)} {what} audio files could be read, e.g. "
                             f"{bad[0] if bad else '?'} ({hint})")
    return kept


def probe_member(member: TarMember) -> AudioInfo:
    """What a tar member's header says; UnreadableAudio naming a member whose audio cannot be
    opened, or holds no samples."""
    try:
        with open_sound_bytes(member.read(), member.name) as f:
            info = header_info(str(member), f)
    except Exception as e:      # noqa: BLE001 — whatever the decoder raises: the member is unreadable
        raise UnreadableAudio(str(member), f"not readable as audio ({_member_reason(e, member)})") from e
    if info.frames == 0:
        raise UnreadableAudio(str(member), "empty: the member holds no samples")
    return info


#: clips shorter than this are said to be repeated (:func:`say_short_clips`): one YAMNet patch
#: (0.975 s), the shortest stretch the audio tower hears. Shorter, a crop's repeats of the clip fall
#: inside one patch, so the tower hears a loop (a 0.05 s click repeated 20 times a second: a buzz)
#: where `index` and `tag` hear the sound once, padded with silence
SHORT_CLIP_SECONDS = yamnet.MIN_SAMPLES / yamnet.SAMPLE_RATE


def say_short_clips(items: Sequence[Item], crop_seconds: float, what: str = "training") -> None:
    """One warning counting the ``items`` (their length known: :func:`drop_missing` read it) shorter
    than :data:`SHORT_CLIP_SECONDS` and than the crop, which are repeated to fill it; they are kept."""
    short = [it for it in items if it.seconds is not None and it.seconds < min(SHORT_CLIP_SECONDS, crop_seconds)]
    if not short:
        return
    first = min(short, key=lambda it: it.seconds or 0.0)
    log.warning("%d of %d %s clips are shorter than %.3g s (one patch of the audio tower), e.g. %s (%.3g s): "
                "each is repeated to fill its %.3g s crop, so the model hears a loop of it where search hears it "
                "once, padded with silence; they are kept (leave them out of the manifest, or pad them with "
                "silence, to train on them as search hears them)", len(short), len(items), what,
                SHORT_CLIP_SECONDS, first.audio, first.seconds, crop_seconds)


def _member_reason(e: BaseException, member: TarMember) -> str:
    """A decoder's error about a member's bytes, naming the member instead of the buffer read."""
    return re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", repr(member.name), str(e)).strip() or type(e).__name__


# --------------------------------------------------------------------------- decoding

def _mono(data: np.ndarray) -> np.ndarray:
    return data.mean(axis=1) if data.ndim > 1 else data


def load_clip(audio: str | TarMember, sample_rate: int, seconds: float | None,
              rng: np.random.Generator | None) -> np.ndarray:
    """Mono float32 audio at ``sample_rate``: a ``seconds`` crop (random with ``rng``, else
    from the start), or the whole clip when ``seconds`` is None.

    Files are read only around the crop; tar members are decoded from memory.
    """
    where = str(audio)
    try:
        if isinstance(audio, TarMember):
            data, sr = read_sound_bytes(audio.read(), audio.name)     # as a file of its name is read
            x = _mono(data)
            if sr != sample_rate:
                x = soxr.resample(x, sr, sample_rate)
            return _crop(np.asarray(x, np.float32), sample_rate, seconds, rng)
        if seconds is None:
            return decode(audio, sample_rate)
        info = probe(audio)
        native = int(np.ceil(seconds * info.sample_rate))
        margin = int(0.02 * info.sample_rate) + 64   # resampler filter context on each side
        if info.frames <= native + 2 * margin:
            return _crop(decode(audio, sample_rate), sample_rate, seconds, rng)
        start = int(rng.integers(0, info.frames - native + 1)) if rng is not None else 0
        lo, hi = max(0, start - margin), min(info.frames, start + native + margin)
        with open_sound(audio) as f:
            go_to_frame(f, lo)                        # an MP3's or Ogg file's seek alone is not exact
            data, sr = read_frames(f, hi - lo), f.samplerate
        x = _mono(data)
        if sr != sample_rate:
            x = soxr.resample(x, sr, sample_rate)
        skip = int(round((start - lo) * sample_rate / sr))
        return _crop(np.asarray(x[skip:], np.float32), sample_rate, seconds, None)
    except UnreadableAudio:
        raise
    except Exception as e:
        reason = _member_reason(e, audio) if isinstance(audio, TarMember) else str(e)
        raise UnreadableAudio(where, f"could not be decoded for training ({reason})") from e


def _crop(x: np.ndarray, sr: int, seconds: float | None, rng: np.random.Generator | None) -> np.ndarray:
    if seconds is None:
        return x
    n = max(1, int(round(seconds * sr)))
    if len(x) > n:
        start = int(rng.integers(0, len(x) - n + 1)) if rng is not None else 0
        return np.ascontiguousarray(x[start:start + n], dtype=np.float32)
    return repeat_pad(x, n)


def repeat_pad(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` repeated to exactly ``n`` samples (LAION-CLAP's "repeatpad"); silence if empty."""
    if len(x) == 0:
        return np.zeros(n, np.float32)
    reps = int(np.ceil(n / len(x)))
    return np.ascontiguousarray(np.tile(x, reps)[:n], dtype=np.float32)


# --------------------------------------------------------------------------- dataset

class AudioTextDataset:
    """Map-style dataset of fixed-length (waveform, caption) pairs for a model's rate and window.

    ``dataset[(epoch, i)]`` (training) or ``dataset[i]`` (validation, epoch 0) returns
    ``{"audio": float32 (clip_samples,), "text": str, "index": i}``.
    """

    def __init__(self, items: Sequence[Item], sample_rate: int, clip_seconds: float, *, train: bool,
                 augment: AugmentConfig | None = None, seed: int = 0) -> None:
        if not items:
            raise InvalidDataset("no training items")
        self.items = list(items)
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)
        self.clip_samples = max(1, int(round(self.clip_seconds * self.sample_rate)))
        self.train = train
        self.augment_config = augment if augment is not None else AugmentConfig.off()
        self.augment = ChannelAugment(self.augment_config)
        self.seed = int(seed)
        self._unreadable: set[str] = set()        # files (or tar members) said to fail mid-run, in this process

    def __len__(self) -> int:
        return len(self.items)

    def _rng(self, epoch: int, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, index])

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        item = self.items[index]
        if not self.train:
            audio = load_clip(item.audio, self.sample_rate, self.clip_seconds, None)
            return {"audio": audio, "text": item.caption(None), "index": index}
        for tried in range(len(self.items)):     # a file that fails now: the next one in its place
            at = (index + tried) % len(self.items)
            try:
                return self._train_example(epoch, at)
            except UnreadableAudio as e:
                self._say_unreadable(e)
        raise InvalidDataset(f"none of the {len(self.items)} training files could be decoded")

    def _say_unreadable(self, error: UnreadableAudio) -> None:
        """Warn once per file (and process) that a training file failed to decode mid-run."""
        if error.path not in self._unreadable:
            self._unreadable.add(error.path)
            log.warning("%s; the next training item is used in its place", error)

    def _train_example(self, epoch: int, index: int) -> dict[str, Any]:
        """The training example at ``index`` in ``epoch``: a random crop, a caption, maybe a mix,
        channel augmentations; all drawn from ``(seed, epoch, index)``."""
        item = self.items[index]
        rng = self._rng(epoch, index)
        py_rng = random.Random(int(rng.integers(2 ** 63)))
        audio = load_clip(item.audio, self.sample_rate, self.clip_seconds, rng)
        text = self._caption(item, py_rng)
        if self.augment_config.mix > 0 and len(self.items) > 1 and rng.random() < self.augment_config.mix:
            other_index = int(rng.integers(len(self.items) - 1))
            other_index += other_index >= index
            other = self.items[other_index]
            audio = mix_clips(audio, load_clip(other.audio, self.sample_rate, self.clip_seconds, rng),
                              rng, self.augment_config.mix_snr_db)
            text = join_captions(text, self._caption(other, py_rng))
        audio = self.augment(audio, self.sample_rate, rng)
        return {"audio": audio, "text": text, "index": index}

    @staticmethod
    def _caption(item: Item, rng: random.Random) -> str:
        if item.tags and (not item.captions or rng.random() < 0.3):
            return captions_from_tags(item.tags, 1, rng=rng)[0]   # keyword-to-caption variety
        return item.caption(rng)


def join_captions(a: str, b: str) -> str:
    """Two captions as one: ``"A dog barks." + "Rain."`` → ``"A dog barks and rain"``."""
    a, b = a.strip().rstrip("."), b.strip().rstrip(".")
    return f"{a} and {b[:1].lower() + b[1:]}" if b else a


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack a list of dataset outputs: audio → (B, T) tensor, text → list, index → tensor."""
    import torch
    return {"audio": torch.from_numpy(np.stack([b["audio"] for b in batch])),
            "text": [b["text"] for b in batch],
            "index": torch.tensor([b["index"] for b in batch], dtype=torch.long)}


def check_batch_size(n_items: int, batch_size: int, processes: int = 1) -> None:
    """InvalidDataset when a global batch (``batch_size`` on each of ``processes``) is more than
    the ``n_items`` there are."""
    if batch_size * processes > n_items:
        whole = (f"the global batch {batch_size * processes} (batch_size {batch_size} × {processes} processes)"
                 if processes > 1 else f"batch size {batch_size}")
        raise InvalidDataset(f"{whole} is larger than the training set ({n_items} item{'' if n_items == 1 else 's'}); "
                             "lower batch_size or add data")


class EpochBatchSampler:
    """Endless batches of ``(epoch, index)`` keys; the order of each epoch is a permutation
    seeded by ``(seed, epoch)``; incomplete last batches are dropped.

    ``start_batch`` skips that many batches (counted from the very first), so a resumed
    run continues exactly where the interrupted one stopped.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, start_batch: int = 0) -> None:
        check_batch_size(n_items, batch_size)
        self.n = n_items
        self.batch_size = batch_size
        self.seed = seed
        self.start_batch = start_batch

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        b = self.start_batch
        while True:
            epoch, pos = divmod(b, self.batches_per_epoch)
            order = np.random.default_rng([self.seed, epoch, 7]).permutation(self.n)
            for p in range(pos, self.batches_per_epoch):
                yield [(epoch, int(i)) for i in order[p * self.batch_size:(p + 1) * self.batch_size]]
            b = (epoch + 1) * self.batches_per_epoch

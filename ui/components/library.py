"""Read-only catalog look-ups for the page.

Every file the page plays, draws or names comes from here, looked up by its catalog id:
nothing the browser sends is ever turned into a filesystem path.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.catalog import USER_TAG_SOURCE, File, Meta, Tag, stored_metadata
from engine.errors import InvalidQuery
from engine.file_metadata import ABOUT_LINE_KEYS, LEVEL_KEYS, about_line, with_sheet
from engine.layout import IndexLayout
from engine.live_catalog import LiveCatalog
from engine.loudness import levels_text
from engine.markers import parse_markers
from ui.components.times import take_times, with_marker_times


@dataclass(frozen=True)
class FileRecord:
    """One indexed file as the catalog recorded it."""

    file_id: int
    path: str
    duration: float
    sample_rate: int
    channels: int
    format: str
    size: int
    mtime_ns: int
    about: str = ""          # what the file says it holds: category / subcategory: title — description — comment
    levels: str = ""         # as measured when indexed: "-23.4 LUFS · peak -0.3 dBFS" (empty before that)
    marks: tuple[float, ...] = ()   # the times (s) of its named markers, drawn on its waveform

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def folder(self) -> str:
        return str(Path(self.path).parent)


@dataclass(frozen=True)
class FilterChoices:
    """The values the sidebar filters can offer for this library."""

    max_duration: float
    folders: list[str]
    formats: list[str]
    sample_rates: list[int]
    categories: list[str] = field(default_factory=list)    # library categories files carry (UCS)
    channels: list[int] = field(default_factory=list)      # channel counts of the files
    loudness: tuple[float, float] | None = None             # quietest and loudest measured file (LUFS), if any
    tags: list[str] = field(default_factory=list)          # the user's own tags (indexer.user_tags)
    silent_files: int = 0                                   # files silent or under -70 LUFS (out of loudness)


class Library:
    """The catalog of one index, opened read-only for look-ups by file id.

    Follows the index when ``soundsift index --rebuild`` swaps a new folder into its place
    (engine.live_catalog), as the page's SoundIndex does, so the file ids of its hits are
    looked up in the rebuilt catalog, not the deleted one.
    """

    def __init__(self, index_dir: str | Path) -> None:
        self.layout = IndexLayout(Path(index_dir))
        self._catalog = LiveCatalog(self.layout.root)

    @property
    def _engine(self) -> Engine:
        return self._catalog.engine

    def generation(self) -> str:
        """The committed generation's vector file name: changes whenever the index does."""
        with Session(self._engine) as s:
            row = s.get(Meta, "vectors_file")
            return row.value if row is not None else ""

    def metadata_stamp(self) -> str:
        """Changes when an index run has read the files' embedded metadata again between
        generations (indexer.metadata_refresh), so what the page derives from it is redone."""
        with Session(self._engine) as s:
            row = s.get(Meta, "metadata_replaced_at")
            return row.value if row is not None else ""

    def _record(self, row: File) -> FileRecord:
        return FileRecord(row.id, row.path, float(row.duration), int(row.sample_rate),
                          int(row.channels), str(row.format), int(row.size), int(row.mtime_ns))

    def file(self, file_id: int) -> FileRecord:
        """The file with catalog id ``file_id``; InvalidQuery if there is none."""
        try:
            fid = int(file_id)
        except (TypeError, ValueError) as e:
            raise InvalidQuery(f"not a file id: {file_id!r}") from e
        with Session(self._engine) as s:
            row = s.get(File, fid)
            if row is None:
                raise InvalidQuery(
                    f"no file with id {fid} in {self.layout.catalog}; the index may have "
                    "changed since the results were shown: search again")
            return self._record(row)

    def files(self, file_ids: list[int],
              takes: dict[int, tuple[str, float]] | None = None) -> dict[int, FileRecord]:
        """Records of the given ids that exist (missing ids are left out), with what they carry.
        ``takes``: file id → the marker a search named on it and its time (a hit's marker and
        marker_at), which its about line and waveform ticks give at that time (times.take_times)."""
        ids = [int(i) for i in file_ids]
        takes = takes or {}
        with Session(self._engine) as s:
            rows = list(s.scalars(select(File).where(File.id.in_(ids))))
            about = {fid: with_sheet(found) for fid, found in stored_metadata(s, ids, SHOWN_KEYS).items()}
            out = {}
            for r in rows:
                found, take = about.get(r.id, {}), takes.get(r.id)
                marks = take_times(parse_markers(found.get("markers", "")), take)
                out[r.id] = replace(self._record(r), about=about_line(with_marker_times(found, take)),
                                    levels=levels_text(found), marks=tuple(at for at, _ in marks))
            return out

    def stored_tags(self, file_ids: Sequence[int], top: int = 5) -> dict[int, list[dict]]:
        """The top ``top`` tags `soundsift caption` stored for each of ``file_ids`` that has some,
        best first (not the user's own), in one query for a page of results."""
        ids = [int(i) for i in file_ids]
        rank = func.row_number().over(partition_by=Tag.file_id, order_by=(Tag.score.desc(), Tag.id)).label("rank")
        ranked = (select(Tag.file_id, Tag.label, Tag.score, rank)
                  .where(Tag.file_id.in_(ids), Tag.source != USER_TAG_SOURCE).subquery())
        out: dict[int, list[dict]] = {}
        with Session(self._engine) as s:
            for fid, label, score in s.execute(select(ranked.c.file_id, ranked.c.label, ranked.c.score)
                                               .where(ranked.c.rank <= top)
                                               .order_by(ranked.c.file_id, ranked.c.rank)):
                out.setdefault(int(fid), []).append({"label": label, "score": float(score)})
        return out

    def user_tags(self, file_ids: list[int]) -> dict[int, list[str]]:
        """The user's own tags of each of ``file_ids`` that has some, in the order they were added."""
        with Session(self._engine) as s:
            out: dict[int, list[str]] = {}
            for fid, label in s.execute(select(Tag.file_id, Tag.label).where(
                    Tag.file_id.in_([int(i) for i in file_ids]), Tag.source == USER_TAG_SOURCE).order_by(Tag.id)):
                out.setdefault(int(fid), []).append(label)
            return out

    def user_tag_names(self) -> list[str]:
        """Every tag the user gave a file of this library, A–Z, once per tag ("keeper" and "Keeper"
        are one: indexer.user_tags.tag_key) under the spelling `soundsift tags list` shows."""
        from indexer.user_tags import tags_counted
        with Session(self._engine) as s:
            return sorted(tags_counted(s), key=str.lower)

    def tags_stamp(self) -> str:
        """Changes whenever tags were added or removed (indexer.user_tags, `soundsift caption`)."""
        with Session(self._engine) as s:
            row = s.get(Meta, "tags_changed_at")
            return row.value if row is not None else ""

    def folders(self) -> list[str]:
        """Every folder holding an indexed file, and its ancestors up to the library root."""
        with Session(self._engine) as s:
            return folders_of(list(s.scalars(select(File.path))))


#: a take file's named markers, shown after them
MARKER_KEYS = ("markers",)
#: every key a card reads: what its about line says (the file's or a library sheet's), the levels
SHOWN_KEYS = (*ABOUT_LINE_KEYS, *MARKER_KEYS, *LEVEL_KEYS)


def folders_of(paths: list[str]) -> list[str]:
    """Every folder holding a file and each of their ancestors below the common root."""
    if not paths:
        return []
    # the few hundred distinct folders made Paths, not each of tens of thousands of files
    parents = {str(Path(d)) for d in {os.path.dirname(p) for p in paths}}
    root = os.path.commonpath(sorted(parents)) if len(parents) > 1 else next(iter(parents))
    out = set()
    for folder in parents:
        f = Path(folder)
        while True:
            out.add(str(f))
            if str(f) == root or f.parent == f:
                break
            f = f.parent
    return sorted(out)


def folder_prefix(folder: str) -> str:
    """A path prefix that matches files inside ``folder`` only (not ``folder2/``)."""
    return folder if folder.endswith(os.sep) else folder + os.sep


def relative_to_root(path: str, root: str) -> str:
    """``path`` shown below the library root when it lies inside it."""
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        return path
    return "." if str(rel) == "." else str(rel)

"""Search filters on file properties, turned into one SQL condition on the catalog.

A filter keeps the files whose duration lies in ``[min_duration, max_duration]``, whose
path starts with ``path_prefix``, whose format is one of ``formats``, whose sample
rate is one of ``sample_rates``, whose channel count is one of ``channels`` and whose library
category is one of ``categories``; unset
fields keep everything. The query layer asks the
catalog once for the allowed files and restricts the vector search to their segments.
"""
from __future__ import annotations

import math
import os
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import ColumnElement, Float, and_, cast, func, or_, select
from sqlalchemy.sql import Select

from engine.catalog import File, FileMetadata, Tag
from engine.errors import InvalidQuery
from engine.file_metadata import CATEGORY_FILTER_KEYS
from engine.loudness import ABSOLUTE_GATE, SILENCE_DB
from engine.metadata_shown import shown_rows
from engine.text_encoding import normal_forms


def _tuple(values: Iterable[Any] | Any | None) -> tuple[Any, ...]:
    if values is None:
        return ()
    if isinstance(values, (str, int)):
        return (values,)
    return tuple(values)


def _number(value: Any, what: str, unit: str) -> float | None:
    """A bound of a filter as a number: a real number as given, a numeric string as a float
    (None stays None); InvalidQuery when it is no number or is NaN (a NaN bound would keep no
    file and say nothing)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                         and not math.isnan(value)):
        return value
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError) as e:
        raise InvalidQuery(f"the {what} must be a number of {unit}, got {value!r}") from e
    if math.isnan(number):
        raise InvalidQuery(f"the {what} must be a number of {unit}, got NaN")
    return number


def channel_name(count: int) -> str:
    """A channel count as people say it: mono, stereo, else the count."""
    return {1: "mono", 2: "stereo"}.get(int(count), f"{int(count)} channels")


@dataclass(frozen=True)
class Filters:
    """Restrict a search to some files.

    ``formats`` match either the container format soundfile reports (WAV, FLAC, OGG,
    MP3, AIFF, …) or the file's extension, case-insensitively: ``"wav"``, ``".flac"``,
    ``"opus"`` all work. ``path_prefix`` is a plain string prefix of the stored path
    (a relative prefix is also tried as an absolute path, and with its symbolic links resolved,
    as the catalog stores paths; composed and decomposed accents alike: :func:`path_prefixes`).
    ``categories`` match the category a file carries (UCS, from its iXML or FLAC comments, or an imported library sheet: ``"DOORS"``) or its CatID
    (``"DOORWood"``: category and subcategory), case-insensitively. ``channels`` are channel
    counts: ``(1,)`` mono files only, ``(2,)`` stereo. ``min_loudness``/``max_loudness`` (LUFS)
    keep files whose loudness measured at indexing lies in that range (files indexed before
    soundsift measured it have none, so such a filter leaves them out). ``tags`` keep files that
    carry any of them, whoever stored it (the user's own with `soundsift tags add`, or AudioSet
    tags stored by `soundsift caption --index`), A–Z in any case, accents composed or not.
    """

    min_duration: float | None = None
    max_duration: float | None = None
    path_prefix: str | None = None
    formats: tuple[str, ...] = field(default=())
    sample_rates: tuple[int, ...] = field(default=())
    categories: tuple[str, ...] = field(default=())
    channels: tuple[int, ...] = field(default=())
    min_loudness: float | None = None       # LUFS, as measured when the file was indexed (engine.loudness)
    max_loudness: float | None = None
    tags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(
            " ".join(str(t).split()) for t in _tuple(self.tags) if str(t).strip()))
        object.__setattr__(self, "categories", tuple(
            str(c).strip() for c in _tuple(self.categories) if str(c).strip()))
        object.__setattr__(self, "formats", tuple(
            str(f).strip().lstrip(".").lower() for f in _tuple(self.formats) if str(f).strip()))
        try:
            rates = tuple(int(r) for r in _tuple(self.sample_rates))
        except (TypeError, ValueError) as e:
            raise InvalidQuery(f"sample rates must be whole numbers of Hz, got {self.sample_rates!r}") from e
        object.__setattr__(self, "sample_rates", rates)
        try:
            channels = tuple(int(c) for c in _tuple(self.channels))
        except (TypeError, ValueError) as e:
            raise InvalidQuery(f"channel counts must be whole numbers, got {self.channels!r}") from e
        if any(c < 1 for c in channels):
            raise InvalidQuery(f"channel counts must be 1 or more, got {', '.join(map(str, channels))}")
        object.__setattr__(self, "channels", channels)
        if self.path_prefix is not None and not str(self.path_prefix):
            object.__setattr__(self, "path_prefix", None)
        for attr, what, unit in (("min_duration", "minimum duration", "seconds"),
                                 ("max_duration", "maximum duration", "seconds"),
                                 ("min_loudness", "minimum loudness", "LUFS"),
                                 ("max_loudness", "maximum loudness", "LUFS")):
            object.__setattr__(self, attr, _number(getattr(self, attr), what, unit))
        for name, value in (("minimum", self.min_duration), ("maximum", self.max_duration)):
            if value is not None and value < 0:
                raise InvalidQuery(f"the {name} duration must be ≥ 0 seconds, got {value}")
        if (self.min_loudness is not None and self.max_loudness is not None
                and self.min_loudness > self.max_loudness):
            raise InvalidQuery(f"the minimum loudness ({self.min_loudness} LUFS) is above the maximum "
                               f"({self.max_loudness} LUFS): no file can match")
        if (self.min_duration is not None and self.max_duration is not None
                and self.min_duration > self.max_duration):
            raise InvalidQuery(f"the minimum duration ({self.min_duration} s) is longer than the maximum "
                               f"({self.max_duration} s): no file can match")

    @property
    def active(self) -> bool:
        """True when the filter excludes anything at all."""
        return bool(self.min_duration is not None or self.max_duration is not None
                    or self.path_prefix or self.formats or self.sample_rates or self.categories
                    or self.channels or self.min_loudness is not None or self.max_loudness is not None
                    or self.tags)

    def check_catalog(self, conn: Any, root: Any) -> None:
        """InvalidQuery when a category filter meets the catalog ``conn`` (of the index at
        ``root``) from before embedded metadata was stored, which has no categories to match."""
        from engine.catalog import has_table
        if self.categories and not has_table(conn, "file_metadata"):
            raise InvalidQuery(f"{root} holds no embedded metadata yet, so no categories: run "
                               "`soundsift index` on it once (it reads the files' metadata, no re-embedding)")

    def conditions(self) -> list[ColumnElement[bool]]:
        """SQLAlchemy conditions on :class:`engine.catalog.File`."""
        conds: list[ColumnElement[bool]] = []
        if self.min_duration is not None:
            conds.append(File.duration >= float(self.min_duration))
        if self.max_duration is not None:
            conds.append(File.duration <= float(self.max_duration))
        if self.path_prefix:
            conds.append(starts_with(str(self.path_prefix)))
        if self.formats:
            names = [f.upper() for f in self.formats]
            conds.append(or_(func.upper(File.format).in_(names),
                             *(has_extension(f) for f in self.formats)))
        if self.sample_rates:
            conds.append(File.sample_rate.in_(self.sample_rates))
        if self.channels:
            conds.append(File.channels.in_(self.channels))
        if self.min_loudness is not None or self.max_loudness is not None:
            loudness = cast(FileMetadata.value, Float)
            bounds = [FileMetadata.key == "loudness_lufs"]
            if self.min_loudness is not None:
                bounds.append(loudness >= float(self.min_loudness))
            if self.max_loudness is not None:
                bounds.append(loudness <= float(self.max_loudness))
            conds.append(File.id.in_(select(FileMetadata.file_id).where(*bounds)))
        if self.categories:
            conds.append(File.id.in_(select(FileMetadata.file_id).where(
                FileMetadata.key.in_(CATEGORY_FILTER_KEYS),
                func.upper(FileMetadata.value).in_(sorted({c.upper() for c in self.categories})),
                shown_rows(few=True))))                     # not a category a sheet clears ("-")
        if self.tags:                   # SQLite's lower() folds A–Z only: compare like with like
            labels = {form for t in self.tags for form in normal_forms(t)}
            conds.append(File.id.in_(select(Tag.file_id).where(or_(
                Tag.label.in_(sorted(labels)),
                func.lower(Tag.label).in_(sorted({ascii_lower(t) for t in labels}))))))
        return conds

    def unavailable(self, facets: dict[str, Any], tags: Sequence[str] = (),
                    extensions: Sequence[str] = (), unheld_prefix: str | None = None) -> list[str]:
        """Why this filter can keep no file of an index, one sentence per value no file has:
        ``facets`` as :meth:`engine.query.SoundIndex.facets` gives them, ``tags`` every tag the
        index holds, ``extensions`` the asked formats some file's name ends in, ``unheld_prefix``
        (given when no indexed file's path starts with ``path_prefix``) the folder all indexed
        files lie under ("" for an empty index). Empty when every value exists (then the filter
        and the query together keep nothing)."""
        out: list[str] = []
        if self.path_prefix and unheld_prefix is not None:
            here = f"every file under {unheld_prefix}" if unheld_prefix else "none"
            out.append(f"no indexed file has path prefix {self.path_prefix} (this index: {here})")

        def miss(what: str, wanted: Sequence[Any], have: Sequence[Any], shown: Sequence[str],
                 key: Callable[[Any], Any] = str) -> None:
            known = {key(h) for h in have}
            lacking = [w for w in wanted if key(w) not in known]
            if lacking:
                here = ", ".join(shown) if shown else "none"
                out.append(f"no indexed file has {what} {', '.join(map(str, lacking))} (this index: {here})")

        formats = [f for f in self.formats if f not in {e.lower().lstrip(".") for e in extensions}]
        miss("format", formats, facets["formats"], facets["formats"], key=lambda f: str(f).lower())
        rates = facets["sample_rates"]
        miss("sample rate", self.sample_rates, rates, [f"{r:g} Hz" for r in rates], key=int)
        miss("channel count", self.channels, facets["channels"], [str(c) for c in facets["channels"]], key=int)
        miss("category", self.categories, facets["categories"], facets["categories"][:20],
             key=lambda c: str(c).upper())
        miss("tag", self.tags, tags, list(tags)[:20],
             key=lambda t: unicodedata.normalize("NFC", ascii_lower(str(t))))
        lo, hi = facets["min_duration"], facets["max_duration"]
        if self.min_duration is not None and self.min_duration > hi:
            out.append(f"no indexed file is {self.min_duration:g} s or longer (the longest: {hi:.1f} s)")
        if self.max_duration is not None and self.max_duration < lo:
            out.append(f"no indexed file is {self.max_duration:g} s or shorter (the shortest: {lo:.1f} s)")
        out += self._no_loudness(facets["loudness"], int(facets.get("silent_files") or 0))
        return out

    def _no_loudness(self, measured: tuple[float, float] | None, silent: int) -> list[str]:
        """:meth:`unavailable`'s sentences for the loudness bounds, given the measured files'
        range (``facets["loudness"]``) and how many files are silent or under the −70 LUFS gate
        (``facets["silent_files"]``): stored as SILENCE_DB, they count as below any range, so a
        maximum keeps them and a minimum leaves them out."""
        low, high = self.min_loudness, self.max_loudness
        if low is None and high is None:
            return []
        if silent and (low is None or low <= SILENCE_DB) and (high is None or high >= SILENCE_DB):
            return []                   # the silent files are kept
        if measured is None and not silent:
            return ["no indexed file has a measured loudness yet (`soundsift index` measures it)"]
        quiet_words = f"silent or under {ABSOLUTE_GATE:.0f}"
        out = []
        if low is not None and (measured is None or low > measured[1]):
            loudest = (f"the loudest: {measured[1]:.1f}" if measured is not None
                       else f"every measured one is {quiet_words}")
            out.append(f"no indexed file is {low:g} LUFS or louder ({loudest})")
        if high is not None and (measured is None or high < measured[0]) and not (silent and high >= SILENCE_DB):
            quietest = quiet_words if silent or measured is None else f"{measured[0]:.1f}"
            out.append(f"no indexed file is {high:g} LUFS or quieter (the quietest: {quietest})")
        elif high is not None and measured is not None and high < measured[0] and low is not None:
            files = "file is" if silent == 1 else "files are"    # the minimum leaves the silent files out
            out.append(f"no indexed file is between {low:g} and {high:g} LUFS (the quietest measured: "
                       f"{measured[0]:.1f}; {silent} {files} {quiet_words})")
        return out

    def file_ids_query(self) -> Select[Any]:
        """``SELECT files.id`` of the files this filter keeps."""
        return select(File.id).where(and_(*self.conditions()))

    def to_dict(self) -> dict[str, Any]:
        return {"min_duration": self.min_duration, "max_duration": self.max_duration,
                "path_prefix": self.path_prefix, "formats": list(self.formats),
                "sample_rates": list(self.sample_rates), "categories": list(self.categories),
                "channels": list(self.channels), "min_loudness": self.min_loudness,
                "max_loudness": self.max_loudness, "tags": list(self.tags)}


def has_extension(extension: str) -> ColumnElement[bool]:
    """A file's name ends in ``.extension`` (lower case; any case in the name): LIKE's ``%``
    and ``_`` in ``extension`` stand for themselves, not any text (``--format "w_v"`` kept WAV
    files)."""
    return func.lower(File.path).endswith(f".{extension}", autoescape=True)


def starts_with(prefix: str) -> ColumnElement[bool]:
    """A file's stored path starts with ``prefix`` in one of its forms (:func:`path_prefixes`)."""
    return or_(*(path_starts(p) for p in path_prefixes(prefix)))


def path_starts(prefix: str) -> ColumnElement[bool]:
    """A file's stored path starts with ``prefix`` exactly: a range of the path index (from
    ``prefix`` up to the first text past every one starting with it), which SQLite reads as
    such, where comparing each path's first characters read every row."""
    if not prefix:
        return File.path.is_not(None)
    return and_(File.path >= prefix, File.path < prefix[:-1] + chr(ord(prefix[-1]) + 1))


def path_prefixes(prefix: str) -> list[str]:
    """The forms of a ``path_prefix`` a stored path may start with: as given, as an absolute
    path, and that with its symbolic links resolved (the catalog keeps resolved paths:
    indexer.scan; ``~/Sounds`` may be a link to ``/Volumes/SFX``, macOS's ``/tmp`` is
    ``/private/tmp``), each composed (NFC) and decomposed (NFD): names copied from macOS often
    arrive decomposed, while a typed ``é`` is one character. A trailing separator is kept."""
    absolute = os.path.abspath(os.path.expanduser(prefix))
    forms = {prefix, absolute, os.path.realpath(absolute)}
    if prefix.endswith(os.sep):
        forms = {f if f.endswith(os.sep) else f + os.sep for f in forms}
    return sorted({form for f in forms for form in normal_forms(f)})


def ascii_lower(text: str) -> str:
    """``text`` with A–Z lowered and every other character kept, as SQLite's ``lower()`` does."""
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)

"""The user's own tags on indexed files: "favourite", "used in ep 3", "whoosh – good".

They live in the catalog's ``tags`` table with source ``user`` (score 1), beside the AudioSet
tags ``soundsift caption --index`` stores, so they are keyword-searched with the file, kept when
the file is moved or renamed (indexer.moves) or the index rebuilt (indexer.rebuild), and a
search can be restricted to them (``Filters.tags``, ``--tagged``); a library sheet's ``UserTags``
column sets them too (``soundsift sheet import``: :func:`set_tags_in`). Writes take the index's writer
lock (IndexBusy while an index run holds it: a rebuild copies tags when it finishes, and a tag
written beside it would be lost).
"""
from __future__ import annotations

import os
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from engine.catalog import USER_TAG_SOURCE, File, Tag, catalog_session, set_meta
from engine.errors import InvalidQuery
from engine.filters import ascii_lower, path_starts
from engine.layout import existing_index
from engine.query_catalog import why_not_indexed
from engine.text_encoding import normal_forms
from indexer.scan import normalize_root
from indexer.write import WriterLock

MAX_TAG_LENGTH = 100
#: a library sheet's UserTags cell that takes every one of its file's tags off (an empty cell
#: leaves them as they are: indexer.metadata_sheet)
NO_TAGS = "-"


@dataclass
class TagChange:
    """What :func:`add_tags` or :func:`remove_tags` did."""

    files: int = 0                                           # indexed files the paths named
    changed: int = 0                                         # tag rows added or removed
    not_indexed: list[str] = field(default_factory=list)     # paths the index does not hold
    reasons: dict[str, str] = field(default_factory=dict)    # each of them → why, in a few words

    def to_dict(self) -> dict[str, object]:
        return {"files": self.files, "changed": self.changed, "not_indexed": self.not_indexed,
                "reasons": self.reasons}


@dataclass
class TagsSet:
    """What :func:`set_tags_in` did (or, with ``dry_run``, would do)."""

    files: int = 0          # files whose tags changed
    added: int = 0          # tag rows added
    removed: int = 0        # tag rows removed


def tag_key(tag: str) -> str:
    """What makes two spellings one tag: A–Z case and composed or decomposed accents aside (as
    ``Filters.tags`` and ``--tagged`` compare them)."""
    return unicodedata.normalize("NFC", ascii_lower(tag))


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Tags as stored: whitespace collapsed, empty ones dropped, one per :func:`tag_key`;
    InvalidQuery for none at all or one longer than MAX_TAG_LENGTH characters."""
    out: dict[str, str] = {}
    for tag in tags:
        t = " ".join(str(tag).split())
        if len(t) > MAX_TAG_LENGTH:
            raise InvalidQuery(f"tag {t[:40]!r}… is {len(t)} characters long; tags are at most "
                               f"{MAX_TAG_LENGTH} (a caption can be longer)")
        if t:
            out.setdefault(tag_key(t), t)
    if not out:
        raise InvalidQuery("no tag given (an empty tag cannot be stored)")
    return list(out.values())


def cell_tags(text: str) -> list[str] | None:
    """The tags a library sheet's UserTags cell gives its file, as ``sheet export`` writes them
    (comma-separated, one holding a comma in double quotes: engine.vocabulary.split_list):
    [] for :data:`NO_TAGS` ("-": none), None for a cell that names no tag (no opinion);
    InvalidQuery (:func:`clean_tags`) for a tag too long."""
    from engine.vocabulary import split_list
    if text.strip() == NO_TAGS:
        return []
    tags = split_list(text)
    return clean_tags(tags) if tags else None


@contextmanager
def _catalog(index: str | Path | None, *, write: bool) -> Iterator[Session]:
    """A session on the index's catalog; ``write``: under the writer lock, in one transaction
    that also stamps ``tags_changed_at`` (readers redo what they keep of tags)."""
    layout = existing_index(index)
    if not write:
        with catalog_session(layout) as s:
            yield s
        return
    with WriterLock(layout.lock), catalog_session(layout, write=True) as s:
        yield s
        set_meta(s, tags_changed_at=time.time())


def _file_ids(s: Session, items: Sequence[str | Path | int], change: TagChange) -> list[int]:
    """The ids of the indexed files ``items`` name: ids, files, or folders (every indexed file
    under them); what names nothing indexed goes to ``change.not_indexed``."""
    ids: dict[int, None] = {}
    for item in items:
        if isinstance(item, int):
            found = [item] if s.get(File, item) is not None else []
        else:
            given = os.path.abspath(os.path.expanduser(str(item)))
            paths = list(dict.fromkeys([given, normalize_root(given)]))
            if not os.path.lexists(given):      # not on disk (a drive unplugged): the catalog alone
                paths += [form for form in normal_forms(given) if form not in paths]
            found = list(s.scalars(select(File.id).where(File.path.in_(paths))))
            if not found and os.path.isdir(given):
                found = _ids_under(s, paths)
        if not found:
            change.not_indexed.append(str(item))
            change.reasons[str(item)] = _why_not_indexed(s, item)
        ids.update(dict.fromkeys(found))
    change.files = len(ids)
    return list(ids)


def _ids_under(s: Session, folders: Sequence[str]) -> list[int]:
    """The ids of the indexed files inside any of ``folders`` (spellings of one folder), read as
    ranges of the path index: every file's path was read and compared once per folder given, so
    `tags add TAG` with the 400 folders of a 40,000-file library compared 16 million paths."""
    found: dict[int, None] = {}
    for folder in folders:
        inside = folder.rstrip(os.sep) + os.sep
        found.update(dict.fromkeys(s.scalars(select(File.id).where(path_starts(inside)))))
    return sorted(found)


def _why_not_indexed(s: Session, item: str | Path | int) -> str:
    """Why ``item`` names no indexed file (engine.query_catalog.why_not_indexed, with the path
    also as the catalog spells it: links resolved, in the case its folders list it)."""
    if isinstance(item, int):
        return why_not_indexed(s, item)
    given = os.path.abspath(os.path.expanduser(str(item)))
    return why_not_indexed(s, item, [given, normalize_root(given)])


def add_tags(index: str | Path | None, items: Sequence[str | Path | int], tags: Iterable[str]) -> TagChange:
    """Give the indexed files ``items`` (paths, folders, file ids) each of ``tags`` (a file that
    has a tag in any A–Z case or accent form already keeps it as it is). One transaction."""
    wanted = clean_tags(tags)
    change = TagChange()
    with _catalog(index, write=True) as s:
        ids = _file_ids(s, items, change)
        have = _user_tag_keys(s, ids)
        rows = [{"file_id": fid, "label": t, "score": 1.0, "source": USER_TAG_SOURCE}
                for fid in ids for t in wanted if tag_key(t) not in have.get(fid, ())]
        if rows:        # one executemany: a folder of 40,000 files was 80,000 statements
            s.execute(insert(Tag), rows)
        change.changed = len(rows)
    return change


def _user_tag_rows(s: Session, ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """File id → (row id, label) of each user tag the files ``ids`` carry, in the order they were
    added, read 500 files a query."""
    have: dict[int, list[tuple[int, str]]] = {}
    for i in range(0, len(ids), 500):
        for row_id, fid, label in s.execute(select(Tag.id, Tag.file_id, Tag.label).where(
                Tag.file_id.in_(ids[i:i + 500]), Tag.source == USER_TAG_SOURCE).order_by(Tag.id)):
            have.setdefault(int(fid), []).append((int(row_id), str(label)))
    return have


def _user_tag_keys(s: Session, ids: Sequence[int]) -> dict[int, set[str]]:
    """The :func:`tag_key` of each user tag the files ``ids`` carry (:func:`_user_tag_rows`)."""
    return {fid: {tag_key(label) for _, label in rows} for fid, rows in _user_tag_rows(s, ids).items()}


def remove_tags(index: str | Path | None, items: Sequence[str | Path | int], tags: Iterable[str]) -> TagChange:
    """Take ``tags`` (any A–Z case, accents composed or not) off the indexed files ``items``; only
    the user's own tags go (AudioSet tags stored by `soundsift caption` are replaced by running it
    again)."""
    unwanted = sorted({ascii_lower(form) for t in clean_tags(tags) for form in normal_forms(t)})
    change = TagChange()
    with _catalog(index, write=True) as s:
        ids = _file_ids(s, items, change)
        for i in range(0, len(ids), 500):
            result = s.execute(delete(Tag).where(
                Tag.file_id.in_(ids[i:i + 500]), Tag.source == USER_TAG_SOURCE,
                func.lower(Tag.label).in_(unwanted)))
            change.changed += int(result.rowcount or 0)
    return change


def set_tags_in(s: Session, wanted: dict[int, list[str]], dry_run: bool = False) -> TagsSet:
    """Make the user tags of each file of ``wanted`` (id → tags as :func:`clean_tags` gives them)
    exactly those: the others taken off, the missing ones added (a tag the file has in another
    A–Z case or accent form stays as it is, as :func:`add_tags` keeps it). ``s``: a session on
    the catalog; unless ``dry_run``, one writing under the index's writer lock, whose transaction
    this stamps ``tags_changed_at`` when a tag changed (readers redo what they keep of tags)."""
    done = TagsSet()
    ids = sorted(wanted)
    have = _user_tag_rows(s, ids)
    gone: list[int] = []
    rows = []
    for fid in ids:
        keys = {tag_key(t) for t in wanted[fid]}
        carried = {tag_key(label) for _, label in have.get(fid, [])}
        off = [row_id for row_id, label in have.get(fid, []) if tag_key(label) not in keys]
        on = [{"file_id": fid, "label": t, "score": 1.0, "source": USER_TAG_SOURCE}
              for t in wanted[fid] if tag_key(t) not in carried]
        gone += off
        rows += on
        done.files += bool(off or on)
    done.added, done.removed = len(rows), len(gone)
    if dry_run or not (rows or gone):
        return done
    for i in range(0, len(gone), 500):
        s.execute(delete(Tag).where(Tag.id.in_(gone[i:i + 500])))
    if rows:
        s.execute(insert(Tag), rows)
    set_meta(s, tags_changed_at=time.time())
    return done


def tagged_files(s: Session, ids: Sequence[int]) -> set[int]:
    """Those of the files ``ids`` that carry a user tag."""
    return set(_user_tag_keys(s, ids))


def tag_counts(index: str | Path | None, source: str | None = USER_TAG_SOURCE) -> dict[str, int]:
    """Tag → number of files carrying it, most used first (``source`` None: every source). The
    spellings of one tag (:func:`tag_key`: "keeper", "Keeper") are one entry, under the spelling
    most files carry (on a tie, the one added first)."""
    with _catalog(index, write=False) as s:
        return tags_counted(s, source)


def tags_counted(s: Session, source: str | None = USER_TAG_SOURCE) -> dict[str, int]:
    """:func:`tag_counts` in the session ``s`` on a catalog already open (the page's)."""
    mine = [Tag.source == source] if source is not None else []
    rows = s.execute(select(Tag.label, func.count(func.distinct(Tag.file_id)), func.min(Tag.id))
                     .where(*mine).group_by(Tag.label)).all()
    spellings: dict[str, list[tuple[int, int, str]]] = {}
    for label, n, first in rows:
        spellings.setdefault(tag_key(str(label)), []).append((-int(n), int(first), str(label)))
    counts: dict[str, int] = {}
    for forms in spellings.values():
        forms.sort()
        n = -forms[0][0]
        if len(forms) > 1:                  # a file may carry several spellings: count it once
            n = int(s.scalar(select(func.count(func.distinct(Tag.file_id))).where(
                *mine, Tag.label.in_([label for _, _, label in forms]))) or 0)
        counts[forms[0][2]] = n
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower())))

"""The keyword side of a text search (``search_text(keywords=True)``): the snapshot's BM25 index
of paths, tags, captions and descriptions (engine.keywords), and its ranking fused with the
sound's by reciprocal rank."""
from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import threading
import time
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sqlalchemy.engine import Connection

from engine.catalog import has_table
from engine.file_metadata import SEARCHED_KEYS_WITH_SHEETS
from engine.layout import IndexLayout, folder_writable
from engine.metadata_shown import shown_pairs
from engine.query_faiss import best_segments
from engine.query_hits import Hit
from engine.query_snapshot import _Snapshot

#: the query layer's logger (engine.query's)
log = logging.getLogger("engine.query")
#: seconds unchanged after which a keyword index's temporary file is a killed writer's leftover
LEFTOVER_SECONDS = 3600.0


def fused_ranking(conn: Connection, snap: _Snapshot, text: str, q: np.ndarray, k: int, pool: int,
                  by_sound: list[Hit], allowed: np.ndarray | None,
                  unwanted: Sequence[str] = ()) -> tuple[list[tuple[int, tuple[float, int]]], dict[int, float]]:
    """The top ``k`` files ((file id, (cosine with the query vector ``q``, best segment id)),
    best first) of the sound's ranking ``by_sound`` (its ``pool`` best files) fused by
    reciprocal rank with the BM25 ranking of ``text``'s words among the ``allowed`` files (None:
    all), files holding every word of an ``unwanted`` text left out; and file id → BM25 of
    each file the words matched."""
    from engine.keywords import fuse
    word_index = keyword_index(conn, snap)
    kw_ids, kw_scores = word_index.scores(text, allowed)
    for term in unwanted:
        keep = ~np.isin(kw_ids, word_index.containing_all(term))
        kw_ids, kw_scores = kw_ids[keep], kw_scores[keep]
    if len(kw_ids) > pool:     # the pool, and every file tied with its last (up to 10 pools)
        tied = int(np.searchsorted(-kw_scores, -kw_scores[pool - 1], side="right"))
        kw_ids, kw_scores = kw_ids[:min(tied, 10 * pool)], kw_scores[:min(tied, 10 * pool)]
    bm25 = dict(zip(kw_ids.tolist(), kw_scores.tolist()))
    best = {h.file_id: (h.score, h.segment_id) for h in by_sound}
    best.update(best_segments(snap, kw_ids[~np.isin(kw_ids, list(best))], q))
    # equal BM25 (names alike but for a number) keeps the sound's order, not the file ids'
    by_words = sorted((int(f) for f in kw_ids if int(f) in best),
                      key=lambda f: (-round(bm25[f], 9), -best[f][0], f))[:pool]
    order = fuse([h.file_id for h in by_sound], by_words)[:k]
    return [(f, best[f]) for f in order], bm25


def keyword_index(conn: Connection, snap: _Snapshot) -> Any:
    """The snapshot's KeywordIndex (paths, tags, captions, the descriptions files carry and
    the library sheets give them: engine.file_metadata.SEARCHED_KEYS_WITH_SHEETS), built on first use and again
    when tags, captions or file metadata change (``soundsift caption --index`` adds them
    between generations; an index run may read files' metadata again). What one process builds
    the next reads back from the index folder (:func:`_kept_or_built`)."""
    stamp = tuple(conn.exec_driver_sql(
        "SELECT (SELECT count(*) FROM tags), (SELECT max(id) FROM tags), "
        "(SELECT count(*) FROM captions), (SELECT max(id) FROM captions), "
        "(SELECT value FROM meta WHERE key = 'metadata_replaced_at'), "
        "(SELECT value FROM meta WHERE key = 'tags_changed_at'), "
        "(SELECT value FROM meta WHERE key = 'updated_at')").fetchone())
    with snap.keyword_lock:
        if snap.keywords is None or snap.keywords[0] != stamp:
            snap.keywords = (stamp, _kept_or_built(conn, snap, stamp))
        return snap.keywords[1]


def build_keyword_index(conn: Connection) -> Any:
    """A KeywordIndex of the catalog's files as ``conn`` reads them now: their paths (folders and
    name, not the extension), tags, captions and searched metadata."""
    from engine.keywords import KeywordIndex
    docs = [(fid, part) for fid, path in conn.exec_driver_sql("SELECT id, path FROM files")
            for part in os.path.split(os.path.splitext(path)[0])]      # the folder, read once (KeywordIndex.build)
    docs += conn.exec_driver_sql("SELECT file_id, label FROM tags").fetchall()
    docs += conn.exec_driver_sql("SELECT file_id, text FROM captions").fetchall()
    if has_table(conn, "file_metadata"):     # catalogs from before it have none
        docs += shown_pairs(conn.exec_driver_sql(       # a field a sheet clears ("-") is not searched
            "SELECT file_id, key, value FROM file_metadata WHERE key IN "
            f"({','.join('?' * len(SEARCHED_KEYS_WITH_SHEETS))})", SEARCHED_KEYS_WITH_SHEETS).fetchall())
    return KeywordIndex.build(docs)


def _kept_or_built(conn: Connection, snap: _Snapshot, stamp: tuple[Any, ...]) -> Any:
    """The KeywordIndex kept in the index folder (IndexLayout.keyword_cache) when it was written
    for this generation, this ``stamp`` of tags, captions and metadata, and this code; else
    built (:func:`build_keyword_index`) and kept there for the next process (written to a
    temporary file and renamed, so a reader sees a whole file or the old one). A cache that is
    stale is rebuilt quietly, one that cannot be read is rebuilt with a warning, and one that
    cannot be written (a read-only index) is only logged."""
    from engine.keywords import KeywordIndex
    root = _index_root(conn)
    if root is None:
        return build_keyword_index(conn)
    path = IndexLayout(root).keyword_cache
    key = json.dumps([_code_digest(), list(snap.key), list(stamp), list(SEARCHED_KEYS_WITH_SHEETS)], default=str)
    try:
        kept = KeywordIndex.load(path, key)
        if kept is not None:
            return kept
        log.debug("%s: written for another state of the index; building the keyword index again", path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        log.warning("%s cannot be read (%s); building the keyword index again", path, e)
    built = build_keyword_index(conn)
    _keep(built, path, key)
    return built


def _keep(word_index: Any, path: Path, key: str) -> None:
    """Write ``word_index`` to ``path`` with ``key`` atomically; a folder that refuses it is
    logged. Temporary files a writer killed mid-write left (older than
    :data:`LEFTOVER_SECONDS`) are removed first, each logged."""
    if not folder_writable(path.parent):
        log.debug("%s: the index folder is read-only; the keyword index is not kept", path)
        return
    _remove_leftovers(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            word_index.save(fh, key)
        os.replace(tmp, path)
    except OSError as e:
        log.info("%s: the keyword index could not be kept (%s)", path, e)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:             # said above; a leftover .tmp is soundsift's own (engine.layout)
            pass


def _remove_leftovers(path: Path) -> None:
    """Remove the ``<path>.<pid>-<thread>.tmp`` files :func:`_keep` wrote that have not changed
    for :data:`LEFTOVER_SECONDS` (their writer was killed before renaming them; a fresh one may
    be another process's, still writing), logging each; one that cannot be removed is logged."""
    cutoff = time.time() - LEFTOVER_SECONDS
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.*.tmp"):
        try:
            if tmp.stat().st_mtime >= cutoff:
                continue
            tmp.unlink()
        except FileNotFoundError:   # another process removed it (or renamed it into place) meanwhile
            continue
        except OSError as e:
            log.info("%s: a leftover of an unfinished keyword index write could not be removed (%s)", tmp, e)
            continue
        log.info("%s: removed, left by a keyword index write that never finished", tmp)


def _index_root(conn: Connection) -> Path | None:
    """The folder of the catalog ``conn`` reads (None for a database in memory)."""
    database = conn.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).parent


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """What a kept keyword index depends on besides the catalog: this code, engine.keywords and
    the word lists its compounds are split with (engine/data)."""
    import engine.keywords
    h = hashlib.sha256()
    for file in (Path(__file__), Path(engine.keywords.__file__)):
        h.update(file.read_bytes())
    for name in ("vocabulary.txt", "audioset_descriptions.tsv"):
        h.update(resources.files("engine.data").joinpath(name).read_bytes())
    return h.hexdigest()[:16]

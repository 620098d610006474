"""The keyword side of a text search (``search_text(keywords=True)``): the snapshot's BM25 index
of paths, tags, captions and descriptions (engine.keywords), and its ranking fused with the
sound's by reciprocal rank."""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from sqlalchemy.engine import Connection

from engine.catalog import has_table
from engine.file_metadata import SEARCHED_KEYS_WITH_SHEETS
from engine.query_faiss import best_segments
from engine.query_hits import Hit
from engine.query_snapshot import _Snapshot


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
    between generations; an index run may read files' metadata again)."""
    from engine.keywords import KeywordIndex
    stamp = tuple(conn.exec_driver_sql(
        "SELECT (SELECT count(*) FROM tags), (SELECT max(id) FROM tags), "
        "(SELECT count(*) FROM captions), (SELECT max(id) FROM captions), "
        "(SELECT value FROM meta WHERE key = 'metadata_replaced_at'), "
        "(SELECT value FROM meta WHERE key = 'tags_changed_at')").fetchone())
    with snap.keyword_lock:
        if snap.keywords is None or snap.keywords[0] != stamp:
            docs = [(fid, os.path.splitext(path)[0])        # folders and name, not the extension
                    for fid, path in conn.exec_driver_sql("SELECT id, path FROM files")]
            docs += conn.exec_driver_sql("SELECT file_id, label FROM tags").fetchall()
            docs += conn.exec_driver_sql("SELECT file_id, text FROM captions").fetchall()
            if has_table(conn, "file_metadata"):     # catalogs from before it have none
                docs += conn.exec_driver_sql(
                    "SELECT file_id, value FROM file_metadata WHERE key IN "
                    f"({','.join('?' * len(SEARCHED_KEYS_WITH_SHEETS))})", SEARCHED_KEYS_WITH_SHEETS).fetchall()
            snap.keywords = (stamp, KeywordIndex.build(docs))
        return snap.keywords[1]

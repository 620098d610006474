"""What an index holds, read from its catalog alone (no model is loaded): ``soundsift info --json``
(indexer.info.index_info) and the part of ``GET /info`` that carries its keys
(engine.query_catalog.catalog_summary)."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Integer, cast, exists, func, select
from sqlalchemy.orm import Session, aliased

from engine.catalog import ErrorRow, File, FileMetadata, SegmentRow, get_meta, has_table
from engine.file_metadata import SEARCHED_KEYS_WITH_SHEETS, SHEET_PREFIX, SILENCE_KEYS
from engine.layout import IndexLayout
from engine.metadata_shown import shown_rows
from engine.query_catalog import loudness_range
from engine.sheet_layers import sheets_described_in

#: meta keys shown as they are (those written by the indexer, and by index tuning)
META_KEYS = ("model_name", "model_fingerprint", "dim", "sample_rate", "segment_policy",
             "index_type", "index_kind", "faiss_factory", "metric", "index_params", "recall_at_10",
             "trained_on", "memory_budget", "generation", "vectors_file", "vectors_bytes_written",
             "vectors_bytes_of", "updated_at")


def catalog_info(s: Session, layout: IndexLayout, errors_limit: int = 20) -> dict[str, Any]:
    """indexer.info.index_info of the index at ``layout``, its catalog read in ``s`` alone (a session
    of its own, or one bound to a reader's read transaction: ``GET /info``, engine.query_catalog.info)."""
    meta = get_meta(s)
    n_files = int(s.scalar(select(func.count()).select_from(File)) or 0)
    n_segments = int(s.scalar(select(func.count()).select_from(SegmentRow)) or 0)
    n_errors = int(s.scalar(select(func.count()).select_from(ErrorRow)) or 0)
    duration = float(s.scalar(select(func.coalesce(func.sum(File.duration), 0.0))) or 0.0)
    described = (int(s.scalar(select(func.count(func.distinct(FileMetadata.file_id)))
                               .where(FileMetadata.key.in_(SEARCHED_KEYS_WITH_SHEETS), shown_rows())) or 0)
                 if has_table(s, "file_metadata") else 0)
    sheets = sheets_described_in(s)     # records, as `sheet list --json` prints them
    marked = (int(s.scalar(select(func.count(func.distinct(FileMetadata.file_id)))
                           .where(FileMetadata.key == "markers")) or 0)
              if has_table(s, "file_metadata") else 0)
    categories = ([{"category": c, "files": int(n)} for c, n in s.execute(
                       select(FileMetadata.value, func.count(func.distinct(FileMetadata.file_id)))
                       .where(FileMetadata.key.in_(("category", SHEET_PREFIX + "category")), shown_rows())
                       .group_by(FileMetadata.value)
                       .order_by(func.count(func.distinct(FileMetadata.file_id)).desc(), FileMetadata.value))]
                  if has_table(s, "file_metadata") else [])
    formats = [{"format": fmt, "files": int(n), "duration": float(d or 0.0)}
               for fmt, n, d in s.execute(
                   select(File.format, func.count(), func.sum(File.duration))
                   .group_by(File.format).order_by(func.count().desc(), File.format))]
    rates = [{"sample_rate": int(sr), "files": int(n)}
             for sr, n in s.execute(select(File.sample_rate, func.count())
                                    .group_by(File.sample_rate).order_by(File.sample_rate))]
    measured = loudness_range(s)
    silence = silence_counts(s, n_files)
    channels = [{"channels": int(ch), "files": int(n)}
                for ch, n in s.execute(select(File.channels, func.count())
                                       .group_by(File.channels).order_by(File.channels))]
    errors = [{"path": e.path, "reason": e.reason, "at": e.at}
              for e in s.scalars(select(ErrorRow).order_by(ErrorRow.at.desc(), ErrorRow.path)
                                 .limit(max(0, errors_limit)))]
    info: dict[str, Any] = {"index": str(layout.root.resolve())}
    info.update({k: meta.get(k) for k in META_KEYS})
    if not n_segments:      # no vectors: nothing was measured (indexes before session 34 stored 1.0)
        info["recall_at_10"] = None
    vectors = layout.root / meta["vectors_file"] if meta.get("vectors_file") else None
    info["vectors_bytes"] = vectors.stat().st_size if vectors is not None and vectors.is_file() else None
    info["counts"] = {"files": n_files, "segments": n_segments, "errors": n_errors, "described": described,
                      "marked": marked, **silence, "metadata_not_reread": metadata_not_reread(meta, n_files)}
    info["total_duration"] = duration
    info["formats"] = formats
    info["categories"] = categories
    info["sheets"] = sheets
    info["sample_rates"] = rates
    info["channels"] = channels
    info["loudness"] = {"measured_files": int(measured[0] or 0), "silent_files": int(measured[1] or 0),
                        "quietest_lufs": None if measured[2] is None else float(measured[2]),
                        "loudest_lufs": None if measured[3] is None else float(measured[3])}
    info["errors"] = errors
    info["versions"] = _versions(layout)
    return info


def metadata_not_reread(meta: dict[str, Any], n_files: int) -> int:
    """How many of the ``n_files`` indexed files carry embedded metadata (descriptions, markers …)
    read by an older soundsift than this one: all of them while the catalog's metadata reader
    (meta ``metadata_reader``, none before session 18) is older than READER_VERSION, which the
    next `soundsift index` reads again (indexer.metadata_refresh); else 0. Until then keyword
    search, the cards and sheet export miss what the older reader did not read."""
    from engine.file_metadata import READER_VERSION
    return n_files if n_files and int(meta.get("metadata_reader") or 0) < READER_VERSION else 0


def silence_counts(s: Session, n_files: int) -> dict[str, int]:
    """``silent_left_out``: how many segments the catalog's files left out as digital silence (the
    sum of their rows of that key, engine.file_metadata.SILENCE_KEYS); ``files_of_silence``: how
    many are silence throughout; ``silence_not_judged``: how many files are not judged by the rule
    of now yet: indexed before session 39 (no row), or with named markers judged by session 39,
    which kept a silent marked take (no ``silent_takes`` row: those counts miss it). The next
    ``soundsift index`` run judges those on disk (indexer.silence_refresh)."""
    if not has_table(s, "file_metadata"):
        return {"silent_left_out": 0, "files_of_silence": 0, "silence_not_judged": n_files}
    left_out, judged = s.execute(select(func.coalesce(func.sum(cast(FileMetadata.value, Integer)), 0), func.count())
                                 .where(FileMetadata.key == SILENCE_KEYS[0])).one()
    throughout = s.scalar(select(func.count()).where(FileMetadata.key == SILENCE_KEYS[1]))
    row = aliased(FileMetadata)
    takes_kept = s.scalar(select(func.count()).select_from(FileMetadata).where(     # judged by session 39
        FileMetadata.key == "markers",      # fewer rows to start from than silent_left_out's
        exists().where(row.file_id == FileMetadata.file_id, row.key == SILENCE_KEYS[0]),
        ~exists().where(row.file_id == FileMetadata.file_id, row.key == SILENCE_KEYS[2])))
    return {"silent_left_out": int(left_out or 0), "files_of_silence": int(throughout or 0),
            "silence_not_judged": max(0, n_files - int(judged or 0) + int(takes_kept or 0))}


def _versions(layout: IndexLayout) -> dict[str, str]:
    try:
        return dict(json.loads(layout.index_json.read_text()).get("versions", {}))
    except (OSError, ValueError):
        return {}

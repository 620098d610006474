"""What leaving out the fields a sheet clears costs the catalog's queries (run by hand).

A library sheet's cell "-" clears its field (engine.metadata_shown.shown_rows): ``info``'s count
of described files, its categories, the page's category list and ``--category`` read only the
rows a file shows. This builds a synthetic catalog (``--files`` files, ten metadata rows each,
one file in ``--every`` with its description cleared, none with ``--every 0``, 50 categories) in a temporary folder and
times ``info``'s count of described files, and the ``--category`` filter's file ids, without the
condition, with it (``shown_rows()``; the filter's ``shown_rows(few=True)``), and with it written
as one correlated subquery per row (the first way tried), in alternating rounds, on that catalog
and on a copy without its index of the cleared cells (``ix_file_metadata_cleared``: a catalog from
before session 42 that no writer has opened since, read as every catalog was before); prints the
medians and the ratios to the plain query on the same catalog, measured in one run::

    .venv/bin/python benchmarks/metadata_shown.py [--files 33000] [--every 100] [--rounds 5]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEYS = ("title", "description", "category", "peak_dbfs", "loudness_lufs", "fingerprint", "sheet:description",
        "sheet:category", "sheet:sheet", "sheet:path")


def per_row_subquery():
    """The condition as one correlated subquery per row."""
    from sqlalchemy import and_, exists, not_
    from sqlalchemy.orm import aliased

    from engine.catalog import FileMetadata
    from engine.file_metadata import SHEET_CLEARED, SHEET_PREFIX
    clearing = aliased(FileMetadata)
    return and_(not_(and_(FileMetadata.key.like(SHEET_PREFIX + "%"), FileMetadata.value == SHEET_CLEARED)),
                not_(exists().where(clearing.file_id == FileMetadata.file_id,
                                    clearing.key == SHEET_PREFIX + FileMetadata.key,
                                    clearing.value == SHEET_CLEARED)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=33000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from sqlalchemy import create_engine, func, insert, select
    from sqlalchemy.orm import Session

    from engine.catalog import Base, FileMetadata
    from engine.file_metadata import CATEGORY_FILTER_KEYS, SEARCHED_KEYS_WITH_SHEETS
    from engine.metadata_shown import shown_rows
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{folder}/catalog.db")
        Base.metadata.create_all(engine)
        with Session(engine) as s:
            s.connection().execute(insert(FileMetadata.__table__), [
                {"file_id": i, "key": k, "value": _value(i, k, args.every)}
                for i in range(1, args.files + 1) for k in KEYS])
            s.commit()
        engine.dispose()
        shutil.copyfile(f"{folder}/catalog.db", f"{folder}/before.db")
        before = create_engine(f"sqlite:///{folder}/before.db")
        with before.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_file_metadata_cleared")
        engines = {"": create_engine(f"sqlite:///{folder}/catalog.db"), " no index": before}
        described = {"plain": (), "shown_rows()": (shown_rows(),), "per-row subquery": (per_row_subquery(),)}
        filtered = {"plain": (), "shown_rows(few=True)": (shown_rows(few=True),), "shown_rows()": (shown_rows(),)}
        times: dict[tuple[str, str], list[float]] = {}
        counts: dict[tuple[str, str], int] = {}
        sessions = {label: Session(e) for label, e in engines.items()}
        for _ in range(args.rounds):
            for label, s in sessions.items():
                for name, extra in described.items():
                    start = time.perf_counter()
                    counts["described" + label, name] = s.scalar(
                        select(func.count(func.distinct(FileMetadata.file_id)))
                        .where(FileMetadata.key.in_(SEARCHED_KEYS_WITH_SHEETS), *extra))
                    times.setdefault(("described" + label, name), []).append(time.perf_counter() - start)
                for name, extra in filtered.items():
                    start = time.perf_counter()
                    counts["--category" + label, name] = len(s.scalars(
                        select(FileMetadata.file_id).where(FileMetadata.key.in_(CATEGORY_FILTER_KEYS),
                                                           func.upper(FileMetadata.value).in_(["CAT7"]), *extra)).all())
                    times.setdefault(("--category" + label, name), []).append(time.perf_counter() - start)
        for s in sessions.values():
            s.close()
        for e in engines.values():
            e.dispose()
    for (query, name), found in times.items():
        median, base = statistics.median(found), statistics.median(times[query, "plain"])
        print(f"{query:>19} {name:>20}: {median * 1000:8.1f} ms  ×{median / base:5.2f}  ({counts[query, name]} files)")


def _value(file_id: int, key: str, every: int) -> str:
    """A synthetic metadata value: "-" for one description in ``every`` (none for 0), a category of 50."""
    if key == "sheet:description" and every and file_id % every == 0:
        return "-"
    return f"CAT{file_id % 50}" if key.endswith("category") else f"value {file_id}"


if __name__ == "__main__":
    main()

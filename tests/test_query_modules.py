"""engine.query split into parts with one job each (engine.query_*): each part imports first in a
fresh interpreter (no import cycle), every name engine.query had can still be imported from it
as the very object its part holds, SoundIndex keeps its public API, the moved code still logs
under the ``engine.query`` logger, and what patches ``engine.query.stored_metadata``
(benchmarks/hit_details.py) still changes how hits are described."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine.query as query
from query_fixtures import FakeModel, FileSpec, write_index

ROOT = Path(__file__).resolve().parents[1]
DIM = 8

#: each part of the query layer and the names engine.query had that now live there and that it
#: still uses (helpers it no longer uses are imported from their part)
MOVED = {
    "query_inputs": ["_check_k", "_check_rate", "_one_or_many", "query_matrix", "excluded_texts"],
    "query_hits": ["Hit", "FileVectors", "_reported", "_query_file_first"],
    "query_snapshot": ["_Snapshot", "_generation_key", "_all_meta", "_VectorsGone", "_Replaced",
                       "_QueryModelChanged", "_finished_meta", "_ReadTxn"],
    "query_faiss": [],
    "query_keywords": [],
    "query_markers": [],
    "query_catalog": [],
}
#: names defined in engine.query before the split that stay defined there
STAYED = ["SoundIndex", "IndexClosed", "MAX_QUERY_SEGMENTS", "KEYWORD_POOL", "EXCLUDE_WEIGHT", "_RELOAD_RETRIES", "log"]
#: SoundIndex's public methods and properties before the split (and failed_reason, why_not_indexed and
#: segment_vector, added since)
PUBLIC = ["allowed_segment_ids", "audio_vector", "close", "closed", "errors", "facets", "failed_reason",
          "file_id_for_path", "file_segments", "file_states", "file_vector", "file_vectors", "get_file", "get_file_and_state", "info", "model", "open",
          "policy", "rank_texts", "refresh", "search_audio", "search_text", "search_vectors", "segment_vector", "similar_to_file",
          "similar_to_files", "tag", "tag_with_notes", "version", "why_no_file", "why_not_indexed"]


@pytest.mark.parametrize("part", [*MOVED, "query"])
def test_each_part_imports_first_in_a_fresh_interpreter(part):
    """Imported before anything else of the engine, each part loads (an import cycle among the
    parts would fail here with a partly initialised module), from this checkout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", f"import engine.{part} as m; import engine.query; print(m.__file__)"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).resolve() == ROOT / "engine" / f"{part}.py"


@pytest.mark.parametrize("part, names", MOVED.items())
def test_names_that_moved_are_the_same_objects_in_engine_query(part, names):
    module = __import__(f"engine.{part}", fromlist=["_"])
    for name in names:
        assert getattr(query, name) is getattr(module, name), name


def test_every_name_engine_query_defined_is_still_importable_from_it():
    for name in [*STAYED, *(n for names in MOVED.values() for n in names), *query.__all__]:
        exec(f"from engine.query import {name}", {})
    assert query.__all__ == ["SoundIndex", "Hit", "Filters", "FileVectors", "IndexClosed"]
    assert issubclass(query.IndexClosed, query.IndexNotFound) and query.IndexClosed.__module__ == "engine.query"


def test_sound_index_keeps_its_public_api():
    assert sorted(n for n in dir(query.SoundIndex) if not n.startswith("_")) == PUBLIC
    assert all(getattr(query.SoundIndex, n).__doc__ for n in PUBLIC)


def test_moved_code_logs_under_the_engine_query_logger(monkeypatch, caplog):
    """A logging set-up (or a test) that listens to ``engine.query`` hears the parts too."""
    from engine import vectors
    from engine.query_faiss import best_ranked
    from engine.query_snapshot import _gpu_copy, _Snapshot

    def broken(index, nprobe=None, float16=False):
        raise RuntimeError("no room on the GPU")

    monkeypatch.setattr(vectors, "gpu_count", lambda: 1)
    monkeypatch.setattr(vectors, "to_gpu", broken)
    ids = np.array([10, 11], np.int64)
    snap = _Snapshot(("v.faiss", 1), "fp", DIM, None, ids, np.array([1, 2], np.int64),
                     np.zeros(2), np.ones(2), 2)
    with caplog.at_level(logging.WARNING, logger="engine.query"):
        assert _gpu_copy(object(), {}, "flat") is None
        keys, scores, seg_ids = best_ranked(snap, np.array([[0.9, 0.8, 0.7]], np.float32), np.array([[12, 11, 10]]), True)
        best = dict(zip(keys.tolist(), zip(scores.tolist(), seg_ids.tolist())))
    assert best == {2: (pytest.approx(0.8), 11), 1: (pytest.approx(0.7), 10)}   # id 12 has no catalog row
    said = {r.getMessage(): r.name for r in caplog.records}
    assert said == {"cannot copy the index to the GPU (no room on the GPU); searching on the CPU": "engine.query",
                    "ignoring 1 vector ids missing from the catalog": "engine.query"}


def test_patching_stored_metadata_in_engine_query_still_reaches_the_hits(tmp_path, monkeypatch):
    """benchmarks/hit_details.py swaps ``engine.query.stored_metadata`` to time the hits' lookup."""
    rng = np.random.default_rng(3)
    write_index(tmp_path / "idx", [FileSpec("/lib/a.wav", rng.standard_normal(DIM)),
                                   FileSpec("/lib/b.wav", rng.standard_normal(DIM))], dim=DIM)
    asked = []

    def described(conn, file_ids, keys):
        asked.append(tuple(keys))
        return {int(f): {"description": f"file {int(f)} as patched"} for f in file_ids}

    monkeypatch.setattr(query, "stored_metadata", described)
    with query.SoundIndex.open(tmp_path / "idx", model=FakeModel(DIM)) as index:
        hits = index.search_vectors(rng.standard_normal(DIM), k=2)
    assert len(hits) == 2 and asked and asked[0][0] == "markers"
    assert all(h.about == f"file {h.file_id} as patched" for h in hits)

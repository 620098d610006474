"""Review of session 40's changes: regressions found by a second reader.

- An upload's stderr capture beside threads (engine.stderr_capture.capturing_beside_threads) walked
  logging's logger dict step by step; another thread making a logger meanwhile (a module imported
  on serve's other threads, the page's) made the capture fail with "dictionary changed size during
  iteration", so the upload failed for a reason that had nothing to do with it.
- The vectors file's recorded length (``vectors_bytes_written``) stayed in the catalog when a
  soundsift from before session 40 committed since (a new vectors file, no length written): every
  reader then compared the new file with the old file's length and refused the index as damaged.
  The length is now recorded with the name of the file it is of, and compared only for that file.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import sys
import threading
from pathlib import Path

import faiss
import numpy as np

from engine import stderr_capture
from engine.layout import IndexLayout
from engine.vectors import LENGTH_KEY
from indexer.write import Changes, IndexWriter
from tests.test_index_retrain import META, files


def test_stderr_handlers_survive_loggers_made_by_another_thread(monkeypatch) -> None:
    """Loggers made on another thread while the stderr handlers are looked for are no error."""
    monkeypatch.setattr(logging.Logger.manager, "loggerDict", dict(logging.Logger.manager.loggerDict))
    handler = logging.StreamHandler(sys.__stderr__)
    logging.getLogger().addHandler(handler)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    made = threading.Event()

    def make_loggers() -> None:
        for i in range(20_000):
            logging.getLogger(f"review40.made.{i}")
        made.set()

    maker = threading.Thread(target=make_loggers, daemon=True)
    failures: list[RuntimeError] = []
    try:
        maker.start()
        while not made.is_set():
            try:
                stderr_capture._stderr_handlers()
            except RuntimeError as e:
                failures.append(e)
        maker.join()
    finally:
        sys.setswitchinterval(interval)
        logging.getLogger().removeHandler(handler)
    assert failures == []


def _older_soundsift_commit(root: Path, meta: dict, path: str) -> Path:
    """What a commit by soundsift before session 40 (another machine's, an older venv's) does to
    an index a newer one wrote, here removing the file ``path``: a new vectors file, of another
    length, named in the catalog with its generation, and no length recorded (the newer commit's
    ``vectors_bytes_written`` stays as it was)."""
    gen = int(meta["generation"]) + 1
    new = IndexLayout(root).vectors_file(gen)
    index = faiss.read_index(str(root / meta["vectors_file"]))
    with sqlite3.connect(IndexLayout(root).catalog) as conn:
        (fid,) = conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        segments = [r[0] for r in conn.execute("SELECT id FROM segments WHERE file_id = ?", (fid,))]
        index.remove_ids(np.array(segments, dtype=np.int64))
        faiss.write_index(index, str(new))
        conn.execute("DELETE FROM segments WHERE file_id = ?", (fid,))
        conn.execute("DELETE FROM file_metadata WHERE file_id = ?", (fid,))
        conn.execute("DELETE FROM files WHERE id = ?", (fid,))
        for key, value in (("vectors_file", new.name), ("generation", gen)):
            conn.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(value), key))
    conn.close()
    return new


def test_a_length_recorded_for_another_vectors_file_is_not_compared(tmp_path) -> None:
    """A length recorded by a newer commit is of the file that commit wrote: an older soundsift's
    commit since (a new file, no length recorded) is read as an index from before lengths were
    recorded, not refused as a damaged vectors file every reader then stopped at."""
    from indexer.info import index_info
    from ui.cli.cmd_info import _vectors_error

    root = tmp_path / "idx"
    with IndexWriter(IndexLayout(root)) as w:
        w.commit(Changes(add=files("a", 4, 3, seed=1)), META)
        meta = dict(w.meta)
    assert meta.get(LENGTH_KEY)                      # this soundsift records it
    new = _older_soundsift_commit(root, meta, "/lib/a0003.wav")
    assert new.stat().st_size != meta[LENGTH_KEY]
    assert _vectors_error(index_info(root)) is None
    from engine.query import SoundIndex
    SoundIndex.open(root).refresh()                  # search, serve and the page read it
    with IndexWriter(IndexLayout(root)) as w:        # the writer opens it (it refused: "damaged")
        w.commit(Changes(add=files("b", 2, 3, seed=2)), META)
        assert w.meta[LENGTH_KEY] == (root / w.meta["vectors_file"]).stat().st_size


def test_a_vectors_file_cut_short_is_still_refused(tmp_path) -> None:
    """The length this soundsift recorded is still compared for the file it wrote."""
    from engine.errors import IndexUnreadable
    from indexer.info import index_info
    from ui.cli.cmd_info import _vectors_error

    root = tmp_path / "idx"
    with IndexWriter(IndexLayout(root)) as w:
        w.commit(Changes(add=files("a", 4, 3, seed=1)), META)
        path = root / w.meta["vectors_file"]
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 4)
    assert isinstance(_vectors_error(index_info(root)), IndexUnreadable)

"""engine.catalog.catalog_session: one session on an index's catalog, as every one-shot reader and
writer of the product opens it (tags, sheets, info, sheet export, caption storage, rebuild) and
the tests do (conftest re-exports it): read-only in a folder that cannot be written, one
transaction committed on leaving (rolled back on an exception) with ``write``, the engine
disposed either way, and a missing index named as ``--index`` names it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, func, select

from engine.catalog import Tag, catalog_session, read_only_mode
from engine.errors import IndexBusy, IndexNotFound, InvalidQuery
from engine.layout import INDEX_HOME_ENV, IndexLayout
from engine.sheet_export import library_rows
from indexer.info import index_info
from indexer.metadata_sheet import remove_sheet, sheets_described
from indexer.user_tags import add_tags, tag_counts
from indexer.write import WriterLock
from query_fixtures import FileSpec, write_index
from tests.test_index_readonly import disk_state, make_read_only
from trainer.caption_loop import CaptionedFile, store_in_catalog
from ui.cli.cmd_caption import _index_model

PATHS = ("/lib/a.wav", "/lib/b.wav")


@pytest.fixture
def idx(tmp_path: Path) -> Path:
    """A two-file index."""
    rng = np.random.default_rng(0)
    write_index(tmp_path / "idx", [FileSpec(p, rng.standard_normal((1, 8))) for p in PATHS])
    return tmp_path / "idx"


def catalog_handles(idx: Path) -> list[str]:
    """The descriptors this process holds open on ``idx``'s catalog (catalog.db, its -wal, -shm)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("no /proc/self/fd here")
    catalog = str(IndexLayout(idx).catalog.resolve())
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:          # the listing's own descriptor, closed meanwhile
            continue
        if target.startswith(catalog):
            found.append(target)
    return found


def user_tags(idx: Path) -> list[str]:
    with catalog_session(idx) as s:
        return sorted(s.scalars(select(Tag.label).where(Tag.source == "user")))


def test_a_read_session_in_a_folder_that_cannot_be_written_writes_nothing(idx, monkeypatch):
    make_read_only(monkeypatch, idx)
    before = disk_state(idx)
    with catalog_session(idx) as s:
        assert read_only_mode(s.get_bind()) == "immutable"
        assert s.execute(select(func.count()).select_from(Tag)).scalar() == 0
        with pytest.raises(Exception, match="readonly database"):
            s.execute(delete(Tag))
    assert disk_state(idx) == before
    assert catalog_handles(idx) == []


def test_a_write_session_commits_on_leaving(idx):
    with catalog_session(idx, write=True) as s:
        s.add(Tag(file_id=1, label="kept", score=1.0, source="user"))
        assert s.in_transaction()
    assert user_tags(idx) == ["kept"]


def test_a_write_session_rolls_back_on_an_exception_and_lets_it_through(idx):
    with pytest.raises(RuntimeError, match="stop here"):
        with catalog_session(idx, write=True) as s:
            s.add(Tag(file_id=1, label="dropped", score=1.0, source="user"))
            s.flush()                                   # in the database's transaction already
            raise RuntimeError("stop here")
    assert user_tags(idx) == []


def test_a_read_session_leaves_writing_to_the_caller(idx):
    with catalog_session(idx) as s:
        s.add(Tag(file_id=1, label="uncommitted", score=1.0, source="user"))
    with catalog_session(idx) as s:
        s.add(Tag(file_id=2, label="committed", score=1.0, source="user"))
        s.commit()
    assert user_tags(idx) == ["committed"]


@pytest.mark.parametrize("write", [False, True])
def test_the_engine_is_disposed_on_leaving_and_on_an_exception(idx, write):
    with catalog_session(idx, write=write) as s:
        s.execute(select(Tag.id)).all()
        engine = s.get_bind()
        assert catalog_handles(idx)                     # open while the session is
    assert catalog_handles(idx) == []
    assert engine.pool.checkedin() == 0                 # disposed: a new, empty pool
    with pytest.raises(ValueError):
        with catalog_session(idx, write=write) as s:
            s.execute(select(Tag.id)).all()
            engine = s.get_bind()
            raise ValueError("the caller's own error")
    assert catalog_handles(idx) == []
    assert engine.pool.checkedin() == 0


def test_a_missing_index_is_named_as_index_names_it(tmp_path):
    with pytest.raises(IndexNotFound, match=f"no index at {tmp_path / 'none'}; build one"):
        with catalog_session(tmp_path / "none"):
            pass
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "a.wav").write_bytes(b"")
    with pytest.raises(IndexNotFound, match="it holds other files \\(a.wav …\\), not an index"):
        with catalog_session(tmp_path / "library"):
            pass
    assert not (tmp_path / "none").exists() and not (tmp_path / "library" / "catalog.db").exists()


def test_a_bare_name_is_an_index_under_the_index_home(idx, monkeypatch):
    monkeypatch.setenv(INDEX_HOME_ENV, str(idx.parent))
    with catalog_session("idx") as s:
        assert s.execute(select(func.count()).select_from(Tag)).scalar() == 0
    with pytest.raises(IndexNotFound, match=f"no index at {idx.parent / 'other'} \\(a bare name"):
        with catalog_session("other"):
            pass


def test_the_products_one_shot_sessions_leave_no_handle_open(idx, tmp_path):
    """The callers of catalog_session, on success and on their error paths."""
    add_tags(idx, ["/lib/a.wav"], ["whoosh"])
    assert tag_counts(idx) == {"whoosh": 1}
    assert index_info(idx)["counts"]["files"] == 2
    assert sheets_described(idx) == []
    assert [r["Pathname"] for r in library_rows(idx)] == list(PATHS)
    assert _index_model(str(idx)) == "fake"
    assert store_in_catalog(idx, [CaptionedFile("/lib/b.wav", captions=["a hiss"])])["files"] == 1
    assert catalog_handles(idx) == []
    with pytest.raises(InvalidQuery, match="no sheet was imported"):
        remove_sheet(idx, "none.csv")
    with WriterLock(IndexLayout(idx).lock), pytest.raises(IndexBusy):
        add_tags(idx, ["/lib/b.wav"], ["busy"])
    assert catalog_handles(idx) == []
    assert tag_counts(idx) == {"whoosh": 1}

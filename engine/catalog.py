"""The SQLite catalog (SQLAlchemy): files, segments, errors, tags, captions, metadata.

Segment ids are the FAISS vector ids (``AUTOINCREMENT``: an id is never reused, so a
vector id can never point at the wrong segment). The database runs in WAL mode so
readers keep answering while a writer commits; in a folder that cannot be written (a read-only
mount or share) it is opened read-only (:func:`open_catalog`). A caller that reads or writes an
index's catalog once opens it with :func:`catalog_session`.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import quote

from sqlalchemy import (Connection, Float, ForeignKey, Index, Integer, String, Text, create_engine, event,
                        literal, select, text)
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from engine.durable import replace_durably

if TYPE_CHECKING:
    from engine.errors import IndexUnreadable
    from engine.layout import IndexLayout

#: the catalog's layout; a new one stores it in meta ``schema_version`` and a soundsift refuses a
#: catalog of a higher one (:func:`check_catalog`), which a later release may read differently
SCHEMA_VERSION = 1

log = logging.getLogger(__name__)


class Base(DeclarativeBase):
    pass


class File(Base):
    """One audio file of the library, as it was when indexed."""

    __tablename__ = "files"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True, index=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)
    duration: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(32))
    subtype: Mapped[str] = mapped_column(String(32), default="")
    indexed_at: Mapped[float] = mapped_column(Float, default=time.time)

    segments: Mapped[list["SegmentRow"]] = relationship(
        back_populates="file", cascade="all, delete-orphan", passive_deletes=True)
    tags: Mapped[list["Tag"]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    captions: Mapped[list["Caption"]] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    embedded: Mapped[list["FileMetadata"]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class SegmentRow(Base):
    """A time span of a file; its id is the vector id in the FAISS index."""

    __tablename__ = "segments"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)

    file: Mapped[File] = relationship(back_populates="segments")


class ErrorRow(Base):
    """A file that could not be indexed, and why (latest attempt per path)."""

    __tablename__ = "errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True, index=True)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[float] = mapped_column(Float, default=time.time)


#: ``Tag.source`` of the user's own tags (indexer.user_tags)
USER_TAG_SOURCE = "user"


class Tag(Base):
    """A label attached to a file (zero-shot, AudioSet/YAMNet, or the user's)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(64))


class Caption(Base):
    """A caption of a file (e.g. tag-guided synthetic captions from `soundsift caption`)."""

    __tablename__ = "captions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))


class FileMetadata(Base):
    """A description the file carries inside it (title, comment, bext description …;
    engine.file_metadata), read when it was indexed."""

    __tablename__ = "file_metadata"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)


class Meta(Base):
    """Key → JSON value: model name and fingerprint, dim, rate, policy, current vector file …"""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


Index("ix_tags_label", Tag.label)

#: how a library sheet's cell "-" is stored: the value of its field's ``sheet:`` row
#: (engine.file_metadata.SHEET_CLEARED; written inline, so that SQLite sees the partial index serves the query)
CLEARED_VALUE = literal("-", literal_execute=True)
#: the few rows of cleared cells, so that engine.metadata_shown finds them without reading the whole table
Index("ix_file_metadata_cleared", FileMetadata.file_id, FileMetadata.key, FileMetadata.value,
      sqlite_where=FileMetadata.value == CLEARED_VALUE)


def create_tables(conn: Connection | Engine) -> None:
    """Make the tables and indexes the catalog behind ``conn`` lacks: a catalog written by an
    older soundsift gains them when a writer opens it (:func:`open_catalog` with ``create``, a
    sheet import). SQLAlchemy's ``create_all`` makes an index only with its table."""
    Base.metadata.create_all(conn)
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def open_catalog(path: str | Path, *, create: bool = False) -> Engine:
    """An SQLAlchemy engine on the catalog at ``path`` (WAL mode, foreign keys on).

    In a folder this process cannot write (a read-only mount or share) the catalog is opened
    read-only (:func:`_read_only_engine`), also with ``create`` when it exists (its schema is
    there already; every writer takes the index's WriterLock first, which refuses such a folder
    with IndexReadOnly), and IndexReadOnly when it does not. IndexUnreadable, before anything is
    written, when the file is damaged or not a catalog this soundsift reads (:func:`check_catalog`).
    """
    from engine.layout import folder_writable, read_only_error

    path = Path(path)
    if not create and not path.is_file():
        from engine.errors import IndexNotFound
        raise IndexNotFound(f"no catalog at {path}")
    if path.parent.is_dir() and not folder_writable(path.parent):
        if not path.is_file():
            raise read_only_error(path.parent, path.name)
        return _read_only_engine(path)
    if create and not path.is_file():
        _create_schema(path)
    engine = create_engine(f"sqlite:///{path}", future=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    try:
        check_catalog(engine, path, create=create)
    except BaseException:
        engine.dispose()
        raise
    _report_damage(engine, path)
    if create:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        with engine.begin() as conn:
            create_tables(conn)
    return engine


@contextmanager
def catalog_session(index: str | Path | IndexLayout | None, *, write: bool = False) -> Iterator[Session]:
    """A session on the catalog of an index, its engine disposed on leaving (on an exception too).

    ``index``: as ``--index`` names one (a name under the index home, a folder, None for the
    default; IndexNotFound naming the folder when it holds no catalog), or the IndexLayout the
    caller resolved already. Opened by :func:`open_catalog`: read-only in a folder this process
    cannot write. ``write``: in one transaction, committed on leaving and rolled back on an
    exception; a caller that writes takes the index's WriterLock around it (indexer.write).
    """
    from engine.layout import IndexLayout, existing_index

    layout = index if isinstance(index, IndexLayout) else existing_index(index)
    engine = open_catalog(layout.catalog)
    try:
        with Session(engine) as s:
            if not write:
                yield s
                return
            with s.begin():
                yield s
    finally:
        engine.dispose()


#: where a new catalog's tables are made before it is renamed into place (engine.layout.OWN_NAMES)
NEW_CATALOG_SUFFIX = ".new"


def _create_schema(path: Path) -> None:
    """Make a new catalog at ``path`` with all its tables in one step: written beside it and
    renamed into place, so that ``path`` never exists without its tables. A writer killed while
    SQLite was making them left a catalog that every reader (``info``, ``search``) failed on
    with "no such table: meta" until the next index run."""
    tmp = path.with_name(path.name + NEW_CATALOG_SUFFIX)
    for stale in (tmp, Path(f"{tmp}-journal")):     # left by a writer killed here before
        stale.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{tmp}", future=True)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as s, s.begin():
            set_meta(s, schema_version=SCHEMA_VERSION)     # check_catalog refuses a newer one
    finally:
        engine.dispose()
    replace_durably(tmp, path)


#: SQLite's primary result codes of a file that is damaged or not a database (sqlite.org/rescode.html)
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


#: what :func:`damaged_catalog` says of a catalog file of 0 bytes, found at open or in use
EMPTIED = "is empty (0 bytes; truncated?)"
#: the first bytes of every SQLite database file (sqlite.org/fileformat.html)
_SQLITE_HEADER = b"SQLite format 3\0"


def _damage_said(error: BaseException) -> str | None:
    """What the DBAPI ``error`` (sqlite3's) says of a catalog file that is itself damaged or not
    SQLite, for :func:`damaged_catalog`; None for any other error (a lock, a permission, a full disk)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        damaged = code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    else:
        damaged = any(m in str(error) for m in ("file is not a database", "disk image is malformed"))
    if not damaged:
        return None
    what = "is not an SQLite database" if "not a database" in str(error) else "is damaged"
    return f"{what} ({error}; truncated or overwritten?)"


def _file_damage(path: Path) -> str | None:
    """What is wrong with the catalog file at ``path`` by its size and first bytes alone (emptied,
    or overwritten by other bytes), for :func:`damaged_catalog`; None when it starts as SQLite
    (or cannot be read: that is not damage to report)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except OSError:
        return None
    if not head:
        return EMPTIED
    if head != _SQLITE_HEADER:
        return "is not an SQLite database (it does not start as one; truncated or overwritten?)"
    return None


def _schema_lost(error: BaseException) -> str | None:
    """What the DBAPI ``error`` says of a catalog whose tables or columns changed in place since
    it was opened (another program dropped a table, renamed a column: SQLite's "no such table:
    segments", "no such column: start"), naming one of soundsift's own, for :func:`damaged_catalog`;
    None for any other error, or one naming a table or column soundsift's schema does not have
    (a query's own mistake, not the catalog's)."""
    if not isinstance(error, sqlite3.OperationalError):
        return None
    said = str(error)
    for prefix, known in (("no such table: ", set(Base.metadata.tables)),
                          ("no such column: ", {c.name for t in Base.metadata.tables.values() for c in t.columns})):
        if said.startswith(prefix) and said[len(prefix):].split(".")[-1].strip() in known:
            return f"is not a catalog this soundsift reads any more ({said}: changed in place while it was open?)"
    return None


def _report_damage(engine: Engine, path: Path) -> None:
    """Make a query on ``engine`` that finds the catalog at ``path`` damaged raise IndexUnreadable
    naming it (:func:`damaged_catalog`) instead of SQLAlchemy's DatabaseError: a catalog emptied,
    cut short or overwritten in place while it is open (``soundsift serve``, the page, a long
    command), which :func:`check_catalog` saw whole when it was opened, or one whose tables or
    columns another program dropped or renamed meanwhile (:func:`_schema_lost`). The engine's
    pooled connections are dropped with it (as on a lost connection), so a catalog restored in
    place is read afresh by the next query: nothing needs restarting."""
    def on_error(context: Any) -> None:
        error = context.original_exception
        why = (_damage_said(error) or (_file_damage(path) if isinstance(error, sqlite3.Error) else None)
               or _schema_lost(error))          # (an emptied file has no tables either: said as emptied)
        if why is None:
            return
        context.is_disconnect = True            # the pool is dropped: no connection keeps stale pages
        raise damaged_catalog(path, why)        # SQLAlchemy chains it to the sqlite3 error

    event.listen(engine, "handle_error", on_error)


def damaged_catalog(path: Path, why: str) -> "IndexUnreadable":
    """The IndexUnreadable of the catalog at ``path`` that cannot be used (``why``), with what to do."""
    from engine.errors import IndexUnreadable
    from engine.layout import index_option
    root = path.parent
    return IndexUnreadable(
        f"{path} {why}: restore it (or the whole folder {root}) from a backup, or move the folder aside and "
        f"index again with `soundsift index FOLDER... --index {index_option(root)}` (its tags and captions are "
        "lost with it)")


#: the tables and columns every catalog soundsift wrote has, which every reader reads
_CORE_COLUMNS = {"meta": ("key", "value"), "files": ("id", "path", "size", "mtime_ns"),
                 "segments": ("id", "file_id", "start", "end")}


def check_catalog(engine: Engine, path: Path, *, create: bool = False) -> None:
    """IndexUnreadable unless the catalog at ``path`` (opened by ``engine``) reads as soundsift's:
    an SQLite file (not truncated, not overwritten by other bytes) with a ``meta`` table, of a
    :data:`SCHEMA_VERSION` this soundsift reads. With ``create`` (a writer), a file with no tables
    at all is taken as a new catalog (made by an older soundsift killed before its first
    commit) unless the folder holds vectors or index.json, the signs of a committed index whose
    catalog was emptied; every other damage is refused, so a writer never writes over it."""
    try:
        with engine.connect() as conn:
            tables = {name for (name,) in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = (conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'schema_version'").scalar()
                       if "meta" in tables else None)
            lacking = [f"{table}.{column}" for table, columns in _CORE_COLUMNS.items() if table in tables
                       for column in sorted(set(columns) - {row[1] for row in conn.exec_driver_sql(
                           f"PRAGMA table_info({table})")})]
    except DBAPIError as e:
        why = _damage_said(e.orig)
        if why is None:
            raise
        raise damaged_catalog(path, why) from e
    if not tables:
        _check_empty(path, create)
        return
    if "meta" not in tables:
        raise damaged_catalog(path, f"is not a soundsift catalog (no meta table; it holds "
                                    f"{', '.join(sorted(tables)[:3])})")
    _check_schema(path, version)
    if lacking or not _CORE_COLUMNS.keys() <= tables:
        what = ", ".join(lacking or sorted(_CORE_COLUMNS.keys() - tables))
        raise damaged_catalog(path, f"is not a catalog this soundsift reads (no {what}: damaged, "
                                    "or written by a newer soundsift?)")


def _check_empty(path: Path, create: bool) -> None:
    """IndexUnreadable for the catalog at ``path`` that holds no tables, unless a writer (``create``)
    may make them: nothing beside it (no vectors, no index.json) says an index was committed there."""
    from engine.layout import IndexLayout

    layout = IndexLayout(path.parent)
    if create and not layout.vector_files() and not layout.index_json.is_file():
        return
    size = path.stat().st_size
    raise damaged_catalog(path, EMPTIED if size == 0 else
                          f"holds no tables ({size} bytes; truncated?)")


def _check_schema(path: Path, version: str | None) -> None:
    """IndexUnreadable when the catalog at ``path`` records (meta ``version``, JSON) a schema newer
    than :data:`SCHEMA_VERSION`, or one that is not a number; None: one from before it was recorded."""
    if version is None:
        return
    try:
        schema = int(json.loads(version))
    except (ValueError, TypeError) as e:
        raise damaged_catalog(path, f"has an unreadable schema_version ({version!r})") from e
    if schema > SCHEMA_VERSION:
        from engine.errors import IndexUnreadable
        raise IndexUnreadable(f"{path} was written by a newer soundsift (catalog schema {schema}; this one reads "
                              f"up to {SCHEMA_VERSION}): use that soundsift with it, or upgrade this one")


def wal_pending(path: str | Path) -> bool:
    """Whether the catalog at ``path`` has a write-ahead log holding pages (``catalog.db-wal``,
    not empty): a writer has it open, or one stopped (or was copied) before checkpointing."""
    try:
        return Path(f"{path}-wal").stat().st_size > 0
    except FileNotFoundError:
        return False


def read_only_mode(engine: Engine) -> str | None:
    """How ``engine`` reads its catalog: "immutable" or "ro" (:func:`_read_only_engine`), or None
    (read-write, in a folder this process can write)."""
    query = engine.url.query
    return "immutable" if query.get("immutable") == "1" else "ro" if query.get("mode") == "ro" else None


def _read_only_engine(path: Path) -> Engine:
    """A read-only engine on the catalog at ``path``, in a folder this process cannot write.

    SQLite opens a WAL database read-only only where its -shm and -wal files exist or can be
    created, or with the URI parameter ``immutable=1`` (sqlite.org/wal.html, "WAL databases in
    read-only directories"); a finished index has neither file (the last writer checkpoints the
    log and removes both when it closes), so:

    * no pending log: ``mode=ro&immutable=1``. Immutable promises SQLite that nobody changes the
      file while it is open, so it takes no locks and needs no -shm. A folder this process cannot
      write has no writer through it; a writer that starts later through a writable path to the
      same folder (a read-only bind mount of a writable one) writes a -wal first and changes the
      file when it checkpoints, and engine.live_catalog reopens the catalog on either (as below
      while the log is there). A writer on another machine cannot share a WAL catalog with any
      reader (its -shm is one host's shared memory), so immutable loses nothing there.
    * a pending log (:func:`wal_pending`): ``mode=ro``, which reads the log through the existing
      -shm (SQLite ≥ 3.22) and follows each commit; immutable would ignore the log and read stale
      or half-checkpointed pages.

    The URI is made here and percent-encoded, as SQLite wants it (SQLAlchemy would decode a
    folder name holding "?", "#" or "%" into another file's); the engine's URL only records the
    mode. IndexReadOnly when even so the catalog cannot be read (a -wal without its -shm).
    """
    from engine.errors import IndexReadOnly

    params = {"mode": "ro"} if wal_pending(path) else {"mode": "ro", "immutable": "1"}
    uri = f"file:{quote(str(path.absolute()))}?" + "&".join(f"{k}={v}" for k, v in params.items())
    engine = create_engine(URL.create("sqlite", database=str(path), query={**params, "uri": "true"}),
                           creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))
    event.listen(engine, "connect", _sqlite_pragmas)
    try:
        check_catalog(engine, path)
    except DBAPIError as e:
        engine.dispose()
        unfinished = ("" if "immutable" in params else
                      f"; its write-ahead log {path.name}-wal was left unfinished: open the index once where "
                      "its folder can be written, or copy it to a folder you can write")
        raise IndexReadOnly(f"index {path.parent}: the folder is read-only and its catalog cannot be read "
                            f"here ({e.orig}){unfinished}") from e
    except BaseException:
        engine.dispose()
        raise
    _report_damage(engine, path)
    log.debug("%s: the folder is read-only; catalog opened with %s", path.parent, uri)
    return engine


def has_table(conn: Any, name: str) -> bool:
    """Whether the catalog behind ``conn`` (a Connection or Session) has table ``name``: a
    catalog written by an older soundsift may lack a newer table until its next index run."""
    return conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n"),
                        {"n": name}).first() is not None


#: ids per IN (...) list (SQLite builds may take as few as 999 parameters a query)
SQL_CHUNK = 900


def stored_metadata(conn: Any, file_ids: Any, keys: Any) -> dict[int, dict[str, str]]:
    """File id → {key: value} of the metadata ``keys`` the catalog holds for each of ``file_ids``
    that has some (asked in chunks); none for a catalog from before metadata was stored.
    ``conn``: a Connection or Session."""
    if not len(file_ids) or not has_table(conn, "file_metadata"):
        return {}
    wanted = sorted(set(int(f) for f in file_ids))
    found: dict[int, dict[str, str]] = {}
    for i in range(0, len(wanted), SQL_CHUNK):
        for fid, key, value in conn.execute(select(FileMetadata.file_id, FileMetadata.key, FileMetadata.value).where(
                FileMetadata.key.in_(tuple(keys)), FileMetadata.file_id.in_(wanted[i:i + SQL_CHUNK]))):
            found.setdefault(fid, {})[key] = value
    return found


def get_meta(session: Session) -> dict[str, Any]:
    """All metadata as a dict of decoded JSON values."""
    return {m.key: json.loads(m.value) for m in session.scalars(select(Meta))}


def set_meta(session: Session, **values: Any) -> None:
    """Insert or replace metadata keys (JSON-encoded); the caller commits."""
    for key, value in values.items():
        session.merge(Meta(key=key, value=json.dumps(value)))

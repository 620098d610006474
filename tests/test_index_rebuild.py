"""`soundsift index --rebuild`: re-embed an index with another (or a changed) model and swap it in.

The fake models (tests/index_fakes.py) keep the library tests fast; the CLI tests use the
tiny CLAP folders, with the bundled name 'soundsift-base' pointed at them to replay what a
user sees when soundsift-base is retrained.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from engine.catalog import Caption, File, SegmentRow, Tag
from engine.errors import IndexBusy, IndexNotFound, ModelMismatch, RebuildFailed
from engine.layout import IndexLayout
from engine.query import SoundIndex
from indexer import build_index
from indexer import rebuild as rebuilding
from indexer import swap
from indexer.info import index_info
from indexer.write import IndexWriter, WriterLock
from tests.conftest import catalog_session, chirp, noise, tone, write
from tests.index_fakes import FakeModel, WideModel, kill_a_rebuild
from tests.test_index_swap import break_exchange, needs_exchange
from ui.cli import app

SR = 16000


def model_a() -> FakeModel:
    return FakeModel(name="fake", fingerprint="fake-v1")


def model_b() -> WideModel:
    return WideModel(name="wide", fingerprint="wide-v1")


@pytest.fixture
def lib(tmp_path) -> Path:
    lib = tmp_path / "lib"
    write(lib / "keep.wav", chirp(200, 3000, 3.0, SR), SR)
    write(lib / "tagged_by_model.wav", tone(440, 2.5, SR), SR)
    write(lib / "changed.wav", noise(1.5, SR, seed=1), SR)
    write(lib / "gone.wav", tone(1000, 0.5, SR), SR)
    return lib.resolve()


def segments_by_path(idx: Path) -> dict[str, list[tuple[float, float]]]:
    with catalog_session(idx) as s:
        out: dict[str, list[tuple[float, float]]] = {}
        for path, a, b in s.execute(select(File.path, SegmentRow.start, SegmentRow.end)
                                    .join(SegmentRow).order_by(SegmentRow.id)):
            out.setdefault(path, []).append((a, b))
        return out


def notes(idx: Path) -> tuple[dict[str, set], dict[str, set]]:
    """Tags (label, score, source) and captions (text, source) of every file, by file name."""
    with catalog_session(idx) as s:
        tags: dict[str, set] = {}
        for path, label, score, source in s.execute(
                select(File.path, Tag.label, Tag.score, Tag.source).join(Tag)):
            tags.setdefault(Path(path).name, set()).add((label, score, source))
        caps: dict[str, set] = {}
        for path, text, source in s.execute(select(File.path, Caption.text, Caption.source).join(Caption)):
            caps.setdefault(Path(path).name, set()).add((text, source))
        return tags, caps


def add_notes(idx: Path) -> None:
    """What `soundsift caption --index` and a user would have stored: every source there is."""
    with catalog_session(idx, write=True) as s:
        ids = {Path(p).name: i for i, p in s.execute(select(File.id, File.path))}
        s.add_all([
            Tag(file_id=ids["keep.wav"], label="sweep", score=0.9, source="yamnet"),
            Tag(file_id=ids["keep.wav"], label="my favourite", score=1.0, source="user"),
            Caption(file_id=ids["keep.wav"], text="a rising sweep", source="blat"),
            Caption(file_id=ids["keep.wav"], text="the intro whoosh", source="user"),
            Tag(file_id=ids["tagged_by_model.wav"], label="beep", score=0.7, source="yamnet"),
            Tag(file_id=ids["tagged_by_model.wav"], label="sine", score=0.6, source="zeroshot"),
            Caption(file_id=ids["tagged_by_model.wav"], text="a beep and a sine", source="blat"),
            Caption(file_id=ids["tagged_by_model.wav"], text="test tone", source="user"),
            Tag(file_id=ids["changed.wav"], label="noise", score=0.8, source="yamnet"),
            Caption(file_id=ids["changed.wav"], text="hiss", source="user"),
            Tag(file_id=ids["gone.wav"], label="beep", score=0.5, source="user"),
            Caption(file_id=ids["gone.wav"], text="short beep", source="user"),
        ])


@pytest.fixture
def built(lib, tmp_path) -> Path:
    """An index of ``lib`` made with model A, with tags and captions of every source."""
    idx = tmp_path / "idx"
    build_index([lib], idx, model_a(), workers=0, progress=False)
    add_notes(idx)
    return idx


def folder_bytes(folder: Path, but: tuple[str, ...] = ()) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name not in but}


def leftovers(idx: Path) -> list[str]:
    return sorted(p.name for p in idx.parent.iterdir() if p.name.startswith(idx.name + "."))


def top_path(idx: Path, model: FakeModel, audio: Path) -> str:
    with SoundIndex.open(idx, model=model) as index:
        return index.search_audio(audio, k=1)[0].path


# -- (a) rebuild with another model ------------------------------------------------------------
def test_rebuild_with_another_model_re_embeds_and_carries_notes_over(built, lib, tmp_path):
    idx = built
    old_generation = index_info(idx)["generation"]
    (lib / "gone.wav").unlink()
    write(lib / "changed.wav", noise(2.0, SR, seed=2), SR)          # new content, size and mtime
    write(lib / "new.flac", chirp(300, 900, 1.2, SR), SR)

    s = build_index([lib], idx, model_b(), workers=0, progress=False, rebuild=True)

    assert s.rebuild and (s.previous_model, s.previous_model_fingerprint) == ("fake", "fake-v1")
    assert (s.model, s.model_fingerprint) == ("wide", "wide-v1")
    assert (s.added, s.updated, s.removed, s.unchanged, s.failed) == (1, 3, 1, 0, 0)
    info = index_info(idx)
    assert (info["model_name"], info["model_fingerprint"], info["dim"]) == ("wide", "wide-v1", 12)
    assert info["generation"] == s.generation == old_generation + 1
    # segments follow B's 1 s window: exactly what a fresh index built with B holds
    fresh = tmp_path / "fresh"
    build_index([lib], fresh, model_b(), workers=0, progress=False)
    assert segments_by_path(idx) == segments_by_path(fresh)
    assert len(segments_by_path(idx)[str(lib / "keep.wav")]) == 5      # 3 s, 1 s windows every 0.5 s
    assert info["counts"]["segments"] == s.n_segments == sum(map(len, segments_by_path(fresh).values()))
    # searchable with B, refused with A
    for name in ("keep.wav", "changed.wav", "new.flac"):
        assert top_path(idx, model_b(), lib / name) == str(lib / name)
    with pytest.raises(ModelMismatch):
        SoundIndex.open(idx, model=model_a())
    # tags and captions: unchanged files keep theirs, except what model A derived; the file
    # edited since keeps the user's caption, not the YAMNet tag of its old audio
    tags, caps = notes(idx)
    assert tags == {"keep.wav": {("sweep", 0.9, "yamnet"), ("my favourite", 1.0, "user")},
                    "tagged_by_model.wav": {("beep", 0.7, "yamnet")}}
    assert caps == {"keep.wav": {("a rising sweep", "blat"), ("the intro whoosh", "user")},
                    "tagged_by_model.wav": {("test tone", "user")}, "changed.wav": {("hiss", "user")}}
    assert s.carried_over == {"tags": 3, "captions": 4}
    assert s.not_carried_over == {"tags": 3, "captions": 2}   # zero-shot + changed's YAMNet + gone
    assert leftovers(idx) == []


def test_rebuild_of_a_folder_that_is_no_index_yet_builds_it(lib, tmp_path):
    s = build_index([lib], tmp_path / "new", model_b(), workers=0, progress=False, rebuild=True)
    assert not s.rebuild and s.added == 4 and s.generation == 1
    assert index_info(tmp_path / "new")["model_fingerprint"] == "wide-v1"


def test_rebuild_without_model_takes_the_default_not_the_index_model(built, lib, monkeypatch):
    import engine.models
    seen = []

    def load(name=None):
        seen.append(name)
        return model_b()
    monkeypatch.setattr(engine.models, "load_model", load)
    build_index([lib], built, workers=0, progress=False, rebuild=True)
    assert seen == [engine.models.DEFAULT_MODEL]
    assert index_info(built)["model_fingerprint"] == "wide-v1"


# -- (b) a failed or interrupted rebuild leaves the old index as it was ------------------------
def fail_embed(monkeypatch, exc: BaseException) -> None:
    real = WideModel.embed_audio
    calls = []

    def embed(self, waveforms):
        calls.append(len(waveforms))
        if len(calls) == 2:
            raise exc
        return real(self, waveforms)
    monkeypatch.setattr(WideModel, "embed_audio", embed)


def fail_second_commit(monkeypatch) -> None:
    real = IndexWriter.commit
    calls = []

    def commit(self, changes, meta):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, changes, meta)
    monkeypatch.setattr(IndexWriter, "commit", commit)


def fail_swap(monkeypatch) -> None:
    """The two-rename swap (where there is no atomic exchange) fails halfway."""
    break_exchange(monkeypatch, "missing")
    real = os.rename

    def rename(src, dst):           # the old index is moved aside, the new one cannot follow
        if rebuilding.REBUILD_SUFFIX in str(src):
            raise OSError(13, "Permission denied")
        return real(src, dst)
    monkeypatch.setattr(rebuilding.os, "rename", rename)


@pytest.mark.parametrize("where", ["embed", "commit", "carry_over", "swap", "fallback swap"])
def test_a_failed_rebuild_leaves_the_old_index_untouched(built, lib, monkeypatch, where):
    idx = built
    before = folder_bytes(idx)
    expected = {p.name: top_path(idx, model_a(), p) for p in lib.iterdir()}
    if where == "embed":
        fail_embed(monkeypatch, RuntimeError("CUDA out of memory"))
    elif where == "commit":
        fail_second_commit(monkeypatch)
    elif where == "carry_over":
        def broken(*a, **kw):
            raise RuntimeError("database disk image is malformed")
        monkeypatch.setattr(rebuilding, "carry_over", broken)
    elif where == "swap":
        break_exchange(monkeypatch, "EACCES")           # the atomic exchange fails
    else:
        fail_swap(monkeypatch)
    with pytest.raises(RebuildFailed) as e:
        build_index([lib], idx, model_b(), workers=0, batch_size=1, checkpoint_files=1,
                    progress=False, rebuild=True)
    msg = str(e.value)
    assert f"rebuilding {idx} failed" in msg and "the index is unchanged" in msg
    assert "model 'fake', 4 files" in msg and "was removed" in msg
    assert e.value.__cause__ is not None
    assert folder_bytes(idx) == before and leftovers(idx) == []
    assert {p.name: top_path(idx, model_a(), p) for p in lib.iterdir()} == expected
    assert notes(idx)[0]["keep.wav"]                              # and its notes are still there


def test_ctrl_c_during_a_rebuild_leaves_the_old_index_untouched(built, lib, monkeypatch, caplog):
    before = folder_bytes(built)
    fail_embed(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        build_index([lib], built, model_b(), workers=0, batch_size=1, checkpoint_files=1,
                    progress=False, rebuild=True)
    assert folder_bytes(built) == before and leftovers(built) == []
    assert "the rebuild of" in caplog.text and "abandoned" in caplog.text and "was removed" in caplog.text
    assert index_info(built)["model_fingerprint"] == "fake-v1"


@pytest.fixture
def default_sigint():
    """Ctrl-C raises KeyboardInterrupt in this process, as in a terminal, even when the test runner
    was started with SIGINT ignored (a background job without job control inherits SIG_IGN)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("how", [pytest.param("exchange", marks=needs_exchange), "two renames"])
def test_ctrl_c_during_the_swap_finishes_it_and_says_the_rebuilt_index_is_in_place(
        built, lib, monkeypatch, caplog, how, default_sigint):
    """A SIGINT that lands after the folders were swapped must neither delete the old index
    as a failed rebuild's temporary folder nor claim the index is unchanged."""
    def interrupt() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)                                   # let a default handler act here
    if how == "exchange":
        real_set_aside = rebuilding._set_aside

        def set_aside(*args):
            interrupt()                                    # right after the exchange
            return real_set_aside(*args)
        monkeypatch.setattr(rebuilding, "_set_aside", set_aside)
    else:
        break_exchange(monkeypatch, "EINVAL")
        real_rename = os.rename

        def rename(src, dst):
            real_rename(src, dst)
            if Path(dst).name == "idx":                    # the rebuilt index moved into place
                interrupt()
        monkeypatch.setattr(rebuilding.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
    assert index_info(built)["model_fingerprint"] == "wide-v1"
    assert leftovers(built) == []
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "is unchanged" not in warnings and "abandoned" not in warnings
    assert "interrupted during the swap" in warnings and "holds the rebuilt index" in warnings
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler     # handler restored


def test_a_killed_rebuild_leaves_the_old_index_and_the_next_one_cleans_up(built, lib, tmp_path):
    before = folder_bytes(built, but=(".lock",))      # a killed writer leaves its pid in .lock
    tmp = kill_a_rebuild(lib, built)
    assert folder_bytes(built, but=(".lock",)) == before and leftovers(built) == [tmp.name]
    assert top_path(built, model_a(), lib / "keep.wav") == str(lib / "keep.wav")
    s = build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
    assert s.rebuild and leftovers(built) == []
    assert index_info(built)["model_fingerprint"] == "wide-v1"


# -- (c) the writer lock is held for the whole rebuild -----------------------------------------
def test_the_writer_lock_is_held_from_start_to_swap(built, lib, monkeypatch):
    layout = IndexLayout(built)
    seen = []
    real_embed = WideModel.embed_audio

    def embed(self, waveforms):
        if not seen:                    # mid-rebuild: no other writer; readers see the old index
            with pytest.raises(IndexBusy, match=str(os.getpid())):
                build_index([lib], built, model_a(), workers=0, progress=False)
            with pytest.raises(IndexBusy):
                build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
            assert top_path(built, model_a(), lib / "keep.wav") == str(lib / "keep.wav")
            seen.append("embed")
        return real_embed(self, waveforms)

    real_remove = rebuilding._remove_tree

    def remove(path):
        if rebuilding.REPLACED_SUFFIX in path.name:    # swapped in, old one not yet deleted
            with pytest.raises(IndexBusy):
                WriterLock(layout.lock).acquire()
            assert index_info(built)["model_fingerprint"] == "wide-v1"
            seen.append("swap")
        real_remove(path)

    monkeypatch.setattr(WideModel, "embed_audio", embed)
    monkeypatch.setattr(rebuilding, "_remove_tree", remove)
    build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
    assert seen == ["embed", "swap"]
    with WriterLock(layout.lock):                      # released afterwards
        pass


def test_a_rebuild_of_a_busy_index_is_refused_before_any_work(built, lib):
    with WriterLock(IndexLayout(built).lock):
        with pytest.raises(IndexBusy):
            build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
    assert leftovers(built) == [] and index_info(built)["model_fingerprint"] == "fake-v1"


# -- what a rebuild would lose is refused up front ---------------------------------------------
def test_files_outside_the_given_paths_are_not_dropped(built, lib, tmp_path):
    other = tmp_path / "other"
    write(other / "x.wav", tone(300, 1.0, SR), SR)
    build_index([other], built, model_a(), workers=0, progress=False)
    before = folder_bytes(built)
    with pytest.raises(RebuildFailed, match=r"also holds 1 file outside the given paths .*other"):
        build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
    assert folder_bytes(built) == before and leftovers(built) == []
    s = build_index([lib, other], built, model_b(), workers=0, progress=False, rebuild=True)
    assert s.totals["files"] == 5


def test_a_missing_path_or_a_foreign_file_is_refused(built, lib, tmp_path):
    with pytest.raises(RebuildFailed, match="no such file or folder.*unmounted"):
        build_index([tmp_path / "unplugged"], built, model_b(), progress=False, rebuild=True)
    (built / "notes.txt").write_text("mine")
    with pytest.raises(RebuildFailed, match=r"holds entries soundsift did not write \(notes.txt\)"):
        build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
    assert (built / "notes.txt").read_text() == "mine" and leftovers(built) == []


def test_files_in_a_folder_that_cannot_be_listed_are_not_dropped(built, lib, monkeypatch):
    from indexer.scan import ScanError
    write(lib / "sub" / "x.wav", tone(300, 1.0, SR), SR)
    build_index([lib], built, model_a(), workers=0, progress=False)
    before = folder_bytes(built)
    sub = str(lib / "sub")
    real_scan = rebuilding.scan             # the rebuild walks before it refuses what it would lose

    def scan_without_sub(paths):            # as when sub/ turns unreadable (root ignores chmod)
        result = real_scan(paths)
        result.files = {p: f for p, f in result.files.items() if not p.startswith(sub + os.sep)}
        result.errors.append(ScanError(sub, "cannot list folder: permission denied", folder=True))
        return result
    monkeypatch.setattr(rebuilding, "scan", scan_without_sub)
    with pytest.raises(RebuildFailed, match=r"could not list .*sub \(cannot list folder: permission "
                                            r"denied; 1 indexed file\).*the index is unchanged"):
        build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
    assert folder_bytes(built) == before and leftovers(built) == []


def test_a_swap_killed_halfway_is_reported_not_papered_over(built, lib):
    aside = built.with_name(built.name + ".replaced-4242")
    built.rename(aside)                                  # as if killed between the two renames
    with pytest.raises(IndexNotFound, match=r"\.replaced-4242 holds it as it was before a rebuild"):
        build_index([lib], built, model_b(), workers=0, progress=False)
    assert not built.exists()


# -- the swap: one atomic exchange where the filesystem has it, two renames where not ----------
class Reader(threading.Thread):
    """A reader of the index path in a thread of its own; :meth:`look` has it look now."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.asks: queue.Queue[str | None] = queue.Queue()
        self.seen: list[tuple[str, bool, str]] = []     # (step, path exists, fingerprint or error)

    def run(self) -> None:
        while (step := self.asks.get()) is not None:
            exists = self.root.exists()
            try:
                found = index_info(self.root)["model_fingerprint"]
            except Exception as e:  # noqa: BLE001 - what a reader would get, asserted below
                found = type(e).__name__
            self.seen.append((step, exists, found))
            self.asks.task_done()

    def look(self, step: str) -> None:
        self.asks.put(step)
        self.asks.join()


@pytest.mark.parametrize("how", [pytest.param("atomic", marks=needs_exchange), "two renames"])
def test_a_reader_never_finds_the_index_missing_during_an_atomic_swap(built, lib, monkeypatch, how):
    """The reader looks before the swap, before and after each of its renames and syncs, and
    after it (hooks, not timing): with the exchange the path always holds an index."""
    if how == "two renames":
        break_exchange(monkeypatch, "EINVAL")          # a filesystem without RENAME_EXCHANGE
    reader = Reader(built)
    reader.start()
    swapping = threading.Event()
    real_swap, real_rename, real_fsync = rebuilding._swap, os.rename, rebuilding.fsync_dir

    def watched_swap(root, new_root):
        reader.look("before the swap")
        swapping.set()
        try:
            return real_swap(root, new_root)
        finally:
            swapping.clear()
            reader.look("after the swap")

    def rename(src, dst):
        if swapping.is_set():
            reader.look(f"before renaming {Path(src).name}")
        real_rename(src, dst)
        if swapping.is_set():
            reader.look(f"after renaming {Path(src).name}")

    def fsync_dir(folder):
        if swapping.is_set():
            reader.look("before the sync")
        real_fsync(folder)

    monkeypatch.setattr(rebuilding, "_swap", watched_swap)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(rebuilding, "fsync_dir", fsync_dir)
    try:
        build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
    finally:
        reader.asks.put(None)
        reader.join(timeout=10)
    assert reader.seen[0] == ("before the swap", True, "fake-v1")
    assert reader.seen[-1] == ("after the swap", True, "wide-v1")
    assert len(reader.seen) >= 4                        # it looked between the steps too
    missing = [step for step, exists, found in reader.seen if not exists]
    if how == "atomic":
        assert missing == [], reader.seen
        assert {found for _, _, found in reader.seen} == {"fake-v1", "wide-v1"}, reader.seen
    else:                                               # the moment the exchange does away with
        assert missing == [f"after renaming {built.name}",
                           f"before renaming {built.name}{rebuilding.REBUILD_SUFFIX}{os.getpid()}"]
    assert leftovers(built) == []


def rebuilt_state(idx: Path, lib: Path) -> tuple:
    info = {k: v for k, v in index_info(idx).items() if k not in ("index", "updated_at")}
    return (sorted(p.name for p in idx.iterdir()), info, notes(idx),
            top_path(idx, model_b(), lib / "keep.wav"))


@needs_exchange
@pytest.mark.parametrize("why", ["missing", "EINVAL", "ENOSYS", "EOPNOTSUPP"])
def test_without_the_exchange_a_rebuild_swaps_with_two_renames_to_the_same_end(
        built, lib, tmp_path, monkeypatch, caplog, why):
    twin = tmp_path / "twin" / "idx"
    shutil.copytree(built, twin)
    exchanged = []
    real_lookup = swap._renameat2

    def lookup():
        exchanged.append(1)
        return real_lookup()
    monkeypatch.setattr(swap, "_renameat2", lookup)
    build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
    assert exchanged == [1]                              # the atomic swap did it

    renames = []
    real_rename = os.rename

    def rename(src, dst):
        renames.append((Path(src).name, Path(dst).name))
        real_rename(src, dst)
    break_exchange(monkeypatch, why)
    monkeypatch.setattr(rebuilding.os, "rename", rename)
    with caplog.at_level(logging.DEBUG, logger="indexer.swap"):
        build_index([lib], twin, model_b(), workers=0, progress=False, rebuild=True)
    pid = os.getpid()
    assert renames == [("idx", f"idx.replaced-{pid}"), (f"idx.rebuild-{pid}", "idx")]
    assert "no atomic exchange" in caplog.text
    assert rebuilt_state(twin, lib) == rebuilt_state(built, lib)
    assert leftovers(twin) == leftovers(built) == []
    assert rebuilt_state(built, lib)[1]["model_fingerprint"] == "wide-v1"


@needs_exchange
def test_a_failure_after_the_exchange_is_reported_not_taken_for_a_failed_rebuild(
        built, lib, monkeypatch, caplog):
    """The exchange is the swap: its clean-up failing must not send the rebuild down its error
    path (which deletes the temporary folder, by then the old index, and says "unchanged")."""
    real = os.rename

    def rename(src, dst):
        if rebuilding.REPLACED_SUFFIX in Path(dst).name:
            raise OSError(13, "Permission denied")
        return real(src, dst)
    monkeypatch.setattr(rebuilding.os, "rename", rename)
    s = build_index([lib], built, model_b(), workers=0, progress=False, rebuild=True)
    assert s.rebuild and index_info(built)["model_fingerprint"] == "wide-v1"
    assert "the old index could not be moved" in caplog.text and "deleted from there" in caplog.text
    assert leftovers(built) == []                       # deleted from the temporary path


# -- (d) ModelMismatch messages give advice that works -----------------------------------------
def test_index_run_with_a_changed_model_suggests_rebuild(built, lib):
    with pytest.raises(ModelMismatch) as e:
        build_index([lib], built, FakeModel(name="fake", fingerprint="fake-v2"), progress=False)
    msg = str(e.value)
    assert "model 'fake' has changed since" in msg and "fake-v1" in msg and "fake-v2" in msg
    assert f"`soundsift index PATH... --index {built} --rebuild --model fake`" in msg
    assert "leave out --model" not in msg                    # that would fail the same way


def test_index_run_with_another_model_suggests_rebuild_or_a_new_index(built, lib):
    with pytest.raises(ModelMismatch) as e:
        build_index([lib], built, model_b(), progress=False)
    msg = str(e.value)
    assert "built with model 'fake'" in msg and "not with 'wide'" in msg
    assert "leave out --model to keep indexing it with 'fake'" in msg
    assert f"`soundsift index PATH... --index {built} --rebuild --model wide`" in msg
    assert "`soundsift index PATH... --index NEW_NAME --model wide`" in msg


def test_search_with_a_changed_model_suggests_rebuild(built):
    with pytest.raises(ModelMismatch) as e:
        SoundIndex.open(built, model=FakeModel(name="fake", fingerprint="fake-v2"))
    msg = str(e.value)
    assert "model 'fake' has changed since" in msg and "--model fake`" in msg
    assert f"`soundsift index PATH... --index {built} --rebuild --model fake`" in msg


def test_search_with_another_model_suggests_its_own_or_rebuild(built):
    with pytest.raises(ModelMismatch) as e:
        SoundIndex.open(built, model=model_b())
    msg = str(e.value)
    assert "search it with its own model (leave out --model, or pass --model fake)" in msg
    assert f"`soundsift index PATH... --index {built} --rebuild --model wide`" in msg


def test_advice_for_the_default_model_names_no_model(tmp_path):
    from engine.mismatch import mismatch_message
    changed = FakeModel(name="soundsift-base", fingerprint="659b" + "0" * 60)
    msg = mismatch_message(tmp_path / "my lib", "soundsift-base", "a847" + "1" * 60, changed,
                           searching=True)
    assert "model 'soundsift-base' has changed since" in msg and "a847" in msg and "659b" in msg
    assert f"`soundsift index PATH... --index '{tmp_path / 'my lib'}' --rebuild` (PATH...:" in msg


# -- (e) the user's case end to end: soundsift-base retrained, CLI --rebuild --json ------------
def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_retrained_default_model_cli_rebuild(tmp_path, monkeypatch, tiny_clap_dir, tiny_fused_clap_dir):
    from engine.models import factory

    lib = tmp_path / "lib"
    write(lib / "tone.wav", tone(440, 1.0, 48000), 48000)
    write(lib / "sweep.flac", chirp(100, 6000, 2.0, 22050), 22050)
    idx = tmp_path / "mylib"
    monkeypatch.setitem(factory.BUNDLED, "soundsift-base", tiny_clap_dir)   # the old weights
    r = run("index", lib, "--index", idx, "--workers", "0", "--json")
    assert r.exit_code == 0, r.output
    old_fp = json.loads(r.stdout)["model_fingerprint"]
    with catalog_session(idx, write=True) as s:
        s.add(Tag(file_id=s.scalar(select(File.id).where(File.path == str(lib.resolve() / "tone.wav"))),
                  label="beep", score=0.9, source="yamnet"))

    monkeypatch.setitem(factory.BUNDLED, "soundsift-base", tiny_fused_clap_dir)   # retrained
    r = run("search", "beep", "--index", idx)
    assert r.exit_code == 1
    msg = " ".join(r.output.split())
    assert "model 'soundsift-base' has changed since" in msg
    assert f"`soundsift index PATH... --index {idx} --rebuild` (PATH...:" in msg
    r = run("index", lib, "--index", idx, "--model", "soundsift-base")    # the old advice
    assert r.exit_code == 1 and f"--index {idx} --rebuild`" in " ".join(r.output.split())

    r = run("index", lib, "--index", idx, "--rebuild", "--workers", "0", "--json")   # the advice
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["rebuild"] is True and s["index"] == str(idx)
    assert s["model"] == "soundsift-base" and s["model_fingerprint"] != old_fp
    assert (s["previous_model"], s["previous_model_fingerprint"]) == ("soundsift-base", old_fp)
    assert (s["added"], s["updated"], s["removed"], s["failed"]) == (0, 2, 0, 0)
    assert s["carried_over"] == {"tags": 1, "captions": 0}
    assert s["not_carried_over"] == {"tags": 0, "captions": 0}
    assert s["totals"]["files"] == 2 and s["n_segments"] == 2
    assert index_info(idx)["model_fingerprint"] == s["model_fingerprint"]

    r = run("search", "beep", "--index", idx, "--json")
    assert r.exit_code == 0, r.output
    assert sorted(h["path"] for h in json.loads(r.stdout)) == sorted(str(p) for p in lib.resolve().iterdir())
    r = run("index", lib, "--index", idx, "--rebuild", "--workers", "0")      # the readable table
    assert r.exit_code == 0 and "rebuilt" in r.stdout and "carried over" in r.stdout

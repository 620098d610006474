"""A file moved over an indexed one (``mv a b`` onto an indexed b) keeps its row at its new path:
a's recording, now at b, keeps a's vectors, tags and captions and is not embedded again, and b's
recording, gone, leaves the index with its tags (a warning names them). It was taken for an edit
of b: b was embedded again and kept b's tags, on a's recording, and a's tags were dropped.

The file moved in is recognised as any move is (indexer.moves: size, modification time, audio
header and content fingerprint of a's indexed file), so a file edited in place, or a copy laid over
b while a stays, is still an edit of b."""
from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

import pytest

from engine.query import SoundIndex
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_index_moves import index, label, rows
from tests.test_index_watch import start_watcher, wait_for

BASE_NS = 1_600_000_000_000_000_000


@pytest.fixture
def lib(tmp_path) -> Path:
    lib = (tmp_path / "Library").resolve()
    write(lib / "Doors" / "a.wav", tone(440, 1.0, 16000), 16000)
    write(lib / "b.wav", noise(1.5, 16000, seed=1), 16000)
    write(lib / "c.wav", chirp(200, 900, 2.0, 16000), 16000)
    for i, path in enumerate((lib / "Doors" / "a.wav", lib / "b.wav", lib / "c.wav")):
        os.utime(path, ns=(BASE_NS + 1_234_567_891 + i * 7_777_777_777,) * 2)    # distinct, none on a 2 s mark
    return lib


def tagged(idx: Path, lib: Path, a: str = "Doors/a.wav") -> dict[str, dict]:
    """Index ``lib`` into ``idx`` and give a (at ``a``), b and c a tag and caption of the user's each."""
    index([lib], idx)
    for name, tag in ((a, "tone"), ("b.wav", "rain"), ("c.wav", "sweep")):
        label(idx, lib / name, tag, f"the {tag}")
    return rows(idx)


@pytest.mark.parametrize("source", ["b_take.wav", "Doors/a.wav"], ids=["same folder", "from another folder"])
def test_a_file_moved_over_an_indexed_one_keeps_its_row_and_the_other_leaves(lib, tmp_path, caplog, source):
    idx = tmp_path / "idx"
    if source != "Doors/a.wav":
        os.rename(lib / "Doors" / "a.wav", lib / source)
    before = tagged(idx, lib, source)
    os.replace(lib / source, lib / "b.wav")                    # mv a b: b's recording is gone

    model = FakeModel()
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        s = index([lib], idx, model)
    assert model.calls == []                                  # nothing embedded again
    assert (s.moved, s.updated, s.added, s.removed, s.unchanged, s.failed) == (1, 0, 0, 1, 1, 0)
    after = rows(idx)
    assert set(after) == {str(lib / "b.wav"), str(lib / "c.wav")}
    assert after[str(lib / "b.wav")] == {**before[str(lib / source)], "mtime_ns": os.stat(lib / "b.wav").st_mtime_ns}
    assert after[str(lib / "b.wav")]["tags"] == [("tone", "user")]       # a's, not b's
    said = " ".join(r.getMessage() for r in caplog.records if "tags or captions" in r.getMessage())
    assert f"{lib / 'b.wav'} (rain, caption: the rain): overwritten by {lib / source}, moved there" in said

    with SoundIndex.open(idx, model=FakeModel()) as si:        # the tone's vectors answer at b
        hit = si.similar_to_file(str(lib / "b.wav"), k=1)[0]
        assert hit.path == str(lib / "b.wav") and hit.score == pytest.approx(1.0, abs=1e-5)
    model = FakeModel()                                        # and the next run sees nothing to do
    s = index([lib], idx, model)
    assert model.calls == [] and (s.moved, s.added, s.updated, s.removed, s.unchanged) == (0, 0, 0, 0, 2)


def test_a_chain_onto_an_indexed_file_keeps_the_rows_that_moved(lib, tmp_path):
    """``mv b c; mv a b`` with c indexed: a's row goes to b, b's to c, and c's recording is gone."""
    idx = tmp_path / "idx"
    before = tagged(idx, lib)
    os.replace(lib / "b.wav", lib / "c.wav")
    os.rename(lib / "Doors" / "a.wav", lib / "b.wav")
    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls == [] and (s.moved, s.updated, s.added, s.removed) == (2, 0, 0, 1)
    after = rows(idx)
    assert set(after) == {str(lib / "b.wav"), str(lib / "c.wav")}
    assert after[str(lib / "b.wav")]["id"] == before[str(lib / "Doors" / "a.wav")]["id"]
    assert after[str(lib / "c.wav")]["id"] == before[str(lib / "b.wav")]["id"]
    assert (after[str(lib / "b.wav")]["tags"], after[str(lib / "c.wav")]["tags"]) == ([("tone", "user")],
                                                                                      [("rain", "user")])


def test_a_move_over_an_indexed_file_onto_a_drive_with_coarser_times(lib, tmp_path):
    """The moved file's time as a FAT or network drive keeps it (rounded to 2 s) is still its
    time, where its content fingerprint agrees (indexer.moves.kept_time)."""
    idx = tmp_path / "idx"
    before = tagged(idx, lib)
    a = lib / "Doors" / "a.wav"
    rounded = (os.stat(a).st_mtime_ns // 2_000_000_000) * 2_000_000_000
    assert rounded != os.stat(a).st_mtime_ns
    os.replace(a, lib / "b.wav")
    os.utime(lib / "b.wav", ns=(rounded, rounded))
    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls == [] and (s.moved, s.updated, s.removed) == (1, 0, 1)
    assert rows(idx)[str(lib / "b.wav")]["id"] == before[str(a)]["id"]


def test_a_copy_laid_over_an_indexed_file_while_the_original_stays_is_an_edit(lib, tmp_path):
    """``cp -p a b``: a is still there, so b's new file is a copy, not a's recording moved; b is
    updated (given a's vectors, an identical copy: indexer.same_file) and keeps b's tags, and a
    keeps its own."""
    idx = tmp_path / "idx"
    before = tagged(idx, lib)
    shutil.copy2(lib / "Doors" / "a.wav", lib / "b.wav")
    model = FakeModel()
    s = index([lib], idx, model)
    assert not model.calls and (s.moved, s.updated, s.added, s.removed, s.unchanged) == (0, 1, 0, 0, 2)
    assert s.same_audio == 1
    after = rows(idx)
    assert after[str(lib / "b.wav")]["tags"] == [("rain", "user")]
    assert after[str(lib / "Doors" / "a.wav")] == before[str(lib / "Doors" / "a.wav")]


@pytest.mark.parametrize("how", ["edited in place", "moved over, then edited"])
def test_a_file_edited_in_place_beside_a_deleted_one_is_still_an_edit(lib, tmp_path, how):
    """b's new file is no indexed file's old one (re-rendered, or a's moved there and then edited):
    b is embedded again and keeps b's tags; a, gone, leaves with its tags."""
    idx = tmp_path / "idx"
    tagged(idx, lib)
    a, b = lib / "Doors" / "a.wav", lib / "b.wav"
    if how == "edited in place":
        a.unlink()
        write(b, noise(1.5, 16000, seed=1) * 0.5, 16000)
    else:
        os.replace(a, b)
        write(b, tone(440, 1.0, 16000, amp=0.25), 16000)
    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls and (s.moved, s.updated, s.added, s.removed) == (0, 1, 0, 1)
    after = rows(idx)
    assert set(after) == {str(b), str(lib / "c.wav")} and after[str(b)]["tags"] == [("rain", "user")]


def test_the_watcher_keeps_the_row_of_a_file_moved_over_an_indexed_one(lib, tmp_path):
    idx = tmp_path / "idx"
    before = tagged(idx, lib)
    summaries, stop, model = [], threading.Event(), FakeModel()
    watcher = start_watcher(lib, idx, model, summaries, stop)
    try:
        wait_for(lambda: len(summaries) == 1)
        os.replace(lib / "Doors" / "a.wav", lib / "b.wav")
        wait_for(lambda: len(summaries) == 2)
    finally:
        stop.set()
        watcher.join(30)
    assert not watcher.is_alive() and model.calls == []
    assert (summaries[1].moved, summaries[1].removed, summaries[1].updated) == (1, 1, 0)
    assert rows(idx)[str(lib / "b.wav")]["id"] == before[str(lib / "Doors" / "a.wav")]["id"]


# -- a case-insensitive file system (macOS, FAT, exFAT, SMB): a root typed in another case ------

def case_insensitive_view(monkeypatch, folder: Path) -> None:
    """Make ``folder`` answer to any spelling of its name, as on a case-insensitive file system
    (the paths existence and identity are asked by: os.path.lexists, os.path.samefile)."""
    real_lexists, real_samefile = os.path.lexists, os.path.samefile
    low = str(folder).lower()

    def fold(p) -> str:
        p = os.fspath(p)
        inside = p.lower().startswith(low) and (len(p) == len(low) or p[len(low)] == os.sep)
        return str(folder) + p[len(low):] if inside else p

    monkeypatch.setattr(os.path, "lexists", lambda p: real_lexists(fold(p)))
    monkeypatch.setattr(os.path, "samefile", lambda a, b: real_samefile(fold(a), fold(b)))


def test_a_root_typed_in_another_case_is_the_indexed_folder(lib, tmp_path, monkeypatch):
    """``soundsift index ~/sounds`` for ~/Sounds on macOS: realpath keeps the typed case, so every
    file was a new one beside its indexed self (embedded again, the index holding it twice), and
    `tags add ~/sounds/x.wav` named no indexed file. Paths are now spelt as the folders list them."""
    from indexer.scan import normalize_root
    from indexer.user_tags import add_tags

    idx = tmp_path / "idx"
    before = tagged(idx, lib)
    typed = lib.parent / lib.name.lower()
    case_insensitive_view(monkeypatch, lib)
    assert os.path.lexists(typed) and normalize_root(typed / "b.wav") == str(lib / "b.wav")
    model = FakeModel()
    s = index([typed], idx, model)
    assert model.calls == [] and (s.added, s.removed, s.unchanged, s.failed) == (0, 0, 3, 0)
    assert rows(idx) == before
    change = add_tags(idx, [typed / "c.wav"], ["keeper"])
    assert change.files == 1 and change.not_indexed == []


def test_a_root_renamed_only_in_case_is_pointed_at_relocate(lib, tmp_path, monkeypatch, caplog):
    """``mv Library library`` on a case-insensitive drive: the old paths still open, so the run
    took them for there and did not name `soundsift relocate`, which keeps the rows."""
    idx = tmp_path / "idx"
    tagged(idx, lib)
    renamed = lib.parent / lib.name.lower()
    os.rename(lib, renamed)
    case_insensitive_view(monkeypatch, renamed)
    assert os.path.lexists(lib / "b.wav")                      # the old spelling still opens
    with caplog.at_level(logging.WARNING, logger="indexer.moves"):
        index([renamed], idx)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"soundsift relocate {lib} {renamed} --index" in said


def test_a_case_sensitive_drive_keeps_paths_as_typed(tmp_path):
    """Where names differing in case are different folders (Linux), nothing is respelt, and a
    spelling no folder has is kept as typed (not an error)."""
    from indexer.scan import normalize_root

    for name in ("take", "TAKE"):                               # each the other's other-case spelling
        (tmp_path / name).mkdir()
    root = tmp_path.resolve()
    names = ("take", "TAKE", "Take")
    assert [normalize_root(root / n) for n in names] == [str(root / n) for n in names]


# -- a move that gives a file another sidecar cue sheet ------------------------------------------

def test_a_file_moved_away_from_its_cue_sheet_or_beside_one_is_cut_again_in_that_run(tmp_path):
    """The takes a sidecar cue sheet cut (engine.cue_sheet) follow the sheet: a file renamed away
    from its sheet, or moved beside a sheet that names it, is embedded again in the run that moves
    it, keeping its tags. The moved row kept the old takes until a later run (under --watch, until
    something else changed)."""
    from engine.query import SoundIndex
    from tests.test_cue_sheets import DISC, DISC_TAKES, WINDOWS, spans

    lib, idx = (tmp_path / "lib").resolve(), tmp_path / "idx"
    disc = write(lib / "disc12.wav", noise(6.0, 16000, seed=4), 16000)
    (lib / "disc12.cue").write_text(DISC)

    def segments(path: Path) -> dict:
        with SoundIndex.open(idx, model=FakeModel()) as si:
            return spans(si, path)
    index([lib], idx)
    label(idx, disc, "keeper", "dogs and rain")
    assert segments(disc) == {**dict.fromkeys(WINDOWS), **DISC_TAKES}

    dogs = lib / "dogs.wav"
    os.rename(disc, dogs)                                      # the sheet names disc12.wav: not this
    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls and (s.moved, s.updated, s.added, s.removed) == (1, 1, 0, 0)
    assert segments(dogs) == dict.fromkeys(WINDOWS)
    assert rows(idx)[str(dogs)]["tags"] == [("keeper", "user")]
    assert (index([lib], idx).updated, index([lib], idx).unchanged) == (0, 1)

    (lib / "Discs").mkdir()                                    # into a folder, back beside its sheet
    os.rename(dogs, lib / "Discs" / "disc12.wav")
    os.rename(lib / "disc12.cue", lib / "Discs" / "disc12.cue")
    s = index([lib], idx)
    assert (s.moved, s.updated) == (1, 1)
    assert segments(lib / "Discs" / "disc12.wav") == {**dict.fromkeys(WINDOWS), **DISC_TAKES}

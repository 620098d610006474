"""Moved and renamed files keep their vectors, tags and captions (indexer.moves), and
`soundsift relocate` follows a library to another folder or mount point (indexer.relocate)."""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from engine.catalog import Caption, ErrorRow, File, SegmentRow, Tag
from engine.errors import IndexNotFound, RelocationFailed
from engine.query import SoundIndex
from indexer import build_index
from indexer.moves import Header, find_moves, kept_time
from indexer.relocate import relocate
from indexer.scan import ScannedFile
from tests.conftest import catalog_session, chirp, noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app


@pytest.fixture
def lib(tmp_path) -> Path:
    lib = (tmp_path / "Library").resolve()
    write(lib / "Doors" / "door_slam.wav", noise(1.5, 16000, seed=1), 16000)
    write(lib / "Doors" / "door_creak.flac", chirp(200, 900, 2.0, 22050), 22050)
    write(lib / "Misc" / "beep.wav", tone(880, 0.5, 44100), 44100)
    write(lib / "Misc" / "hum.ogg", tone(60, 3.0, 48000), 48000)
    write(lib / "rain.wav", np.stack([noise(4.0, 48000, seed=2), noise(4.0, 48000, seed=3)], 1), 48000)
    (lib / "Misc" / "broken.wav").write_text("not audio")
    return lib


def index(paths, idx: Path, model: FakeModel | None = None):
    return build_index([str(p) for p in paths], idx, model or FakeModel(), workers=0, progress=False)


def rows(idx: Path) -> dict[str, dict]:
    """path → id, segment ids, tags, captions of every indexed file."""
    with catalog_session(idx) as s:
        out = {}
        for f in s.scalars(select(File)):
            out[f.path] = {
                "id": f.id, "mtime_ns": f.mtime_ns,
                "segments": list(s.scalars(select(SegmentRow.id).where(SegmentRow.file_id == f.id)
                                           .order_by(SegmentRow.id))),
                "tags": sorted(s.execute(select(Tag.label, Tag.source).where(Tag.file_id == f.id)).all()),
                "captions": sorted(s.scalars(select(Caption.text).where(Caption.file_id == f.id)))}
        return out


def error_paths(idx: Path) -> list[str]:
    with catalog_session(idx) as s:
        return sorted(s.scalars(select(ErrorRow.path)))


def label(idx: Path, path: Path, tag: str, caption: str) -> None:
    """The user's own tag and caption on ``path`` (what `soundsift caption --index` stores)."""
    with catalog_session(idx, write=True) as s:
        fid = s.scalar(select(File.id).where(File.path == str(path)))
        s.add(Tag(file_id=fid, label=tag, score=1.0, source="user"))
        s.add(Caption(file_id=fid, text=caption, source="user"))


def test_moved_and_renamed_files_keep_their_rows_and_nothing_is_embedded_again(lib, tmp_path):
    idx = tmp_path / "idx"
    first = index([lib], idx)
    label(idx, lib / "Doors" / "door_slam.wav", "slam", "a heavy wooden door slammed shut")
    before = rows(idx)
    (lib / "Foley" / "Doors").mkdir(parents=True)
    os.rename(lib / "Doors" / "door_slam.wav", lib / "Foley" / "Doors" / "DOOR_Slam_Heavy.wav")   # moved, renamed
    os.rename(lib / "Misc", lib / "Interface")                                                   # folder renamed
    os.rename(lib / "rain.wav", lib / "rain_on_roof.wav")                                        # renamed in place

    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls == []                                   # nothing embedded again
    assert (s.moved, s.added, s.removed, s.updated, s.unchanged, s.failed) == (4, 0, 0, 0, 1, 1)
    assert s.generation == first.generation + 1                # readers see the new paths
    after = rows(idx)
    renamed = {lib / "Doors" / "door_slam.wav": lib / "Foley" / "Doors" / "DOOR_Slam_Heavy.wav",
               lib / "Misc" / "beep.wav": lib / "Interface" / "beep.wav",
               lib / "Misc" / "hum.ogg": lib / "Interface" / "hum.ogg",
               lib / "rain.wav": lib / "rain_on_roof.wav"}
    assert set(after) == {str(renamed.get(Path(p), Path(p))) for p in before}
    for old, new in renamed.items():
        assert after[str(new)] == before[str(old)]             # same id, segments, tags, captions
    assert after[str(lib / "Foley" / "Doors" / "DOOR_Slam_Heavy.wav")]["tags"] == [("slam", "user")]
    # the broken file's error row follows its folder's new name (a new path, retried and failed)
    assert error_paths(idx) == [str(lib / "Interface" / "broken.wav")]

    with SoundIndex.open(idx, model=FakeModel()) as si:         # vectors still answer, under new paths
        hits = si.similar_to_file(str(lib / "rain_on_roof.wav"), k=2)
        assert hits[0].path == str(lib / "rain_on_roof.wav") and hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert si.info()["files"] == 5


def test_a_reader_open_before_a_move_sees_the_new_path(lib, tmp_path):
    idx = tmp_path / "idx"
    index([lib], idx)
    with SoundIndex.open(idx, model=FakeModel()) as si:
        assert si.similar_to_file(str(lib / "rain.wav"), k=1)[0].path == str(lib / "rain.wav")
        os.rename(lib / "rain.wav", lib / "storm.wav")
        index([lib], idx)
        assert si.similar_to_file(str(lib / "storm.wav"), k=1)[0].path == str(lib / "storm.wav")


def test_same_size_and_time_but_other_audio_is_embedded_as_new(lib, tmp_path):
    """A different recording that happens to share size and time is not taken for the deleted file."""
    idx = tmp_path / "idx"
    index([lib], idx)
    old = lib / "Doors" / "door_slam.wav"                      # 1.5 s, 16 kHz, mono, 16-bit
    st = os.stat(old)
    other = write(lib / "other.wav", noise(3.0, 8000, seed=9), 8000)    # the same bytes of samples
    assert other.stat().st_size == st.st_size
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    old.unlink()
    model = FakeModel()
    s = index([lib], idx, model)
    assert (s.moved, s.added, s.removed) == (0, 1, 1) and model.calls


def test_another_render_of_the_same_length_and_time_is_not_taken_for_the_deleted_one(tmp_path):
    """Equal-length renders of one pack, unpacked with one time, share size, time and header:
    the content fingerprint stored at indexing tells them apart. A catalog from before it was
    stored (no fingerprint) pairs them by size, time and header as before."""
    from engine.catalog import FileMetadata
    lib, idx = (tmp_path / "Pack").resolve(), tmp_path / "idx"
    kick1 = write(lib / "kick_01.wav", noise(1.0, 16000, seed=5), 16000)
    index([lib], idx)
    kick2 = write(tmp_path / "unpacked" / "kick_02.wav", noise(1.0, 16000, seed=6), 16000)
    st = kick1.stat()
    assert kick2.stat().st_size == st.st_size
    os.utime(kick2, ns=(st.st_atime_ns, st.st_mtime_ns))
    kick1.rename(tmp_path / "kick_01.wav")               # deleted from the library …
    shutil.move(str(kick2), lib / "kick_02.wav")          # … and the other render added, one run
    model = FakeModel()
    s = index([lib], idx, model)
    assert (s.moved, s.added, s.removed) == (0, 1, 1) and model.calls

    os.replace(tmp_path / "kick_01.wav", lib / "kick_01.wav")     # back: kick_01 new, kick_02 indexed
    index([lib], idx)
    with catalog_session(idx, write=True) as s_:         # as a catalog from before session 22
        s_.query(FileMetadata).filter(FileMetadata.key == "fingerprint").delete()
    (lib / "kick_01.wav").rename(tmp_path / "moved_kick.wav")
    shutil.move(str(tmp_path / "moved_kick.wav"), lib / "renamed_kick.wav")
    s = index([lib], idx, FakeModel())
    assert (s.moved, s.added) == (1, 0)                   # a true rename still pairs without it

    from engine.catalog import Meta, set_meta               # an older metadata reader: read again, once,
    with catalog_session(idx, write=True) as s_:          # and the fingerprints come back with it
        s_.query(FileMetadata).filter(FileMetadata.key == "fingerprint").delete()
        s_.query(Meta).filter(Meta.key == "metadata_reader").delete()
        set_meta(s_, metadata_reader=3)
    assert index([lib], idx).metadata_reread == 2
    with catalog_session(idx) as s_:
        assert s_.query(FileMetadata).filter(FileMetadata.key == "fingerprint").count() == 2


def test_ambiguous_candidates_pair_by_name_or_not_at_all(tmp_path):
    files = [write(tmp_path / d / n, tone(440 + i, 1.0, 16000), 16000)
             for i, (d, n) in enumerate([("new", "a.wav"), ("new", "b.wav"), ("new", "c.wav")])]
    size = files[0].stat().st_size
    scanned = [ScannedFile(str(f), size, 7) for f in files]
    header = Header(16000, 1, "WAV", "PCM_16", 1.0)
    state = {f"/old/{n}": (size, 7) for n in ("a.wav", "b.wav", "x.wav")}
    headers = {p: header for p in state}
    moves = find_moves(sorted(state), scanned, state, headers)
    assert [(m.old, Path(m.new).name) for m in moves] == [("/old/a.wav", "a.wav"), ("/old/b.wav", "b.wav")]
    # one deleted and one new: paired whatever the names
    single = find_moves(["/old/x.wav"], scanned[2:], state, headers)
    assert [(m.old, m.new) for m in single] == [("/old/x.wav", str(files[2]))]
    # a header that differs in length is not the same file
    longer = {"/old/x.wav": Header(16000, 1, "WAV", "PCM_16", 1.5)}
    assert find_moves(["/old/x.wav"], scanned[2:], state, longer) == []


def test_files_dropped_with_the_users_tags_are_named_in_a_warning(lib, tmp_path, caplog):
    """Two copies of one take renamed together cannot be told apart (same size, time and audio):
    they are embedded again as new files, and the tags on the old paths, lost, are named."""
    idx = tmp_path / "idx"
    take = lib / "Doors" / "take.wav"
    write(take, noise(1.0, 16000, seed=9), 16000)
    shutil.copy2(take, lib / "Doors" / "take_alt.wav")          # `cp -a`: same size, time, audio
    index([lib], idx)
    label(idx, take, "keeper", "the one we used")
    label(idx, lib / "rain.wav", "storm", "heavy rain")
    os.rename(take, lib / "Doors" / "slam_01.wav")
    os.rename(lib / "Doors" / "take_alt.wav", lib / "Doors" / "slam_02.wav")
    (lib / "rain.wav").unlink()
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        s = index([lib], idx)
    assert (s.moved, s.added, s.removed) == (0, 2, 3)
    said = " ".join(r.getMessage() for r in caplog.records if "tags or captions" in r.getMessage())
    assert "2 files gone from the library carried your tags or captions" in said
    assert f"{take} (keeper, caption: the one we used): moved or renamed along with a file" in said
    assert f"{lib / 'rain.wav'} (storm, caption: heavy rain)." in said or f"{lib / 'rain.wav'} (storm, caption: heavy rain);" in said
    assert "soundsift tags add" in said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        index([lib], idx)                                       # nothing tagged goes: no warning
    assert not [r for r in caplog.records if "tags or captions" in r.getMessage()]


def test_a_file_edited_in_place_keeps_the_users_tags_and_captions(lib, tmp_path):
    """Trimmed, de-clicked or re-rendered under its name: it is embedded again, the tags and
    captions the user gave it stay, and the ones soundsift derived from the old audio go."""
    idx = tmp_path / "idx"
    index([lib], idx)
    slam = lib / "Doors" / "door_slam.wav"
    label(idx, slam, "keeper", "the take we used in episode 3")
    with catalog_session(idx, write=True) as s:           # what `soundsift caption --index` stores
        fid = s.scalar(select(File.id).where(File.path == str(slam)))
        s.add_all([Tag(file_id=fid, label="Door", score=0.8, source="yamnet"),
                   Tag(file_id=fid, label="slam", score=0.3, source="zeroshot"),
                   Caption(file_id=fid, text="a door", source="blat")])
    write(slam, noise(1.2, 16000, seed=7), 16000)          # trimmed in place
    s = index([lib], idx)
    assert (s.updated, s.moved, s.added) == (1, 0, 0)
    after = rows(idx)[str(slam)]
    assert after["tags"] == [("keeper", "user")]
    assert after["captions"] == ["the take we used in episode 3"]


def test_a_time_rounded_by_a_coarser_filesystem_is_the_same_time():
    t = 1_700_000_000_123_456_789
    assert kept_time(t, t)
    assert kept_time(t, 1_700_000_000_000_000_000)          # HFS+, ext3, SMB: whole seconds
    assert kept_time(t, 1_700_000_002_000_000_000)          # FAT: rounded up to an even second
    assert kept_time(t, 1_700_000_000_120_000_000)          # exFAT: 10 ms
    assert kept_time(t, 1_700_000_000_123_456_700)          # NTFS: 100 ns
    assert not kept_time(t, 1_700_000_000_123_456_790)      # stamped anew, to the nanosecond
    assert not kept_time(t, 1_700_000_003_000_000_000)      # more than 2 s away


def test_a_move_onto_a_drive_with_coarser_times_keeps_its_rows(lib, tmp_path):
    """A file moved onto a FAT or exFAT drive arrives with its time rounded: the fingerprint it
    was indexed with pairs it. Without a fingerprint (an index from before session 22) only an
    exact time is trusted, so it is embedded again."""
    from engine.catalog import FileMetadata
    idx = tmp_path / "idx"
    index([lib], idx)
    label(idx, lib / "rain.wav", "rain", "rain on a tin roof")
    before = rows(idx)
    (lib / "FAT").mkdir()
    for name in ("rain.wav", "Misc/beep.wav"):
        moved = lib / "FAT" / Path(name).name.replace(".wav", "_moved.wav")
        st = os.stat(lib / name)
        os.rename(lib / name, moved)
        os.utime(moved, ns=(st.st_atime_ns, (st.st_mtime_ns // 2_000_000_000 + 1) * 2_000_000_000))
    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls == [] and (s.moved, s.added, s.removed) == (2, 0, 0)
    after = rows(idx)
    moved = after[str(lib / "FAT" / "rain_moved.wav")]
    assert {k: moved[k] for k in ("id", "segments", "tags", "captions")} == \
        {k: before[str(lib / "rain.wav")][k] for k in ("id", "segments", "tags", "captions")}
    assert moved["mtime_ns"] == os.stat(lib / "FAT" / "rain_moved.wav").st_mtime_ns   # the time now on disk

    with catalog_session(idx, write=True) as s_:          # as a catalog from before session 22
        s_.query(FileMetadata).filter(FileMetadata.key == "fingerprint").delete()
    st = os.stat(lib / "FAT" / "rain_moved.wav")
    os.rename(lib / "FAT" / "rain_moved.wav", lib / "rain.wav")
    os.utime(lib / "rain.wav", ns=(st.st_atime_ns, st.st_mtime_ns - 1_000_000_000))
    s = index([lib], idx, FakeModel())
    assert (s.moved, s.added, s.removed) == (0, 1, 1)


def test_a_renamed_batch_of_equal_renders_pairs_by_fingerprint(tmp_path):
    """Equal-length renders unpacked with one time and renamed to a scheme: the names cannot pair
    them, their fingerprints do."""
    lib, idx = (tmp_path / "Pack").resolve(), tmp_path / "idx"
    kicks = [write(lib / f"kick_{i}.wav", noise(1.0, 16000, seed=20 + i), 16000) for i in range(3)]
    t = kicks[0].stat().st_mtime_ns
    for k in kicks:
        os.utime(k, ns=(t, t))
    index([lib], idx)
    before = rows(idx)
    for i, k in enumerate(kicks):
        k.rename(lib / f"KICK_Punchy_{i:02d}.wav")
    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls == [] and (s.moved, s.added, s.removed) == (3, 0, 0)
    after = rows(idx)
    for i in range(3):
        assert after[str(lib / f"KICK_Punchy_{i:02d}.wav")]["id"] == before[str(kicks[i])]["id"]


def test_relocate_follows_a_library_to_another_mount_point(lib, tmp_path):
    idx = tmp_path / "idx"
    index([lib], idx)
    label(idx, lib / "rain.wav", "rain", "rain on a tin roof")
    before = rows(idx)
    mounted = tmp_path / "media" / "SFX"
    mounted.parent.mkdir()
    os.rename(lib, mounted)                                    # the drive, mounted elsewhere

    dry = relocate(idx, lib, mounted, dry_run=True)
    assert len(dry.renames) == 5 and dry.generation == 0 and rows(idx) == before
    plan = relocate(idx, lib, mounted)
    assert (len(plan.renames), plan.missing, plan.merged, plan.retimed) == (5, [], [], 0)
    after = rows(idx)
    assert after == {str(mounted / Path(p).relative_to(lib)): r for p, r in before.items()}
    assert error_paths(idx) == [str(mounted / "Misc" / "broken.wav")]
    model = FakeModel()
    s = index([mounted], idx, model)                           # nothing to do at the new place
    assert (s.added, s.updated, s.removed, s.unchanged, s.moved) == (0, 0, 0, 5, 0) and model.calls == []


def test_relocate_takes_the_times_of_copies_and_merges_rows_indexed_twice(lib, tmp_path):
    idx = tmp_path / "idx"
    index([lib], idx)
    label(idx, lib / "Misc" / "beep.wav", "beep", "a short interface beep")
    copy = tmp_path / "NewDrive" / "Library"
    shutil.copytree(lib, copy, copy_function=shutil.copy)      # a copy that did not keep the times
    index([copy / "Doors"], idx)                               # one folder indexed at the new place already
    (copy / "rain.wav").unlink()                               # and one file not copied
    n_before = len(rows(idx))
    assert n_before == 7

    plan = relocate(idx, lib, copy)
    assert (len(plan.renames), len(plan.merged), len(plan.missing)) == (5, 2, 1)
    assert plan.retimed == 2                                   # beep.wav and hum.ogg (Doors merged, rain missing)
    after = rows(idx)
    assert len(after) == 5 and all(p.startswith(str(copy)) for p in after)
    assert after[str(copy / "Misc" / "beep.wav")]["tags"] == [("beep", "user")]
    model = FakeModel()
    s = index([copy], idx, model)
    assert (s.added, s.updated, s.removed, s.unchanged) == (0, 0, 1, 4) and model.calls == []

    # back, with one file at the new place re-rendered in between: same size, other content
    shutil.copytree(copy, tmp_path / "Third", copy_function=shutil.copy)
    write(tmp_path / "Third" / "Misc" / "beep.wav", tone(990, 0.5, 44100), 44100)
    plan = relocate(idx, copy, tmp_path / "Third")
    assert plan.retimed == 3                                   # not the re-rendered beep: it keeps the old time
    s = index([tmp_path / "Third"], idx, FakeModel())
    assert (s.updated, s.unchanged) == (1, 3)                  # … so the next run embeds it again
    with SoundIndex.open(idx, model=FakeModel()) as si:
        assert si.info()["files"] == 4
        assert si.info()["vectors"] == sum(len(r["segments"]) for r in rows(idx).values())


def test_relocate_refuses_what_it_cannot_do(lib, tmp_path):
    idx = tmp_path / "idx"
    index([lib], idx)
    with pytest.raises(RelocationFailed, match="no such folder"):
        relocate(idx, lib, tmp_path / "nowhere")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(RelocationFailed, match="holds no files under"):
        relocate(idx, tmp_path / "other", elsewhere)
    with pytest.raises(RelocationFailed, match="none of the 5 files"):
        relocate(idx, lib, elsewhere)
    with pytest.raises(RelocationFailed, match="same folder"):
        relocate(idx, lib, lib)
    with pytest.raises(IndexNotFound):
        relocate(tmp_path / "no-index", lib, elsewhere)
    assert len(rows(idx)) == 5


def test_relocate_into_a_subfolder_of_itself(lib, tmp_path):
    """New paths that are other files' old paths are no clash (the catalog renames in two steps)."""
    idx = tmp_path / "idx"
    index([lib], idx)
    before = rows(idx)
    inner = lib / "Library"
    tmp = lib.with_name("tmp-move")
    os.rename(lib, tmp)
    lib.mkdir()
    os.rename(tmp, inner)
    relocate(idx, lib, inner)
    assert rows(idx) == {str(inner / Path(p).relative_to(lib)): r for p, r in before.items()}


def test_an_index_run_says_how_to_relocate_a_moved_root(lib, tmp_path, caplog):
    idx = tmp_path / "idx"
    index([lib], idx)
    moved = tmp_path / "Renamed"
    os.rename(lib, moved)
    with caplog.at_level(logging.WARNING, logger="indexer.moves"):
        index([moved], idx)
    said = [r.getMessage() for r in caplog.records if r.name == "indexer.moves"]
    assert len(said) == 1 and f"soundsift relocate {lib} {moved} --index {idx}" in said[0]
    assert said[0].startswith("5 of the 6 new files")     # broken.wav was never indexed


def test_the_relocate_hint_knows_a_drive_with_coarser_times(lib, tmp_path, caplog):
    """The library copied onto an exFAT drive (times kept to 10 ms) and the old folder gone."""
    idx = tmp_path / "idx"
    index([lib], idx)
    copied = tmp_path / "exFAT"
    shutil.copytree(lib, copied)                          # copy2 keeps the times …
    for f in copied.rglob("*"):
        if f.is_file():
            st = f.stat()
            os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns // 10_000_000 * 10_000_000))   # … as exFAT does
    shutil.rmtree(lib)
    with caplog.at_level(logging.WARNING, logger="indexer.moves"):
        index([copied], idx)
    said = [r.getMessage() for r in caplog.records if r.name == "indexer.moves"]
    assert len(said) == 1 and f"soundsift relocate {lib} {copied} --index {idx}" in said[0]


def test_relocate_command(lib, tmp_path):
    idx = tmp_path / "idx"
    index([lib], idx)
    moved = tmp_path / "Moved"
    os.rename(lib, moved)
    runner = CliRunner()
    r = runner.invoke(app, ["relocate", str(lib), str(moved), "--index", str(idx), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["files"] == 5 and json.loads(r.stdout)["dry_run"] is True
    r = runner.invoke(app, ["relocate", str(lib), str(moved), "--index", str(idx)])
    assert r.exit_code == 0, r.output
    assert "moved 5 indexed files" in " ".join(r.stdout.split())
    assert all(p.startswith(str(moved)) for p in rows(idx))
    r = runner.invoke(app, ["relocate", str(lib), str(moved), "--index", str(idx)])
    assert r.exit_code == 1 and "holds no files under" in " ".join(r.output.split())


def test_a_file_that_changed_and_no_longer_reads_keeps_its_entry_until_it_does(lib, tmp_path):
    """Overwritten by something unreadable (a copy that failed half-way, a render in a format
    the decoder does not know): the error is recorded and the run goes on, and the file's earlier
    vectors, tags and captions stay; once it reads again it is embedded again, keeping them."""
    from engine.query import SoundIndex
    idx = tmp_path / "idx"
    index([lib], idx)
    slam = lib / "Doors" / "door_slam.wav"
    label(idx, slam, "keeper", "the take we used in episode 3")
    before = rows(idx)[str(slam)]
    slam.write_bytes(b"RIFF\x00\x00\x00\x00WAVE truncated by a failed copy")
    s = index([lib], idx)
    assert (s.failed, s.updated, s.removed) == (2, 0, 0)           # broken.wav, and the slam now
    assert rows(idx)[str(slam)] == before and str(slam) in error_paths(idx)
    with SoundIndex.open(idx, model=FakeModel()) as si:
        assert si.similar_to_file(str(slam), k=1)[0].path == str(slam)
    assert index([lib], idx).failed == 2                            # tried again, still unreadable
    write(slam, noise(1.2, 16000, seed=9), 16000)                    # fixed
    s = index([lib], idx)
    assert (s.updated, s.failed) == (1, 1) and str(slam) not in error_paths(idx)
    after = rows(idx)[str(slam)]
    assert after["tags"] == [("keeper", "user")] and after["captions"] == ["the take we used in episode 3"]


def test_a_rebuild_keeps_the_users_tags_on_a_file_edited_since(lib, tmp_path):
    """`--rebuild` after a file was edited in place: as an index run would, it keeps the user's
    tags and captions and lets the ones made from the old audio go."""
    idx = tmp_path / "idx"
    index([lib], idx)
    slam = lib / "Doors" / "door_slam.wav"
    label(idx, slam, "keeper", "the take we used in episode 3")
    label(idx, lib / "rain.wav", "wet", "rain on the roof")
    with catalog_session(idx, write=True) as s:
        fid = s.scalar(select(File.id).where(File.path == str(slam)))
        s.add_all([Tag(file_id=fid, label="Door", score=0.8, source="yamnet"),
                   Caption(file_id=fid, text="a door", source="blat")])
    write(slam, noise(1.2, 16000, seed=7), 16000)          # edited in place, then the index rebuilt
    s = build_index([str(lib)], idx, FakeModel(), workers=0, progress=False, rebuild=True)
    assert s.rebuild
    after = rows(idx)
    assert after[str(slam)]["tags"] == [("keeper", "user")]
    assert after[str(slam)]["captions"] == ["the take we used in episode 3"]
    assert after[str(lib / "rain.wav")]["tags"] == [("wet", "user")]          # unchanged: as before

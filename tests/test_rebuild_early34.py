"""`soundsift index … --rebuild` refuses early (session 34): an indexed file that does not open is
named before anything is embedded (its audio header is read first), one that opens but fails to
decode stops the run at once (the rest is not embedded for nothing); and the files really deleted
since that carried the user's tags or library-sheet rows get the warning an index run gives.

FakeModel (tests/index_fakes.py) stands in for the old model, and a wider one for the new: both
count what they embed.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.catalog import Caption, File, Tag
from engine.errors import RebuildFailed
from indexer import build_index
from tests.conftest import catalog_session, chirp, noise, tone, write
from tests.index_fakes import FakeModel, WideModel

SR = 16000


def new_model() -> WideModel:
    return WideModel(name="wide", fingerprint="wide-v1")


def embedded(model: FakeModel) -> int:
    """How many clips ``model`` was given to embed."""
    return sum(model.calls)


@pytest.fixture
def lib(tmp_path) -> Path:
    """Six recordings of growing length (so growing size: a run takes them smallest first)."""
    lib = (tmp_path / "lib").resolve()
    for i in range(6):
        sound = (tone(300 + 100 * i, 1.0 + 0.5 * i, SR) if i % 3 == 0 else noise(1.0 + 0.5 * i, SR, seed=i)
                 if i % 3 == 1 else chirp(200, 2000 + 200 * i, 1.0 + 0.5 * i, SR))
        write(lib / ("sub" if i % 2 else "") / f"s{i}.wav", sound, SR)
    return lib


def by_size(lib: Path) -> list[str]:
    return sorted((str(p) for p in lib.rglob("*.wav")), key=lambda p: (os.path.getsize(p), p))


def tag(idx: Path, path: Path, label: str) -> None:
    """A user tag and caption on the indexed file at ``path``."""
    with catalog_session(idx, write=True) as s:
        fid = s.scalar(select(File.id).where(File.path == str(path)))
        s.add_all([Tag(file_id=fid, label=label, score=1.0, source="user"),
                   Caption(file_id=fid, text=f"{label} caption", source="user")])


def indexed(idx: Path) -> dict[str, int]:
    """Indexed path → its file id (a rebuild gives new ids: the same ids mean the same index)."""
    with catalog_session(idx) as s:
        return {path: fid for path, fid in s.execute(select(File.path, File.id))}


def leftovers(idx: Path) -> list[str]:
    return sorted(p.name for p in idx.parent.iterdir() if p.name.startswith(idx.name + "."))


def built(lib: Path, tmp_path: Path) -> Path:
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return idx


# -- 1a. a header that does not open: refused before anything is embedded -----------------------
def test_an_indexed_file_that_does_not_open_is_refused_before_anything_is_embedded(lib, tmp_path):
    idx = built(lib, tmp_path)
    before = indexed(idx)
    biggest = Path(by_size(lib)[-1])            # embedded last: a late refusal embeds everything else first
    biggest.write_bytes(b"RIFF\x00\x00\x00\x00WAVE broken by a bad copy")
    (lib / "never_indexed.wav").write_bytes(b"not audio either")     # no loss: not refused
    model = new_model()

    with pytest.raises(RebuildFailed) as e:
        build_index([lib], idx, model, workers=0, progress=False, rebuild=True)

    msg = str(e.value)
    assert f"1 indexed file could not be read this time: {biggest} (not readable as audio (" in msg, msg
    assert "would drop it with its tags and captions" in msg and "the index is unchanged" in msg
    assert "never_indexed" not in msg
    assert embedded(model) == 0
    assert indexed(idx) == before and leftovers(idx) == []


def test_every_indexed_file_that_does_not_open_is_named_and_the_model_is_not_even_loaded(lib, tmp_path):
    idx = built(lib, tmp_path)
    first, second = by_size(lib)[1], by_size(lib)[4]
    Path(first).write_bytes(b"")
    Path(second).write_bytes(b"garbage")

    with pytest.raises(RebuildFailed) as e:         # a model that would fail to load: never asked for
        build_index([lib], idx, str(tmp_path / "no_such_model"), workers=0, progress=False, rebuild=True)

    msg = str(e.value)
    assert "2 indexed files could not be read this time: " in msg
    assert f"{first} (empty: the file is 0 bytes)" in msg and f"{second} (" in msg
    assert "would drop them with their tags and captions" in msg and "the index is unchanged" in msg


def test_a_moved_file_whose_header_does_not_open_now_is_refused_before_embedding(lib, tmp_path, monkeypatch):
    """Found moved by the catalog's header and fingerprint, then unreadable when opened to embed
    (a drive failing as it is read): refused as one at its path is."""
    from engine import audio
    from indexer import decode, rebuild
    idx = built(lib, tmp_path)
    old, new = by_size(lib)[2], str(lib / "moved.wav")
    os.rename(old, new)

    def probe(path):
        if str(path) == new:
            raise OSError("Input/output error")
        return audio.probe(path)
    monkeypatch.setattr(decode, "probe", probe)             # where decoding opens it
    monkeypatch.setattr(rebuild, "probe", probe, raising=False)     # where the rebuild looks first
    model = new_model()

    with pytest.raises(RebuildFailed, match=r"1 indexed file could not be read this time: .*moved\.wav "
                                            r"\(decoding failed: OSError: Input/output error\)"):
        build_index([lib], idx, model, workers=0, progress=False, rebuild=True)
    assert embedded(model) == 0 and leftovers(idx) == []


# -- 1b. a file that opens but fails to decode: the run stops there ----------------------------
def test_the_run_stops_at_the_first_indexed_file_that_fails_to_decode(lib, tmp_path, monkeypatch):
    from indexer import decode
    idx = built(lib, tmp_path)
    before = indexed(idx)
    order = by_size(lib)
    bad = order[2]                              # the third embedded: its header is fine
    real = decode.iter_segments
    decoded: list[str] = []

    def iter_segments(path, *args, **kwargs):
        decoded.append(str(path))
        if str(path) == bad:
            raise OSError("read error at 0.8 s")
        return real(path, *args, **kwargs)
    monkeypatch.setattr(decode, "iter_segments", iter_segments)
    model = new_model()

    with pytest.raises(RebuildFailed, match=r"1 indexed file could not be read this time: .*"
                                            + os.path.basename(bad) + r" \(decoding failed: OSError: "
                                            r"read error at 0\.8 s\).*the index is unchanged"):
        build_index([lib], idx, model, workers=0, batch_size=1, progress=False, rebuild=True)
    assert decoded == order[:3]                 # the three after it were never decoded
    stopped_at = embedded(model)
    assert indexed(idx) == before and leftovers(idx) == []

    monkeypatch.setattr(decode, "iter_segments", real)      # the file reads again: the rebuild goes through
    model = new_model()
    s = build_index([lib], idx, model, workers=0, batch_size=1, progress=False, rebuild=True)
    assert (s.updated, s.failed) == (6, 0)
    assert 0 < stopped_at < embedded(model)     # only the files before it had been embedded


def test_a_file_never_indexed_that_fails_to_decode_does_not_stop_the_rebuild(lib, tmp_path):
    idx = built(lib, tmp_path)
    (lib / "aaa_new.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE not audio")

    s = build_index([lib], idx, new_model(), workers=0, progress=False, rebuild=True)

    assert (s.added, s.updated, s.failed) == (0, 6, 1)
    assert s.errors[0]["path"] == str(lib / "aaa_new.wav")


# -- 2. files deleted since that carried the user's notes: one warning naming them --------------
def test_a_rebuild_names_the_deleted_files_whose_tags_and_sheet_rows_leave(tmp_path, caplog):
    from indexer.metadata_sheet import import_sheet
    from indexer.user_tags import add_tags
    lib = (tmp_path / "lib").resolve()
    doors = lib / "Foley" / "Doors"
    for i in range(3):
        write(doors / f"door_{i}.wav", noise(1.0 + 0.25 * i, SR, seed=i), SR)
    sheet = lib / "metadata.csv"
    sheet.write_text("Filename,Description\n" + "".join(f"door_{i}.wav,Door {i} creaks\n" for i in range(3)))
    idx = built(lib, tmp_path)
    import_sheet(idx, sheet)
    add_tags(idx, [doors / "door_1.wav"], ["ep3"])
    add_tags(idx, [doors / "door_2.wav"], ["keeper"])
    (doors / "door_1.wav").unlink()                                     # really deleted
    os.rename(doors / "door_2.wav", doors / "door_2_renamed.wav")       # moved: its notes follow it

    with caplog.at_level(logging.INFO, logger="indexer"):
        s = build_index([lib], idx, new_model(), workers=0, progress=False, rebuild=True)

    assert (s.removed, s.moved) == (1, 1)
    warned = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING and "gone from the library" in r.getMessage()]
    assert len(warned) == 1, warned
    said = warned[0]
    assert "1 file gone from the library carried your tags, captions or library-sheet descriptions" in said
    assert f"{doors / 'door_1.wav'} (ep3, sheet metadata.csv)" in said
    assert "door_2" not in said
    assert "`soundsift tags add`" in said and f"`soundsift sheet import {sheet} --index {idx}`" in said


def test_a_rebuild_that_drops_no_notes_warns_of_none(lib, tmp_path, caplog):
    idx = built(lib, tmp_path)
    tag(idx, Path(by_size(lib)[0]), "kept")
    Path(by_size(lib)[1]).unlink()              # deleted, but nothing of the user's on it

    with caplog.at_level(logging.WARNING, logger="indexer"):
        s = build_index([lib], idx, new_model(), workers=0, progress=False, rebuild=True)

    assert s.removed == 1
    assert not [r for r in caplog.records if "gone from the library" in r.getMessage()]

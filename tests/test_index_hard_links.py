"""Several names of one file (hard links) and byte-identical copies are decoded and embedded once,
and every path keeps rows of its own (indexer.same_file): the catalog and the vectors are those a
library embedded file by file gets."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from engine.catalog import File, FileMetadata, SegmentRow, get_meta
from engine.query import SoundIndex
from engine.vector_access import reconstruct
from engine.file_metadata import FINGERPRINT_BLOCK, content_fingerprint
from indexer import build_index, decode, runner, same_file
from tests.conftest import catalog_session, chirp, noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_cue_sheets import DISC

SR = 16000


def index(root: Path, idx: Path, model: FakeModel | None = None):
    return build_index([str(root)], idx, model or FakeModel(), workers=0, progress=False)


def plain_index(root: Path, idx: Path, model: FakeModel | None = None):
    """``root`` indexed file by file: no path taken for another (what a library of copies got
    before indexer.same_file)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(runner, "other_names", lambda files: ({}, set()))
        m.setattr(runner, "indexed_names", lambda *args: ({}, set()))
        return index(root, idx, model)


def embedded(model: FakeModel) -> int:
    """How many segments ``model`` embedded."""
    return sum(model.calls)


def snapshot(idx: Path, root: Path) -> dict[str, dict]:
    """Path relative to ``root`` → the file's catalog row (no id or time), its segments' spans and
    stored vectors, and its metadata rows."""
    import faiss
    with catalog_session(idx) as s:
        vectors = faiss.read_index(str(idx / get_meta(s)["vectors_file"]))
        out = {}
        for f in s.scalars(select(File)):
            segs = s.execute(select(SegmentRow.id, SegmentRow.start, SegmentRow.end)
                             .where(SegmentRow.file_id == f.id).order_by(SegmentRow.id)).all()
            out[os.path.relpath(f.path, root)] = {
                "row": (f.size, f.mtime_ns, f.duration, f.sample_rate, f.channels, f.format, f.subtype),
                "spans": [(a, b) for _, a, b in segs],
                "vectors": reconstruct(vectors, np.array([i for i, _, _ in segs], np.int64)),
                "metadata": sorted(s.execute(select(FileMetadata.key, FileMetadata.value)
                                             .where(FileMetadata.file_id == f.id)).all())}
        return out


def assert_same(got: dict[str, dict], want: dict[str, dict]) -> None:
    assert sorted(got) == sorted(want)
    for name in want:
        g, w = got[name], want[name]
        assert (g["row"], g["spans"], g["metadata"]) == (w["row"], w["spans"], w["metadata"]), name
        assert np.array_equal(g["vectors"], w["vectors"]), name


@pytest.fixture
def linked(tmp_path) -> Path:
    """A library where ``rain.wav`` has three names and ``door.wav`` two (hard links), beside a
    file of its own."""
    lib = (tmp_path / "lib").resolve()
    rain = write(lib / "rain.wav", noise(5.0, SR, seed=1), SR)
    door = write(lib / "door.wav", chirp(200, 900, 3.0, SR), SR)
    write(lib / "beep.wav", tone(880, 1.5, SR), SR)
    (lib / "Favourites").mkdir()
    os.link(rain, lib / "Favourites" / "rain.wav")
    os.link(rain, lib / "Favourites" / "rain heavy.wav")
    os.link(door, lib / "Favourites" / "door.wav")
    return lib


def copies_of(lib: Path, to: Path) -> Path:
    """``lib`` with every hard link made a copy of its own (same bytes and time, another inode)."""
    shutil.copytree(lib, to, copy_function=shutil.copy2)
    return to


def test_names_of_one_file_are_embedded_once_with_the_rows_and_vectors_of_copies(linked, tmp_path):
    model = FakeModel()
    s = index(linked, tmp_path / "idx", model)
    copies = copies_of(linked, tmp_path / "copies")
    plain_model = FakeModel()
    plain = plain_index(copies, tmp_path / "plain", plain_model)

    # rain (5 s: 4 windows), door (3 s: 2) and beep (1.5 s: 1), each once; the copies 4 + 4 + 2 more
    assert embedded(model) == 7 and embedded(plain_model) == 17
    assert_same(snapshot(tmp_path / "idx", linked), snapshot(tmp_path / "plain", copies))
    assert (s.added, s.same_file, s.same_audio, s.failed, s.n_segments) == (6, 3, 0, 0, 7)
    assert s.totals == plain.totals


def test_identical_copies_are_embedded_once_with_the_rows_and_vectors_of_a_plain_index(linked, tmp_path):
    """Copies (another inode, another time: `cp`, a pack unpacked twice) are one audio too."""
    copies = tmp_path / "copies"
    shutil.copytree(linked, copies)             # new times: only the bytes are the same
    model = FakeModel()
    s = index(copies, tmp_path / "idx", model)
    assert embedded(model) == 7
    assert (s.added, s.same_file, s.same_audio, s.n_segments) == (6, 0, 3, 7)
    plain = plain_index(copies, tmp_path / "plain")
    assert_same(snapshot(tmp_path / "idx", copies), snapshot(tmp_path / "plain", copies))
    assert s.totals == plain.totals


def test_a_copy_differing_in_one_byte_between_the_sampled_blocks_is_embedded_on_its_own(tmp_path):
    """Two renders of one length may differ only where the content fingerprint does not look: the
    whole bytes decide (SHA-256), and equal-length renders that differ are never read whole."""
    lib = (tmp_path / "lib").resolve()
    rain = write(lib / "rain.wav", noise(5.0, SR, seed=1), SR)
    (lib / "pack").mkdir()
    shutil.copy(rain, lib / "pack" / "rain.wav")
    edit = lib / "pack" / "rain edit.wav"
    data = bytearray(rain.read_bytes())
    at = len(data) // 4                         # between the start block and the middle one
    assert FINGERPRINT_BLOCK < at < len(data) // 2 - FINGERPRINT_BLOCK
    data[at] ^= 0x01
    edit.write_bytes(bytes(data))
    write(lib / "other.wav", noise(5.0, SR, seed=2), SR)       # the same size, other audio
    assert content_fingerprint(edit) == content_fingerprint(rain) != content_fingerprint(lib / "other.wav")
    hashed = []
    real = same_file.file_sha256
    with pytest.MonkeyPatch.context() as m:
        m.setattr(same_file, "file_sha256", lambda path: hashed.append(os.path.basename(path)) or real(path))
        model = FakeModel()
        s = index(lib, tmp_path / "idx", model)
    assert sorted(hashed) == ["rain edit.wav", "rain.wav", "rain.wav"]   # not other.wav
    assert embedded(model) == 3 * 4 and (s.added, s.same_audio) == (4, 1)
    plain_index(lib, tmp_path / "plain")
    assert_same(snapshot(tmp_path / "idx", lib), snapshot(tmp_path / "plain", lib))


def test_a_copy_of_an_indexed_file_gets_its_rows_and_vectors_and_deleting_one_keeps_the_other(linked, tmp_path):
    idx = tmp_path / "idx"
    index(linked, idx)
    (linked / "Pack").mkdir()
    shutil.copy(linked / "door.wav", linked / "Pack" / "door.wav")
    shutil.copy(linked / "beep.wav", linked / "Pack" / "beep copy.wav")
    model = FakeModel()
    s = index(linked, idx, model)
    assert (s.added, s.unchanged, s.same_file, s.same_audio, embedded(model)) == (2, 6, 0, 2, 0)
    plain_index(copies_of(linked, tmp_path / "copies"), tmp_path / "plain")
    assert_same(snapshot(idx, linked), snapshot(tmp_path / "plain", tmp_path / "copies"))

    before = snapshot(idx, linked)
    (linked / "beep.wav").unlink()              # the copy it was embedded as
    model = FakeModel()
    s = index(linked, idx, model)
    assert (s.removed, s.added, embedded(model)) == (1, 0, 0)
    del before["beep.wav"]
    assert_same(snapshot(idx, linked), before)


def test_indexed_files_of_a_new_files_size_are_compared_by_their_stored_fingerprints(tmp_path, monkeypatch):
    """Fixed-length renders all share a size: a new one reads its own fingerprint only, the indexed
    ones' come from the catalog, and none is read whole unless the fingerprints agree."""
    lib = (tmp_path / "lib").resolve()
    for seed in range(3):
        write(lib / f"render {seed}.wav", noise(1.0, SR, seed=seed), SR)
    idx = tmp_path / "idx"
    index(lib, idx)
    write(lib / "render 3.wav", noise(1.0, SR, seed=3), SR)
    read = []
    for name in ("content_fingerprint", "file_sha256"):
        real = getattr(same_file, name)
        monkeypatch.setattr(same_file, name, lambda path, real=real, name=name:
                            read.append((name, os.path.basename(path))) or real(path))
    model = FakeModel()
    s = index(lib, idx, model)
    assert read == [("content_fingerprint", "render 3.wav")]
    assert (s.added, s.same_audio, embedded(model)) == (1, 0, 1)
    read.clear()
    shutil.copy(lib / "render 1.wav", lib / "render 1 copy.wav")
    s = index(lib, idx, FakeModel())
    assert sorted(read) == [("content_fingerprint", "render 1 copy.wav"),
                            ("file_sha256", "render 1 copy.wav"), ("file_sha256", "render 1.wav")]
    assert (s.added, s.same_audio) == (1, 1)


def test_an_index_that_rounds_its_vectors_embeds_a_new_copy_again(linked, tmp_path, monkeypatch):
    from indexer.write import IndexWriter
    idx = tmp_path / "idx"
    index(linked, idx)
    monkeypatch.setattr(IndexWriter, "copies_read_exactly", lambda self: False)
    shutil.copy2(linked / "beep.wav", linked / "beep copy.wav")     # its time too: rows alike
    model = FakeModel()
    s = index(linked, idx, model)
    assert (s.added, s.same_audio, embedded(model)) == (1, 0, 1)
    got = snapshot(idx, linked)
    assert_same({"b": got["beep copy.wav"]}, {"b": got["beep.wav"]})


def test_search_lists_every_name_and_deleting_one_keeps_the_others(linked, tmp_path):
    idx = tmp_path / "idx"
    index(linked, idx)
    names = [linked / "rain.wav", linked / "Favourites" / "rain.wav", linked / "Favourites" / "rain heavy.wav"]
    with SoundIndex.open(idx, model=FakeModel()) as si:
        hits = si.similar_to_file(str(names[1]), k=3, collapse_copies=False)
        assert sorted(h.path for h in hits) == sorted(map(str, names))      # identical vectors: none hidden
        assert hits[0].path == str(names[1])
        assert all(h.score == pytest.approx(1.0, abs=1e-5) for h in hits)
        one = si.similar_to_file(str(names[1]), k=3)[0]                     # by default one hit listing all
        assert one.path == str(names[1]) and sorted(one.copies) == sorted(map(str, (names[0], names[2])))

    before = snapshot(idx, linked)
    names[0].unlink()
    names[2].unlink()                           # the name it was embedded under (the first in order)
    model = FakeModel()
    s = index(linked, idx, model)
    assert (s.removed, s.added, s.unchanged, embedded(model)) == (2, 0, 4, 0)
    del before["rain.wav"], before["Favourites/rain heavy.wav"]
    assert_same(snapshot(idx, linked), before)
    with SoundIndex.open(idx, model=FakeModel()) as si:
        assert [h.path for h in si.similar_to_file(str(names[1]), k=1)] == [str(names[1])]


def test_decoder_processes_embed_each_file_once_too(linked, tmp_path):
    model = FakeModel()
    s = build_index([str(linked)], tmp_path / "idx", model, workers=1, progress=False)
    assert embedded(model) == 7 and (s.added, s.same_file) == (6, 3)
    index(linked, tmp_path / "in-process")
    assert_same(snapshot(tmp_path / "idx", linked), snapshot(tmp_path / "in-process", linked))


def test_a_new_name_of_an_indexed_file_gets_its_rows_and_vectors(linked, tmp_path):
    idx = tmp_path / "idx"
    index(linked, idx)
    os.link(linked / "beep.wav", linked / "Favourites" / "beep.wav")
    copies = copies_of(linked, tmp_path / "copies")
    model = FakeModel()
    s = index(linked, idx, model)
    assert (s.added, s.unchanged, embedded(model)) == (1, 6, 0)
    assert s.same_file == 1
    plain_index(copies, tmp_path / "plain")
    assert_same(snapshot(idx, linked), snapshot(tmp_path / "plain", copies))


def test_a_file_that_does_not_decode_fails_under_every_name(tmp_path, monkeypatch):
    lib = (tmp_path / "lib").resolve()
    lib.mkdir()
    (lib / "broken.wav").write_text("not audio")
    os.link(lib / "broken.wav", lib / "broken again.wav")
    write(lib / "ok.wav", tone(440, 1.0, SR), SR)
    opened = []
    monkeypatch.setattr(decode, "probe", lambda path, probe=decode.probe: opened.append(path) or probe(path))
    s = index(lib, tmp_path / "idx")
    assert sorted(opened) == [str(lib / "broken again.wav"), str(lib / "ok.wav")]     # each file once
    reasons = {e["path"]: e["reason"] for e in s.errors}
    assert sorted(reasons) == [str(lib / "broken again.wav"), str(lib / "broken.wav")]
    for path, reason in reasons.items():        # each names its own path, as a decoder's would
        assert reason == reasons[str(lib / "broken.wav")].replace(str(lib / "broken.wav"), path)
        assert "not readable as audio" in reason and f"'{path}'" in reason
    assert (s.added, s.failed, s.totals["errors"]) == (1, 2, 2)


def test_names_with_other_cue_sheets_or_extensions_are_embedded_each(tmp_path):
    """A sidecar cue sheet beside one name cuts other takes; another extension may pick another
    decoder: such names are not taken for one another."""
    lib = (tmp_path / "lib").resolve()
    disc = write(lib / "disc12.wav", noise(6.0, SR, seed=4), SR)
    (lib / "disc12.cue").write_text(DISC)
    (lib / "plain").mkdir()
    os.link(disc, lib / "plain" / "disc12.wav")         # no sheet beside this name
    os.link(disc, lib / "plain" / "disc12 again.WAV")     # the same as that one
    os.link(disc, lib / "plain" / "disc12.bwf")           # another extension
    model = FakeModel()
    s = index(lib, tmp_path / "idx", model)
    got = snapshot(tmp_path / "idx", lib)
    assert got["disc12.wav"]["spans"] != got["plain/disc12.wav"]["spans"]
    assert embedded(model) == len(got["disc12.wav"]["spans"]) + 2 * len(got["plain/disc12.wav"]["spans"])
    assert (s.added, s.same_file) == (4, 1)
    plain = plain_index(copies_of(lib, tmp_path / "copies"), tmp_path / "plain")
    assert plain.same_file == plain.same_audio == 0
    assert_same(got, snapshot(tmp_path / "plain", tmp_path / "copies"))


def test_symbolic_links_to_one_file_are_one_catalog_path(tmp_path):
    """The walk keeps a file by its resolved path: links to it add no name (indexer.scan)."""
    lib = (tmp_path / "lib").resolve()
    target = write(lib / "rain.wav", noise(2.0, SR, seed=1), SR)
    os.symlink(target, lib / "rain link.wav")
    os.symlink(lib / "rain link.wav", lib / "link to link.wav")
    model = FakeModel()
    s = index(lib, tmp_path / "idx", model)
    assert s.added == 1
    assert list(snapshot(tmp_path / "idx", lib)) == ["rain.wav"]
    assert embedded(model) == s.n_segments == 1


def test_a_path_made_a_link_to_an_indexed_file_keeps_the_users_tags_and_gets_its_vectors(linked, tmp_path):
    from tests.test_index_moves import label, rows
    idx = tmp_path / "idx"
    index(linked, idx)
    label(idx, linked / "beep.wav", "beep", "a short beep")
    os.unlink(linked / "beep.wav")
    os.link(linked / "door.wav", linked / "beep.wav")          # `ln -f door.wav beep.wav`
    model = FakeModel()
    s = index(linked, idx, model)
    assert (s.updated, s.unchanged, embedded(model)) == (1, 5, 0)
    got = snapshot(idx, linked)
    assert_same({"beep.wav": got["beep.wav"]}, {"beep.wav": got["door.wav"]})
    assert rows(idx)[str(linked / "beep.wav")]["tags"] == [("beep", "user")]


def test_an_index_that_rounds_its_vectors_embeds_a_new_name_again(linked, tmp_path, monkeypatch):
    """Only an exact index gives vectors back as they were embedded (SQ8 and PQ round them, IVF
    keeps no id map): elsewhere a new name of an indexed file is embedded as any new file."""
    from types import SimpleNamespace

    from indexer.write import IndexWriter
    assert [IndexWriter.copies_read_exactly(SimpleNamespace(meta={"index_kind": kind}))
            for kind in ("flat", "ivf-flat", "ivf-sq8", "opq-ivf-pq")] == [True, False, False, False]
    idx = tmp_path / "idx"
    index(linked, idx)
    monkeypatch.setattr(IndexWriter, "copies_read_exactly", lambda self: False)
    os.link(linked / "beep.wav", linked / "Favourites" / "beep.wav")
    model = FakeModel()
    s = index(linked, idx, model)
    assert (s.added, s.same_file, embedded(model)) == (1, 0, 1)
    got = snapshot(idx, linked)
    assert_same({"b": got["Favourites/beep.wav"]}, {"b": got["beep.wav"]})


def test_the_index_command_counts_the_names_given_another_names_vectors(linked, tmp_path, tiny_clap_dir):
    """`soundsift index` says how many names were given another name's vectors, in its table and
    in --json (the summary's same_file), so a run that embedded less than it added is explained."""
    import json

    from typer.testing import CliRunner

    from ui.cli import app
    idx = str(tmp_path / "idx")
    args = ["index", str(linked), "--index", idx, "--model", str(tiny_clap_dir), "--workers", "0"]
    shutil.copy(linked / "door.wav", linked / "door copy.wav")
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    said = " ".join(table.stdout.split())
    assert "other names of a file" in said and "3 hard links (given its vectors, not embedded again)" in said
    assert "identical copies" in said and "1 copy of another file, byte for byte" in said
    (linked / "more").mkdir()
    os.link(linked / "beep.wav", linked / "more" / "beep.wav")
    again = CliRunner().invoke(app, args + ["--json"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert (summary["added"], summary["same_file"], summary["same_audio"], summary["n_segments"]) == (1, 1, 0, 0)


def test_copies_whose_embedded_cue_sheet_gives_each_name_other_takes_are_embedded_each(tmp_path):
    """An embedded cue sheet naming several files gives a file the tracks of its own name: two
    byte-identical copies named disc1.flac and disc2.flac carry other markers and are cut into
    other takes, so neither is given the other's rows (a copy under its own name still is)."""
    from tests.test_file_metadata import flac_with_comments
    from tests.test_metadata_leftovers import TWO_FILES
    lib = (tmp_path / "lib").resolve()
    first = flac_with_comments(lib / "disc1.flac", {"CUESHEET": TWO_FILES}, wave=noise(3.0, SR, seed=4))
    shutil.copy(first, lib / "disc2.flac")
    (lib / "pack").mkdir()
    shutil.copy(first, lib / "pack" / "disc1.flac")
    summary = index(lib, tmp_path / "idx")
    assert (summary.same_file, summary.same_audio) == (0, 1)            # pack/disc1.flac only
    got = snapshot(tmp_path / "idx", lib)
    assert dict(got["disc1.flac"]["metadata"])["markers"] == "0:00.00 Dog bark · 0:01.00 Cat meow"
    assert dict(got["disc2.flac"]["metadata"])["markers"] == "0:00.00 Gate creak · 0:01.00 Gate latch"
    assert got["pack/disc1.flac"]["spans"] == got["disc1.flac"]["spans"]

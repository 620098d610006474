"""Sound Designer II files: read by their resource fork, wherever it travelled (engine.sound_designer).

The forks here are the ones libsndfile writes (bare, as ``._<name>``), wrapped in an AppleDouble
file the way macOS writes them on exFAT and network drives, and moved into an unpacked zip's
``__MACOSX`` folder; libsndfile's own SD2 reader is the reference for the samples.
"""
from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest
import soundfile as sf

from engine.audio import audio_files, decode, probe
from engine.errors import UnreadableAudio
from engine.sound_designer import fork_locations, sd2_format, string_resources
from engine.system_files import APPLEDOUBLE_MAGIC
from indexer import build_index
from indexer.scan import SKIPPED_FOLDERS, SKIPPED_METADATA, scan
from tests.conftest import tone
from tests.index_fakes import FakeModel

SR = 48_000


def write_sd2(path, seconds: float = 1.5, channels: int = 2, subtype: str = "PCM_24"):
    """An .sd2 file and its bare resource fork ``._<name>``, as libsndfile writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = tone(440, seconds, SR)
    data = np.stack([x * (0.5 + 0.25 * c) for c in range(channels)], axis=1)
    sf.write(str(path), data, SR, format="SD2", subtype=subtype)
    return path, path.with_name("._" + path.name)


def appledouble(fork: bytes | None) -> bytes:
    """An AppleDouble file as macOS writes it: Finder information (entry 9), then the resource
    fork (entry 2) unless ``fork`` is None."""
    parts = [(9, bytes(32))] + ([(2, fork)] if fork is not None else [])
    head = APPLEDOUBLE_MAGIC + b"\x00\x02\x00\x00" + b"Mac OS X        " + struct.pack(">H", len(parts))
    at, entries, body = len(head) + 12 * len(parts), b"", b""
    for entry, data in parts:
        entries += struct.pack(">III", entry, at + len(body), len(data))
        body += data
    return head + entries + body


def reference(path) -> np.ndarray:
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)      # libsndfile, fork beside it
    return data


def test_the_fork_libsndfile_writes_gives_the_parameters(tmp_path):
    for channels, subtype, size in ((2, "PCM_24", 3), (1, "PCM_16", 2)):
        _, fork = write_sd2(tmp_path / f"a{channels}.sd2", channels=channels, subtype=subtype)
        assert sd2_format(fork.read_bytes()).__dict__ == {"sample_rate": SR, "channels": channels,
                                                          "sample_bytes": size}
        assert sd2_format(appledouble(fork.read_bytes())) == sd2_format(fork.read_bytes())
        assert string_resources(fork.read_bytes())[1001].startswith("48000")


def test_an_sd2_beside_its_fork_reads_as_libsndfile_reads_it(tmp_path):
    path, fork = write_sd2(tmp_path / "lib" / "slam.sd2")
    ref = reference(path)
    info = probe(path)
    assert (info.format, info.subtype, info.sample_rate, info.channels, info.frames) == \
        ("SD2", "PCM_24", SR, 2, len(ref))
    with sf.SoundFile(str(path)) as f:
        assert f.format == "SD2"                     # libsndfile's own verdict on the same file
    fork.write_bytes(appledouble(fork.read_bytes()))  # as macOS leaves it on an exFAT drive
    from engine.audio import open_sound
    with open_sound(path) as f:
        assert np.array_equal(f.read(dtype="float32", always_2d=True), ref)
    audio = decode(path, 16_000)
    assert len(audio) == 24_000 and np.abs(audio).max() == pytest.approx((0.25 + 0.375) / 2, abs=0.01)  # mono mix


def test_an_unpacked_zip_keeps_the_fork_under_macosx(tmp_path):
    path, fork = write_sd2(tmp_path / "Library" / "Doors" / "Wood" / "slam.sd2")
    ref = reference(path)
    mirror = tmp_path / "Library" / "__MACOSX" / "Doors" / "Wood" / fork.name
    mirror.parent.mkdir(parents=True)
    mirror.write_bytes(appledouble(fork.read_bytes()))
    fork.unlink()
    assert str(mirror) in fork_locations(str(path))
    assert probe(path).channels == 2
    from engine.audio import open_sound
    with open_sound(path) as f:
        assert np.array_equal(f.read(dtype="float32", always_2d=True), ref)


def test_without_a_usable_fork_one_clear_error(tmp_path):
    path, fork = write_sd2(tmp_path / "hinge.sd2")
    fork.unlink()
    with pytest.raises(UnreadableAudio, match=r"hinge\.sd2: Sound Designer II file without its resource fork"):
        probe(path)
    fork.write_bytes(b"")                       # an empty fork is no fork (macOS's ..namedfork/rsrc)
    with pytest.raises(UnreadableAudio, match="without its resource fork"):
        probe(path)
    fork.write_bytes(appledouble(None))
    with pytest.raises(UnreadableAudio, match="holds Finder information but no resource fork"):
        probe(path)
    fork.write_bytes(b"\x00\x00\x01\x00" + bytes(12))
    with pytest.raises(UnreadableAudio, match="not a resource fork"):
        decode(path, 16_000)


def test_a_library_of_sd2_files_indexes(tmp_path):
    """Forks beside and under __MACOSX index; the fork files are passed over as macOS metadata;
    a file without one is an error row naming the reason, and the run goes on."""
    lib = tmp_path / "lib"
    write_sd2(lib / "a.sd2")
    _, fork_b = write_sd2(lib / "sub" / "b.SD2", channels=1, subtype="PCM_16")
    mirror = lib / "__MACOSX" / "sub" / fork_b.name
    mirror.parent.mkdir(parents=True)
    shutil.move(fork_b, mirror)
    _, fork_c = write_sd2(lib / "c.sd2")
    fork_c.unlink()
    scanned = scan([lib])
    assert sorted(p.rsplit("/", 1)[1] for p in scanned.files) == ["a.sd2", "b.SD2", "c.sd2"]
    assert [p.name for p in audio_files([lib])] == ["a.sd2", "c.sd2", "b.SD2"]
    s = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert (s.added, s.failed) == (2, 1)
    assert s.skipped == {SKIPPED_METADATA: 1, SKIPPED_FOLDERS: 1}
    [error] = s.errors
    assert error["path"].endswith("c.sd2") and "without its resource fork" in error["reason"]

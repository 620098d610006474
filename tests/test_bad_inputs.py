"""A library full of odd files: 0 crashes, every bad file reported with a reason, every good
file indexed. One build over the whole corpus (the fake model, one decoder process), then
one check per kind; permission, growth and a long file get their own runs.

Choices made here (and what the tests pin):
* the container is sniffed, not trusted from the name: a FLAC or an OGG named .wav is
  indexed as what it is;
* a header that promises more audio than the file holds (truncated WAV, absurd data
  size) indexes the audio that decodes, with a warning; so does a compressed stream cut
  in the middle (truncated FLAC), whose decoder stops with an error: the audio before
  the cut is kept (test_index_build checks the warning); a FLAC cut before its first
  audio frame fails;
* a folder named like audio (x.wav) is walked like any folder;
* a symbolic link to a file of the library indexes the file once, under its real path.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from engine.catalog import ErrorRow, File, SegmentRow
from indexer import build_index
from tests.conftest import catalog_session, chirp, noise, tone, write
from tests.index_fakes import FakeModel, drop_read_override

ROOT = Path(__file__).resolve().parents[1]


# --- crafted bytes ---------------------------------------------------------------------

def wav_bytes(pcm: bytes, channels: int = 1, rate: int = 16000, bits: int = 16, fmt_tag: int = 1,
              data_size: int | None = None, extra_chunks: bytes = b"") -> bytes:
    """A RIFF/WAVE file; every header field may lie."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    size = len(pcm) if data_size is None else data_size
    body = b"WAVE" + extra_chunks + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", size) + pcm
    riff = min(0xFFFFFFFF, len(body) if data_size is None else 4 + len(body) - len(pcm) + size)
    return b"RIFF" + struct.pack("<I", riff) + body


def ext80(x: float) -> bytes:
    """An IEEE 754 80-bit extended float (AIFF's sample rate field)."""
    exp = int(np.floor(np.log2(x)))
    mant = int(x / 2.0 ** exp * (1 << 63))
    return struct.pack(">HQ", exp + 16383, mant)


def aiff_bytes(channels: int, frames: int, rate: float = 44100.0) -> bytes:
    comm = struct.pack(">hIh", channels, frames, 16) + ext80(rate)
    ssnd = struct.pack(">II", 0, 0) + b"\x00\x01" * max(0, frames * max(channels, 1))
    body = b"AIFF" + b"COMM" + struct.pack(">I", len(comm)) + comm
    body += b"SSND" + struct.pack(">I", len(ssnd)) + ssnd
    return b"FORM" + struct.pack(">I", len(body)) + body


def pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


# --- the corpus ------------------------------------------------------------------------

GOOD = "indexed"


def build_corpus(lib: Path) -> dict[str, tuple[str, str]]:
    """Write every kind into ``lib``; returns name → (path relative to lib, expectation).

    The expectation is GOOD or a word the error reason must contain.
    """
    k: dict[str, tuple[str, str]] = {}
    rng = np.random.default_rng(0)

    def add(kind: str, rel: str, expect: str) -> Path:
        k[kind] = (rel, expect)
        p = lib / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    # unusable files
    add("empty file", "empty.wav", "0 bytes").write_bytes(b"")
    add("0-byte mp3", "zero.mp3", "0 bytes").write_bytes(b"")
    add("text named .wav", "text.wav", "not readable").write_text("RIFF? no, a shopping list\n")
    add("random bytes named .flac", "noise.flac", "not readable").write_bytes(rng.bytes(5000))
    add("random bytes named .mp3", "noise.mp3", "format not recognised").write_bytes(rng.bytes(5000))
    add("header only, no frames", "noframes.wav", "empty").write_bytes(wav_bytes(b""))
    add("bogus format tag", "bogus_fmt.wav", "not readable").write_bytes(
        wav_bytes(pcm16(tone(440, 0.5, 16000)), fmt_tag=0x7777))
    add("zero channels in fmt", "zero_ch.wav", "not readable").write_bytes(
        wav_bytes(pcm16(tone(440, 0.5, 16000)), channels=0))
    add("AIFF with zero channels", "zero_ch.aiff", "not readable").write_bytes(aiff_bytes(0, 100))
    x = noise(1.0, 16000, seed=1)
    x[500] = np.nan
    write(add("NaN float wav", "nan.wav", "NaN"), x, 16000, subtype="FLOAT")
    y = noise(1.0, 16000, seed=2)
    y[-1] = -np.inf
    write(add("Inf float wav", "inf.wav", "Inf"), y, 16000, subtype="FLOAT")
    flac = write(add("truncated flac", "trunc.flac", GOOD), noise(3.0, 44100, seed=3), 44100)
    flac.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    flac = write(add("flac cut before its first frame", "stub.flac", "decoding failed after 0 frames"),
                 noise(3.0, 44100, seed=3), 44100)
    flac.write_bytes(flac.read_bytes()[:200])
    add("broken symlink", "dangling.wav", "broken symbolic link").symlink_to(lib / "nowhere.wav")
    a, b = add("symlink loop", "loop_a.wav", "symbolic link loop"), lib / "loop_b.wav"
    a.symlink_to(b)
    b.symlink_to(a)
    k["non-UTF-8 file name"] = ("bad_\\xff_name.wav", "not valid UTF-8")   # stored escaped
    tmp = write(lib / "tmp_name.wav", tone(300, 0.5, 16000), 16000)
    os.rename(tmp, os.fsencode(lib) + b"/bad_\xff_name.wav")

    write(add("one sample at 48 kHz", "one_sample_48k.wav", "too short: not one sample left once resampled"),
          np.array([0.5], np.float32), 48000)

    # odd but good files
    write(add("one sample", "one_sample.wav", GOOD), np.array([0.5], np.float32), 16000)
    write(add("8 channels", "eight.wav", GOOD),
          np.stack([tone(100 * (c + 1), 1.0, 48000) for c in range(8)], 1), 48000)
    write(add("192 kHz", "hi_192k.wav", GOOD), chirp(1000, 60000, 1.0, 192000), 192000, subtype="PCM_24")
    write(add("8 kHz", "lo_8k.wav", GOOD), chirp(100, 3500, 2.0, 8000), 8000)
    write(add("flac named .wav", "really_flac.wav", GOOD), chirp(200, 900, 1.5, 22050), 22050, format="FLAC")
    write(add("ogg named .wav", "really_ogg.wav", GOOD), tone(660, 1.5, 44100), 44100, format="OGG")
    full = wav_bytes(pcm16(chirp(300, 3000, 2.0, 16000)))
    add("truncated wav (header says 2 s)", "trunc.wav", GOOD).write_bytes(full[: 44 + 16000 * 2])
    add("header claims a huge length", "huge_claim.wav", GOOD).write_bytes(
        wav_bytes(pcm16(tone(500, 1.0, 16000)), data_size=0x7FFFFF00))
    add("unknown chunks before fmt", "junk_chunks.wav", GOOD).write_bytes(
        wav_bytes(pcm16(tone(700, 1.0, 16000)), extra_chunks=b"JUNK" + struct.pack("<I", 6) + b"\0" * 6))
    write(add("digital silence", "silence.wav", GOOD), np.zeros(16000, np.float32), 16000)
    write(add("float beyond ±1", "loud.wav", GOOD), 8.0 * tone(50, 1.0, 16000), 16000, subtype="FLOAT")
    write(add("8-bit unsigned", "u8.wav", GOOD), tone(440, 1.0, 11025), 11025, subtype="PCM_U8")
    write(add("µ-law", "ulaw.wav", GOOD), tone(440, 1.0, 8000), 8000, subtype="ULAW")
    write(add("directory named x.wav", "folder.wav/inside.wav", GOOD), tone(880, 1.0, 16000), 16000)
    target = write(add("symlink to a library file", "sub/target.wav", GOOD), tone(990, 1.0, 16000), 16000)
    (lib / "link_to_target.wav").symlink_to(target)
    return k


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    lib = tmp_path_factory.mktemp("badlib").resolve()
    kinds = build_corpus(lib)
    idx = tmp_path_factory.mktemp("badidx")
    summary = build_index([lib], idx, FakeModel(), workers=1, batch_size=4, progress=False)
    with catalog_session(idx) as s:
        files = {f.path: (f.channels, f.sample_rate, f.format) for f in s.scalars(select(File))}
        n_segments = len(list(s.scalars(select(SegmentRow.id))))
        errors = {e.path: e.reason for e in s.scalars(select(ErrorRow))}
    return lib, kinds, summary, files, errors, n_segments


def test_at_least_twenty_kinds_and_no_crash(corpus):
    lib, kinds, summary, files, errors, n_segments = corpus
    assert len(kinds) >= 20
    good = [k for k, (_, e) in kinds.items() if e == GOOD]
    bad = [k for k, (_, e) in kinds.items() if e != GOOD]
    assert len(good) == len(files) == summary.added          # every good file, once
    # every bad file has a row (the symlink loop has two: both of its links)
    assert len(bad) + 1 == len(errors) == summary.failed
    assert errors[str(lib / "loop_b.wav")] == "symbolic link loop"
    assert summary.totals["segments"] == n_segments


def pytest_generate_tests(metafunc):
    if "kind" in metafunc.fixturenames and metafunc.function.__name__ == "test_each_kind":
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            names = list(build_corpus(Path(d)))
        metafunc.parametrize("kind", names)


def test_each_kind(corpus, kind):
    lib, kinds, summary, files, errors, _ = corpus
    rel, expect = kinds[kind]
    path = os.path.realpath(lib / rel) if expect == GOOD else str(lib / rel)
    if expect == GOOD:
        assert path in files, (kind, errors.get(str(lib / rel)))
    else:
        reason = errors.get(path)
        assert reason is not None, (kind, sorted(errors))
        assert expect in reason, (kind, reason)
        assert "does not exist" not in reason or "symbolic" in reason


# --- no read permission: root reads anything, so the run drops the capabilities that let it

INDEX_SCRIPT = """
import json, sys
from indexer import build_index
from tests.index_fakes import FakeModel
s = build_index([sys.argv[1]], sys.argv[2], FakeModel(), workers=1, progress=False)
print(json.dumps(s.to_dict()))
"""


def test_file_without_read_permission(tmp_path):
    lib = tmp_path / "lib"
    ok = write(lib / "ok.wav", tone(440, 1.0, 16000), 16000)
    secret = write(lib / "secret.wav", tone(550, 1.0, 16000), 16000)
    secret.chmod(0)
    r = subprocess.run([sys.executable, "-c", INDEX_SCRIPT, str(lib), str(tmp_path / "idx")],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                       text=True, preexec_fn=drop_read_override, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert s["added"] == 1 and s["failed"] == 1
    assert s["errors"] == [{"path": str(secret.resolve()), "reason": "permission denied: make the "
                            "file readable"}]
    assert ok.exists()


# --- a file that grows (or changes) between the scan and its decoding --------------------

def test_file_growing_while_indexed(tmp_path, monkeypatch, caplog):
    import indexer.runner as runner
    lib = tmp_path / "lib"
    growing = write(lib / "growing.wav", tone(440, 1.0, 16000), 16000)
    write(lib / "still.wav", tone(660, 1.0, 16000), 16000)
    real_scan = runner.scan

    def scan_then_grow(paths):
        result = real_scan(paths)
        write(growing, tone(440, 5.0, 16000), 16000)     # the recorder keeps going
        return result

    monkeypatch.setattr(runner, "scan", scan_then_grow)
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        s1 = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    monkeypatch.setattr(runner, "scan", real_scan)
    assert s1.added == 2 and s1.failed == 0
    said = [r.getMessage() for r in caplog.records if "changed while it was being indexed" in r.getMessage()]
    assert len(said) == 1 and str(growing) in said[0] and "the next run indexes it again" in said[0]
    assert s1.audio_seconds == pytest.approx(6.0, abs=0.01)   # what was there when decoded
    # the catalog kept the size seen by the scan, so the next run sees a changed file ...
    s2 = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert (s2.updated, s2.unchanged) == (1, 1)
    # ... and after that, nothing to do
    s3 = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert (s3.added, s3.updated, s3.unchanged) == (0, 0, 2)


# --- a long file is streamed: memory does not grow with its length ----------------------

LONG_SCRIPT = """
import json, resource, sys
from indexer import build_index
from tests.index_fakes import FakeModel
build_index([sys.argv[1]], sys.argv[3] + "/warm-index", FakeModel(), workers=0, progress=False)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
s = build_index([sys.argv[2]], sys.argv[3] + "/long", FakeModel(), workers=0, progress=False)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kib": after - before, "segments": s.n_segments,
                  "seconds": s.audio_seconds, "failed": s.failed}))
"""


def test_hour_long_file_streams_in_bounded_memory(tmp_path):
    """60 minutes at 8 kHz (58 MB of PCM, 230 MB once decoded to float32 at the model's
    16 kHz), written block by block; indexing it grows peak RSS by far less than that."""
    minutes, sr = 60, 8000
    long = tmp_path / "long.wav"
    with sf.SoundFile(str(long), "w", sr, 1, subtype="PCM_16") as f:
        for m in range(minutes):
            f.write(chirp(100 + m, 3000, 60.0, sr, amp=0.3))
    short = write(tmp_path / "warm" / "short.wav", chirp(100, 3000, 3.0, sr), sr)
    r = subprocess.run([sys.executable, "-c", LONG_SCRIPT, str(short.parent), str(long), str(tmp_path)],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["failed"] == 0 and out["seconds"] == pytest.approx(minutes * 60, abs=0.01)
    assert out["segments"] == minutes * 60 - 1                 # 2 s windows, 1 s hop
    decoded_mib = minutes * 60 * 16000 * 4 / 2**20
    assert out["growth_kib"] / 1024 < decoded_mib / 4, out      # < 57 MiB of 230

"""The decoder-count default (indexer.decode.default_workers) and the library the indexing
benchmark writes (benchmarks/indexing.py), which the worker-count decision was measured on."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from indexer.decode import default_workers


def _bench():
    path = Path(__file__).parent.parent / "benchmarks" / "indexing.py"
    spec = importlib.util.spec_from_file_location("bench_indexing", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_default_workers_is_half_the_cores_at_least_one_at_most_eight(monkeypatch):
    """Measured on 2 cores (benchmarks/indexing.py --workers-list 1 2 0): 1 decoder beats 2 and
    in-process decoding; the model's own threads need the other cores."""
    for cores, expected in [(None, 1), (1, 1), (2, 1), (3, 1), (4, 2), (16, 8), (64, 8)]:
        monkeypatch.setattr("os.cpu_count", lambda c=cores: c)
        assert default_workers() == expected, cores


def test_library_generator_writes_in_blocks_so_libvorbis_never_gets_one_long_buffer(tmp_path, monkeypatch):
    """libvorbis allocas a buffer as long as one write: ~2.8 M frames in one call (29 s of 96 kHz)
    overflowed the stack and left a headers-only .ogg that the indexer rightly calls empty."""
    bench = _bench()
    sizes: list[int] = []
    write = sf.SoundFile.write

    def spy(self, data):
        sizes.append(len(data))
        return write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", spy)
    paths = bench.make_library(tmp_path, n_files=5, minutes=0.5)     # 30 s in all, one long file
    total = sum(sf.info(str(p)).frames for p in paths)
    assert sizes and max(sizes) <= 65536 < total
    assert all(sf.info(str(p)).frames > 0 for p in paths)


def test_library_generator_leaves_no_partial_file_when_a_write_dies(tmp_path, monkeypatch):
    """A write that dies midway leaves nothing under the final name, so the next run (which reuses
    files that exist) writes the file again instead of keeping a headers-only one."""
    bench = _bench()
    write = sf.SoundFile.write
    calls = {"n": 0}

    def dies_midway(self, data):     # on the second block, or on one long buffer as libvorbis did
        calls["n"] += 1
        if calls["n"] > 1 or len(data) > 65536:
            raise RuntimeError("encoder crashed")
        return write(self, data)

    monkeypatch.setattr(sf.SoundFile, "write", dies_midway)
    with pytest.raises(RuntimeError):
        bench.make_library(tmp_path, n_files=1, minutes=0.1)      # one 6 s file: several blocks
    assert not list(tmp_path.rglob("*s0000.*"))      # neither the file nor its temp name
    monkeypatch.setattr(sf.SoundFile, "write", write)
    (path,) = bench.make_library(tmp_path, n_files=1, minutes=0.1)
    x, sr = sf.read(str(path))
    assert len(x) == pytest.approx(6 * sr, abs=1)


def test_a_short_ogg_vorbis_reads_as_its_samples(tmp_path):
    """The skipped .ogg was genuinely empty (see above), not a short file our reader misreads:
    0.2 s of Ogg Vorbis probes with its frames."""
    from engine.audio import probe

    p = tmp_path / "short.ogg"
    sr = 96000
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(0.2 * sr)) / sr)).astype(np.float32)
    sf.write(str(p), np.stack([x, x], axis=1), sr)
    info = probe(str(p))
    assert info.frames == len(x) and info.duration == pytest.approx(0.2, abs=1e-3)

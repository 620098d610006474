"""`soundsift duplicates` at scale (session 35): each file is decoded once while the pairs still
needing it fit the budget, and the per-file cap is applied without holding every pair over the
cosine, with the same pairs, groups and differences as before."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import duplicates as dup

SECOND = dup.RATE


def _noise(seed: int, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(int(seconds * SECOND))).astype(np.float32)


def _counting_decodes(monkeypatch) -> Counter:
    decodes: Counter = Counter()
    real = dup.decode

    def decode(path, rate, *args, **kwargs):
        decodes[str(path)] += 1
        return real(path, rate, *args, **kwargs)
    monkeypatch.setattr(dup, "decode", decode)
    return decodes


def test_a_file_needed_first_and_last_is_decoded_once(tmp_path: Path, monkeypatch):
    """Twelve 1 s noises of one duration; the stored vectors pair them in a chain 0–1, 1–2, …,
    10–11, and file 11 also with file 0, so it is needed by the first pair and the last. With room
    for five files' audio the chain's finished files are let go and file 11 stays: it used to be
    dropped as the least recently used and decoded a second time for the last pair."""
    n = 12
    paths = []
    for k in range(n):
        paths.append(str(tmp_path / f"noise_{k:02d}.wav"))
        sf.write(paths[-1], _noise(k), SECOND)
    eye = np.eye(n, dtype=np.float32)
    vectors = np.array([eye[k] + eye[k + 1] for k in range(n - 1)] + [eye[0] + eye[n - 1]], np.float32) / np.sqrt(2)
    decodes = _counting_decodes(monkeypatch)
    monkeypatch.setattr(dup, "CACHE_BYTES", 5 * SECOND * 4)
    report = dup.find_duplicates(paths, vectors, np.ones(n), np.full(n, 1000), min_cosine=0.4, per_file=None)
    assert report.candidates == n and report.compared == n and not report.groups
    assert set(decodes) == set(paths)
    assert max(decodes.values()) == 1, {Path(p).name: c for p, c in decodes.items() if c > 1}


def _library(root: Path) -> tuple[list[str], list[set[str]]]:
    """Recordings with copies (quieter, shifted by encoder-like delay, resampled, byte-identical)
    among noises and chirps of about their duration; the expected groups by file name."""
    rng = np.random.default_rng(7)
    paths, groups = [], []

    def write(name: str, x: np.ndarray, rate: int = SECOND) -> str:
        path = root / name
        sf.write(path, x, rate)
        paths.append(str(path))
        return name

    for r in range(6):
        seconds = 0.8 + 0.02 * r
        t = np.arange(int(seconds * SECOND)) / SECOND
        x = (np.sin(2 * np.pi * (300 + 500 * r) * t * (1 + t)) * np.hanning(len(t)) * 0.5 +
             0.05 * rng.standard_normal(len(t))).astype(np.float32)
        names = {write(f"rec{r}.wav", x), write(f"rec{r}_quiet.wav", 0.5 * x),
                 write(f"rec{r}_late.wav", np.concatenate([np.zeros(37 * (r + 1), np.float32), x]))}
        if r % 2:
            import soxr
            names.add(write(f"rec{r}_44k.wav", soxr.resample(x, SECOND, 44100).astype(np.float32), 44100))
        groups.append(names)
    for k in range(20):
        write(f"other_{k:02d}.wav", _noise(100 + k, 0.8 + 0.005 * k) * np.hanning(int((0.8 + 0.005 * k) * SECOND)))
    return paths, groups


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[list[str], list[set[str]], np.ndarray, np.ndarray]:
    root = tmp_path_factory.mktemp("scale35_dups")
    paths, groups = _library(root)
    durations = np.array([sf.info(p).duration for p in paths])
    rng = np.random.default_rng(3)
    vectors = (np.ones((len(paths), 8)) + 0.01 * rng.standard_normal((len(paths), 8))).astype(np.float32)
    return paths, groups, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), durations


@pytest.mark.parametrize("per_file", [None, 4])
def test_the_same_groups_whatever_the_budget_each_file_decoded_once(library, monkeypatch, per_file):
    """Every file passes the cosine, so each meets all others of its duration (or its 4 closest):
    the copies form their groups, the noises none, with the same differences when nothing can be
    kept between pairs; with the default budget each file is decoded once."""
    paths, expected, vectors, durations = library
    sizes = np.array([Path(p).stat().st_size for p in paths])
    decodes = _counting_decodes(monkeypatch)
    roomy = dup.find_duplicates(paths, vectors, durations, sizes, per_file=per_file)
    assert max(decodes.values()) == 1
    monkeypatch.setattr(dup, "CACHE_BYTES", 1)
    monkeypatch.setattr(dup, "SPECTRA_BYTES", 1)
    tight = dup.find_duplicates(paths, vectors, durations, sizes, per_file=per_file)
    assert [g.to_dict() for g in tight.groups] == [g.to_dict() for g in roomy.groups]
    assert (tight.candidates, tight.confirmed, tight.left_out) == (roomy.candidates, roomy.confirmed, roomy.left_out)
    if per_file is None:
        assert sorted(sorted(Path(p).name for p in g.paths) for g in roomy.groups) == sorted(map(sorted, expected))


@pytest.mark.parametrize("tracked", [dup.MOST_TRACKED if hasattr(dup, "MOST_TRACKED") else 256, 2])
def test_closest_candidates_are_the_capped_pairs_in_their_order(monkeypatch, tracked):
    """The two sweeps give what capping every pair over the cosine gives, ties included (files
    with one vector: cosines exactly equal, ranked by their order), and count every pair; so does
    a cap over MOST_TRACKED (all pairs taken, then capped)."""
    from engine.duplicates import candidate_arrays, closest_candidates, closest_per_file

    monkeypatch.setattr(dup, "MOST_TRACKED", tracked, raising=False)
    rng = np.random.default_rng(1)
    for trial in range(150):
        n = int(rng.integers(2, 90))
        base = rng.standard_normal((max(1, n // 3), 4))
        v = base[rng.integers(0, len(base), n)] + rng.standard_normal((n, 4)) * rng.choice([0.0, 0.05, 0.3])
        v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        d = rng.choice([1.0, 1.01, 1.1, 2.0], n) if trial % 2 else rng.uniform(0.2, 1.5, n)
        min_cosine, per_file = float(rng.choice([-1.0, 0.5, 0.9])), int(rng.integers(1, 6))
        i, j, c = candidate_arrays(v, d, min_cosine)
        *capped, every = closest_candidates(v, d, per_file, min_cosine)
        for got, want in zip(capped, closest_per_file(i, j, c, per_file)):
            np.testing.assert_array_equal(got, want)
        assert every == len(i)

"""A keyword search collapses copies whichever side met them: a hit the keyword side brought in
(scored from the stored vectors) and its byte-identical copy met only on the sound side (scored
as FAISS rounds it) are scored alike, so they tie. With an excluded text (``search --keywords
--not …``) the scores grow and FAISS's rounding and numpy's parted by more than the tie (1e-6)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import engine.query
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel

pytestmark = pytest.mark.usefixtures("private_cache")

SR = 16_000


@pytest.fixture
def takes(tmp_path) -> tuple[Path, Path]:
    """``gate latch.wav`` (a low tone, named by the query) and its byte-identical copy
    ``archive 1.wav`` (indexed first: FAISS puts it ahead of its tie), under nine noises the
    query's sound ranks above both. Returns (library, index)."""
    lib = (tmp_path / "lib").resolve()
    lib.mkdir()
    take = write(lib / "gate latch.wav", tone(150, 2.0, SR), SR)
    shutil.copyfile(take, lib / "archive 1.wav")
    for i in range(9):
        write(lib / f"rain {i}.wav", noise(2.0, SR, seed=i), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    return lib, tmp_path / "idx"


def rounded_as_faiss(monkeypatch, by: float) -> None:
    """FAISS's scores off the stored vectors' by ``by`` (its sums rounded otherwise: about that
    much for an excluded text's scores near 30 in 512 dimensions)."""
    ranked = engine.query.rank_segments

    def rank_segments(*args, **kwargs):
        return [(key, (score + by, seg)) for key, (score, seg) in ranked(*args, **kwargs)]
    monkeypatch.setattr(engine.query, "rank_segments", rank_segments)


@pytest.mark.parametrize("exclude", [["thunder"], []])
def test_a_keyword_hit_and_its_copy_met_only_on_the_sound_side_collapse(takes, monkeypatch, exclude):
    """k=2 pools the sound's 10 best files: the nine noises and ``archive 1.wav``, not its tie
    ``gate latch.wav``, which only its name brings in. The copy is one of the sound side's files
    only, and is listed as the hit's copy, its score the stored vectors'."""
    lib, idx = takes
    monkeypatch.setattr(engine.query, "KEYWORD_POOL", 1)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        exact = {h.path: h.score for h in index.search_text(
            "gate latch", k=11, keywords=True, exclude=exclude, exclude_weight=0.5, collapse_copies=False)}
        rounded_as_faiss(monkeypatch, 3e-6)
        every = index.search_text("gate latch", k=2, keywords=True, exclude=exclude, exclude_weight=0.5,
                                  collapse_copies=False)
        hits = index.search_text("gate latch", k=2, keywords=True, exclude=exclude, exclude_weight=0.5)
    assert str(lib / "gate latch.wav") in [h.path for h in every]
    assert str(lib / "archive 1.wav") not in [h.path for h in every]       # the sound side's only
    led = next(h for h in hits if h.path == str(lib / "gate latch.wav"))
    assert led.copies == [str(lib / "archive 1.wav")]
    assert [h.score for h in hits] == [exact[h.path] for h in hits]

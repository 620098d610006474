"""Hit scores are cosines and stay in [-1, 1]: a float32 inner product of a normalised vector with
itself can come out at 1.0000001, which a hit must not report (engine.query._reported); a search
with excluded sounds, whose score is no cosine, is left as it is."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.models.base import l2_normalize
from engine.query import SoundIndex
from engine.vectors import new_index
from query_fixtures import FakeModel, FileSpec, write_index

DIM = 16


pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


def faiss_score(stored: np.ndarray, query: np.ndarray) -> float:
    """What FAISS scores ``query`` against ``stored`` normalised as write_index stores it, in the
    index type the indexer writes."""
    index = new_index(DIM)
    index.add_with_ids(l2_normalize(np.atleast_2d(stored)), np.array([7], np.int64))
    scores, _ = index.search(np.ascontiguousarray(np.atleast_2d(query), np.float32), 1)
    return float(scores[0, 0])


def faiss_self_score(v: np.ndarray) -> float:
    """What FAISS scores a normalised vector against itself."""
    return faiss_score(v, l2_normalize(np.atleast_2d(v)))


def over_one() -> np.ndarray:
    """A vector whose normalised self inner product FAISS rounds past 1 (a third of random ones)."""
    for seed in range(1000):
        v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
        if faiss_self_score(v) > 1.0:
            return v
    raise AssertionError("no vector scores itself over 1 here: the test would prove nothing")


@pytest.fixture
def self_index(tmp_path):
    """/lib/self.wav holds a vector FAISS scores over 1 against itself; two other files."""
    rng = np.random.default_rng(11)
    v = over_one()
    files = [FileSpec("/lib/self.wav", v), FileSpec("/lib/a.wav", rng.standard_normal((2, DIM))),
             FileSpec("/lib/b.wav", rng.standard_normal(DIM))]
    write_index(tmp_path / "idx", files, dim=DIM)
    return tmp_path / "idx", v


@pytest.mark.parametrize("per_file", [True, False])
def test_a_file_found_by_its_own_vector_scores_at_most_1(self_index, per_file):
    root, v = self_index
    assert faiss_self_score(v) > 1.0                    # what the hit reported before
    with SoundIndex.open(root, model=FakeModel(DIM)) as index:
        for hits in (index.similar_to_file("/lib/self.wav", k=3, per_file=per_file),
                     index.search_vectors(l2_normalize(v), k=3, per_file=per_file)):
            assert hits[0].path == "/lib/self.wav"
            assert hits[0].score == 1.0 and hits[0].to_dict()["score"] == 1.0
            assert all(-1.0 <= h.score <= 1.0 for h in hits)
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_text_search_and_keyword_search_clamp_a_text_vector_found_as_itself(tmp_path):
    """A stored segment equal to the query text's vector: plain and keyword search give 1.0."""
    model = FakeModel(DIM)
    text = next(t for t in (f"query {i}" for i in range(1000))
                if faiss_score(model.embed_text([t])[0], model.embed_text([t])[0]) > 1.0)
    rng = np.random.default_rng(5)
    files = [FileSpec("/lib/query.wav", model.embed_text([text])[0]),
             FileSpec("/lib/other.wav", rng.standard_normal(DIM))]
    write_index(tmp_path / "idx", files, dim=DIM)
    with SoundIndex.open(tmp_path / "idx", model=model) as index:
        for keywords in (False, True):
            hit = index.search_text(text, k=2, keywords=keywords)[0]
            assert (hit.path, hit.score) == ("/lib/query.wav", 1.0)


def test_scores_of_a_search_with_excluded_sounds_are_not_clamped(tmp_path):
    """cos − 0.5 · cos(excluded) passes 1 for a segment that is the text and opposes the
    excluded sound: that score is no cosine and stays as it is."""
    model = FakeModel(DIM)
    t = model.embed_text(["wanted"])[0]
    unwanted = next(u for u in (f"not {i}" for i in range(1000)) if float(model.embed_text([u])[0] @ t) < -0.3)
    write_index(tmp_path / "idx", [FileSpec("/lib/wanted.wav", t)], dim=DIM)
    with SoundIndex.open(tmp_path / "idx", model=model) as index:
        hit = index.search_text("wanted", k=1, exclude=[unwanted])[0]
    expected = 1.0 - 0.5 * float(model.embed_text([unwanted])[0] @ t)
    assert hit.score > 1.15 and hit.score == pytest.approx(expected, abs=1e-5)


def test_similar_json_says_at_most_1(self_index):
    """`soundsift similar FILE --json` on an indexed file: itself first, score 1.0, not 1.0000001."""
    from ui.cli import app
    root, _ = self_index
    result = CliRunner().invoke(app, ["similar", "/lib/self.wav", "--index", str(root), "--all-segments",
                                      "-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert hits[0]["path"] == "/lib/self.wav" and hits[0]["score"] == 1.0

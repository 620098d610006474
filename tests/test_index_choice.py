"""The index-type decision is a pure function, pinned here (autofaiss style)."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from engine.index_choice import (choose_index, needs_rebuild, parse_memory_budget, physical_memory,
                                 recall_at_k, tune_nprobe)

GiB = 1 << 30


@pytest.mark.parametrize("n, dim, budget, factory, kind", [
    (0, 384, GiB, "IDMap2,Flat", "flat"),
    (5_000, 512, GiB, "IDMap2,Flat", "flat"),
    (100_000, 512, GiB, "IDMap2,Flat", "flat"),
    (100_001, 512, GiB, "IVF1024,Flat", "ivf-flat"),
    (1_000_000, 512, 4 * GiB, "IVF4096,Flat", "ivf-flat"),
    (1_000_000, 512, 1 * GiB, "IVF4096,SQ8", "ivf-sq8"),
    (1_000_000, 512, 256 << 20, "OPQ64,IVF4096,PQ64np", "opq-ivf-pq"),
    (10_000_000, 384, 64 * GiB, "IVF16384,Flat", "ivf-flat"),
    (50_000, 512, 1 << 20, "OPQ64,IVF1024,PQ64np", "opq-ivf-pq"),  # small but over a tiny budget
])
def test_choice_pinned(n, dim, budget, factory, kind):
    c = choose_index(n, dim, budget)
    assert (c.factory, c.kind) == (factory, kind)
    if kind != "flat":
        assert 0 < c.train_size <= n
        assert c.params["nprobe"] >= 8


def test_choice_bytes_fit_budget_when_compressed():
    c = choose_index(1_000_000, 512, 1 * GiB)
    assert c.bytes_per_vector * 1_000_000 <= 1 * GiB


def test_bad_arguments():
    with pytest.raises(ValueError):
        choose_index(10, 0, GiB)


def test_recall_at_k_hand_cases():
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(truth, truth, 3) == 1.0
    assert recall_at_k(np.array([[1, 9, 9], [9, 9, 9]]), truth, 3) == pytest.approx(1 / 6)


def test_tune_nprobe_reaches_target_on_clustered_data():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((50, 32)).astype(np.float32)
    x = centers[rng.integers(0, 50, 20_000)] + 0.3 * rng.standard_normal((20_000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = faiss.index_factory(32, "IVF256,Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(x[:8000])
    index.add(x)
    q = x[rng.choice(len(x), 100, replace=False)]
    exact = faiss.IndexFlatIP(32)
    exact.add(x)
    _, truth = exact.search(q, 10)
    nprobe, recall = tune_nprobe(index, q, truth, start=1, nlist=256)
    assert recall >= 0.95
    assert faiss.extract_index_ivf(index).nprobe == nprobe       # left at the chosen value
    # the value below the chosen one must miss the target (bisection: the smallest integer)
    if nprobe > 1:
        faiss.extract_index_ivf(index).nprobe = nprobe - 1
        _, ids = index.search(q, 10)
        assert recall_at_k(ids, truth) < 0.95

    # a caller that already measured a miss passes it on: same answer, that nprobe not searched again
    assert nprobe >= 4
    probed = []

    def search(queries, n):
        probed.append(faiss.extract_index_ivf(index).nprobe)
        return index.search(queries, n)[1]
    miss = nprobe // 2
    again, again_recall = tune_nprobe(index, q, truth, start=2 * miss, nlist=256, search=search, known_miss=miss)
    assert (again, again_recall) == (nprobe, recall) and miss not in probed and probed[0] == 2 * miss


def test_tune_nprobe_with_growth_and_tolerance_stops_near_the_smallest_hit():
    """The warm path of a commit: from a previous value that just missed, small steps and a
    bisection that stops within 5 % above the smallest nprobe reaching the target."""
    index = faiss.index_factory(8, "IVF2048,Flat", faiss.METRIC_INNER_PRODUCT)   # never searched
    truth = np.arange(10)[None, :]
    probed = []

    def search(queries, n):            # recall 1 from nprobe 700 on, 0 below: a step at 700
        nprobe = faiss.extract_index_ivf(index).nprobe
        probed.append(nprobe)
        return truth if nprobe >= 700 else truth + 100
    q = np.zeros((1, 8), np.float32)
    exact, _ = tune_nprobe(index, q, truth, start=550, nlist=2048, search=search, known_miss=549)
    exact_searches, probed[:] = len(probed), []
    near, recall = tune_nprobe(index, q, truth, start=687, nlist=2048, search=search, known_miss=549,
                               growth=1.25, tolerance=0.05)
    assert exact == 700 and recall == 1.0
    assert 700 <= near <= 700 * 1.05 and faiss.extract_index_ivf(index).nprobe == near
    assert probed[0] == 687 and probed[1] == 859 and len(probed) < exact_searches / 2


@pytest.mark.parametrize("n, factory", [
    (9_983, "IDMap2,Flat"),          # < 39 · 256: too few to train, exact whatever the budget
    (9_984, "OPQ64,IVF256,PQ64np"),
    (20_000, "OPQ64,IVF512,PQ64np"),  # 4·√n ≈ 566 → 512 ≤ n/39
    (15_000, "OPQ64,IVF256,PQ64np"),  # 4·√n ≈ 490 → 512, capped at n/39 ≈ 385 → 256
    (200_000, "OPQ64,IVF2048,PQ64np"),
])
def test_small_counts_and_the_list_cap_under_a_tiny_budget(n, factory):
    assert choose_index(n, 512, 1 << 20).factory == factory


def test_tier_boundaries_can_be_moved_for_tests():
    assert choose_index(2_000, 32, GiB, exact_max=500, min_nlist=8).factory == "IVF32,Flat"
    assert choose_index(400, 32, GiB, exact_max=500, min_nlist=8).factory == "IDMap2,Flat"


@pytest.mark.parametrize("current, n, rebuild", [
    (None, 5_000, False),                  # pre-choice indexes were exact
    ("IDMap2,Flat", 100_000, False),
    ("IDMap2,Flat", 100_001, True),        # grew past the exact tier
    ("IVF1024,Flat", 120_000, False),      # nlist 1024 covers 4·√n in [724, 1448]: n ≤ 131072
    ("IVF1024,Flat", 150_000, True),       # nlist 2048 now: retrain
    ("IVF4096,Flat", 2_000_000, False),    # one band spans 4× in n
    ("IVF4096,Flat", 600_000, False),
    ("IVF1024,Flat", 50_000, True),        # shrank back into the exact tier
])
def test_needs_rebuild_pinned(current, n, rebuild):
    assert needs_rebuild(current, choose_index(n, 512, 8 * GiB)) is rebuild


@pytest.mark.parametrize("text, expected", [
    ("4G", 4 * GiB), ("4GiB", 4 * GiB), ("512M", 512 << 20), ("1.5GB", 3 * GiB // 2),
    ("100k", 100 << 10), ("123456", 123456), (1000, 1000),
])
def test_parse_memory_budget(text, expected):
    assert parse_memory_budget(text) == expected


def test_parse_memory_budget_percent_and_errors(monkeypatch):
    assert parse_memory_budget("50%") == physical_memory() // 2
    for bad in ("lots", "0", "-1G", "4X"):
        with pytest.raises(ValueError, match="memory budget"):
            parse_memory_budget(bad)
    from engine import index_choice
    monkeypatch.setenv(index_choice.MEMORY_BUDGET_ENV, "3G")
    assert index_choice.default_memory_budget() == 3 * GiB
    monkeypatch.delenv(index_choice.MEMORY_BUDGET_ENV)
    assert index_choice.default_memory_budget() == physical_memory() // 4


def test_without_self_drops_the_query_own_id():
    from engine.index_choice import without_self
    ids = np.array([[7, 1, 2, 3], [4, 5, 9, 6], [1, 2, 3, 4]])
    assert without_self(ids, np.array([7, 9, 8]), 3).tolist() == [[1, 2, 3], [4, 5, 6], [1, 2, 3]]
    assert without_self(ids, None, 2).tolist() == [[7, 1], [4, 5], [1, 2]]


def test_self_matches_do_not_inflate_tuned_recall():
    """On structureless data, own-vector queries score ≥ 0.1 more when they may find
    themselves; with self_ids the tuned recall is the neighbours' recall only."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4000, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = faiss.index_factory(32, "IVF64,Flat", faiss.METRIC_INNER_PRODUCT)
    index.train(x)
    index.add(x)
    rows = rng.choice(len(x), 100, replace=False)
    exact = faiss.IndexFlatIP(32)
    exact.add(x)
    _, truth11 = exact.search(x[rows], 11)
    _, with_self = tune_nprobe(index, x[rows], truth11[:, :10], start=1, nlist=1)   # nprobe 1 only
    _, honest = tune_nprobe(index, x[rows], truth11, start=1, nlist=1, self_ids=rows)
    assert with_self - honest >= 0.05          # ≈ 0.1·(1 - honest): the free self-match


def test_tune_reranked_after_a_miss_keeps_the_factor_and_grows_nprobe():
    """The warm path for re-ranked (PQ) indexes: a previous setting that just missed keeps its
    re-rank factor and grows nprobe from there, with far fewer searches than the full sweep; a
    factor that cannot reach the target at any nprobe falls back to the sweep."""
    from engine.index_choice import tune_reranked

    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((4000, 32)).astype(np.float32)          # no clusters: nprobe matters
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = faiss.index_factory(32, "IVF64,PQ4np", faiss.METRIC_INNER_PRODUCT)   # coarse codes
    index.train(vecs)
    index.add(vecs)
    q = vecs[rng.choice(4000, 200, replace=False)]
    _, truth = _exact(vecs, q)
    fetched = []

    def vectors(ids):
        fetched.append(1)
        return vecs[ids]
    full, full_recall = tune_reranked(index, q, truth, 64, 4000, vectors, target=0.95)
    full_searches, fetched[:] = len(fetched), []
    assert full_recall >= 0.95 and full["nprobe"] >= 8

    missed = {"nprobe": full["nprobe"] // 2, "rerank": full["rerank"]}
    warm, warm_recall = tune_reranked(index, q, truth, 64, 4000, vectors, target=0.95, missed=missed,
                                      growth=1.25, tolerance=0.05)
    assert warm["rerank"] == full["rerank"] and warm_recall >= 0.95
    assert full["nprobe"] <= warm["nprobe"] <= int(full["nprobe"] * 1.05) + 1
    assert faiss.extract_index_ivf(index).nprobe == warm["nprobe"]
    assert len(fetched) < full_searches

    # the coarse codes cannot find the true top 10 among only 10 candidates: no nprobe reaches
    # 0.95 at factor 1, so the sweep decides, as without a previous setting
    hopeless, _ = tune_reranked(index, q, truth, 64, 4000, vectors, target=0.95,
                                missed={"nprobe": 4, "rerank": 1}, growth=1.25, tolerance=0.05)
    assert hopeless == full


def _exact(vecs: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = faiss.IndexFlatIP(vecs.shape[1])
    flat.add(vecs)
    return flat.search(q, 10)


def test_pq_projects_first_when_m_does_not_divide_the_dimension():
    """soundsift-base's vectors were 521-d (a prime) until session 16 and are 905-d (5 × 181) now:
    PQ's sub-quantizers must divide their input, so the OPQ rotation also projects (to 520-d for
    PQ65, 904-d for PQ113) instead of falling to PQ1 or PQ5."""
    from indexer.retrain import _set_opq_niter
    assert choose_index(1_000_000, 521, 256 << 20).factory == "OPQ65_520,IVF4096,PQ65np"
    assert choose_index(1_000_000, 905, 256 << 20).factory == "OPQ113_904,IVF4096,PQ113np"
    assert choose_index(1_000_000, 521, 256 << 20, gpu=True).factory == "OPQ64_512,IVF4096,PQ64np"
    assert choose_index(1_000_000, 1024, 256 << 20, gpu=True).factory == "OPQ96_960,IVF4096,PQ96np"

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((4_000, 37)).astype(np.float32)        # 37 is prime too
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    choice = choose_index(4_000, 37, 1000, exact_max=100, min_nlist=16)
    assert choice.factory.startswith("OPQ4_36,IVF") and choice.factory.endswith(",PQ4np")
    recalls, code_bytes = [], []
    for factory in (choice.factory, choice.factory.replace("OPQ4_36", "OPQ1").replace("PQ4np", "PQ1np")):
        index = faiss.index_factory(37, factory, faiss.METRIC_INNER_PRODUCT)
        _set_opq_niter(index)                    # as the indexer builds it (fewer rotation rounds)
        index.train(vecs)
        index.add(vecs)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.nprobe = choice.nlist
        code_bytes.append(ivf.pq.M)
        recalls.append(recall_at_k(index.search(vecs[:200], 10)[1], _exact(vecs, vecs[:200])[1]))
    assert code_bytes == [4, 1]
    assert recalls[0] > recalls[1] + 0.1      # 4 code bytes per vector beat the old 1

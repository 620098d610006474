"""The index-type decision is a pure function, pinned here (autofaiss style)."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from engine.index_choice import choose_index, recall_at_k, tune_nprobe

GiB = 1 << 30


@pytest.mark.parametrize("n, dim, budget, factory, kind", [
    (0, 384, GiB, "IDMap2,Flat", "flat"),
    (5_000, 512, GiB, "IDMap2,Flat", "flat"),
    (100_000, 512, GiB, "IDMap2,Flat", "flat"),
    (100_001, 512, GiB, "IVF1024,Flat", "ivf-flat"),
    (1_000_000, 512, 4 * GiB, "IVF4096,Flat", "ivf-flat"),
    (1_000_000, 512, 1 * GiB, "IVF4096,SQ8", "ivf-sq8"),
    (1_000_000, 512, 256 << 20, "OPQ64,IVF4096,PQ64", "opq-ivf-pq"),
    (10_000_000, 384, 64 * GiB, "IVF16384,Flat", "ivf-flat"),
    (50_000, 512, 1 << 20, "OPQ64,IVF1024,PQ64", "opq-ivf-pq"),  # small but over a tiny budget
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
    # the step below the chosen one must have missed the target (it is the smallest)
    if nprobe > 1:
        faiss.extract_index_ivf(index).nprobe = nprobe // 2
        _, ids = index.search(q, 10)
        assert recall_at_k(ids, truth) < 0.95

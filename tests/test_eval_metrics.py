"""Evaluation metrics: hand-computed tiny cases and a brute-force reference."""
from __future__ import annotations

import numpy as np
import pytest

from trainer.evaluation import metrics as M


# --------------------------------------------------------------------------- hand cases
SIM = np.array([[0.9, 0.1, 0.3],      # audio 0: its captions are 0 and 1
                [0.2, 0.5, 0.8]])     # audio 1: its caption is 2
CAPTION_AUDIO = [0, 0, 1]


def test_t2a_hand_case():
    # caption 0 → audio 0 first; caption 1 → audio 1 (0.5) beats audio 0 (0.1): rank 2
    assert M.ranks_t2a(SIM, CAPTION_AUDIO).tolist() == [1, 2, 1]
    got = M.t2a_metrics(SIM, CAPTION_AUDIO)
    assert got["R@1"] == pytest.approx(2 / 3)
    assert got["R@5"] == got["R@10"] == 1.0
    assert got["mAP@10"] == pytest.approx((1 + 1 / 2 + 1) / 3)
    assert got["median_rank"] == 1.0
    assert got["mean_rank"] == pytest.approx(4 / 3)


def test_a2t_hand_case():
    ranks = M.ranks_a2t(SIM, CAPTION_AUDIO)
    # audio 0 orders captions 0 (0.9), 2 (0.3), 1 (0.1): its captions rank 1 and 3
    assert [r.tolist() for r in ranks] == [[1, 3], [1]]
    got = M.a2t_metrics(SIM, CAPTION_AUDIO)
    assert got["R@1"] == 1.0
    assert got["mAP@10"] == pytest.approx(((1 / 1 + 2 / 3) / 2 + 1.0) / 2)
    assert got["median_rank"] == 1.0 and got["mean_rank"] == 1.0


def test_map_counts_only_ranks_within_ten():
    assert M.average_precision_at(np.array([2, 11])) == pytest.approx((1 / 2) / 2)
    assert M.average_precision_at(np.array([11])) == 0.0
    assert M.average_precision_at(np.array([1, 2, 3])) == pytest.approx(1.0)


def test_t2a_rank_beyond_ten_scores_zero_map_and_misses_recall():
    n_audio = 12
    sim = np.arange(n_audio, 0, -1, dtype=float)[:, None]   # one caption; audio 0 scores best
    got = M.t2a_metrics(sim, [11])                                          # its audio is last
    assert got == {"R@1": 0.0, "R@5": 0.0, "R@10": 0.0, "mAP@10": 0.0,
                   "median_rank": 12.0, "mean_rank": 12.0}


def test_ties_are_pessimistic():
    # every score equal: the relevant item ranks after all irrelevant ones
    flat = np.zeros((3, 4))
    assert M.ranks_t2a(flat, [0, 1, 2, 2]).tolist() == [3, 3, 3, 3]
    # audio 1's captions 1 and 2 tie with captions 0 and 3: they take ranks 3 and 4
    ranks = M.ranks_a2t(flat, [0, 1, 1, 2])
    assert ranks[1].tolist() == [3, 4]
    assert M.a2t_metrics(flat, [0, 1, 1, 2])["R@1"] == 0.0
    # a relevant item strictly above a tie is unaffected by it
    assert M.relevant_ranks(np.array([[0.5, 0.9, 0.5]]), [[1]])[0].tolist() == [1]


def test_retrieval_metrics_uses_cosine_of_embeddings():
    rng = np.random.default_rng(3)
    audio = rng.standard_normal((4, 8)); audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    text = rng.standard_normal((8, 8)); text /= np.linalg.norm(text, axis=1, keepdims=True)
    links = [0, 0, 1, 1, 2, 2, 3, 3]
    got = M.retrieval_metrics(audio, text, links)
    sim = audio @ text.T
    assert got["t2a"] == M.t2a_metrics(sim, links)
    assert got["a2t"] == M.a2t_metrics(sim, links)
    with pytest.raises(ValueError):
        M.retrieval_metrics(audio, text, links[:-1])
    with pytest.raises(ValueError):
        M.retrieval_metrics(audio, text, [0, 0, 1, 1, 2, 2, 3, 4])


# --------------------------------------------------------------------------- brute force
def brute_ranks(row, relevant):
    """Sort the items themselves: score descending, irrelevant before relevant, index."""
    rel = set(relevant)
    order = sorted(range(len(row)), key=lambda d: (-row[d], d in rel, d))
    return sorted(order.index(d) + 1 for d in rel)


def brute_metrics(sim, caption_audio):
    n_audio, n_cap = sim.shape
    t2a = [brute_ranks(sim[:, c], [caption_audio[c]])[0] for c in range(n_cap)]
    a2t = [brute_ranks(sim[a], [c for c in range(n_cap) if caption_audio[c] == a]) for a in range(n_audio)]
    best = [r[0] for r in a2t]
    def ap(r):
        return sum((j + 1) / x for j, x in enumerate(r) if x <= 10) / len(r)
    def summary(best_ranks, aps):
        out = {f"R@{k}": sum(b <= k for b in best_ranks) / len(best_ranks) for k in (1, 5, 10)}
        out["mAP@10"] = sum(aps) / len(aps)
        out["median_rank"] = float(np.median(best_ranks))
        out["mean_rank"] = sum(best_ranks) / len(best_ranks)
        return out
    return {"t2a": summary(t2a, [1 / r if r <= 10 else 0 for r in t2a]),
            "a2t": summary(best, [ap(r) for r in a2t])}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tied", [False, True])
def test_matches_brute_force_on_random_similarities(seed, tied):
    rng = np.random.default_rng(seed)
    n_audio = int(rng.integers(2, 25))
    per_audio = rng.integers(1, 6, size=n_audio)          # 1–5 captions per audio
    caption_audio = np.repeat(np.arange(n_audio), per_audio)
    rng.shuffle(caption_audio)
    shape = (n_audio, len(caption_audio))
    sim = rng.integers(0, 4, size=shape).astype(float) if tied else rng.standard_normal(shape)
    expected = brute_metrics(sim, caption_audio.tolist())
    got = {"t2a": M.t2a_metrics(sim, caption_audio), "a2t": M.a2t_metrics(sim, caption_audio)}
    for direction in ("t2a", "a2t"):
        assert got[direction].keys() == expected[direction].keys()
        for key, value in expected[direction].items():
            assert got[direction][key] == pytest.approx(value, abs=1e-12), (direction, key)


def test_label_t2a_hand_case():
    # 3 labels (label 2 has no clip), 4 clips: label 0 owns clips 0 and 2, label 1 clips 1 and 3
    audio = np.eye(4)
    text = np.array([[0.1, 0.9, 0.5, 0.0],    # label 0: clip 1 (0.9) first, its clips rank 2 and 3
                     [0.0, 0.2, 0.1, 0.8],    # label 1: clip 3 first → rank 1; clip 1 rank 2
                     [1.0, 0.0, 0.0, 0.0]])   # label 2: no clip, not a query
    got = M.label_t2a_metrics(audio, text, [0, 1, 0, 1])
    assert got["R@1"] == 0.5 and got["R@5"] == 1.0
    assert got["median_rank"] == 1.5 and got["mean_rank"] == 1.5
    assert got["mAP@10"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + (1 / 1 + 2 / 2) / 2) / 2)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tied", [False, True])
def test_label_t2a_matches_brute_force(seed, tied):
    rng = np.random.default_rng(100 + seed)
    n_labels, n_clips, dim = int(rng.integers(2, 9)), int(rng.integers(3, 30)), 6
    targets = rng.integers(0, n_labels, size=n_clips)
    audio, text = rng.standard_normal((n_clips, dim)), rng.standard_normal((n_labels, dim))
    if tied:
        audio, text = np.round(audio), np.round(text)
    sim = text @ audio.T
    queries = [i for i in range(n_labels) if (targets == i).any()]
    ranks = [brute_ranks(sim[i], np.flatnonzero(targets == i).tolist()) for i in queries]
    best = [r[0] for r in ranks]
    got = M.label_t2a_metrics(audio, text, targets)
    for k in (1, 5, 10):
        assert got[f"R@{k}"] == pytest.approx(sum(b <= k for b in best) / len(best))
    aps = [sum((j + 1) / x for j, x in enumerate(r) if x <= 10) / len(r) for r in ranks]
    assert got["mAP@10"] == pytest.approx(sum(aps) / len(aps))
    assert got["mean_rank"] == pytest.approx(sum(best) / len(best))


def test_recall_curve_matches_recall_at():
    ranks = np.array([1, 3, 3, 7, 20])
    curve = M.recall_curve(ranks, 10)
    assert curve.tolist() == [M.recall_at(ranks, k) for k in range(1, 11)]
    assert curve[0] == 0.2 and curve[2] == 0.6 and curve[9] == 0.8


# --------------------------------------------------------------------------- zero-shot
def test_zeroshot_hand_case_with_folds():
    logits = np.array([[0.9, 0.1, 0.0],    # true 0: rank 1
                       [0.2, 0.3, 0.1],    # true 0: rank 2
                       [0.1, 0.1, 0.5],    # true 2: rank 1
                       [0.4, 0.4, 0.0]])   # true 1: tied with class 0 → rank 2
    targets = [0, 0, 2, 1]
    assert M.class_ranks(logits, targets).tolist() == [1, 2, 1, 2]
    got = M.zeroshot_from_logits(logits, targets, ["dog", "rain", "car horn"], folds=[1, 1, 2, 10])
    assert got["top1"] == 0.5 and got["top5"] == 1.0 and got["n"] == 4
    assert got["per_class"] == {"dog": 0.5, "rain": 0.0, "car horn": 1.0}
    assert list(got["per_fold"]) == ["1", "2", "10"]
    assert got["per_fold"]["1"] == {"top1": 0.5, "top5": 1.0, "n": 2}
    assert got["per_fold"]["10"] == {"top1": 0.0, "top5": 1.0, "n": 1}


def test_zeroshot_without_folds_and_top5_cut():
    logits = np.tile(np.arange(7, 0, -1, dtype=float), (2, 1))   # class 0 best … class 6 worst
    got = M.zeroshot_from_logits(logits, [4, 5], [f"c{i}" for i in range(7)])
    assert "per_fold" not in got
    assert got["top1"] == 0.0 and got["top5"] == 0.5              # rank 5 in, rank 6 out
    assert got["per_class"] == {"c4": 0.0, "c5": 0.0}


def test_predictions_agree_with_pessimistic_ranks_and_confusion():
    logits = np.array([[0.4, 0.4, 0.0], [0.0, 0.9, 0.2], [0.3, 0.1, 0.3]])
    targets = [1, 1, 0]
    pred = M.predictions(logits, targets)
    assert pred.tolist() == [0, 1, 2]          # a tie never counts for the true class
    ranks = M.class_ranks(logits, targets)
    assert ((pred == np.array(targets)) == (ranks == 1)).all()
    cm = M.confusion_matrix(targets, pred, 3)
    assert cm.tolist() == [[0, 0, 1], [1, 1, 0], [0, 0, 0]]


def test_zeroshot_metrics_from_embeddings():
    eye = np.eye(3, dtype=np.float32)
    audio = eye[[0, 1, 2, 2]]
    got = M.zeroshot_metrics(audio, eye, [0, 1, 2, 1], ["a", "b", "c"])
    assert got["top1"] == 0.75 and got["per_class"] == {"a": 1.0, "b": 0.5, "c": 1.0}
    with pytest.raises(ValueError):
        M.zeroshot_metrics(audio, eye, [0, 1, 2, 1], ["a", "b"])

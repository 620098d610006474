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


def brute_key(text):
    return " ".join(text.split()).casefold()


def brute_relevant(caption_audio, n_audio, captions=None, audio_captions=None):
    """rel[a][c]: audio a has caption c's text (its own captions' texts, plus audio_captions[a])."""
    n_cap = len(caption_audio)
    if captions is None:
        return [[caption_audio[c] == a for c in range(n_cap)] for a in range(n_audio)]
    has = [{brute_key(captions[c]) for c in range(n_cap) if caption_audio[c] == a}
           | {brute_key(t) for t in (audio_captions[a] if audio_captions else [])} for a in range(n_audio)]
    return [[brute_key(captions[c]) in has[a] for c in range(n_cap)] for a in range(n_audio)]


def brute_ap(ranks):
    ranks = sorted(ranks)
    return sum((j + 1) / x for j, x in enumerate(ranks) if x <= 10) / min(len(ranks), 10)


def brute_median(best_ranks):
    """LAION-CLAP: np.floor(np.median(preds)) + 1 on 0-based ranks."""
    import math
    import statistics
    return float(math.floor(statistics.median(b - 1 for b in best_ranks)) + 1)


def brute_metrics(sim, caption_audio, captions=None, audio_captions=None):
    n_audio, n_cap = sim.shape
    rel = brute_relevant(list(caption_audio), n_audio, captions, audio_captions)
    t2a = [brute_ranks(sim[:, c], [a for a in range(n_audio) if rel[a][c]]) for c in range(n_cap)]
    a2t = [brute_ranks(sim[a], [c for c in range(n_cap) if rel[a][c]]) for a in range(n_audio)]
    def summary(ranks):
        best_ranks = [r[0] for r in ranks]
        out = {f"R@{k}": sum(b <= k for b in best_ranks) / len(best_ranks) for k in (1, 5, 10)}
        out["mAP@10"] = sum(brute_ap(r) for r in ranks) / len(ranks)
        out["median_rank"] = brute_median(best_ranks)
        out["mean_rank"] = sum(best_ranks) / len(best_ranks)
        return out
    return {"t2a": summary(t2a), "a2t": summary(a2t)}


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


# --------------------------------------------------------------------------- shared captions
def random_texts(rng, n_audio, n_distinct):
    """Captions drawn from n_distinct texts (spelled with random case and padding), 1–5 per audio."""
    per_audio = rng.integers(1, 6, size=n_audio)
    caption_audio = np.repeat(np.arange(n_audio), per_audio)
    rng.shuffle(caption_audio)
    words = [f"sound {i}" for i in range(n_distinct)]
    captions = []
    for _ in caption_audio:
        w = words[int(rng.integers(n_distinct))]
        captions.append((" " if rng.random() < 0.3 else "") + (w.upper() if rng.random() < 0.3 else w))
    return caption_audio, captions


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tied", [False, True])
def test_shared_captions_match_brute_force(seed, tied):
    rng = np.random.default_rng(200 + seed)
    n_audio = int(rng.integers(2, 30))
    caption_audio, captions = random_texts(rng, n_audio, int(rng.integers(1, 6)))
    extra = [[f"Sound {int(rng.integers(6))}"] if rng.random() < 0.3 else [] for _ in range(n_audio)]
    shape = (n_audio, len(caption_audio))
    sim = rng.integers(0, 4, size=shape).astype(float) if tied else rng.standard_normal(shape)
    for audio_captions in (None, extra):
        expected = brute_metrics(sim, caption_audio.tolist(), captions, audio_captions)
        got = {"t2a": M.t2a_metrics(sim, caption_audio, captions, audio_captions),
               "a2t": M.a2t_metrics(sim, caption_audio, captions, audio_captions)}
        for direction in ("t2a", "a2t"):
            assert got[direction].keys() == expected[direction].keys()
            for key, value in expected[direction].items():
                assert got[direction][key] == pytest.approx(value, abs=1e-12), (direction, key)


def test_relevance_of_shared_and_multiple_captions():
    # audio 0: "dog barks", "A dog"; audio 1: "a dog "; audio 2: "rain"
    t2a, a2t = M.caption_relevance([0, 0, 1, 2], 3, ["dog barks", "A dog", "a dog ", "rain"])
    assert [r.tolist() for r in t2a] == [[0], [0, 1], [0, 1], [2]]
    assert [r.tolist() for r in a2t] == [[0, 1, 2], [1, 2], [3]]
    # the trainer's validation: one embedded caption per item, the item's other captions count too
    t2a, a2t = M.caption_relevance([0, 1], 2, ["footsteps", "walking"],
                                   audio_captions=[["footsteps", "Walking"], ["walking"]])
    assert [r.tolist() for r in t2a] == [[0], [0, 1]]
    assert [r.tolist() for r in a2t] == [[0, 1], [1]]
    # without the texts: each caption its own audio
    t2a, a2t = M.caption_relevance([0, 0, 1], 2)
    assert [r.tolist() for r in t2a] == [[0], [0], [1]] and [r.tolist() for r in a2t] == [[0, 1], [2]]
    assert M.caption_key("  Footsteps \t on  gravel ") == "footsteps on gravel"
    with pytest.raises(ValueError):
        M.caption_relevance([0, 1], 2, ["a"])


def test_perfect_embeddings_with_two_clips_per_caption_score_one():
    # a labelled manifest: clips 0, 1 "footsteps", clips 2, 3 "rain"; each clip nearest its caption
    e = np.eye(6)
    audio = np.array([e[i // 2] + 0.1 * (1 + i % 2) * e[2 + i] for i in range(4)])
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    text = e[[0, 0, 1, 1]]
    captions = ["footsteps", "Footsteps", "rain", "rain"]
    got = M.retrieval_metrics(audio, text, [0, 1, 2, 3], captions)
    for d in ("t2a", "a2t"):
        assert got[d] == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "mAP@10": 1.0,
                          "median_rank": 1.0, "mean_rank": 1.0}
    # each clip relevant to its own row only (the texts not given): the right clip cannot be first
    alone = M.retrieval_metrics(audio, text, [0, 1, 2, 3])
    assert alone["t2a"]["R@1"] == 0.5 and alone["a2t"]["R@1"] == 0.0


def test_shared_caption_ties_stay_pessimistic():
    # caption "dog" (clips 0 and 2) ties clip 0 with clip 1 (irrelevant): clip 0 ranks after it
    sim = np.array([[0.5], [0.5], [0.2], [0.9]])
    assert M.ranks_t2a(sim, [0], ["dog"], [[], [], ["dog"], []]).tolist() == [3]
    ranks = M.relevant_ranks(np.array([[0.5, 0.5, 0.5, 0.9]]), [[0, 2]])
    assert ranks[0].tolist() == [3, 4]          # after the irrelevant 0.9 and the tied irrelevant 1


def test_ap_divides_by_at_most_ten():
    assert M.average_precision_at(np.arange(1, 21)) == 1.0             # 20 relevant, ranks 1–20
    assert M.average_precision_at(np.arange(1, 12)) == 1.0
    assert M.average_precision_at(np.array([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])) == \
        pytest.approx(sum(j / (j + 1) for j in range(1, 10)) / 10)
    # a label with 20 clips, all ranked first, scores 1 (it was 0.5)
    e = np.eye(3)
    audio = np.vstack([np.repeat(e[:1], 20, axis=0), e[1:]])
    assert M.label_t2a_metrics(audio, e, [0] * 20 + [1, 2])["mAP@10"] == 1.0


def test_median_rank_is_laions():
    assert M.median_rank(np.array([1, 2])) == 1.0
    assert M.median_rank(np.array([1, 2, 3, 4])) == 2.0
    assert M.median_rank(np.array([3, 1, 8])) == 3.0
    assert M.median_rank(np.array([5, 8])) == 6.0      # floor(median(4, 7)) + 1


# ---------------------------------------------------------------- unchanged on distinct captions
class Old:
    """The metrics before shared captions, AP@10 / min(n, 10) and LAION's median (verbatim copy)."""

    @staticmethod
    def relevant_ranks(scores, relevant):
        scores = np.asarray(scores, dtype=np.float64)
        out = []
        for rel in relevant:
            rel = np.unique(np.asarray(rel, dtype=np.int64))
            row = scores[len(out)]
            rel_scores = row[rel]
            at_least = (row[None, :] >= rel_scores[:, None]).sum(axis=1)
            rel_at_least = (rel_scores[None, :] >= rel_scores[:, None]).sum(axis=1)
            irrelevant_ge = at_least - rel_at_least
            above = rel_scores[None, :] > rel_scores[:, None]
            tied_before = (rel_scores[None, :] == rel_scores[:, None]) & np.tri(len(rel), k=-1, dtype=bool)
            relevant_before = (above | tied_before).sum(axis=1)
            out.append(np.sort(1 + irrelevant_ge + relevant_before))
        return out

    @staticmethod
    def average_precision_at(ranks, depth=10):
        r = np.sort(np.asarray(ranks, dtype=np.float64))
        j = np.arange(1, len(r) + 1, dtype=np.float64)
        hit = r <= depth
        return float(np.sum(j[hit] / r[hit]) / len(r))

    @staticmethod
    def summary(best, per_query_ap):
        out = {f"R@{k}": float(np.mean(np.asarray(best) <= k)) for k in (1, 5, 10)}
        out["mAP@10"] = float(np.mean(per_query_ap))
        out["median_rank"] = float(np.median(best))
        out["mean_rank"] = float(np.mean(best))
        return out

    @classmethod
    def retrieval_metrics(cls, audio_emb, text_emb, caption_audio):
        caption_audio = np.asarray(caption_audio, dtype=np.int64)
        sim = np.asarray(audio_emb, dtype=np.float64) @ np.asarray(text_emb, dtype=np.float64).T
        r = np.array([x[0] for x in cls.relevant_ranks(sim.T, [[a] for a in caption_audio])], dtype=np.int64)
        t2a = cls.summary(r, np.where(r <= 10, 1.0 / r, 0.0))
        ranks = cls.relevant_ranks(sim, [np.flatnonzero(caption_audio == a) for a in range(sim.shape[0])])
        best = np.array([x[0] for x in ranks], dtype=np.int64)
        a2t = cls.summary(best, np.array([cls.average_precision_at(x) for x in ranks]))
        return {"t2a": t2a, "a2t": a2t}


@pytest.mark.parametrize("seed", range(8))
def test_distinct_captions_give_exactly_the_old_figures(seed):
    """Clotho/AudioCaps-like sets (no text shared between clips; a clip may repeat its own
    caption): every figure bit for bit as before, the median floored as LAION's."""
    rng = np.random.default_rng(300 + seed)
    n_audio, dim = int(rng.integers(5, 60)), 8
    per_audio = rng.integers(1, 6, size=n_audio)
    caption_audio = np.repeat(np.arange(n_audio), per_audio)
    rng.shuffle(caption_audio)
    captions = [f"Clip {a} caption {int(rng.integers(3))}" for a in caption_audio]
    audio = rng.standard_normal((n_audio, dim)).astype(np.float32)
    text = rng.standard_normal((len(caption_audio), dim)).astype(np.float32)
    if seed % 2:                                   # ties
        audio, text = np.round(audio), np.round(text)
    else:
        audio /= np.linalg.norm(audio, axis=1, keepdims=True)
        text /= np.linalg.norm(text, axis=1, keepdims=True)
    old = Old.retrieval_metrics(audio, text, caption_audio)
    for new in (M.retrieval_metrics(audio, text, caption_audio, captions),
                M.retrieval_metrics(audio, text, caption_audio)):
        for d in ("t2a", "a2t"):
            assert new[d].keys() == old[d].keys()
            for key in old[d]:
                want = np.floor(old[d][key]) if key == "median_rank" else old[d][key]
                assert new[d][key] == want, (d, key)          # exact, not approx


def test_new_relevant_ranks_equal_the_old_on_random_sets():
    rng = np.random.default_rng(7)
    for tied in (False, True):
        scores = rng.integers(0, 3, size=(40, 50)).astype(float) if tied else rng.standard_normal((40, 50))
        relevant = [rng.choice(50, size=int(rng.integers(1, 50)), replace=False) for _ in range(40)]
        for got, want in zip(M.relevant_ranks(scores, relevant), Old.relevant_ranks(scores, relevant)):
            assert got.tolist() == want.tolist()


def test_label_t2a_hand_case():
    # 3 labels (label 2 has no clip), 4 clips: label 0 owns clips 0 and 2, label 1 clips 1 and 3
    audio = np.eye(4)
    text = np.array([[0.1, 0.9, 0.5, 0.0],    # label 0: clip 1 (0.9) first, its clips rank 2 and 3
                     [0.0, 0.2, 0.1, 0.8],    # label 1: clip 3 first → rank 1; clip 1 rank 2
                     [1.0, 0.0, 0.0, 0.0]])   # label 2: no clip, not a query
    got = M.label_t2a_metrics(audio, text, [0, 1, 0, 1])
    assert got["R@1"] == 0.5 and got["R@5"] == 1.0
    assert got["median_rank"] == 1.0 and got["mean_rank"] == 1.5    # LAION: floor(median(0, 1)) + 1
    assert got["mAP@10"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + (1 / 1 + 2 / 2) / 2) / 2)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tied", [False, True])
def test_label_t2a_matches_brute_force(seed, tied):
    rng = np.random.default_rng(100 + seed)
    n_labels, n_clips, dim = int(rng.integers(2, 9)), int(rng.integers(3, 30)), 6
    targets = rng.integers(0, n_labels, size=n_clips)
    targets[:12 + seed] = 0                                  # one label has more than 10 clips
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
    assert got["mAP@10"] == pytest.approx(sum(brute_ap(r) for r in ranks) / len(ranks))
    assert got["mean_rank"] == pytest.approx(sum(best) / len(best))
    assert got["median_rank"] == brute_median(best)


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
    assert got["per_fold"]["1"] == {"top1": 0.5, "top5": 1.0, "top10": 1.0, "mAP@10": 0.75, "n": 2}   # 1/1, 1/2
    assert got["per_fold"]["10"] == {"top1": 0.0, "top5": 1.0, "top10": 1.0, "mAP@10": 0.5, "n": 1}
    assert got["top10"] == 1.0 and got["mAP@10"] == (1 + 0.5 + 1 + 0.5) / 4


def test_zeroshot_without_folds_and_top5_cut():
    logits = np.tile(np.arange(7, 0, -1, dtype=float), (2, 1))   # class 0 best … class 6 worst
    got = M.zeroshot_from_logits(logits, [4, 5], [f"c{i}" for i in range(7)])
    assert "per_fold" not in got
    assert got["top1"] == 0.0 and got["top5"] == 0.5              # rank 5 in, rank 6 out
    assert got["top10"] == 1.0 and got["mAP@10"] == (1 / 5 + 1 / 6) / 2
    assert got["per_class"] == {"c4": 0.0, "c5": 0.0}


def test_zeroshot_map_at_10_counts_nothing_past_rank_10():
    logits = np.tile(np.arange(12, 0, -1, dtype=float), (2, 1))  # class 0 best … class 11 worst
    got = M.zeroshot_from_logits(logits, [9, 10], [f"c{i}" for i in range(12)])
    assert got["top10"] == 0.5 and got["mAP@10"] == (1 / 10) / 2   # rank 10 counts 1/10, rank 11 nothing


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

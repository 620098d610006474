"""Retrieval and zero-shot metrics on precomputed similarities (pure numpy).

Protocol (LAION-CLAP's evaluation, Wu et al., ICASSP 2023):

* **text→audio**: every caption queries all audio; a caption has exactly one
  relevant audio. R@k = share of captions whose audio ranks within k;
  mAP@10 = mean over captions of 1/rank when rank ≤ 10, else 0.
* **audio→text**: every audio queries all captions; an audio's relevant captions are
  its own (usually 5). R@k counts a hit when *any* of its captions ranks within k.
  mAP@10: for an audio whose n captions rank r_1 < … < r_n (1-based),
  AP = (1/n) · Σ_{j : r_j ≤ 10} j / r_j, averaged over audio.
* median / mean rank: of the caption's audio (t2a), of the audio's best-ranked
  caption (a2t). Ranks are 1-based.

Tie handling — **pessimistic**: a relevant item ranks *after* every irrelevant item
with the same score, and relevant items tied with each other keep their index order.
So a model that scores everything equally gets the worst possible figures instead of
lucky ones, and the result never depends on the sort algorithm. Equivalently, the
rank of a relevant item is 1 + (#irrelevant items scoring ≥ it) + (#relevant items
scoring > it, or scoring the same with a lower index).

Zero-shot: the rank of the true class among all class prompts, with the same
pessimistic ties; top-k accuracy = share of clips whose true class ranks within k.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

RECALL_KS = (1, 5, 10)
MAP_DEPTH = 10


# --------------------------------------------------------------------------- ranks
def relevant_ranks(scores: np.ndarray, relevant: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """1-based ranks of each query's relevant items, ascending, ties pessimistic.

    ``scores`` is (Q, D): query q's score for item d. ``relevant[q]`` lists the item
    indices relevant to query q (at least one).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (queries, items), got shape {scores.shape}")
    if len(relevant) != scores.shape[0]:
        raise ValueError(f"{len(relevant)} relevance lists for {scores.shape[0]} queries")
    out: list[np.ndarray] = []
    for q, rel in enumerate(relevant):
        rel = np.unique(np.asarray(rel, dtype=np.int64))  # sorted by index
        if rel.size == 0:
            raise ValueError(f"query {q} has no relevant item")
        row = scores[q]
        rel_scores = row[rel]
        # items scoring >= s, over all items, minus relevant ones scoring >= s
        at_least = (row[None, :] >= rel_scores[:, None]).sum(axis=1)
        rel_at_least = (rel_scores[None, :] >= rel_scores[:, None]).sum(axis=1)
        irrelevant_ge = at_least - rel_at_least
        # relevant items strictly above, or tied with a lower index (rel is index-sorted)
        above = rel_scores[None, :] > rel_scores[:, None]
        tied_before = (rel_scores[None, :] == rel_scores[:, None]) & np.tri(len(rel), k=-1, dtype=bool)
        relevant_before = (above | tied_before).sum(axis=1)
        ranks = 1 + irrelevant_ge + relevant_before
        out.append(np.sort(ranks))
    return out


def ranks_t2a(similarity: np.ndarray, caption_audio: Sequence[int]) -> np.ndarray:
    """Rank of each caption's audio: ``similarity`` is (n_audio, n_captions)."""
    sim = np.asarray(similarity)
    ranks = relevant_ranks(sim.T, [[a] for a in caption_audio])
    return np.array([r[0] for r in ranks], dtype=np.int64)


def ranks_a2t(similarity: np.ndarray, caption_audio: Sequence[int]) -> list[np.ndarray]:
    """Ranks (ascending) of each audio's captions: ``similarity`` is (n_audio, n_captions)."""
    sim = np.asarray(similarity)
    caption_audio = np.asarray(caption_audio, dtype=np.int64)
    relevant = [np.flatnonzero(caption_audio == a) for a in range(sim.shape[0])]
    return relevant_ranks(sim, relevant)


# --------------------------------------------------------------------------- summaries
def recall_at(best_ranks: np.ndarray, k: int) -> float:
    """Share of queries whose best relevant item ranks within ``k``."""
    return float(np.mean(np.asarray(best_ranks) <= k))


def recall_curve(best_ranks: np.ndarray, max_k: int) -> np.ndarray:
    """R@k for k = 1 … max_k (for plots)."""
    r = np.asarray(best_ranks)
    return np.array([np.mean(r <= k) for k in range(1, max_k + 1)], dtype=np.float64)


def average_precision_at(ranks: np.ndarray, depth: int = MAP_DEPTH) -> float:
    """AP@depth of one query whose n relevant items rank ``ranks`` (ascending)."""
    r = np.sort(np.asarray(ranks, dtype=np.float64))
    j = np.arange(1, len(r) + 1, dtype=np.float64)
    hit = r <= depth
    return float(np.sum(j[hit] / r[hit]) / len(r))


def _summary(best: np.ndarray, per_query_ap: np.ndarray) -> dict[str, float]:
    out = {f"R@{k}": recall_at(best, k) for k in RECALL_KS}
    out[f"mAP@{MAP_DEPTH}"] = float(np.mean(per_query_ap))
    out["median_rank"] = float(np.median(best))
    out["mean_rank"] = float(np.mean(best))
    return out


def t2a_metrics(similarity: np.ndarray, caption_audio: Sequence[int]) -> dict[str, float]:
    """Text→audio R@1/5/10, mAP@10, median and mean rank."""
    r = ranks_t2a(similarity, caption_audio)
    ap = np.where(r <= MAP_DEPTH, 1.0 / r, 0.0)
    return _summary(r, ap)


def a2t_metrics(similarity: np.ndarray, caption_audio: Sequence[int]) -> dict[str, float]:
    """Audio→text R@1/5/10, mAP@10, median and mean rank of the best caption."""
    ranks = ranks_a2t(similarity, caption_audio)
    best = np.array([r[0] for r in ranks], dtype=np.int64)
    ap = np.array([average_precision_at(r) for r in ranks])
    return _summary(best, ap)


def retrieval_metrics(audio_emb: np.ndarray, text_emb: np.ndarray,
                      caption_audio: Sequence[int]) -> dict[str, dict[str, float]]:
    """Both directions from L2-normalised embeddings (cosine similarity).

    ``audio_emb`` (n_audio, dim), ``text_emb`` (n_captions, dim), and
    ``caption_audio[c]`` = index of caption c's audio. The trainer reuses this for
    periodic validation.
    """
    caption_audio = np.asarray(caption_audio, dtype=np.int64)
    if len(caption_audio) != len(text_emb):
        raise ValueError(f"{len(caption_audio)} caption→audio links for {len(text_emb)} captions")
    if caption_audio.size and (caption_audio.min() < 0 or caption_audio.max() >= len(audio_emb)):
        raise ValueError("caption_audio holds an audio index out of range")
    sim = np.asarray(audio_emb, dtype=np.float64) @ np.asarray(text_emb, dtype=np.float64).T
    return {"t2a": t2a_metrics(sim, caption_audio), "a2t": a2t_metrics(sim, caption_audio)}


def label_t2a_metrics(audio_emb: np.ndarray, label_text_emb: np.ndarray,
                      targets: Sequence[int]) -> dict[str, float]:
    """Text→audio over a labelled clip set: each label queries all clips, every clip of it relevant.

    ``label_text_emb[i]`` embeds label i's query text, ``targets[n]`` is clip n's label
    index; labels without a clip are not queries. R@k = share of labels with one of their
    clips in the top k (the rank of the first one, ties pessimistic); mAP@10 over all of a
    label's clips (:func:`average_precision_at`); median/mean rank of the first relevant clip.
    """
    targets = np.asarray(targets, dtype=np.int64)
    sim = np.asarray(label_text_emb, dtype=np.float64) @ np.asarray(audio_emb, dtype=np.float64).T
    queries = [i for i in range(len(label_text_emb)) if np.any(targets == i)]
    if not queries:
        raise ValueError("no label has a clip")
    ranks = relevant_ranks(sim[queries], [np.flatnonzero(targets == i) for i in queries])
    best = np.array([r[0] for r in ranks], dtype=np.int64)
    return _summary(best, np.array([average_precision_at(r) for r in ranks]))


# --------------------------------------------------------------------------- zero-shot
def class_ranks(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """1-based rank of each clip's true class among all classes (ties pessimistic)."""
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    true = logits[np.arange(len(targets)), targets]
    return (logits >= true[:, None]).sum(axis=1)  # classes scoring ≥ the true one, itself included


def predictions(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """Top-1 class per clip, consistent with the pessimistic ties of :func:`class_ranks`.

    The true class is predicted only when it alone scores highest; among tied top
    scores another class wins (the lowest index among them).
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    top = logits.max(axis=1, keepdims=True)
    tied = logits == top
    rows = np.arange(len(targets))
    tied[rows, targets] = False
    others = tied.any(axis=1)   # another class reaches the top score
    return np.where(others, np.argmax(tied, axis=1), targets)


def confusion_matrix(targets: Sequence[int], predicted: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(targets, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return m


def zeroshot_metrics(audio_emb: np.ndarray, class_text_emb: np.ndarray, targets: Sequence[int],
                     labels: Sequence[str], folds: Sequence[object] | None = None) -> dict:
    """Top-1/top-5 accuracy, per-class top-1 accuracy and, when given, per-fold figures.

    ``class_text_emb[i]`` embeds the prompt of ``labels[i]``; ``targets[n]`` is clip n's
    class index. Returns ``{"top1", "top5", "per_class": {label: acc}, "n"}`` plus
    ``"per_fold": {fold: {"top1", "top5", "n"}}`` when ``folds`` is given. Classes
    with no clip are left out of ``per_class``.
    """
    targets = np.asarray(targets, dtype=np.int64)
    if len(labels) != len(class_text_emb):
        raise ValueError(f"{len(labels)} labels for {len(class_text_emb)} class prompts")
    logits = np.asarray(audio_emb, dtype=np.float64) @ np.asarray(class_text_emb, dtype=np.float64).T
    return zeroshot_from_logits(logits, targets, labels, folds)


def zeroshot_from_logits(logits: np.ndarray, targets: Sequence[int], labels: Sequence[str],
                         folds: Sequence[object] | None = None) -> dict:
    """:func:`zeroshot_metrics` on a precomputed (n_clips, n_classes) score matrix."""
    targets = np.asarray(targets, dtype=np.int64)
    ranks = class_ranks(logits, targets)
    out: dict = {"top1": recall_at(ranks, 1), "top5": recall_at(ranks, 5), "per_class": {}}
    for i, label in enumerate(labels):
        mask = targets == i
        if mask.any():
            out["per_class"][label] = recall_at(ranks[mask], 1)
    if folds is not None:
        folds_arr = np.asarray([str(f) for f in folds])
        out["per_fold"] = {}
        for fold in sorted(set(folds_arr.tolist()), key=_natural_key):
            mask = folds_arr == fold
            out["per_fold"][fold] = {"top1": recall_at(ranks[mask], 1),
                                     "top5": recall_at(ranks[mask], 5), "n": int(mask.sum())}
    out["n"] = int(len(targets))
    return out


def _natural_key(text: str) -> tuple:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)

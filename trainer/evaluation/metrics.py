"""Retrieval and zero-shot metrics on precomputed similarities (pure numpy).

Protocol (LAION-CLAP's evaluation, Wu et al., ICASSP 2023), with one extension for shared captions:

* **Relevance**: audio a *has* caption text t when t is one of a's captions. Texts are compared
  after :func:`caption_key` (surrounding whitespace stripped, inner runs of whitespace made one
  space, casefolded), so "Footsteps" and "footsteps " are the same text. A caption query's
  relevant audios are all audios that have its text; an audio's relevant captions are all
  captions whose text it has. When no text is shared between two audios, that is LAION's rule
  exactly: a caption's one audio, an audio's own captions. When several clips share a caption
  (a labelled manifest: many clips "footsteps"), any of them is a right answer, as in
  :func:`label_t2a_metrics`. Without the caption texts, captions are all distinct: LAION's and
  DCASE's rule whatever the texts, which ``soundsift eval`` uses for Clotho and AudioCaps
  (AudioCaps' test split writes 71 texts for several clips; see
  :attr:`trainer.evaluation.datasets.RetrievalSet.relevance_texts`).
* **text→audio**: every caption queries all audio. R@k = share of captions with a relevant
  audio within k; mAP@10 = mean over captions of AP@10 (below) — with one relevant audio,
  1/rank when rank ≤ 10, else 0, as LAION.
* **audio→text**: every audio queries all captions. R@k counts a hit when *any* relevant
  caption ranks within k; mAP@10 = mean over audio of AP@10.
* **AP@10** of a query whose n relevant items rank r_1 < … < r_n (1-based):
  AP = (1 / min(n, 10)) · Σ_{j : r_j ≤ 10} j / r_j, so a perfect ranking scores 1 whatever n.
  For n ≤ 10 (Clotho's and AudioCaps' 5 captions) the divisor is n, as LAION's.
* median / mean rank: of the best-ranked relevant item (the caption's audio for t2a, the
  audio's best caption for a2t). Ranks are 1-based; the median is LAION's
  ``floor(median(rank − 1)) + 1``, an integer (with an even number of queries, the mean of
  the two middle ranks rounded down: ranks 1 and 4 give 2), the mean is not rounded.

Differences from LAION-CLAP's reference code (``evaluate_clotho_audiocaps`` in
``laion_clap/training/train.py``): its audio→text mAP@10 pairs the j-th *caption in caption
order* among those ranked within 10 with j (it does not sort their ranks), whereas we pair the
j-th best rank with j (standard AP). Pairing ascending ranks with ascending j gives the
smallest Σ j / r_j of any order (rearrangement inequality), so our a2t mAP@10 is ≤ LAION's,
equal when every audio's captions within the top 10 rank in their own order; LAION's AP can
even exceed 1 (captions 1…5 at ranks 5, 4, 3, 2, 1: 1.74). Its t2a mAP@10, R@k and ranks are
ours on unshared captions, except that it ranks with ``argsort`` (ties in whatever order the
sort leaves them) where ties here are pessimistic, and it reports no a2t median/mean rank.

Tie handling — **pessimistic**: a relevant item ranks *after* every irrelevant item
with the same score, and relevant items tied with each other keep their index order.
So a model that scores everything equally gets the worst possible figures instead of
lucky ones, and the result never depends on the sort algorithm. Equivalently, the
rank of a relevant item is 1 + (#irrelevant items scoring ≥ it) + (#relevant items
scoring > it, or scoring the same with a lower index).

A NaN score (a diverged model) is as pessimistic: a relevant item or true class scored NaN ranks
after everything, and a NaN-scored irrelevant item or other class ranks ahead of it.

Zero-shot: the rank of the true class among all class prompts, with the same
pessimistic ties; top-k accuracy = share of clips whose true class ranks within k.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

RECALL_KS = (1, 5, 10)
MAP_DEPTH = 10


# --------------------------------------------------------------------------- relevance
def caption_key(text: str) -> str:
    """The form in which two captions are compared: stripped, inner whitespace one space, casefolded."""
    return " ".join(str(text).split()).casefold()


def caption_relevance(caption_audio: Sequence[int], n_audio: int, captions: Sequence[str] | None = None,
                      audio_captions: Sequence[Sequence[str]] | None = None
                      ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(t2a, a2t)``: ``t2a[c]`` = audio indices relevant to caption c, ``a2t[a]`` = caption
    indices relevant to audio a (both ascending), by the module's relevance rule.

    ``caption_audio[c]`` is the audio caption c was written for. Audio a has the texts of its
    captions plus, when given, ``audio_captions[a]`` (other captions of it that are not queries,
    as the trainer's validation embeds one caption per item). Without ``captions`` every caption
    is relevant to its own audio only.
    """
    caption_audio = np.asarray(caption_audio, dtype=np.int64)
    if captions is None:
        if audio_captions is not None:
            raise ValueError("audio_captions needs the caption texts")
        return ([np.array([a], dtype=np.int64) for a in caption_audio],
                [np.flatnonzero(caption_audio == a) for a in range(n_audio)])
    if len(captions) != len(caption_audio):
        raise ValueError(f"{len(captions)} caption texts for {len(caption_audio)} captions")
    if audio_captions is not None and len(audio_captions) != n_audio:
        raise ValueError(f"{len(audio_captions)} caption lists for {n_audio} audio clips")
    keys = [caption_key(t) for t in captions]
    has: list[set[str]] = [set() for _ in range(n_audio)]
    for key, a in zip(keys, caption_audio.tolist()):
        has[a].add(key)
    if audio_captions is not None:
        for a, texts in enumerate(audio_captions):
            has[a].update(caption_key(t) for t in texts)
    captions_with: dict[str, list[int]] = {}
    for c, key in enumerate(keys):
        captions_with.setdefault(key, []).append(c)
    audios_with: dict[str, list[int]] = {key: [] for key in captions_with}
    for a, texts in enumerate(has):
        for key in texts:
            if key in audios_with:
                audios_with[key].append(a)
    audio_arrays = {key: np.array(v, dtype=np.int64) for key, v in audios_with.items()}
    t2a = [audio_arrays[key] for key in keys]
    a2t = [np.array(sorted(c for key in texts for c in captions_with.get(key, ())), dtype=np.int64)
           for texts in has]
    return t2a, a2t


# --------------------------------------------------------------------------- ranks
def relevant_ranks(scores: np.ndarray, relevant: Sequence[Sequence[int]]) -> list[np.ndarray]:
    """1-based ranks of each query's relevant items, ascending, ties pessimistic.

    ``scores`` is (Q, D): query q's score for item d. ``relevant[q]`` lists the item
    indices relevant to query q (at least one). O(D log D) per query, however many are relevant.
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
        others = np.ones(row.shape[0], dtype=bool)
        others[rel] = False
        irrelevant = row[others]
        unscored = np.isnan(irrelevant)          # NaN: ranks ahead of every relevant item
        irrelevant = np.sort(irrelevant[~unscored])
        # irrelevant items scoring >= s (a NaN relevant score: after all of them)
        irrelevant_ge = np.where(np.isnan(rel_scores), irrelevant.size,
                                 irrelevant.size - np.searchsorted(irrelevant, rel_scores, side="left"))
        irrelevant_ge = irrelevant_ge + int(unscored.sum())
        # relevant items strictly above, or tied with a lower index: the position in
        # (score descending, index ascending) order, NaN last
        order = np.lexsort((rel, -np.nan_to_num(rel_scores, nan=-np.inf)))
        relevant_before = np.empty(rel.size, dtype=np.int64)
        relevant_before[order] = np.arange(rel.size)
        out.append(np.sort(1 + irrelevant_ge + relevant_before))
    return out


def ranks_t2a(similarity: np.ndarray, caption_audio: Sequence[int], captions: Sequence[str] | None = None,
              audio_captions: Sequence[Sequence[str]] | None = None) -> np.ndarray:
    """Rank of each caption's best relevant audio: ``similarity`` is (n_audio, n_captions).

    ``captions``/``audio_captions``: see :func:`caption_relevance`.
    """
    return np.array([r[0] for r in _t2a_ranks(similarity, caption_audio, captions, audio_captions)],
                    dtype=np.int64)


def ranks_a2t(similarity: np.ndarray, caption_audio: Sequence[int], captions: Sequence[str] | None = None,
              audio_captions: Sequence[Sequence[str]] | None = None) -> list[np.ndarray]:
    """Ranks (ascending) of each audio's relevant captions: ``similarity`` is (n_audio, n_captions)."""
    sim = np.asarray(similarity)
    _, relevant = caption_relevance(caption_audio, sim.shape[0], captions, audio_captions)
    return relevant_ranks(sim, relevant)


def _t2a_ranks(similarity: np.ndarray, caption_audio: Sequence[int], captions: Sequence[str] | None,
               audio_captions: Sequence[Sequence[str]] | None) -> list[np.ndarray]:
    sim = np.asarray(similarity)
    relevant, _ = caption_relevance(caption_audio, sim.shape[0], captions, audio_captions)
    return relevant_ranks(sim.T, relevant)


# --------------------------------------------------------------------------- summaries
def recall_at(best_ranks: np.ndarray, k: int) -> float:
    """Share of queries whose best relevant item ranks within ``k``."""
    return float(np.mean(np.asarray(best_ranks) <= k))


def recall_curve(best_ranks: np.ndarray, max_k: int) -> np.ndarray:
    """R@k for k = 1 … max_k (for plots)."""
    r = np.asarray(best_ranks)
    return np.array([np.mean(r <= k) for k in range(1, max_k + 1)], dtype=np.float64)


def average_precision_at(ranks: np.ndarray, depth: int = MAP_DEPTH) -> float:
    """AP@depth of one query whose n relevant items rank ``ranks``: Σ_{r_j ≤ depth} j / r_j over
    the ranks in ascending order, divided by min(n, depth) (1 for a perfect ranking)."""
    r = np.sort(np.asarray(ranks, dtype=np.float64))
    j = np.arange(1, len(r) + 1, dtype=np.float64)
    hit = r <= depth
    return float(np.sum(j[hit] / r[hit]) / min(len(r), depth))


def median_rank(best_ranks: np.ndarray) -> float:
    """LAION-CLAP's median rank: ``floor(median(rank − 1)) + 1`` of 1-based ranks (an integer)."""
    return float(np.floor(np.median(np.asarray(best_ranks) - 1)) + 1)


def _summary(best: np.ndarray, per_query_ap: np.ndarray) -> dict[str, float]:
    out = {f"R@{k}": recall_at(best, k) for k in RECALL_KS}
    out[f"mAP@{MAP_DEPTH}"] = float(np.mean(per_query_ap))
    out["median_rank"] = median_rank(best)
    out["mean_rank"] = float(np.mean(best))
    return out


def _ranked_summary(ranks: list[np.ndarray]) -> dict[str, float]:
    best = np.array([r[0] for r in ranks], dtype=np.int64)
    return _summary(best, np.array([average_precision_at(r) for r in ranks]))


def t2a_metrics(similarity: np.ndarray, caption_audio: Sequence[int], captions: Sequence[str] | None = None,
                audio_captions: Sequence[Sequence[str]] | None = None) -> dict[str, float]:
    """Text→audio R@1/5/10, mAP@10, median and mean rank (relevance: :func:`caption_relevance`)."""
    return _ranked_summary(_t2a_ranks(similarity, caption_audio, captions, audio_captions))


def a2t_metrics(similarity: np.ndarray, caption_audio: Sequence[int], captions: Sequence[str] | None = None,
                audio_captions: Sequence[Sequence[str]] | None = None) -> dict[str, float]:
    """Audio→text R@1/5/10, mAP@10, median and mean rank of the best relevant caption."""
    return _ranked_summary(ranks_a2t(similarity, caption_audio, captions, audio_captions))


def retrieval_metrics(audio_emb: np.ndarray, text_emb: np.ndarray, caption_audio: Sequence[int],
                      captions: Sequence[str] | None = None,
                      audio_captions: Sequence[Sequence[str]] | None = None) -> dict[str, dict[str, float]]:
    """Both directions from L2-normalised embeddings (cosine similarity).

    ``audio_emb`` (n_audio, dim), ``text_emb`` (n_captions, dim), and
    ``caption_audio[c]`` = index of caption c's audio. Pass the caption texts ``captions``
    (and any further captions of each audio, ``audio_captions``) so that clips sharing a caption
    count as relevant to each other (:func:`caption_relevance`); without them every caption is
    relevant to its own audio only. The trainer reuses this for periodic validation.
    """
    caption_audio = np.asarray(caption_audio, dtype=np.int64)
    if len(caption_audio) != len(text_emb):
        raise ValueError(f"{len(caption_audio)} caption→audio links for {len(text_emb)} captions")
    if caption_audio.size and (caption_audio.min() < 0 or caption_audio.max() >= len(audio_emb)):
        raise ValueError("caption_audio holds an audio index out of range")
    sim = np.asarray(audio_emb, dtype=np.float64) @ np.asarray(text_emb, dtype=np.float64).T
    t2a, a2t = caption_relevance(caption_audio, sim.shape[0], captions, audio_captions)
    return {"t2a": _ranked_summary(relevant_ranks(sim.T, t2a)),
            "a2t": _ranked_summary(relevant_ranks(sim, a2t))}


def label_t2a_metrics(audio_emb: np.ndarray, label_text_emb: np.ndarray,
                      targets: Sequence[int]) -> dict[str, float]:
    """Text→audio over a labelled clip set: each label queries all clips, every clip of it relevant.

    ``label_text_emb[i]`` embeds label i's query text, ``targets[n]`` is clip n's label
    index; labels without a clip are not queries. R@k = share of labels with one of their
    clips in the top k (the rank of the first one, ties pessimistic); mAP@10 over all of a
    label's clips (:func:`average_precision_at`: divided by min(n, 10), so a label whose 20 clips
    take ranks 1–20 scores 1); median/mean rank of the first relevant clip.
    """
    targets = np.asarray(targets, dtype=np.int64)
    sim = np.asarray(label_text_emb, dtype=np.float64) @ np.asarray(audio_emb, dtype=np.float64).T
    queries = [i for i in range(len(label_text_emb)) if np.any(targets == i)]
    if not queries:
        raise ValueError("no label has a clip")
    return _ranked_summary(relevant_ranks(sim[queries], [np.flatnonzero(targets == i) for i in queries]))


# --------------------------------------------------------------------------- zero-shot
def class_ranks(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """1-based rank of each clip's true class among all classes (ties pessimistic)."""
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    true = logits[np.arange(len(targets)), targets]
    # classes not scoring below the true one, itself included: a NaN true score ranks last and a
    # NaN elsewhere counts against it (``>=`` made a NaN true class rank 0, a hit)
    return (~(logits < true[:, None])).sum(axis=1)


def predictions(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """Top-1 class per clip, consistent with the pessimistic ties of :func:`class_ranks`.

    The true class is predicted only when it alone scores highest; among tied top
    scores another class wins (the lowest index among them).
    """
    logits = np.nan_to_num(np.asarray(logits, dtype=np.float64), nan=-np.inf)  # NaN never wins
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
    out: dict = {**_class_rank_figures(ranks), "per_class": {}}
    for i, label in enumerate(labels):
        mask = targets == i
        if mask.any():
            out["per_class"][label] = recall_at(ranks[mask], 1)
    if folds is not None:
        folds_arr = np.asarray([str(f) for f in folds])
        out["per_fold"] = {}
        for fold in sorted(set(folds_arr.tolist()), key=_natural_key):
            mask = folds_arr == fold
            out["per_fold"][fold] = {**_class_rank_figures(ranks[mask]), "n": int(mask.sum())}
    out["n"] = int(len(targets))
    return out


def _class_rank_figures(ranks: np.ndarray) -> dict[str, float]:
    """Zero-shot figures of the true classes' ranks: top-1, top-5, top-10 and mAP@10, the
    mean over clips of 1/rank within 10 (0 beyond), as LAION-CLAP's zero-shot evaluation reports
    them (its "R@5", "R@10", "mAP@10" rank the classes for each clip: top-5, top-10 here)."""
    r = np.asarray(ranks, dtype=np.float64)
    ap = np.where(r <= 10, 1.0 / r, 0.0)
    return {"top1": recall_at(r, 1), "top5": recall_at(r, 5), "top10": recall_at(r, 10),
            "mAP@10": float(ap.mean()) if r.size else 0.0}


def _natural_key(text: str) -> tuple:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)

"""Keyword matching on the words a library already holds, fused with the sound match.

Sound-effects libraries name their files for what they hold (``Door_Wood_Slam_03.wav``,
``Foley/Footsteps/gravel_run.flac``), and ``soundsift caption`` stores tags and captions. A
:class:`KeywordIndex` scores files by BM25 (Robertson & Zaragoza, 2009) over the words of their
path, tags and captions; :func:`fuse` merges its ranking with the model's by reciprocal rank
fusion (Cormack, Clarke & Büttcher, SIGIR 2009), which needs no calibration between a cosine and
a BM25 score. Words are lower-cased, split at punctuation, underscores and camelCase (a word
mixing letters and digits also counts as its letters: :func:`terms`), and stemmed (Snowball
English), so "dog barking" finds ``DogBark_02.wav`` and "footsteps" ``Footsteps01.wav``.
"""
from __future__ import annotations

import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

#: BM25's term-frequency saturation and length normalisation (the usual defaults)
K1, B = 1.2, 0.75
#: reciprocal rank fusion's damping constant (the paper's value)
RRF_K = 60
#: words that say nothing about which sound is meant
STOP_WORDS = frozenset("""
a an and are as at be by for from in into is it its of on or the this that to with without
sound sounds audio recording recorded clip sample samples file files sfx fx
""".split())

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[^\W_]+")
_LETTERS = re.compile(r"[^\W\d_]+")


class _Stems:
    """Snowball English stems, remembered: a library repeats few words many times, and the
    stemmer (pure Python, not thread-safe) is the slow part of building an index."""

    def __init__(self) -> None:
        self._memo: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stemmer: Any = None

    def __call__(self, word: str) -> str:
        stem = self._memo.get(word)
        if stem is None:
            with self._lock:
                if self._stemmer is None:
                    import snowballstemmer
                    self._stemmer = snowballstemmer.stemmer("english")
                stem = self._memo[word] = self._stemmer.stemWord(word)
        return stem


_stem = _Stems()


def _raw_words(text: str) -> list[str]:
    """``text`` split at punctuation, underscores and camelCase, lower-cased."""
    return [w.lower() for w in _WORD.findall(_CAMEL.sub(" ", text))]


def _searchable(word: str) -> bool:
    """No stop words, no numbers, no single Latin letters (a single CJK character is a word)."""
    return (len(word) > 1 or not word.isascii()) and not word.isdigit() and word not in STOP_WORDS


def words(text: str) -> list[str]:
    """The searchable words of ``text``: split, lower-cased, stemmed; no stop words, no numbers,
    no single Latin letters (a single CJK character is a word)."""
    return [_stem(w) for w in _raw_words(text) if _searchable(w)]


def terms(text: str) -> list[str]:
    """What a :class:`KeywordIndex` matches of ``text``: its :func:`words`, and the letters of
    each word that mixes letters and digits, so a name numbered without a separator
    (``Footsteps01.wav``, ``DoorSlam03``, ``kick808``) is found by its words ("footsteps"); the
    whole word stays too, so "take3" finds take3 first."""
    raw = _raw_words(text)
    runs = [run for w in raw if not w.isalpha() and not w.isdigit() for run in _LETTERS.findall(w)]
    return [_stem(w) for w in (*raw, *runs) if _searchable(w)]


@dataclass
class KeywordIndex:
    """BM25 over one bag of words per file."""

    file_ids: np.ndarray                 # (n,) file ids, aligned with the rows below
    postings: dict[str, tuple[np.ndarray, np.ndarray]]   # word → (rows, term counts)
    lengths: np.ndarray                  # (n,) words per file

    @classmethod
    def build(cls, docs: Iterable[tuple[int, str]]) -> "KeywordIndex":
        """From ``(file_id, text)`` pairs (one file may come several times: its texts add up)."""
        bags: dict[int, Counter] = {}
        for file_id, text in docs:
            bags.setdefault(int(file_id), Counter()).update(terms(text))
        ids = np.array(sorted(bags), dtype=np.int64)
        rows: dict[str, list[tuple[int, int]]] = {}
        for row, fid in enumerate(ids):
            for word, count in bags[int(fid)].items():
                rows.setdefault(word, []).append((row, count))
        postings = {w: (np.array([r for r, _ in rc], np.int64), np.array([c for _, c in rc], np.float64))
                    for w, rc in rows.items()}
        lengths = np.array([sum(bags[int(f)].values()) for f in ids], np.float64)
        return cls(ids, postings, lengths)

    def scores(self, query: str, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(file_ids, scores)`` of the files matching any query word, best first (ties by
        file id); only the ``allowed`` file ids when given."""
        n = len(self.file_ids)
        total = np.zeros(n)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        avg = max(1e-9, float(self.lengths.mean()))
        norm = K1 * (1 - B + B * self.lengths / avg)
        for word in dict.fromkeys(terms(query)):
            hit = self.postings.get(word)
            if hit is None:
                continue
            rows, tf = hit
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            total[rows] += idf * tf * (K1 + 1) / (tf + norm[rows])
        keep = total > 0
        if allowed is not None:
            keep &= np.isin(self.file_ids, allowed)
        ids, sc = self.file_ids[keep], total[keep]
        order = np.lexsort((ids, -sc))
        return ids[order], sc[order]


    def containing_all(self, text: str) -> np.ndarray:
        """File ids of the files holding every searchable word of ``text`` (none when it has no
        searchable word)."""
        wanted = list(dict.fromkeys(terms(text)))
        if not wanted or any(t not in self.postings for t in wanted):
            return np.zeros(0, np.int64)
        rows = self.postings[wanted[0]][0]
        for t in wanted[1:]:
            rows = np.intersect1d(rows, self.postings[t][0])
        return self.file_ids[rows]


def fuse(*rankings: Sequence[int], k: int = RRF_K) -> list[int]:
    """Reciprocal rank fusion: items by Σ 1 / (k + rank) over the rankings they appear in
    (rank from 1); ties keep the order of first appearance, earlier rankings first."""
    score: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            score[item] = score.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(dict.fromkeys(x for r in rankings for x in r))}
    return sorted(score, key=lambda item: (-score[item], order[item]))

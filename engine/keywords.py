"""Keyword matching on the words a library already holds, fused with the sound match.

Sound-effects libraries name their files for what they hold (``Door_Wood_Slam_03.wav``,
``Foley/Footsteps/gravel_run.flac``), and ``soundsift caption`` stores tags and captions. A
:class:`KeywordIndex` scores files by BM25 (Robertson & Zaragoza, 2009) over the words of their
path, tags and captions; :func:`fuse` merges its ranking with the model's by reciprocal rank
fusion (Cormack, Clarke & Büttcher, SIGIR 2009), which needs no calibration between a cosine and
a BM25 score. Words are case-folded, split at punctuation, underscores and camelCase (a word
mixing letters and digits also counts as its letters: :func:`terms`), and stemmed (Snowball
English), so "dog barking" finds ``DogBark_02.wav`` and "footsteps" ``Footsteps01.wav``.
A word that nearly every file holds, such as the folders above a library, matches none
(:meth:`KeywordIndex.scores`).
"""
from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

#: BM25's term-frequency saturation and length normalisation (the usual defaults)
K1, B = 1.2, 0.75
#: reciprocal rank fusion's damping constant (the paper's value)
RRF_K = 60
#: a word held by at least this share of the files a search may return tells none of them
#: apart (the library's own root folders, "/Volumes/Foley", "~/Library"): it neither makes a
#: file a match nor adds to its score (:meth:`KeywordIndex.scores`)
COMMON_SHARE = 0.99
#: words that say nothing about which sound is meant
STOP_WORDS = frozenset("""
a an and are as at be by for from in into is it its of on or the this that to with without
sound sounds audio recording recorded clip sample samples file files sfx fx
""".split())
#: plurals the Snowball stemmer does not bring to their singular's stem ("leaves" → "leav",
#: "leaf" → "leaf"), as sound libraries use them: foley leaves, horse hooves, feet, crowds of men
IRREGULAR_PLURALS = {
    "leaves": "leaf", "hooves": "hoof", "wolves": "wolf", "knives": "knife", "shelves": "shelf",
    "halves": "half", "calves": "calf", "loaves": "loaf", "thieves": "thief", "wives": "wife",
    "scarves": "scarf", "elves": "elf", "feet": "foot", "teeth": "tooth", "geese": "goose",
    "mice": "mouse", "lice": "louse", "men": "man", "women": "woman", "children": "child",
    "oxen": "ox", "buses": "bus", "gases": "gas",
}


def _cased(test: str) -> str:
    """The upper- or lower-case letters (``test``: the str method) of the scripts with case
    that names use (Latin, Greek, Cyrillic, Armenian), for a regular expression's class."""
    chars = (chr(c) for c in (*range(0x600), *range(0x1E00, 0x2000)))
    return re.escape("".join(c for c in chars if getattr(c, test)()))


_UPPER, _LOWER = _cased("isupper"), _cased("islower")
_CAMEL = re.compile(f"(?<=[{_LOWER}])(?=[{_UPPER}])|(?<=[{_UPPER}])(?=[{_UPPER}][{_LOWER}])")
#: the same for ASCII text (most file names), which is its own NFKC form: a smaller class is faster
_CAMEL_ASCII = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[^\W_]+")
_RUNS = re.compile(r"[^\W\d_]+|\d+")          # the letters and the digits of a mixed word
#: Chinese and Japanese write words without spaces between them: Han ideographs and kana
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_CJK_RUN = re.compile(f"[{_HAN}\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]+")
_HAN_CHAR = re.compile(f"[{_HAN}]")


class _Stems:
    """Snowball English stems (of the singular, for :data:`IRREGULAR_PLURALS`), remembered: a
    library repeats few words many times, and the stemmer (pure Python, not thread-safe) is
    the slow part of building an index."""

    def __init__(self) -> None:
        self._memo: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stemmer: Any = None

    def __call__(self, word: str) -> str:
        stem = self._memo.get(word)
        if stem is None:
            if word.isdigit():          # a number is its own stem (and names number in the thousands)
                return word
            with self._lock:
                if self._stemmer is None:
                    import snowballstemmer
                    self._stemmer = snowballstemmer.stemmer("english")
                stem = self._memo[word] = self._stemmer.stemWord(IRREGULAR_PLURALS.get(word, word))
        return stem


_stem = _Stems()


def _raw_words(text: str) -> list[str]:
    """``text`` split at punctuation, underscores, camelCase (``CaféBar`` too) and where Chinese
    or Japanese meets other letters; composed (NFKC: a macOS name writes ``ü`` as ``u`` and a
    combining diaeresis; full-width ``ＤＯＯＲ`` is ``DOOR``, half-width ``ﾄﾞｱ`` ``ドア``) and
    case-folded (``Straße`` → ``strasse``)."""
    if text.isascii():
        return [w.lower() for w in _WORD.findall(_CAMEL_ASCII.sub(" ", text))]
    text = _CAMEL.sub(" ", unicodedata.normalize("NFKC", text))
    if not text.isascii():
        text = _CJK_RUN.sub(r" \g<0> ", text)
    return [w.casefold() for w in _WORD.findall(text)]


def _cjk_parts(word: str) -> list[str]:
    """What a Chinese or Japanese ``word`` of several characters holds besides itself: its
    overlapping pairs of characters (``ドアの音`` → ドア, アの, の音) and its Han ideographs,
    each a word (``雷雨`` → 雷, 雨); none for any other word."""
    if len(word) < 2 or not _CJK_RUN.fullmatch(word):
        return []
    pairs = [word[i:i + 2] for i in range(len(word) - 1)] if len(word) > 2 else []
    return [*pairs, *_HAN_CHAR.findall(word)]


#: numbers of three or four digits not starting with 0 name things: a drum machine ("TR-808"), a
#: frequency ("440 Hz", "1000 Hz"), a year; shorter ones, and those with a leading zero or more
#: digits, number takes and files ("Slam_03", "_00127", "_38211"), which say nothing of the sound
NAMING_NUMBER_DIGITS = (3, 4)


def _searchable(word: str) -> bool:
    """No stop words, no numbers but those that name things (:data:`NAMING_NUMBER_DIGITS`), no
    single Latin letters (a single CJK character is a word)."""
    if word.isdigit():
        return len(word) in NAMING_NUMBER_DIGITS and not word.startswith("0")
    return (len(word) > 1 or not word.isascii()) and word not in STOP_WORDS


def words(text: str) -> list[str]:
    """The searchable words of ``text``: split, lower-cased, stemmed; no stop words, no numbers
    but those of three or four digits without a leading zero, no single Latin letters (a single
    CJK character is a word)."""
    return [_stem(w) for w in _raw_words(text) if _searchable(w)]


def terms(text: str) -> list[str]:
    """What a :class:`KeywordIndex` matches of ``text``: its :func:`words`, and the letters (and
    the numbers :func:`words` keeps) of each word that mixes letters and digits, so a name
    numbered without a separator (``Footsteps01.wav``, ``DoorSlam03``, ``kick808``,
    ``Sine_440Hz``) is found by its words ("footsteps", "808", "440"); the whole word stays too,
    so "take3" finds take3 first. A Chinese or Japanese word adds its
    pairs of characters and its ideographs (:func:`_cjk_parts`), so "ドア" finds ``木のドア.wav``
    and "雷" ``雷雨.wav``, the whole word ranking first."""
    raw = _raw_words(text)
    runs = [run for w in raw if not w.isalpha() and not w.isdigit() for run in _RUNS.findall(w)]
    cjk = [] if text.isascii() else [part for w in raw for part in _cjk_parts(w)]
    return [_stem(w) for w in (*raw, *runs, *cjk) if _searchable(w)]


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
        file id); only the ``allowed`` file ids when given.

        A word that (nearly) every one of those files holds (:data:`COMMON_SHARE`), such as a
        folder above the library's files, is left out: it would make every file a match with
        a score near 0, ordered by nothing but name lengths. A query made of such words alone
        matches no file (the search is then the sound match alone). Among a single file there
        is nothing to tell apart: its words match. Other words score as BM25 has it, their IDF
        over the whole index."""
        n = len(self.file_ids)
        total = np.zeros(n)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        avg = max(1e-9, float(self.lengths.mean()))
        norm = K1 * (1 - B + B * self.lengths / avg)
        among = None if allowed is None else np.isin(self.file_ids, allowed)
        for word in dict.fromkeys(terms(query)):
            hit = self.postings.get(word)
            if hit is None or _says_nothing(hit[0], among, n):
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


def _says_nothing(rows: np.ndarray, among: np.ndarray | None, n: int) -> bool:
    """Whether the files at ``rows`` (a word's postings) are at least :data:`COMMON_SHARE` of
    the files marked in ``among`` (those a search may return; ``None``: all ``n``), when
    those are several: among one file there is nothing to tell apart, and its words count."""
    held, among_n = (len(rows), n) if among is None else (int(among[rows].sum()), int(among.sum()))
    return among_n > 1 and held >= COMMON_SHARE * among_n


def fuse(*rankings: Sequence[int], k: int = RRF_K) -> list[int]:
    """Reciprocal rank fusion: items by Σ 1 / (k + rank) over the rankings they appear in
    (rank from 1); ties keep the order of first appearance, earlier rankings first."""
    score: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            score[item] = score.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(dict.fromkeys(x for r in rankings for x in r))}
    return sorted(score, key=lambda item: (-score[item], order[item]))

"""Keyword matching on the words a library already holds, fused with the sound match.

Sound-effects libraries name their files for what they hold (``Door_Wood_Slam_03.wav``,
``Foley/Footsteps/gravel_run.flac``), and ``soundsift caption`` stores tags and captions. A
:class:`KeywordIndex` scores files by BM25 (Robertson & Zaragoza, 2009) over the words of their
path, tags and captions; :func:`fuse` merges its ranking with the model's by reciprocal rank
fusion (Cormack, Clarke & Büttcher, SIGIR 2009), which needs no calibration between a cosine and
a BM25 score. Words are case-folded, split at punctuation, underscores and camelCase (a word
mixing letters and digits also counts as its letters: :func:`terms`), and stemmed (Snowball
English), so "dog barking" finds ``DogBark_02.wav`` and "footsteps" ``Footsteps01.wav``.
A word written without separators (``DOORSLAM``, ``gunshot``) also counts as its parts when
every part is a word the library spells out elsewhere or a common sound word
(:func:`split_compound`), and a query's words also match written together, so "door slam"
finds ``DOORSLAM_Wood_01.wav`` and "doorslam" ``Door_Slam_02.wav``.
A word that nearly every file holds, such as the folders above a library, matches none
(:meth:`KeywordIndex.scores`).
"""
from __future__ import annotations

import math
import re
import threading
import unicodedata
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

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
#: the shortest part a word written without separators is split into: "the" + "rapist" is no
#: split of "therapist" ("the" is a stop word) and no 1- or 2-letter word ("a", "by") is a part
COMPOUND_MIN_PART = 3
#: the shortest part known from the library's own words alone, not from :func:`sound_words`: the
#: three-letter words of descriptions and names ("der", "ten", "ron") end and begin too many
#: longer ones ("bartender" is no "bar" + "ten" + "der", "hottest" no "hot" + "test")
LIBRARY_MIN_PART = 4
#: the longest word tried as a compound (a run of letters longer than this is a hash or a code)
COMPOUND_MAX_LENGTH = 40
#: what a part found inside a compound counts for beside the same word written on its own: a
#: split is a guess ("carpet" is "car" + "pet" to a library holding both), so "car" ranks
#: ``Car_Pass_01`` above ``Carpet_Walk`` and "door" ``Door_Creak`` above ``DOORSLAM``
COMPOUND_PART_WEIGHT = 0.5
#: the most query words written together that are also looked up as one ("car pass by" →
#: "carpassby")
JOINED_WORDS = 3
#: words that sound libraries write into compounds (``WHOOSHBIG``, ``CARPASSBY``, ``KICKDRUM``)
#: and neither sound label list holds (:func:`sound_words`)
SOUND_NAMING_WORDS = frozenset("""
shot shots clap hit hits kick snare tom hihat cymbal crash ride passby pass flyby fly zip zap
whoosh swoosh swish swipe sweep riser drone stinger boom impact slam bang thud hum buzz loop
big small heavy light soft hard short long fast slow low high deep close distant far near
wood metal glass stone water wind rain fire ice snow door gate
""".split()) - STOP_WORDS
#: short words and word pieces that begin or end many longer English words ("office" is not
#: "off" + "ice", "message" not "mess" + "age", "present" not "pre" + "sent", "network" not
#: "net" + "work"): never a part of a compound
NO_PARTS = frozenset("""
age all any are can did end for get had has her him his how its may nor not now off one our
out own per put see she too two use was way who why yet you ion ing ous est ent ant ate ive
pre pro com con non sur inc ian led ted red ers ism ist ize ful ties able ible less ness ment
fully mid new hat net etc doo sci ska
""".split())


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


def _spelled(text: str) -> list[str]:
    """The words :func:`terms` stems, before stemming and before leaving out the unsearchable:
    ``text``'s words, the runs of letters and digits of each word mixing them, and the pairs and
    ideographs of each Chinese or Japanese word."""
    raw = _raw_words(text)
    runs = [run for w in raw if not w.isalpha() and not w.isdigit() for run in _RUNS.findall(w)]
    cjk = [] if text.isascii() else [part for w in raw for part in _cjk_parts(w)]
    return [*raw, *runs, *cjk]


def terms(text: str) -> list[str]:
    """What a :class:`KeywordIndex` matches of ``text``: its :func:`words`, and the letters (and
    the numbers :func:`words` keeps) of each word that mixes letters and digits, so a name
    numbered without a separator (``Footsteps01.wav``, ``DoorSlam03``, ``kick808``,
    ``Sine_440Hz``) is found by its words ("footsteps", "808", "440"); the whole word stays too,
    so "take3" finds take3 first. A Chinese or Japanese word adds its
    pairs of characters and its ideographs (:func:`_cjk_parts`), so "ドア" finds ``木のドア.wav``
    and "雷" ``雷雨.wav``, the whole word ranking first. (A :class:`KeywordIndex` also splits
    compounds with its library's words: :func:`split_compound`.)"""
    return [_stem(w) for w in _spelled(text) if _searchable(w)]


@lru_cache(maxsize=1)
def sound_words() -> frozenset[str]:
    """Words every library knows as parts of a compound (:func:`split_compound`): those of
    soundsift's everyday-sound labels (``engine/data/vocabulary.txt``), of the AudioSet class
    names, and :data:`SOUND_NAMING_WORDS`; "gunshot" is "gun" + "shot" in any library."""
    from engine.vocabulary import audioset_descriptions, everyday_labels
    labels = [*everyday_labels(), *(name for name, _ in audioset_descriptions())]
    return _part_words(w for label in labels for w in _raw_words(label)) | SOUND_NAMING_WORDS


def _part_words(spelled: Iterable[str], shortest: int = COMPOUND_MIN_PART) -> frozenset[str]:
    """Of the words ``spelled``, those that may be a part of a compound: letters only, at least
    ``shortest`` of them, no stop word and none of :data:`NO_PARTS`."""
    return frozenset(w for w in set(spelled) if len(w) >= shortest and w.isalpha()
                     and w not in STOP_WORDS and w not in NO_PARTS)


def _is_compound_candidate(word: str) -> bool:
    """Whether ``word`` may be split: letters only (no Chinese or Japanese: :func:`_cjk_parts`),
    long enough for two parts."""
    return (2 * COMPOUND_MIN_PART <= len(word) <= COMPOUND_MAX_LENGTH and word.isalpha()
            and (word.isascii() or not _CJK_RUN.search(word)))


def split_compound(word: str, known: frozenset[str] | set[str]) -> tuple[str, ...]:
    """``word`` (lower case, as :func:`_raw_words` gives it) as the fewest ``known`` words
    written together, each of at least :data:`COMPOUND_MIN_PART` letters (the last may add a
    plural "s": "gunshots" → gun, shots); ``()`` when there is no such split or ``word`` is no
    candidate. Among splits into as many parts, the one whose shortest part is longest, then
    the one with the longest first part. ``word`` itself never counts as a part of itself."""
    if not _is_compound_candidate(word):
        return ()
    n, least = len(word), COMPOUND_MIN_PART
    heads = [j for j in range(least, n - least + 1) if word[:j] in known]
    if not heads:
        return ()                       # most words: no known word starts them
    two = [(min(j, n - j), j) for j in heads if _fits(word, j, n, known)]
    if two:                             # most compounds: two parts, found without the search below
        j = max(two)[1]
        return word[:j], word[j:]
    # best[i]: (parts, -shortest part, -first part, parts) of the best split of word[:i]
    best: list[tuple[int, int, int, tuple[str, ...]] | None] = [None] * (n + 1)
    best[0] = (0, -n, 0, ())
    for j in range(least, n + 1):
        for i in range(0, j - least + 1):
            prev = best[i]
            if prev is None or (i == 0 and j == n) or not _fits(word, i, j, known):
                continue
            cand = (prev[0] + 1, max(prev[1], -(j - i)), prev[2] if i else -j, (*prev[3], word[i:j]))
            if best[j] is None or cand[:3] < best[j][:3]:
                best[j] = cand
    return best[n][3] if best[n] is not None else ()


def _fits(word: str, i: int, j: int, known: frozenset[str] | set[str]) -> bool:
    """Whether ``word[i:j]`` may be a part of ``word``: a ``known`` word (or, ending the word,
    a known word and a plural "s"), and not the doubled consonant and "ing" of a verb
    ("drip" + "ping" is no split of "dripping", "kid" + "ding" none of "kidding")."""
    part = word[i:j]
    if part not in known and not (j == len(word) and len(part) > COMPOUND_MIN_PART
                                  and part[-1] == "s" and part[:-1] in known):
        return False
    return not (i and part[1:] == "ing" and part[0] == word[i - 1])


def _inflected_from(word: str, known: frozenset[str] | set[str]) -> str | None:
    """The ``known`` word that ``word`` inflects (its Snowball stem, or that and "e":
    "barking" → bark, "generates" → generate, "gunshots" → gunshot), split in its place: the
    inflection's ending is no part ("barking" is not "bar" + "king"). ``None`` when it is none."""
    stem = _stem(word)
    if stem == word or not word.startswith(stem):
        return None
    return next((w for w in (stem, stem + "e") if w in known and w != word), None)


def _compound_tree(word: str, known: frozenset[str] | set[str],
                   memo: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
                   ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(leaves, inner)`` of ``word`` split again and again (:func:`split_compound`): the words
    it ends up as (itself when it does not split) and the compounds between (``doorslamheavy``
    → leaves door, slam, heavy; inner doorslam when the library spells that out too)."""
    found = memo.get(word)
    if found is None:
        base = _inflected_from(word, known)
        parts = split_compound(base, known) if base else split_compound(word, known)
        if not parts:
            found = ((word,), ())
        else:
            leaves: list[str] = []
            inner: list[str] = []
            for part in parts:
                sub_leaves, sub_inner = _compound_tree(part, known, memo)
                leaves += sub_leaves
                inner += sub_inner if sub_leaves == (part,) else [part, *sub_inner]
            found = (tuple(dict.fromkeys(leaves)), tuple(dict.fromkeys(inner)))
        memo[word] = found
    return found


def _stems(spelled: Iterable[str]) -> list[str]:
    return [_stem(w) for w in spelled if _searchable(w)]


def terms_with_parts(text: str, known: frozenset[str] | None = None, join: bool = False) -> set[str]:
    """The stems of ``text``'s :func:`terms`, and of the parts and inner compounds of each word
    it writes without separators (:func:`split_compound` with ``known``, by default
    :func:`sound_words`: "GATELATCH" → gate, latch); with ``join``, also of its words written
    together (up to :data:`JOINED_WORDS`: "gate latch" → gatelatch). For matching one short
    text against another without a library's :class:`KeywordIndex`, as marker names are."""
    known = sound_words() if known is None else known
    spelled = _spelled(text)
    out = set(_stems(spelled))
    memo: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for word in dict.fromkeys(w for w in spelled if _is_compound_candidate(w)):
        leaves, inner = _compound_tree(word, known, memo)
        if leaves != (word,):
            out.update(_stems(leaves), _stems(inner))
    if join:
        raw = [w for w in _raw_words(text) if w.isalpha()]
        out.update(_stems("".join(raw[i:i + n]) for n in range(2, JOINED_WORDS + 1)
                          for i in range(len(raw) - n + 1)))
    return out


@dataclass
class KeywordIndex:
    """BM25 over one bag of words per file."""

    file_ids: np.ndarray                 # (n,) file ids, aligned with the rows below
    postings: dict[str, tuple[np.ndarray, np.ndarray]]   # word → (rows, term counts)
    lengths: np.ndarray                  # (n,) words per file
    #: the words a compound may be split into (:func:`split_compound`): those the library spells
    #: out and :func:`sound_words`
    known: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def build(cls, docs: Iterable[tuple[int, str]]) -> "KeywordIndex":
        """From ``(file_id, text)`` pairs (one file may come several times: its texts add up).

        A word written without separators (``DOORSLAM``, ``thunderclap``) also counts as its
        parts (:func:`split_compound` with the library's words and :func:`sound_words`), each
        :data:`COMPOUND_PART_WEIGHT` times as often as the word."""
        bags: dict[int, Counter] = {}          # file id → its words as written (stemmed below, once each)
        seen: dict[str, list[str]] = {}        # a library repeats its folders, tags and categories
        for file_id, text in docs:
            found = seen.get(text)
            if found is None:
                found = seen[text] = [w for w in _spelled(text) if _searchable(w)]
            bags.setdefault(int(file_id), Counter()).update(found)
        del seen
        ids = np.array(sorted(bags), dtype=np.int64)
        rows: dict[str, list[tuple[int, int]]] = {}
        for row, fid in enumerate(ids):
            for word, count in bags[int(fid)].items():
                rows.setdefault(word, []).append((row, count))
        lengths = np.array([sum(bags[int(f)].values()) for f in ids], np.float64)
        postings = _by_stem(rows)
        known = _part_words(rows, LIBRARY_MIN_PART) | sound_words()
        _add_compound_parts(postings, lengths, [w for w in rows if _is_compound_candidate(w)], known)
        return cls(ids, postings, lengths, known)

    def save(self, fh: BinaryIO, key: str) -> None:
        """Write the index to the open binary file ``fh`` (an uncompressed ``.npz``: flat arrays
        and newline-joined words, no pickles) with ``key``, which :meth:`load` must be given back."""
        stems = list(self.postings)
        sizes = [len(self.postings[t][0]) for t in stems]
        np.savez(fh, key=_text_array([key]), file_ids=self.file_ids, lengths=self.lengths,
                 stems=_text_array(stems), starts=np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]),
                 rows=np.concatenate([self.postings[t][0] for t in stems] or [np.zeros(0, np.int64)]),
                 counts=np.concatenate([self.postings[t][1] for t in stems] or [np.zeros(0)]),
                 known=_text_array(sorted(self.known)))

    @classmethod
    def load(cls, file: str | Path, key: str) -> "KeywordIndex | None":
        """The index :meth:`save` wrote to ``file`` with ``key``; ``None`` when it was written
        with another key (stale). ValueError (or OSError) when ``file`` cannot be read or does
        not hold a whole index."""
        try:
            z = np.load(file, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError(f"{file}: not a whole keyword index (one array)")
            with z:
                if _text_list(z["key"]) != [key]:
                    return None
                file_ids, lengths, starts = z["file_ids"], z["lengths"], z["starts"]
                rows, counts = z["rows"], z["counts"]
                stems, known = _text_list(z["stems"]), _text_list(z["known"])
        except (KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise ValueError(f"{file}: not a whole keyword index ({e})") from e
        n = len(file_ids)
        if (len(lengths) != n or len(starts) != len(stems) + 1 or starts[0] != 0 or starts[-1] != len(rows)
                or len(counts) != len(rows) or np.any(np.diff(starts) < 1)
                or (len(rows) and (rows.min() < 0 or rows.max() >= n))):
            raise ValueError(f"{file}: its arrays do not fit together")
        bounds = starts.tolist()
        postings = {t: (rows[a:b], counts[a:b]) for t, a, b in zip(stems, bounds, bounds[1:])}
        return cls(file_ids, postings, lengths, frozenset(known))

    def _query_words(self, query: str) -> tuple[list[str], list[tuple[str, ...]]]:
        """The stems :meth:`scores` matches of ``query``: its :func:`terms`, the compounds its
        words written together would be ("door slam" → doorslam, up to :data:`JOINED_WORDS`
        words) and the compounds its compounds are made of; and the stems of the parts of each
        compound it writes ("doorslam" → door, slam), which match a file only together."""
        spelled = _spelled(query)
        plain = _stems(spelled)
        raw = [w for w in _raw_words(query) if w.isalpha()]
        joined = ["".join(raw[i:i + n]) for n in range(2, JOINED_WORDS + 1) for i in range(len(raw) - n + 1)]
        plain += [s for s in _stems(joined) if s in self.postings]
        together: list[tuple[str, ...]] = []
        memo: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for word in dict.fromkeys(w for w in spelled if _is_compound_candidate(w)):
            leaves, inner = _compound_tree(word, self.known, memo)
            if leaves != (word,):
                plain += _stems(inner)
                together.append(tuple(dict.fromkeys(_stems(leaves))))
        return list(dict.fromkeys(plain)), together

    def scores(self, query: str, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(file_ids, scores)`` of the files matching any query word, best first (ties by
        file id); only the ``allowed`` file ids when given.

        A word that (nearly) every one of those files holds (:data:`COMMON_SHARE`), such as a
        folder above the library's files, is left out: it would make every file a match with
        a score near 0, ordered by nothing but name lengths. A query made of such words alone
        matches no file (the search is then the sound match alone). Among a single file there
        is nothing to tell apart: its words match. Other words score as BM25 has it, their IDF
        over the whole index. Query words written together count as one word too ("gun shot"
        finds ``GUNSHOT``), and the parts of a query's compound score in the files holding all
        of them ("doorslam" finds ``Door_Slam``; "carpet" no file holding "car" alone)."""
        n = len(self.file_ids)
        total = np.zeros(n)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        avg = max(1e-9, float(self.lengths.mean()))
        norm = K1 * (1 - B + B * self.lengths / avg)
        among = None if allowed is None else np.isin(self.file_ids, allowed)

        def add(word: str, only: np.ndarray | None = None) -> None:
            """BM25 of ``word`` added to the files at the rows marked in ``only`` (all: None)."""
            hit = self.postings.get(word)
            if hit is None or _says_nothing(hit[0], among, n):
                return
            rows, tf = hit
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            if only is not None:
                keep = only[rows]
                rows, tf = rows[keep], tf[keep]
            total[rows] += idf * tf * (K1 + 1) / (tf + norm[rows])

        plain, together = self._query_words(query)
        for word in plain:
            add(word)
        scored = set(plain)
        for parts in together:
            holding = self._rows_holding(parts)
            if not len(holding):
                continue
            only = np.zeros(n, bool)
            only[holding] = True
            for part in parts:
                if part not in scored:
                    add(part, only)
                    scored.add(part)
        keep = total > 0
        if allowed is not None:
            keep &= np.isin(self.file_ids, allowed)
        ids, sc = self.file_ids[keep], total[keep]
        order = np.lexsort((ids, -sc))
        return ids[order], sc[order]

    def _rows_holding(self, stems: Sequence[str]) -> np.ndarray:
        """Rows of the files holding every one of ``stems`` (none for no stems)."""
        if not stems or any(t not in self.postings for t in stems):
            return np.zeros(0, np.int64)
        rows = self.postings[stems[0]][0]
        for t in stems[1:]:
            rows = np.intersect1d(rows, self.postings[t][0], assume_unique=True)
        return rows

    def containing_all(self, text: str) -> np.ndarray:
        """File ids of the files holding every searchable word of ``text`` (none when it has no
        searchable word). A compound counts as held where all its parts are ("doorslam" is in
        ``Door_Slam``; "door slam" in ``DOORSLAM`` when that splits), and so do the words of
        ``text`` written together as one ("gun shot" is in ``GUNSHOT``)."""
        memo: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        rows: np.ndarray | None = None
        for word in dict.fromkeys(w for w in _spelled(text) if _searchable(w)):
            held = self._rows_holding([_stem(word)])
            if _is_compound_candidate(word):
                leaves = _compound_tree(word, self.known, memo)[0]
                if leaves != (word,):
                    held = np.union1d(held, self._rows_holding(list(dict.fromkeys(_stems(leaves)))))
            rows = held if rows is None else np.intersect1d(rows, held)
        if rows is None:
            return np.zeros(0, np.int64)
        raw = [w for w in _raw_words(text) if w.isalpha()]
        if 2 <= len(raw) <= JOINED_WORDS:
            rows = np.union1d(rows, self._rows_holding(_stems(["".join(raw)])))
        return self.file_ids[rows]


def _text_array(texts: Sequence[str]) -> np.ndarray:
    """``texts`` (none holding a newline: words never do) as one array of UTF-8 bytes."""
    return np.frombuffer("\n".join(texts).encode(), np.uint8)


def _text_list(array: np.ndarray) -> list[str]:
    """The texts :func:`_text_array` wrote."""
    text = array.tobytes().decode()
    return text.split("\n") if text else []


def _by_stem(rows: dict[str, list[tuple[int, int]]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Postings by stem (:func:`_stem`) from ``(row, count)`` lists by word as written: the
    counts of a file's words of one stem ("door", "doors") add up."""
    spellings: dict[str, list[str]] = {}
    for word in rows:
        spellings.setdefault(_stem(word), []).append(word)
    postings = {}
    for stem, words_ in spellings.items():
        pairs = rows[words_[0]] if len(words_) == 1 else [rc for w in words_ for rc in rows[w]]
        at, counts = np.array([r for r, _ in pairs], np.int64), np.array([c for _, c in pairs], np.float64)
        if len(words_) > 1:
            at, inverse = np.unique(at, return_inverse=True)
            counts = np.bincount(inverse, weights=counts)
        postings[stem] = at, counts
    return postings


def _parts_by_stem(candidates: Iterable[str], known: frozenset[str]) -> dict[str, set[str]]:
    """The stems of the parts (:func:`_compound_tree`: the inner compounds as well as the
    leaves) of each compound among ``candidates`` (words as written), by the compound's stem."""
    memo: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    parts_of: dict[str, set[str]] = {}
    for word in candidates:
        leaves, inner = _compound_tree(word, known, memo)
        if leaves != (word,):
            stem = _stem(word)
            parts_of.setdefault(stem, set()).update(p for p in _stems((*inner, *leaves)) if p != stem)
    return parts_of


def _add_compound_parts(postings: dict[str, tuple[np.ndarray, np.ndarray]], lengths: np.ndarray,
                        candidates: Iterable[str], known: frozenset[str]) -> None:
    """Count the parts of the compounds among ``candidates`` (the library's words that may be
    compounds, as written: :func:`_parts_by_stem`) in the files holding them, each
    :data:`COMPOUND_PART_WEIGHT` times the compound's count, in ``postings`` and ``lengths``."""
    parts_of = _parts_by_stem(candidates, known)
    held = [stem for stem in parts_of if stem in postings]      # not a stop word ("without")
    if not held:
        return
    sizes = [len(postings[stem][0]) for stem in held]
    rows = np.concatenate([postings[stem][0] for stem in held])
    tf = np.concatenate([postings[stem][1] for stem in held])
    parts_per_row = np.repeat([len(parts_of[stem]) for stem in held], sizes)
    lengths += np.bincount(rows, weights=COMPOUND_PART_WEIGHT * parts_per_row * tf, minlength=len(lengths))
    holders: dict[str, list[str]] = {}          # a part's stem → the compounds' stems holding it
    for stem in held:
        for part in parts_of[stem]:
            holders.setdefault(part, []).append(stem)
    postings.update({part: _merged([postings[part]] if part in postings else [],
                                   [postings[stem] for stem in stems])
                     for part, stems in holders.items()})


def _merged(own: list[tuple[np.ndarray, np.ndarray]],
            compounds: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """A part's postings: its ``own`` (none when the library never writes it apart) and those
    of the ``compounds`` holding it at :data:`COMPOUND_PART_WEIGHT`, a file's counts added up."""
    rows, inverse = np.unique(np.concatenate([*(r for r, _ in own), *(r for r, _ in compounds)]),
                              return_inverse=True)
    counts = np.concatenate([*(c for _, c in own), COMPOUND_PART_WEIGHT * np.concatenate([c for _, c in compounds])])
    return rows, np.bincount(inverse, weights=counts)


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

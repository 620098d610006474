"""Keyword-to-caption (LAION-CLAP): tags → varied natural captions.

Templates always work offline; a local seq2seq model (e.g. a T5 fine-tuned on
keyword → caption) can be configured through transformers for more variety.
Every phrasing set includes the bare label and "This is a sound of …", the prompts
zero-shot tagging uses, so training and tagging speak the same language.
"""
from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Sequence

from engine.errors import ModelUnavailable

#: phrasings of one label; "{a}" is the label with an indefinite article
SINGLE_TEMPLATES: tuple[str, ...] = (
    "{label}",
    "This is a sound of {label}.",
    "The sound of {a}.",
    "A recording of {a}.",
    "{A} can be heard.",
    "Sound of {label}.",
    "{Label} sound effect.",
    "A clip of {label}.",
    "You can hear {a} in this recording.",
    "An audio recording of {label}.",
)

#: phrasings of several labels; "{list}" joins them ("A, B and C")
MULTI_TEMPLATES: tuple[str, ...] = (
    "{list}",
    "This is a sound of {list}.",
    "The sound of {list}.",
    "A recording of {list}.",
    "{List} can be heard.",
    "{First} with {rest} in the background.",
    "{First}, together with {rest}.",
    "A mix of {list}.",
)

_VOWEL = re.compile(r"^[aeiou]", re.I)
_MASS_NOUN = re.compile(r"(ing|music|speech|rain|wind|water|noise|silence|traffic|applause|laughter)$", re.I)


def clean_label(label: str) -> str:
    """A tag as it reads in a sentence: underscores/dashes to spaces, one space, no edge punctuation."""
    text = re.sub(r"[_\s]+", " ", str(label).replace("-", " ")).strip(" .,;:")
    return text


def sentence_case(label: str) -> str:
    """A label as it reads inside a sentence: ``Dog bark`` → ``dog bark``; acronyms (``TV``) kept."""
    return " ".join(w if (len(w) > 1 and w.isupper()) else w.lower() for w in clean_label(label).split(" "))


def short_label(label: str) -> str:
    """First alternative of an AudioSet-style label: ``Bird vocalization, bird call`` → ``Bird
    vocalization``; a comma inside brackets does not separate (``Roaring cats (lions, tigers)``)."""
    depth = 0
    for i, c in enumerate(str(label)):
        depth += (c in "([") - (c in ")]")
        if c == "," and depth <= 0:
            return clean_label(str(label)[:i])
    return clean_label(str(label))


def with_article(label: str) -> str:
    """``dog bark`` → ``a dog bark``; mass nouns and plurals keep no article."""
    text = clean_label(label)
    low = text.lower()
    if not text or _MASS_NOUN.search(low) or (low.endswith("s") and not low.endswith("ss")) \
            or low.startswith(("a ", "an ", "the ")):
        return text
    return ("an " if _VOWEL.match(low) else "a ") + text


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def join_labels(labels: Sequence[str]) -> str:
    """``["a", "b", "c"]`` → ``"a, b and c"``."""
    items = [clean_label(x) for x in labels if clean_label(x)]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def label_phrasings(label: str) -> list[str]:
    """Every template applied to one label (the bare label first)."""
    bare = clean_label(label)
    text = sentence_case(bare)
    a = with_article(text)
    return [bare] + [t.format(label=text, Label=_cap(text), a=a, A=_cap(a)) for t in SINGLE_TEMPLATES[1:]]


def tags_phrasings(tags: Sequence[str]) -> list[str]:
    """Every template applied to a set of tags (one tag → :func:`label_phrasings`)."""
    items = [clean_label(x) for x in tags if clean_label(x)]
    if not items:
        return []
    if len(items) == 1:
        return label_phrasings(items[0])
    items = [sentence_case(short_label(x)) for x in items]
    text = join_labels(items)
    rest = join_labels(items[1:])
    first = with_article(items[0])
    return [t.format(list=text, List=_cap(text), first=first, First=_cap(first), rest=rest)
            for t in MULTI_TEMPLATES]


def captions_from_tags(tags: Sequence[str], n: int = 3, *, rng: random.Random | None = None,
                       max_tags: int = 3) -> list[str]:
    """``n`` distinct captions for ``tags`` (best first; at most ``max_tags`` named).

    Without ``rng`` the choice is deterministic: the bare tags, "This is a sound of …",
    then the next templates in order. With ``rng`` the templates are sampled and the
    tags beyond the first shuffled, for augmentation during training.
    """
    items = [clean_label(x) for x in tags if clean_label(x)]
    items = list(dict.fromkeys(items))[:max_tags]
    if not items or n <= 0:
        return []
    if rng is not None and len(items) > 2:
        tail = items[1:]
        rng.shuffle(tail)
        items = [items[0]] + tail
    options = tags_phrasings(items)
    if rng is None:
        return options[:n]
    return rng.sample(options, min(n, len(options)))


def keyword_to_caption(tags: Sequence[str], rng: random.Random | None = None) -> str:
    """One caption for ``tags`` (random template with ``rng``, else "This is a sound of …")."""
    items = [clean_label(x) for x in tags if clean_label(x)]
    if not items:
        return ""
    if rng is None:
        return tags_phrasings(items)[1]
    return captions_from_tags(items, 1, rng=rng)[0]


class Seq2SeqCaptioner:
    """Keyword-to-caption with a local transformers seq2seq model (e.g. a T5 folder).

    The model reads ``prompt.format(tags="a, b")`` and writes a caption. Loaded from a
    local folder only (no downloads); generation is greedy, so deterministic.
    """

    def __init__(self, folder: str | Path, *, prompt: str = "keywords: {tags}", max_new_tokens: int = 32,
                 num_beams: int = 1) -> None:
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise ModelUnavailable(f"{folder}: no seq2seq caption model here (config.json missing); "
                                   "point captions.seq2seq_model at a local transformers folder or leave it empty")
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self.model = AutoModelForSeq2SeqLM.from_pretrained(str(folder), local_files_only=True).eval()
        except (OSError, ValueError) as e:
            raise ModelUnavailable(f"{folder}: cannot load a seq2seq caption model ({e})") from e
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams

    def __call__(self, tags_list: Sequence[Sequence[str]]) -> list[str]:
        """One caption per tag set."""
        import torch
        prompts = [self.prompt.format(tags=", ".join(clean_label(t) for t in tags)) for tags in tags_list]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams,
                                      do_sample=False)
        return [s.strip() for s in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

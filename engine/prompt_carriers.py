"""Carrier phrases: the words a query wraps around the sound it names.

Zero-shot prompts say "This is a sound of {label}."; people type "the sound of rain". A model that
maps a query onto AudioSet classes by its MiniLM meaning (soundsift-base) reads those words too,
and they pull every prompt toward the same place. :func:`strip_carrier` removes one leading
carrier phrase (and the full stop it brings), so "This is a sound of hail." is read as "hail".
"""
from __future__ import annotations

from typing import Sequence

#: the carriers soundsift-base strips (its config's ``query_carriers``), longest first when matched
CARRIERS = ("this is a sound of", "this is the sound of", "this is a recording of",
            "the sound of", "a sound of", "sound of", "a recording of", "recording of")


def strip_carrier(text: str, carriers: Sequence[str] = CARRIERS) -> str:
    """``text`` without a leading carrier phrase (whole words, any case) and its closing
    punctuation; unchanged when none leads it or nothing would be left."""
    stripped = text.strip()
    low = stripped.lower()
    for carrier in sorted(carriers, key=len, reverse=True):
        if low.startswith(carrier) and low[len(carrier):len(carrier) + 1] in (" ", ":"):
            rest = stripped[len(carrier) + 1:].strip().rstrip(".!").strip()
            return rest or text
    return text

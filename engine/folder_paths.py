"""Paths of folders and files as the indexer and the query layer both read them: whether a path
lies in a folder, by its text (which files a walk of some folders owns, which error rows a folder
holds), and a typed path spelt as the disk lists it (:func:`on_disk_spelling`: the case and Unicode
normal form of each name, as the catalog keeps them)."""
from __future__ import annotations

import logging
import os
import unicodedata
from pathlib import Path
from typing import Iterable

from engine.text_encoding import normal_forms

log = logging.getLogger(__name__)


def under_roots(path: str, roots: Iterable[str]) -> bool:
    """True if ``path`` is one of ``roots`` or lies inside one of them."""
    for root in roots:
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def on_disk_spelling(path: str) -> str:
    """The absolute ``path`` with each folder or file name in the case and Unicode normal form
    its parent folder lists it.

    On a case-insensitive file system (macOS's APFS and HFS+, a FAT or exFAT drive, an SMB share)
    ``~/sounds`` opens ``~/Sounds``, and ``os.path.realpath`` keeps the case as typed; the files
    under it, spelt that way, were not the indexed ones (they were all embedded again beside
    them) and no ``tags add`` path matched. Likewise a name with accents is typed composed (NFC,
    "é") while files from a macOS HFS+ disk keep it decomposed (NFD, "e" + U+0301): APFS opens
    either spelling, Linux only the listed one. A name is looked up in its folder's listing only
    where its other-case spelling or (non-ASCII only) its other normal form also exists; it is
    respelt to the listed entry that it opens, or, where the typed spelling opens nothing, to the
    one listed entry in its other normal form. A name the listing holds as given, or that is not
    there, or a folder that cannot be listed, is kept as given.
    """
    parts = Path(path).parts
    if len(parts) < 2 or (path.isascii() and not os.path.lexists(path)):
        return path
    out = parts[0]
    for i, name in enumerate(parts[1:], 1):
        here = os.path.join(out, name)
        if _other_spelling_exists(out, name):
            try:
                here = os.path.join(out, _listed_spelling(out, name))
            except OSError as e:
                log.debug("%s: kept as typed (%s)", here, e)
                return os.path.join(here, *parts[i + 1:])
        out = here
    return out


def _other_spelling_exists(folder: str, name: str) -> bool:
    """Whether ``folder`` has an entry for ``name`` in its other case or other normal form."""
    others = ([name.swapcase()] if name.swapcase() != name else []) + normal_forms(name)[1:]
    return any(os.path.lexists(os.path.join(folder, o)) for o in others)


def _listed_spelling(folder: str, name: str) -> str:
    """``name`` as ``folder`` lists it (:func:`on_disk_spelling`); OSError if it cannot be listed."""
    listed = os.listdir(folder)
    if name in listed:
        return name
    here = os.path.join(folder, name)
    nfc = unicodedata.normalize("NFC", name)
    if os.path.lexists(here):                               # a folder that opens other spellings
        key = nfc.casefold()
        found = [n for n in listed if unicodedata.normalize("NFC", n).casefold() == key
                 and _same_entry(os.path.join(folder, n), here)]
    else:                                                   # a name typed in the other normal form
        found = [n for n in listed if unicodedata.normalize("NFC", n) == nfc]
    return found[0] if len(found) == 1 else name


def _same_entry(listed: str, typed: str) -> bool:
    """Whether the folder entry ``listed`` is what ``typed`` opens (False when either is gone)."""
    try:
        return os.path.samefile(listed, typed)
    except OSError as e:
        log.debug("%s is not taken for %s (%s)", listed, typed, e)
        return False

"""Text written by other tools, in whatever encoding (and Unicode normal form) they used."""
from __future__ import annotations

import re
import unicodedata

#: the byte-order marks that open UTF-16 text (little- and big-endian)
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: control characters (C0 and DEL): no description means them, and a workbook cannot hold them
#: (openpyxl refuses a whole .xlsx for one)
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def decode_text(raw: bytes) -> str:
    """``raw`` as UTF-16 when it starts with a UTF-16 byte-order mark (Excel's "Unicode Text"),
    else as UTF-8 (with or without a byte-order mark), else Windows-1252 (what older Windows
    tools write: cue sheets from rippers, CSV saved by Excel), else Latin-1 (which decodes any
    bytes)."""
    if raw[:2] in UTF16_BOMS:
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


def one_line(text: str) -> str:
    """``text`` as one line: control characters (a bell, an escape, a NUL) as spaces, line
    breaks and runs of whitespace as one space, the ends stripped."""
    return " ".join(_CONTROLS.sub(" ", text).split())


def without_controls(text: str) -> str:
    """``text`` with its control characters other than tab and line ends as spaces (what a
    workbook's cell can hold)."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " ", text)


def normal_forms(text: str) -> list[str]:
    """``text`` as given, composed (NFC) and decomposed (NFD), each once: the spellings one name
    may have, typed ("é" one character) or copied from a macOS HFS+ disk ("e" and U+0301)."""
    if text.isascii():
        return [text]
    return list(dict.fromkeys([text, unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text)]))

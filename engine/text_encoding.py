"""Text files written by other tools, in whatever encoding they used."""
from __future__ import annotations

#: the byte-order marks that open UTF-16 text (little- and big-endian)
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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

"""Text from users and files shown inside Streamlit Markdown, as written.

File names, queries, upload names and the descriptions files carry can hold characters that
Streamlit's Markdown would act on: ``*`` and ``_`` (emphasis), ``$`` (maths), ``[...]`` and
``:color[...]`` (links, directives), backquotes, ``<`` (HTML), ``|`` (tables), ``~`` …
:func:`plain_markdown` escapes them, so "Door *slam* $5.wav" shows as that.
"""
from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_\[\]<>$:~|#])")
_LEADING_MARK = re.compile(r"^(\d*)([-+.)])(?=\s)")     # a list marker where a line starts


def plain_markdown(text: str) -> str:
    """``text`` on one line with Markdown's active characters escaped."""
    one_line = " ".join(str(text).split())
    return _LEADING_MARK.sub(r"\1\\\2", _SPECIAL.sub(r"\\\1", one_line))

"""Shareable searches: the address's ``?q=`` holds the text query."""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlencode

QUERY_PARAM = "q"


def query_from_params(params: Mapping[str, Any]) -> str:
    """The text query in the address, stripped ('' when there is none)."""
    value = params.get(QUERY_PARAM, "")
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return str(value or "").strip()


def share_url(base: str, text: str) -> str:
    """The address that reopens the page with ``text`` searched."""
    base = base.rstrip("/") + "/"
    return base + ("?" + urlencode({QUERY_PARAM: text}) if text.strip() else "")

"""What the page loads once per process (st.cache_resource) or per input (st.cache_data), and a
page of result cards' waveforms and audio, read a few cards at once (:func:`cards_media`)."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import streamlit as st

from engine.errors import SoundsiftError
from ui.components.library import FileRecord, Library
from ui.components.player import PlayerSource, player_source
from ui.components import server
from ui.components.server import index_dir_from_env, model_from_env  # noqa: F401  (the page's)


@st.cache_resource(show_spinner="Loading the index and its model…")
def sound_index(index_dir: str, model: str | None):
    """The query layer on ``index_dir`` (it follows new generations and rebuilds by itself): the one
    the server started opening (ui.components.server.warm_up) when it did, its error raised here
    once (a later call opens the index again)."""
    warming = server.warming(index_dir, model)
    if warming is not None:
        return warming.result()
    return server.open_index(index_dir, model)


@st.cache_resource(show_spinner=False)
def library(index_dir: str) -> Library:
    """Catalog look-ups by file id."""
    return Library(index_dir)


@st.cache_data(max_entries=2000, show_spinner=False)
def thumbnail(path: str, size: int, mtime_ns: int, duration: float,
              start: float | None, end: float | None, marks: tuple[float, ...] = ()) -> bytes:
    """Waveform PNG of a file (size and mtime make the cache key follow file changes), its
    named markers ticked."""
    from ui.components.thumbnails import waveform_png
    return waveform_png(path, duration, start, end, marks=marks)


#: bytes of players' audio kept across reruns (the most recently shown first). A count of entries
#: (24 before session 32) was thrashed by a page of more cards ("Show more" twice: 30), each rerun
#: then reading every card's audio again
PLAYER_CACHE_BYTES = 256 * 2**20


class _PlayerCache:
    """Players by (path, size, mtime_ns, start), least recently used dropped first once their
    audio passes ``budget`` bytes (the newest is always kept); safe for the card threads."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple, PlayerSource] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple, make: Callable[[], PlayerSource]) -> PlayerSource:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        made = make()                   # outside the lock: other cards read meanwhile
        with self._lock:
            if key not in self._items:
                self._items[key] = made
                self._bytes += len(made.data)
            while self._bytes > self.budget and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped.data)
        return made


_players = _PlayerCache(PLAYER_CACHE_BYTES)


def player(record: FileRecord, start: float) -> PlayerSource:
    """Audio for st.audio, kept for the files most recently shown (:data:`PLAYER_CACHE_BYTES`)."""
    start = round(float(start), 3)
    return _players.get((record.path, record.size, record.mtime_ns, start), lambda: player_source(record, start))


#: result cards whose waveform and audio are read at once (at most one a core): reading and
#: decoding run in libsndfile, outside the GIL, so a page of long or compressed files is drawn
#: sooner than one card after another (24 such cards 1.1–1.5x on 2 shared cores:
#: benchmarks/page_cards.py)
CARD_WORKERS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class CardMedia:
    """What a result card shows of its file: the waveform PNG and the player's audio, or why not
    (``error``, in UnreadableAudio's words: the file is named). A waveform drawn before the
    player failed is still shown."""

    png: bytes | None = None
    player: PlayerSource | None = None
    error: str | None = None


def card_media(record: FileRecord, start: float, end: float, play_from: float) -> CardMedia:
    """The card of ``record`` matching ``start``–``end`` s: its waveform (the match highlighted)
    and its audio, played from ``play_from`` s."""
    try:
        png = thumbnail(record.path, record.size, record.mtime_ns, record.duration, start, end, record.marks)
    except SoundsiftError as e:
        return CardMedia(error=str(e))
    try:
        return CardMedia(png, player(record, play_from))
    except SoundsiftError as e:
        return CardMedia(png, error=str(e))


def cards_media(cards: Sequence[tuple[FileRecord, float, float, float]],
                workers: int | None = None) -> Iterator[CardMedia]:
    """:func:`card_media` of each card (its arguments), in the cards' order, up to ``workers``
    at once (None: :data:`CARD_WORKERS`; 1: one after another). Each is yielded as soon as it
    and those before it are ready, so the first cards show while the later ones are read; one
    card's unreadable file is that card's ``error`` and leaves the others alone. The threads
    share the page run's Streamlit context, so the cached loaders behave as on its own thread."""
    workers = CARD_WORKERS if workers is None else workers
    if workers <= 1 or len(cards) <= 1:
        for card in cards:
            yield card_media(*card)
        return
    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx
    ctx = get_script_run_ctx(suppress_warning=True)     # None outside a page run
    pool = ThreadPoolExecutor(min(workers, len(cards)), thread_name_prefix="soundsift-card",
                              initializer=add_script_run_ctx if ctx is not None else None, initargs=(None, ctx))
    try:
        for future in [pool.submit(card_media, *card) for card in cards]:
            yield future.result()
    finally:       # a rerun stops the page mid-way: the cards not begun are dropped
        pool.shutdown(wait=True, cancel_futures=True)

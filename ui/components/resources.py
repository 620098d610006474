"""What the page loads once per process (st.cache_resource) or per input (st.cache_data)."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from ui.components.library import FileRecord, Library
from ui.components.player import PlayerSource, player_source
from ui.components.server import INDEX_ENV, MODEL_ENV


def index_dir_from_env() -> Path:
    """The index the page serves: $SOUNDSIFT_UI_INDEX (a name or a folder), else 'default'."""
    from engine.layout import resolve_index_dir
    return resolve_index_dir(os.environ.get(INDEX_ENV) or None).resolve()


def model_from_env() -> str | None:
    """A model override from $SOUNDSIFT_UI_MODEL; None uses the index's own model."""
    return os.environ.get(MODEL_ENV) or None


@st.cache_resource(show_spinner="Loading the index and its model…")
def sound_index(index_dir: str, model: str | None):
    """The query layer on ``index_dir`` (it follows new generations and rebuilds by itself)."""
    from engine.query import SoundIndex
    return SoundIndex.open(index_dir, model=model)


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


@st.cache_data(max_entries=24, show_spinner=False)
def _player(path: str, size: int, mtime_ns: int, record: FileRecord, start: float) -> PlayerSource:
    return player_source(record, start)


def player(record: FileRecord, start: float) -> PlayerSource:
    """Audio for st.audio, cached for the few files most recently shown."""
    return _player(record.path, record.size, record.mtime_ns, record, round(float(start), 3))

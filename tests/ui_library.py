"""A small sound library indexed with the tiny CLAP model, shared by the UI tests.

Five files in three folders (two formats, three sample rates, mono and stereo, 1.5–12 s) and one broken
file, so every filter, the failed-files table and the map have something to show.
"""
from __future__ import annotations

import hashlib
import io
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import chirp, noise, tone, write

SR = 48_000
THUNDER_TITLE, THUNDER_COMMENT = "Thunder *far* away [take 2]", "rolling, 3.5 km"


@dataclass(frozen=True)
class UiLibrary:
    """The library's root, its index folder, and the audio of its dog file."""

    root: Path
    index_dir: Path
    dog_wave: np.ndarray

    def path(self, name: str) -> Path:
        return next(self.root.rglob(name))


def make_library(root: Path) -> np.ndarray:
    """Write the library's files; returns the waveform of animals/dog_bark.wav."""
    dog = tone(440, 1.5, SR)
    write(root / "animals" / "dog_bark.wav", dog, SR)
    write(root / "animals" / "cat_meow.flac", chirp(300, 900, 2.0, 44_100), 44_100)
    write(root / "weather" / "rain_heavy.wav", np.stack([noise(3.0, SR, seed=1), noise(3.0, SR, seed=5)], 1), SR)
    thunder = write(root / "weather" / "thunder_far.wav", noise(12.0, 22_050, seed=2, amp=0.1), 22_050)
    with sf.SoundFile(str(thunder), "r+") as f:       # what it says it holds (WAV INFO), shown on its card
        f.title, f.comment = THUNDER_TITLE, THUNDER_COMMENT
    write(root / "machines" / "engine_idle.wav", tone(80, 2.5, SR), SR)
    (root / "machines" / "broken.wav").write_bytes(b"RIFF but not really a wave file")
    return dog


def page_on(index_dir: Path, monkeypatch, model: Path | None = None):
    """The page (streamlit AppTest, not run yet) on ``index_dir``, with ``model`` or the index's own."""
    from streamlit.testing.v1 import AppTest

    from ui.components.server import INDEX_ENV, MODEL_ENV
    monkeypatch.setenv(INDEX_ENV, str(index_dir))
    if model is None:
        monkeypatch.delenv(MODEL_ENV, raising=False)
    else:
        monkeypatch.setenv(MODEL_ENV, str(model))
    return AppTest.from_file(str(Path(__file__).resolve().parents[1] / "ui" / "app.py"), default_timeout=60)


def as_shown(markdown: str) -> str:
    """A name as the page shows it: the Markdown escapes plain_markdown added, undone."""
    return re.sub(r"\\(.)", r"\1", markdown)


def wav_bytes(wave: np.ndarray, sr: int = SR) -> bytes:
    """A waveform as WAV bytes, as an upload or a recording arrives."""
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


#: what an index folder changes on its own while it is only searched: SQLite's write-ahead log and
#: shared memory (the catalog is compared by its rows instead) and the keyword search's cache
READ_SIDE_FILES = frozenset({"catalog.db", "catalog.db-wal", "catalog.db-shm", "keywords.npz"})


def catalog_rows(catalog: Path) -> str:
    """A SQLite catalog's schema and rows as SQL, read through its write-ahead log."""
    conn = sqlite3.connect(f"{catalog.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def folder_state(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder``: its path relative to it → (size, SHA-1 of its bytes); a
    catalog.db by its rows (``<path> (rows)``), the files in READ_SIDE_FILES left out."""
    state = {}
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name not in READ_SIDE_FILES:
            state[f.relative_to(folder).as_posix()] = (f.stat().st_size, hashlib.sha1(f.read_bytes()).hexdigest())
        elif f.name == "catalog.db":
            rows = catalog_rows(f).encode()
            state[f"{f.relative_to(folder).as_posix()} (rows)"] = (len(rows), hashlib.sha1(rows).hexdigest())
    return state


def changes(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    """What differs between two ``folder_state``s: each path added, removed or changed, sorted."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


@contextmanager
def left_unchanged(folder: Path, what: str) -> Iterator[None]:
    """Around a shared fixture's ``yield``: fail on leaving if any test changed what is under
    ``folder`` (:func:`changes`), naming ``what`` it holds; a test that changes it takes a copy."""
    built = folder_state(folder)
    yield
    changed = changes(built, folder_state(folder))
    assert not changed, f"a test changed {what} under {folder} (give it its own copy): {changed}"


@pytest.fixture(scope="session")
def ui_library(tmp_path_factory, tiny_clap_dir) -> Iterator[UiLibrary]:
    """The library, indexed once per session with the tiny CLAP model (a plugin of conftest.py:
    take it by name, never import it, or each importing module builds its own). Every module
    sees the same folders, so a test must not change them: one that tags, deletes, imports a
    sheet or writes the catalog copies the folder first. Leaving the session checks that none did."""
    from indexer import build_index

    base = tmp_path_factory.mktemp("ui_library")
    root = base / "library"
    dog = make_library(root)
    index_dir = base / "index"
    summary = build_index([root], index=index_dir, model=str(tiny_clap_dir), workers=0,
                          progress=False)
    assert summary.added == 5 and summary.failed == 1, summary
    with left_unchanged(base, "the shared ui_library"):
        yield UiLibrary(root, index_dir, dog)

"""A result card's downloads: the matched moment as a WAV excerpt, and the whole file; the
results shown as one zip; the library's sheet.

The bytes are made only when the button is clicked (Streamlit calls the function then, on its
own thread), so a page of results costs no extra decoding. The excerpt is exactly what
``soundsift search --export`` cuts (engine.export); the file is served as stored, up to
``MAX_FILE_BYTES``. A card whose file has gone since it was indexed, is empty now or changed
since (another size or modification time: engine.export.changed_since_indexed) says so instead
of offering its downloads (:func:`gone_note`); one gone or changed between the card's drawing and
the click fails in the browser as Streamlit fails it, and the server log gets one line saying
why, not a traceback (:class:`OneLineDownloadErrors`).
"""
from __future__ import annotations

import functools
import logging
import mimetypes
import os
import stat
from pathlib import Path
from typing import Any, Callable

from engine.audio import probe
from engine.errors import SoundsiftError, UnreadableAudio
from engine.export import (changed_from, changed_since_indexed, excerpt_name, excerpt_wav, export_zip, indexed_state,
                           is_whole_file, take_name)
from engine.file_state import FileState
from ui.components.markdown_text import plain_markdown
from ui.components.times import span_text

MAX_FILE_BYTES = 512 * 1024 * 1024


def excerpt_bytes(path: str, start: float, end: float, indexed: FileState | None = None) -> bytes:
    """The span of ``path`` as WAV bytes at its own rate, channels and bit depth; UnreadableAudio
    when the file changed since it was indexed as ``indexed`` (``(size, mtime_ns)``; the span
    found is not in it now)."""
    _check_unchanged(path, indexed)
    return excerpt_wav(path, start, end)[0]


def file_bytes(path: str, indexed: FileState | None = None) -> bytes:
    """The stored file, byte for byte; UnreadableAudio when it cannot be read or is empty now (it
    was an empty download, where the zip's export refuses an empty file), or when its header is no
    audio's now (overwritten since it was indexed, by a web page or a text: not the result; as
    engine.export copies a whole file), or when it changed since it was indexed as ``indexed``
    (``(size, mtime_ns)``; the search matched the audio it held then, as engine.export refuses it)."""
    _check_unchanged(path, indexed)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UnreadableAudio(path, f"cannot be read for download ({e.strerror or e}); "
                                    "re-index the library if it moved") from e
    if not data:
        raise UnreadableAudio(path, "empty: the file is 0 bytes now; index the library again")
    probe(path)
    return data


def _check_unchanged(path: str, indexed: FileState | None) -> None:
    """UnreadableAudio when the file at ``path`` changed since it was indexed as ``indexed``."""
    changed = changed_since_indexed(path, indexed)
    if changed is not None:
        raise UnreadableAudio(path, changed)


#: why a result's file cannot be downloaded now (:func:`unavailable`)
GONE, EMPTY, CHANGED = "gone", "empty", "changed"


def unavailable(path: str, indexed: FileState | None = None) -> str | None:
    """:data:`GONE` when no file is at ``path`` now (moved, renamed or deleted since it was
    indexed), :data:`EMPTY` when it holds 0 bytes (a failed copy or sync: its download was an empty
    file, and the zip's export refuses it), :data:`CHANGED` when its size or modification time is
    not ``indexed`` (``(size, mtime_ns)`` when it was indexed; replaced or edited since, so what
    was matched is not in it: engine.export.changed_from), None while it can be downloaded."""
    try:
        found = os.stat(path)
    except OSError:
        return GONE
    if not stat.S_ISREG(found.st_mode):
        return GONE
    if found.st_size == 0:
        return EMPTY
    now = (int(found.st_size), int(found.st_mtime_ns))      # the stat above (engine.file_state.state_now's)
    return CHANGED if changed_from(now, indexed) is not None else None


def gone_note(record: Any) -> str | None:
    """What a card says instead of its downloads when its file is no longer where the catalog
    has it, is empty now or changed since it was indexed (:func:`unavailable`, against the
    record's ``size`` and ``mtime_ns``; its player may still play what the page read before);
    None while it is there as indexed."""
    why = unavailable(record.path, indexed_state(record))
    if why is None:
        return None
    if why == EMPTY:
        return (f":material/warning: No download: {plain_markdown(record.name)} is empty now (0 bytes; "
                f"{record.size:,} bytes when it was indexed); index the library again")
    if why == CHANGED:
        return (f":material/warning: No download: {plain_markdown(record.name)} changed since it was indexed "
                "(another size or modification time), so what this search matched is not in it now; "
                "index the library again")
    return (f":material/warning: No download: {plain_markdown(record.name)} is no longer at "
            f"{plain_markdown(record.folder)} (moved, renamed or deleted since it was indexed); "
            "index the library again")


def downloads(hit: Any, record: Any) -> list[dict[str, Any]]:
    """The download buttons of one card, as ``st.download_button`` keyword arguments (without
    key): the matched span when it is part of a longer file, then the file when it is not too
    large to pass through the page."""
    name = Path(record.path).name
    buttons = []
    start, end = float(hit.start), min(float(hit.end), float(record.duration))
    indexed = indexed_state(record)
    if not is_whole_file(start, end, float(record.duration)):
        buttons.append(dict(label="Match", data=_deferred(excerpt_bytes, record.path, start, end, indexed),
                            file_name=excerpt_name(name, start, end, take_name(hit)), mime="audio/wav",
                            help=f"Download {span_text(start, end)} of {plain_markdown(name)} as WAV (its own sample "
                                 "rate and bit depth)"))
    too_large = record.size > MAX_FILE_BYTES
    buttons.append(dict(label="File", data=_deferred(file_bytes, record.path, indexed), file_name=name,
                        mime=mimetypes.guess_type(name)[0] or "application/octet-stream",
                        disabled=too_large,
                        help=(f"{record.size / 2**20:.0f} MB: too large to download through the page; it is at "
                              f"{plain_markdown(record.path)}") if too_large
                        else f"Download {plain_markdown(name)} as stored"))
    return buttons


def results_zip(hits: list[Any], query: str) -> bytes:
    """The results as ``soundsift search --export`` writes them, zipped."""
    return export_zip(hits, query=query)[0]


def results_download(listed: list[tuple[Any, Any]], query: str) -> dict[str, Any]:
    """The "download these results" button (``st.download_button`` keyword arguments without
    key) for the cards shown, as (hit, catalog record) pairs. It counts those whose file can be
    downloaded (:func:`unavailable`); the others, gone, empty or changed, are named beside it
    (:func:`left_out_note`) and, as one gone between the drawing and the click, listed in the
    zip's not-exported.txt (engine.export.export_zip), so each file keeps its card's rank in its
    name. Disabled when the files it would hold pass ``MAX_FILE_BYTES`` together, or there are none."""
    kept = [(hit, record) for hit, record in listed if unavailable(record.path, indexed_state(record)) is None]
    hits = [hit for hit, _ in listed]
    size = sum(_exported_bytes(hit, record) for hit, record in kept)
    too_large = size > MAX_FILE_BYTES
    n = len(kept)
    return dict(label=(f"Download these {n} results (.zip)" if n > 1 else
                       "Download this result (.zip)" if n == 1 else "Download the results (.zip)"),
                data=_deferred(results_zip, hits, query), file_name="soundsift-results.zip",
                mime="application/zip", disabled=too_large or not kept,
                help=(f"About {size / 2**20:.0f} MB: too large to download through the page; use "
                      "soundsift search --export") if too_large else
                     "Each result as soundsift search --export writes it: the file, or the matched span of a "
                     "longer one as WAV, named by rank, with soundsift-export.csv saying where each came from")


def left_out_note(listed: list[tuple[Any, Any]]) -> str | None:
    """What the page says beside the zip button of the cards ``listed`` (hit, record) when some
    files are gone, empty or changed now (:func:`unavailable`): they are left out of it; None when
    none is."""
    said = {GONE: "no longer where it was indexed", EMPTY: "empty now", CHANGED: "changed since it was indexed"}
    left = [f"{plain_markdown(record.name)} ({said[why]})" for why, record in
            ((unavailable(record.path, indexed_state(record)), record) for _, record in listed) if why is not None]
    if not left:
        return None
    shown = ", ".join(left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
    return f":material/warning: Not in the zip: {shown}; index the library again"


def _exported_bytes(hit: Any, record: Any) -> int:
    """At most how many bytes a result adds to the zip: its file, or its span as WAV (4 bytes a
    sample at most)."""
    start, end = float(hit.start), min(float(hit.end), float(record.duration))
    if is_whole_file(start, end, float(record.duration)):
        return int(record.size)
    return int((end - start) * record.sample_rate * record.channels * 4) + 4096


def _deferred(fn: Callable[..., bytes], *args: Any) -> Callable[[], bytes]:
    return functools.partial(fn, *args)


#: the logger Streamlit reports a download's failed bytes on ("Failed to generate file for download")
STREAMLIT_DOWNLOAD_LOGGER = "streamlit.runtime.backend_operation_handler"


class OneLineDownloadErrors(logging.Filter):
    """Streamlit logs a download whose bytes could not be made with the traceback of the error.
    When it is soundsift's own (SoundsiftError: a file gone or unreadable, the message naming it),
    the record becomes one line of that message; any other error keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        reason = _soundsift_error(record.exc_info[1] if record.exc_info else None)
        if reason is not None:
            record.msg, record.args = "Download not made: %s", (str(reason),)
            record.exc_info, record.exc_text = None, None
        return True


def _soundsift_error(error: BaseException | None) -> SoundsiftError | None:
    """The SoundsiftError ``error`` is, or was raised from (Streamlit wraps the callable's)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, SoundsiftError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def quiet_download_errors() -> None:
    """Log soundsift's download errors on Streamlit's logger in one line (once per process)."""
    logger = logging.getLogger(STREAMLIT_DOWNLOAD_LOGGER)
    if not any(isinstance(f, OneLineDownloadErrors) for f in logger.filters):
        logger.addFilter(OneLineDownloadErrors())


quiet_download_errors()


def library_sheet_bytes(index_dir: str) -> bytes:
    """The index's library sheet as CSV (what ``soundsift sheet export library.csv`` writes)."""
    from engine.sheet_export import library_rows, sheet_bytes
    return sheet_bytes(library_rows(index_dir), ".csv")


def library_sheet_download(index_dir: str, files: int) -> dict[str, Any]:
    """The "library sheet" button (``st.download_button`` keyword arguments without key) of an
    index of ``files`` files; the sheet is made on click."""
    return dict(label="Library sheet (.csv)", data=_deferred(library_sheet_bytes, index_dir),
                file_name="soundsift-library.csv", mime="text/csv", disabled=not files,
                help=f"One row per indexed file ({files:,}): name, path, length, format, the descriptions it "
                     "carries or a library sheet gave it, markers, levels and your tags, under Soundminer's "
                     "column names (soundsift sheet export writes the same, and can add zero-shot tags)")

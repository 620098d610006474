"""Query-by-example uploads and recordings: checked for size, decoded in memory by the decoder
the indexer would read the file with (engine.audio.read_sound_bytes); what C decoders print
meanwhile is debug detail under the upload's name, not anonymous lines on the server's stderr.

Nothing uploaded is written anywhere, least of all into the library.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from engine.audio import read_sound_bytes
from engine.errors import InvalidQuery, UnreadableAudio
from engine.stderr_capture import capturing_beside_threads, summarised

log = logging.getLogger(__name__)

MAX_UPLOAD_MB = 50
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
UPLOAD_TYPES = ["wav", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "caf", "w64",
                "m4a", "aac", "wv", "wma", "ape", "mp4", "mov", "webm", "mkv"]     # a video: its sound


@dataclass(frozen=True)
class ExampleAudio:
    """A decoded upload: mono float32 at its own sample rate."""

    name: str
    waveform: np.ndarray
    sample_rate: int
    #: what decoding it had to say, each naming the upload: where an upload cut short stopped
    #: decoding, the audio before it kept (engine.audio.read_sound_bytes)
    notes: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        return self.waveform.size / self.sample_rate


def read_example(name: str, data: bytes, max_bytes: int | None = None) -> ExampleAudio:
    """Decode uploaded bytes; InvalidQuery if too large, UnreadableAudio if not audio. Bytes
    that break off after some audio (an upload cut short) keep the audio before the break, as a
    file of them is read, and the note saying where it stopped is the example's ``notes``.

    ``max_bytes`` defaults to :data:`MAX_UPLOAD_BYTES` (Streamlit's server.maxUploadSize
    stops larger uploads first; this check holds wherever the bytes come from).
    """
    max_bytes = MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    if len(data) > max_bytes:
        raise InvalidQuery(
            f"{name}: {len(data) / 2**20:.1f} MB is more than the {max_bytes / 2**20:.0f} MB "
            "upload limit; trim the file to the part you want to search by")
    if not data:
        raise UnreadableAudio(name, "empty upload")
    said_by_decoder: list[str] = []
    try:                                        # as the indexer reads a file of that name
        samples, rate = _decode(name, data, said_by_decoder)
    except UnreadableAudio as e:                # (named by the upload's name already)
        raise UnreadableAudio(name, f"not readable as audio ({e.reason}); "
                              f"upload one of: {', '.join(UPLOAD_TYPES)}") from e
    except Exception as e:
        raise UnreadableAudio(name, f"not readable as audio ({_decoder_reason(e)[:200]}); "
                              f"upload one of: {', '.join(UPLOAD_TYPES)}") from e
    if samples.shape[0] == 0:
        raise UnreadableAudio(name, "empty: the upload holds no samples")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if not np.isfinite(mono).all():
        raise UnreadableAudio(name, "contains NaN or Inf samples")
    return ExampleAudio(name, np.ascontiguousarray(mono, dtype=np.float32), int(rate),
                        tuple(f"{name}: {note}" for note in said_by_decoder))


def _decoder_reason(e: BaseException) -> str:
    """A decoder's error about an upload without soundfile's "Error opening …: " (the buffer's
    repr, or the upload's name, which the message gives already)."""
    said = str(e).strip()
    prefix = getattr(e, "prefix", "")          # soundfile.LibsndfileError's
    if isinstance(prefix, str) and prefix and said.startswith(prefix.strip()):
        said = said[len(prefix.strip()):].strip()
    return re.sub(r"^Error opening <[^>]*>: ", "", said) or type(e).__name__


def _decode(name: str, data: bytes, notes: list[str]) -> tuple[np.ndarray, int]:
    """:func:`read_sound_bytes` of the upload ``name``, what the C decoders print to stderr
    meanwhile (libmpg123's "Note: Illegal Audio-MPEG-Header …", "Warning: Xing stream size off
    …") taken (:func:`capturing_beside_threads`: the server and the page run threads) and logged
    as debug detail under its name: the upload's notes keep the one line saying where decoding
    stopped, a failure its one error, and the server's log no anonymous lines."""
    with capturing_beside_threads() as captured:
        try:
            return read_sound_bytes(data, name, notes)
        finally:
            for line in summarised(captured.take_lines()):
                log.debug("%s: the decoder said: %s", name, line)

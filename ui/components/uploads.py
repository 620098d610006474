"""Query-by-example uploads and recordings: checked for size, decoded in memory by the decoder
the indexer would read the file with (engine.audio.read_sound_bytes).

Nothing uploaded is written anywhere, least of all into the library.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from engine.audio import read_sound_bytes
from engine.errors import InvalidQuery, UnreadableAudio

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
        samples, rate = read_sound_bytes(data, name, said_by_decoder)
    except UnreadableAudio as e:                # (named by the upload's name already)
        raise UnreadableAudio(name, f"not readable as audio ({e.reason}); "
                              f"upload one of: {', '.join(UPLOAD_TYPES)}") from e
    except Exception as e:
        said = re.sub(r"^Error opening <[^>]*>: ", "", str(e).strip())     # not the buffer's repr
        raise UnreadableAudio(name, f"not readable as audio ({said[:200]}); "
                              f"upload one of: {', '.join(UPLOAD_TYPES)}") from e
    if samples.shape[0] == 0:
        raise UnreadableAudio(name, "empty: the upload holds no samples")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if not np.isfinite(mono).all():
        raise UnreadableAudio(name, "contains NaN or Inf samples")
    return ExampleAudio(name, np.ascontiguousarray(mono, dtype=np.float32), int(rate),
                        tuple(f"{name}: {note}" for note in said_by_decoder))

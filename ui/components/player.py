"""What the page's audio player gets for a catalog file and a start time.

Small files in a format browsers play are served whole, starting at the match; anything
else (AIFF, CAF, very large files) is served as a WAV excerpt that begins at the match,
so the browser never receives a whole hour of audio or a container it cannot play.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import soundfile as sf

from engine.audio import go_to_frame, open_sound, read_frames
from engine.errors import UnreadableAudio
from ui.components.library import FileRecord

#: soundfile container name → MIME type browsers play
BROWSER_FORMATS = {"WAV": "audio/wav", "WAVEX": "audio/wav", "FLAC": "audio/flac",
                   "OGG": "audio/ogg", "MP3": "audio/mpeg"}
MAX_WHOLE_BYTES = 20 * 1024 * 1024
EXCERPT_SECONDS = 30.0


@dataclass(frozen=True)
class PlayerSource:
    """Bytes for st.audio, their MIME type, and where playback starts (seconds)."""

    data: bytes
    mime: str
    start_time: float
    excerpt_offset: float | None = None  # file time of the excerpt's first sample

    def seconds(self, duration: float, excerpt_seconds: float = EXCERPT_SECONDS) -> float:
        """How long the audio it plays is, of a file of ``duration`` s: the whole file, or the
        excerpt (``excerpt_seconds`` from its offset, or to the file's end)."""
        if self.excerpt_offset is None:
            return float(duration)
        return max(0.0, min(float(excerpt_seconds), float(duration) - float(self.excerpt_offset)))


def player_source(record: FileRecord, start: float = 0.0, *,
                  max_whole_bytes: int = MAX_WHOLE_BYTES,
                  excerpt_seconds: float = EXCERPT_SECONDS) -> PlayerSource:
    """The audio to play for ``record`` from ``start`` seconds."""
    start = max(0.0, min(float(start), max(0.0, record.duration)))
    mime = BROWSER_FORMATS.get(record.format.upper())
    if mime is not None and record.size <= max_whole_bytes:
        try:
            with open(record.path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise UnreadableAudio(record.path, f"cannot be read for playback ({e.strerror}); "
                                  "re-index the library if it moved") from e
        return PlayerSource(data, mime, start)
    return PlayerSource(wav_excerpt(record.path, start, excerpt_seconds), "audio/wav", 0.0, start)


def wav_excerpt(path: str, start: float, seconds: float) -> bytes:
    """``seconds`` of ``path`` from ``start`` as 16-bit WAV bytes (native rate and channels);
    UnreadableAudio when there is no audio there (a file emptied or cut short since it was indexed)."""
    try:
        with open_sound(path) as f:
            first = min(int(round(start * f.samplerate)), max(0, f.frames - 1))     # as export: 15/44100 s is frame 15
            go_to_frame(f, first)                  # an MP3 or Ogg file: a seek 2 s early, then read
            data = read_frames(f, int(seconds * f.samplerate))
            rate = f.samplerate
    except Exception as e:
        raise UnreadableAudio(path, f"cannot be read for playback ({e})") from e
    if len(data) == 0:
        raise UnreadableAudio(path, f"holds no audio to play from {first / rate:.2f} s on "
                              "(emptied or cut short since it was indexed?); re-index the library")
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()

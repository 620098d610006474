"""Which copy of a recording to keep: of files holding the same audio (engine.duplicates), the
one that lost the least of it.

Lossless before lossy (an MP3 or Ogg of a WAV has lost what the codec threw away, whatever its
bit rate), then more bits per sample, a higher sample rate, more channels; among equals a file
whose name is not marked as a copy (``x (1).wav``, ``Copy of x.wav``, ``x copy.wav``,
``x - Copy.wav``: :func:`is_copy_name`), wherever each lies, then the shorter path, then the first
in alphabetical order. Only the header is read.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Sequence

from engine.audio import probe
from engine.errors import UnreadableAudio

log = logging.getLogger(__name__)

#: sample encodings (libsndfile subtypes, FFmpeg codec names) that keep every sample as recorded
_LOSSLESS = re.compile(r"^(PCM|FLOAT|DOUBLE|ALAC|FLAC|DWVW|WAVPACK|TTA|APE|MLP|TRUEHD|SHORTEN)")
#: bits per sample where the encoding says: PCM_24, ALAC_20, FFmpeg's pcm_s24le …
_BITS = re.compile(r"(?:PCM|ALAC|DWVW)_?[SUF]?(\d+)")
#: what copying adds to a file's stem: a browser's or Windows' ``x (1)``, macOS's ``x copy`` and
#: ``x copy 2``, Windows' ``x - Copy``, ``x - Copy (2)``, ``Copy of x`` and ``Copy (2) of x``,
#: GNOME's ``x (copy)``, ``x (another copy)`` and ``x (3rd copy)``
_COPY_MARK = re.compile(r"""\s?\(\d+\)$
                            | \scopy(?:\s\d+)?$
                            | \s-\scopy(?:\s\(\d+\))?$
                            | ^copy(?:\s\(\d+\))?\sof\s
                            | \s\((?:copy|another\scopy|\d+(?:st|nd|rd|th)\scopy)\)$""",
                        re.IGNORECASE | re.VERBOSE)


@dataclass(frozen=True)
class CopyQuality:
    """What a file's header says about how much of a recording it holds."""

    path: str
    lossless: bool
    bits: int              # per sample; 0 where the encoding does not say (lossy codecs)
    sample_rate: int
    channels: int
    format: str
    subtype: str

    def describe(self) -> str:
        """``WAV 24-bit 96 kHz 2 ch`` / ``MP3 (lossy) 44.1 kHz 2 ch``."""
        depth = f"{self.bits}-bit" if self.bits else ("" if self.lossless else "(lossy)")
        rate = f"{self.sample_rate / 1000:g} kHz"
        return " ".join(p for p in (self.format, depth, rate, f"{self.channels} ch") if p)


def is_lossless(subtype: str) -> bool:
    """Whether a file stored as ``subtype`` (a libsndfile subtype, an FFmpeg codec name) keeps
    every sample as recorded: PCM, FLAC, ALAC, WavPack … (not MP3, Vorbis, Opus, AAC, WMA, AC-3)."""
    return bool(_LOSSLESS.match(subtype.upper()))


def copy_quality(path: str) -> CopyQuality | None:
    """The header's account of ``path``; None (logged) when it cannot be read."""
    try:
        info = probe(path)
    except UnreadableAudio as e:
        log.warning("%s; not considered as the copy to keep", e)
        return None
    subtype = info.subtype.upper()
    lossless = is_lossless(subtype)
    bits = 64 if subtype == "DOUBLE" else 32 if subtype == "FLOAT" else 0
    if lossless and (m := _BITS.search(subtype)):
        bits = int(m.group(1))
    return CopyQuality(path, lossless, bits, info.sample_rate, info.channels, info.format, info.subtype)


def is_copy_name(path: str) -> bool:
    """Whether the file name of ``path`` (not its folders) carries a mark copying adds:
    ``x (1).wav``, ``x copy.wav``, ``x copy 2.wav``, ``x - Copy.wav``, ``Copy of x.wav`` …"""
    stem = os.path.splitext(os.path.basename(path))[0]
    return bool(_COPY_MARK.search(stem))


def best_copy(paths: Sequence[str]) -> tuple[str, dict[str, CopyQuality | None]]:
    """The path to keep of ``paths`` (files holding one recording; see the module doc) and each
    path's :class:`CopyQuality` (None where the header could not be read: such a file is
    kept only when no other can be read)."""
    if not paths:
        raise ValueError("best_copy needs at least one path")
    quality = {p: copy_quality(p) for p in paths}

    def rank(p: str) -> tuple:
        q = quality[p]
        if q is None:
            return (1, 0, 0, 0, 0, is_copy_name(p), len(p), p)
        return (0, -q.lossless, -q.bits, -q.sample_rate, -q.channels, is_copy_name(p), len(p), p)
    return min(paths, key=rank), quality

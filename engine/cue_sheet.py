"""Cue sheets: the tracks of a sound-effects CD image, or of any long recording, as named markers.

Sound-effects libraries of the CD era (one disc ripped to one WAV or FLAC, 99 effects a disc) and
long field recordings come with a cue sheet: a ``.cue`` text file beside the audio
(``FILE "disc12.wav" WAVE`` / ``TRACK 03 AUDIO`` / ``TITLE "Dog barking, large"`` /
``INDEX 01 04:12:37``, minutes:seconds:frames at 75 frames a second), the same text in a FLAC
file's ``CUESHEET`` Vorbis comment, or a FLAC ``CUESHEET`` metadata block (track offsets in
samples, no titles). Each track becomes a named marker (engine.file_metadata.Marker): its title,
else "Track 03" (the number a disc's booklet describes), from its ``INDEX 01`` to the next
track's start. The indexer cuts each as a take and keyword search reads the titles.

A file's sidecar is ``<name without extension>.cue`` or ``<name>.cue`` beside it (either case of
``.cue``); a sheet naming several files, beside the audio or inside it (a ``CUESHEET``
comment), gives each file its own tracks (matched by file name, then by name without extension,
since a rip converted to FLAC keeps its ``.wav`` sheet), and a sheet naming one file applies to
the file it sits beside or in whatever name it gives.
"""
from __future__ import annotations

import os
import re
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from engine.text_encoding import decode_text

#: frames a second in a cue sheet's mm:ss:ff times (CD sectors)
CUE_FRAMES = 75
#: largest cue sheet read (a 99-track sheet is a few kB)
MAX_CUE_BYTES = 1 << 20
#: sidecar names tried beside ``name.ext``: ``name.cue``, ``name.ext.cue``, in these cases
_SUFFIXES = (".cue", ".CUE")
_TIME = re.compile(r"(\d+):(\d{1,2}):(\d{1,2})")


@dataclass(frozen=True)
class CueTrack:
    """One track of a cue sheet in the file it belongs to: its start (seconds), name, and how
    long until the next track of that file starts (None for the last)."""

    at: float
    name: str
    length: float | None = None


@dataclass
class _Track:
    number: int
    file: str
    title: str = ""
    starts: dict[int, float] | None = None      # INDEX number → seconds


def cue_time(text: str) -> float:
    """Seconds of a cue sheet time ``mm:ss:ff``; ValueError for anything else."""
    m = _TIME.fullmatch(text.strip())
    if not m or int(m.group(2)) >= 60 or int(m.group(3)) >= CUE_FRAMES:
        raise ValueError(f"not a cue sheet time (mm:ss:ff): {text!r}")
    return int(m.group(1)) * 60 + int(m.group(2)) + int(m.group(3)) / CUE_FRAMES


#: a cue line's word: a double-quoted value (a cue sheet has no escapes), else a run of non-spaces
_WORD = re.compile(r'"([^"]*)"?|(\S+)')


def _words(line: str) -> list[str]:
    """A cue line's words, double-quoted values kept whole and as written: an apostrophe
    (``TITLE Dog's bark``) or a backslash (``FILE C:\\Rips\\disc12.wav WAVE``) is a character
    like any other; a quote left open runs to the line's end."""
    return [bare or quoted for quoted, bare in _WORD.findall(line)]


def _parse(text: str) -> tuple[list[str], list[_Track]]:
    """The FILE names of a cue sheet, in order, and its tracks."""
    files: list[str] = []
    tracks: list[_Track] = []
    for line in text.splitlines():
        words = _words(line.strip())
        if not words:
            continue
        command = words[0].upper()
        if command == "FILE" and len(words) >= 2:
            files.append(words[1])
        elif command == "TRACK" and len(words) >= 2 and words[1].isdigit():
            tracks.append(_Track(int(words[1]), files[-1] if files else "", starts={}))
        elif command == "TITLE" and len(words) >= 2 and tracks and not tracks[-1].title:
            tracks[-1].title = " ".join(words[1:]).strip()
        elif command == "INDEX" and len(words) >= 3 and tracks and words[1].isdigit():
            try:
                at = cue_time(words[2])
            except ValueError:
                continue
            track = tracks[-1]
            if int(words[1]) == 1 and files and track.file != files[-1]:
                track.file = files[-1]          # a pregap in the file before: the track is in this one
            track.starts.setdefault(int(words[1]), at)
    return files, tracks


def _name(path: str) -> str:
    """The file name a cue sheet's FILE value or a file's name compares as: either slash, A–Z
    case aside, accents composed (a Mac's disk keeps "ü" as "u" and a combining diaeresis)."""
    return unicodedata.normalize("NFC", os.path.basename(path.replace("\\", "/"))).lower()


def _same_file(named: str, audio_name: str) -> bool:
    return _name(named) == _name(audio_name)


def _same_stem(named: str, audio_name: str) -> bool:
    return os.path.splitext(_name(named))[0] == os.path.splitext(_name(audio_name))[0]


def cue_tracks(text: str, audio_name: str | None = None) -> list[CueTrack]:
    """The tracks a cue sheet gives the audio file named ``audio_name`` (None, or a sheet naming
    one file: all its tracks), in time order. A track without ``INDEX 01`` is left out."""
    files, tracks = _parse(text)
    if audio_name is not None and len(set(files)) > 1:
        mine = [f for f in files if _same_file(f, audio_name)] or [f for f in files if _same_stem(f, audio_name)]
        tracks = [t for t in tracks if t.file in mine]
    placed = sorted(((t.starts[1], t) for t in tracks if t.starts and 1 in t.starts), key=lambda p: p[0])
    out = []
    for i, (at, track) in enumerate(placed):
        following = [t for _, t in placed[i + 1:] if t.file == track.file]
        end = min(following[0].starts.values()) if following else None
        out.append(CueTrack(at, track.title or f"Track {track.number:02d}",
                            end - at if end is not None and end > at else None))
    return out


def sidecar_cue(audio: str | Path) -> str | None:
    """The cue sheet beside ``audio`` (``name.cue``, then ``name.ext.cue``), or None."""
    audio = str(audio)
    for base in (os.path.splitext(audio)[0], audio):
        for suffix in _SUFFIXES:
            if os.path.isfile(base + suffix):
                return base + suffix
    return None


def sidecar_tracks(audio: str | Path) -> list[CueTrack]:
    """The tracks the sidecar cue sheet of ``audio`` gives it (none without one). OSError when
    the sheet cannot be read; ValueError for one too large to be a cue sheet."""
    sheet = sidecar_cue(audio)
    if sheet is None:
        return []
    if os.path.getsize(sheet) > MAX_CUE_BYTES:
        raise ValueError(f"{os.path.basename(sheet)} is larger than {MAX_CUE_BYTES >> 10} kB: not a cue sheet")
    with open(sheet, "rb") as f:
        return cue_tracks(decode_text(f.read()), os.path.basename(str(audio)))


def sidecar_state(audio: str | Path) -> str:
    """What identifies the sidecar cue sheet of ``audio`` now (name, size, modification time),
    "" without one: the indexer keeps it, so an added, edited or removed sheet is noticed."""
    sheet = sidecar_cue(audio)
    if sheet is None:
        return ""
    st = os.stat(sheet)
    return f"{os.path.basename(sheet)}:{st.st_size}:{st.st_mtime_ns}"


def flac_cuesheet_block(body: bytes, sample_rate: int) -> list[CueTrack]:
    """The audio tracks of a FLAC ``CUESHEET`` metadata block (offsets in samples at
    ``sample_rate``; a block has no titles, so each is "Track NN"), in time order, from INDEX 01
    to the next track's first index point (its pregap, as for a sheet's text); the lead-out track
    (170 on a CD, 255 otherwise) ends the last one. A block cut short gives what it holds."""
    if sample_rate <= 0 or len(body) < 396:
        return []
    count, at, starts = body[395], 396, []
    lead_out: float | None = None
    for _ in range(count):
        if at + 36 > len(body):
            break
        offset, number = struct.unpack(">QB", body[at:at + 9])
        audio = not body[at + 21] & 0x80
        points, at = body[at + 35], at + 36
        index: dict[int, int] = {}
        for _ in range(points):
            if at + 12 > len(body):
                break
            point_offset, point = struct.unpack(">QB", body[at:at + 9])
            index.setdefault(point, offset + point_offset)
            at += 12
        if number in (170, 255):
            lead_out = offset / sample_rate
        elif audio and 1 in index:
            starts.append((index[1] / sample_rate, min(index.values()) / sample_rate, number))
    starts.sort()
    out = []
    for i, (start, _, number) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else lead_out       # the next track's pregap
        out.append(CueTrack(start, f"Track {number:02d}", end - start if end is not None and end > start else None))
    return out

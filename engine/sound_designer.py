"""Sound Designer II (``.sd2``) files, read wherever their resource fork travelled.

An ``.sd2`` file's data fork is raw big-endian PCM; its sample size, rate and channel count are
``STR `` resources (ids 1000, 1001, 1002) in its *resource fork*, which only macOS keeps inside
the file. Elsewhere the fork travels apart:

- on macOS itself, as ``<name>/..namedfork/rsrc``;
- beside the file as ``._<name>``: an AppleDouble file macOS writes on exFAT, FAT and network
  drives (or a bare fork, as libsndfile writes it);
- in an unpacked zip made on a Mac, under a ``__MACOSX`` folder that mirrors the tree
  (``Library/__MACOSX/Doors/._slam.sd2`` for ``Library/Doors/slam.sd2``), where libsndfile
  does not look.

:func:`open_sd2` finds the fork in any of these places, reads its parameters, and reads the data
fork as raw PCM with them; a file whose fork is nowhere is :class:`~engine.errors.UnreadableAudio`
saying so.
"""
from __future__ import annotations

import os
import struct
import sys
from dataclasses import dataclass

import soundfile as sf

from engine.errors import UnreadableAudio
from engine.system_files import APPLEDOUBLE_MAGIC

SD2_EXTENSION = ".sd2"
#: AppleDouble entry id of the resource fork
_RESOURCE_FORK_ENTRY = 2
#: STR resource ids of the three parameters
_SAMPLE_SIZE, _SAMPLE_RATE, _CHANNELS = 1000, 1001, 1002
_SUBTYPES = {1: "PCM_S8", 2: "PCM_16", 3: "PCM_24", 4: "PCM_32"}
#: ancestors searched for a __MACOSX folder (an unpacked zip's root is rarely deeper)
_MAX_ZIP_DEPTH = 32
#: a resource fork is read whole up to this size (an .sd2 fork holds a few strings and markers)
_MAX_FORK_BYTES = 16 << 20

NO_FORK = ("Sound Designer II file without its resource fork, which holds its sample rate and "
           "channels (no ._{name} beside it, no __MACOSX copy): copy it from the Mac with its "
           "fork (Finder to an exFAT or network drive, or a zip made on the Mac) or convert it "
           "to WAV there")


@dataclass(frozen=True)
class Sd2Format:
    """What a resource fork says about its data fork."""

    sample_rate: int
    channels: int
    sample_bytes: int

    @property
    def subtype(self) -> str:
        return _SUBTYPES[self.sample_bytes]


def is_sd2(path: str) -> bool:
    return os.path.splitext(path)[1].lower() == SD2_EXTENSION


def resource_fork(data: bytes) -> bytes:
    """The resource fork inside an AppleDouble file, or ``data`` itself when it is a bare fork
    (as libsndfile writes ``._<name>``). ValueError when an AppleDouble file holds none."""
    if not data.startswith(APPLEDOUBLE_MAGIC):
        return data
    if len(data) < 26:
        raise ValueError("AppleDouble header cut short")
    (count,) = struct.unpack_from(">H", data, 24)
    for i in range(count):
        at = 26 + 12 * i
        if at + 12 > len(data):
            break
        entry, offset, length = struct.unpack_from(">III", data, at)
        if entry == _RESOURCE_FORK_ENTRY:
            if offset + length > len(data):
                raise ValueError("its resource fork runs past the end of the file")
            return data[offset:offset + length]
    raise ValueError("the AppleDouble file holds Finder information but no resource fork")


def string_resources(fork: bytes) -> dict[int, str]:
    """The ``STR `` resources of a resource fork, id → text (Mac Roman). ValueError when the
    bytes are not a resource fork."""
    try:
        data_at, map_at, data_len, map_len = struct.unpack_from(">IIII", fork, 0)
        if data_at + data_len > len(fork) or map_at + map_len > len(fork) or map_len < 30:
            raise ValueError("not a resource fork (its header points past its end)")
        types_at = map_at + struct.unpack_from(">H", fork, map_at + 24)[0]
        (type_count,) = struct.unpack_from(">H", fork, types_at)
        out: dict[int, str] = {}
        for t in range(type_count + 1):
            kind, n, refs = struct.unpack_from(">4sHH", fork, types_at + 2 + 8 * t)
            if kind != b"STR ":
                continue
            for r in range(n + 1):
                rid, _name, attr_and_offset = struct.unpack_from(">hHI", fork, types_at + refs + 12 * r)
                at = data_at + (attr_and_offset & 0xFFFFFF)
                (length,) = struct.unpack_from(">I", fork, at)
                text = fork[at + 4:at + 4 + length]
                out[rid] = text[1:1 + text[0]].decode("mac_roman") if text else ""
        return out
    except struct.error as e:
        raise ValueError("not a resource fork (cut short)") from e


def sd2_format(fork: bytes) -> Sd2Format:
    """Sample rate, channels and sample size from an ``.sd2`` file's resource fork (bare or in an
    AppleDouble file). ValueError naming what is missing or wrong."""
    strings = string_resources(resource_fork(fork))
    missing = [name for rid, name in ((_SAMPLE_SIZE, "sample-size"), (_SAMPLE_RATE, "sample-rate"),
                                      (_CHANNELS, "channels")) if rid not in strings]
    if missing:
        raise ValueError(f"its resource fork has no {', '.join(missing)}")
    try:
        size = int(strings[_SAMPLE_SIZE].strip())
        rate = round(float(strings[_SAMPLE_RATE].strip()))
        channels = int(strings[_CHANNELS].strip())
    except ValueError as e:
        raise ValueError(f"its resource fork's parameters are not numbers ({e})") from e
    if size not in _SUBTYPES or rate <= 0 or channels <= 0:
        raise ValueError(f"its resource fork says {size}-byte samples, {rate} Hz, {channels} channels")
    return Sd2Format(rate, channels, size)


def fork_locations(path: str) -> list[str]:
    """Where ``path``'s resource fork may be, nearest first: macOS's named fork, ``._<name>``
    beside it, then the ``__MACOSX`` mirror of every ancestor folder (an unpacked zip's root)."""
    folder, name = os.path.split(os.path.abspath(path))
    out = [os.path.join(folder, name, "..namedfork", "rsrc")] if sys.platform == "darwin" else []
    out.append(os.path.join(folder, "._" + name))
    inner: list[str] = []
    for _ in range(_MAX_ZIP_DEPTH):
        out.append(os.path.join(folder, "__MACOSX", *reversed(inner), "._" + name))
        parent, part = os.path.split(folder)
        if parent == folder:
            break
        inner.append(part)
        folder = parent
    return out


class Sd2SoundFile(sf.SoundFile):
    """An ``.sd2`` data fork read as raw big-endian PCM with its fork's parameters; says "SD2"."""

    def __init__(self, path: str, fmt: Sd2Format) -> None:
        super().__init__(path, "r", samplerate=fmt.sample_rate, channels=fmt.channels,
                         subtype=fmt.subtype, endian="BIG", format="RAW")

    @property
    def format(self) -> str:
        return "SD2"

    @property
    def format_info(self) -> str:
        return "SD2 (Sound Designer II)"


def open_sd2(path: str) -> Sd2SoundFile:
    """Open an ``.sd2`` file by its resource fork from :func:`fork_locations`;
    :class:`UnreadableAudio` when none is found, or with the first one's reason when none of the
    forks found is usable."""
    problem = ""
    for where in fork_locations(path):
        try:
            with open(where, "rb") as f:
                fork = f.read(_MAX_FORK_BYTES)
            if not fork:                # macOS's named fork of a file that has none
                continue
            fmt = sd2_format(fork)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            problem = problem or f"its resource fork {where} cannot be read ({e.strerror or e})"
            continue
        except ValueError as e:
            problem = problem or f"Sound Designer II file whose resource fork {where} is not usable: {e}"
            continue
        return Sd2SoundFile(path, fmt)
    raise UnreadableAudio(path, problem or NO_FORK.format(name=os.path.basename(path)))

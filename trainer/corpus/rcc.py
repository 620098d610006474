"""A small reader for Qt binary resource files (``.rcc``), as GCompris packs its sounds.

Layout (Qt's ``rcc`` tool, format versions 1–3, all integers big-endian)::

    header   "qres" | version u32 | tree offset u32 | data offset u32 | names offset u32
             | (version >= 3) flags u32
    tree     fixed-size nodes; node 0 is the root directory
             name offset u32 | flags u16 | directory: child count u32, first child index u32
                                         | file: country u16, language u16, data offset u32
             | (version >= 2) last-modified u64
    names    length u16 | hash u32 | UTF-16BE characters
    data     size u32 | payload; zlib payloads (flag 1) start with the uncompressed size u32
             (qCompress), zstd payloads (flag 4) are one zstd frame

Only reading is supported; :func:`build_rcc` writes a small uncompressed or zlib file for tests.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from engine.errors import CorpusError

MAGIC = b"qres"
FLAG_COMPRESSED = 0x01
FLAG_DIRECTORY = 0x02
FLAG_COMPRESSED_ZSTD = 0x04


class RccFormatError(CorpusError):
    """A file is not a Qt resource file this reader understands."""


@dataclass(frozen=True)
class RccEntry:
    """One file inside a resource: its path (``/`` separated, no leading slash) and flags."""

    path: str
    flags: int
    data_offset: int


class RccFile:
    """The files inside one ``.rcc`` resource, read from bytes held in memory."""

    def __init__(self, blob: bytes, name: str = "<rcc>") -> None:
        self.name = name
        self._blob = blob
        if len(blob) < 20 or blob[:4] != MAGIC:
            raise RccFormatError(f"{name}: not a Qt resource file (no 'qres' magic); "
                                 "pass a .rcc file written by Qt's rcc tool")
        self.version, self._tree, self._data, self._names = struct.unpack_from(">IIII", blob, 4)
        if self.version not in (1, 2, 3):
            raise RccFormatError(f"{name}: resource format version {self.version} is not supported "
                                 "(this reader knows versions 1-3)")
        self._node_size = 14 if self.version == 1 else 22

    @classmethod
    def open(cls, path: str | Path) -> "RccFile":
        """Read the whole file at ``path``."""
        p = Path(path)
        try:
            blob = p.read_bytes()
        except OSError as e:
            raise RccFormatError(f"{p}: cannot read ({e.strerror or e})") from e
        return cls(blob, str(p))

    def _node(self, index: int) -> tuple[int, int, int, int]:
        """(name offset, flags, a, b) of node ``index``: a/b = child count/first child or
        locale/data offset."""
        off = self._tree + index * self._node_size
        if off + 14 > len(self._blob):
            raise RccFormatError(f"{self.name}: tree node {index} lies past the end of the file "
                                 "(truncated or corrupt resource)")
        name_off, flags = struct.unpack_from(">IH", self._blob, off)
        if flags & FLAG_DIRECTORY:
            count, first = struct.unpack_from(">II", self._blob, off + 6)
            return name_off, flags, count, first
        _locale, data_off = struct.unpack_from(">II", self._blob, off + 6)
        return name_off, flags, 0, data_off

    def _name(self, offset: int) -> str:
        pos = self._names + offset
        (length,) = struct.unpack_from(">H", self._blob, pos)
        raw = self._blob[pos + 6: pos + 6 + 2 * length]
        return raw.decode("utf-16-be")

    def entries(self) -> Iterator[RccEntry]:
        """Every file in the resource, depth first, in the tree's order."""
        stack: list[tuple[int, str]] = [(0, "")]
        seen = 0
        while stack:
            index, prefix = stack.pop()
            seen += 1
            if seen > 1_000_000:
                raise RccFormatError(f"{self.name}: resource tree does not end (corrupt file)")
            name_off, flags, a, b = self._node(index)
            name = "" if index == 0 else self._name(name_off)
            path = f"{prefix}/{name}" if prefix else name
            if flags & FLAG_DIRECTORY:
                for child in reversed(range(b, b + a)):
                    stack.append((child, path))
            else:
                yield RccEntry(path, flags, b)

    def read(self, entry: RccEntry) -> bytes:
        """The uncompressed content of ``entry``."""
        pos = self._data + entry.data_offset
        (size,) = struct.unpack_from(">I", self._blob, pos)
        payload = self._blob[pos + 4: pos + 4 + size]
        if len(payload) != size:
            raise RccFormatError(f"{self.name}: data of {entry.path} is truncated")
        if entry.flags & FLAG_COMPRESSED:
            try:
                return zlib.decompress(payload[4:])
            except zlib.error as e:
                raise RccFormatError(f"{self.name}: zlib data of {entry.path} is corrupt") from e
        if entry.flags & FLAG_COMPRESSED_ZSTD:
            try:
                import zstandard  # optional: only resources written with zstd need it
            except ImportError as e:
                raise RccFormatError(f"{self.name}: {entry.path} is zstd-compressed; "
                                     "pip install zstandard to read it") from e
            return zstandard.ZstdDecompressor().decompressobj().decompress(payload)
        return payload


def build_rcc(files: dict[str, bytes], *, compress: bool = False, version: int = 2) -> bytes:
    """Write a resource holding ``files`` ({"dir/name.ogg": bytes}); for tests and fixtures."""
    # directory tree: nested dicts, leaves are bytes
    root: dict = {}
    for path, data in files.items():
        parts = path.strip("/").split("/")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = data

    names = bytearray()
    name_offsets: dict[str, int] = {}

    def name_off(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            enc = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), 0) + enc)
        return name_offsets[name]

    data = bytearray()
    tail = b"" if version == 1 else struct.pack(">Q", 0)
    # breadth first, so each directory's children are contiguous nodes
    nodes: list[bytes] = [b""]
    pending: list[tuple[int, str, dict]] = [(0, "", root)]
    while pending:
        index, dir_name, directory = pending.pop(0)
        first = len(nodes)
        children = sorted(directory.items())
        nodes.extend(b"" for _ in children)
        for i, (name, value) in enumerate(children):
            if isinstance(value, dict):
                pending.append((first + i, name, value))
                continue
            payload = struct.pack(">I", len(value)) + zlib.compress(value) if compress else value
            flags = FLAG_COMPRESSED if compress else 0
            nodes[first + i] = struct.pack(">IHHHI", name_off(name), flags, 0, 0, len(data)) + tail
            data.extend(struct.pack(">I", len(payload)) + payload)
        nodes[index] = struct.pack(">IHII", name_off(dir_name) if index else 0,
                                   FLAG_DIRECTORY, len(children), first) + tail
    tree = b"".join(nodes)
    header_len = 20 if version < 3 else 24
    tree_off = header_len
    data_off = tree_off + len(tree)
    names_off = data_off + len(data)
    header = MAGIC + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + tree + bytes(data) + bytes(names)

"""Read float tensors from a TensorFlow checkpoint (a SavedModel's ``variables/``) without TensorFlow.

A TensorFlow "tensor bundle" is two files: ``NAME.index``, a LevelDB-format table mapping each
tensor's name to a ``BundleEntryProto`` (dtype, shape, shard, byte offset, size), and
``NAME.data-00000-of-00001`` holding the raw little-endian tensor bytes. This module reads the
table (uncompressed blocks, as TensorFlow writes them) and decodes the few protobuf fields it
needs by hand, so converting weights once needs neither TensorFlow nor protobuf classes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

#: LevelDB table footer magic (little-endian uint64 at the file's end)
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5            # compression type byte + crc32
#: TensorFlow DataType enum values this reader turns into numpy dtypes
DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 9: np.dtype("<i8"), 19: np.dtype("<f2")}
#: DT_STRING: a checkpoint's serialized object graph, not a weight
DT_STRING = 7


class CheckpointError(ValueError):
    """The bytes are not a tensor bundle this reader understands."""


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor's bytes are in the data file."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf):
            raise CheckpointError("truncated varint")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _protobuf_fields(buf: bytes) -> dict[int, list]:
    """Field number → values (varints as int, length-delimited as bytes, fixed as bytes)."""
    fields: dict[int, list] = {}
    i = 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i:i + length], i + length
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of one table block (keys prefix-compressed against the previous one)."""
    if len(block) < 4:
        raise CheckpointError("table block too short")
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise CheckpointError("table block restart array larger than the block")
    out, key, i = [], b"", 0
    while i < end:
        shared, i = _varint(block, i)
        unshared, i = _varint(block, i)
        value_length, i = _varint(block, i)
        key = key[:shared] + block[i:i + unshared]
        i += unshared
        out.append((key, block[i:i + value_length]))
        i += value_length
    return out


def _read_block(data: bytes, handle: bytes) -> bytes:
    offset, i = _varint(handle, 0)
    size, _ = _varint(handle, i)
    if offset + size + BLOCK_TRAILER_SIZE > len(data):
        raise CheckpointError("block handle points past the end of the index file")
    if data[offset + size] != 0:
        raise CheckpointError("compressed index blocks are not supported")
    return data[offset:offset + size]


def read_index(index: bytes) -> list[BundleEntry]:
    """The entries of a ``.index`` file's bytes, in key order."""
    if len(index) < FOOTER_SIZE or struct.unpack_from("<Q", index, len(index) - 8)[0] != TABLE_MAGIC:
        raise CheckpointError("not a TensorFlow checkpoint index (no table footer)")
    footer = index[-FOOTER_SIZE:]
    _, i = _varint(footer, 0)            # metaindex handle (unused): offset …
    _, i = _varint(footer, i)            # … and size
    index_handle = footer[i:]
    entries = []
    for _, data_handle in _block_entries(_read_block(index, index_handle)):
        for key, value in _block_entries(_read_block(index, data_handle)):
            if not key:                  # the bundle header
                continue
            fields = _protobuf_fields(value)
            shape: tuple[int, ...] = ()
            if 2 in fields:
                dims = _protobuf_fields(fields[2][0]).get(2, [])
                shape = tuple(_protobuf_fields(d).get(1, [0])[0] for d in dims)
            entries.append(BundleEntry(name=key.decode("utf-8"), dtype=fields.get(1, [0])[0], shape=shape,
                                       shard=fields.get(3, [0])[0], offset=fields.get(4, [0])[0],
                                       size=fields.get(5, [0])[0]))
    return entries


def read_tensors(index: bytes, data: bytes, prefix: str = "") -> dict[str, np.ndarray]:
    """Every numeric tensor whose name starts with ``prefix``, from one-shard bundle bytes (string
    tensors, such as the object graph every TensorFlow 2 checkpoint holds, are left out)."""
    out = {}
    for entry in read_index(index):
        if not entry.name.startswith(prefix) or entry.dtype == DT_STRING:
            continue
        if entry.shard != 0:
            raise CheckpointError(f"{entry.name}: multi-shard checkpoints are not supported")
        dtype = DTYPES.get(entry.dtype)
        if dtype is None:
            raise CheckpointError(f"{entry.name}: unsupported TensorFlow dtype {entry.dtype}")
        count = int(np.prod(entry.shape)) if entry.shape else 1
        if count * dtype.itemsize != entry.size or entry.offset + entry.size > len(data):
            raise CheckpointError(f"{entry.name}: size {entry.size} does not match shape {entry.shape}")
        out[entry.name] = np.frombuffer(data, dtype, count, entry.offset).reshape(entry.shape).copy()
    return out

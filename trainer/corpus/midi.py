"""A tiny Standard MIDI File writer (format 0, one track): enough for fluidsynth melodies."""
from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Note:
    """One note: MIDI pitch, start and length in beats, velocity 1–127."""

    pitch: int
    start: float
    length: float
    velocity: int = 96


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity."""
    if value < 0:
        raise ValueError("MIDI delta times cannot be negative")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(notes: list[Note], *, program: int = 0, channel: int = 0, bpm: float = 120.0,
               ticks_per_beat: int = 480) -> bytes:
    """A format-0 MIDI file playing ``notes`` with General MIDI ``program`` on ``channel``
    (channel 9 is the GM drum kit, where pitch selects the drum)."""
    if not 0 <= program <= 127 or not 0 <= channel <= 15:
        raise ValueError(f"program {program} / channel {channel} out of MIDI range")
    events: list[tuple[int, int, bytes]] = []  # (tick, order, bytes): note-offs before note-ons
    for n in notes:
        if not 0 <= n.pitch <= 127:
            raise ValueError(f"pitch {n.pitch} out of MIDI range 0-127")
        on = round(n.start * ticks_per_beat)
        off = round((n.start + n.length) * ticks_per_beat)
        vel = max(1, min(127, n.velocity))
        events.append((on, 1, bytes([0x90 | channel, n.pitch, vel])))
        events.append((max(off, on + 1), 0, bytes([0x80 | channel, n.pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    tempo = round(60_000_000 / bpm)
    track = bytearray(_vlq(0) + b"\xff\x51\x03" + tempo.to_bytes(3, "big"))
    track += _vlq(0) + bytes([0xC0 | channel, program])
    now = 0
    for tick, _, data in events:
        track += _vlq(tick - now) + data
        now = tick
    track += _vlq(ticks_per_beat) + b"\xff\x2f\x00"   # a beat of tail, then end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)

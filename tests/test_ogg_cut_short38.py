"""An Ogg Vorbis or Opus file cut short inside a page (a download or copy stopped) keeps the audio
of every packet it holds whole, with the one note saying where decoding stopped, on disk and as
bytes (an upload). Before session 38 libsndfile and FFmpeg dropped the page the cut falls in with
every packet on it (libsndfile writes pages of about a second, a quiet tone's of several seconds),
silently: 3 s of noise cut at half its bytes kept 0.90 s (Vorbis) or 0.97 s (Opus) with no note,
and an Opus file cut before its first page of sound ended was not readable at all."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from engine.audio import decode, go_to_frame, iter_blocks, open_sound, probe, read_frames, read_sound_bytes
from tests.conftest import noise, tone

STOPPED = "decoding stopped at "
KEPT = "): keeping the audio before it"
#: (id, subtype, extension, rate, channels, signal, where the bytes are cut)
CASES = [
    ("vorbis-noise-mono", "VORBIS", "ogg", 44_100, 1, "noise", 0.5),
    ("vorbis-tone-stereo", "VORBIS", "ogg", 22_050, 2, "tone", 0.77),
    ("opus-noise-mono", "OPUS", "opus", 48_000, 1, "noise", 0.5),
    ("opus-tone-stereo-16k", "OPUS", "opus", 16_000, 2, "tone", 0.5),
    ("opus-noise-before-its-first-page-of-sound-ends", "OPUS", "opus", 48_000, 1, "noise", 0.3),
]


def ogg_bytes(subtype: str, rate: int, channels: int, signal: str, seconds: float = 3.0) -> bytes:
    """``seconds`` of noise or a 440 Hz tone as an Ogg file libsndfile writes."""
    mono = noise(seconds, rate) if signal == "noise" else tone(440, seconds, rate)
    x = np.stack([mono, mono[::-1]], axis=1) if channels == 2 else mono
    out = io.BytesIO()
    sf.write(out, x, rate, format="OGG", subtype=subtype)
    return out.getvalue()


def complete_pages_seconds(data: bytes, cut: int, subtype: str, rate: int) -> float:
    """The audio the pages ending at or before byte ``cut`` hold (their last granule position)."""
    at, granule = 0, 0
    while at + 27 <= cut and data[at:at + 4] == b"OggS":
        count = data[at + 26]
        end = at + 27 + count + sum(data[at + 27:at + 27 + count])
        if end > cut:
            break
        granule = max(granule, struct.unpack_from("<q", data, at + 6)[0])
        at = end
    return granule / (48_000 if subtype == "OPUS" else rate)


@pytest.mark.parametrize("subtype, ext, rate, channels, signal, fraction",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_file_cut_inside_a_page_keeps_the_packets_it_holds_whole(tmp_path, subtype, ext, rate, channels,
                                                                    signal, fraction):
    data = ogg_bytes(subtype, rate, channels, signal)
    cut = int(len(data) * fraction)
    whole, _ = read_sound_bytes(data, f"whole.{ext}")
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(data[:cut])
    pages = complete_pages_seconds(data, cut, subtype, rate)

    notes: list[str] = []
    kept = np.concatenate([b for b in iter_blocks(path, rate, notes=notes)])
    info = probe(path)
    # more than the complete pages hold, what the header now says, and exactly the whole file's start
    assert info.duration >= pages + 0.25
    assert len(kept) == info.frames
    with open_sound(path) as f:
        got = read_frames(f, info.frames + 1)
    assert got.shape == (info.frames, channels)
    np.testing.assert_array_equal(got, whole[:info.frames])
    assert len(notes) == 1 and notes[0].endswith(KEPT)
    assert notes[0].startswith(f"{STOPPED}{info.duration:.2f} s (the file is cut short inside the Ogg page ")

    # the bytes path (an upload) reads the same, with the same note
    said: list[str] = []
    got_bytes, got_rate = read_sound_bytes(data[:cut], f"upload.{ext}", said)
    assert got_rate == info.sample_rate and said == notes
    np.testing.assert_array_equal(got_bytes, got)

    # a moment past the complete pages is reached as reading from the start reaches it
    frame = int((pages + 0.1) * info.sample_rate)
    with open_sound(path) as f:
        go_to_frame(f, frame)
        np.testing.assert_array_equal(read_frames(f, 2000), got[frame:frame + 2000])


def test_the_note_says_where_the_cut_page_begins(tmp_path):
    data = ogg_bytes("VORBIS", 44_100, 1, "noise")
    cut = len(data) // 2
    page = max(i for i in range(cut) if data.startswith(b"OggS", i))     # the page the cut falls in
    path = tmp_path / "cut.ogg"
    path.write_bytes(data[:cut])
    notes: list[str] = []
    audio = decode(path, 16_000, notes=notes)
    assert notes == [f"{STOPPED}{probe(path).duration:.2f} s (the file is cut short inside the Ogg page that "
                     f"begins at byte {page}{KEPT}"]
    assert len(audio) / 16_000 > complete_pages_seconds(data, cut, "VORBIS", 44_100) + 0.25


def test_a_whole_file_is_read_as_it_was(tmp_path):
    """(One cut just after a page has a note too: tests/test_ogg_cut_at_page216.py.)"""
    path = tmp_path / "whole.opus"
    path.write_bytes(ogg_bytes("OPUS", 48_000, 1, "noise"))
    notes: list[str] = []
    decode(path, 16_000, notes=notes)
    assert notes == []
    with open_sound(path) as f:
        assert isinstance(f, sf.SoundFile)        # libsndfile's own reading, no page rebuilt

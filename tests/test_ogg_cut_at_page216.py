"""An Ogg file cut short just after a whole page (a download or copy stopped there) gets the note a
file cut inside a page gets (tests/test_ogg_cut_short38.py), from the indexer too: every stream's
last page carries the end-of-stream flag, and this file's last page does not. Before session 42
(helper 216) it was indexed as a whole file, silently; its audio reads as before."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.audio import decode, open_sound, probe, read_sound_bytes
from engine.segments import SegmentPolicy
from indexer.decode import DecodeJob, FileDecoded, decode_file
from tests.test_ogg_chain_audit import noise, ogg_flac, page_starts, vorbis

STOPPED, KEPT = "decoding stopped at ", "): keeping the audio before it"


def note_for(seconds: float, end: int) -> str:
    """The note a file cut short after the page that ends at byte ``end`` gets."""
    return (f"{STOPPED}{seconds:.2f} s (the file is cut short after the Ogg page that ends at byte {end}, "
            f"which does not end its stream{KEPT}")


def encoded(codec: str, path: Path) -> bytes:
    """3 s of noise as Ogg Vorbis or Opus (libsndfile's encoder) or Ogg FLAC (FFmpeg's, which
    libsndfile refuses: read by FFmpeg); its bytes."""
    if codec == "FLAC":
        return ogg_flac(path, noise(3.0, 44100, 5), 44100)
    rate = 48000 if codec == "OPUS" else 44100
    return vorbis(path, noise(3.0, rate, 5), rate, codec)


def read(source: Path | bytes, name: str) -> np.ndarray:
    """Every frame of a file, or of bytes called ``name``, as its reader gives them."""
    if isinstance(source, bytes):
        return read_sound_bytes(source, name)[0]
    with open_sound(source) as f:
        return f.read(dtype="float32", always_2d=True)


@pytest.mark.parametrize("codec", ["VORBIS", "OPUS", "FLAC"])
def test_a_file_cut_just_after_a_page_says_so_and_keeps_its_audio(tmp_path, codec):
    ext = "opus" if codec == "OPUS" else "ogg"
    data = encoded(codec, tmp_path / f"whole.{ext}")
    assert data[page_starts(data)[-1] + 5] & 0x04           # the whole file's last page ends its stream
    whole = read(tmp_path / f"whole.{ext}", "")
    notes: list[str] = []
    decode(tmp_path / f"whole.{ext}", 16_000, notes=notes)
    assert notes == []
    for end in page_starts(data)[-2:]:                      # after the second and the third page from the end
        path = tmp_path / f"cut{end}.{ext}"
        path.write_bytes(data[:end])
        info = probe(path)
        got = read(path, "")
        assert 1.0 < info.duration < 3.0 and len(got) == info.frames
        np.testing.assert_allclose(got, whole[:len(got)], atol=1e-6)    # the audio it held before
        notes = []
        audio = decode(path, 16_000, notes=notes)
        assert notes == [note_for(info.duration, end)]
        assert abs(len(audio) - 16_000 * info.duration) <= 2
        said: list[str] = []                                # its bytes (an upload): the same
        np.testing.assert_array_equal(read_sound_bytes(data[:end], f"upload.{ext}", said)[0], got)
        assert said == notes


def test_the_indexer_gives_the_note_once(tmp_path):
    data = vorbis(tmp_path / "whole.ogg", noise(3.0, 44100, 5))
    end = page_starts(data)[-1]
    path = tmp_path / "cut.ogg"
    path.write_bytes(data[:end])
    events = list(decode_file(DecodeJob(0, str(path)), 16000, SegmentPolicy(1.0)))
    done = events[-1]
    assert isinstance(done, FileDecoded)
    assert [n for n in done.notes if "cut short" in n or "shorter" in n] == [note_for(done.info.duration, end)]
    assert abs(done.duration - done.info.duration) < 0.01


def test_a_chain_whose_last_link_is_cut_just_after_a_page(tmp_path):
    one = vorbis(tmp_path / "one.ogg", noise(2.0, 44100, 6))
    two = vorbis(tmp_path / "two.ogg", noise(2.0, 44100, 7))
    end = len(one) + page_starts(two)[-1]
    path = tmp_path / "chain.ogg"
    path.write_bytes((one + two)[:end])
    notes: list[str] = []
    decode(path, 16_000, notes=notes)
    assert notes == [note_for(probe(path).duration, end)]
    assert 2.0 < probe(path).duration < 4.0
    path.write_bytes(one + two)                             # whole: no note
    notes = []
    decode(path, 16_000, notes=notes)
    assert notes == []

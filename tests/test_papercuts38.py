"""Three papercuts left from session 37 (helper 159, session 38).

1. FFmpegSound and Ogg Vorbis: FFmpeg's Ogg demuxer starts a stream's packets at 0, a packet
   late, where its first page of sound is also its last (a 1 s tone: all in one page); the end
   trimming it works out then drops that packet's frames of sound too, so a 1 s tone said 44,100
   frames and read 43,972. Where the granule positions start past 0 its length was a packet off
   (said 44,228, read 44,100). libsndfile reads each as its granule positions say: the truth.
2. A start inside the length a header gives but past the audio the file holds (a FLAC cut short:
   STREAMINFO says 10 s, the data ends at 3.84 s) was "decoding failed after 0 frames (Internal
   psf_fseek() failed.)", calling the file unreadable; it says now how much audio the file holds,
   and `soundsift similar FILE --start` says so with the start the user gave. A break after a
   start is placed from the file's start, not the start's ("stopped at 0.84 s" for 3.84 s).
3. A ``--min-loudness`` that leaves out the silent files and a ``--max-loudness`` below the
   quietest measured file keep nothing, and `soundsift search` said nothing of why.
"""
from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from engine.audio import iter_blocks
from engine.errors import InvalidQuery
from engine.ffmpeg_audio import FFmpegSound
from tests.conftest import noise, tone, write
from tests.test_ogg_chain_audit import ogg_crc
from ui.cli import app

SR = 44_100


def vorbis(path: Path, x: np.ndarray, granule_offset: int = 0) -> Path:
    """``x`` written as Ogg Vorbis (libsndfile's encoder), its pages' granule positions past 0
    moved on by ``granule_offset`` (a stream cut from the middle of another), CRCs made good."""
    sf.write(str(path), x, SR, format="OGG", subtype="VORBIS")
    data = bytearray(path.read_bytes())
    at = data.find(b"OggS")
    while at >= 0:
        count = data[at + 26]
        length = 27 + count + sum(data[at + 27:at + 27 + count])
        granule, = struct.unpack_from("<q", data, at + 6)
        if granule > 0:
            struct.pack_into("<q", data, at + 6, granule + granule_offset)
        struct.pack_into("<I", data, at + 22, 0)
        struct.pack_into("<I", data, at + 22, ogg_crc(bytes(data[at:at + length])))
        at = data.find(b"OggS", at + length)
    path.write_bytes(bytes(data))
    return path


def one_page(path: Path) -> bool:
    """Whether the Ogg file's sound is all in its last page (the case FFmpeg's demuxer misplaces)."""
    flags, at, data = [], 0, path.read_bytes()
    while (at := data.find(b"OggS", at)) >= 0:
        flags.append(data[at + 5])
        at += 4
    return len(flags) == 3 and bool(flags[-1] & 0x04)


@pytest.mark.parametrize("kind, offset", [("tone", 0), ("tone", 1000), ("noise", 1000), ("noise", 0)])
def test_ffmpeg_reads_an_ogg_vorbis_file_as_long_as_it_says_and_as_libsndfile_does(tmp_path, kind, offset):
    x = tone(440, 1.0, SR) if kind == "tone" else noise(1.0, SR, seed=3)
    path = vorbis(tmp_path / f"{kind}.ogg", x, offset)
    assert one_page(path) == (kind == "tone")          # the tone's sound is one page, the noise's several
    with sf.SoundFile(str(path)) as f:
        truth = f.read(dtype="float32", always_2d=True)
    for source in (str(path), io.BytesIO(path.read_bytes())):
        with FFmpegSound(source, str(path)) as got:
            said, read = got.frames, got.read(dtype="float32", always_2d=True)
        assert said == len(read) == len(truth), (said, len(read), len(truth))     # tone: 44100, 43972, 44100
        np.testing.assert_allclose(read, truth, atol=1e-5)
    with FFmpegSound(str(path)) as got:
        got.seek(len(truth) - 300)
        np.testing.assert_allclose(got.read(dtype="float32", always_2d=True), truth[-300:], atol=1e-5)


@pytest.fixture
def cut_flac(tmp_path) -> tuple[Path, float]:
    """A 10 s FLAC cut short (its first 40 %), and the seconds of audio it holds."""
    full = write(tmp_path / "full.flac", tone(440, 10.0, 16_000, amp=0.3), 16_000)
    cut = tmp_path / "cut.flac"
    data = full.read_bytes()
    cut.write_bytes(data[:int(len(data) * 0.4)])
    held = sum(len(b) for b in iter_blocks(cut, 16_000, notes=[])) / 16_000
    assert 3 < held < 5
    return cut, held


def test_a_start_past_the_audio_a_cut_file_holds_says_so(cut_flac):
    cut, held = cut_flac
    with pytest.raises(InvalidQuery) as caught:       # was UnreadableAudio: "decoding failed after 0 frames"
        list(iter_blocks(cut, 16_000, start_seconds=6))
    assert str(caught.value) == (f"{cut} holds {held:.2f} s of audio, though its header says 10.00 s (the file is "
                                 "cut short or damaged there); the start time 6 s is past the audio it holds")


def test_a_break_after_a_start_is_placed_from_the_file_s_start(cut_flac):
    cut, held = cut_flac
    notes: list[str] = []
    from_three = sum(len(b) for b in iter_blocks(cut, 16_000, start_seconds=3, notes=notes)) / 16_000
    assert from_three == pytest.approx(held - 3, abs=0.01)
    assert len(notes) == 1 and notes[0].startswith(f"decoding stopped at {held:.2f} s of 10.00 s")   # was 0.84 s


@pytest.fixture(scope="module")
def loudness_index(tmp_path_factory, tiny_clap_dir) -> Path:  # noqa: F811
    """A tiny-CLAP index of digital silence, a quiet tone (about −43 LUFS) and a loud one (−9)."""
    from indexer import build_index
    base = tmp_path_factory.mktemp("papercuts38")
    root = base / "library"
    write(root / "silence.wav", np.zeros(2 * 16_000, dtype=np.float32), 16_000)
    write(root / "quiet.wav", tone(997, 2.0, 16_000, amp=0.01), 16_000)
    write(root / "loud.wav", tone(997, 2.0, 16_000, amp=0.5), 16_000)
    summary = build_index([root], index=base / "index", model=str(tiny_clap_dir), workers=0, progress=False)
    assert summary.added == 3, summary
    return base / "index"


def run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_similar_from_a_start_past_the_audio_of_a_cut_file(loudness_index, cut_flac):
    cut, held = cut_flac
    result = run("similar", cut, "--index", loudness_index, "--start", "6")
    said = " ".join(result.stderr.split())
    assert result.exit_code == 1 and f"{cut} holds {held:.2f} s of audio, though its header says 10.00 s" in said
    assert "the start time 6 s is past the audio it holds" in said       # the start asked for, not 5.95 s
    assert "decoding failed" not in said


def test_search_says_why_a_loudness_range_between_the_silent_files_and_the_quietest_keeps_nothing(loudness_index):
    from engine.query import SoundIndex
    with SoundIndex.open(loudness_index) as index:
        quietest = index.facets()["loudness"][0]
    assert -50 < quietest < -35
    result = run("search", "a tone", "-i", loudness_index, "--json", "--min-loudness", -60, "--max-loudness", -50)
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    said = " ".join(result.stderr.split())
    assert (f"no indexed file is between -60 and -50 LUFS (the quietest measured: {quietest:.1f}; "
            "1 file is silent or under -70)") in said
    kept = run("search", "a tone", "-i", loudness_index, "--json", "--max-loudness", -50)     # silence kept: no note
    assert [Path(h["path"]).name for h in json.loads(kept.stdout)] == ["silence.wav"] and "note" not in kept.stderr

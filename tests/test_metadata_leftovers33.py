"""What session 32 left of metadata and lengths: WAV cue points placed by dwBlockStart (an ADPCM
WAV's blocks), iXML sync points before the file's start and markers past the 200 a file keeps
left out without a word, and raw AC-3, MP2 and AMR streams whose length was FFmpeg's guess from
the bit rate of their start."""
from __future__ import annotations

import io
import logging
import struct

import numpy as np
import pytest
import soundfile as sf

from engine.file_metadata import MAX_MARKERS, Marker, named_markers, read_metadata
from tests.conftest import noise
from tests.ffmpeg_files import encode
from tests.test_bad_inputs import pcm16, wav_bytes
from tests.test_file_metadata import adtl_chunk, bext_chunk, riff_chunk, sync_point

# -- cue points by block ---------------------------------------------------------------------


def _cue_chunk(*points: tuple[int, bytes, int, int]) -> bytes:
    """A ``cue `` chunk of (cue id, fccChunk, dwBlockStart, dwSampleOffset) points (dwPosition 0)."""
    return riff_chunk(b"cue ", struct.pack("<I", len(points)) + b"".join(
        struct.pack("<II4sIII", cue, 0, chunk, 0, block, offset) for cue, chunk, block, offset in points))


def _with_chunks(wav: bytes, extra: bytes) -> bytes:
    """A RIFF WAVE file's bytes with ``extra`` chunks after its last (its RIFF size grown)."""
    return wav[:4] + struct.pack("<I", len(wav) - 8 + len(extra)) + wav[8:] + extra


def _labels(*names: str) -> bytes:
    return adtl_chunk(*((b"labl", i + 1, name) for i, name in enumerate(names)))


def _adpcm_wav(seconds: float = 2.0, rate: int = 16000) -> tuple[bytes, int, int]:
    """Mono IMA ADPCM WAV bytes of noise (libsndfile's), its block size in bytes and in frames."""
    buf = io.BytesIO()
    sf.write(buf, noise(seconds, rate, seed=4) * 0.5, rate, format="WAV", subtype="IMA_ADPCM")
    data = buf.getvalue()
    fmt = data.index(b"fmt ") + 8
    block, per_block = struct.unpack_from("<H", data, fmt + 12)[0], struct.unpack_from("<H", data, fmt + 18)[0]
    assert struct.unpack_from("<H", data, fmt)[0] == 0x11 and per_block > 100
    return data, block, per_block


def test_an_adpcm_wavs_cue_points_are_placed_by_their_block(tmp_path):
    """The RIFF spec places a compressed WAV's cue point in the block dwBlockStart bytes into the
    data chunk, dwSampleOffset frames into it. Its markers were all left out as "past the end"
    (its frames counted as its data's bytes over its block size: one a block, not hundreds), and
    dwBlockStart was not read."""
    wav, block, per_block = _adpcm_wav()
    extra = _cue_chunk((1, b"data", 0, 100), (2, b"data", 10 * block, 37), (3, b"data", 25 * block, 0))
    path = tmp_path / "door.wav"
    path.write_bytes(_with_chunks(wav, extra + _labels("Creak", "Latch", "Slam")))
    rate = 16000
    expected = [Marker(100 / rate, "Creak"), Marker((10 * per_block + 37) / rate, "Latch"),
                Marker(25 * per_block / rate, "Slam")]
    problems: list[str] = []
    meta = read_metadata(path, problems)
    assert problems == []
    assert named_markers(path) == expected
    assert meta["markers"] == " · ".join(f"0:{m.at:05.2f} {m.name}" for m in expected)


def test_a_pcm_wavs_cue_point_by_block_start_alone_or_both_counted_from_the_start(tmp_path):
    """PCM: the spec's dwBlockStart is 0; a writer that gives the frame's byte in dwBlockStart
    (dwSampleOffset 0, as the spec places a point in a block) is read as such, one that fills in
    both from the data's start as well, not at twice the frame."""
    extra = _cue_chunk((1, b"data", 2 * 4000, 0), (2, b"data", 2 * 8000, 8000), (3, b"data", 0, 12000))
    path = tmp_path / "pcm.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)), extra_chunks=extra + _labels("Creak", "Latch", "Slam")))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.25 Creak · 0:00.50 Latch · 0:00.75 Slam"
    assert problems == []
    assert named_markers(path) == [Marker(0.25, "Creak"), Marker(0.5, "Latch"), Marker(0.75, "Slam")]


def test_cue_points_the_file_does_not_place_are_named_in_one_note(tmp_path, caplog):
    """A point in a wave list's silence chunk, one at a dwBlockStart inside a block and one whose
    dwSampleOffset is outside its block: left out, one note naming them and why (they were
    placed at dwSampleOffset as if the other fields said nothing)."""
    wav, block, per_block = _adpcm_wav()
    extra = _cue_chunk((1, b"data", block, 5), (2, b"slnt", 0, 300), (3, b"data", block + 3, 0),
                       (4, b"data", 2 * block, 40 * per_block))
    path = tmp_path / "odd.wav"
    path.write_bytes(_with_chunks(wav, extra + _labels("Creak", "Pause", "Latch", "Slam")))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == f"0:{(per_block + 5) / 16000:05.2f} Creak"
    assert problems == [
        "3 cue marker(s) left out (the file does not place them: in a silence ('slnt') chunk of a wave list, "
        f"which soundsift does not read; dwBlockStart {block + 3} is not where one of its {block}-byte blocks "
        f"starts; dwSampleOffset {40 * per_block} is not in the block at dwBlockStart {2 * block}): "
        "Pause, Latch, Slam"]
    with caplog.at_level(logging.WARNING):
        assert named_markers(path) == [Marker((per_block + 5) / 16000, "Creak")]
    assert not caplog.records


# -- iXML sync points before the start, markers past 200 ------------------------------------------

def _ixml(points: list[str]) -> bytes:
    return riff_chunk(b"iXML", ("<?xml version='1.0' encoding='UTF-8'?><BWFXML><SYNC_POINT_LIST>"
                                f"<SYNC_POINT_COUNT>{len(points)}</SYNC_POINT_COUNT>" + "".join(points)
                                + "</SYNC_POINT_LIST></BWFXML>").encode())


def _bext(reference: int) -> bytes:
    chunk = bytearray(bext_chunk(b"Roadside"))
    chunk[8 + 338:8 + 346] = struct.pack("<Q", reference)
    return bytes(chunk)


def test_ixml_sync_points_before_the_files_start_are_named_in_one_note(tmp_path, caplog):
    """ABSOLUTE cues from before the take began (the recorder's pre-roll cut off, or a cue of the
    take before): left out, one note naming them and the time reference they are earlier than."""
    start = 10 * 3600 * 16000                               # 10:00:00 at 16 kHz
    points = [sync_point(start - 16000, "Slate", "ABSOLUTE"), sync_point(start - 8000, "Clap", "ABSOLUTE"),
              sync_point(start + 8000, "Car pass", "ABSOLUTE")]
    path = tmp_path / "roadside.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)), extra_chunks=_bext(start) + _ixml(points)))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.50 Car pass"
    assert problems == ["2 iXML sync point(s) before the file's start left out (earlier than its bext time "
                        "reference, 10:00:00.000): Slate, Clap"]
    with caplog.at_level(logging.WARNING):
        assert named_markers(path) == [Marker(0.5, "Car pass")]
    assert not caplog.records


def test_absolute_sync_points_without_a_time_reference_are_named_in_one_note(tmp_path):
    """ABSOLUTE cues in a file without bext: nothing to place them by; the RELATIVE one stays."""
    points = [sync_point(700_000_000, "Slate", "ABSOLUTE"), sync_point(4000, "Door")]
    path = tmp_path / "no_bext.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)), extra_chunks=_ixml(points)))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.25 Door"
    assert problems == ["1 ABSOLUTE iXML sync point(s) left out (the file has no bext or iXML time reference to place "
                        "them by): Slate"]


def _many(count: int) -> list[str]:
    return [f"Hit {i:03d}" for i in range(count)]


def test_cue_markers_past_the_200_kept_are_counted_in_one_note(tmp_path):
    """A WAV marked every 20 ms (a transient detector's output): its first 200 markers are kept,
    the rest counted in one note, not dropped without a word."""
    names = _many(MAX_MARKERS + 37)
    extra = _cue_chunk(*((i + 1, b"data", 0, 320 * i) for i in range(len(names)))) + _labels(*names)
    path = tmp_path / "hits.wav"
    path.write_bytes(wav_bytes(pcm16(noise(6.0, 16000)), extra_chunks=extra))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"].startswith("0:00.00 Hit 000 · 0:00.02 Hit 001")
    assert problems == ["37 cue marker(s) after the first 200 left out (a file keeps at most 200 markers): "
                        "Hit 200, Hit 201, Hit 202, Hit 203, Hit 204 …"]
    assert len(named_markers(path)) == MAX_MARKERS


def test_ixml_sync_points_past_the_200_kept_are_counted_in_one_note(tmp_path):
    names = _many(MAX_MARKERS + 1)
    path = tmp_path / "cues.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)),
                               extra_chunks=_ixml([sync_point(50 * i, n) for i, n in enumerate(names)])))
    problems: list[str] = []
    read_metadata(path, problems)
    assert problems == ["1 iXML sync point(s) after the first 200 left out (a file keeps at most 200 markers): "
                        "Hit 200"]


def test_cue_sheet_tracks_past_the_200_kept_are_counted_in_one_note(tmp_path):
    """A sidecar sheet of 203 tracks (a long recording's log): 200 kept, 3 counted."""
    path = tmp_path / "log.wav"
    path.write_bytes(wav_bytes(pcm16(noise(10.0, 8000, seed=1)), rate=8000))
    sheet = 'FILE "log.wav" WAVE\n' + "".join(
        f' TRACK {i + 1:03d} AUDIO\n  TITLE "Event {i:03d}"\n  INDEX 01 00:{i * 3 // 75:02d}:{i * 3 % 75:02d}\n'
        for i in range(MAX_MARKERS + 3))
    (tmp_path / "log.cue").write_text(sheet)
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"].startswith("0:00.00 Event 000 · 0:00.04 Event 001")
    assert problems == ["3 cue sheet track(s) after the first 200 left out (a file keeps at most 200 markers): "
                        "Event 200, Event 201, Event 202"]
    assert len(named_markers(path)) == MAX_MARKERS


# -- raw streams' lengths ------------------------------------------------------------------------

def _raw_stream(path, codec: str, signal: np.ndarray, rate: int, bit_rate: int,
                options: dict[str, str] | None = None):
    """Mono ``signal`` as a raw stream by FFmpeg's ``codec`` encoder at ``bit_rate`` (E-AC-3 in
    a file named ``.ac3``, as E-AC-3 rips often are)."""
    return encode(path, codec, signal, rate, timestamps=False, bit_rate=bit_rate, codec_options=options)


def _joined(path, first, second, header: int = 0):
    """Two raw streams end to end (as a tool that joins takes writes them), the second's file
    header (``header`` bytes: AMR's ``#!AMR\\n``) left out."""
    path.write_bytes(first.read_bytes() + second.read_bytes()[header:])
    return path


#: AMR frames' sizes in bytes, their header byte included, by frame type (RFC 4867 §5.3): AMR-NB's
#: speech modes 0–7 (4.75–12.2 kbit/s), AMR-WB's 0–8 (6.6–23.85 kbit/s)
AMR_SPEECH_BYTES = {"nb": (13, 14, 16, 18, 20, 21, 27, 32), "wb": (18, 24, 33, 37, 41, 47, 51, 59, 61)}
#: the silence frames OpenCORE's AMR-NB encoder writes with DTX (header byte first): where it turns
#: quiet a SID_FIRST, then a SID_UPDATE (its comfort noise, the quietest) every 8th frame and
#: NO_DATA between; AMR-WB's SID (type 9) here all zeros after its header
AMR_SILENCE = {"nb": (bytes.fromhex("4426c783680e"), bytes.fromhex("4426c783681e"), b"\x7c"),
               "wb": (b"\x4c" + bytes(5), b"\x4c" + bytes(5), b"\x7c")}
#: a raw AMR file's first bytes
AMR_MAGIC = {"nb": b"#!AMR\n", "wb": b"#!AMR-WB\n"}


def amr_by_hand(path, *runs: tuple[int | None, int], kind: str = "nb", seed: int = 0):
    """A raw AMR file (``kind``: "nb" or "wb") written frame by frame, without an encoder (PyAV
    18.1.1's wheel has none): ``runs`` of (frame type, how many), a speech type's frames of random
    bits (every pattern decodes: a loud buzz), None a DTX silence (:data:`AMR_SILENCE`)."""
    rng, frames = np.random.default_rng(seed), []
    for frame_type, count in runs:
        for i in range(count):
            if frame_type is None:
                first, update, no_data = AMR_SILENCE[kind]
                frames.append(first if i == 0 else update if i % 8 == 3 else no_data)
            else:
                size = AMR_SPEECH_BYTES[kind][frame_type]
                frames.append(bytes([frame_type << 3 | 4]) + rng.bytes(size - 1))   # (its quality bit set)
    path.write_bytes(AMR_MAGIC[kind] + b"".join(frames))
    return path


def _opencore(codec: str = "libopencore_amrnb") -> None:
    """Skip where PyAV's FFmpeg has no OpenCORE AMR encoder (PyAV 18.1.1's wheel)."""
    import av
    if codec not in av.codecs_available:
        pytest.skip(f"PyAV {av.__version__}'s FFmpeg has no {codec} encoder")


@pytest.mark.parametrize("suffix, codec, rate, rates, header", [
    (".ac3", "ac3", 48000, (64_000, 448_000), 0),           # FFmpeg said 16.1 s for 4 s
    (".ac3", "eac3", 48000, (96_000, 640_000), 0),          # 15.5 s for 4 s
    (".mp2", "mp2", 48000, (64_000, 384_000), 0),           # 14.1 s for 4 s
    (".amr", "libopencore_amrnb", 8000, (4750, 12200), 6),  # 7.0 s for 4 s
    (".amr", "by hand", 8000, (0, 7), 6),                   # AMR-NB modes 0 and 7: 4.75, 12.2 kbit/s
])
def test_a_raw_streams_length_is_counted_where_its_bit_rate_changes(tmp_path, suffix, codec, rates, rate, header):
    """A raw AC-3, E-AC-3, MP2 or AMR stream holds no length: FFmpeg's guess from the bit rate of its
    start is right for one encoding at a constant rate, many times off for two joined end to end
    (or the reverse, too short). Its frames are counted from their headers instead, as many as
    decode."""
    from engine.audio import open_sound, probe
    if codec == "by hand":
        low = amr_by_hand(tmp_path / f"low{suffix}", (rates[0], 100), seed=1)
        high = amr_by_hand(tmp_path / f"high{suffix}", (rates[1], 100), seed=2)
    else:
        if codec.startswith("libopencore"):
            _opencore(codec)
        low = _raw_stream(tmp_path / f"low{suffix}", codec, noise(2.0, rate, seed=1) * 0.5, rate, rates[0])
        high = _raw_stream(tmp_path / f"high{suffix}", codec, noise(2.0, rate, seed=2) * 0.5, rate, rates[1])
    for path in (_joined(tmp_path / f"low_high{suffix}", low, high, header),
                 _joined(tmp_path / f"high_low{suffix}", high, low, header)):
        frames = probe(path).frames
        assert 4 * rate <= frames <= 4 * rate + 2 * 1536, path.name
        with open_sound(str(path)) as f:
            assert len(f.read(dtype="float32")) == frames, path.name


def _dtx_memo(path, source: str):
    """4 s of AMR-NB at 12.2 kbit/s recorded with DTX, 2 s of silence first: by OpenCORE's
    encoder (skipped where PyAV has none) or :func:`amr_by_hand`."""
    if source == "by hand":
        return amr_by_hand(path, (None, 100), (7, 100))
    _opencore()
    signal = np.concatenate([np.zeros(16000, np.float32), noise(2.0, 8000, seed=3) * 0.5])
    return _raw_stream(path, "libopencore_amrnb", signal, 8000, 12200, {"dtx": "1"})


@pytest.mark.parametrize("source", ["OpenCORE", "by hand"])
def test_amr_silence_frames_do_not_stretch_its_length(tmp_path, source):
    """AMR with DTX writes 6-byte silence frames where speech frames are 32: a quiet start made
    FFmpeg's guess 9.0 s for 4 s. Counted, it is 4 s (the count is the demuxer's, not a decoder's)."""
    from engine.audio import probe
    assert probe(_dtx_memo(tmp_path / "memo.amr", source)).frames == pytest.approx(32000, abs=160)


@pytest.fixture(params=["as PyAV's FFmpeg has them", "FFmpeg's own"])
def amr_decoders(request, monkeypatch):
    """Whether AMR is decoded by OpenCORE where PyAV's FFmpeg has it (PyAV 18.1.0's wheel), or
    by FFmpeg's own decoder as where it has not (18.1.1's): True where by FFmpeg's own."""
    import av
    import engine.ffmpeg_audio as ffmpeg_audio
    if request.param == "FFmpeg's own":
        monkeypatch.setattr(ffmpeg_audio, "_PREFERRED_DECODERS", {})
    return request.param == "FFmpeg's own" or "libopencore_amrnb" not in av.codecs_available


@pytest.mark.parametrize("source", ["OpenCORE", "by hand"])
def test_an_amr_recorded_with_dtx_decodes(tmp_path, source, amr_decoders):
    """FFmpeg's AMR decoder cannot decode DTX's silence frames ("Not yet implemented in FFmpeg"):
    such a recording was unreadable. OpenCORE's decoder reads them as comfort noise; without
    OpenCORE (PyAV 18.1.1) they are read as silence of their length, and the file's note says
    so: as many frames as counted either way, silence where it was quiet, sound where it was not,
    from the start or after a seek."""
    from engine.audio import iter_blocks, open_sound
    path = _dtx_memo(tmp_path / "memo.amr", source)
    with open_sound(str(path)) as f:
        x = f.read(dtype="float32")
        assert len(x) == f.frames == pytest.approx(32000, abs=160)
        assert np.abs(x[:12000]).max() < 0.05 < np.sqrt(np.mean(x[20000:30000] ** 2))
        f.seek(24000)
        assert np.array_equal(f.read(800, dtype="float32"), x[24000:24800])
    notes: list[str] = []
    assert sum(map(len, iter_blocks(path, 8000, notes=notes))) == len(x)
    silent = 100 if source == "by hand" else 93
    assert notes == ([f"{silent} of its {len(x) // 160} frames are AMR silence frames (DTX's comfort noise or "
                      "no data), which FFmpeg's own decoder cannot decode (PyAV's FFmpeg has no OpenCORE "
                      "decoder): read as silence"] if amr_decoders else [])
    if amr_decoders:                                    # (OpenCORE's encoder starts with 7 speech frames)
        assert not x[2000:16000].any()


def test_an_amr_wb_recorded_with_dtx_decodes_by_ffmpegs_own_decoder(tmp_path, monkeypatch):
    """AMR-WB's silence frames (SID, type 9; no data, 15) are read as silence of their length by
    FFmpeg's own decoder too, as AMR-NB's."""
    import engine.ffmpeg_audio as ffmpeg_audio
    from engine.audio import iter_blocks, open_sound
    monkeypatch.setattr(ffmpeg_audio, "_PREFERRED_DECODERS", {})
    path = amr_by_hand(tmp_path / "memo.amr", (None, 100), (8, 50), (None, 50), kind="wb")
    with open_sound(str(path)) as f:
        x = f.read(dtype="float32")
        assert (f.samplerate, len(x), f.frames) == (16000, 64000, 64000)
    assert not x[:32000].any() and not x[48000:].any() and np.sqrt(np.mean(x[32000:48000] ** 2)) > 0.05
    notes: list[str] = []
    assert sum(map(len, iter_blocks(path, 16000, notes=notes))) == 64000
    assert len(notes) == 1 and notes[0].startswith("150 of its 200 frames are AMR silence frames")


def test_amr_silence_frames_in_a_3gp_are_read_as_silence_and_logged(tmp_path, monkeypatch, caplog):
    """In a container other than a raw ``.amr`` (a phone's ``.3gp``) the frames are not counted
    when it is opened: FFmpeg's own decoder reads its silence frames as silence all the same, and
    the first is logged under the file's name."""
    import av
    import engine.ffmpeg_audio as ffmpeg_audio
    monkeypatch.setattr(ffmpeg_audio, "_PREFERRED_DECODERS", {})
    raw, path = amr_by_hand(tmp_path / "memo.amr", (7, 50), (None, 100), (7, 50)), tmp_path / "memo.3gp"
    with av.open(str(raw)) as source, av.open(str(path), "w", format="3gp") as out:
        stream = out.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux(source.streams.audio[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    with caplog.at_level(logging.WARNING, logger="engine.ffmpeg_audio"):
        with ffmpeg_audio.FFmpegSound(str(path)) as f:
            x = f.read(dtype="float32")
    assert len(x) == 32000 and not x[8000:24000].any() and np.abs(x[:8000]).max() > 0.05
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: some of its frames are AMR silence frames (DTX's comfort noise or no data), which FFmpeg's "
        "own decoder cannot decode (PyAV's FFmpeg has no OpenCORE decoder): read as silence"]

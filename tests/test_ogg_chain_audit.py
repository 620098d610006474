"""Ogg files as a real library holds them, read as players read them (engine.ogg_chain, engine.audio).

Bytes before, between and after the Ogg pages (an ID3v2 tag some taggers put first, an ID3v1 tag
or zero padding between the links of a chain, a download resumed from the start, a radio rip
begun inside a song) are passed over as players pass them, a leading link no decoder opens too,
with a note saying what was not read; an Ogg file libsndfile 1.2.2 refuses (FFmpeg's Ogg FLAC:
"unknown error in flac decoder"; one with a Skeleton stream) is read by FFmpeg; a multiplexed
stream is one link."""
from __future__ import annotations

import fractions
import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import iter_blocks, open_sound, open_sound_bytes, probe
from engine.ogg_chain import ogg_links
from tests.test_chained_ogg import FIRST, SECOND, dominant, tone


def vorbis(path: Path, x: np.ndarray, rate: int = 44100, subtype: str = "VORBIS") -> bytes:
    """``x`` written by libsndfile as Ogg ``subtype``; its bytes."""
    sf.write(str(path), x, rate, format="OGG", subtype=subtype)
    return path.read_bytes()


def noise(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Noise: every Vorbis page full (a tone's few pages would leave a cut nothing to cut)."""
    return (0.2 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def id3v2(body: int = 1000) -> bytes:
    """An ID3v2.3 tag of ``body`` bytes of padding (its size synchsafe)."""
    size = bytes((body >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x03\x00\x00" + size + b"\0" * body


def page_starts(data: bytes) -> list[int]:
    """Where each Ogg page of ``data`` (a plain Ogg file) begins."""
    starts, at = [], 0
    while at < len(data):
        starts.append(at)
        count = data[at + 26]
        at += 27 + count + sum(data[at + 27:at + 27 + count])
    return starts


def read_all(source: Path | bytes, name: str = "x.ogg") -> tuple[np.ndarray, int, type]:
    """Every frame of a file (or bytes called ``name``), its rate and the reader's type."""
    opened = open_sound(source) if isinstance(source, Path) else open_sound_bytes(source, name)
    with opened as f:
        return f.read(dtype="float32", always_2d=True), int(f.samplerate), type(f)


def notes_of(path: Path) -> list[str]:
    """The indexer's notes for ``path`` (what iter_blocks says of it)."""
    notes: list[str] = []
    for _ in iter_blocks(path, 16000, notes=notes):
        pass
    return notes


@pytest.mark.parametrize("between", [b"TAG" + b"x" * 125, b"\0" * 4096], ids=["id3v1", "zeros"])
def test_bytes_between_two_links_do_not_hide_the_second(tmp_path, between):
    """libsndfile read up to the junk and no further: the second link was never heard."""
    a = vorbis(tmp_path / "a.ogg", tone(*FIRST, 44100))
    b = vorbis(tmp_path / "b.ogg", tone(*SECOND, 44100))
    path = tmp_path / "ab.ogg"
    path.write_bytes(a + between + b)
    want = np.concatenate([read_all(tmp_path / "a.ogg")[0], read_all(tmp_path / "b.ogg")[0]])
    got, rate, _ = read_all(path)
    np.testing.assert_array_equal(got, want)
    assert probe(path).frames == len(want)
    assert dominant(got[-int(0.5 * rate):], rate) == pytest.approx(SECOND[0], abs=5)
    assert notes_of(path) == []
    np.testing.assert_array_equal(read_all(path.read_bytes())[0], want)


@pytest.mark.parametrize("subtype, rate", [("VORBIS", 44100), ("OPUS", 48000)])
def test_a_download_resumed_from_the_start_is_its_cut_part_then_the_whole(tmp_path, subtype, rate):
    """The cut part's last page runs into the whole file's first: its pages were taken for one
    stream, libsndfile read 3 s (Vorbis; the Opus stopped at 0.97 s with an error)."""
    whole = vorbis(tmp_path / "whole.ogg", noise(3.0, rate, 1), rate, subtype)
    path = tmp_path / "resumed.ogg"
    path.write_bytes(whole[:len(whole) // 2 + 7] + whole)
    assert [link.start for link in ogg_links(io.BytesIO(path.read_bytes()), path.stat().st_size)] == \
        [0, len(whole) // 2 + 7]
    want, _, _ = read_all(tmp_path / "whole.ogg")
    got, _, kind = read_all(path)
    assert kind.__name__ == "ChainedOgg" and len(want) < len(got) < 2 * len(want)
    np.testing.assert_array_equal(got[-len(want):], want)


@pytest.mark.parametrize("subtype, rate", [("VORBIS", 44100), ("OPUS", 48000)])
def test_an_id3v2_tag_before_the_ogg_pages_is_passed_over(tmp_path, subtype, rate):
    """libsndfile refused the file ("embedding not supported for this file format")."""
    plain = vorbis(tmp_path / "plain.ogg", tone(440, 1.5, rate), rate, subtype)
    want, _, _ = read_all(tmp_path / "plain.ogg")
    for name, data in [("tagged.ogg", id3v2() + plain), ("tagged_chain.ogg", id3v2() + plain + plain)]:
        path = tmp_path / name
        path.write_bytes(data)
        copies = len(data) // len(plain)
        got, got_rate, _ = read_all(path)
        assert got_rate == rate and probe(path).frames == copies * len(want)
        np.testing.assert_array_equal(got, np.concatenate([want] * copies))
        assert notes_of(path) == []
        np.testing.assert_array_equal(read_all(data, name)[0], got)


def test_a_rip_begun_inside_a_stream_is_read_from_the_first_link_with_a_note(tmp_path):
    """Pages of a stream whose headers are not in the file cannot be decoded; players start at
    the next stream: so does the reading, saying what it passed over."""
    first = vorbis(tmp_path / "first.ogg", noise(2.0, 44100, 2))
    second = vorbis(tmp_path / "second.ogg", tone(*SECOND, 44100))
    cut = page_starts(first)[len(page_starts(first)) // 2]
    path = tmp_path / "rip.ogg"
    path.write_bytes(first[cut:] + second)
    want, _, _ = read_all(tmp_path / "second.ogg")
    got, _, _ = read_all(path)
    np.testing.assert_array_equal(got, want)
    assert probe(path).frames == len(want)
    assert notes_of(path) == [f"its first {len(first) - cut} bytes are Ogg pages of a stream begun before the "
                              "file (no headers to decode them): read from the first stream that begins in it"]


def test_a_first_link_no_decoder_opens_is_passed_over_with_a_note(tmp_path):
    a = vorbis(tmp_path / "a.ogg", tone(*FIRST, 44100))
    b = vorbis(tmp_path / "b.ogg", tone(*SECOND, 44100))
    path = tmp_path / "cut_first.ogg"
    path.write_bytes(a[:300] + b)
    want, _, _ = read_all(tmp_path / "b.ogg")
    np.testing.assert_array_equal(read_all(path)[0], want)
    notes = notes_of(path)
    assert len(notes) == 1 and notes[0].startswith("link 1 of the 2 of this chained Ogg file is not readable (")
    assert notes[0].endswith("): read from link 2")


def ogg_flac(path: Path, x: np.ndarray, rate: int) -> bytes:
    """``x`` (mono) written as FLAC in Ogg by FFmpeg through PyAV; its bytes."""
    import av
    pcm = np.round(x * 32767).astype(np.int16)
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        stream.codec_context.format = "s16"
        for i in range(0, len(pcm), 1024):
            frame = av.AudioFrame.from_ndarray(pcm[None, i:i + 1024], format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, i, fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path.read_bytes()


def test_ffmpegs_ogg_flac_is_read_alone_as_in_a_chain(tmp_path):
    """libsndfile 1.2.2 refuses it ("unknown error in flac decoder"); a file of one link was
    UnreadableAudio while a chain of two was read (each link by FFmpeg)."""
    x = tone(*FIRST, 44100)
    one = tmp_path / "one.oga"
    data = ogg_flac(one, x, 44100)
    info = probe(one)
    assert (info.frames, info.sample_rate, info.channels, info.subtype) == (len(x), 44100, 1, "FLAC")
    got, _, _ = read_all(one)
    np.testing.assert_allclose(got[:, 0], x, atol=1 / 32767)
    two = tmp_path / "two.oga"
    two.write_bytes(data + data)
    np.testing.assert_array_equal(read_all(two)[0], np.concatenate([got, got]))


def test_a_multiplexed_stream_is_one_link_and_junk_after_one_is_no_link(tmp_path):
    """Two Opus streams side by side (their first pages together): one link; an ID3v1 tag, zero
    padding or a page header cut short after a stream: no link, no note."""
    import av
    path = tmp_path / "two_streams.ogg"
    x = tone(440, 1.0, 48000)
    with av.open(str(path), "w", format="ogg") as out:
        streams = [out.add_stream("libopus", rate=48000, layout="mono") for _ in range(2)]
        for stream in streams:
            stream.codec_context.format = "flt"
        for i in range(0, len(x), 960):
            for stream in streams:
                frame = av.AudioFrame.from_ndarray(x[None, i:i + 960].copy(), format="flt", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 48000, i, fractions.Fraction(1, 48000)
                for packet in stream.encode(frame):
                    out.mux(packet)
        for stream in streams:
            for packet in stream.encode(None):
                out.mux(packet)
    data = path.read_bytes()
    assert len(ogg_links(io.BytesIO(data), len(data))) == 1
    plain = vorbis(tmp_path / "plain.ogg", tone(440, 1.0, 44100))
    want, _, _ = read_all(tmp_path / "plain.ogg")
    for i, junk in enumerate([b"TAG" + b"x" * 125, b"\0" * 4096, plain[:20]]):
        junked = tmp_path / f"junked{i}.ogg"
        junked.write_bytes(plain + junk)
        assert [(link.start, link.end) for link in ogg_links(io.BytesIO(plain + junk), len(plain + junk))] == \
            [(0, len(plain + junk))]
        got, _, kind = read_all(junked)
        assert kind is sf.SoundFile and notes_of(junked) == []
        np.testing.assert_array_equal(got, want)


def ogg_crc(data: bytes) -> int:
    """The CRC of an Ogg page (RFC 3533: polynomial 0x04C11DB7, not reflected, from 0)."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def ogg_page(flags: int, serial: int, sequence: int, packet: bytes) -> bytes:
    """One Ogg page holding ``packet`` (under 255 bytes) whole, granule position 0."""
    head = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, 0, serial, sequence, 0, 1) + bytes([len(packet)])
    page = head + packet
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def with_skeleton(data: bytes) -> bytes:
    """A plain Ogg file's pages with an Ogg Skeleton stream beside them, as oggz and some
    encoders write: its BOS page first, its EOS page after the codec's header pages."""
    starts = page_starts(data) + [len(data)]
    pages = [data[a:b] for a, b in zip(starts, starts[1:])]
    headers = 1 + next(i for i, p in enumerate(pages[1:]) if struct.unpack_from("<q", p, 6)[0] != 0)
    fishead = b"fishead\0" + struct.pack("<HHqqqq", 3, 0, 0, 1000, 0, 1000) + b"\0" * 24
    return (ogg_page(0x02, 0x5EE1, 0, fishead) + b"".join(pages[:headers]) + ogg_page(0x04, 0x5EE1, 1, b"")
            + b"".join(pages[headers:]))


@pytest.mark.parametrize("subtype, rate", [("VORBIS", 44100), ("OPUS", 48000)])
def test_an_ogg_file_with_a_skeleton_stream_is_one_link_read_by_ffmpeg(tmp_path, subtype, rate):
    """libsndfile refuses it ("File contains data in an unimplemented format"): the file was not
    read (open_sound raised libsndfile's bare error) while a chain of two such links was."""
    from engine.ffmpeg_audio import FFmpegSound
    plain = vorbis(tmp_path / "plain.ogg", noise(1.0, rate, 4), rate, subtype)
    with FFmpegSound(str(tmp_path / "plain.ogg")) as f:
        want = f.read(dtype="float32", always_2d=True)
    path = tmp_path / "skeleton.ogg"
    path.write_bytes(with_skeleton(plain))
    assert len(ogg_links(io.BytesIO(path.read_bytes()), path.stat().st_size)) == 1
    info = probe(path)
    assert (info.frames, info.sample_rate, info.channels) == (len(want), rate, 1)
    np.testing.assert_array_equal(read_all(path)[0], want)

"""engine.export: search results written out as files (whole files copied, spans cut out)."""
from __future__ import annotations

import csv
import io
import logging
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import noise, tone, write
from engine.errors import InvalidOutput, UnreadableAudio
from engine.export import MANIFEST, excerpt_stream, excerpt_subtype, excerpt_wav, export_hits
from engine.file_metadata import read_metadata
from engine.query import Hit

SR = 48_000


def hit(path: Path, start: float, end: float, duration: float, score: float = 0.5) -> Hit:
    return Hit(path=str(path), start=start, end=end, score=score, file_id=1, segment_id=1,
               duration=duration, format="WAV", sample_rate=SR, folder=str(path.parent))


def read(data: bytes) -> tuple[np.ndarray, sf._SoundFileInfo]:
    return sf.read(io.BytesIO(data), dtype="float32", always_2d=True)[0], sf.info(io.BytesIO(data))


def test_an_excerpt_is_the_span_at_the_sources_rate_channels_and_bit_depth(tmp_path):
    stereo = np.random.default_rng(0).uniform(-0.5, 0.5, (5 * SR, 2)).astype("float32")
    src = tmp_path / "field.wav"
    sf.write(src, stereo, SR, subtype="PCM_24")
    data, start, end = excerpt_wav(src, 1.25, 3.5, fade=0)
    audio, info = read(data)
    assert (start, end) == (1.25, 3.5)
    assert (info.samplerate, info.channels, info.subtype) == (SR, 2, "PCM_24")
    as_stored = sf.read(src, dtype="float32", always_2d=True)[0]
    np.testing.assert_array_equal(audio, as_stored[int(1.25 * SR):int(3.5 * SR)])
    with sf.SoundFile(io.BytesIO(data)) as f:
        assert f.comment == f"1.250-3.500 s of {src} (soundsift export)"


def test_fades_only_where_the_recording_was_cut(tmp_path):
    src = write(tmp_path / "dc.wav", np.full(4 * SR, 0.5, dtype="float32"), SR)
    middle, _ = read(excerpt_wav(src, 1.0, 2.0)[0])
    assert abs(middle[0, 0]) < 0.01 and abs(middle[-1, 0]) < 0.01       # cut on both sides: faded
    assert middle[len(middle) // 2, 0] == pytest.approx(0.5, abs=1e-4)
    assert middle[int(0.005 * SR), 0] == pytest.approx(0.5, abs=1e-4)    # 5 ms of fade, no more
    head, _ = read(excerpt_wav(src, 0.0, 1.0)[0])
    assert head[0, 0] == pytest.approx(0.5, abs=1e-4) and abs(head[-1, 0]) < 0.01
    tail, _ = read(excerpt_wav(src, 3.0, 4.0)[0])
    assert abs(tail[0, 0]) < 0.01 and tail[-1, 0] == pytest.approx(0.5, abs=1e-4)


def test_sample_formats_of_excerpts(tmp_path):
    assert excerpt_subtype("PCM_16") == "PCM_16" and excerpt_subtype("FLOAT") == "FLOAT"
    assert excerpt_subtype("MPEG_LAYER_III") == "PCM_16" and excerpt_subtype("VORBIS") == "PCM_16"
    assert excerpt_subtype("ALAC_24") == "PCM_24"                     # what WAV cannot hold
    ints = (np.random.default_rng(1).integers(-2**31, 2**31 - 1, SR, dtype=np.int64)).astype(np.int32)
    src = tmp_path / "deep.wav"
    sf.write(src, ints, SR, subtype="PCM_32")
    data = excerpt_wav(src, 0.0, 1.0)[0]
    np.testing.assert_array_equal(sf.read(io.BytesIO(data), dtype="int32")[0], ints)   # 32-bit kept exactly
    ogg = write(tmp_path / "tone.ogg", tone(440, 2.0, 44_100), 44_100)
    assert read(excerpt_wav(ogg, 0.5, 1.5)[0])[1].subtype == "PCM_16"


def test_a_span_outside_the_file_is_one_clear_error(tmp_path):
    src = write(tmp_path / "short.wav", tone(440, 1.0, SR), SR)
    with pytest.raises(UnreadableAudio, match=r"short\.wav: the span 5\.00–6\.00 s is not inside the file"):
        excerpt_wav(src, 5.0, 6.0)


def test_export_copies_whole_files_cuts_spans_and_keeps_going(tmp_path):
    lib = tmp_path / "lib"
    whole = write(lib / "dog.wav", tone(440, 2.0, SR), SR)
    long = write(lib / "storm.flac", noise(14.0, SR, seed=3), SR)
    gone = write(lib / "gone.wav", tone(220, 1.0, SR), SR)
    gone.unlink()
    hits = [hit(long, 4.0, 14.0, 14.0, 0.9), hit(gone, 0.0, 1.0, 1.0, 0.8), hit(whole, 0.0, 2.0, 2.0, 0.7)]
    out = tmp_path / "session" / "picks"
    result = export_hits(hits, out, pad=0.5, query="thunder")

    assert [(w.path.name, w.kind) for w in result.written] == [
        ("01_storm_3.5-14.0s.wav", "excerpt"), ("03_dog.wav", "file")]   # the pad stops at the file's end
    assert (out / "03_dog.wav").read_bytes() == whole.read_bytes()
    cut, info = read((out / "01_storm_3.5-14.0s.wav").read_bytes())
    assert len(cut) == int(10.5 * SR) and info.samplerate == SR
    assert result.failed == [(str(gone), "not found: deleted or renamed since it was listed")]
    with open(out / MANIFEST, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["exported"], r["kind"], r["source"], r["start"], r["end"], r["rank"], r["query"]) for r in rows] == [
        ("01_storm_3.5-14.0s.wav", "excerpt", str(long), "3.500", "14.000", "1", "thunder"),
        ("03_dog.wav", "file", str(whole), "0.000", "2.000", "3", "thunder")]

    again = export_hits(hits[2:], out, whole_files=True, query="dog")     # nothing is overwritten
    assert [w.path.name for w in again.written] == ["01_dog.wav"]
    more = export_hits(hits[:1], out, whole_files=True, query="storm")
    assert [w.path.name for w in more.written] == ["01_storm.flac"]
    assert (out / "01_storm.flac").read_bytes() == long.read_bytes()
    twice = export_hits(hits[2:], out, whole_files=True, query="dog")
    assert [w.path.name for w in twice.written] == ["01_dog (2).wav"]
    with open(out / MANIFEST, newline="") as f:
        assert [r["query"] for r in csv.DictReader(f)] == ["thunder", "thunder", "dog", "storm", "dog"]


def test_the_manifest_keeps_formula_like_names_and_queries_as_text(tmp_path):
    """A query "-rain" or a file named "=cmd.wav" opened in a spreadsheet from soundsift-export.csv
    must not run as a formula: such cells carry Excel's text apostrophe (numbers stay numbers)."""
    source = write(tmp_path / "lib" / "=cmd.wav", tone(440, 1.0, SR), SR)
    out = tmp_path / "picks"
    export_hits([hit(source, 0.0, 1.0, 1.0, -0.25)], out, query="-rain")
    with open(out / MANIFEST, newline="") as f:
        row, = csv.DictReader(f)
    assert row["query"] == "'-rain" and row["source"] == str(source) and row["score"] == "-0.2500"
    assert row["exported"] == "01_=cmd.wav" and row["start"] == "0.000"


def test_export_into_a_file_is_refused(tmp_path):
    src = write(tmp_path / "dog.wav", tone(440, 1.0, SR), SR)
    with pytest.raises(InvalidOutput, match="is a file; --export must name a folder"):
        export_hits([hit(src, 0.0, 1.0, 1.0)], src)


def test_a_zip_of_results_holds_what_the_folder_would(tmp_path):
    import zipfile

    from engine.export import NOT_EXPORTED, export_zip
    lib = tmp_path / "lib"
    dog = write(lib / "dog.wav", tone(440, 2.0, SR), SR)
    storm = write(lib / "storm.flac", noise(14.0, SR, seed=3), SR)
    hits = [hit(storm, 4.0, 14.0, 14.0, 0.9), hit(lib / "gone.wav", 0.0, 1.0, 1.0, 0.8), hit(dog, 0.0, 2.0, 2.0, 0.7)]
    data, result = export_zip(hits, query="storm")
    folder = export_hits(hits, tmp_path / "out", query="storm")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == sorted([w.path.name for w in folder.written] + [MANIFEST, NOT_EXPORTED])
        for w in folder.written:
            assert zf.read(w.path.name) == w.path.read_bytes()
        assert zf.read(MANIFEST) == (tmp_path / "out" / MANIFEST).read_bytes()
        gone = f"{lib / 'gone.wav'}: not found: deleted or renamed since it was listed\n"
        assert zf.read(NOT_EXPORTED).decode() == gone
    assert [w.path for w in result.written] == [Path("01_storm_4.0-14.0s.wav"), Path("03_dog.wav")]


def test_a_folder_that_fills_up_stops_the_export_with_one_clear_error(tmp_path, monkeypatch):
    import errno
    lib = tmp_path / "lib"
    dog = write(lib / "dog.wav", tone(440, 2.0, SR), SR)
    storm = write(lib / "storm.flac", noise(14.0, SR, seed=3), SR)
    out = tmp_path / "out"

    def full(self, data):
        self.write_text("partial")                 # what a full disk leaves
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(InvalidOutput, match=r"01_storm_4\.0-14\.0s\.wav: cannot write the excerpt \(No space left"):
        export_hits([hit(dog, 0.0, 2.0, 2.0), hit(storm, 4.0, 14.0, 14.0)][::-1], out)
    assert sorted(p.name for p in out.iterdir()) == []          # the half-written excerpt is gone
    with pytest.raises(InvalidOutput, match=r"02_storm_4\.0-14\.0s\.wav: cannot write the excerpt"):
        export_hits([hit(dog, 0.0, 2.0, 2.0), hit(storm, 4.0, 14.0, 14.0)], out, query="q")
    with open(out / MANIFEST, newline="") as f:                 # what was written before it is recorded
        assert [r["exported"] for r in csv.DictReader(f)] == ["01_dog.wav"]
    assert (out / "01_dog.wav").read_bytes() == dog.read_bytes()


def test_exported_names_are_valid_on_any_drive(tmp_path):
    from engine.export import portable_name
    src = write(tmp_path / "lib" / 'Take 1: door "slam"?.wav', tone(440, 1.0, SR), SR)
    result = export_hits([hit(src, 0.0, 1.0, 1.0)], tmp_path / "usb")
    assert [w.path.name for w in result.written] == ["01_Take 1_ door _slam__.wav"]
    assert portable_name("a|b*c<d>e\\f.flac") == "a_b_c_d_e_f.flac" and portable_name("end. .wav") == "end.wav"


def test_an_exported_take_is_named_by_its_marker(tmp_path):
    """A hit that is a marked take carries the marker's name into the excerpt's file name (made
    valid on any drive), padded (handles) or not; a keyword hit around a marker does not."""
    long = write(tmp_path / "lib" / "street.wav", noise(14.0, SR, seed=4), SR)
    take = hit(long, 4.5, 11.0, 14.0)
    take.marker, take.marker_at = "Siren / passing", 4.5
    around = hit(long, 0.0, 10.0, 14.0)
    around.marker, around.marker_at = "Siren / passing", 4.5
    out = tmp_path / "picks"
    assert [w.path.name for w in export_hits([take, around], out).written] == [
        "01_street_Siren _ passing_4.5-11.0s.wav", "02_street_0.0-10.0s.wav"]
    assert [w.path.name for w in export_hits([take], out, pad=0.5).written] == [
        "01_street_Siren _ passing_4.0-11.5s.wav"]
    from ui.components.downloads import downloads
    from ui.components.library import FileRecord
    record = FileRecord(1, str(long), 14.0, SR, 1, "WAV", long.stat().st_size, 0)
    assert downloads(take, record)[0]["file_name"] == "street_Siren _ passing_4.5-11.0s.wav"


# --- what an excerpt of a WAVE recording keeps: channel mask, bext, iXML (engine.wav_chunks) ---

#: a KSDATAFORMAT_SUBTYPE GUID after its format tag (PCM 1, IEEE float 3)
GUID_TAIL = bytes.fromhex("00001000800000aa00389b71")
MASK_5_1 = 0x60F            # front left, right, centre, LFE, side left, right (5.1 "side")
MIDNIGHT_LESS_A_MINUTE = 86_340


def chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


def riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"WAVE" + b"".join(chunk(c, b) for c, b in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def rf64(chunks: list[tuple[bytes, bytes]], frames: int) -> bytes:
    """An RF64 file: a ds64 chunk first, the data chunk's size in it (0xFFFFFFFF in its head)."""
    data_size = len(dict(chunks)[b"data"])
    sized_in_ds64 = {b"data"}
    made = b"".join(cid + b"\xff\xff\xff\xff" + body + b"\x00" * (len(body) & 1) if cid in sized_in_ds64
                    else chunk(cid, body) for cid, body in chunks)
    ds64 = chunk(b"ds64", struct.pack("<QQQI", 0, data_size, frames, 0))
    whole = bytearray(b"RF64\xff\xff\xff\xffWAVE" + ds64 + made)
    struct.pack_into("<Q", whole, 20, len(whole) - 8)
    return bytes(whole)


def wave64(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A Sony Wave64 file: GUID chunk ids, 64-bit sizes counting the 24-byte head, 8-byte aligned."""
    suffix = bytes.fromhex("f3acd3118cd100c04f8edb8a")
    made = b"".join(cid + suffix + struct.pack("<Q", len(body) + 24) + body + b"\x00" * (-len(body) % 8)
                    for cid, body in chunks)
    head = b"riff" + bytes.fromhex("2e91cf11a5d628db04c10000")
    return head + struct.pack("<Q", 40 + len(made)) + b"wave" + suffix + made


def fmt(channels: int, rate: int, bits: int, *, tag: int = 1, mask: int | None = None) -> bytes:
    align = channels * bits // 8
    plain = struct.pack("<HHIIHH", tag if mask is None else 0xFFFE, channels, rate, rate * align, align, bits)
    return plain if mask is None else plain + struct.pack("<HHII", 22, bits, mask, tag) + GUID_TAIL


def bext(time_reference: int, *, version: int = 2, history: bytes = b"A=PCM,F=96000,W=24,M=multi,T=Field recorder\r\n",
         description: str = "Rain on a tin roof, close, 5.1", originator: str = "FieldRec 8") -> bytes:
    return (description.encode().ljust(256, b"\x00") + originator.encode().ljust(32, b"\x00")
            + b"T042-S3".ljust(32, b"\x00") + b"2024-05-01" + b"23:59:00" + struct.pack("<QH", time_reference, version)
            + bytes(range(64)) + struct.pack("<5h", -2312, 540, -105, -1520, -1800) + bytes(180) + history)


def ixml(stamp: int, reference: int, points: list[str], count: int | None = None) -> bytes:
    """An iXML chunk as a recorder and then Soundminer write it; ``points`` are SYNC_POINT lines."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<BWFXML>
  <IXML_VERSION>2.10</IXML_VERSION>
  <PROJECT>Rainfall</PROJECT><SCENE>42</SCENE><TAKE>3</TAKE><TAPE>D0501</TAPE>
  <NOTE>roof mics &amp; ambi</NOTE>
  <SPEED>
    <TIMECODE_RATE>25/1</TIMECODE_RATE>
    <TIMESTAMP_SAMPLE_RATE>96000</TIMESTAMP_SAMPLE_RATE>
    <TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>{stamp >> 32}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>
    <TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>{stamp & 0xFFFFFFFF}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>
  </SPEED>
  <TRACK_LIST><TRACK_COUNT>6</TRACK_COUNT>
    <TRACK><CHANNEL_INDEX>1</CHANNEL_INDEX><NAME>Roof L</NAME></TRACK>
    <TRACK><CHANNEL_INDEX>4</CHANNEL_INDEX><NAME>LFE</NAME></TRACK>
  </TRACK_LIST>
  <BEXT><BWF_TIME_REFERENCE_LOW>{reference & 0xFFFFFFFF}</BWF_TIME_REFERENCE_LOW>
    <BWF_TIME_REFERENCE_HIGH>{reference >> 32}</BWF_TIME_REFERENCE_HIGH>
  </BEXT>
  <SYNC_POINT_LIST><SYNC_POINT_COUNT>{len(points) if count is None else count}</SYNC_POINT_COUNT>
{"".join(p + chr(10) for p in points)}  </SYNC_POINT_LIST>
  <USER>
    <CATEGORY>RAIN</CATEGORY><SUBCATEGORY>METAL</SUBCATEGORY><CATID>RAINMetl</CATID>
    <FXNAME>Rain On Tin Roof</FXNAME><KEYWORDS>rain; tin; roof; drips</KEYWORDS>
    <DESCRIPTION>Steady rain on a tin roof, close drips, distant thunder</DESCRIPTION>
  </USER>
</BWFXML>
""".encode()


def sync_point(at: int, name: str, kind: str = "RELATIVE") -> str:
    return (f"    <SYNC_POINT><SYNC_POINT_TYPE>{kind}</SYNC_POINT_TYPE><SYNC_POINT_COMMENT>{name}</SYNC_POINT_COMMENT>"
            f"<SYNC_POINT_HIGH>{at >> 32}</SYNC_POINT_HIGH><SYNC_POINT_LOW>{at & 0xFFFFFFFF}</SYNC_POINT_LOW>"
            "</SYNC_POINT>")


def pcm24(x: np.ndarray) -> bytes:
    ints = np.round(x * (2 ** 23 - 1)).astype("<i4")
    return ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def chunks_of(wav: bytes) -> dict[bytes, bytes]:
    """The chunks of a RIFF WAVE file, id → body (the data chunk's body too)."""
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and struct.unpack_from("<I", wav, 4)[0] == len(wav) - 8
    found, pos = {}, 12
    while pos + 8 <= len(wav):
        cid, size = wav[pos:pos + 4], struct.unpack_from("<I", wav, pos + 4)[0]
        found[cid] = wav[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    assert pos == len(wav)
    return found


def both(src: Path, start: float, end: float) -> bytes:
    """excerpt_wav's bytes (fade=0), checked to be excerpt_stream's, header then samples."""
    data = excerpt_wav(src, start, end, fade=0)[0]
    with excerpt_stream(src, start, end, block_bytes=50_000) as stream:
        got = b"".join(stream)
    assert unstamped(got) == unstamped(data) and stream.length == len(data)
    assert data[stream.header_length - 8:stream.header_length - 4] == b"data"
    frames = round((stream.end - stream.start) * sf.info(src).samplerate)
    assert (len(data) - stream.header_length) // stream.frame_bytes == frames
    return data


def unstamped(wav: bytes) -> bytes:
    """``wav`` without its PEAK chunk's timestamp (libsndfile writes the second it was made)."""
    at = wav.find(b"PEAK", 12)
    return wav if at < 0 else wav[:at + 12] + b"...." + wav[at + 16:]


def test_a_plain_excerpt_is_what_libsndfile_writes(tmp_path):
    """A source with no channel mask, bext or iXML gives the bytes it gave before: libsndfile's
    WAV of the span with the comment, nothing added."""
    x = np.random.default_rng(2).uniform(-0.5, 0.5, (2 * SR, 2)).astype("float32")
    src = tmp_path / "plain.wav"
    sf.write(src, x, SR, subtype="PCM_16")
    got = both(src, 0.5, 1.25)
    want = io.BytesIO()
    with sf.SoundFile(want, "w", samplerate=SR, channels=2, format="WAV", subtype="PCM_16") as out:
        out.comment = f"0.500-1.250 s of {src} (soundsift export)"
        out.software = "soundsift"
        out.write(sf.read(src, dtype="float32")[0][SR // 2:SR + SR // 4])
    assert got == want.getvalue()
    with excerpt_stream(tmp_path / "plain.wav", 0.5, 1.25) as stream:
        assert (stream.header_length, stream.frame_bytes) == (len(got) - 36_000 * 4, 4)


def six_channel_source(tmp_path: Path, layout: str = "riff") -> tuple[Path, np.ndarray, int, int]:
    """A 2 s, 96 kHz, 24-bit 5.1 field recording with bext and iXML (after the audio for every
    layout but "riff"), its samples, its rate and its bext TimeReference (a minute to midnight:
    more than 32 bits of samples)."""
    rate, frames = 96_000, 2 * 96_000
    x = np.random.default_rng(3).uniform(-0.8, 0.8, (frames, 6))
    reference = MIDNIGHT_LESS_A_MINUTE * rate
    points = [sync_point(rate // 4, "Drip"), sync_point(rate + 100, "Thunder"),
              sync_point(reference + rate + 200, "Gust", "ABSOLUTE")]
    meta = [(b"bext", bext(reference)), (b"iXML", ixml(reference, reference, points))]
    audio = [(b"fmt ", fmt(6, rate, 24, mask=MASK_5_1)), (b"data", pcm24(x))]
    made = {"riff": lambda: riff(audio[:1] + meta + audio[1:]), "after": lambda: riff(audio + meta),
            "rf64": lambda: rf64(audio + meta, frames), "w64": lambda: wave64(audio + meta)}[layout]()
    src = tmp_path / f"rain_{layout}.wav"
    src.write_bytes(made)
    return src, sf.read(src, dtype="float32")[0], rate, reference


def test_an_excerpt_of_a_field_recording_keeps_its_layout_bext_and_ixml(tmp_path):
    src, x, rate, reference = six_channel_source(tmp_path)
    data = both(src, 0.5, 1.5)
    first = rate // 2
    info = sf.info(io.BytesIO(data))
    assert (info.channels, info.samplerate, info.subtype, info.format) == (6, rate, "PCM_24", "WAVEX")
    np.testing.assert_array_equal(sf.read(io.BytesIO(data), dtype="float32")[0], x[first:first + rate])
    found = chunks_of(data)
    assert list(found) == [b"fmt ", b"bext", b"iXML", b"LIST", b"data"]
    tag, channels, _, _, _, bits, size, valid, mask = struct.unpack_from("<HHIIHHHHI", found[b"fmt "])
    assert (tag, channels, bits, size, valid, mask) == (0xFFFE, 6, 24, 22, 24, MASK_5_1)
    assert found[b"fmt "][24:] == struct.pack("<I", 1) + GUID_TAIL                  # PCM

    source_bext, got = bext(reference), found[b"bext"]
    assert struct.unpack_from("<Q", got, 338)[0] == reference + first
    assert got[:338] == source_bext[:338] and got[346:412] == source_bext[346:412]    # texts, version, UMID
    assert struct.unpack_from("<5H", got, 412) == (0x7FFF,) * 5                       # loudness: not used
    assert got[602:].rstrip(b"\x00") == (b"A=PCM,F=96000,W=24,M=multi,T=Field recorder\r\n"
                                         b"A=PCM,F=96000,W=24,M=multi,T=soundsift excerpt 0.500-1.500 s\r\n")
    assert len(got) % 2 == 0

    moved = reference + first              # iXML: byte for byte but for its sample counts; the cue
    want = ixml(moved, moved, [sync_point(rate + 100 - first, "Thunder"),      # before the excerpt is left out
                               sync_point(reference + rate + 200, "Gust", "ABSOLUTE")], count=2)
    assert found[b"iXML"] == want
    assert found[b"LIST"].find(f"0.500-1.500 s of {src} (soundsift export)".encode()) > 0

    (tmp_path / "cut.wav").write_bytes(data)
    theirs, ours = read_metadata(src), read_metadata(tmp_path / "cut.wav")
    for key in ("description", "originator", "category", "subcategory", "catid", "title", "keywords", "note"):
        assert ours.get(key) == theirs.get(key), key
    assert theirs["category"] == "RAIN" and theirs["originator"] == "FieldRec 8"
    assert ours["markers"] == "0:00.50 Thunder · 0:00.50 Gust"                         # where they fall in the excerpt


@pytest.mark.parametrize("layout", ["after", "rf64", "w64"])
def test_chunks_after_the_audio_rf64_and_wave64_sources_give_the_same_riff_excerpt(tmp_path, layout):
    """Field recorders often write iXML after the audio; RF64 and Wave64 sources are read the
    same way; the excerpt is plain RIFF WAVE with the same chunks as that of a RIFF source."""
    src, x, rate, reference = six_channel_source(tmp_path, layout)
    data = both(src, 0.25, 1.0)
    found = chunks_of(data)
    assert struct.unpack_from("<I", found[b"fmt "], 20)[0] == MASK_5_1
    assert struct.unpack_from("<Q", found[b"bext"], 338)[0] == reference + rate // 4
    assert b"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>%d<" % ((reference + rate // 4) & 0xFFFFFFFF) in found[b"iXML"]
    np.testing.assert_array_equal(sf.read(io.BytesIO(data), dtype="float32")[0], x[rate // 4:rate])
    riff_src, *_ = six_channel_source(tmp_path, "riff")
    from_riff = chunks_of(excerpt_wav(riff_src, 0.25, 1.0, fade=0)[0])
    assert {k: v for k, v in found.items() if k != b"LIST"} == {k: v for k, v in from_riff.items() if k != b"LIST"}


def test_a_float_excerpt_keeps_its_peaks_mask_and_bext(tmp_path):
    """A float source: the excerpt is extensible IEEE float with the mask, its PEAK chunk still
    the span's peaks (excerpt_stream measures them first), bext version 1 (no loudness) moved."""
    x = np.random.default_rng(4).uniform(-0.5, 0.5, (SR, 4)).astype("<f4")
    x[30_000, 2] = -1.5
    source_bext = bext(1000, version=1, history=b"")
    src = tmp_path / "quad_float.wav"
    src.write_bytes(riff([(b"fmt ", fmt(4, SR, 32, tag=3, mask=0x33)), (b"fact", struct.pack("<I", SR)),
                          (b"bext", source_bext), (b"data", x.tobytes())]))
    data = both(src, 0.25, 0.75)
    info = sf.info(io.BytesIO(data))
    assert (info.channels, info.subtype, info.format) == (4, "FLOAT", "WAVEX")
    found = chunks_of(data)
    assert struct.unpack_from("<HI", found[b"fmt "], 18) == (32, 0x33)
    assert found[b"fmt "][24:] == struct.pack("<I", 3) + GUID_TAIL                  # IEEE float
    assert struct.unpack_from("<I", found[b"fact"])[0] == SR // 2
    assert struct.unpack_from("<fI", found[b"PEAK"], 8 + 8 * 2) == (1.5, 30_000 - SR // 4)
    got = found[b"bext"]
    assert struct.unpack_from("<Q", got, 338)[0] == 1000 + SR // 4
    assert got[346:602] == source_bext[346:602]                                       # version 1: nothing zeroed
    assert got[602:].rstrip(b"\x00") == b"A=PCM,F=48000,W=32,M=multi,T=soundsift excerpt 0.250-0.750 s\r\n"
    np.testing.assert_array_equal(sf.read(io.BytesIO(data), dtype="float32")[0], x[SR // 4:3 * SR // 4])


def test_a_stereo_bwf_without_a_mask_stays_plain_pcm_and_no_bext_is_invented(tmp_path):
    x = np.random.default_rng(5).uniform(-0.5, 0.5, (SR, 2))
    ints = np.round(x * 32767).astype("<i2")
    src = tmp_path / "stereo_bwf.wav"
    history = b"A=ANALOGUE,M=stereo,T=Nagra IV-S\r\nA=PCM,F=48000,W=16,M=stereo,T=converter"   # no CR LF at its end
    src.write_bytes(riff([(b"bext", bext(5, history=history)), (b"fmt ", fmt(2, SR, 16)), (b"data", ints.tobytes())]))
    found = chunks_of(both(src, 0.1, 0.6))
    assert found[b"fmt "] == fmt(2, SR, 16)                                            # what libsndfile wrote
    assert found[b"bext"][602:].rstrip(b"\x00") == (
        history + b"\r\nA=PCM,F=48000,W=16,M=stereo,T=soundsift excerpt 0.100-0.600 s\r\n")
    assert struct.unpack_from("<Q", found[b"bext"], 338)[0] == 5 + int(0.1 * SR)
    plain = tmp_path / "plain.wav"
    sf.write(plain, ints, SR, subtype="PCM_16")
    assert set(chunks_of(both(plain, 0.1, 0.6))) == {b"fmt ", b"LIST", b"data"}        # no bext where there was none
    only_ixml = tmp_path / "ixml_only.wav"
    only_ixml.write_bytes(riff([(b"fmt ", fmt(2, SR, 16)), (b"data", ints.tobytes()), (b"iXML", ixml(SR, SR, []))]))
    found = chunks_of(both(only_ixml, 0.5, 0.75))
    assert b"bext" not in found
    assert b"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>%d<" % (SR + 96_000 // 2) in found[b"iXML"]    # 0.5 s of its 96 kHz
    assert b"<BWF_TIME_REFERENCE_LOW>%d<" % (SR + SR // 2) in found[b"iXML"]                      # 0.5 s of the file's


def test_a_broken_bext_or_ixml_is_left_out_with_one_warning(tmp_path, caplog):
    """The audio is exported all the same; the warning names the file and the reason."""
    ints = np.zeros((SR, 2), "<i2")
    src = tmp_path / "broken.wav"
    src.write_bytes(riff([(b"fmt ", fmt(2, SR, 16, mask=0x3)), (b"bext", b"short" * 20), (b"data", ints.tobytes()),
                          (b"iXML", ixml(SR, SR, []).replace(b"_LO>48000<", b"_LO>4.8e4<", 1))]))
    with caplog.at_level(logging.WARNING, logger="soundsift.export"):
        data = excerpt_wav(src, 0.25, 0.5)[0]
    found = chunks_of(data)
    assert b"bext" not in found and struct.unpack_from("<I", found[b"fmt "], 20)[0] == 3
    # the iXML chunk is kept but for the timestamp that cannot be moved (tests/test_excerpt_timestamps34.py)
    assert b"TIMESTAMP_SAMPLES_SINCE" not in found[b"iXML"] and b"<CATID>RAINMetl<" in found[b"iXML"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "soundsift.export"]
    assert warnings == [f"{src}: the excerpt is written without its bext chunk (its bext chunk is 100 bytes, "
                        "too short for a TimeReference (602 bytes of fixed fields))",
                        f"{src}: the excerpt's iXML chunk has 2 timecode element(s) left out "
                        "(TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO holds '4.8e4', not a sample count): "
                        "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI, TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO"]
    assert len(sf.read(io.BytesIO(data))[0]) == SR // 4
    caplog.clear()                                  # said once: a player asks for a preview again and again
    with caplog.at_level(logging.WARNING, logger="soundsift.export"), excerpt_stream(src, 0.5, 0.75) as stream:
        assert b"bext" not in chunks_of(b"".join(stream))
    assert not [r for r in caplog.records if r.name == "soundsift.export"]
    cut_short = tmp_path / "cut_short.wav"          # the recorder stopped while writing its iXML
    whole = riff([(b"fmt ", fmt(2, SR, 16)), (b"data", ints.tobytes()), (b"iXML", ixml(SR, SR, []))])
    cut_short.write_bytes(whole[:-200])
    with caplog.at_level(logging.WARNING, logger="soundsift.export"):
        found = chunks_of(excerpt_wav(cut_short, 0.25, 0.5)[0])
    assert set(found) == {b"fmt ", b"LIST", b"data"}
    assert [r.getMessage() for r in caplog.records if r.name == "soundsift.export"] == [
        f"{cut_short}: its iXML chunk is cut short by the end of the file; it is left out of the excerpt"]


def test_a_chunk_size_no_file_has_ends_the_walk_and_the_audio_is_exported(tmp_path):
    """A chunk after the audio whose size reaches past the end of the file (2⁶³ in a Wave64,
    4 GB in a RIFF): the chunk walk ends there; the excerpt is written, its mask kept."""
    ints = (np.arange(SR * 2) % 200 - 100).astype("<i2").reshape(-1, 2)
    for made in (riff([(b"fmt ", fmt(2, SR, 16, mask=0x3)), (b"data", ints.tobytes())])
                 + b"junk" + struct.pack("<I", 0xFFFFFFF0) + b"tail",
                 wave64([(b"fmt ", fmt(2, SR, 16, mask=0x3)), (b"data", ints.tobytes())])
                 + b"junk" + bytes(12) + struct.pack("<Q", 1 << 63) + b"tail"):
        src = tmp_path / ("odd.w64" if made[:4] == b"riff" else "odd.wav")
        src.write_bytes(made)
        data = excerpt_wav(src, 0.25, 0.5)[0]
        found = chunks_of(data)
        assert struct.unpack_from("<I", found[b"fmt "], 20)[0] == 0x3
        assert len(sf.read(io.BytesIO(data))[0]) == SR // 4


def test_a_long_source_name_is_shortened_to_fit_any_drive(tmp_path):
    """A 251-byte file name (ext4 takes 255) with "NN_" and the times added is too long to write:
    the middle of its stem gives way to "…", the rank, the start of the name and the times stay."""
    from engine.export import NAME_MAX_BYTES
    lib = tmp_path / "lib"
    longest = write(lib / ("y" * 247 + ".wav"), tone(440, 12.0, SR), SR)
    accented = write(lib / ("é" * 125 + ".wav"), tone(660, 3.0, SR), SR)    # 254 bytes of UTF-8
    hits = [hit(longest, 2.0, 12.0, 12.0), hit(accented, 0.0, 3.0, 3.0)]
    for round_ in (1, 2):                     # the second time each name is taken: " (2)"
        result = export_hits(hits, tmp_path / "out", query="noise")
        assert not result.failed and len(result.written) == 2
        names = [item.path.name for item in result.written]
        assert all(len(n.encode()) <= NAME_MAX_BYTES for n in names), names
        assert names[0].startswith("01_yyyy") and names[0].endswith(f"_2.0-12.0s{' (2)' if round_ == 2 else ''}.wav")
        assert "…" in names[0] and names[1].startswith("02_éé") and "…" in names[1]
        assert len(read(result.written[0].path.read_bytes())[0]) == 10 * SR
        assert result.written[1].path.read_bytes() == accented.read_bytes()

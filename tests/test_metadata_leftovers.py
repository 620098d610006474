"""What the session-31 metadata audit found and left: a library sheet naming its files by
``file://`` URLs, an embedded cue sheet naming several files, an ID3 chunk after an odd-sized
chunk without its pad byte, and Vorbis comments written in Latin-1 or Windows-1252; and what
session 32 found: WAV cue points written by dwPosition alone, a raw ADTS file's length guessed
from its bit rate, an iTunes M4A's priming and padding told by iTunSMPB alone."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf

from engine.file_metadata import Marker, named_markers, read_metadata
from engine.metadata_sheet import Sheet, match_rows, read_sheet
from tests.conftest import noise, tone
from tests.ffmpeg_files import encode
from tests.test_bad_inputs import ext80, pcm16, wav_bytes
from tests.test_file_metadata import adtl_chunk, flac_with_comments, riff_chunk
from tests.test_metadata_audit import _id3v24, _riff


def test_file_url_rows_match_the_files_their_paths_name():
    """A DAW's or Soundminer's export names its files by ``file://`` URLs: percent-escapes
    (a space, UTF-8 or Windows-1252 accents), ``localhost`` or no host, a Windows drive; "Door
    Slam.wav" was looked for as "door%20slam.wav" and matched nothing."""
    files = {1: "/Volumes/SFX/Doors/Door Slam.wav", 2: "/lib/Other/Door Slam.wav", 3: "/mnt/sfx/Wind/Tür.wav",
             4: "/lib/SFX/Rain/Heavy Rain.flac", 5: "/lib/SFX/Hail/Hagel groß.wav"}
    rows = [("file:///Volumes/SFX/Doors/Door%20Slam.wav", {"description": "by URL"}),
            ("Door Slam.wav", {"description": "by name"}),
            ("file://localhost/Volumes/SFX/Wind/T%C3%BCr.wav", {"description": "localhost"}),
            ("file:///C:/SFX/Rain/Heavy%20Rain.wav", {"description": "drive"}),
            ("FILE:///D|/SFX/Hail/Hagel%20gro%DF.wav", {"description": "code page"})]
    described, report = match_rows(Sheet("s.csv", rows, "Pathname", {}, []), files)
    assert described == {1: {"description": "by URL"}, 2: {"description": "by name"}, 3: {"description": "localhost"},
                         4: {"description": "drive"}, 5: {"description": "code page"}}
    assert not report.unmatched


def test_a_sheet_of_file_urls_is_read_by_its_url_column(tmp_path):
    """Soundminer's export: a bare ``Filename`` beside a URL ``Pathname``; the URLs are the paths,
    so two same-named files in two folders keep their own rows."""
    path = tmp_path / "export.csv"
    path.write_text("Filename,Pathname,Description\r\n"
                    "creak.wav,file:///Volumes/SFX/Wood%20Doors/creak.wav,Oak creak\r\n"
                    "creak.wav,file:///Volumes/SFX/Metal%20Doors/creak.wav,Iron creak\r\n", encoding="utf-8")
    sheet = read_sheet(path)
    assert sheet.file_column == "Pathname"
    described, report = match_rows(sheet, {1: "/srv/SFX/Wood Doors/creak.wav", 2: "/srv/SFX/Metal Doors/creak.wav"})
    assert described == {1: {"description": "Oak creak"}, 2: {"description": "Iron creak"}}
    assert report.shared_rows == 0 and not report.unmatched


#: a cue sheet naming two files of one disc, each file's tracks from 00:00:00
TWO_FILES = ('FILE "disc1.wav" WAVE\n TRACK 01 AUDIO\n  TITLE "Dog bark"\n  INDEX 01 00:00:00\n'
             ' TRACK 02 AUDIO\n  TITLE "Cat meow"\n  INDEX 01 00:01:00\n'
             'FILE "disc2.wav" WAVE\n TRACK 03 AUDIO\n  TITLE "Gate creak"\n  INDEX 01 00:00:00\n'
             ' TRACK 04 AUDIO\n  TITLE "Gate latch"\n  INDEX 01 00:01:00\n')


def test_an_embedded_cue_sheet_naming_several_files_gives_this_files_tracks(tmp_path):
    """A FLAC's or Ogg file's CUESHEET comment naming two files gave each file both files'
    tracks, merged ("Dog bark" and "Gate creak" both at 0:00), where a sidecar sheet gives each
    file its own (by name, then by name without extension)."""
    from tests.test_cue_sheets import ogg_with_comments
    flac = flac_with_comments(tmp_path / "disc2.flac", {"CUESHEET": TWO_FILES}, wave=tone(300, 2.0, 16000))
    assert read_metadata(flac)["markers"] == "0:00.00 Gate creak · 0:01.00 Gate latch"
    assert [m.name for m in named_markers(flac)] == ["Gate creak", "Gate latch"]
    ogg = ogg_with_comments(tmp_path / "disc1.ogg", {"CUESHEET": TWO_FILES}, seconds=2.0)
    assert read_metadata(ogg)["markers"] == "0:00.00 Dog bark · 0:01.00 Cat meow"
    assert [m.name for m in named_markers(ogg)] == ["Dog bark", "Cat meow"]
    one = flac_with_comments(tmp_path / "renamed.flac", {"CUESHEET": TWO_FILES.split('FILE "disc2')[0]},
                             wave=tone(300, 2.0, 16000))
    assert read_metadata(one)["markers"] == "0:00.00 Dog bark · 0:01.00 Cat meow"     # one file: whatever its name


def _odd_pcm24(frames: int) -> bytes:
    """24-bit mono PCM of ``frames`` (an odd count: an odd number of bytes)."""
    samples = (noise(frames / 16000, 16000) * 2 ** 22).astype("<i4")[:frames]
    return samples.view("u1").reshape(-1, 4)[:, :3].tobytes()


def test_an_id3_chunk_after_an_odd_chunk_without_its_pad_byte(tmp_path):
    """An ``id3 `` chunk after a 24-bit mono recording's odd-sized data chunk, written without
    the pad byte, was looked for one byte late and missed: the WAV's title and UCS category
    (which libsndfile does not read) were lost."""
    frames = 16_001
    tag = _id3v24((b"TIT2", b"\x03Oak door"), (b"TXXX", b"\x03CATEGORY\x00DOORS"))
    body = (b"WAVE" + _riff(b"fmt ", struct.pack("<HHIIHH", 1, 1, 16000, 48000, 3, 24))
            + _riff(b"data", _odd_pcm24(frames), pad=False) + _riff(b"id3 ", tag))
    path = tmp_path / "odd.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert sf.info(str(path)).frames == frames
    found = read_metadata(path)
    assert (found.get("title"), found.get("category")) == ("Oak door", "DOORS")


def test_an_aiffs_chunks_after_an_odd_sound_chunk_without_its_pad_byte(tmp_path):
    """The same in an AIFF: after an SSND chunk of odd size without its pad byte, the ID3 chunk,
    the NAME chunk and the MARK chunk were all looked for one byte late."""
    frames = 16_001
    ssnd = struct.pack(">II", 0, 0) + (noise(frames / 16000, 16000) * 2 ** 22).astype(">i4").view("u1") \
        .reshape(-1, 4)[:, 1:].tobytes()[:3 * frames]
    comm = struct.pack(">hIh", 1, frames, 24) + ext80(16000.0)
    mark = struct.pack(">HHIB", 1, 1, 8000, 4) + b"Slam" + b"\0"

    def chunk(cid: bytes, body: bytes, pad: bool = True) -> bytes:
        return cid + struct.pack(">I", len(body)) + body + (b"\0" if pad and len(body) % 2 else b"")
    tag = _id3v24((b"TXXX", b"\x03CATEGORY\x00DOORS"),)
    form = (b"AIFF" + chunk(b"COMM", comm) + chunk(b"SSND", ssnd, pad=False) + chunk(b"NAME", b"Oak door")
            + chunk(b"MARK", mark) + chunk(b"ID3 ", tag))
    path = tmp_path / "odd.aiff"
    path.write_bytes(b"FORM" + struct.pack(">I", len(form)) + form)
    assert len(ssnd) % 2 == 1 and sf.info(str(path)).frames == frames
    found = read_metadata(path)
    assert (found.get("title"), found.get("category"), found.get("markers")) == ("Oak door", "DOORS", "0:00.50 Slam")


def _flac_with_raw_comments(path, entries: list[bytes]):
    """A FLAC file whose Vorbis comment block holds ``entries`` as these bytes (``KEY=value`` in
    whatever encoding a tagger wrote)."""
    return flac_with_comments(path, {}, wave=tone(300, 2.0, 16000), raw_entries=entries)


def test_vorbis_comments_written_in_latin1_or_windows_1252_keep_their_accents(tmp_path):
    """Old taggers wrote Vorbis comments in their system's code page, against the format's
    UTF-8: the title libsndfile gives, the UCS fields and the cue sheet's titles came out with
    U+FFFD where the accents were; UTF-8 comments read as before."""
    sheet = 'FILE "tuer.wav" WAVE\n TRACK 01 AUDIO\n  TITLE "Tür zu"\n  INDEX 01 00:00:00\n'
    path = _flac_with_raw_comments(tmp_path / "tuer.flac", [
        "TITLE=Tür knarrt".encode("latin-1"), "ARTIST=Jürgen".encode("latin-1"),
        "CATEGORY=TÜREN".encode("latin-1"), "DESCRIPTION=Große Tür – „alt“".encode("cp1252"),
        "KEYWORDS=Tür, Holz".encode("utf-8"), b"CUESHEET=" + sheet.encode("cp1252")])
    found = read_metadata(path)
    assert {k: found.get(k) for k in ("title", "artist", "category", "description", "keywords", "markers")} == {
        "title": "Tür knarrt", "artist": "Jürgen", "category": "TÜREN", "description": "Große Tür – „alt“",
        "keywords": "Tür, Holz", "markers": "0:00.00 Tür zu"}
    assert not any("\ufffd" in v for v in found.values())
    assert np.isfinite(sf.info(str(path)).duration)


def test_an_index_read_by_the_earlier_reader_reads_such_files_again(tmp_path, monkeypatch):
    """An index whose files reader 8 read (Latin-1 comments as U+FFFD): its next run reads
    their metadata again, once, without embedding them again, and keyword search finds "Tür"."""
    import engine.tag_comments as tag_comments
    import indexer.metadata_refresh as metadata_refresh
    from engine.query import SoundIndex
    from indexer import build_index
    from tests.index_fakes import FakeModel
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    lib.mkdir()
    path = _flac_with_raw_comments(lib / "tuer.flac", ["TITLE=Tür knarrt".encode("latin-1"),
                                                       "CATEGORY=TÜREN".encode("latin-1")]).resolve()

    def run():
        return build_index([lib], idx, FakeModel(), workers=0, progress=False)
    with monkeypatch.context() as m:                       # reader 8: Vorbis comments as UTF-8 only
        m.setattr(tag_comments, "decode_text", lambda raw: raw.decode("utf-8", errors="replace"))
        m.setattr(metadata_refresh, "READER_VERSION", 8)
        run()
        with SoundIndex.open(idx, model=FakeModel()) as index:
            assert index.get_file(index.file_id_for_path(path))["metadata"]["category"] == "T\ufffdREN"
    s = run()
    assert (s.metadata_reread, s.updated) == (1, 0)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        meta = index.get_file(index.file_id_for_path(path))["metadata"]
        assert (meta["title"], meta["category"]) == ("Tür knarrt", "TÜREN")
    assert run().metadata_reread == 0


def _cue_chunk(*points: tuple[int, int, int]) -> bytes:
    """A ``cue `` chunk of (cue id, dwPosition, dwSampleOffset) points in the data chunk."""
    return riff_chunk(b"cue ", struct.pack("<I", len(points)) + b"".join(
        struct.pack("<II4sIII", cue, position, b"data", 0, 0, offset) for cue, position, offset in points))


def _marked_wav(path, *points: tuple[int, int, int]):
    """One second of 16 kHz noise with ``points`` named Creak, Latch, Slam … (labl; ltxt for the
    second: a 16000-sample region)."""
    names = ["Creak", "Latch", "Slam", "Thud"]
    labels = [(b"ltxt" if i == 1 else b"labl", cue, names[i]) for i, (cue, _, _) in enumerate(points)]
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)), extra_chunks=_cue_chunk(*points) + adtl_chunk(*labels)))
    return path


def test_cue_points_written_by_dw_position_alone_land_where_it_says(tmp_path):
    """Some editors write a cue point's frame only in dwPosition (dwSampleOffset 0 for every
    point): all its markers landed at 0:00. Both styles, and both fields, give the same markers,
    their labl and ltxt names and the ltxt region; where some dwSampleOffset is set, dwSampleOffset
    counts (dwPosition is then the play order's, whatever it says)."""
    expected = [Marker(0.0, "Creak"), Marker(0.5, "Latch", 1.0), Marker(0.75, "Slam")]
    for name, points in [("by_offset", ((1, 0, 0), (2, 0, 8000), (3, 0, 12000))),
                         ("by_position", ((1, 0, 0), (2, 8000, 0), (3, 12000, 0))),
                         ("by_both", ((1, 0, 0), (2, 8000, 8000), (3, 12000, 12000))),
                         ("offsets_win", ((1, 7, 0), (2, 9, 8000), (3, 11, 12000)))]:
        path = _marked_wav(tmp_path / f"{name}.wav", *points)
        assert named_markers(path) == expected, name
        assert read_metadata(path)["markers"] == "0:00.00 Creak · 0:00.50 Latch · 0:00.75 Slam", name


def test_cue_points_past_the_end_are_left_out_with_a_reason(tmp_path):
    """dwPosition-only points, one past the audio (left by a trim, or a position in bytes):
    the others are kept, the one past the end is left out and read_metadata says so, naming it."""
    path = _marked_wav(tmp_path / "trimmed.wav", (1, 4000, 0), (2, 8000, 0), (3, 40_000, 0), (4, 16_000, 0))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.25 Creak · 0:00.50 Latch"
    assert problems == ["2 cue marker(s) past the end of the audio (1.00 s) left out: Thud, Slam"]
    assert named_markers(path) == [Marker(0.25, "Creak"), Marker(0.5, "Latch", 1.0)]


def _adts(path, signal: np.ndarray, rate: int = 48000):
    """Mono ``signal`` as a raw ADTS ``.aac`` (FFmpeg's AAC encoder: VBR by content)."""
    return encode(path, "aac", signal, rate, timestamps=False, container="adts")


def test_a_raw_adts_files_length_is_counted_not_guessed_from_its_bit_rate(tmp_path):
    """A raw ADTS ``.aac`` holds no length; FFmpeg guesses one from the bit rate of its start:
    69 s for 2 s of silence then 2 s of noise, 2.4 s for the reverse of 8 s. Its frames are
    counted instead (as many as decode: the encoder's priming and padding with them), so the
    header and the decoded audio agree and indexing says nothing of a truncated file."""
    from engine.audio import open_sound, probe
    from engine.segments import SegmentPolicy
    from indexer import decode
    rng = np.random.default_rng(3)
    quiet_first = np.concatenate([np.zeros(96_000), 0.5 * rng.standard_normal(96_000)]).astype(np.float32)
    loud_first = np.concatenate([0.5 * rng.standard_normal(96_000), np.zeros(288_000)]).astype(np.float32)
    for name, signal in [("quiet_first", quiet_first), ("loud_first", loud_first)]:
        path = _adts(tmp_path / f"{name}.aac", signal)
        frames = probe(path).frames
        assert len(signal) <= frames <= len(signal) + 2048, name
        with open_sound(str(path)) as f:
            assert len(f.read(dtype="float32")) == frames, name
        with open(path, "rb") as raw:                  # an upload: the same file object read after counting
            from engine.ffmpeg_audio import FFmpegSound
            with FFmpegSound(raw, name=path.name) as f:
                assert (f.frames, len(f.read(dtype="float32"))) == (frames, frames), name
        events = list(decode.decode_file(decode.DecodeJob(0, str(path)), 16000, SegmentPolicy(1.0)))
        done = events[-1]
        assert isinstance(done, decode.FileDecoded), name
        assert done.duration == pytest.approx(frames / 48000, abs=0.01), name
        assert not [n for n in done.notes if "shorter than" in n], name
        assert events[0].of == pytest.approx(frames / 48000, abs=0.01), name


def _atom(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _with_itunsmpb(data: bytes, value: str) -> bytes:
    """An MP4 file's bytes (its moov after its mdat, as FFmpeg writes it) with an iTunes
    freeform ``----`` atom (com.apple.iTunes, iTunSMPB) added to its moov/udta/meta/ilst."""
    extra = _atom(b"----", _atom(b"mean", b"\0" * 4 + b"com.apple.iTunes") + _atom(b"name", b"\0" * 4 + b"iTunSMPB")
                  + _atom(b"data", struct.pack(">II", 1, 0) + value.encode()))
    at, end, heads = 0, len(data), []
    for kind in (b"moov", b"udta", b"meta", b"ilst"):
        while struct.unpack_from(">4s", data, at + 4)[0] != kind:
            at += struct.unpack_from(">I", data, at)[0]
            assert at < end, kind
        heads.append(at)
        end = at + struct.unpack_from(">I", data, at)[0]
        at += 12 if kind == b"meta" else 8            # meta is a full box: version and flags first
    out = bytearray(data[:end] + extra + data[end:])
    for head in heads:
        struct.pack_into(">I", out, head, struct.unpack_from(">I", out, head)[0] + len(extra))
    assert out.find(b"mdat") < heads[0]               # nothing moved that the sample table points at
    return bytes(out)


def _m4a_without_edit_list(path, signal: np.ndarray, rate: int = 48000):
    """Mono ``signal`` as AAC in an M4A without an edit list (as iTunes writes them)."""
    encode(path, "aac", signal, rate, container="ipod", options={"use_editlist": "0"}, tags={"title": "Sweep"})
    assert b"elst" not in path.read_bytes()
    return path


def test_an_itunes_m4a_without_an_edit_list_reads_as_long_as_its_itunsmpb_says(tmp_path):
    """iTunes writes no edit list, only an iTunSMPB tag (priming, padding, frames of sound):
    FFmpeg drops the priming it names, but the stream's length still counted it and the padding,
    so the file read 1024 frames longer than it is, and ended in 352 frames of padding. Its
    frames are the tag's, read to the sample, seek_near landing where a read from the start
    does; a tag left stale by an edit (more sound than the stream holds) is not believed."""
    from engine.audio import probe
    from engine.ffmpeg_audio import FFmpegSound
    t = np.arange(100_000) / 48000
    sweep = (0.3 * np.sin(2 * np.pi * (200 * t + 800 * t * t))).astype(np.float32)
    plain = _m4a_without_edit_list(tmp_path / "plain.m4a", sweep).read_bytes()
    smpb = " 00000000 00000400 00000160 00000000000186A0" + " 00000000" * 8    # 1024, 352, 100000
    path = tmp_path / "itunes.m4a"
    path.write_bytes(_with_itunsmpb(plain, smpb))
    assert probe(path).frames == 100_000
    with FFmpegSound(str(path)) as f:
        whole = f.read(dtype="float32")
        assert len(whole) == 100_000
        assert np.mean(np.abs(whole - sweep)) < 0.02        # in time (the priming dropped): 0.24 a priming late
        assert f.seek_near(60_000) == 60_000
        assert np.abs(f.read(4096, dtype="float32") - whole[60_000:64_096]).max() < 1e-3
    stale = tmp_path / "stale.m4a"
    stale.write_bytes(_with_itunsmpb(plain, " 00000000 00000400 00000160 00000000000F4240"))   # 1 000 000
    with FFmpegSound(str(stale)) as f:
        assert f.frames > 100_000                           # the stream's length, as without the tag

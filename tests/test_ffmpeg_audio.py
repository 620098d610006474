"""Formats libsndfile cannot read (engine.ffmpeg_audio): AAC and ALAC in .m4a and WavPack, written
here by FFmpeg through PyAV, are probed, decoded, sought, described, indexed, searched, drawn
and exported like a WAV; a damaged one is one clear error and the run goes on."""
from __future__ import annotations

import numpy as np
import pytest

from engine.audio import decode, open_sound, probe
from engine.errors import UnreadableAudio
from engine.file_metadata import Marker, named_markers, read_metadata
from tests import ffmpeg_files

SR = 44100


def stereo(seconds: float = 2.0) -> np.ndarray:
    """(2, n) float32: 440 Hz left, 660 Hz right."""
    t = np.arange(int(seconds * SR)) / SR
    return np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)


def encode(path, codec: str, signal: np.ndarray, tags: dict[str, str] | None = None):
    """``signal`` (channels, n) written by FFmpeg's ``codec`` encoder, with container ``tags``
    (an M4A's as freeform atoms: ``movflags=use_metadata_tags``)."""
    options = {"movflags": "use_metadata_tags"} if path.suffix == ".m4a" else {}
    return ffmpeg_files.encode(path, codec, signal, SR, timestamps=False, options=options, tags=tags)


@pytest.mark.parametrize("codec, suffix", [("alac", ".m4a"), ("wavpack", ".wv")])
def test_lossless_files_decode_to_the_samples_written(tmp_path, codec, suffix):
    signal = stereo()
    path = encode(tmp_path / f"tone{suffix}", codec, signal)
    info = probe(path)
    assert (info.sample_rate, info.channels, info.frames) == (SR, 2, signal.shape[1])
    assert (info.format, info.subtype) == (suffix[1:].upper(), codec.upper())
    with open_sound(path) as f:
        whole = f.read(dtype="float32", always_2d=True)
        assert whole.shape == (signal.shape[1], 2)
        assert np.abs(whole - signal.T).max() < 1e-4                       # 16-bit at worst
        f.seek(30_000)                                                     # back, then forward: exact
        part = f.read(5_000, dtype="float32", always_2d=True)
        assert np.array_equal(part, whole[30_000:35_000])
        assert f.read(10**9, dtype="float32").shape == (signal.shape[1] - 35_000, 2)
    mono = decode(path, 16000)
    assert len(mono) == pytest.approx(2 * 16000, abs=2)


def test_aac_decodes_to_the_sound_written(tmp_path):
    """Lossy: the level and the pitch survive; the container's length counts the encoder's delay."""
    path = encode(tmp_path / "memo.m4a", "aac", stereo(), {"title": "Voice memo", "comment": "kitchen"})
    info = probe(path)
    assert (info.format, info.subtype, info.channels) == ("M4A", "AAC", 2)
    assert 0 <= info.frames - 2 * SR <= 2048
    with open_sound(path) as f:
        left = f.read(dtype="float32", always_2d=True)[4096:-4096, 0]
    assert np.sqrt(np.mean(left ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)
    spectrum = np.abs(np.fft.rfft(left * np.hanning(len(left))))
    assert np.fft.rfftfreq(len(left), 1 / SR)[spectrum.argmax()] == pytest.approx(440, abs=2)
    assert read_metadata(path)["title"] == "Voice memo"


def test_tags_read_by_ffmpeg_carry_library_fields_and_a_cue_sheet(tmp_path):
    """A WavPack rip's APEv2 tags: the UCS fields and an embedded CUESHEET (tracks → markers)."""
    sheet = ('FILE "disc.wav" WAVE\n TRACK 01 AUDIO\n  TITLE "Hinge squeal"\n  INDEX 01 00:00:00\n'
             ' TRACK 02 AUDIO\n  TITLE "Gate latch"\n  INDEX 01 00:01:00\n')
    path = encode(tmp_path / "disc.wv", "wavpack", stereo(), {
        "Title": "Gates", "CATEGORY": "DOORS", "CatID": "DOORMetl", "FXName": "Gates and hinges",
        "Cuesheet": sheet})
    found = read_metadata(path)
    assert {k: found.get(k) for k in ("title", "category", "catid", "markers")} == {
        "title": "Gates and hinges", "category": "DOORS", "catid": "DOORMetl",
        "markers": "0:00.00 Hinge squeal · 0:01.00 Gate latch"}
    assert named_markers(path) == [Marker(0.0, "Hinge squeal", 1.0), Marker(1.0, "Gate latch", None)]


def test_an_m4a_library_is_indexed_searched_drawn_and_exported(tmp_path):
    from engine.export import excerpt_wav
    from engine.query import SoundIndex
    from indexer import build_index
    from tests.index_fakes import FakeModel
    from ui.components.thumbnails import envelope
    lib = tmp_path / "lib"
    memo = encode(lib / "memo.m4a", "aac", stereo(3.0)).resolve()
    encode(lib / "rip.wv", "wavpack", stereo(1.0), {"Description": "A metal gate"})
    (lib / "broken.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(200))       # cut off after its header
    stats = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert (stats.added, stats.failed) == (2, 1)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        (error,) = index.errors()
        assert error["path"].endswith("broken.m4a")
        assert error["reason"] == "not readable as audio (Invalid data found when processing input)"
        hit = index.search_text("a metal gate", k=1, keywords=True)[0]
        assert hit.path.endswith("rip.wv")
        record = index.get_file(index.file_id_for_path(memo))
        assert (record["format"], record["sample_rate"], record["channels"]) == ("M4A", SR, 2)
        assert record["duration"] == pytest.approx(3.0, abs=0.05)
        rip = index.get_file(hit.file_id)
        assert rip["levels"]["peak_dbfs"] == pytest.approx(20 * np.log10(0.3), abs=0.05)   # lossless
    assert envelope(memo, columns=50).max() == pytest.approx(0.3, abs=0.05)
    data, start, end = excerpt_wav(memo, 1.0, 2.0)
    import io

    import soundfile as sf
    cut, rate = sf.read(io.BytesIO(data))
    assert (rate, start, end, cut.shape) == (SR, 1.0, 2.0, (SR, 2))
    from trainer.datasets import load_clip
    from ui.components.player import wav_excerpt
    played, rate = sf.read(io.BytesIO(wav_excerpt(str(memo), 2.0, 0.5)))      # the page's player: from 2 s
    assert rate == SR and played.shape == (SR // 2, 2)
    crop = load_clip(str(memo), 16000, 1.0, np.random.default_rng(0))           # a training crop
    assert crop.shape == (16000,) and np.sqrt(np.mean(crop ** 2)) == pytest.approx(np.sqrt((0.15 ** 2 + 0.1 ** 2) / 2), rel=0.05)   # the channels mixed


def test_a_file_that_is_not_what_its_name_says(tmp_path):
    fake = tmp_path / "notes.wv"
    fake.write_text("shopping list")
    with pytest.raises(UnreadableAudio, match=r"notes.wv: not readable as audio"):
        probe(fake)
    with pytest.raises(ValueError):
        named_markers(fake)


def test_an_m4a_clip_dropped_on_the_page_or_posted_is_read(tmp_path):
    """Query by example reads the bytes in memory: a voice memo (.m4a) as well as a WAV."""
    from ui.components.uploads import read_example
    data = encode(tmp_path / "memo.m4a", "aac", stereo()).read_bytes()
    clip = read_example("memo.m4a", data)
    assert clip.sample_rate == SR and clip.duration == pytest.approx(2.0, abs=0.05)
    with pytest.raises(UnreadableAudio, match=r"notes.m4a: not readable as audio \(Invalid data found"):
        read_example("notes.m4a", b"shopping list")                             # FFmpeg's reason for an .m4a
    with pytest.raises(UnreadableAudio, match=r"notes.wav: not readable as audio \(Format not recognised"):
        read_example("notes.wav", b"shopping list")                             # libsndfile's for a .wav


def test_a_wavpack_file_cut_short_keeps_the_audio_before_the_break(tmp_path):
    full = encode(tmp_path / "full.wv", "wavpack", stereo(4.0)).read_bytes()
    half = tmp_path / "half.wv"
    half.write_bytes(full[: len(full) // 2])
    notes: list[str] = []
    mono = decode(half, 16000, notes=notes)
    assert 0.5 < len(mono) / 16000 < 3.5
    (note,) = notes
    assert note.startswith("decoding stopped at") and "(Invalid data found when processing input)" in note


def test_a_video_reference_clip_is_heard_as_its_sound(tmp_path):
    """A director's reference clip (.mp4: video and an AAC track) given as a query: its sound is
    read, as a path or as an upload; a library scan does not index videos."""
    import av

    from engine.audio import audio_files
    from ui.components.uploads import read_example
    path = tmp_path / "reference.mp4"
    signal = stereo(2.0)
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = out.add_stream("aac", rate=SR, layout="stereo")
        for i in range(50):
            for packet in video.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 5, np.uint8), format="rgb24")):
                out.mux(packet)
        for i in range(0, signal.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(signal[:, i:i + 1024]), format="fltp", layout="stereo")
            frame.sample_rate = SR
            for packet in audio.encode(frame):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)
    info = probe(path)
    assert (info.format, info.subtype, info.sample_rate, info.channels) == ("MP4", "AAC", SR, 2)
    assert len(decode(path, 16000)) == pytest.approx(2 * 16000, abs=800)
    clip = read_example("reference.mp4", path.read_bytes())
    assert clip.sample_rate == SR and clip.duration == pytest.approx(2.0, abs=0.05)
    assert audio_files([tmp_path]) == []                                        # a folder's videos: not sounds
    silent = tmp_path / "silent.mp4"                                            # a video without a sound track
    with av.open(str(silent), "w") as out:
        video = out.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        for packet in [*video.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")),
                       *video.encode(None)]:
            out.mux(packet)
    with pytest.raises(UnreadableAudio, match=r"silent.mp4: not readable as audio \(no audio stream in the file\)"):
        probe(silent)


def test_a_wave_format_extensible_file_is_a_wav(tmp_path):
    """libsndfile calls WAVE_FORMAT_EXTENSIBLE (SoX's 24-bit output, multichannel recorders)
    "WAVEX"; the catalog, `info` and the result tables call it WAV, as the user does."""
    import soundfile as sf

    path = tmp_path / "take.wav"
    sf.write(str(path), np.zeros((1600, 3), np.float32), 16000, format="WAVEX", subtype="PCM_24")
    assert sf.info(str(path)).format == "WAVEX"
    assert (probe(path).format, probe(path).channels) == ("WAV", 3)


def test_an_encoding_libsndfile_refuses_in_a_container_it_knows_is_read_by_ffmpeg(tmp_path, monkeypatch):
    """An ALAC CAF that FFmpeg wrote: libsndfile knows CAF but refuses the encoding ("Supported
    file format but unsupported encoding"), so FFmpeg reads it; a file neither reads keeps
    libsndfile's reason."""
    import soundfile as sf
    signal = stereo()
    path = encode(tmp_path / "tone.caf", "alac", signal)
    with pytest.raises(sf.LibsndfileError, match="unsupported encoding"):
        sf.SoundFile(str(path))
    with open_sound(path) as f:
        assert (f.samplerate, f.channels) == (SR, 2)
        got = f.read(dtype="float32", always_2d=True)
    # FFmpeg's CAF muxer loses part of the last ALAC packet (4096 frames): what decodes is compared
    assert signal.shape[1] - 4096 < len(got) <= signal.shape[1]
    assert np.abs(got - signal.T[:len(got)]).max() < 1e-4
    assert len(decode(path, 16000)) == pytest.approx(len(got) * 16000 / SR, abs=2)
    from engine.audio import iter_blocks
    from engine.export import excerpt_stream
    with excerpt_stream(path, 0.5, 1.5, block_bytes=20_000) as stream:     # /audio and its byte ranges
        whole = b"".join(stream)
    with excerpt_stream(path, 0.5, 1.5, block_bytes=20_000) as stream, \
            stream.part(len(whole) - 1000, len(whole) - 1) as part:
        assert b"".join(part) == whole[-1000:]
    notes: list[str] = []                                                    # similar --start
    from_one = np.concatenate(list(iter_blocks(path, 16000, start_seconds=1.0, notes=notes)))
    assert not notes and len(from_one) == pytest.approx((len(got) - SR) * 16000 / SR, abs=2)
    import engine.audio

    def unreadable(*a, **kw):
        raise ValueError("Invalid data found when processing input")
    monkeypatch.setattr(engine.audio, "FFmpegSound", unreadable)       # neither reads it
    with pytest.raises(sf.LibsndfileError, match="unsupported encoding"):
        open_sound(path).close()


def test_an_m4a_named_mp3_is_read_by_ffmpeg_and_random_bytes_stay_unreadable(tmp_path):
    """libsndfile does not recognise an M4A that a download named .mp3: FFmpeg reads it. Bytes
    that are no audio at all keep libsndfile's reason (FFmpeg's probe is not taken for a stream
    without a rate)."""
    signal = stereo()
    m4a = encode(tmp_path / "voice.m4a", "aac", signal)
    misnamed = tmp_path / "voice.mp3"
    misnamed.write_bytes(m4a.read_bytes())
    info = probe(misnamed)
    assert (info.sample_rate, info.channels) == (SR, 2) and abs(info.duration - 2.0) < 0.1
    rng = np.random.default_rng(3)
    for suffix in (".wav", ".flac", ".mp3", ".ogg", ".caf"):
        junk = tmp_path / f"junk{suffix}"
        junk.write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
        with pytest.raises(UnreadableAudio, match="not readable as audio"):
            probe(junk)

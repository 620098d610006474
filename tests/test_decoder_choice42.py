"""One decoder choice for every reader of a user's audio, and exact, fast seeks in FFmpeg-read files.

Uploaded query clips, WebDataset shards' members and corpus sources' files are bytes in memory,
not paths: they are opened as engine.audio opens a file of their name
(:func:`engine.audio.open_sound_bytes`), so an M4A in a shard or a corpus source is read by
FFmpeg (libsndfile refused it there), an Ogg Opus stream libsndfile would read 6.5 ms late (its
granule positions start past 0) after a seek to its start, on time, and an upload neither decoder reads
names both reasons; what libsndfile reads right is read as ``soundfile.read`` did, sample for
sample (the bundled model's corpus is WAV, FLAC and Ogg Vorbis). Paths in a training manifest
went through engine.audio already.

:meth:`engine.ffmpeg_audio.FFmpegSound.seek` goes by the container's index and decodes on to
the frame from a codec's preroll before it (AAC, Opus, MP3, ALAC, WavPack): what is read after
a seek is what a read from the start gives, and an export of a long file's last second decodes
about that second, not the file before it."""
from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import open_sound, seeks_exactly
from engine.errors import UnreadableAudio
from engine.ffmpeg_audio import NEAR_PREROLL, FFmpegSound
from tests.ffmpeg_files import encode, seek_signal
from tests.test_ffmpeg_thumbnails import decoded  # noqa: F401 — the fixture counting decoded frames
from tests.test_opus_fallback40 import LATER_START, click_time, clicked, opus

RATE = 48000
#: where the click is in the 2 s clips, seconds
CLICK = 1.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2 s clip with a click at 1.0 s as an M4A (AAC) and as an Ogg Opus file whose granule
    positions start past 0 (libsndfile reads it 6.5 ms late), both at 48 kHz mono."""
    folder = tmp_path_factory.mktemp("decoder_choice")
    x = clicked(2.0, RATE, at=CLICK)
    return {"m4a": encode(folder / "memo.m4a", "aac", x, RATE),
            "opus": opus(folder / "gate.opus", x, RATE, start=LATER_START)}


def _on_time(x: np.ndarray, rate: int) -> None:
    """``x`` (a 2 s clip at ``rate``) is 2 s long and clicks at :data:`CLICK`."""
    assert len(x) == pytest.approx(2.0 * rate, abs=2)
    assert click_time(x, rate) == pytest.approx(CLICK, abs=2 / rate)


def test_the_opus_clip_is_one_libsndfile_reads_late(clips):
    """Read from where libsndfile opens it (as engine.audio reads, in blocks): 6.5 ms late.
    ``soundfile.read`` seeks to frame 0 first, after which libsndfile drops the pre-skip right:
    the uploads and shards it read were on time, by that chance."""
    with sf.SoundFile(io.BytesIO(clips["opus"].read_bytes())) as f:
        assert click_time(f.read(dtype="float32"), f.samplerate) == pytest.approx(CLICK + 312 / RATE, abs=2 / RATE)
    data, rate = sf.read(io.BytesIO(clips["opus"].read_bytes()), dtype="float32")
    assert click_time(data, rate) == pytest.approx(CLICK, abs=2 / RATE)


@pytest.mark.parametrize("kind", ["m4a", "opus"])
def test_an_uploaded_query_clip_is_read_as_the_indexer_reads_the_file(clips, kind):
    from ui.components.uploads import read_example
    example = read_example(clips[kind].name, clips[kind].read_bytes())
    assert example.sample_rate == RATE
    _on_time(example.waveform, RATE)


def test_an_upload_neither_decoder_reads_names_both_reasons(clips):
    from ui.components.uploads import read_example
    with pytest.raises(UnreadableAudio) as caught:
        read_example("cut.opus", clips["opus"].read_bytes()[:120])     # its headers, then nothing
    assert caught.value.path == "cut.opus"
    assert "Supported file format but file is malformed. (FFmpeg: End of file)" in caught.value.reason
    assert "BytesIO" not in caught.value.reason


def _shard(path: Path, members: dict[str, bytes]) -> Path:
    """A WebDataset shard: each member's audio beside a ``.json`` with its text."""
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            for member, content in ((name, data), (name.rsplit(".", 1)[0] + ".json",
                                                   json.dumps({"text": f"a click in {name}"}).encode())):
                info = tarfile.TarInfo(member)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def test_a_webdatasets_m4a_and_offset_opus_members_load_on_time(clips, tmp_path):
    from trainer.datasets import TarMember, load_clip, read_webdataset
    shard = _shard(tmp_path / "shard-000000.tar", {f"part/{k}.{k}": p.read_bytes() for k, p in clips.items()})
    items = read_webdataset(shard)
    assert sorted(i.audio.name for i in items) == ["part/m4a.m4a", "part/opus.opus"]
    for item in items:
        assert isinstance(item.audio, TarMember)
        _on_time(load_clip(item.audio, 16000, None, None), 16000)


def test_a_training_manifests_m4a_and_offset_opus_files_load_on_time(clips, tmp_path):
    """Read so before as well (paths go through engine.audio): the manifest's half of the rule."""
    from trainer.datasets import AudioTextDataset, load_clip, read_manifest
    manifest = tmp_path / "train.csv"
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["audio", "caption"])
        writer.writerows([[str(p), f"a click in a {k}"] for k, p in clips.items()])
    items = read_manifest(manifest)
    for item in items:
        _on_time(load_clip(item.audio, 16000, None, None), 16000)
        crop = load_clip(item.audio, 16000, 0.5, np.random.default_rng(7))     # a crop reads a span
        assert crop.shape == (8000,)
    dataset = AudioTextDataset(items, 16000, 2.0, train=False)
    assert click_time(dataset[0]["audio"], 16000) == pytest.approx(CLICK, abs=2 / 16000)


def test_a_corpus_sources_m4a_and_offset_opus_files_are_read_on_time(clips):
    from trainer.corpus.clips import Candidate
    from trainer.corpus.writer import load_audio
    for kind, path in clips.items():
        data = path.read_bytes()
        got, rate = load_audio(Candidate("pkg", f"pkg:sounds/{path.name}", "click", read=lambda: data))
        assert rate == RATE and got.shape[1] == 1
        _on_time(got[:, 0], rate)


def _libsndfile_bytes(kind: str) -> tuple[bytes, str]:
    """A 1 s stereo clip (tones and noise) as libsndfile writes ``kind``, and a name for it."""
    t = np.arange(44100) / 44100
    rng = np.random.default_rng(5)
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * rng.standard_normal(len(t)).clip(-1, 1)], axis=1)
    buf = io.BytesIO()
    form, subtype = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_24"), "ogg": ("OGG", "VORBIS"),
                     "opus": ("OGG", "OPUS"), "mp3": ("MP3", "MPEG_LAYER_III")}[kind]
    sf.write(buf, x, 48000 if kind == "opus" else 44100, format=form, subtype=subtype)
    return buf.getvalue(), f"clip.{kind}"


@pytest.mark.parametrize("kind", ["wav", "flac", "ogg", "opus", "mp3"])
def test_what_libsndfile_reads_right_is_read_as_soundfile_read_gives_it(kind):
    """Training on WAV, FLAC and Ogg Vorbis shards (the bundled model's corpus) gives what it gave."""
    from engine.audio import read_sound_bytes
    data, name = _libsndfile_bytes(kind)
    expected, expected_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    got, rate = read_sound_bytes(data, name)
    assert rate == expected_rate and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_bytes_neither_decoder_reads_are_libsndfiles_error():
    from engine.audio import read_sound_bytes
    with pytest.raises(sf.LibsndfileError, match="Format not recognised"):
        read_sound_bytes(np.random.default_rng(0).bytes(3000), "noise.wav")


# --------------------------------------------------------------------------- seeks

SR = 44100
SECONDS = 12


def _signal(rate: int, seconds: float = SECONDS, channels: int = 2) -> np.ndarray:
    return seek_signal(rate, seconds, channels, seed=11)


def _mp3(path: Path, x: np.ndarray, rate: int) -> Path:
    """``x`` (channels, n) as an MP3 by LAME through PyAV, at a low bit rate (a deep bit reservoir)."""
    import fractions

    import av
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.codec_context.format, stream.codec_context.bit_rate = "fltp", 32000
        for i in range(0, x.shape[1], 1152):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + 1152]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = rate, i, fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def long_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ffmpeg_seeks")
    x = _signal(SR)
    return {
        "aac": encode(folder / "a.m4a", "aac", x, SR),
        "aac_8k": encode(folder / "a8.m4a", "aac", _signal(8000), 8000),
        "alac": encode(folder / "b.m4a", "alac", x, SR),
        "wavpack": encode(folder / "c.wv", "wavpack", x, SR),
        "opus": opus(folder / "d.opus", _signal(RATE), RATE),
        "opus_offset_16k": opus(folder / "e.opus", _signal(16000), 16000, start=LATER_START),
        "mp3": _mp3(folder / "f.mp3", x, SR),
        "wavpack_mka": encode(folder / "g.mka", "wavpack", x, SR, container="matroska"),   # millisecond timestamps
    }


def _whole(path: Path) -> np.ndarray:
    with FFmpegSound(str(path)) as f:
        return f.read(dtype="float32", always_2d=True)


@pytest.mark.parametrize("kind", ["aac", "aac_8k", "alac", "wavpack", "opus", "opus_offset_16k", "mp3", "wavpack_mka"])
def test_a_seek_reads_what_a_read_from_the_start_gives(long_files, kind):
    """Forward and back, at the start, the middle, the last frame and past the end; the frame
    count after it exact (a read to the end ends at the file's last frame)."""
    whole = _whole(long_files[kind])
    n = len(whole)
    rng = np.random.default_rng(1)
    positions = [0, n // 2, 1, n - 1, n, n + 500, 3000, n // 3, 2 * n // 3, n - 5000, 100]
    positions += [int(p) for p in rng.integers(0, n, 12)]
    with FFmpegSound(str(long_files[kind])) as f:
        assert f.frames == n
        for frame in positions:
            assert f.seek(frame) == min(frame, n), f"{kind} at {frame}"
            got = f.read(3000, dtype="float32", always_2d=True)
            np.testing.assert_array_equal(got, whole[frame:frame + 3000], err_msg=f"{kind} at {frame}")
        f.seek(n // 2)
        assert len(f.read(dtype="float32", always_2d=True)) == n - n // 2


@pytest.mark.parametrize("kind", ["alac", "wavpack", "opus", "opus_offset_16k", "mp3"])
def test_a_seek_near_the_end_decodes_a_little_before_it_not_the_file(long_files, kind, decoded):
    import engine.ffmpeg_audio
    preroll = getattr(engine.ffmpeg_audio, "SEEK_PREROLL_FRAMES", {}).get(kind.split("_")[0], 0)
    with FFmpegSound(str(long_files[kind])) as f:
        n, packet = f.frames, (f.near_frames() - NEAR_PREROLL) // 2       # a WavPack block: 0.5 s
        decoded.clear()
        f.seek(n - f.samplerate)
        assert len(f.read(f.samplerate)) == f.samplerate
    page = f.samplerate if f.format == "OGG" else 0                   # where an Ogg file's index lands: a page, ≤ 1 s
    first_two = 2 * packet                                            # the timestamps' origin, found once
    assert 0 < sum(decoded) <= f.samplerate + preroll + page + 2 * packet + first_two
    assert sum(decoded) < n / 2


@pytest.mark.parametrize("kind", ["wavpack_mka"])
def test_a_stream_a_seek_cannot_land_in_exactly_is_decoded_from_the_start(long_files, kind, decoded):
    """Matroska's timestamps are milliseconds, coarser than a frame. (AAC's noise bands, which the
    decoder draws from a state only a decode from the start gives: tests/test_aac_seek220.py.)"""
    with FFmpegSound(str(long_files[kind])) as f:
        n = f.frames
        decoded.clear()
        f.seek(n - SR)
    assert sum(decoded) >= n - SR


def test_an_export_of_a_long_opus_files_last_second_decodes_about_that_second(long_files, decoded):
    """A file libsndfile would read late, read by libsndfile after a seek to its start (at its
    own rate, tests/test_opus_offset_seek.py); a preview or an export of its end seeks there
    (engine.audio.go_to_frame), FFmpeg decoding none of it."""
    from engine.export import excerpt_wav
    path = long_files["opus_offset_16k"]
    with open_sound(path) as f:
        assert isinstance(f, sf.SoundFile) and not seeks_exactly(f) and f.samplerate == 16000
        whole = f.read(dtype="float32", always_2d=True)
    decoded.clear()
    data, start, end = excerpt_wav(path, SECONDS - 1.0, SECONDS, fade=0.0)
    assert sum(decoded) == 0
    cut, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert (rate, start, end) == (16000, SECONDS - 1.0, SECONDS)
    np.testing.assert_allclose(cut, np.clip(whole[-16000:], -1, 1), atol=1 / 32768)     # the export's 16 bits

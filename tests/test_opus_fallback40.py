"""Ogg Opus files libsndfile refuses or misreads are decoded by FFmpeg (PyAV) instead.

FFmpeg writes an Opus stream's granule positions from the audio's first timestamp; where that is
not 0 (an MP3's priming, a cut from the middle of a recording: 1,105 samples here) libsndfile
1.2.2 refuses a file whose audio fits one Ogg page (under a second, FFmpeg's page length) as
malformed ("First data page is also the last, and granule position has an (ambiguous) offset"),
and reads a longer one with the encoder's pre-skip kept (6.5 ms late, its last 6.5 ms dropped).
Both are read by FFmpeg now, everywhere audio is read; the two decoders agree on the length and
the moment of every sound in the files both read; a file neither reads is one clear error."""
from __future__ import annotations

import fractions
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import decode, iter_blocks, open_sound, probe
from engine.errors import UnreadableAudio
from engine.ffmpeg_audio import FFmpegSound

#: where the audio's timestamps start in the files FFmpeg is given (an MP3's priming at 44.1 kHz)
LATER_START = 1105


def clicked(seconds: float, rate: int, channels: int = 1, at: float | None = None) -> np.ndarray:
    """(channels, n) float32: a quiet 300 Hz tone with a 2 ms click at ``at`` (default: the middle)."""
    n = int(round(seconds * rate))
    x = np.tile(0.1 * np.sin(2 * np.pi * 300 * np.arange(n) / rate), (channels, 1)).astype(np.float32)
    k = int(round((seconds / 2 if at is None else at) * rate))
    x[:, k:k + max(1, int(0.002 * rate))] = 0.9
    return x


def opus(path: Path, x: np.ndarray, rate: int, start: int = 0, tags: dict[str, str] | None = None) -> Path:
    """``x`` (channels, n) written as Ogg Opus by FFmpeg's libopus encoder through PyAV, its
    frames stamped from ``start`` (samples at ``rate``)."""
    import av
    layout = "stereo" if len(x) == 2 else "mono"
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="ogg") as out:
        out.metadata.update(tags or {})
        stream = out.add_stream("libopus", rate=rate, layout=layout)
        stream.codec_context.format = "flt"
        for i in range(0, x.shape[1], 960):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + 960].T.reshape(1, -1)),
                                               format="flt", layout=layout)
            frame.sample_rate = rate
            frame.pts, frame.time_base = start + i, fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def click_time(x: np.ndarray, rate: int) -> float:
    """Seconds to the first sample of the click (mono or frames × channels)."""
    mono = x if x.ndim == 1 else x.mean(axis=1)
    return int(np.argmax(mono > 0.5)) / rate


#: an Ogg Opus file whose audio fits one page can only say its length to its last 20 ms packet
#: (its end trimming is not told apart from its start): what FFmpeg decodes past the sound is
#: the encoder's padding, near-silence
ONE_PAGE_SLACK = 0.02


@pytest.mark.parametrize("seconds, rate, channels", [(0.01, 48000, 1), (0.3, 16000, 2), (0.9, 48000, 2)])
def test_a_short_opus_file_libsndfile_refuses_is_read_by_ffmpeg(tmp_path, seconds, rate, channels):
    path = opus(tmp_path / "clink.opus", clicked(seconds, rate, channels), rate, start=LATER_START)
    with pytest.raises(sf.LibsndfileError, match="malformed"):        # why FFmpeg reads it
        sf.SoundFile(str(path))
    info = probe(path)
    assert (info.format, info.subtype, info.channels, info.sample_rate) == ("OGG", "OPUS", channels, 48000)
    assert seconds <= info.duration < seconds + ONE_PAGE_SLACK
    mono = decode(path, 16000)
    assert len(mono) == pytest.approx(info.duration * 16000, abs=2)
    assert click_time(mono, 16000) == pytest.approx(seconds / 2, abs=2 / 16000)
    with open_sound(path) as f:                                        # read in any pieces: the same
        whole = f.read(dtype="float32", always_2d=True)
    assert whole.shape == (info.frames, channels)
    if seconds > 0.5:                                                  # streamed from a moment on
        later = np.concatenate(list(iter_blocks(path, 16000, start_seconds=0.25, block_seconds=0.1)))
        assert len(later) == pytest.approx((info.duration - 0.25) * 16000, abs=2)
        assert click_time(later, 16000) == pytest.approx(seconds / 2 - 0.25, abs=2 / 16000)


@pytest.mark.parametrize("rate", [48000, 16000])
def test_an_opus_file_whose_granules_start_past_zero_is_read_on_time(tmp_path, rate):
    """libsndfile opens it but keeps the pre-skip: every moment 6.5 ms late; read after a seek to
    its start, at its own rate (tests/test_opus_offset_seek.py)."""
    path = opus(tmp_path / "gate.opus", clicked(2.0, rate), rate, start=LATER_START)
    with sf.SoundFile(str(path)) as f:                                 # the misread, as libsndfile gives it
        assert click_time(f.read(dtype="float32"), f.samplerate) == pytest.approx(1.0065, abs=2 / rate)
    info = probe(path)
    assert (info.frames, info.sample_rate) == (2 * rate, rate)
    assert click_time(decode(path, 16000), 16000) == pytest.approx(1.0, abs=2 / 16000)
    from engine.export import excerpt_wav
    data, start, end = excerpt_wav(path, 0.9, 1.1)                     # an export, a preview's span
    cut, cut_rate = sf.read(io.BytesIO(data))
    assert (cut_rate, start, end) == (rate, 0.9, 1.1)
    assert click_time(cut, cut_rate) == pytest.approx(0.1, abs=2 / rate)


def soundfile_opus(path: Path, x: np.ndarray, rate: int) -> Path:
    """``x`` (channels, n) written as Ogg Opus by libsndfile's own encoder."""
    sf.write(str(path), x.T, rate, format="OGG", subtype="OPUS")
    return path


@pytest.mark.parametrize("writer", [opus, soundfile_opus])
@pytest.mark.parametrize("seconds, rate, channels", [
    (0.01, 48000, 1), (0.25, 16000, 2), (0.25, 8000, 1), (3.0, 24000, 2), (3.0, 48000, 1)])
def test_both_decoders_agree_on_the_length_and_the_moment_of_a_sound(tmp_path, writer, seconds, rate, channels):
    """Where libsndfile reads an Opus file right (it is read so), FFmpeg's reading has the same
    length (at 48 kHz: libsndfile decodes at the rate the encoder was given) and its sounds at
    the same moments: the pre-skip dropped alike; where both decode at 48 kHz, the same samples."""
    x = clicked(seconds, rate, channels, at=seconds / 3)
    path = writer(tmp_path / "both.opus", x, rate)
    with open_sound(path) as f:
        assert isinstance(f, sf.SoundFile)                             # not moved to FFmpeg
        ours = f.read(dtype="float32", always_2d=True)
        assert (f.frames, f.samplerate) == (x.shape[1], rate)
    with FFmpegSound(str(path)) as g:
        theirs = g.read(dtype="float32", always_2d=True)
        assert g.samplerate == 48000 and g.frames * rate == x.shape[1] * 48000
    assert len(theirs) == g.frames and len(ours) == x.shape[1]
    assert click_time(theirs, 48000) == pytest.approx(click_time(ours, rate), abs=1 / rate + 1 / 48000)
    if rate == 48000:
        assert np.abs(ours - theirs).max() < 1e-4


def test_an_opus_folder_is_indexed_searched_previewed_and_its_copies_found(tmp_path, caplog):
    from engine.duplicates import RATE, find_duplicates
    from engine.export import excerpt_stream
    from engine.query import SoundIndex
    from indexer import build_index
    from tests.conftest import write
    from tests.index_fakes import FakeModel
    lib = tmp_path / "lib"
    x = clicked(0.5, 48000)
    short = opus(lib / "clink.opus", x, 48000, start=LATER_START, tags={"title": "Glass clink"}).resolve()
    late = opus(lib / "gate.opus", clicked(2.0, 48000), 48000, start=LATER_START).resolve()
    good = opus(lib / "hum.opus", clicked(1.5, 48000), 48000)
    cut = lib / "cut.opus"                                             # its headers, then nothing
    cut.write_bytes(good.read_bytes()[:120])
    (lib / "noise.opus").write_bytes(np.random.default_rng(0).bytes(3000))
    stats = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert (stats.added, stats.failed) == (3, 2)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        reasons = {Path(e["path"]).name: e["reason"] for e in index.errors()}
        assert reasons["cut.opus"].startswith("not readable as audio (Error opening ")
        assert reasons["cut.opus"].endswith("Supported file format but file is malformed. (FFmpeg: End of file))")
        assert reasons["noise.opus"].endswith("Format not recognised.)")
        hit = index.search_text("glass clink", k=1, keywords=True)[0]
        assert hit.path == str(short)
        record = index.get_file(hit.file_id)
        assert (record["format"], record["sample_rate"]) == ("OGG", 48000)
        assert 0.5 <= record["duration"] < 0.5 + ONE_PAGE_SLACK
        assert index.get_file(index.file_id_for_path(late))["duration"] == 2.0
    with excerpt_stream(short, 0.2, 0.3) as stream:                    # /audio's span of it
        played, rate = sf.read(io.BytesIO(b"".join(stream)))
    assert rate == 48000 and len(played) == pytest.approx(0.1 * 48000, abs=1)
    assert click_time(played, rate) == pytest.approx(0.05, abs=2 / 48000)
    from ui.components.player import wav_excerpt
    played, rate = sf.read(io.BytesIO(wav_excerpt(str(late), 0.9, 0.2)))     # the page's player
    assert rate == 48000 and click_time(played, rate) == pytest.approx(0.1, abs=2 / 48000)
    wav = write(tmp_path / "clink.wav", x[0], 48000)                   # its copy, found
    paths = [str(wav), str(short)]
    durations = np.array([len(decode(p, RATE)) / RATE for p in paths])
    report = find_duplicates(paths, np.ones((2, 4), np.float32) / 2.0, durations, np.arange(2) + 1)
    assert [set(g.paths) for g in report.groups] == [set(paths)]


def test_an_opus_file_neither_decoder_reads_is_one_error_naming_both_reasons(tmp_path):
    good = opus(tmp_path / "hum.opus", clicked(1.5, 48000), 48000)
    cut = tmp_path / "cut.opus"
    cut.write_bytes(good.read_bytes()[:120])
    with pytest.raises(UnreadableAudio) as caught:
        decode(cut, 16000)
    assert caught.value.path == str(cut)
    assert caught.value.reason == (f"not readable as audio (Error opening '{cut}': Supported file format "
                                   "but file is malformed. (FFmpeg: End of file))")
    from engine.audio import RefusedByBoth
    with pytest.raises(sf.LibsndfileError) as raw:                     # what callers of open_sound catch
        open_sound(cut)
    assert isinstance(raw.value, RefusedByBoth)
    assert str(pickle.loads(pickle.dumps(raw.value))) == str(raw.value)     # across decoder processes

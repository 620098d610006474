"""Chained Ogg files (``cat a.ogg b.ogg > c.ogg``, as radio rips and some editors write them)
are heard to their last link, by whichever decoder reads each link.

libsndfile read only the first link of one; FFmpeg read all of them but counted one
Opus pre-skip for the whole chain and decoded a link's own (312 frames more per link than it
said). engine.audio finds the links from the Ogg page headers (engine.ogg_chain) and reads them
one after another: the length in the catalog, the segment times and the samples are every
link's, the second sound where it is."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import (decode, go_to_frame, iter_blocks, iter_segments, open_sound, open_sound_bytes, probe,
                          read_frames)
from engine.errors import UnreadableAudio
from engine.segments import SegmentPolicy
from tests.test_opus_fallback40 import LATER_START, opus

#: the two links' tones (Hz) and lengths (s)
FIRST, SECOND = (440.0, 1.0), (1000.0, 1.5)


def tone(freq: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant(x: np.ndarray, rate: int) -> float:
    """The frequency (Hz) of the largest peak of ``x``'s spectrum (mono or frames × channels)."""
    mono = x if x.ndim == 1 else x.mean(axis=1)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.argmax(spectrum) * rate / len(mono))


def libsndfile_link(path: Path, x: np.ndarray, rate: int, subtype: str) -> Path:
    sf.write(str(path), x, rate, format="OGG", subtype=subtype)
    return path


def offset_opus_link(path: Path, x: np.ndarray, rate: int, subtype: str) -> Path:
    """An Ogg Opus link FFmpeg wrote from audio whose timestamps start past 0: libsndfile
    refuses one under a second as malformed, so FFmpeg reads it."""
    return opus(path, x[None, :], rate, start=LATER_START)


def chain(folder: Path, kind: str, links: list[tuple[float, float, int]] | None = None) -> tuple[Path, list[Path]]:
    """A chained file of ``links`` ((Hz, s, rate) each; default: :data:`FIRST` then :data:`SECOND`
    at the kind's rate) and the link files it was made from."""
    write, subtype, rate = {"vorbis": (libsndfile_link, "VORBIS", 44100), "opus": (libsndfile_link, "OPUS", 16000),
                            "opus_by_ffmpeg": (offset_opus_link, "OPUS", 48000)}[kind]
    if links is None:
        seconds = 0.6 if kind == "opus_by_ffmpeg" else None
        links = [(f, seconds or s, rate) for f, s in (FIRST, SECOND)]
    parts = [write(folder / f"link{i}.ogg", tone(f, s, r), r, subtype) for i, (f, s, r) in enumerate(links)]
    whole = folder / f"chained_{kind}.ogg"
    whole.write_bytes(b"".join(p.read_bytes() for p in parts))
    return whole, parts


@pytest.mark.parametrize("kind", ["vorbis", "opus", "opus_by_ffmpeg"])
def test_every_link_is_heard_for_its_length_and_in_its_place(tmp_path, kind):
    path, parts = chain(tmp_path, kind)
    lengths = [probe(p).frames for p in parts]
    info = probe(path)
    assert info.frames == sum(lengths)                 # libsndfile: the first link's; FFmpeg: +312
    with open_sound(path) as f:
        assert type(f).__name__ == "ChainedOgg" and f.link_count == 2
        whole = f.read(dtype="float32", always_2d=True)
    assert whole.shape == (info.frames, 1)
    rate, edge = info.sample_rate, lengths[0]
    assert dominant(whole[int(0.1 * rate):edge - int(0.1 * rate)], rate) == pytest.approx(FIRST[0], abs=5)
    assert dominant(whole[edge + int(0.1 * rate):-int(0.1 * rate)], rate) == pytest.approx(SECOND[0], abs=5)
    for part, (a, b) in zip(parts, [(0, edge), (edge, info.frames)]):     # each link as read on its own
        with open_sound(part) as g:
            np.testing.assert_array_equal(whole[a:b], g.read(dtype="float32", always_2d=True))
    mono = decode(path, 16000)                         # what the indexer reads
    assert len(mono) == pytest.approx(info.duration * 16000, abs=2)
    with open_sound_bytes(path.read_bytes(), path.name) as f:          # an upload, a shard's member
        np.testing.assert_array_equal(f.read(dtype="float32", always_2d=True), whole)


@pytest.mark.parametrize("kind", ["vorbis", "opus"])
def test_a_seek_anywhere_in_a_chain_reads_what_a_read_from_the_start_gives(tmp_path, kind):
    """Inside either link, across the join and in each link's last page (libsndfile's seek lands
    late there); not in an Opus link's last frames, which libsndfile decodes otherwise when a read
    ends among them (tests/test_audio_audit.py's ``OPUS_END``), as in a file of its own."""
    from tests.test_audio_audit import OPUS_END
    path, _ = chain(tmp_path, kind)
    with open_sound(path) as f:
        whole = f.read(dtype="float32", always_2d=True)
        n, rate = f.frames, f.samplerate
    end = OPUS_END if kind == "opus" else 0
    positions = [0, 100, rate - 300 - end, rate - 1, rate, rate + 5, int(1.7 * rate), n - 700, n - 1, 40, n // 2]
    for frame in [at for at in positions if not (rate - end <= at < rate or n - end <= at)]:
        with open_sound(path) as f:
            go_to_frame(f, frame)
            got = read_frames(f, 600)
        np.testing.assert_allclose(got, whole[frame:frame + 600], atol=1e-6, err_msg=f"{kind} at {frame}")
    with open_sound(path) as f:                        # back and forth in one opening
        for frame in [int(1.9 * rate), 200, rate + 50]:
            f.seek(frame)
            assert f.tell() == frame
            np.testing.assert_allclose(f.read(300, dtype="float32", always_2d=True),
                                       whole[frame:frame + 300], atol=1e-3)


def test_opus_links_at_different_rates_are_read_at_48_khz(tmp_path):
    """libsndfile decodes an Opus stream at the rate its encoder was given: links given 48 and
    16 kHz are all read by FFmpeg instead, at Opus's own 48 kHz."""
    path, _ = chain(tmp_path, "opus", [(FIRST[0], FIRST[1], 48000), (SECOND[0], SECOND[1], 16000)])
    info = probe(path)
    assert (info.sample_rate, info.frames) == (48000, int((FIRST[1] + SECOND[1]) * 48000))
    x = decode(path, 16000)
    assert dominant(x[int(1.1 * 16000):], 16000) == pytest.approx(SECOND[0], abs=5)


def test_links_that_differ_otherwise_are_one_error_naming_the_file(tmp_path):
    path, _ = chain(tmp_path, "vorbis", [(FIRST[0], 1.0, 44100), (SECOND[0], 1.0, 22050)])
    with pytest.raises(UnreadableAudio) as caught:
        probe(path)
    assert caught.value.path == str(path)
    assert caught.value.reason == ("a chained Ogg file whose links differ (link 1: 44100 Hz, 1 channel(s); "
                                   "link 2: 22050 Hz, 1 channel(s)): not read; convert it to one stream")


@pytest.mark.parametrize("kind", ["vorbis", "opus"])
def test_a_link_cut_before_its_audio_ends_the_chain_with_a_note(tmp_path, kind, caplog):
    """A recording stopped just as a new link began: the links before it are read."""
    path, parts = chain(tmp_path, kind)
    path.write_bytes(parts[0].read_bytes() + parts[1].read_bytes()[:300])
    info = probe(path)
    assert info.frames == probe(parts[0]).frames
    notes: list[str] = []                              # the indexer's: said under the file's name
    heard = np.concatenate(list(iter_blocks(path, 16000, notes=notes)))
    assert len(heard) == pytest.approx(info.duration * 16000, abs=2)
    assert len(notes) == 1 and notes[0].startswith("link 2 of the 2 of this chained Ogg file is not readable (")
    assert notes[0].endswith("): read up to it") and "ByteRange" not in notes[0]
    with caplog.at_level("WARNING", logger="engine.audio"):
        assert dominant(decode(path, 16000), 16000) == pytest.approx(FIRST[0], abs=5)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == [f"{path}: {notes[0]}"]


def test_the_catalog_and_the_segments_cover_every_link(tmp_path):
    from engine.query import SoundIndex
    from indexer import build_index
    from tests.index_fakes import FakeModel
    lib = tmp_path / "lib"
    lib.mkdir()
    path, _ = chain(lib, "vorbis", [(FIRST[0], 3.0, 44100), (SECOND[0], 3.0, 44100)])
    for p in lib.glob("link*.ogg"):
        p.unlink()
    stats = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert (stats.added, stats.failed) == (1, 0)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        file_id = index.file_id_for_path(path.resolve())
        assert index.get_file(file_id)["duration"] == 6.0
        hits, vectors = index.file_segments(file_id)
    assert [(h.start, h.end) for h in hits] == [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (3.0, 5.0), (4.0, 6.0)]
    tones = FakeModel().embed_audio([tone(f, 2.0, 16000) for f in (FIRST[0], SECOND[0])])
    assert np.argmax(tones @ vectors[-1]) == 1 and np.argmax(tones @ vectors[0]) == 0
    policy = SegmentPolicy(window=2.0)
    assert [(s.start, s.end) for s in iter_segments(path, 16000, policy)][-1] == (4.0, 6.0)


def test_an_ordinary_ogg_file_is_one_link_and_the_same_stream_twice_is_two(tmp_path):
    from engine.ogg_chain import ogg_links
    one = libsndfile_link(tmp_path / "one.ogg", tone(440, 2.0, 44100), 44100, "VORBIS")
    data = one.read_bytes()
    assert [(link.start, link.end) for link in ogg_links(io.BytesIO(data), len(data))] == [(0, len(data))]
    with open_sound(one) as f:
        assert isinstance(f, sf.SoundFile)
    assert ogg_links(io.BytesIO(b"RIFF" + data), len(data) + 4) == []
    twice = data + data                                # the same stream twice (its serial number too)
    assert [link.start for link in ogg_links(io.BytesIO(twice), len(twice))] == [0, len(data)]

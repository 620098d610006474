"""Segments that are all digital silence are left out of every file vector (session 38): the
indexer neither embeds nor stores them, `tag FILE` / `similar FILE` / uploads leave them out alike,
a file of silence throughout keeps its first segment, marked takes of silence too (since session 40), and the
trainer's validation means leave them out of cached features."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from engine import zeroshot
from engine.audio import iter_segments
from engine.models.base import l2_normalize
from engine.query import SoundIndex
from engine.segments import SILENT_PEAK, SegmentPolicy, is_silent, without_silence
from engine.tagging import tag_files
from indexer import build_index
from tests.conftest import catalog_session, noise, padded, tone, write
from tests.index_fakes import FakeModel

SR = 16000          # FakeModel's rate: no resampling, so which windows hold sound is exact



def stored_spans(idx, path) -> list[tuple[float, float]]:
    from sqlalchemy import select

    from engine.catalog import File, SegmentRow
    with catalog_session(idx) as s:
        fid = s.scalar(select(File.id).where(File.path == str(path.resolve())))
        return sorted((round(a, 3), round(b, 3)) for a, b in
                      s.execute(select(SegmentRow.start, SegmentRow.end).where(SegmentRow.file_id == fid)))


# ------------------------------------------------------------------ the rule


def test_the_rule_keeps_sound_and_the_first_segment_of_silence_only():
    counts: dict[str, int] = {}
    kept = list(without_silence("ssSsSs", str.islower, counts))
    assert kept == [("S", False), ("S", False)] and counts == {"silent_left_out": 4}
    counts = {}
    assert list(without_silence(["a", "b", "c"], lambda s: True, counts)) == [("a", True)]
    assert counts == {"silent_left_out": 2}
    assert list(without_silence([], lambda s: True)) == []


def _decoded_peaks(path, rate: int = 16000) -> list[float]:
    return [float(np.abs(s.waveform).max()) for s in iter_segments(path, rate, SegmentPolicy(2.0))]


@pytest.mark.parametrize("fmt,subtype,ext", [("MP3", "MPEG_LAYER_III", "mp3"), ("OGG", "VORBIS", "ogg"),
                                             ("WAV", "PCM_16", "wav")])
def test_digital_silence_through_a_codec_and_resampling_is_silent(tmp_path, fmt, subtype, ext):
    path = tmp_path / f"silence.{ext}"
    sf.write(str(path), np.zeros(6 * 44100, np.float32), 44100, format=fmt, subtype=subtype)
    peaks = _decoded_peaks(path)
    assert peaks and all(is_silent(np.array([p])) for p in peaks)


def test_dithered_16_bit_silence_is_silent_and_room_tone_and_a_quiet_sound_are_not(tmp_path):
    rng = np.random.default_rng(0)
    n = 6 * 44100
    dither = ((rng.random(n) - rng.random(n)) / 32768).astype(np.float32)        # TPDF, ±1 LSB
    write(tmp_path / "dither.wav", dither, 44100, subtype="PCM_16")
    assert max(_decoded_peaks(tmp_path / "dither.wav")) <= SILENT_PEAK
    room = rng.standard_normal(n).astype(np.float32)
    room *= 1e-3 / np.sqrt(np.mean(room ** 2))                                      # −60 dBFS RMS
    write(tmp_path / "room.wav", room, 44100, subtype="PCM_16")
    assert min(_decoded_peaks(tmp_path / "room.wav")) > SILENT_PEAK
    quiet = tone(440, 6.0, 44100, amp=0.05) * 10 ** (-40 / 20)                      # −26 dBFS, 40 dB down
    write(tmp_path / "quiet.wav", quiet, 44100, subtype="PCM_24")
    assert min(_decoded_peaks(tmp_path / "quiet.wav")) > SILENT_PEAK


# ------------------------------------------------------------------ the indexer


@pytest.fixture
def library(tmp_path):
    lib = tmp_path / "lib"
    write(lib / "padded.wav", padded(noise(2.0, SR, seed=4), 25.0, 11.0, SR), SR)      # windows 10-12, 11-13, 12-14 sound
    write(lib / "silence.wav", np.zeros(7 * SR, np.float32), SR)
    write(lib / "sound.wav", tone(300, 5.0, SR), SR)
    return lib


@pytest.mark.parametrize("workers", [0, 1])
def test_the_indexer_stores_no_silent_segment_of_a_file_with_sound(library, tmp_path, workers):
    idx = tmp_path / "idx"
    s = build_index([library], idx, FakeModel(), workers=workers, progress=False)
    assert stored_spans(idx, library / "padded.wav") == [(10.0, 12.0), (11.0, 13.0), (12.0, 14.0)]
    assert stored_spans(idx, library / "silence.wav") == [(0.0, 2.0)]           # found, by its first segment
    assert len(stored_spans(idx, library / "sound.wav")) == 4
    assert (s.silent_left_out, s.files_of_silence, s.n_segments) == (21 + 5, 1, 3 + 1 + 4)
    assert s.to_dict()["silent_left_out"] == 26 and s.totals["segments"] == 8
    with SoundIndex.open(idx, model=FakeModel()) as index:                      # its length is the file's
        fid = index.file_id_for_path(library / "padded.wav")
        assert index.get_file(fid)["duration"] == pytest.approx(25.0)


def test_the_run_says_how_many_silent_segments_it_left_out(library, tmp_path, caplog):
    import logging
    with caplog.at_level(logging.INFO, logger="indexer.runner"):
        build_index([library], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    said = [r.getMessage() for r in caplog.records if "silent segment" in r.getMessage()]
    assert said == ["26 silent segments left out of files with sound elsewhere; 1 file of digital silence "
                    "throughout, kept as its first segment (all digital silence: engine.segments.SILENT_PEAK)"]


def test_tag_file_and_tag_index_give_one_vector_of_the_sound_only(library, tmp_path):
    """The index's stored file vector, `tag FILE` (decoded now) and an upload of the same audio
    agree, and are the mean of the sounding segments only."""
    model = FakeModel()
    path = library / "padded.wav"
    build_index([library], tmp_path / "idx", model, workers=0, progress=False)
    wave = sf.read(str(path), dtype="float32")[0]
    windows = [wave[a * SR:(a + 2) * SR] for a in (10, 11, 12)]
    expected = l2_normalize(model.embed_audio(windows).mean(axis=0))
    decoded, seconds = zeroshot.file_query_vector(model, path)
    assert seconds == pytest.approx(25.0)                      # the length decoded, silence and all
    np.testing.assert_allclose(decoded, expected, atol=1e-6)
    np.testing.assert_allclose(zeroshot.audio_query_vector(model, wave, SR), expected, atol=1e-6)
    with SoundIndex.open(tmp_path / "idx", model=model) as index:
        (from_index,), _ = tag_files([path], ["rain", "door"], index=index)
        assert from_index.from_index
    (fresh,), _ = tag_files([path], ["rain", "door"], model=model)
    assert not fresh.from_index
    assert [t["cosine"] for t in fresh.tags] == pytest.approx([t["cosine"] for t in from_index.tags], abs=1e-6)
    assert fresh.tags[0]["cosine"] == pytest.approx(float(expected @ l2_normalize(np.ones(8))), abs=1e-6)


def test_a_file_of_silence_is_tagged_by_its_first_segment_alike(library):
    model = FakeModel()
    spans, vectors = zeroshot.file_segment_vectors(model, library / "silence.wav")
    assert spans == [(0.0, 2.0)] and vectors.shape == (1, 8)
    spans, _ = zeroshot.waveform_segment_vectors(model, np.zeros(7 * SR, np.float32), SR)
    assert spans == [(0.0, 2.0)]


# ------------------------------------------------------------------ marked takes


def test_a_silent_marked_take_is_left_out_and_not_cut_again_on_every_run(tmp_path):
    """A cue sheet's take over digital silence in a file with sound is left out as a silent window
    is (since session 40: kept before, it entered the file's vector), and the next run does not
    think its takes were never cut."""
    lib = tmp_path / "lib"
    wave = padded(noise(2.0, SR, seed=2), 8.0, 0.0, SR)                  # sound 0-2 s, silence 2-8 s
    write(lib / "reel.wav", wave, SR)
    (lib / "reel.cue").write_text('FILE "reel.wav" WAVE\n  TRACK 01 AUDIO\n    TITLE "Sound"\n'
                                  '    INDEX 01 00:00:00\n  TRACK 02 AUDIO\n    TITLE "Pause"\n'
                                  '    INDEX 01 00:04:38\n')             # 4.5067 s: not a window start
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    spans = stored_spans(idx, lib / "reel.wav")
    starts = [a for a, _ in spans]
    assert 4.507 not in starts                                        # the silent take, left out
    assert not any(a >= 2.0 for a, b in spans)                        # as the silent windows are
    again = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert (again.updated, again.unchanged, again.n_segments) == (0, 1, 0)


def test_a_file_with_marked_takes_gets_its_indexed_vector_when_decoded(tmp_path):
    """`tag FILE` / `similar FILE` of a file whose markers cut takes embed its takes too, as the
    index stores them, so the decoded vector is the stored segments' mean (before session 38 the
    takes entered the index's mean only: the two differed for every marked file)."""
    lib = tmp_path / "lib"
    wave = np.concatenate([noise(3.0, SR, seed=4), tone(440.0, 3.0, SR), noise(2.0, SR, seed=5)]).astype(np.float32)
    write(lib / "takes.wav", wave, SR)
    (lib / "takes.cue").write_text('FILE "takes.wav" WAVE\n  TRACK 01 AUDIO\n    TITLE "Tone"\n'
                                   '    INDEX 01 00:03:38\n  TRACK 02 AUDIO\n    TITLE "Hiss"\n'
                                   '    INDEX 01 00:06:20\n')    # 3.507 s, 6.267 s: not window starts
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert len(stored_spans(idx, lib / "takes.wav")) == 7 + 2                # 2 s windows every 1 s, 2 takes
    with SoundIndex.open(idx, model=FakeModel()) as index:
        stored = index.file_vector(str(lib / "takes.wav"))
    decoded, _ = zeroshot.file_query_vector(FakeModel(), lib / "takes.wav")
    np.testing.assert_allclose(decoded, stored, atol=1e-5)


# ------------------------------------------------------------------ the trainer's means


def test_validation_means_leave_out_silent_rows_and_old_caches_get_peaks(tmp_path):
    from trainer.cached_train import sounding_rows
    from trainer.datasets import read_manifest
    from trainer.precompute import FeatureCache, build_cache

    cache = FeatureCache.empty(False)
    cache.extend({"posteriors": np.zeros((5, 521), np.float32), "embedding": np.zeros((5, 1024), np.float32),
                  "item": np.array([0, 0, 0, 1, 1]), "view": np.array([0, 1, 2, 0, 1]),
                  "peak": np.array([0.0, 0.5, 0.0, 0.0, 1e-5], np.float32)})
    assert sounding_rows(cache).tolist() == [1, 3]                  # item 1 is silence: its first row
    old = cache.take(np.arange(5))
    old.peak = None
    assert sounding_rows(old).tolist() == [0, 1, 2, 3, 4]

    # a validation cache saved before peaks were kept gets them from its audio, features unchanged
    root = tmp_path / "corpus"
    rows = [{"audio": str(write(root / "padded.flac", padded(noise(1.0, SR), 25.0, 2.0, SR), SR)), "tags": ["a"],
             "captions": ["a"]},
            {"audio": str(write(root / "beep.flac", tone(880, 1.0, SR), SR)), "tags": ["b"], "captions": ["b"]}]
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = read_manifest(root / "m.jsonl")
    meta = {"version": 1, "views": 0, "seed": 0, "augment": None, "window_seconds": 10.0, "aisfx": False,
            "yamnet_min_peak_db": None}
    from trainer.precompute import items_key
    stale = FeatureCache.empty(False, {**meta, "items": 2, "items_sha1": items_key(items), "done_items": 2})
    stale.extend({"posteriors": np.ones((5, 521), np.float32), "embedding": np.ones((5, 1024), np.float32),
                  "item": np.array([0, 0, 0, 0, 1]), "view": np.array([0, 1, 2, 3, 0])})
    assert stale.peak is None
    stale.save(tmp_path / "val.npz")
    assert FeatureCache.load(tmp_path / "val.npz").peak is None
    got = build_cache(items, tmp_path / "val.npz", views=0)
    assert got.peak is not None and FeatureCache.load(tmp_path / "val.npz").peak is not None
    assert sounding_rows(got).tolist() == [0, 4]                    # 0-10 s holds the noise; 5-15 … 15-25 silent


# ------------------------------------------------------------------ spans over left-out silence


def test_more_like_a_moment_of_left_out_silence_is_not_refused(library, tmp_path):
    build_index([library], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        assert index.similar_to_file(library / "padded.wav", k=3, start=2.0, end=6.0)
        assert index.similar_to_file(library / "padded.wav", k=3, start=20.0, end=24.0)

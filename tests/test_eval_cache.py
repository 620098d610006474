"""Audio → evaluation embeddings: segment averaging, batching, and the embedding cache."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import chirp, noise, tone, write
from engine.audio import decode
from engine.models.base import l2_normalize
from engine.segments import SegmentPolicy, segment_bounds
from eval_fakes import CountingModel
from trainer.evaluation.cache import EmbeddingCache, default_cache_dir
from trainer.evaluation.embed import embed_audio_files
from trainer.evaluation.runner import evaluate_zeroshot

SR = 22050  # files are written at 22.05 kHz, the fake model wants 16 kHz: resampling runs


@pytest.fixture
def clips(tmp_path):
    d = tmp_path / "audio"
    return [write(d / "low.wav", tone(300, 0.5, SR), SR),
            write(d / "high.flac", tone(3000, 0.7, SR), SR),
            write(d / "hiss.wav", noise(0.4, SR, seed=1), SR),
            write(d / "long.wav", chirp(200, 4000, 2.6, SR), SR)]   # > 1 s window: 5 segments (4 + end-aligned tail)


def test_long_clip_is_mean_of_segments_renormalised(clips):
    model = CountingModel()
    got = embed_audio_files(model, clips, batch_size=3, progress=False)
    assert got.shape == (4, model.dim) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    x = decode(clips[3], model.sample_rate)
    bounds = segment_bounds(len(x), model.sample_rate, SegmentPolicy(model.window_seconds))
    assert len(bounds) == 5
    seg = CountingModel().embed_audio([x[a:b] for a, b in bounds])
    assert np.allclose(got[3], l2_normalize(seg.mean(axis=0, keepdims=True))[0], atol=1e-6)
    short = CountingModel().embed_audio([decode(clips[0], model.sample_rate)])
    assert np.allclose(got[0], short[0], atol=1e-6)
    assert model.audio_clips == 3 + 5     # three whole clips + five segments


def test_batch_size_does_not_change_vectors(clips):
    a = embed_audio_files(CountingModel(), clips, batch_size=1, progress=False)
    b = embed_audio_files(CountingModel(), clips, batch_size=64, progress=False)
    assert np.allclose(a, b, atol=1e-6)


def test_second_run_embeds_nothing_and_other_model_invalidates(clips, tmp_path):
    cache_dir = tmp_path / "cache"
    first = CountingModel()
    with EmbeddingCache(cache_dir) as cache:
        v1 = embed_audio_files(first, clips, cache=cache, progress=False)
    assert first.audio_clips == 8
    again = CountingModel()
    with EmbeddingCache(cache_dir) as cache:
        v2 = embed_audio_files(again, clips, cache=cache, progress=False)
        assert cache.count("fake-v1") == 4
    assert again.audio_calls == 0
    assert np.array_equal(v1, v2)
    other = CountingModel(fingerprint="fake-v2")
    with EmbeddingCache(cache_dir) as cache:
        embed_audio_files(other, clips, cache=cache, progress=False)
        assert cache.count("fake-v2") == 4
    assert other.audio_clips == 8          # another fingerprint never sees fake-v1's vectors


def test_changed_file_is_re_embedded_alone(clips, tmp_path):
    cache_dir = tmp_path / "cache"
    with EmbeddingCache(cache_dir) as cache:
        embed_audio_files(CountingModel(), clips, cache=cache, progress=False)
    write(clips[0], tone(500, 0.5, SR), SR)              # new content, same path
    model = CountingModel()
    with EmbeddingCache(cache_dir) as cache:
        got = embed_audio_files(model, clips, cache=cache, progress=False)
    assert model.audio_clips == 1
    fresh = embed_audio_files(CountingModel(), clips[:1], progress=False)
    assert np.allclose(got[0], fresh[0], atol=1e-6)


def test_identical_content_embedded_once(tmp_path):
    data = tone(800, 0.3, SR)
    paths = [write(tmp_path / f"copy{i}.wav", data, SR) for i in range(3)]
    model = CountingModel()
    with EmbeddingCache(tmp_path / "cache") as cache:
        got = embed_audio_files(model, paths, cache=cache, progress=False)
    assert model.audio_clips == 1
    assert np.array_equal(got[0], got[2]) and np.linalg.norm(got[1]) == pytest.approx(1.0, abs=1e-6)


def test_new_template_reuses_audio_embeddings(tmp_path):
    d = tmp_path / "audio"
    for i, f in enumerate((300, 3000, 600)):
        write(d / f"{i}.wav", tone(f, 0.5, SR), SR)
    csv = tmp_path / "labels.csv"
    csv.write_text("audio,label\n0.wav,low_hum\n1.wav,high beep\n2.wav,low_hum\n")
    first = CountingModel()
    r1 = evaluate_zeroshot(csv, d, first, cache_dir=tmp_path / "c", progress=False)
    second = CountingModel()
    r2 = evaluate_zeroshot(csv, d, second, template="the sound of {label}", cache_dir=tmp_path / "c",
                           progress=False)
    assert first.audio_clips == 3 and second.audio_calls == 0 and second.text_calls == 1
    assert r1["n"] == r2["n"] == 3


def test_default_cache_dir_follows_environment(monkeypatch, tmp_path):
    """One variable moves every cache of soundsift, the evaluator's embeddings included."""
    monkeypatch.setenv("SOUNDSIFT_CACHE", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "embeddings"
    monkeypatch.delenv("SOUNDSIFT_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_dir().parts[-3:] == (".cache", "soundsift", "embeddings")


def test_unusable_cache_dir_is_a_clear_error(tmp_path):
    from engine.errors import SoundsiftError
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SoundsiftError, match="cannot open the embedding cache.*--no-cache"):
        EmbeddingCache(blocker / "cache")

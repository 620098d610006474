"""YAMNet's silence trimming (config ``yamnet_trim_silence``): a view's leading and trailing
digital silence is cut before YAMNet, and a sound left shorter than one patch is centred in it,
so a 10 ms beep or a 20 ms click is heard the same wherever it sits in a silent file. The batch
and stream paths agree; the key off changes nothing, nor the fingerprint or the cache names."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import InvalidConfig, ModelUnavailable
from engine.models import load_model
from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig
from engine.towers import yamnet
from tests.conftest import chirp, noise, tone

# each init_baseline encodes the 521 class names with MiniLM: once per run, not once per model
pytestmark = pytest.mark.usefixtures("minilm_memo")

SR = 16000


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def _tower():
    return yamnet.shared_tower(0, "int8")


def _beep(seconds: float, freq: float = 1000.0) -> np.ndarray:
    """A cosine tone: its first and last samples are not silence, so trimming keeps all of it."""
    return (0.5 * np.cos(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def _click() -> np.ndarray:
    """A 20 ms decaying noise burst."""
    n = int(0.02 * SR)
    burst = np.random.default_rng(0).standard_normal(n) * np.exp(-np.arange(n) / (0.003 * SR))
    return (0.8 * burst / np.abs(burst).max()).astype(np.float32)


def _centred(sound: np.ndarray) -> np.ndarray:
    out = np.zeros(yamnet.MIN_SAMPLES, np.float32)
    before = (yamnet.MIN_SAMPLES - sound.size) // 2
    out[before:before + sound.size] = sound
    return out


def test_trimmed_cuts_only_the_digital_silence_at_the_edges():
    sound = np.concatenate([_beep(0.3, 440), _silence(0.5), noise(0.2, SR)])
    edge = np.full(100, yamnet.SILENT_SAMPLE, np.float32)        # at the threshold: silence
    got = yamnet.trimmed(np.concatenate([_silence(1.0), edge, sound, -edge, _silence(2.0)]))
    np.testing.assert_array_equal(got, sound)                     # the silence inside is kept
    faint = np.full(3, 2 * yamnet.SILENT_SAMPLE, np.float32)       # above it: sound
    np.testing.assert_array_equal(yamnet.trimmed(np.concatenate([_silence(0.1), faint])), faint)
    assert yamnet.trimmed(_silence(1.0)).size == 0 and yamnet.trimmed(np.zeros(0, np.float32)).size == 0


@pytest.mark.parametrize("sound", [_beep(0.01), _click(), _beep(0.1)],
                         ids=["beep 10 ms", "click 20 ms", "beep 100 ms"])
def test_a_sub_patch_sound_is_heard_the_same_wherever_it_sits_in_silence(sound):
    """Alone, at the start of a 1 s file, 2 s into 5 s of silence: the one centred patch."""
    tower = _tower()
    at_start = np.concatenate([sound, _silence(1.0 - sound.size / SR)])
    inside = np.concatenate([_silence(2.0), sound, _silence(3.0 - sound.size / SR)])
    centred = tower._frames_log_mel(_centred(sound), yamnet.PATCH_FRAMES)
    for wave in (sound, at_start, inside):
        np.testing.assert_array_equal(tower.log_mel(wave, trim_silence=True), centred)
    # without the key the same sound is three different views, none centred
    assert not np.array_equal(tower.log_mel(sound), tower.log_mel(inside)[:yamnet.PATCH_FRAMES])


def test_centring_a_short_click_lowers_silence_that_the_zero_padding_gives():
    tower = _tower()
    silence = yamnet.class_names().index("Silence")
    for sound in (_beep(0.01), _click()):
        for wave in (sound, np.concatenate([sound, _silence(1.0)])):      # the sound where a file starts
            padded = tower.clip_features(tower.log_mel(wave), 40.0)["posteriors"]
            trimmed = tower.clip_features(tower.log_mel(wave, trim_silence=True), 40.0)["posteriors"]
            assert padded[silence] > 0.65 and trimmed[silence] < padded[silence] - 0.3


def test_a_long_sound_inside_silence_is_heard_as_recorded():
    tower = _tower()
    sound = chirp(300, 3000, 2.3, SR)[1:]                         # its first sample is 0
    padded = np.concatenate([_silence(1.37), sound, _silence(2.9)])
    np.testing.assert_array_equal(tower.log_mel(padded, trim_silence=True), tower.log_mel(sound))
    np.testing.assert_array_equal(tower.log_mel(sound, trim_silence=True), tower.log_mel(sound))


def test_stream_features_equal_clip_features_with_trimming():
    """Silence before, between and after; a short sound after a long one; nothing at all."""
    tower = _tower()
    waves = (np.concatenate([_silence(1.3), chirp(300, 3000, 2.1, SR), _silence(0.7), noise(1.7, SR, seed=2, amp=0.001),
                             _silence(2.2), tone(700, 0.03, SR), _silence(1.1)]),
             np.concatenate([tone(500, 1.2, SR), _silence(4.0)]),
             np.concatenate([_silence(2.0), _click(), _silence(2.98)]),
             np.concatenate([_silence(0.4), tone(900, 0.5, SR), _silence(0.2), _click()]),
             tone(440, 0.03, SR), _silence(3.0), np.zeros(0, np.float32))
    for wave in waves:
        for pool_db, short_pad in ((40.0, "zeros"), (None, "zeros"), (30.0, "tile")):
            whole = tower.clip_features(tower.log_mel(wave, short_pad, trim_silence=True), pool_db)
            for block, chunk in ((len(wave) or 1, 64), (7777, 2), (399, 1)):
                blocks = [wave[i:i + block] for i in range(0, len(wave), block)]
                got = tower.stream_features(blocks, chunk_patches=chunk, pool_db=pool_db, short_pad=short_pad,
                                            trim_silence=True)
                np.testing.assert_allclose(got["posteriors"], whole["posteriors"], atol=1e-5)
                np.testing.assert_allclose(got["embedding"], whole["embedding"], atol=1e-4)


# -- the model config -----------------------------------------------------------------------

def _config(**kw) -> SoundsiftClapConfig:
    return SoundsiftClapConfig(space="audioset", dim=yamnet.NUM_CLASSES, text_adapter=False,
                               use_yamnet_embedding=True, yamnet_pool_db=40.0, **kw)


def test_the_model_passes_the_key_to_the_tower():
    tower = _tower()
    waves = [np.concatenate([_silence(2.0), _click(), _silence(2.0)]), tone(1000, 0.03, SR)]
    for trim in (False, True):
        feats = SoundsiftClap(_config(yamnet_trim_silence=trim)).eval().extract_features(waves)
        for f, wave in zip(feats, waves):
            expected = tower.clip_features(tower.log_mel(wave, "zeros", trim), 40.0)
            np.testing.assert_array_equal(f.posteriors.numpy()[0], expected["posteriors"])
            np.testing.assert_array_equal(f.embedding.numpy()[0], expected["embedding"])


def test_the_fingerprint_changes_only_when_the_key_is_on(tmp_path):
    SoundsiftClap(_config()).init_baseline().save_pretrained(tmp_path / "plain")
    before = load_model(tmp_path / "plain").fingerprint
    cfg = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert cfg["yamnet_trim_silence"] is False
    cfg.pop("yamnet_trim_silence")                                # a config saved before the key
    (tmp_path / "plain" / "config.json").write_text(json.dumps(cfg))
    assert load_model(tmp_path / "plain").fingerprint == before
    SoundsiftClap(_config(yamnet_trim_silence=True)).init_baseline().save_pretrained(tmp_path / "trim")
    assert load_model(tmp_path / "trim").fingerprint != before


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_bad_value_is_refused_naming_the_key(value):
    with pytest.raises(ModelUnavailable, match="yamnet_trim_silence"):
        SoundsiftClap(_config(yamnet_trim_silence=value))


# -- the trainer's caches -------------------------------------------------------------------

def test_a_feature_cache_is_continued_only_with_the_same_trimming():
    from trainer.datasets import Item
    from trainer.precompute import _continues, items_key

    items = [Item(audio="a.wav", captions=["a"])]
    meta = {"version": 1, "views": 0, "items": 1, "items_sha1": items_key(items)}
    trim = {**meta, "yamnet_trim_silence": True}
    assert _continues(meta, meta, items) and _continues(trim, trim, items)
    assert not _continues(meta, trim, items) and not _continues(trim, meta, items)


def test_cached_training_config_passes_the_key_to_the_model_and_names_its_caches(tmp_path):
    from trainer.cached_train import CachedTrainConfig, _cache_settings, model_config

    path = tmp_path / "c.json"
    path.write_text(json.dumps({"space": "audioset", "yamnet_pool_db": 40, "yamnet_trim_silence": True}))
    cfg = CachedTrainConfig.from_file(path)
    assert model_config(cfg).yamnet_trim_silence is True
    tag, settings = _cache_settings(cfg)
    assert tag.endswith("_pool40_trim") and settings["yamnet_trim_silence"] is True
    assert not _cache_settings(CachedTrainConfig())[0].endswith("_trim")
    path.write_text(json.dumps({"space": "audioset", "yamnet_trim_silence": "yes"}))
    with pytest.raises(InvalidConfig, match="yamnet_trim_silence"):
        CachedTrainConfig.from_file(path)

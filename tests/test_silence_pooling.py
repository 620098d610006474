"""YAMNet's sound-aware pooling (config ``yamnet_pool_db``) and short-sound padding (config
``yamnet_short_pad``): patches without sound left out of the mean, sub-patch views tiled; the
batch and stream paths agree, the keys off give the vectors of before, and the fingerprint and
the feature caches change only when a key is set."""
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
HOP = yamnet.PATCH_HOP_FRAMES * yamnet.FRAME_HOP      # samples between patch starts


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def _tower():
    return yamnet.shared_tower(0, "int8")


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _padded_tone() -> tuple[np.ndarray, np.ndarray]:
    """A 1 kHz tone, and the same tone inside 1.92 s of digital silence before and 3 s after."""
    beep = tone(1000, 1.92, SR)
    return beep, np.concatenate([np.zeros(4 * HOP, np.float32), beep, _silence(3.0)])


# -- the tower --------------------------------------------------------------------------------

def test_patch_levels_put_digital_silence_at_zero_and_a_louder_patch_higher():
    tower = _tower()
    wave = np.concatenate([_silence(2.0), tone(440, 2.0, SR, amp=0.5), tone(440, 2.0, SR, amp=0.005)])
    levels = yamnet.patch_levels(tower.patches(tower.log_mel(wave)))
    assert levels[0] == 0 and levels[1] == 0                     # the first patches hear nothing
    loud, quiet = levels[5], levels[-1]                           # inside the loud tone, inside the quiet one
    assert 38 <= loud - quiet <= 42                               # 40 dB apart
    assert yamnet.sounding(levels, 30.0).tolist() == (levels >= loud - 30).tolist()
    assert not yamnet.sounding(levels, 30.0)[0] and not yamnet.sounding(levels, 30.0)[-1]
    assert yamnet.sounding(levels, 60.0)[-1]                      # within 60 dB: kept
    assert yamnet.sounding(levels, None).all()                    # the plain mean
    assert yamnet.sounding(np.zeros(4, np.int64), 30.0).all()     # all silent: none left out


def test_silent_padded_tone_pools_like_the_tone_alone_with_the_key_on_but_not_off():
    tower = _tower()
    beep, padded = _padded_tone()
    silence = yamnet.class_names().index("Silence")
    alone = tower.clip_features(tower.log_mel(beep))["posteriors"]
    off = tower.clip_features(tower.log_mel(padded))["posteriors"]
    on = tower.clip_features(tower.log_mel(padded), pool_db=40.0)["posteriors"]
    assert _cosine(on, alone) > 0.95 and abs(on[silence] - alone[silence]) < 0.1
    assert _cosine(off, alone) < 0.8 and off[silence] > 0.4       # today: mostly "Silence"
    assert on.argmax() == alone.argmax() != off.argmax()


@pytest.mark.parametrize("weights", ["int8", "float"])
def test_stream_features_equal_clip_features_with_the_keys_on(weights):
    """Silence, quiet and loud parts straddling blocks and chunks; a sub-patch sound tiled."""
    tower = yamnet.shared_tower(0, weights)
    waves = (np.concatenate([_silence(1.3), chirp(300, 3000, 2.1, SR), noise(1.7, SR, seed=2, amp=0.001),
                             _silence(2.2), tone(700, 0.6, SR)]),
             _padded_tone()[1], tone(440, 0.03, SR), _silence(3.0), np.zeros(0, np.float32))
    for wave in waves:
        for pool_db, short_pad in ((40.0, "zeros"), (30.0, "tile"), (None, "tile")):
            whole = tower.clip_features(tower.log_mel(wave, short_pad), pool_db)
            for block in (len(wave) or 1, 7777, 399):
                blocks = [wave[i:i + block] for i in range(0, len(wave), block)]
                got = tower.stream_features(blocks, chunk_patches=2, pool_db=pool_db, short_pad=short_pad)
                np.testing.assert_allclose(got["posteriors"], whole["posteriors"], atol=1e-5)
                np.testing.assert_allclose(got["embedding"], whole["embedding"], atol=1e-4)


def test_the_keys_off_give_the_plain_mean_over_zero_padded_patches_exactly():
    """What YAMNet gave before the keys: every patch of the zero-padded view, averaged."""
    tower = _tower()
    for wave in (_padded_tone()[1], tone(440, 0.03, SR)):
        w = np.pad(wave, (0, max(0, yamnet.MIN_SAMPLES - wave.size)))
        frames = tower._frames_log_mel(w, 1 + (w.size - yamnet.FRAME_LENGTH) // yamnet.FRAME_HOP)
        logits, embedding = tower.run_patches(tower.patches(frames))
        expected = (1 / (1 + np.exp(-logits.astype(np.float64)))).mean(0).astype(np.float32)
        got = tower.clip_features(tower.log_mel(wave, "zeros"), None)
        np.testing.assert_array_equal(got["posteriors"], expected)
        np.testing.assert_array_equal(got["embedding"], embedding.mean(0).astype(np.float32))
        streamed = tower.stream_features([wave], pool_db=None, short_pad="zeros")      # sums in float64
        np.testing.assert_array_equal(streamed["posteriors"], expected)
        np.testing.assert_array_equal(streamed["embedding"],
                                      (embedding.astype(np.float64).sum(0) / len(embedding)).astype(np.float32))


def test_short_sounds_are_tiled_to_one_patch_only_when_asked():
    beep = tone(1000, 0.01, SR)
    tiled = yamnet.YamnetTower.pad(beep, "tile")
    assert tiled.size == yamnet.MIN_SAMPLES
    whole = tiled.size // beep.size * beep.size
    np.testing.assert_array_equal(tiled[:whole].reshape(-1, beep.size), np.tile(beep, (whole // beep.size, 1)))
    np.testing.assert_array_equal(tiled[whole:], beep[:tiled.size - whole])
    zeroed = yamnet.YamnetTower.pad(beep, "zeros")
    assert zeroed.size == yamnet.MIN_SAMPLES and not zeroed[beep.size:].any()
    assert not yamnet.YamnetTower.pad(np.zeros(0, np.float32), "tile").any()        # nothing to repeat
    long = tone(440, 2.0, SR)
    np.testing.assert_array_equal(yamnet.YamnetTower.pad(long, "tile"), long)        # a patch or more: as is
    with pytest.raises(ValueError, match="short_pad"):
        yamnet.YamnetTower.pad(beep, "loop")
    tower = _tower()
    names = yamnet.class_names()
    assert names[tower.clip_features(tower.log_mel(beep, "zeros"))["posteriors"].argmax()] == "Silence"
    assert names[tower.clip_features(tower.log_mel(beep, "tile"))["posteriors"].argmax()] != "Silence"


# -- the model config -----------------------------------------------------------------------

def _config(**kw) -> SoundsiftClapConfig:
    return SoundsiftClapConfig(space="audioset", dim=yamnet.NUM_CLASSES, text_adapter=False,
                               use_yamnet_embedding=True, **kw)


def test_the_model_passes_the_keys_to_the_tower():
    tower = _tower()
    padded, short = _padded_tone()[1], tone(1000, 0.03, SR)
    for kw, pool_db, short_pad in (({}, None, "zeros"), ({"yamnet_pool_db": 40.0}, 40.0, "zeros"),
                                   ({"yamnet_short_pad": "tile"}, None, "tile")):
        module = SoundsiftClap(_config(**kw)).eval()
        feats = module.extract_features([padded, short])
        for f, wave in zip(feats, (padded, short)):
            expected = tower.clip_features(tower.log_mel(wave, short_pad), pool_db)
            np.testing.assert_array_equal(f.posteriors.numpy()[0], expected["posteriors"])
            np.testing.assert_array_equal(f.embedding.numpy()[0], expected["embedding"])


def test_the_fingerprint_changes_only_when_a_key_is_set(tmp_path):
    SoundsiftClap(_config()).init_baseline().save_pretrained(tmp_path / "plain")
    before = load_model(tmp_path / "plain").fingerprint
    cfg = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert cfg["yamnet_pool_db"] is None and cfg["yamnet_short_pad"] == "zeros"
    for key in ("yamnet_pool_db", "yamnet_short_pad"):
        cfg.pop(key)                                             # a config saved before the keys
    (tmp_path / "plain" / "config.json").write_text(json.dumps(cfg))
    assert load_model(tmp_path / "plain").fingerprint == before
    prints = {before}
    for name, kw in (("pool40", {"yamnet_pool_db": 40.0}), ("pool30", {"yamnet_pool_db": 30.0}),
                     ("tile", {"yamnet_short_pad": "tile"})):
        SoundsiftClap(_config(**kw)).init_baseline().save_pretrained(tmp_path / name)
        prints.add(load_model(tmp_path / name).fingerprint)
    assert len(prints) == 4


@pytest.mark.parametrize("kw, key", [({"yamnet_pool_db": 0}, "yamnet_pool_db"),
                                     ({"yamnet_pool_db": -10.0}, "yamnet_pool_db"),
                                     ({"yamnet_pool_db": "40"}, "yamnet_pool_db"),
                                     ({"yamnet_short_pad": "loop"}, "yamnet_short_pad")])
def test_bad_values_are_refused_naming_the_key(kw, key):
    with pytest.raises(ModelUnavailable, match=key):
        SoundsiftClap(_config(**kw))


# -- the trainer's caches -------------------------------------------------------------------

def test_a_feature_cache_is_continued_only_with_the_same_pooling_and_padding():
    from trainer.datasets import Item
    from trainer.precompute import _continues, items_key

    items = [Item(audio="a.wav", captions=["a"])]
    meta = {"version": 1, "views": 0, "items": 1, "items_sha1": items_key(items)}
    pooled, tiled = {**meta, "yamnet_pool_db": 40.0}, {**meta, "yamnet_short_pad": "tile"}
    for m in (meta, pooled, tiled):
        assert _continues(m, m, items)
    for a, b in ((meta, pooled), (pooled, meta), (meta, tiled), (tiled, meta),
                 (pooled, {**meta, "yamnet_pool_db": 30.0})):
        assert not _continues(a, b, items)


def test_cached_training_config_passes_the_keys_to_the_model_and_names_its_caches(tmp_path):
    from trainer.cached_train import CachedTrainConfig, _cache_settings, model_config

    path = tmp_path / "c.json"
    path.write_text(json.dumps({"space": "audioset", "yamnet_pool_db": 40, "yamnet_short_pad": "tile"}))
    cfg = CachedTrainConfig.from_file(path)
    model = model_config(cfg)
    assert (model.yamnet_pool_db, model.yamnet_short_pad) == (40, "tile")
    tag, settings = _cache_settings(cfg)
    assert tag.endswith("_pool40_tile") and settings["yamnet_pool_db"] == 40
    assert _cache_settings(CachedTrainConfig())[0] == "yamnet"          # the keys off: the names of before
    path.write_text(json.dumps({"space": "audioset", "yamnet_short_pad": "loop"}))
    with pytest.raises(InvalidConfig, match="yamnet_short_pad"):
        CachedTrainConfig.from_file(path)

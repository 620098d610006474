"""`soundsift caption`'s YAMNet tags average over the patches that carry sound, as the bundled
models do since session 36: a sound inside a file of silence is tagged by the sound."""
from __future__ import annotations

import numpy as np
import soundfile as sf

from tests.conftest import write

SR = 16_000


def _inside_silence(sound: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros(2 * SR), sound, np.zeros(3 * SR)]).astype(np.float32)


def test_a_beep_in_a_file_of_silence_is_tagged_as_a_beep(tmp_path):
    """A half-second 1 kHz beep 2 s into 5.5 s of digital silence was tagged "Silence" (0.72)
    first: the mean over all patches was mostly silent ones. It is tagged by the beep now."""
    from engine.towers import yamnet
    from trainer.caption_loop import YamnetTagger
    beep = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(SR // 2) / SR)
    path = write(tmp_path / "beep_in_silence.wav", _inside_silence(beep), SR)
    tagger = YamnetTagger()
    posteriors = tagger.scores(path)
    names = tagger.labels
    assert names[int(np.argmax(posteriors))] == "Beep, bleep", [names[i] for i in np.argsort(-posteriors)[:3]]
    assert posteriors[names.index("Silence")] < 0.2
    # the same file through the plain mean, as before: silence first
    plain = tagger.tower.stream_features(iter([_inside_silence(beep)]), yamnet.STREAM_CHUNK_PATCHES)["posteriors"]
    assert names[int(np.argmax(plain))] == "Silence"


def test_a_file_that_is_all_sound_is_tagged_as_before(tmp_path):
    """Where every patch carries sound, nothing is left out: the posteriors equal the plain mean."""
    from engine.towers import yamnet
    from trainer.caption_loop import YamnetTagger
    rng = np.random.default_rng(0)
    noise = (0.3 * rng.standard_normal(4 * SR)).astype(np.float32)
    path = write(tmp_path / "noise.wav", noise, SR)
    tagger = YamnetTagger()
    pooled = tagger.scores(path)
    as_stored, _ = sf.read(str(path), dtype="float32")          # 16-bit PCM, as the tagger reads it
    lifted = yamnet.lift_quiet(as_stored, yamnet.QUIET_PEAK_DB, yamnet.MAX_LIFT_DB)
    plain = tagger.tower.stream_features(iter([lifted]), yamnet.STREAM_CHUNK_PATCHES)["posteriors"]
    np.testing.assert_allclose(pooled, plain, atol=1e-5)

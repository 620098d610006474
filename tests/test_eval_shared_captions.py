"""eval retrieval on a labelled manifest: clips sharing a caption are each a right answer."""
from __future__ import annotations

import numpy as np

from engine.models.base import AudioTextModel
from tests.conftest import noise, tone, write
from trainer.evaluation.runner import evaluate_retrieval


class LabelModel(AudioTextModel):
    """Perfect embeddings: tones and "footsteps" → e0, noise and "rain" → e1."""
    name = fingerprint = "label-fake"
    dim, sample_rate, window_seconds = 2, 16000, 1.0

    def embed_audio(self, waveforms):
        flat = [np.abs(np.fft.rfft(w)).max() > 10 * np.abs(np.fft.rfft(w)).mean() for w in waveforms]
        return np.eye(2)[[0 if f else 1 for f in flat]]

    def embed_text(self, texts):
        return np.eye(2)[[0 if "footsteps" in t.lower() else 1 for t in texts]]


def test_clips_sharing_a_caption_are_each_relevant(tmp_path):
    rows = []
    for i in range(2):
        rows.append(f"t{i}.wav,{'Footsteps' if i else 'footsteps'}")
        write(tmp_path / f"t{i}.wav", tone(300 + 50 * i, 0.5, 16000), 16000)
        rows.append(f"n{i}.wav,rain")
        write(tmp_path / f"n{i}.wav", noise(0.5, 16000, seed=i), 16000)
    (tmp_path / "labels.csv").write_text("audio,caption\n" + "\n".join(rows) + "\n")
    got = evaluate_retrieval(tmp_path / "labels.csv", tmp_path, LabelModel(), use_cache=False, progress=False,
                             report_dir=tmp_path / "report")
    for d in ("t2a", "a2t"):
        assert got[d] == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "mAP@10": 1.0,
                          "median_rank": 1.0, "mean_rank": 1.0}

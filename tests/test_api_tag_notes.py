"""The Python API's zero-shot tags come with the notes the CLI, the page and the HTTP API's /tag
give when the scores say little (one label scores 1 for every sound; a sound under 0.1 s is too
short to be told apart): ``SoundIndex.tag_with_notes`` returns (tags, notes), in the words of
engine.tagging.tag_notes; ``SoundIndex.tag`` still returns the list of tags alone."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import noise, tone, write
from tests.test_server_slow_clients import index  # noqa: F401  (one beep, indexed, opened with FakeModel)

SR = 16_000
SHORT = "is 0.010 s long, under 0.1 s: too short for the model to tell what it is"
ADVICE = "compare the cosines or give other labels too"       # as the HTTP API's /tag says it
ONE_LABEL = "one label ('beep'): a score is a label's share among the labels given, so it scores 1"

pytestmark = pytest.mark.usefixtures("private_cache")


def test_a_short_waveform_gets_its_note_named_as_asked(index):
    blip = tone(1000, 0.01, SR)
    tags, notes = index.tag_with_notes(blip, ["beep", "hiss"], sample_rate=SR, name="blip.wav")
    assert tags == index.tag(blip, ["beep", "hiss"], sample_rate=SR)
    assert len(notes) == 1 and notes[0].startswith(f"blip.wav {SHORT}")
    assert index.tag_with_notes(blip, ["beep", "hiss"], sample_rate=SR)[1][0].startswith(f"the waveform {SHORT}")


def test_a_short_file_gets_its_note_named_by_its_path(index, tmp_path):
    path = tmp_path / "blip.wav"
    write(path, tone(1000, 0.01, SR), SR)
    tags, notes = index.tag_with_notes(path, ["beep", "hiss"], top=1)
    assert [set(t) for t in tags] == [{"label", "score", "cosine"}]
    assert len(notes) == 1 and notes[0].startswith(f"{path} {SHORT}")


def test_one_label_says_it_scores_1_for_every_sound(index):
    tags, notes = index.tag_with_notes(noise(1.0, SR), "beep", sample_rate=SR)   # one string: one label
    assert [t["label"] for t in tags] == ["beep"] and tags[0]["score"] == pytest.approx(1.0)
    assert notes == [f"{ONE_LABEL} for every sound; {ADVICE}"]


@pytest.mark.parametrize("labels", [["beep", "hiss"], None])
def test_scores_that_can_be_read_as_they_are_get_no_note(index, labels):
    wave = np.stack([tone(440, 1.0, SR), noise(1.0, SR)], axis=1)       # (samples, channels)
    tags, notes = index.tag_with_notes(wave, labels, top=3, sample_rate=SR)
    assert notes == [] and len(tags) == (2 if labels else 3)
    assert tags == index.tag(wave, labels, top=3, sample_rate=SR)      # tag: the same list, alone

"""SoundIndex.similar_to_files with a folder (or a missing path) among its examples: the query's
InvalidQuery naming it, as the API treats every unusable example, worded as `soundsift similar`
words the folder it leaves out, and said before any example is embedded (session 39)."""
from __future__ import annotations

import pytest

from conftest import tone, write
from engine.errors import InvalidQuery
from engine.query import SoundIndex
from query_fixtures import FakeModel, FileSpec, write_index

pytestmark = pytest.mark.usefixtures("private_cache")
DIM = 16


@pytest.fixture
def tones(tmp_path):
    """An index of one file per band of the fake model, that model, and a tone file outside it."""
    model = FakeModel(DIM)
    write_index(tmp_path / "tones", [FileSpec(f"/tones/band{b:02d}.wav", model.band_vector(b)) for b in range(DIM)],
                dim=DIM)
    outside = write(tmp_path / "outside.wav", tone(440.0, 1.0, model.sample_rate), model.sample_rate)
    with SoundIndex.open(tmp_path / "tones", model=model) as index:
        yield index, model, outside


def test_a_folder_among_the_examples_is_named_as_a_folder_before_anything_is_embedded(tones, tmp_path):
    """It was "… is a folder; give one audio file", said after the examples before it were decoded
    and embedded (the model loaded for nothing)."""
    index, model, outside = tones
    folder = tmp_path / "more sounds"
    folder.mkdir()
    with pytest.raises(InvalidQuery) as raised:
        index.similar_to_files([str(outside), "/tones/band03.wav", str(folder)], k=3)
    assert str(raised.value) == f"{folder} is a folder, not a sound file (name the files in it)"
    assert model.audio_calls == 0


def test_a_missing_example_is_said_before_anything_is_embedded(tones, tmp_path):
    index, model, outside = tones
    with pytest.raises(InvalidQuery, match=r"audio file .*gone\.wav does not exist"):
        index.similar_to_files([outside, tmp_path / "gone.wav"], k=3)
    assert model.audio_calls == 0


def test_usable_examples_still_search_together(tones):
    """The check leaves good examples as they were: an indexed path and a file embedded now."""
    index, model, outside = tones
    hits = index.similar_to_files(["/tones/band03.wav", str(outside)], k=2)
    assert hits[0].path == "/tones/band03.wav" and model.audio_calls == 1

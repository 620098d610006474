"""An audit of "more like this" and duplicates as a sound designer uses them: a silent file is
not the same recording as a steady tone (the gain taken out used to absorb the whole
difference, so silence, a 1 kHz hum and a 3 kHz beep came out as one group at 0.00 dB), and a
filtered `soundsift duplicates` that leaves no file says which filter value no file has."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.duplicates import MAX_DIFFERENCE_DB, RATE, copies_of, difference_db, find_duplicates
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app

SR = 44100


def test_silence_is_not_the_same_recording_as_a_steady_tone():
    silence = np.zeros(2 * RATE, np.float32)
    for freq in (1000, 3000):
        assert difference_db(silence, tone(freq, 2.0, RATE)) > MAX_DIFFERENCE_DB
        assert difference_db(tone(freq, 2.0, RATE), silence) > MAX_DIFFERENCE_DB
    assert difference_db(silence, np.zeros(2 * RATE, np.float32)) == 0.0     # two silent files: alike
    assert difference_db(tone(1000, 2.0, RATE), 0.25 * tone(1000, 2.0, RATE)) < 0.01   # gain still ignored


@pytest.fixture
def hum_and_silence(tmp_path):
    lib = tmp_path / "lib"
    paths = [write(lib / "silence.wav", np.zeros(2 * SR, np.float32), SR),
             write(lib / "hum_1k.wav", tone(1000, 2.0, SR), SR),
             write(lib / "beep_3k.wav", tone(3000, 2.0, SR), SR),
             write(lib / "silence_24.wav", np.zeros(2 * SR, np.float32), SR, subtype="PCM_24")]
    return [str(p) for p in paths]


def test_silence_does_not_join_tones_into_a_group(hum_and_silence):
    paths = hum_and_silence
    vectors = np.ones((len(paths), 4), np.float32) / 2.0          # the vectors propose every pair
    report = find_duplicates(paths, vectors, np.full(len(paths), 2.0), np.array([1, 2, 3, 4]), per_file=None)
    assert [[p.rsplit("/", 1)[1] for p in g.paths] for g in report.groups] == [["silence.wav", "silence_24.wav"]]


def test_more_like_a_silent_file_does_not_mark_a_tone_as_its_recording(hum_and_silence):
    silence, hum, beep, silence_24 = hum_and_silence
    found = copies_of(silence, [(hum, 2.0, 1.0), (beep, 2.0, 1.0), (silence_24, 2.0, 1.0)])
    assert set(found) == {silence_24}


def test_duplicates_says_which_filter_value_no_file_has(tmp_path):
    lib = tmp_path / "lib"
    write(lib / "rain.wav", noise(2.0, SR, seed=1), SR)
    write(lib / "tone.wav", tone(440, 2.0, SR), SR)
    index_dir = tmp_path / "idx"
    assert build_index([lib], index_dir, FakeModel(), workers=1, progress=False).added == 2
    result = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--format", "xyz", "--no-progress"])
    assert result.exit_code == 0, result.stderr
    assert "no indexed file has format xyz (this index: WAV)" in result.stderr
    assert "no duplicates among 0 files" in result.stdout
    as_json = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--format", "xyz", "--json"])
    assert json.loads(as_json.stdout)["groups"] == [] and "no indexed file has format xyz" in as_json.stderr

"""Silent files and the loudness range (session 37): digital silence and a recording under the
−70 LUFS gate are stored as −120 (engine.loudness.SILENCE_DB). ``/facets`` and the page's
loudness slider gave that −120 as the quietest loudness, so the slider began at −120 LU; they
give the measured files' range now, as ``soundsift info`` does, and count the others apart
(``"silent_files"``). A loudness filter still counts such a file below any range."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine.filters import Filters
from engine.query import SoundIndex
from tests.conftest import noise, tone, write
from tests.test_ui import APP, no_exception, result_names
from ui.components.server import INDEX_ENV, MODEL_ENV

SR = 16_000
SILENT, HUSH, QUIET, LOUD = "silence.wav", "hush.wav", "quiet_tone.wav", "loud_tone.wav"


@pytest.fixture(scope="module")
def silent_index(tmp_path_factory, tiny_clap_dir) -> Path:  # noqa: F811
    """A tiny-CLAP index of digital silence, a room tone under the gate, a quiet and a loud tone."""
    from indexer import build_index
    base = tmp_path_factory.mktemp("silent_range39")
    root = base / "library"
    write(root / SILENT, np.zeros(2 * SR, dtype=np.float32), SR)
    write(root / HUSH, 3e-5 * noise(2.0, SR), SR)                   # every block under −70 LUFS
    write(root / QUIET, tone(997, 2.0, SR, amp=0.01), SR)            # about −43 LUFS
    write(root / LOUD, tone(997, 2.0, SR, amp=0.5), SR)              # about −9 LUFS
    summary = build_index([root], index=base / "index", model=str(tiny_clap_dir), workers=0, progress=False)
    assert summary.added == 4, summary
    return base / "index"


def _loudness(index_dir: Path) -> dict[str, float | None]:
    with SoundIndex.open(index_dir) as index:
        return {name: index.get_file(index.file_id_for_path(index_dir.parent / "library" / name))["levels"]
                ["loudness_lufs"] for name in (SILENT, HUSH, QUIET, LOUD)}


def test_facets_give_the_measured_range_and_count_the_silent_files(silent_index):
    levels = _loudness(silent_index)
    assert levels[SILENT] is None and levels[HUSH] is None
    quietest, loudest = levels[QUIET], levels[LOUD]
    assert -50 < quietest < -35 and -15 < loudest < -5
    with SoundIndex.open(silent_index) as index:
        facets = index.facets()
    assert facets["loudness"] == (quietest, loudest)        # was (-120.0, loudest)
    assert facets["silent_files"] == 2
    assert json.loads(json.dumps(facets))["silent_files"] == 2


def test_the_server_s_facets_say_the_same(silent_index):
    from ui.http_routes import _json
    with SoundIndex.open(silent_index) as index:
        body = json.loads(_json(index.facets()))
    assert body["loudness"][0] > -60 and body["silent_files"] == 2


def test_why_no_file_names_the_measured_quietest_and_keeps_silent_files_under_a_maximum(silent_index):
    """A maximum under every measured file still keeps the silent files (no sentence); a minimum
    over the loudest names the loudest; over an index whose measured files are all silent, a
    minimum says so, not "the loudest: -120.0"."""
    levels = _loudness(silent_index)
    with SoundIndex.open(silent_index) as index:
        facets = index.facets()
        assert index.why_no_file(Filters(max_loudness=-60)) == []
        kept = {Path(h.path).name for h in index.search_text("a tone", k=10, filters=Filters(max_loudness=-60))}
        assert kept == {SILENT, HUSH}
        said = index.why_no_file(Filters(min_loudness=0))
    assert said == [f"no indexed file is 0 LUFS or louder (the loudest: {levels[LOUD]:.1f})"]
    measured_only = {**facets, "silent_files": 0}
    assert Filters(max_loudness=-60).unavailable(measured_only) == [
        f"no indexed file is -60 LUFS or quieter (the quietest: {levels[QUIET]:.1f})"]
    all_silent = {**facets, "loudness": None}
    assert Filters(max_loudness=-60).unavailable(all_silent) == []
    assert Filters(min_loudness=-60).unavailable(all_silent) == [
        "no indexed file is -60 LUFS or louder (every measured one is silent or under -70)"]
    assert Filters(max_loudness=-130).unavailable(all_silent) == [
        "no indexed file is -130 LUFS or quieter (the quietest: silent or under -70)"]
    none = {**facets, "loudness": None, "silent_files": 0}
    assert Filters(min_loudness=-60).unavailable(none) == [
        "no indexed file has a measured loudness yet (`soundsift index` measures it)"]


def test_the_slider_keeps_silent_files_at_its_left_end_and_drops_them_one_step_right():
    from ui.components.sidebar import filters_from_choices, loudness_help, loudness_slider
    measured = (-43.2, -9.1)
    assert loudness_slider(measured) == (-44.0, -9.0)
    assert loudness_slider(measured, silent_files=2) == (-45.0, -9.0)
    assert loudness_slider((-23.0, -23.0), silent_files=1) == (-24.0, -23.0)     # one measured level: a slider still
    left = filters_from_choices(None, 2.0, None, [], [], loudness=(-45.0, -9.0), loudness_range=measured,
                                silent_files=2)
    assert (left.min_loudness, left.max_loudness, left.active) == (None, None, False)
    step = filters_from_choices(None, 2.0, None, [], [], loudness=(-44.0, -9.0), loudness_range=measured,
                                silent_files=2)
    assert (step.min_loudness, step.max_loudness) == (-44.0, None)
    assert "2 files silent or under -70 LUFS" in loudness_help(2) and "silent" not in loudness_help(0)


def test_the_page_s_slider_starts_at_the_quietest_measured_file(silent_index, monkeypatch):
    """The slider began at −120 LU; it begins one step left of the quietest measured file, which
    keeps the silent files, and one step right leaves them out and keeps every measured one."""
    levels = _loudness(silent_index)
    monkeypatch.setenv(INDEX_ENV, str(silent_index))
    monkeypatch.delenv(MODEL_ENV, raising=False)
    app = AppTest.from_file(str(APP), default_timeout=60)
    app.query_params["q"] = "a tone"
    app.run()
    no_exception(app)
    slider = app.sidebar.slider(key="f_loudness")
    low, high = slider.value
    assert (low, high) == (np.floor(levels[QUIET]) - 1, np.ceil(levels[LOUD]))
    assert "2 files silent or under -70 LUFS" in slider.help
    assert sorted(result_names(app)) == sorted([SILENT, HUSH, QUIET, LOUD])
    slider.set_value((low + 1, high)).run()
    no_exception(app)
    assert sorted(result_names(app)) == sorted([QUIET, LOUD])

"""A file converted in place keeps its tags when its new file and the deleted original fall in
different `--watch` runs (indexer.watch.RecentRuns, indexer.reencodes.AcrossRuns), and in a
`--rebuild` (indexer.rebuild); the rule stays one run's: another sound does not take them."""
from __future__ import annotations

import logging
import os
import threading

import soundfile as sf

from indexer import build_index
from indexer.watch import watch_index
from tests.conftest import tone
from tests.index_fakes import FakeModel
from tests.test_index_watch import start_watcher, wait_for
from tests.test_reencoded_in_place import RATE, convert, given, held, index, lib  # noqa: F401  (lib: a fixture)


def arrive(path, audio, rate, **kw):
    """``audio`` written beside ``path``'s folder, then moved to ``path`` whole (as a finished export)."""
    staged = path.parent.parent / ("staged" + path.suffix)
    sf.write(staged, audio, rate, **kw)
    os.replace(staged, path)
    return path


def test_unmatched_deleted_files_are_those_no_new_file_or_other_deleted_file_shares_a_name_with():
    from indexer.reencodes import unmatched
    deleted = ["/l/a.wav", "/l/b.wav", "/l/c.wav", "/l/c.aif", "/m/d.wav"]
    assert unmatched(deleted, ["/l/b.flac", "/l/d.flac"]) == ["/l/a.wav", "/m/d.wav"]


def test_a_watch_pairs_a_new_file_with_its_original_deleted_in_a_later_run(lib, tmp_path):
    idx = tmp_path / "idx"
    index(lib, idx)
    wav = lib / "Rain" / "rain_01.wav"
    given(idx, wav)
    audio, sr = sf.read(wav, dtype="float32")
    summaries, stop = [], threading.Event()
    watcher = start_watcher(lib, idx, FakeModel(), summaries, stop)
    try:
        wait_for(lambda: len(summaries) == 1)
        flac = arrive(wav.with_suffix(".flac"), audio, sr, subtype="PCM_16")
        wait_for(lambda: len(summaries) == 2)            # indexed as a new file: the .wav is still there
        assert (summaries[1].added, summaries[1].reencoded) == (1, 0)
        wav.unlink()
        wait_for(lambda: len(summaries) == 3)
    finally:
        stop.set()
        watcher.join(30)
    after = held(idx)
    assert str(wav) not in after
    assert after[str(flac)]["tags"] == ["keeper"]
    assert after[str(flac)]["captions"] == [("rain", "blat"), ("steady rain on a tin roof", "user")]
    assert after[str(flac)]["sheet"] == [("sheet:description", "Rain, tin roof, steady")]
    last = summaries[2]
    assert (last.reencoded, last.updated, last.removed) == (1, 1, 0)
    assert last.reencoded_files == [{"old": str(wav), "new": str(flac)}]


def test_a_watch_keeps_a_deleted_file_with_tags_for_its_conversion_arriving_in_a_later_run(lib, tmp_path):
    idx = tmp_path / "idx"
    index(lib, idx)
    wav = lib / "Rain" / "rain_01.wav"
    given(idx, wav)
    audio, sr = sf.read(wav, dtype="float32")
    summaries, stop = [], threading.Event()
    watcher = start_watcher(lib, idx, FakeModel(), summaries, stop)
    try:
        wait_for(lambda: len(summaries) == 1)
        wav.unlink()                                     # deleted first …
        wait_for(lambda: len(summaries) == 2)
        assert held(idx).get(str(wav), {}).get("tags") == ["keeper"]      # still indexed, waiting
        flac = arrive(wav.with_suffix(".flac"), audio, sr, subtype="PCM_16")     # … converted after
        wait_for(lambda: len(summaries) == 3)
    finally:
        stop.set()
        watcher.join(30)
    after = held(idx)
    assert str(wav) not in after and after[str(flac)]["tags"] == ["keeper"]
    assert after[str(flac)]["sheet"] == [("sheet:description", "Rain, tin roof, steady")]
    assert (summaries[2].reencoded, summaries[2].added, summaries[2].removed) == (1, 0, 0)
    assert (summaries[1].removed, summaries[1].kept_for_reencode, summaries[2].kept_for_reencode) == (0, 1, 0)


def test_a_kept_file_goes_when_its_wait_is_up_and_a_file_without_notes_goes_at_once(lib, tmp_path, caplog):
    idx = tmp_path / "idx"
    index(lib, idx)
    wav, other = lib / "Rain" / "rain_01.wav", lib / "Rain" / "rain_02.wav"
    given(idx, wav)
    summaries, stop = [], threading.Event()
    watcher = threading.Thread(target=watch_index,
                               args=([lib], idx, FakeModel()),
                               kwargs=dict(interval=0.05, on_run=summaries.append, stop=stop, workers=0,
                                           progress=False, settle=0.05, pair_within=0.5))
    wav.unlink()
    other.unlink()                                      # both seen by the watch's first run
    with caplog.at_level(logging.WARNING):
        watcher.start()
        try:
            wait_for(lambda: len(summaries) == 1)
            assert (summaries[0].removed, summaries[0].kept_for_reencode) == (1, 1)     # rain_02 has no notes
            assert str(wav) in held(idx)
            wait_for(lambda: len(summaries) == 2)        # no change on disk: the wait is up
        finally:
            stop.set()
            watcher.join(30)
    assert (summaries[1].removed, summaries[1].kept_for_reencode) == (1, 0)
    assert set(held(idx)) == {str(lib / "beep.wav")}
    assert f"{wav} (keeper, caption: steady rain on a tin roof" in caplog.text     # said as it goes


def test_another_sound_arriving_later_does_not_take_the_tags(lib, tmp_path):
    """The rule across runs is one run's: a file of the name that is another sound is a new file."""
    from indexer.reencodes import AcrossRuns
    idx = tmp_path / "idx"
    index(lib, idx)
    wav = lib / "Rain" / "rain_01.wav"
    given(idx, wav)
    across = AcrossRuns()
    wav.unlink()
    first = build_index([str(lib)], idx, FakeModel(), workers=0, progress=False, across=across)
    assert across.kept == [str(wav)] and first.removed == 0
    flac = arrive(wav.with_suffix(".flac"), tone(440, 3.0, RATE), RATE)
    second = build_index([str(lib)], idx, FakeModel(), workers=0, progress=False, across=AcrossRuns())
    after = held(idx)
    assert str(wav) not in after and after[str(flac)]["tags"] == []
    assert (second.reencoded, second.added, second.removed) == (0, 1, 1)


def test_a_rebuild_carries_the_rows_of_a_file_converted_in_place_and_not_of_another_sound(lib, tmp_path, caplog):
    idx = tmp_path / "idx"
    index(lib, idx)
    wav, rain2 = lib / "Rain" / "rain_01.wav", lib / "Rain" / "rain_02.wav"
    given(idx, wav)
    given(idx, rain2)
    flac = convert(wav, ".flac", subtype="PCM_16")
    other = convert(rain2, ".flac", data=tone(440, 3.0, RATE))      # another sound under rain_02's name
    with caplog.at_level(logging.WARNING):
        summary = build_index([str(lib)], idx, FakeModel(), workers=0, progress=False, rebuild=True)
    after = held(idx)
    assert str(wav) not in after and str(rain2) not in after
    assert after[str(flac)]["tags"] == ["keeper"]
    assert after[str(flac)]["captions"] == [("rain", "blat"), ("steady rain on a tin roof", "user")]
    assert after[str(flac)]["sheet"] == [("sheet:description", "Rain, tin roof, steady")]
    assert after[str(other)]["tags"] == [] and after[str(other)]["sheet"] == []
    assert (summary.reencoded, summary.updated, summary.added, summary.removed) == (1, 2, 1, 1)
    assert summary.reencoded_files == [{"old": str(wav), "new": str(flac)}]
    assert summary.carried_over == {"tags": 1, "captions": 2}
    assert f"{rain2} (keeper" in caplog.text and f"{wav} (keeper" not in caplog.text     # only rain_02's said lost


def test_a_rebuild_with_another_model_pairs_nothing_when_the_old_one_cannot_be_loaded(lib, tmp_path, caplog):
    idx = tmp_path / "idx"
    index(lib, idx)
    wav = lib / "Rain" / "rain_01.wav"
    given(idx, wav)
    flac = convert(wav, ".flac", subtype="PCM_16")
    with caplog.at_level(logging.WARNING):
        summary = build_index([str(lib)], idx, FakeModel("fake2", "fake-v2"), workers=0, progress=False,
                              rebuild=True)
    assert held(idx)[str(flac)]["tags"] == [] and summary.reencoded == 0
    assert "may have been converted in place since the index was last run" in caplog.text
    assert f"{wav} → rain_01.flac" in caplog.text


def test_a_watch_forgets_what_its_runs_added_and_lets_kept_files_go_after_its_window():
    from indexer.reencodes import AcrossRuns
    from indexer.runner import IndexSummary
    from indexer.watch import RecentRuns
    recent, none = RecentRuns(window=10.0), IndexSummary(index="i")
    recent.after_run(AcrossRuns(added=["/l/a.flac", "/l/c.flac"], kept=["/l/b.wav"]), 0.0, none)
    assert recent.for_run(5.0) == AcrossRuns(arrived=frozenset({"/l/a.flac", "/l/c.flac"}))
    recent.after_run(AcrossRuns(kept=["/l/b.wav"]), 5.0,            # kept again: still since 0.0
                     IndexSummary(index="i", reencoded_files=[{"old": "/l/c.wav", "new": "/l/c.flac"}]))
    assert recent.for_run(6.0).arrived == {"/l/a.flac"}            # c.flac took c.wav's rows: new for no other
    assert not recent.due(9.9) and recent.due(10.0)
    assert recent.for_run(10.0) == AcrossRuns(let_go=frozenset({"/l/b.wav"}))

"""engine.loudness: peak and BS.1770-4 integrated loudness, measured while decoding."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import sosfilt

from engine.loudness import SILENCE_DB, LevelMeter, _lufs, k_weighting


def measure(x: np.ndarray, sr: int, chunk: int = 7_919) -> dict[str, float]:
    meter = LevelMeter(sr, x.shape[1])
    for i in range(0, len(x), chunk):               # blocks that do not line up with the 100 ms steps
        meter.add(x[i:i + chunk])
    return meter.result()


def reference(x: np.ndarray, sr: int) -> float:
    """BS.1770-4 with the K-weighting filter run in time (scipy), gated as the standard says."""
    y = sosfilt(k_weighting(sr), x, axis=0)
    step = int(round(0.1 * sr))
    n = len(y) // step
    steps = (y[:n * step] ** 2).reshape(n, step, -1).mean(axis=1).sum(axis=1)
    blocks = np.convolve(steps, np.ones(4) / 4, mode="valid")
    loud = [z for z in blocks if _lufs(z) > -70]
    gate = _lufs(np.mean(loud)) - 10
    return _lufs(np.mean([z for z in loud if _lufs(z) > gate]))


def test_k_weighting_at_48_khz_is_the_standards_table():
    np.testing.assert_allclose(k_weighting(48_000), [
        [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241, 0.73248077421585],
        [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]], atol=1e-9)


def test_a_full_scale_997_hz_tone_reads_minus_3_lufs():
    sr = 48_000
    tone = np.sin(2 * np.pi * 997 * np.arange(5 * sr) / sr)[:, None]
    assert measure(tone, sr) == {"peak_dbfs": 0.0, "loudness_lufs": -3.0}
    assert measure(0.1 * tone, sr) == {"peak_dbfs": -20.0, "loudness_lufs": -23.0}
    assert measure(np.hstack([tone, tone]), sr)["loudness_lufs"] == 0.0          # two channels add


@pytest.mark.parametrize("sr", [16_000, 44_100, 48_000])
def test_frequency_domain_steps_agree_with_the_filter_run_in_time(sr):
    rng = np.random.default_rng(sr)
    t = np.arange(4 * sr) / sr
    signals = {"rumble": 0.5 * np.sin(2 * np.pi * 20 * t)[:, None],
               "mains": 0.5 * np.sin(2 * np.pi * 50 * t)[:, None],
               "noise": 0.1 * rng.standard_normal((len(t), 2)),
               "sweep": np.sin(2 * np.pi * (20 * t + (sr / 4 - 20) / 8 * t * t))[:, None]}
    for name, x in signals.items():
        assert measure(x, sr)["loudness_lufs"] == pytest.approx(reference(x, sr), abs=0.1), name


def test_gates_silence_and_short_clips():
    sr = 16_000
    tone = np.sin(2 * np.pi * 997 * np.arange(3 * sr) / sr)[:, None]
    quiet_tail = np.vstack([0.1 * tone, 0.0001 * tone])     # 3 s at −23 LUFS, 3 s at −83: gated out
    assert measure(quiet_tail, sr)["loudness_lufs"] == pytest.approx(reference(quiet_tail, sr), abs=0.1)
    assert measure(quiet_tail, sr)["loudness_lufs"] == pytest.approx(-23.0, abs=0.3)   # not −26: gated out
    assert measure(np.zeros((sr, 2)), sr) == {"peak_dbfs": SILENCE_DB, "loudness_lufs": SILENCE_DB}
    click = measure(0.5 * tone[: sr // 10], sr)              # 100 ms: one block of what there is
    assert click["peak_dbfs"] == pytest.approx(-6.0, abs=0.05)
    assert click["loudness_lufs"] == pytest.approx(-9.0, abs=0.1)


def test_the_indexer_measures_each_file_and_searches_filter_by_it(tmp_path):
    """Levels stored at indexing (on the native channels), kept when the metadata is read
    again, filtered on, and shown on the page's cards."""
    from engine.catalog import Meta, set_meta
    from engine.filters import Filters
    from engine.query import SoundIndex
    from indexer import build_index
    from tests.conftest import catalog_session, write
    from tests.index_fakes import FakeModel
    sr = 48_000
    tone = np.sin(2 * np.pi * 997 * np.arange(3 * sr) / sr)
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    write(lib / "hot.wav", 0.999 * tone, sr)
    write(lib / "room_tone.wav", np.stack([0.01 * tone, 0.01 * tone], 1), sr)    # −40 dBFS on both channels
    write(lib / "speech.flac", 0.1 * tone, sr)
    build_index([lib], idx, FakeModel(), workers=1, progress=False)

    def loudness(**bounds) -> list[str]:
        with SoundIndex.open(idx, model=FakeModel()) as index:
            return sorted(h.path.rsplit("/", 1)[1] for h in index.search_text("x", k=10, filters=Filters(**bounds)))
    with SoundIndex.open(idx, model=FakeModel()) as index:
        levels = {h.path.rsplit("/", 1)[1]: index.get_file(h.file_id)["levels"] for h in index.search_text("x", k=10)}
    assert levels == {"hot.wav": {"peak_dbfs": 0.0, "loudness_lufs": -3.0},
                      "room_tone.wav": {"peak_dbfs": -40.0, "loudness_lufs": -40.0},
                      "speech.flac": {"peak_dbfs": -20.0, "loudness_lufs": -23.0}}
    assert loudness(max_loudness=-30) == ["room_tone.wav"]
    assert loudness(min_loudness=-30, max_loudness=-10) == ["speech.flac"]

    with catalog_session(idx, write=True) as s:             # an older reader: the metadata is read again
        s.query(Meta).filter(Meta.key == "metadata_reader").delete()
        set_meta(s, metadata_reader=1)
    assert build_index([lib], idx, FakeModel(), workers=1, progress=False).metadata_reread == 3
    assert loudness(max_loudness=-30) == ["room_tone.wav"]                       # measured levels kept

    from ui.components.library import Library
    with SoundIndex.open(idx, model=FakeModel()) as index:
        fid = index.file_id_for_path(lib / "room_tone.wav")
    assert Library(idx).files([fid])[fid].levels == "-40.0 LUFS · peak -40.0 dBFS"


def test_files_indexed_before_levels_were_measured_are_measured_once(tmp_path, caplog):
    """An index from before session 20 (no levels) gains them on its next run without embedding
    anything: an open SoundIndex's loudness filter sees them, a file unreadable now is retried by
    the next run, and a third run has nothing left to measure."""
    import logging
    import os

    from engine.catalog import FileMetadata
    from engine.filters import Filters
    from engine.query import SoundIndex
    from indexer import build_index
    from tests.conftest import catalog_session, write
    from tests.index_fakes import FakeModel
    sr = 44_100
    tone = np.sin(2 * np.pi * 997 * np.arange(2 * sr) / sr)
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    write(lib / "hot.wav", 0.999 * tone, sr)
    write(lib / "room_tone.wav", 0.01 * tone, sr)
    write(lib / "speech.wav", 0.1 * tone, sr)
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    with catalog_session(idx, write=True) as s:               # as an index from before session 20
        s.query(FileMetadata).filter(FileMetadata.key.in_(["peak_dbfs", "loudness_lufs"])).delete()
    speech = lib / "speech.wav"                                # unreadable now, same size and times
    st = speech.stat()
    saved = speech.read_bytes()
    speech.write_bytes(b"\0" * st.st_size)
    os.utime(speech, ns=(st.st_atime_ns, st.st_mtime_ns))

    with SoundIndex.open(idx, model=FakeModel()) as index:
        def quiet() -> list[str]:
            return sorted(h.path.rsplit("/", 1)[1] for h in index.search_text("x", k=10, filters=Filters(max_loudness=-30)))
        assert quiet() == []                                   # nothing measured: the filter keeps none
        model = FakeModel()
        with caplog.at_level(logging.WARNING, logger="indexer.level_refresh"):
            summary = build_index([lib], idx, model, workers=1, progress=False)
        assert (summary.levels_measured, summary.added, summary.updated, len(model.calls)) == (2, 0, 0, 0)
        assert "loudness" in summary.timings
        assert any("speech.wav" in r.getMessage() for r in caplog.records)
        assert quiet() == ["room_tone.wav"]                    # the open index sees them, same generation

    speech.write_bytes(saved)
    os.utime(speech, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert build_index([lib], idx, FakeModel(), workers=0, progress=False).levels_measured == 1
    assert build_index([lib], idx, FakeModel(), workers=0, progress=False).levels_measured == 0
    with SoundIndex.open(idx, model=FakeModel()) as index:
        levels = {h.path.rsplit("/", 1)[1]: index.get_file(h.file_id)["levels"] for h in index.search_text("x", k=10)}
    assert levels == {"hot.wav": {"peak_dbfs": 0.0, "loudness_lufs": -3.0},
                      "room_tone.wav": {"peak_dbfs": -40.0, "loudness_lufs": -43.0},     # a mono sine: 3 dB below its peak
                      "speech.wav": {"peak_dbfs": -20.0, "loudness_lufs": -23.0}}

"""Duplicates (engine.duplicates, `soundsift duplicates`): the same recording as a copy, an MP3,
a quieter FLAC at another rate is one group; another take of the same sound, and another stretch
of the same noise, are not, although the stored vectors propose them."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import soxr
from typer.testing import CliRunner

from engine.audio import decode
from engine.duplicates import RATE, candidate_pairs, closest_per_file, difference_db, find_duplicates
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app
from ui.components.overview_tab import OVERVIEW, TAB_KEY

SR = 44100


def take(seed: int, seconds: float = 3.0) -> np.ndarray:
    """Six noise bursts at random moments over a faint bed: one "take" of a door-slam series."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    bursts = np.exp(-((t[:, None] - rng.uniform(0, seconds, 6)) ** 2) / 0.01).sum(1)
    return (0.3 * rng.standard_normal(len(t)) * bursts + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    lib = tmp_path_factory.mktemp("dup_lib")
    slam = take(1)
    original = write(lib / "doors" / "slam.wav", slam, SR)
    (lib / "copies").mkdir()
    shutil.copy(original, lib / "copies" / "slam copy.wav")
    (lib / "mp3").mkdir()
    sf.write(str(lib / "mp3" / "slam.mp3"), slam, SR, format="MP3")
    write(lib / "quiet" / "slam.flac", 0.3 * soxr.resample(slam, SR, 48000), 48000)
    write(lib / "doors" / "slam_take2.wav", take(2), SR)                 # the same kind of sound, not the same
    rain = write(lib / "weather" / "rain.wav", noise(3.0, SR, seed=5), SR)
    shutil.copy(rain, lib / "weather" / "rain (1).wav")
    write(lib / "weather" / "rain_other.wav", noise(3.0, SR, seed=6), SR)  # same spectrum, another stretch
    write(lib / "tone.wav", tone(440, 3.0, SR), SR)
    index_dir = tmp_path_factory.mktemp("dup_idx") / "i"
    summary = build_index([lib], index_dir, FakeModel(), workers=1, progress=False)
    assert summary.added == 9 and summary.failed == 0
    return lib, index_dir


def heard(path) -> np.ndarray:
    return decode(str(path), RATE)


def test_the_audio_check_ignores_codec_gain_rate_and_lead_in_not_the_take(library):
    lib, _ = library
    slam = heard(lib / "doors" / "slam.wav")
    for other in ("mp3/slam.mp3", "quiet/slam.flac", "copies/slam copy.wav"):
        assert difference_db(slam, heard(lib / other)) < 0.5, other
    assert difference_db(slam, heard(lib / "doors" / "slam_take2.wav")) > 3.0
    assert difference_db(heard(lib / "weather" / "rain.wav"), heard(lib / "weather" / "rain_other.wav")) > 2.0
    for lead_in in (0.0123, 0.2):                      # a few ms, or a longer lead-in: aligned to the sample
        late = np.concatenate([np.zeros(int(lead_in * RATE), np.float32), slam])
        assert difference_db(slam, late) < 0.1 and difference_db(late, slam) < 0.1
    assert difference_db(slam, -slam) < 0.01           # polarity inverted
    assert difference_db(np.zeros(RATE, np.float32), np.zeros(RATE // 2, np.float32)) == 0.0


def test_candidates_are_paired_within_the_duration_window_only():
    v = np.array([[1, 0], [1, 0], [0.6, 0.8], [1, 0], [1, 0]], np.float32)
    d = np.array([10.0, 10.1, 10.0, 10.5, 2.0])
    # 10.0 and 10.1 (within 0.2 s), not 10.5 (beyond 2 %), not 2.0; row 2 points elsewhere
    assert [(i, j) for i, j, _ in candidate_pairs(v, d, 0.95)] == [(0, 1)]
    assert sorted((i, j) for i, j, _ in candidate_pairs(v, d, 0.5)) == [(0, 1), (0, 2), (1, 2)]
    assert candidate_pairs(v[:0], d[:0]) == []


def test_each_file_meets_its_closest_files_only():
    # file 0 has a copy (file 5, cosine 0.999) among four look-alikes; file 6 has one partner only
    i = np.array([0, 0, 0, 0, 0, 1, 1, 6])
    j = np.array([1, 2, 3, 4, 5, 2, 3, 7])
    cos = np.array([0.95, 0.96, 0.94, 0.97, 0.999, 0.93, 0.92, 0.91], np.float32)
    ki, kj, kc = closest_per_file(i, j, cos, 2)
    kept = set(zip(ki.tolist(), kj.tolist()))
    # 0's two closest (5, 4); 1's (1-0 and 1-2, 0.95 and 0.93); 2's (0-2 0.96, 1-2); 3's (0-3 0.94, 1-3);
    # 4's only pair and 5's; 6-7 for both; 0-3 stays as 3's closest though 0 has closer ones
    assert kept == {(0, 5), (0, 4), (0, 1), (1, 2), (0, 2), (0, 3), (1, 3), (6, 7)}
    assert list(zip(ki.tolist(), kj.tolist())) == [p for p in zip(i.tolist(), j.tolist()) if p in kept]
    ki, kj, _ = closest_per_file(i, j, cos, 1)                  # one each: the copy is still compared
    # 0's closest is its copy; 1, 2, 3 and 4 each keep their pair with 0; 6-7 stays; 1-2 and 1-3 go
    assert set(zip(ki.tolist(), kj.tolist())) == {(0, 5), (0, 1), (0, 2), (0, 3), (0, 4), (6, 7)}


def test_copies_are_found_among_many_look_alikes(tmp_path):
    # eight takes of one kind of sound that the vectors cannot tell apart, and one copy of take 0:
    # with two pairs per file, 8 of the 36 pairs are compared and the copy is among them
    lib = tmp_path / "lib"
    for k in range(8):
        write(lib / f"take{k}.wav", take(20 + k, 1.0), SR)
    shutil.copy(lib / "take0.wav", lib / "take0 copy.wav")
    build_index([lib], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        fv = index.file_vectors()
    same = np.tile(fv.vectors[:1], (len(fv.paths), 1))          # every file at cosine 1 to every other
    copy = [k for k, p in enumerate(fv.paths) if p.endswith("take0 copy.wav")][0]
    original = [k for k, p in enumerate(fv.paths) if p.endswith("take0.wav")][0]
    noise_ = np.random.default_rng(0).standard_normal(same.shape).astype(np.float32) * 0.01
    noise_[copy] = noise_[original]                               # the copy's vector is the original's
    vectors = (same + noise_) / np.linalg.norm(same + noise_, axis=1, keepdims=True)
    report = find_duplicates(fv.paths, vectors, fv.durations, fv.sizes, per_file=2)
    assert [[p.rsplit("/", 1)[1] for p in g.paths] for g in report.groups] == [["take0 copy.wav", "take0.wav"]]
    assert report.candidates + report.left_out == 36 and report.candidates <= 2 * 9
    everything = find_duplicates(fv.paths, vectors, fv.durations, fv.sizes, per_file=None)
    assert everything.candidates == 36 and everything.left_out == 0
    assert [g.paths for g in everything.groups] == [g.paths for g in report.groups]


def test_ctrl_c_keeps_the_groups_confirmed_so_far(library):
    _, index_dir = library
    with SoundIndex.open(index_dir, model=FakeModel()) as index:
        fv = index.file_vectors()
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 3:
            raise KeyboardInterrupt
    report = find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes, progress=progress)
    assert seen[0] == (0, report.candidates) and seen[-1][0] == 3 == report.compared
    assert report.interrupted and report.compared < report.candidates
    full = find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes)
    assert report.confirmed <= 3 and len(report.groups) <= len(full.groups)
    for g in report.groups:                          # each partial group lies inside a full one
        assert any(set(g.paths) <= set(f.paths) for f in full.groups)


def test_cli_ctrl_c_prints_what_it_found_and_exits_130(library, monkeypatch):
    from engine import duplicates as dup
    _, index_dir = library
    calls = []
    real = dup._Recordings.difference

    def difference(self, i, j):
        calls.append((i, j))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, i, j)
    monkeypatch.setattr(dup._Recordings, "difference", difference)
    result = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--json", "--no-progress"])
    assert result.exit_code == 130, result.output
    assert "interrupted: 1 of" in result.stderr and "pairs compared" in result.stderr
    document = json.loads(result.stdout)
    groups = document["groups"]
    assert document["interrupted"] is True and document["compared"] < document["candidates"]
    assert len(groups) <= 1 and all(len(g["paths"]) == 2 for g in groups)


def test_cli_says_how_many_pairs_and_what_the_cap_left_out(library, caplog):
    _, index_dir = library
    result = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--json", "--per-file", "1"])
    assert result.exit_code == 0, result.output
    assert "comparing" in result.stderr and "pairs of 9 files on their audio" in result.stderr
    assert "not compared: each file meets its 1 closest (--per-file)" in result.stderr
    everything = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--json", "--per-file", "0"])
    assert "not compared" not in everything.stderr
    assert sorted(len(g["paths"]) for g in json.loads(everything.stdout)["groups"]) == [2, 4]


def test_off_a_terminal_it_logs_how_far_it_got_and_how_long_is_left(library, caplog, monkeypatch):
    from engine import duplicates as dup
    _, index_dir = library
    with SoundIndex.open(index_dir, model=FakeModel()) as index:
        fv = index.file_vectors()
    with caplog.at_level("INFO", logger="engine.duplicates"):
        report = find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes, report_every=0.0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == f"comparing {report.candidates} pairs of 9 files on their audio"
    assert len(lines) == report.candidates and all(" left" in line for line in lines[1:])  # none at the end
    assert lines[1].startswith(f"compared 1 of {report.candidates} pairs, about ")
    # the estimate weighs pairs by their audio: half the pairs but 3/10 of the work in 10 s: 23 s left, not 10
    monkeypatch.setattr(dup.time, "perf_counter", iter([0.0, 10.0]).__next__)
    pace = dup._Pace(np.array([0.0, 1.0, 2.0, 3.0]), 5, every=0.0)     # work 1, 2, 3, 4 (with the overhead)
    with caplog.at_level("INFO", logger="engine.duplicates"):
        caplog.clear()
        pace.log(2)
    assert caplog.records[0].getMessage() == "compared 2 of 4 pairs, about 23 s left"


def test_groups_from_an_index(library):
    lib, index_dir = library
    with SoundIndex.open(index_dir, model=FakeModel()) as index:
        fv = index.file_vectors()
    report = find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes)
    names = [[p.removeprefix(str(lib.resolve()) + "/") for p in g.paths] for g in report.groups]
    assert sorted(names) == [["copies/slam copy.wav", "doors/slam.wav", "mp3/slam.mp3", "quiet/slam.flac"],
                             ["weather/rain (1).wav", "weather/rain.wav"]]
    identical = {tuple(n): g.identical for n, g in zip(names, report.groups)}
    assert identical == {("weather/rain (1).wav", "weather/rain.wav"): True,
                         ("copies/slam copy.wav", "doors/slam.wav", "mp3/slam.mp3", "quiet/slam.flac"): False}
    # the vectors proposed the other take and the other rain too; the audio turned them down
    proposed = {frozenset((fv.paths[i], fv.paths[j])) for i, j, _ in candidate_pairs(fv.vectors, fv.durations)}
    root = str(lib.resolve())
    assert frozenset((f"{root}/doors/slam.wav", f"{root}/doors/slam_take2.wav")) in proposed
    assert frozenset((f"{root}/weather/rain.wav", f"{root}/weather/rain_other.wav")) in proposed
    # one confirmed pair per file joining a group: pairs inside a group already joined are not compared
    assert report.candidates > report.confirmed == 3 + 1
    assert report.compared == report.candidates and not report.interrupted and report.left_out == 0


def test_cli_json_and_filters(library):
    lib, index_dir = library
    result = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    groups = json.loads(result.stdout)["groups"]
    assert sorted(len(g["paths"]) for g in groups) == [2, 4]
    assert all(set(g) == {"paths", "durations", "difference_db", "identical", "keep", "formats", "same_file"} for g in groups)
    assert [g["difference_db"] for g in groups] == sorted(g["difference_db"] for g in groups)
    assert groups[0]["identical"] and groups[0]["difference_db"] == 0.0
    only_weather = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--json",
                                            "--path-prefix", str(lib.resolve() / "weather")])
    assert [len(g["paths"]) for g in json.loads(only_weather.stdout)["groups"]] == [2]
    table = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--format", "mp3"])
    assert table.exit_code == 0 and "no duplicates among 1 file\n" in table.stdout


def test_a_file_gone_since_indexing_is_reported_and_left_out(tmp_path, caplog):
    lib = tmp_path / "lib"
    a = write(lib / "a.wav", take(3), SR)
    shutil.copy(a, lib / "b.wav")
    shutil.copy(a, lib / "c.wav")
    build_index([lib], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    (lib / "b.wav").unlink()
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        fv = index.file_vectors()
    with caplog.at_level("WARNING", logger="engine.duplicates"):
        report = find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes)
    assert [e.path for e in report.unreadable] == [str((lib / "b.wav").resolve())]     # once, for 2 pairs
    assert report.unreadable[0].reason == "not found: deleted or renamed since it was listed"
    assert caplog.text.count("b.wav") == 1
    assert [[p.rsplit("/", 1)[1] for p in g.paths] for g in report.groups] == [["a.wav", "c.wav"]]
    assert report.groups[0].identical and report.candidates == 3 and report.confirmed == 1


def test_the_page_finds_them_on_request(tmp_path, tiny_clap_dir, monkeypatch):
    from tests.ui_library import page_on
    lib = tmp_path / "lib"
    slam = take(4)
    write(lib / "doors" / "slam.wav", slam, SR)
    sf.write(str(lib / "slam.mp3"), slam, SR, format="MP3")
    write(lib / "tone.wav", tone(330, 3.0, SR), SR)
    build_index([lib], tmp_path / "idx", str(tiny_clap_dir), workers=0, progress=False)
    page = page_on(tmp_path / "idx", monkeypatch)
    page.session_state[TAB_KEY] = OVERVIEW          # the Overview is drawn when it is open
    page.run()
    assert any(c.value == "Look for files that hold the same recording twice." for c in page.caption)
    next(b for b in page.button if b.label == "Find duplicates").click().run()
    assert not page.exception
    assert any(c.value.startswith("1 group of duplicates among 3 files") for c in page.caption)
    table = page.dataframe[0].value
    assert list(table["file"]) == ["doors/slam.wav", "slam.mp3"] and list(table["group"]) == [1, 1]
    assert not table["identical bytes"].any() and (table["difference (dB)"] < 1.0).all()
    assert list(table["keep"]) == [True, False]                 # the WAV, not its MP3
    assert list(table["format"]) == ["WAV 16-bit 44.1 kHz 1 ch", "MP3 (lossy) 44.1 kHz 1 ch"]


def test_the_page_marks_hard_links(tmp_path, tiny_clap_dir, monkeypatch):
    """Two names of one file are a group whose rows say "hard link": deleting one frees nothing."""
    import os
    from tests.ui_library import page_on
    lib = tmp_path / "lib"
    write(lib / "slam.wav", take(4), SR)
    os.link(lib / "slam.wav", lib / "slam_linked.wav")
    write(lib / "tone.wav", tone(330, 3.0, SR), SR)
    build_index([lib], tmp_path / "idx", str(tiny_clap_dir), workers=0, progress=False)
    page = page_on(tmp_path / "idx", monkeypatch)
    page.session_state[TAB_KEY] = OVERVIEW
    page.run()
    next(b for b in page.button if b.label == "Find duplicates").click().run()
    assert not page.exception
    table = page.dataframe[0].value
    assert list(table["file"]) == ["slam.wav", "slam_linked.wav"]
    assert list(table["hard link"]) == [True, True] and table["identical bytes"].all()


def test_the_page_says_which_files_it_could_not_read(tmp_path, tiny_clap_dir, monkeypatch):
    from tests.ui_library import page_on
    lib = tmp_path / "lib"
    a = write(lib / "a.wav", take(5), SR)
    shutil.copy(a, lib / "b.wav")
    build_index([lib], tmp_path / "idx", str(tiny_clap_dir), workers=0, progress=False)
    (lib / "b.wav").unlink()
    page = page_on(tmp_path / "idx", monkeypatch)
    page.session_state[TAB_KEY] = OVERVIEW          # the Overview is drawn when it is open
    page.run()
    next(b for b in page.button if b.label == "Find duplicates").click().run()
    assert not page.exception
    assert any(c.value == "No duplicates among 2 files." for c in page.caption)
    from tests.ui_library import as_shown
    assert [as_shown(w.value) for w in page.warning] == [
        "1 file could not be read to compare it: b.wav: not found: deleted or renamed since it was listed"]


def test_copies_of_a_query_among_more_like_this_results(library):
    from engine.duplicates import copies_of
    lib, _ = library
    r = {name: str((lib / name).resolve()) for name in ("doors/slam.wav", "copies/slam copy.wav", "mp3/slam.mp3",
                                                         "quiet/slam.flac", "doors/slam_take2.wav", "tone.wav")}
    candidates = [(r["doors/slam.wav"], 3.0, 1.0), (r["mp3/slam.mp3"], 3.0, 0.99), (r["quiet/slam.flac"], 3.0, 0.93),
                  (r["doors/slam_take2.wav"], 3.0, 0.97), (r["tone.wav"], 3.0, 0.95),
                  (r["copies/slam copy.wav"], 3.0, 0.6)]           # a copy the vectors put far away: not decoded
    copies = copies_of(r["doors/slam.wav"], candidates)
    assert set(copies) == {r["mp3/slam.mp3"], r["quiet/slam.flac"]} and max(copies.values()) < 0.5
    assert copies_of(r["doors/slam.wav"], candidates[:1]) == {}        # the file itself is not its copy
    assert copies_of(str(lib / "gone.wav"), candidates) == {}          # a query gone since: no marks, no error


@pytest.fixture(scope="module")
def clap_library(tmp_path_factory, tiny_clap_dir):
    lib = tmp_path_factory.mktemp("copies_lib")
    slam = take(6)
    write(lib / "doors" / "slam.wav", slam, SR)
    sf.write(str(lib / "slam.mp3"), slam, SR, format="MP3")
    write(lib / "tone.wav", tone(330, 3.0, SR), SR)
    index_dir = tmp_path_factory.mktemp("copies_idx") / "i"
    build_index([lib], index_dir, str(tiny_clap_dir), workers=0, progress=False)
    return lib.resolve(), index_dir


def test_similar_marks_the_copies_of_its_file(clap_library):
    lib, index_dir = clap_library
    result = CliRunner().invoke(app, ["similar", str(lib / "doors" / "slam.wav"), "--index", str(index_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    marks = {h["path"].removeprefix(str(lib) + "/"): h.get("same_recording", "absent")
             for h in json.loads(result.stdout)}
    assert marks == {"doors/slam.wav": True, "slam.mp3": True, "tone.wav": False}    # every hit says; its own: true
    table = CliRunner().invoke(app, ["similar", str(lib / "doors" / "slam.wav"), "--index", str(index_dir)])
    assert table.exit_code == 0 and "same recording" in table.stdout
    spans = CliRunner().invoke(app, ["similar", str(lib / "doors" / "slam.wav"), "--index", str(index_dir),
                                     "--json", "--start", "0", "--end", "2"])
    assert all("same_recording" not in h for h in json.loads(spans.stdout))   # a moment, not the recording


def test_more_like_this_on_the_page_badges_the_copies(clap_library, monkeypatch):
    from tests.ui_library import page_on
    lib, index_dir = clap_library
    with SoundIndex.open(index_dir) as index:
        fid = index.file_id_for_path(lib / "doors" / "slam.wav")
    page = page_on(index_dir, monkeypatch)
    page.run()
    page.session_state["search_by"] = {"kind": "similar", "file_id": fid, "name": "slam.wav"}
    page.run()
    assert not page.exception
    cards = [md.value for md in page.markdown if md.value.startswith("**") or "same recording" in md.value]
    assert cards[:2] == ["**1. slam.wav**", "**2. slam.mp3**"]
    assert cards[2] == ":orange-badge[:material/content_copy: same recording]" and len(cards) == 4

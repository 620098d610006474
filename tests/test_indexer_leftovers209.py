"""Three indexer leftovers (helper 209, session 41, found by helpers 206 and 196):

1. A run with nothing to decode (the library unchanged) started a decoder worker process all
   the same; the workers now start only when there is a file to decode.
2. ``tags add TAG ._rain.wav`` (macOS metadata, which the scan passes over as a system file) said
   "not in the index (index it first)": it now says the file is one soundsift passes over, and why.
3. An ``index --rebuild --json`` interrupted by Ctrl-C printed no summary: it now prints one,
   ``"interrupted": true``, the index as it was, with the time of the stages that ran.
"""
from __future__ import annotations

import json

import indexer.decode
from engine.system_files import APPLEDOUBLE_MAGIC
from indexer import build_index
from tests.conftest import tone, write
from tests.index_fakes import CtrlCAtCall, FakeModel
from tests.test_rough_edges206 import STAGES, _one_line, _run, fake_model_cli  # noqa: F401 (a fixture)

SR = 16_000

# --- 1. no decoder process for a run with nothing to decode --------------------------------------

def test_a_run_over_an_unchanged_library_starts_no_decoder_process(tmp_path, monkeypatch):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    write(lib / "a.wav", tone(300, 1.0, SR), SR)
    write(lib / "b.wav", tone(500, 1.0, SR), SR)
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    spawned: list[int] = []
    real_spawn = indexer.decode.DecodePool._spawn

    def counted_spawn(pool, *args, **kwargs):
        spawned.append(1)
        return real_spawn(pool, *args, **kwargs)
    monkeypatch.setattr(indexer.decode.DecodePool, "_spawn", counted_spawn)

    again = build_index([lib], idx, FakeModel(), workers=2, progress=False)
    assert again.unchanged == 2 and again.added == 0
    assert spawned == []                                # was 2: the pool started for no file
    assert again.timings["decode"] == 0.0

    write(lib / "c.wav", tone(700, 1.0, SR), SR)        # one file to decode: the workers start
    third = build_index([lib], idx, FakeModel(), workers=2, progress=False)
    assert third.added == 1 and third.unchanged == 2
    assert len(spawned) == 2


# --- 2. tags add on a macOS metadata file -------------------------------------------------------

def test_tags_add_on_a_macos_metadata_file_says_soundsift_passes_it_over(tmp_path):
    lib, idx = (tmp_path / "lib").resolve(), tmp_path / "idx"
    write(lib / "rain.wav", tone(440, 1.0, SR), SR)
    (lib / "._rain.wav").write_bytes(APPLEDOUBLE_MAGIC + b"\x00\x02\x00\x00Mac OS X        " + bytes(4000))
    write(lib / "._drum.wav", tone(220, 1.0, SR), SR)  # a real sound named ._*: the scan indexes it
    summary = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert summary.added == 2                           # rain.wav and ._drum.wav
    result = _run("tags", "add", "keeper", lib / "._rain.wav", lib / "._drum.wav", "--index", idx)
    assert result.exit_code == 0, result.output         # ._drum.wav was tagged
    said = _one_line(result.stderr)
    assert (f"error: {lib / '._rain.wav'}: not a sound file soundsift indexes (a macOS metadata file or "
            "resource fork, ._*, which indexing its folder passes over as a system file)") in said
    assert "not in the index" not in said
    as_json = _run("tags", "add", "keeper", lib / "._rain.wav", "--index", idx, "--json")
    assert as_json.exit_code == 1
    reason = json.loads(as_json.stdout)["errors"][0]["reason"]
    assert reason.startswith("not a sound file soundsift indexes (a macOS metadata file")


# --- 3. an interrupted rebuild's --json summary --------------------------------------------------

def test_interrupted_rebuild_json_gives_the_index_as_it_was_and_the_stages_that_ran(tmp_path, fake_model_cli):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    for i, name in enumerate(("a.wav", "b.wav", "c.wav")):
        write(lib / name, tone(200 + 100 * i, 3.0, SR), SR)     # 2 segments each
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    fake_model_cli["model"] = CtrlCAtCall(4)                    # b's second segment: Ctrl-C
    result = _run("index", lib, "--index", idx, "--rebuild", "--json", "--workers", "0", "--batch-size", "1",
                  "--checkpoint-files", "1", "--no-progress")
    assert result.exit_code == 130, result.output
    assert "the rebuild of" in _one_line(result.stderr) and "was abandoned" in _one_line(result.stderr)
    s = json.loads(result.stdout)                               # was no summary at all
    assert s["interrupted"] is True and s["rebuild"] is True
    assert set(s["timings"]) == STAGES
    assert s["timings"]["embed"] > 0 and s["timings"]["write"] > 0     # three batches embedded, a commit
    assert s["generation"] == 1 and s["totals"]["files"] == 3   # the index as it was
    assert s["added"] == s["updated"] == s["n_segments"] == s["commits"] == 0   # thrown away with the rebuild
    again = _run("index", lib, "--index", idx, "--json", "--workers", "0", "--no-progress")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["unchanged"] == 3

"""Which copy of a duplicate group to keep (engine.keeper): the one that lost the least of the
recording by its header — lossless, then more bits, a higher rate, more channels, then a name
not marked as a copy, then the shorter path — shown by `soundsift duplicates` (table and JSON)
and the page's table."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import soxr
from typer.testing import CliRunner

from engine.duplicates import find_duplicates
from engine.keeper import best_copy, copy_quality
from engine.query import SoundIndex
from indexer import build_index
from tests.cli_width import wide_terminal
from tests.conftest import write
from tests.index_fakes import FakeModel
from ui.cli import app

SR = 48000


def slam(seconds: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * SR)) / SR
    bursts = np.exp(-((t[:, None] - rng.uniform(0, seconds, 6)) ** 2) / 0.01).sum(1)
    return (0.3 * rng.standard_normal(len(t)) * bursts + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def test_the_header_ranks_lossless_then_bits_then_rate_then_channels(tmp_path):
    x = slam(1.0)
    files = {"a24.wav": (x, SR, "PCM_24"), "a16.wav": (x, SR, "PCM_16"), "a.flac": (x, SR, "PCM_16"),
             "a.mp3": (x, SR, None), "a.ogg": (x, SR, "VORBIS"), "float.wav": (x, SR, "FLOAT"),
             "ulaw.wav": (x, SR, "ULAW"), "a16_44k.wav": (soxr.resample(x, SR, 44100), 44100, "PCM_16"),
             "stereo16.wav": (np.stack([x, x], 1), SR, "PCM_16")}
    for name, (data, rate, subtype) in files.items():
        write(tmp_path / name, data, rate, **({"subtype": subtype} if subtype else {}))
    q = {name: copy_quality(str(tmp_path / name)) for name in files}
    assert q["a24.wav"].describe() == "WAV 24-bit 48 kHz 1 ch"
    assert q["a16_44k.wav"].describe() == "WAV 16-bit 44.1 kHz 1 ch"
    assert q["a.mp3"].describe() == "MP3 (lossy) 48 kHz 1 ch" and not q["a.mp3"].lossless
    assert not q["a.ogg"].lossless and not q["ulaw.wav"].lossless and q["a.flac"].lossless
    assert q["float.wav"].bits == 32 and q["a.flac"].bits == 16

    def keep(*names: str) -> str:
        return best_copy([str(tmp_path / n) for n in names])[0].rsplit("/", 1)[1]
    assert keep("a.mp3", "a16.wav") == "a16.wav"                    # lossless over lossy
    assert keep("ulaw.wav", "a.ogg", "a16_44k.wav") == "a16_44k.wav"
    assert keep("a16.wav", "a24.wav", "float.wav") == "float.wav"   # more bits
    assert keep("a16_44k.wav", "a16.wav") == "a16.wav"              # higher rate
    assert keep("a16.wav", "stereo16.wav") == "stereo16.wav"        # more channels
    assert keep("a16.wav", "a.flac") == "a.flac"                    # equal: the shorter path


def test_an_unreadable_header_is_kept_last_and_said(tmp_path, caplog):
    good = write(tmp_path / "long name of the good copy.wav", slam(1.0), SR)
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"not audio at all")
    chosen, quality = best_copy([str(bad), str(good)])
    assert chosen == str(good) and quality[str(bad)] is None
    assert "not considered as the copy to keep" in caplog.text and "x.wav" in caplog.text
    with pytest.raises(ValueError):
        best_copy([])


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    lib = tmp_path_factory.mktemp("keep_lib")
    x = slam()
    original = write(lib / "masters" / "slam.wav", x, SR, subtype="PCM_24")
    shutil.copy(original, lib / "masters" / "slam copy.wav")            # the same bytes, a longer name
    write(lib / "delivery" / "slam.wav", soxr.resample(x, SR, 44100), 44100, subtype="PCM_16")
    sf.write(str(lib / "delivery" / "slam.mp3"), x, SR, format="MP3")
    index_dir = tmp_path_factory.mktemp("keep_idx") / "i"
    build_index([lib], index_dir, FakeModel(), workers=1, progress=False)
    return lib.resolve(), index_dir


def test_each_group_names_the_copy_to_keep_and_every_files_format(group):
    lib, index_dir = group
    with SoundIndex.open(index_dir, model=FakeModel()) as index:
        fv = index.file_vectors()
    g, = find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes).groups
    assert g.keep == str(lib / "masters" / "slam.wav")
    formats = dict(zip((p.removeprefix(f"{lib}/") for p in g.paths), g.formats))
    assert formats == {"delivery/slam.mp3": "MP3 (lossy) 48 kHz 1 ch", "delivery/slam.wav": "WAV 16-bit 44.1 kHz 1 ch",
                       "masters/slam copy.wav": "WAV 24-bit 48 kHz 1 ch", "masters/slam.wav": "WAV 24-bit 48 kHz 1 ch"}


def test_the_cli_shows_it_in_json_and_in_the_table(group):
    lib, index_dir = group
    result = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    g, = json.loads(result.stdout)["groups"]
    assert g["keep"] == str(lib / "masters" / "slam.wav") and len(g["formats"]) == len(g["paths"]) == 4
    table = CliRunner(env=wide_terminal(lib)).invoke(app, ["duplicates", "--index", str(index_dir)])
    assert table.exit_code == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if "slam" in line]
    kept = [line for line in rows if line.rstrip().rstrip("│").rstrip().endswith("keep")]
    assert len(rows) == 4 and len(kept) == 1 and "masters/slam.wav" in kept[0] and "24-bit" in kept[0]


def test_on_a_narrow_terminal_each_file_keeps_its_own_format_and_mark(group):
    """A long path folds over several lines; its format, duration and keep mark stay on its own
    row (joined into one cell per group they drifted onto the next file's lines). At 106 columns
    the paths get 42 characters beside the other columns; narrower, the details go under each
    path (tests/test_duplicates_audit34.py)."""
    lib, index_dir = group
    g, = json.loads(CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--json"]).stdout)["groups"]
    table = CliRunner(env={"COLUMNS": "106"}).invoke(app, ["duplicates", "--index", str(index_dir)])
    assert table.exit_code == 0, table.stderr
    rows: list[list[str]] = []                     # per file: its path's pieces, format, keep mark
    for line in table.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) != 6:
            continue                               # borders, title, header rule
        if cells[3] and cells[3] != "format":
            rows.append([cells[2], cells[3], cells[5]])
        elif rows and cells[2] and not cells[3]:
            rows[-1][0] += cells[2]
    assert len(rows) == 4 and any(len(r[0]) > 30 for r in rows)      # the paths did fold
    assert [(path.replace(" ", ""), form, "keep" if path == g["keep"] else "")      # a fold drops a space
            for path, form in zip(g["paths"], g["formats"])] == [(row[0].replace(" ", ""), *row[1:]) for row in rows]


def test_hard_links_are_named_as_one_file_and_marked_in_the_table(tmp_path):
    """Two names of one file on disk (a hard link) are a duplicate whose deletion frees nothing:
    the group says which paths are one file (JSON ``same_file``, the table's ``hard link``)."""
    import os
    lib = tmp_path / "lib"
    original = write(lib / "a" / "slam.wav", slam(), SR, subtype="PCM_24")
    (lib / "b").mkdir()
    os.link(original, lib / "b" / "slam.wav")
    write(lib / "c" / "slam.wav", slam(), SR, subtype="PCM_16")        # a real second copy
    index_dir = tmp_path / "i"
    build_index([lib], index_dir, FakeModel(), workers=1, progress=False)
    result = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    g, = json.loads(result.stdout)["groups"]
    real = lib.resolve()
    assert g["same_file"] == [[str(real / "a" / "slam.wav"), str(real / "b" / "slam.wav")]]
    assert not g["identical"]                      # the 16-bit copy has other bytes
    table = CliRunner(env=wide_terminal(real)).invoke(app, ["duplicates", "--index", str(index_dir)])
    marks = {line.split("│")[3].strip(): line.split("│")[6].strip()
             for line in table.stdout.splitlines() if "slam.wav" in line}
    assert marks == {f"{real}/a/slam.wav": "keep, hard link", f"{real}/b/slam.wav": "hard link",
                     f"{real}/c/slam.wav": ""}
    g, = find_duplicates([str(real / "a" / "slam.wav"), str(real / "b" / "slam.wav")],   # links only
                         np.ones((2, 4), np.float32), np.array([3.0, 3.0]), np.array([1, 1])).groups
    assert g.identical and g.is_link(g.paths[0]) and g.is_link(g.paths[1])

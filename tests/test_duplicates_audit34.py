"""`soundsift duplicates`, audit 34: the table shows every path on an 80-column terminal or in
a pipe (the files column had got no width at all, and `keep, hard link` was cut to
`keep, hard li…`), and a name marked as a copy (`x (1).wav`, `x copy.wav` …) loses the keep to
the unmarked name even when it lies in a shallower folder (the whole path's length decided)."""
from __future__ import annotations

import io
import json
import os

import pytest
import soundfile as sf
from rich.console import Console
from typer.testing import CliRunner

from engine.duplicates import DuplicateGroup, DuplicateReport
from engine.keeper import best_copy
from indexer import build_index
from tests.conftest import write
from tests.index_fakes import FakeModel
from tests.test_duplicates_keep import SR, slam
from ui.cli import app, cmd_duplicates

# --------------------------------------------------------------------------- the copy to keep


@pytest.mark.parametrize("copy_name", ["slam (1).wav", "slam(2).wav", "slam copy.wav", "slam copy 2.wav",
                                       "slam - Copy.wav", "slam - Copy (2).wav", "Copy of slam.wav",
                                       "Copy (2) of slam.wav", "slam (copy).wav", "slam (another copy).wav"])
def test_a_name_marked_as_a_copy_loses_even_in_a_shallower_folder(tmp_path, copy_name):
    x = slam(1.0)
    original = write(tmp_path / "Library" / "Foley" / "Doors" / "slam.wav", x, SR, subtype="PCM_16")
    copy = write(tmp_path / "dl" / copy_name, x, SR, subtype="PCM_16")
    assert len(str(copy)) < len(str(original))          # the old rank (path length) chose the copy
    assert best_copy([str(copy), str(original)])[0] == str(original)
    assert best_copy([str(original), str(copy)])[0] == str(original)


def test_the_header_still_ranks_before_the_name_and_the_path_after_it(tmp_path):
    x = slam(1.0)
    better_copy = write(tmp_path / "a" / "slam (1).wav", x, SR, subtype="PCM_24")
    plain16 = write(tmp_path / "Library" / "slam.wav", x, SR, subtype="PCM_16")
    assert best_copy([str(plain16), str(better_copy)])[0] == str(better_copy)     # more bits first
    shallow = write(tmp_path / "slam.wav", x, SR, subtype="PCM_16")
    assert best_copy([str(plain16), str(shallow)])[0] == str(shallow)           # then the shorter path
    # a folder named like a copy does not mark the files in it; an ordinary name is no copy
    in_copy_folder = write(tmp_path / "Copy of sfx" / "door.wav", x, SR, subtype="PCM_16")
    deeper = write(tmp_path / "Library" / "Doors" / "door.wav", x, SR, subtype="PCM_16")
    assert best_copy([str(deeper), str(in_copy_folder)])[0] == str(in_copy_folder)
    photocopy = write(tmp_path / "photocopy.wav", x, SR, subtype="PCM_16")
    assert best_copy([str(plain16), str(photocopy)])[0] == str(photocopy)


def test_is_copy_name_reads_the_file_name_only():
    from engine.keeper import is_copy_name
    assert is_copy_name("/lib/x (1).wav") and is_copy_name("/lib/X COPY.WAV") and is_copy_name("x (3rd copy).flac")
    assert not any(map(is_copy_name, ["/lib/Copy of drums/x.wav", "/lib/x (1)/x.wav", "door (open).wav",
                                      "x_copy.wav", "copy.wav", "x.wav"]))


# --------------------------------------------------------------------------- the table's width

LONG = "/home/someone/Sounds/Libraries/Foley/Doors/wood_door_slam_heavy_close_01.wav"
LINKED = "/home/someone/Sounds/Downloads/old drive backup/wood_door_slam_heavy_close_01 (1).wav"
MP3 = "/home/someone/Sounds/Downloads/wood_door_slam_heavy_close_01.mp3"
GROUPS = [DuplicateGroup([LONG, LINKED, MP3], [3.0, 3.0, 3.0], 0.31, False, keep=LONG,
                         formats=["WAV 24-bit 96 kHz 2 ch", "WAV 24-bit 96 kHz 2 ch", "MP3 (lossy) 44.1 kHz 2 ch"],
                         same_file=[[LONG, LINKED]]),
          DuplicateGroup(["/x/a.wav", "/x/b.wav"], [1.0, 1.0], 0.0, True, keep="/x/a.wav",
                         formats=["WAV 16-bit 48 kHz 1 ch"] * 2)]
#: per file: its path, then what the table says of it (format, duration, mark)
EXPECTED = [(LONG, "WAV 24-bit 96 kHz 2 ch · 0:03.00 · keep, hard link"),
            (LINKED, "WAV 24-bit 96 kHz 2 ch · 0:03.00 · hard link"),
            (MP3, "MP3 (lossy) 44.1 kHz 2 ch · 0:03.00"),
            ("/x/a.wav", "WAV 16-bit 48 kHz 1 ch · 0:01.00 · keep"),
            ("/x/b.wav", "WAV 16-bit 48 kHz 1 ch · 0:01.00")]


def table_files(text: str) -> list[tuple[list[str], str]]:
    """Per file in a printed table: the pieces its path folded into, and its format, duration and
    mark joined by " · ", whether beside the path (wide) or on a line under it (narrow)."""
    files: list[tuple[list[str], str]] = []
    for line in text.splitlines():
        raw = line.split("│")[1:-1]
        if len(raw) == 6:                                   # path, format, duration, keep columns
            cells = [c.strip() for c in raw]
            if cells[3]:
                files.append(([cells[2]], " · ".join(c for c in cells[3:] if c)))
            elif cells[2]:
                files[-1][0].append(cells[2])
        elif len(raw) == 3:                                 # the details on a line of their own
            body = raw[2][1:].rstrip()
            if body.startswith("  "):
                files[-1] = (files[-1][0], body.strip())
            elif files and not files[-1][1]:
                files[-1][0].append(body)
            elif body:
                files.append(([body], ""))
    return files


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_every_path_is_shown_beside_or_above_its_own_details(width):
    buf = io.StringIO()
    console = Console(file=buf, width=width, markup=False, soft_wrap=True)    # as ui.cli.common's
    report = DuplicateReport(groups=GROUPS, files=5, candidates=3, confirmed=3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cmd_duplicates, "out_console", console)
        cmd_duplicates._print_groups(report, json_out=False)
    text = buf.getvalue()
    assert "…" not in text and max(map(len, text.splitlines())) <= width
    files = table_files(text)
    # a fold at a space drops the space
    assert [("".join(pieces).replace(" ", ""), details) for pieces, details in files] == \
        [(path.replace(" ", ""), details) for path, details in EXPECTED], text
    for (pieces, _), (path, _) in zip(files, EXPECTED):      # no path in 17-character pieces
        assert len(pieces[0]) >= min(len(path), 30), text
        # since session 39 a path wider than its column breaks after a "/", its file name whole
        if len(pieces) > 1:
            assert all(p.endswith("/") for p in pieces[:-1]) and pieces[-1].strip() == os.path.basename(path), text
    assert ("┃ format" in text) == (width == 200)          # wide enough: the columns as before


def test_duplicates_piped_at_80_columns_names_every_file_and_keeps_the_unmarked_name(tmp_path):
    """The audit's run: `soundsift duplicates --index IDX | …` (80 columns), a library holding a
    recording, a hard link of it named as a download's copy in a shallower folder, and an MP3."""
    lib = tmp_path / "lib"
    x = slam()
    original = write(lib / "Library" / "Foley" / "Doors" / "wood_door_slam_heavy_close_01.wav", x, SR,
                     subtype="PCM_24")
    (lib / "dl").mkdir()
    os.link(original, lib / "dl" / "wood_door_slam_heavy_close_01 (1).wav")
    (lib / "dl" / "old drive").mkdir()
    sf.write(str(lib / "dl" / "old drive" / "wood_door_slam_heavy_close_01.mp3"), x, SR, format="MP3")
    index_dir = tmp_path / "i"
    build_index([lib], index_dir, FakeModel(), workers=1, progress=False)
    result = CliRunner().invoke(app, ["duplicates", "--index", str(index_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    g, = json.loads(result.stdout)["groups"]
    assert g["keep"] == str(original.resolve())
    table = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["duplicates", "--index", str(index_dir)])
    assert table.exit_code == 0, table.stderr
    assert "…" not in table.stdout and max(map(len, table.stdout.splitlines())) <= 80
    shown = {"".join(pieces).replace(" ", ""): details for pieces, details in table_files(table.stdout)}
    assert set(shown) == {p.replace(" ", "") for p in g["paths"]}, table.stdout
    assert shown[g["keep"].replace(" ", "")].endswith("keep, hard link")

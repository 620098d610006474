"""A count in a CLI message agrees with its noun: "1 file", "0 files", "2 files" (ui.cli.common.count)."""
from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from ui.cli.common import count


@pytest.fixture
def printed(monkeypatch):
    """Patch a command module's out_console to a wide one in memory; returns what it printed so
    far, on one line with table borders as spaces."""
    buf = io.StringIO()

    def patch(module) -> None:
        monkeypatch.setattr(module, "out_console", Console(file=buf, width=250))

    def text() -> str:
        return " ".join(re.sub(r"[│┃]", " ", buf.getvalue()).split())
    return patch, text


def test_count_agrees_with_its_noun():
    assert [count(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert count(1, "indexed file") == "1 indexed file" and count(3, "indexed file") == "3 indexed files"
    assert (count(1, "copy", "copies"), count(2, "copy", "copies")) == ("1 copy", "2 copies")


def test_index_summary_of_one_file(printed):
    from ui.cli import cmd_index
    patch, text = printed
    patch(cmd_index)
    cmd_index._print_summary({
        "index": "i", "generation": 1, "added": 1, "updated": 0, "removed": 0, "unchanged": 1, "failed": 0,
        "metadata_reread": 1, "levels_measured": 1, "n_segments": 1, "audio_seconds": 1.0, "seconds": 1.0,
        "files_per_second": 1.0, "x_realtime": 1.0, "timings": {},
        "totals": {"files": 1, "segments": 1, "errors": 1}, "rebuild": True, "model": "m", "previous_model": "p",
        "carried_over": {"tags": 1, "captions": 1}, "not_carried_over": {"tags": 1, "captions": 2}})
    said = text()
    assert "1 file, 1 segment, 1 error" in said
    assert "1 unchanged file (a newer reader)" in said and "1 unchanged file (indexed before it was)" in said
    assert "1 tag, 1 caption (not: 1 tag, 2 captions)" in said


def test_sheet_import_and_export_of_one_row(printed):
    from ui.cli import cmd_sheet
    patch, text = printed
    patch(cmd_sheet)
    from engine.metadata_sheet import SheetImport
    cmd_sheet._print_import(SheetImport("s.csv", files=1, matched_rows=1, rows=1, file_column="File", shared_rows=1,
                                        unchanged_cells=1, unchanged_files=1))
    said = text()
    assert "s.csv: described 1 indexed file from 1 of 1 row (files named in column 'File')" in said
    assert "unchanged: 1 cell left out" in said and "1 matched file changed nothing" in said
    assert "1 row matched several files" in said


def test_eval_tables_of_one_clip(printed):
    from ui.cli import cmd_eval
    patch, text = printed
    patch(cmd_eval)
    figures = {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "mAP@10": 1.0, "median_rank": 1.0, "mean_rank": 1.0}
    cmd_eval._print_retrieval({"model": "m", "n_audio": 1, "n_captions": 1, "t2a": figures, "a2t": figures})
    cmd_eval._print_zeroshot({"model": "m", "n": 1, "top1": 1.0, "top5": 1.0, "top10": 1.0, "mAP@10": 1.0,
                              "t2a_queries": 1, "t2a": figures, "per_class": {"dog": 1.0}})
    said = text()
    assert "retrieval · m · 1 clip, 1 caption" in said
    assert "zero-shot · m · 1 clip:" in said and "text → audio · 1 class query:" in said


def test_duplicates_among_one_file(printed):
    from engine.duplicates import DuplicateGroup, DuplicateReport
    from ui.cli import cmd_duplicates
    patch, text = printed
    patch(cmd_duplicates)
    cmd_duplicates._print_groups(DuplicateReport(groups=[], files=1, candidates=0, confirmed=0), json_out=False)
    group = DuplicateGroup(["/a.wav", "/b.wav"], [1.0, 1.0], 0.0, True)
    cmd_duplicates._print_groups(DuplicateReport(groups=[group], files=2, candidates=1, confirmed=1), json_out=False)
    said = text()
    assert "no duplicates among 1 file " in said + " " and "1 group of duplicates among 2 files" in said

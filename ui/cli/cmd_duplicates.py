"""``soundsift duplicates``: files an index holds more than once (engine.duplicates)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Optional

import typer

from ui.cli.app import app
from ui.cli.common import (INTERRUPTED_EXIT, IndexOption, ProgressOption, VerboseOption, count, err_console,
                           error_records, out_console, print_json, relays_decoder_output, reports_errors,
                           setup_logging, shows_progress)
from ui.cli.results import PathCell, clock, display_path, filter_options, say_why_none

if TYPE_CHECKING:
    from engine.duplicates import DuplicateGroup, DuplicateReport

log = logging.getLogger("soundsift.duplicates")

#: without a progress bar, a line on stderr this often (seconds) while pairs are compared
REPORT_EVERY = 60.0
#: the fewest characters of a path the table's files column may show on a line beside the format,
#: duration and keep columns; narrower, those go on a line under each path
MIN_PATH_CHARS = 40
_WIDE_COLUMNS = ("#", "difference", "files", "format", "duration", "keep")
_PATH_COLUMN = 2


@app.command("duplicates")
@reports_errors
@relays_decoder_output
@filter_options
def duplicates_command(
    index: IndexOption = None,
    filters: Optional[Any] = None,          # replaced by the filter options (filter_options): engine.filters.Filters
    max_difference: float = typer.Option(1.0, "--max-difference", min=0.0,
                                         help="Largest level difference of two duplicates, dB RMS once "
                                              "aligned in time and gain (lossless copies and MP3s of 96 "
                                              "kbps or more: mostly under 1 dB, 32 kbps about 2.3 dB; other "
                                              "takes of a sound: from about 0.8 dB; README's table)."),
    min_cosine: float = typer.Option(0.9, "--min-cosine", min=-1.0, max=1.0,
                                     help="Cosine of the stored mean vectors for a pair to be compared "
                                          "at all (lower: more pairs decoded, slower)."),
    per_file: int = typer.Option(16, "--per-file", min=0,
                                 help="Compare each file with at most this many others, its closest by "
                                      "the stored vectors (a copy comes first); 0: every pair over "
                                      "--min-cosine (hours for tens of thousands of similar files)."),
    workers: Optional[int] = typer.Option(
        None, "--workers", "-j", min=0,
        help="Processes comparing the pairs, as make -j (0: in this process; the same groups either "
             "way). Default: every core (this process for under 2,000 pairs)."),
    json_out: bool = typer.Option(False, "--json", help='Print {"groups", "files", "candidates", "compared", '
                                                        '"errors", "interrupted"} on stdout: the groups closest '
                                                        'first, the files and pairs gone through, and the files '
                                                        'that could not be decoded, [{"path", "reason"}].'),
    progress: ProgressOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Files holding the same recording: copies, and the same audio in another format, at another
    gain, sample rate or bit rate.

    The stored vectors propose pairs of files of about the same duration; each pair is confirmed
    by decoding both, aligning them to the sample and comparing their levels band by band over
    time, so two takes of one sound are not duplicates. JSON: `{"groups", "files", "candidates",
    "compared", "errors", "interrupted"}`, its groups `[{"paths", "durations", "difference_db",
    "identical", "keep", "formats"}]`, closest first; `keep` names the copy that
    lost the least (lossless, then more bits, a higher sample rate, more channels, then a name
    not marked as a copy such as `x (1).wav` or `x copy.wav`, then the shorter path).

    Ctrl-C stops the comparing (and its worker processes) and prints the groups confirmed so far
    (exit status 130; in JSON "interrupted" true)."""
    setup_logging(verbose)
    from rich.progress import Progress

    from engine.duplicates import find_duplicates
    from engine.query import SoundIndex

    with SoundIndex.open(index) as sound_index:
        fv = sound_index.file_vectors(filters)
        if not len(fv.paths):           # say which filter value no indexed file has, as search does
            say_why_none(sound_index, [], filters)
    bar_shown = shows_progress(progress)
    with Progress(console=err_console, transient=True, disable=not bar_shown) as bar:
        task = bar.add_task("comparing", total=None)
        report = find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes,
                                 min_cosine=min_cosine, max_difference_db=max_difference,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total),
                                 per_file=per_file or None,
                                 report_every=None if bar_shown else REPORT_EVERY,
                                 workers=workers)
    log.info("%s, %s compared on their audio, %d confirmed, %s", count(report.files, "file"),
             count(report.compared, "pair"), report.confirmed, count(len(report.groups), "group"))
    if report.left_out:
        log.info("%s over --min-cosine %g not compared: each file meets its %d closest (--per-file)",
                 count(report.left_out, "more pair"), min_cosine, per_file)
    _print_groups(report, json_out)
    if report.interrupted:
        raise typer.Exit(INTERRUPTED_EXIT)


def _print_groups(report: DuplicateReport, json_out: bool) -> None:
    """The groups as JSON on stdout, or as a table (a row per file; where the width leaves the
    paths too little room, each file's format, duration and mark on a line under its path); an
    interrupted search says so."""
    if report.interrupted:
        err_console.print(f"interrupted: {report.compared} of {count(report.candidates, 'pair')} compared; "
                          "these are the groups found in them")
    if json_out:
        print_json(_as_json(report))
        return
    if not report.groups:
        out_console.print(f"no duplicates among {count(report.files, 'file')}")
        return
    from rich.table import Table

    rows = _rows(report.groups)
    stacked = not _paths_fit(rows, out_console.width)
    table = Table(title=f"{count(len(report.groups), 'group')} of duplicates among {count(report.files, 'file')}")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("difference", justify="right", no_wrap=True)
    table.add_column("files", overflow="fold", ratio=1)
    if not stacked:
        table.add_column("format", no_wrap=True)
        table.add_column("duration", justify="right", no_wrap=True)
        table.add_column("keep", no_wrap=True)
    for row, last in rows:                          # a row per file: a long path folds in its own row
        if stacked:                                 # its format, duration and mark on a line under it
            details = " · ".join(text for text in row[3:] if text)
            row = (*row[:2], f"{row[2]}\n  {details}")
        table.add_row(*row[:2], PathCell(row[2]), *row[3:], end_section=last)   # broken after a "/", not in a name
    out_console.print(table)


def _as_json(report: DuplicateReport) -> dict[str, Any]:
    """The report as --json prints it: the groups, what the text says of the search (files, pairs
    proposed and compared), the files that could not be decoded as `index` lists them, and whether
    Ctrl-C stopped it (the groups are then those found so far)."""
    return {"groups": [g.to_dict() for g in report.groups], "files": report.files,
            "candidates": report.candidates, "compared": report.compared,
            "errors": error_records(report.unreadable), "interrupted": report.interrupted}


def _rows(groups: list[DuplicateGroup]) -> list[tuple[tuple[str, ...], bool]]:
    """Per file, the wide table's cells (rank and difference on a group's first file, path,
    format, duration, keep mark) and whether it is its group's last."""
    rows = []
    for rank, g in enumerate(groups, 1):
        kind = "identical bytes" if g.identical else f"{g.difference_db:.2f} dB"
        for i, (path, form, seconds) in enumerate(zip(g.paths, g.formats, g.durations)):
            rows.append(((str(rank) if i == 0 else "", kind if i == 0 else "", display_path(path), form,
                          clock(seconds), _keep_mark(g, path)), i == len(g.paths) - 1))
    return rows


def _paths_fit(rows: list[tuple[tuple[str, ...], bool]], width: int) -> bool:
    """Whether a table of ``width`` columns with a column each for format, duration and keep mark
    leaves the paths ``MIN_PATH_CHARS`` (or the longest path, when shorter); else each file's
    details go under its path (an 80-column terminal or pipe left the paths no room at all)."""
    from rich.cells import cell_len

    cells = list(zip(_WIDE_COLUMNS, *(row for row, _ in rows)))
    fixed = sum(max(map(cell_len, column)) for i, column in enumerate(cells) if i != _PATH_COLUMN)
    borders = 3 * len(_WIDE_COLUMNS) + 1           # a space each side of every cell, a rule between
    longest = max(map(cell_len, cells[_PATH_COLUMN][1:]))
    return width - fixed - borders >= min(longest, MIN_PATH_CHARS)


def _keep_mark(group: DuplicateGroup, path: str) -> str:
    """The keep column: ``keep`` for the copy to keep; ``hard link`` for a name of a file another
    path of the group also names (deleting it frees nothing)."""
    marks = (["keep"] if path == group.keep else []) + (["hard link"] if group.is_link(path) else [])
    return ", ".join(marks)

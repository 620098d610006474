"""``soundsift relocate OLD NEW``: the library moved (another mount point, a renamed folder)."""
from __future__ import annotations

from pathlib import Path

import typer

from ui.cli.app import app
from ui.cli.common import IndexOption, VerboseOption, count, out_console, print_json, reports_errors, setup_logging


@app.command("relocate")
@reports_errors
def relocate_command(
    old: Path = typer.Argument(..., help="The folder the files were indexed in (it may be gone)."),
    new: Path = typer.Argument(..., help="The folder that holds them now."),
    index: IndexOption = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; change nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    verbose: VerboseOption = False,
) -> None:
    """Point the index's files under OLD at the same files under NEW, without embedding them again.

    For a library whose drive is mounted somewhere else now, that was copied to a new disk, or
    whose top folder was renamed. Vectors, tags, captions and metadata stay; searches show the
    new paths at once. Files moved or renamed inside an indexed folder need no command:
    `soundsift index` recognises them (same size, time and audio header).
    """
    setup_logging(verbose)
    from indexer.relocate import relocate

    plan = relocate(index, old, new, dry_run=dry_run)
    result = plan.to_dict()
    if json_out:
        print_json(dict(result, dry_run=dry_run))
        return
    out_console.print(f"{_moved(result['files'], result['merged'], dry_run)} from {plan.old} to {plan.new}"
                      + ("" if dry_run else f" (generation {plan.generation})"), highlight=False)
    if plan.merged:
        out_console.print(f"{count(len(plan.merged), 'file')} already indexed at the new place too: the row there "
                          "stays and takes the old one's tags and captions", highlight=False)
    if plan.retimed:
        out_console.print(f"{count(plan.retimed, 'copy', 'copies')} with a new modification time (same size): "
                          "taken, so not embedded again", highlight=False)
    if plan.errors:
        out_console.print(f"{count(len(plan.errors), 'file')} that failed before: the error rows moved too",
                          highlight=False)
    if plan.missing:
        n = len(plan.missing)
        out_console.print(f"{count(n, 'file')} not at the new place ({'' if n == 1 else 'e.g. '}{plan.missing[0]}): "
                          f"the next `soundsift index {plan.new}` drops {'it' if n == 1 else 'them'}",
                          highlight=False)


def _moved(files: int, merged: int, dry_run: bool) -> str:
    """``moved 5 indexed files, merged 1 indexed file into the row already there`` (``would move …,
    would merge …`` in a dry run): a row merged into the one already at the new place is not said
    as moved."""
    moved = count(files - merged, "indexed file")
    if not merged:
        return f"{'would move' if dry_run else 'moved'} {moved}"
    merges = (f"{'would merge' if dry_run else 'merged'} {count(merged, 'indexed file')} into "
              f"{'the row' if merged == 1 else 'rows'} already there")
    return f"{'would move' if dry_run else 'moved'} {moved}, {merges}"

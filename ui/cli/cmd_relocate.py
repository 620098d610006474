"""``soundsift relocate OLD NEW``: the library moved (another mount point, a renamed folder)."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

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
    json_out: bool = typer.Option(False, "--json", help='Print {"old", "new", "files", "moved", "merged", '
                                                        '"missing", "retimed", "failed", "generation", '
                                                        '"missing_paths", "dry_run"} on stdout ("generation" null '
                                                        'in a dry run: nothing was committed).'),
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
        print_json(_as_json(result, dry_run))
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
        from engine.layout import index_option, resolve_index_dir
        index_root, n = resolve_index_dir(index), len(plan.missing)
        out_console.print(f"{count(n, 'file')} not at the new place ({'' if n == 1 else 'e.g. '}{plan.missing[0]}): "
                          f"the next `soundsift index {shlex.quote(plan.new)} --index {index_option(index_root)}` "
                          f"drops {'it' if n == 1 else 'them'}", highlight=False)


def _as_json(result: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    """The plan as --json prints it: counts, ``failed`` the files whose error rows moved (a count,
    as `index` counts its failures; top-level ``errors`` is a list of {"path", "reason"} in every
    command), and ``generation`` null in a dry run, which commits none."""
    out = {("failed" if k == "errors" else k): v for k, v in result.items()}
    return dict(out, generation=None if dry_run else out["generation"], dry_run=dry_run)


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

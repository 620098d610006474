"""``soundsift tags add|remove|list``: the user's own tags on indexed files."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, List

import typer

from ui.cli.app import MARKUP, SoundsiftTyper, app
from ui.cli.common import IndexOption, VerboseOption, count, out_console, print_json, reports_errors, setup_logging
from ui.cli.results import cell, split_values

if TYPE_CHECKING:
    from indexer.user_tags import TagChange

tags_app = SoundsiftTyper(
    help="Your own tags on indexed files (\"favourite\", \"used in ep 3\"): add, remove, list. Searches "
         "find files by them, and --tagged keeps only the files that carry one. For zero-shot tags of "
         "a sound, see `soundsift tag`.",
    no_args_is_help=True,
    rich_markup_mode=MARKUP,
)
app.add_typer(tags_app, name="tags")

# Arguments and options `add` and `remove` share.
TagsArgument = Annotated[str, typer.Argument(help="The tag, or several separated by commas (\"whoosh, favourite\").")]
PathsArgument = Annotated[List[Path], typer.Argument(help="Indexed files, or folders (every indexed file under them).")]
JsonOption = Annotated[bool, typer.Option("--json", help='Print {"files", "changed", "errors"} on stdout: the indexed '
                                                         'files named, the tags added or removed, and each path the '
                                                         'index does not hold as [{"path", "reason"}].')]


@tags_app.command("add")
@reports_errors
def add_command(
    tags: TagsArgument, paths: PathsArgument, index: IndexOption = None, json_out: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Tag indexed files. A file keeps a tag it has already (in any case of A–Z).

    Tags stay with a file when it is moved or renamed, converted to another format in its folder
    (rain_01.wav → rain_01.flac, the original deleted), and when the index is rebuilt.
    """
    setup_logging(verbose)
    from indexer.user_tags import add_tags
    _report(add_tags(index, paths, split_values([tags])), "added", json_out)


@tags_app.command("remove")
@reports_errors
def remove_command(
    tags: TagsArgument, paths: PathsArgument, index: IndexOption = None, json_out: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Take your tags off indexed files (tags stored by `soundsift caption` stay)."""
    setup_logging(verbose)
    from indexer.user_tags import remove_tags
    _report(remove_tags(index, paths, split_values([tags])), "removed", json_out)


@tags_app.command("list")
@reports_errors
def list_command(
    index: IndexOption = None,
    every_source: bool = typer.Option(False, "--all", help="Also the AudioSet tags `soundsift caption` stored."),
    json_out: bool = typer.Option(False, "--json", help='Print [{"tag", "files"}] on stdout, most used first.'),
    verbose: VerboseOption = False,
) -> None:
    """Every tag of the index and how many files carry it, most used first.

    Spellings that differ only in case ("keeper", "Keeper") are one tag, shown as most files spell it.
    """
    setup_logging(verbose)
    from rich.table import Table

    from engine.catalog import USER_TAG_SOURCE
    from indexer.user_tags import tag_counts
    counts = tag_counts(index, source=None if every_source else USER_TAG_SOURCE)
    if json_out:                # a list of records, as `sheet list` prints: the order is the ranking
        print_json([{"tag": tag, "files": n} for tag, n in counts.items()])
        return
    if not counts:
        out_console.print("no tags yet: `soundsift tags add TAG PATH... --index …` adds some", highlight=False)
        return
    table = Table(title=count(len(counts), "tag"))
    table.add_column("tag")
    table.add_column("files", justify="right")
    for tag, n in counts.items():
        table.add_row(tag, str(n))
    out_console.print(table)


def _report(change: "TagChange", verb: str, json_out: bool) -> None:
    """The change in one line (why nothing changed, when nothing did), then each path the index
    does not hold as an error line saying why; exit code 1 when no path named an indexed file."""
    from ui.cli.common import err_console
    if json_out:
        print_json({"files": change.files, "changed": change.changed, "errors": [
            {"path": path, "reason": _why(change, path)} for path in change.not_indexed]})
    elif change.files:
        line = f"{verb} {count(change.changed, 'tag')} on {count(change.files, 'file')}"
        if not change.changed:
            line += " (they had them already)" if verb == "added" else " (none of them carried it)"
        out_console.print(line, highlight=False)
    for path in change.not_indexed:
        err_console.print(f"error: {cell(path)}: {cell(_why(change, path))}", highlight=False,
                          soft_wrap=True)   # one line however long
    if change.not_indexed and not change.files:
        raise typer.Exit(1)


def _why(change: "TagChange", path: str) -> str:
    """Why ``path``, one of ``change.not_indexed``, names no indexed file."""
    return change.reasons.get(path, "not in the index (index it first)")

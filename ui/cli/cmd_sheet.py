"""``soundsift sheet import|list|remove``: a library's metadata spreadsheet, searchable."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, List, Optional

import typer

from ui.cli.app import MARKUP, SoundsiftTyper, app
from ui.cli.common import (IndexOption, VerboseOption, count, err_console, labelled, out_console, print_json,
                           reports_errors, setup_logging)
from ui.cli.results import IndexModelOption, filter_options, say_why_none

sheet_app = SoundsiftTyper(
    help="A library's metadata spreadsheet (CSV, tab-separated, .xlsx or .ods: the BBC archive's, a "
         "Soundminer or BaseHead export, a vendor's workbook): its descriptions, categories and keywords stored with the "
         "indexed files they name, for keyword search, --category and the page's cards. import, list, remove; export writes the index's own sheet.",
    no_args_is_help=True,
    rich_markup_mode=MARKUP,
)
app.add_typer(sheet_app, name="sheet")


@sheet_app.command("import")
@reports_errors
def import_command(
    sheets: Annotated[List[Path], typer.Argument(
        help="The sheets: CSV, semicolon- or tab-separated text, or .xlsx/.ods workbooks (every worksheet with a "
             "file column); a header row at the top. Several are imported in turn: for a file two describe, the "
             "later one's rows stand.")],
    index: IndexOption = None,
    under: Annotated[Optional[Path], typer.Option(
        "--under", help="Only the indexed files under this folder (the library the sheet describes).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Match and report; change nothing.")] = False,
    json_out: Annotated[bool, typer.Option(
        "--json", help='Print {"sheets", "errors"} on stdout: "sheets" a report per sheet imported (one '
                       'sheet too), [{"sheet", "rows", "matched_rows", "files", "unmatched", …, "tag_files", '
                       '"tags_added", "tags_removed", "tags_left", "unchanged_cells", "unchanged_files", '
                       '"own_first_cells", "as_exported_cells", "nothing_to_clear_cells", "cleared_cells", '
                       '"shadowed_cells", "shadowed_files", "export"}]; "errors" '
                       'the sheets that could not be read, [{"path", "reason"}].')] = False,
    verbose: VerboseOption = False,
) -> None:
    """Describe indexed files by a library's sheet: each row's file (a Filename, File,
    Path or location column: a name matches the indexed files of that name, a path those of
    its name whose folders end most like it) gets its Description, Title/FXName, Category,
    SubCategory, CatID, Keywords, Library, CDName, Designer, Notes …

    Keyword search finds the files by them, `--category` filters by them, the page's card shows
    them (a field the file carries itself comes first). A UserTags column (as `sheet export` writes
    it: "keeper, ep3") sets each file's own tags to its cell, adding and removing as `soundsift tags`
    does; an empty cell leaves them as they are, a cell holding "-" takes them all off. Tags set so
    are yours: `sheet remove` leaves them. A cell saying what the file already shows (its own
    metadata; of a `sheet export`, an earlier sheet's too) is left out, and a row of such cells
    describes nothing: only what you changed is stored. Importing a sheet of the same file name
    again replaces what it said; they stay with the files when moved, edited or re-embedded.

    Of a `sheet export`, a cell still holding what the export wrote (its ExportDigest column
    records it) changes nothing, though the file changed since. An empty cell changes nothing; a
    cell holding "-" clears its field: the file shows nothing there, its own value hidden too,
    until the sheet is removed.
    A sheet that cannot be read is said (in --json's "errors" too) and the others are imported; the
    exit code is 1 when one failed or matched no indexed file, and when none could be imported that
    is the error (no --json), as for one sheet.
    """
    setup_logging(verbose)
    from engine.errors import InvalidQuery
    from indexer.metadata_sheet import import_sheet
    reports, failed = [], []
    for sheet in sheets:
        try:
            report = import_sheet(index, sheet, under=under, dry_run=dry_run)
        except InvalidQuery as e:
            if len(sheets) == 1:
                raise
            err_console.print(labelled("error:", "bold red", e), highlight=False, soft_wrap=True)
            failed.append(_unread(sheet, e))
            continue
        reports.append(report)
        if not json_out:
            _print_import(report)
        _note_own_first(report)
        _note_shadowed(report)
        if report.unmatched:
            err_console.print(f"{report.sheet}: no indexed file for {count(len(report.unmatched), 'row')}, e.g. "
                              + ", ".join(report.unmatched[:5]), highlight=False)
    if not reports:             # as `tag` of files none of which can be read: an error, no empty list
        raise InvalidQuery(f"none of the {len(sheets)} sheets could be imported (errors above)")
    if json_out:                # a list of reports whatever the number of sheets: one shape for scripts
        print_json({"sheets": [r.to_dict() for r in reports], "errors": failed})
    if failed or any(r.rows and not r.matched_rows for r in reports):
        raise typer.Exit(1)


def _unread(sheet: Path, error: Exception) -> dict[str, str]:
    """A sheet that could not be read as --json lists it, ``{"path", "reason"}`` as `index` lists a
    file (the reason without the path its message starts with)."""
    reason, prefix = str(error), f"{sheet}: "
    return {"path": str(sheet), "reason": reason[len(prefix):] if reason.startswith(prefix) else reason}


def _print_import(report: Any) -> None:
    """What one import did (or, with --dry-run, would do), for a person."""
    verb = "would describe" if report.dry_run else "described"
    out_console.print(f"{report.sheet}: {verb} {count(report.files, 'indexed file')} from {report.matched_rows} of "
                      f"{count(report.rows, 'row')} (files named in column {report.file_column!r})", highlight=False)
    _print_unchanged(report)
    if report.worksheets:
        skipped = (f"; skipped, no file column: {', '.join(report.skipped_worksheets)}"
                   if report.skipped_worksheets else "")
        out_console.print(f"worksheets read: {', '.join(report.worksheets)}{skipped}", highlight=False)
    if report.columns:
        out_console.print("columns used: " + ", ".join(f"{c} → {k}" for c, k in report.columns.items()),
                          highlight=False)
    if report.unused_columns:
        out_console.print("columns not used: " + ", ".join(report.unused_columns), highlight=False)
    if report.shared_rows:
        out_console.print(f"{count(report.shared_rows, 'row')} matched several files (the same name in several "
                          "folders: each got the row)", highlight=False)
    if report.sets_tags:
        _print_tags(report)


def _print_unchanged(report: Any) -> None:
    """The cells left out as what the files already show, and a sheet that so describes no file."""
    shown = "their own metadata or an earlier sheet's" if report.export else "their own metadata"
    if report.unchanged_cells:
        left = "would be left out" if report.dry_run else "left out"
        exported = (f" ({report.as_exported_cells} of the cells as the export wrote them, not edited since)"
                    if report.as_exported_cells else "")
        nothing = report.nothing_to_clear_cells
        said = []
        if report.unchanged_cells - nothing:
            said.append(f"{count(report.unchanged_cells - nothing, 'cell')} {left}, already what the files show "
                        f"({shown})")
        if nothing:
            said.append(f"{count(nothing, 'cell')} \"-\" {left}, nothing to clear (the file shows nothing there)")
        out_console.print(f"unchanged: {'; '.join(said)}; {count(report.unchanged_files, 'matched file')} changed "
                          f"nothing{exported}", highlight=False, soft_wrap=True)
    if report.cleared_cells:
        verb = "would clear" if report.dry_run else "cleared"
        out_console.print(f"{verb}: {count(report.cleared_cells, 'field')} (cells \"-\": the file shows nothing there, "
                          "neither its own value nor an earlier sheet's, until the sheet is removed)",
                          highlight=False, soft_wrap=True)
    if report.matched_rows and not report.files:
        stored = "nothing of it would be stored" if report.dry_run else "nothing of it is stored"
        tags = (f", though its UserTags cells {'would change' if report.dry_run else 'changed'} your tags"
                if report.tag_files else "")
        out_console.print(f"{report.sheet} describes no indexed file: every row it matched says only what the file "
                          f"already shows, so {stored} and `sheet list` does not list it{tags}",
                          highlight=False, soft_wrap=True)


def _note_own_first(report: Any) -> None:
    """On stderr (with --json too): the changed cells of fields the files carry themselves, whose
    own values still show first."""
    if report.own_first_cells:
        one = report.own_first_cells == 1
        err_console.print(f"note: {report.sheet}: {count(report.own_first_cells, 'changed cell')} "
                          f"{'is' if one else 'are'} of a field the file carries itself with another value: search "
                          "finds the sheet's too, but the file's own value is what the card, --json and `sheet "
                          "export` show (change it in the file to change that)", highlight=False, soft_wrap=True)


def _note_shadowed(report: Any) -> None:
    """On stderr (with --json too): the fields an earlier sheet gave files that no longer show, as
    this sheet's rows stand over that sheet's (README "Library metadata sheets")."""
    if report.shadowed_cells:
        which = "; ".join(f"{name}: {', '.join(keys)}" for name, keys in report.shadowed_fields.items())
        verbs = ("would stand", "would no longer show") if report.dry_run else ("stand", "no longer show")
        err_console.print(f"note: {report.sheet}: its rows {verbs[0]} over an earlier sheet's for "
                          f"{count(report.shadowed_files, 'file')}, so {count(report.shadowed_cells, 'field')} "
                          f"that sheet gave {'it' if report.shadowed_files == 1 else 'them'} {verbs[1]} ({which}); "
                          f"give those columns in {report.sheet} to keep them (`soundsift sheet remove "
                          f"{report.sheet}` takes its rows off again and gives them back)",
                          highlight=False, soft_wrap=True)


def _print_tags(report: Any) -> None:
    """What the sheet's UserTags column did to your tags, and the files with tags whose cell is empty."""
    if report.tag_files:
        verb = "would change" if report.dry_run else "changed"
        out_console.print(f"your tags: {verb} on {count(report.tag_files, 'file')} ({report.tags_added} added, "
                          f"{report.tags_removed} removed) as the UserTags column says", highlight=False)
    else:
        out_console.print("your tags: no change (every file already has the tags its UserTags cell lists)",
                          highlight=False)
    if report.tags_left:
        one = report.tags_left == 1
        err_console.print(f"note: {count(report.tags_left, 'file')} with tags {'has' if one else 'have'} an empty "
                          f"UserTags cell, so {'its' if one else 'their'} tags stay as they are (a cell holding \"-\" "
                          "takes a file's tags off)", highlight=False, soft_wrap=True)


@sheet_app.command("list")
@reports_errors
def list_command(
    index: IndexOption = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help='Print a list on stdout, a record per sheet, most files first: [{"sheet", "path", '
                       '"files"}] ("sheet" its file name, as `sheet import` and `sheet remove` name it; "path" '
                       'null for a sheet imported before paths were kept).')] = False,
    verbose: VerboseOption = False,
) -> None:
    """The sheets imported into the index and how many files each describes."""
    setup_logging(verbose)
    if json_out:                # one record shape whether or not two sheets share a name
        from indexer.metadata_sheet import sheets_described
        print_json(sheets_described(index))
        return
    from indexer.metadata_sheet import sheet_counts
    counts = sheet_counts(index)
    if not counts:
        out_console.print("no sheet imported: `soundsift sheet import SHEET.csv --index …` imports one",
                          highlight=False)
        return
    for name, n in counts.items():
        out_console.print(f"{name}: {count(n, 'file')}", highlight=False)


@sheet_app.command("remove")
@reports_errors
def remove_command(
    name: Annotated[str, typer.Argument(help="The sheet's file name as `soundsift sheet list` shows it, or its path "
                                             "(which tells two sheets of one name apart).")],
    index: IndexOption = None,
    json_out: Annotated[bool, typer.Option("--json", help='Print {"sheet", "files"} on stdout.')] = False,
    verbose: VerboseOption = False,
) -> None:
    """Take away what a sheet said of the files."""
    setup_logging(verbose)
    from indexer.metadata_sheet import remove_sheet
    files = remove_sheet(index, name)
    if json_out:
        print_json({"sheet": name, "files": files})
        return
    out_console.print(f"{name}: removed from {count(files, 'file')}", highlight=False)


@sheet_app.command("export")
@reports_errors
@filter_options
def export_command(
    out: Annotated[Path, typer.Argument(help="The sheet to write: .csv, .tsv/.txt (tab-separated) or .xlsx.")],
    index: IndexOption = None,
    filters: Optional[Any] = None,          # replaced by the filter options (filter_options)
    zero_shot: Annotated[int, typer.Option(
        "--zero-shot", min=0, help="Also give each file its best N zero-shot tags (ZeroShotTags), from its stored "
                                   "vectors with the index's model; 0: none.")] = 0,
    labels: Annotated[Optional[str], typer.Option(
        "--labels", "-l", help="With --zero-shot: comma-separated labels instead of the model's vocabulary.")] = None,
    labels_file: Annotated[Optional[Path], typer.Option(
        "--labels-file", help="With --zero-shot: a text file with one label per line (or a CSV with a label column).")] = None,
    min_score: Annotated[float, typer.Option(
        "--min-score", min=0.0, max=1.0, help="With --zero-shot: leave out tags scoring below this.")] = 0.1,
    model: IndexModelOption = None,
    json_out: Annotated[bool, typer.Option("--json", help='Print {"out", "files"} on stdout.')] = False,
    verbose: VerboseOption = False,
) -> None:
    """Write a library sheet of the indexed files: one row per file with its name and path,
    length, rate, channels, the descriptions it carries or a sheet gave it (FXName,
    Description, Category, SubCategory, CatID, Keywords …), markers, levels, your tags, stored
    AudioSet tags and, with --zero-shot N, its zero-shot tags. Soundminer, BaseHead and
    spreadsheets read it; `soundsift sheet import` reads it back on another index or machine.
    """
    setup_logging(verbose)
    from engine.errors import InvalidQuery
    from engine.sheet_export import check_sheet_output, library_rows, write_library_sheet
    from engine.vocabulary import load_labels_file, one_label_note, parse_labels

    check_sheet_output(out)
    if (labels or labels_file) and not zero_shot:
        raise InvalidQuery("--labels and --labels-file say what --zero-shot tags with; give --zero-shot N too")
    if labels and labels_file:
        raise InvalidQuery("give --labels or --labels-file, not both")
    if not zero_shot:
        rows = library_rows(index, filters)
    else:
        from engine.query import SoundIndex
        label_list = parse_labels(labels) if labels else load_labels_file(labels_file) if labels_file else None
        lone = one_label_note(label_list or [], "give other labels too")
        if lone:            # every file's ZeroShotTags would be that label, as `tag` says
            err_console.print(f"note: {lone}", highlight=False, soft_wrap=True)
        with SoundIndex.open(index, model=model) as sound_index:
            rows = library_rows(index, filters, sound_index=sound_index, zero_shot=zero_shot, labels=label_list,
                                min_score=min_score)
    if not rows and filters is not None:     # say which filter value no indexed file has, as search does
        from engine.query import SoundIndex
        with SoundIndex.open(index) as sound_index:
            say_why_none(sound_index, [], filters)
    written = write_library_sheet(rows, out)
    _note_metadata_not_reread(index, len(rows))
    if json_out:
        print_json({"out": str(written), "files": len(rows)})
        return
    out_console.print(f"wrote {count(len(rows), 'file')} to {out}", highlight=False)


def _note_metadata_not_reread(index: Optional[Path], files: int) -> None:
    """On stderr (with --json too): the exported files whose embedded metadata an older soundsift
    read (engine.catalog_info.metadata_not_reread), whose cells miss what that reader did not read."""
    from engine.catalog import catalog_session, get_meta
    from engine.catalog_info import metadata_not_reread
    from engine.layout import existing_index
    with catalog_session(existing_index(index)) as s:
        older = metadata_not_reread(get_meta(s), files)
    if older:
        one = older == 1
        err_console.print(f"note: the embedded metadata of {count(older, 'file')} was read by an older soundsift, "
                          "which read less (descriptions, markers, cue sheets …), so the sheet's FXName, "
                          "Description … cells miss what it did not read; `soundsift index` of "
                          f"{'its folder' if one else 'their folders'} reads it again, embedding nothing",
                          highlight=False, soft_wrap=True)

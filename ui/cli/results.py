"""What the search-like commands share: filter options → Filters, hits → table or JSON."""
from __future__ import annotations

import csv
import functools
import inspect
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional, Sequence, TypeVar

import typer

from engine.query_span import clock    # times as hits show them (the engine's notes write them so too)
from ui.cli.common import CONTROL_ESCAPES, MODEL_HELP, count, err_console, labelled, out_console, print_json

MIN_DURATION_HELP = "Only files at least this long (seconds)."
MAX_DURATION_HELP = "Only files at most this long (seconds)."
PATH_PREFIX_HELP = (
    "Only files whose path starts with this prefix (e.g. a folder: end it with /, so that Doors/ leaves "
    "out Doors2/); symbolic links in it are resolved, as the index stores paths.")
FORMAT_HELP = "Only these formats or extensions (wav, flac, mp3 …); repeat or comma-separate."
SAMPLE_RATE_HELP = "Only files at these sample rates (48000, 48k, 44.1kHz; 44.1 means kHz); repeat or comma-separate."
CHANNELS_HELP = ("Only files with these channel counts (1 or mono, 2 or stereo, 6 or 5.1 …); repeat or "
                 "comma-separate.")
CATEGORY_HELP = ("Only files whose library category (UCS: from iXML, FLAC/Ogg comments, ID3 or an imported "
                 "sheet: DOORS) or CatID (DOORWood) is one of these; repeat or comma-separate.")
ALL_SEGMENTS_HELP = "List every matching segment instead of the best segment per file."
ALL_COPIES_HELP = ("List every name of a recording as a result of its own: hard links and byte-identical "
                   "copies, which by default are one result listing the others (\"also at\"; JSON \"copies\").")
EXPORT_HELP = ("Also write the results into this folder, ranked: a whole-file match as a copy of the file, a "
               "match on part of a longer recording as that span cut out (WAV at its own rate and bit depth); "
               "soundsift-export.csv lists where each came from.")

# Option declarations the search-like commands share (``name: AllSegmentsOption = False`` …).
AllSegmentsOption = Annotated[bool, typer.Option("--all-segments", help=ALL_SEGMENTS_HELP)]
AllCopiesOption = Annotated[bool, typer.Option("--all-copies", help=ALL_COPIES_HELP)]
MinDurationOption = Annotated[Optional[float], typer.Option("--min-duration", min=0, help=MIN_DURATION_HELP)]
MaxDurationOption = Annotated[Optional[float], typer.Option("--max-duration", min=0, help=MAX_DURATION_HELP)]
PathPrefixOption = Annotated[Optional[str], typer.Option("--path-prefix", help=PATH_PREFIX_HELP)]
FormatOption = Annotated[Optional[List[str]], typer.Option("--format", help=FORMAT_HELP)]
SampleRateOption = Annotated[Optional[List[str]], typer.Option("--sample-rate", help=SAMPLE_RATE_HELP)]
CategoryOption = Annotated[Optional[List[str]], typer.Option("--category", help=CATEGORY_HELP)]
ChannelsOption = Annotated[Optional[List[str]], typer.Option("--channels", help=CHANNELS_HELP)]
MinLoudnessOption = Annotated[Optional[float], typer.Option(
    "--min-loudness", help="Only files at least this loud (LUFS, measured when indexed; e.g. -30).")]
MaxLoudnessOption = Annotated[Optional[float], typer.Option(
    "--max-loudness", help="Only files at most this loud (LUFS; e.g. -40 for quiet room tones).")]
TaggedOption = Annotated[Optional[List[str]], typer.Option(
    "--tagged", help="Only files carrying this tag (yours from `soundsift tags add`, or AudioSet tags stored by "
                     "`soundsift caption --index`); repeat it or separate with commas for any of several.")]
ExportOption = Annotated[Optional[Path], typer.Option("--export", help=EXPORT_HELP)]
WholeFilesOption = Annotated[bool, typer.Option(
    "--whole-files", help="With --export: copy every result's whole file, not only the matched span.")]
PadOption = Annotated[float, typer.Option(
    "--pad", min=0.0, help="With --export: seconds kept before and after each cut-out span.")]
#: ``--model/-m`` of a command that queries an existing index
IndexModelOption = Annotated[Optional[str], typer.Option(
    "--model", "-m", help=MODEL_HELP + " Default: the model that built the index.")]


def split_values(values: Optional[Sequence[str]], option: Optional[str] = None) -> list[str]:
    """An option's values, each also split at commas (a value holding a comma in double quotes:
    engine.vocabulary.split_list), stripped, empty ones dropped. Given the ``option``'s name, a
    value that lists nothing (``--tagged ""`` from an empty shell variable, ``--not ,``) is an
    InvalidQuery naming it, as the HTTP API refuses ``tagged=,`` (ui.http_request.Query.listed):
    dropped, it would widen the search to every file without a word."""
    from engine.errors import InvalidQuery
    from engine.vocabulary import split_list
    items: list[str] = []
    for value in values or ():
        listed = split_list(str(value))
        if option is not None and not listed:
            raise InvalidQuery(f"{option} {str(value)!r} lists nothing (only commas, quotes or spaces): "
                               f"give at least one value, or leave {option} out")
        items += listed
    return items


#: the filter options of the search-like commands (parameter → its declaration), in --help's order
FILTER_OPTIONS: dict[str, Any] = {
    "min_duration": MinDurationOption, "max_duration": MaxDurationOption, "path_prefix": PathPrefixOption,
    "formats": FormatOption, "sample_rates": SampleRateOption, "categories": CategoryOption,
    "channels": ChannelsOption, "min_loudness": MinLoudnessOption, "max_loudness": MaxLoudnessOption,
    "tags": TaggedOption,
}
F = TypeVar("F", bound=Callable[..., Any])


def filter_options(command: F) -> F:
    """Declare :data:`FILTER_OPTIONS` on a command in place of its ``filters`` parameter, and call
    it with the Filters they make (None when none is set; a bad value is InvalidQuery).

    Typer reads a command's options from its signature, so the wrapper's signature is the
    command's with ``filters`` replaced by the options (annotations evaluated, as Typer needs them).
    """
    signature = inspect.signature(command, eval_str=True)
    params = list(signature.parameters.values())
    at = [p.name for p in params].index("filters")
    params[at:at + 1] = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                           annotation=option) for name, option in FILTER_OPTIONS.items()]

    @functools.wraps(command)
    def with_filters(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in FILTER_OPTIONS}
        return command(filters=make_filters(**values), **kwargs)
    with_filters.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    with_filters.__annotations__ = {p.name: p.annotation for p in params}    # typing.get_type_hints reads these
    return with_filters  # type: ignore[return-value]


def make_filters(min_duration: Optional[float], max_duration: Optional[float],
                 path_prefix: Optional[str], formats: Optional[Sequence[str]],
                 sample_rates: Optional[Sequence[str]], categories: Optional[Sequence[str]] = None,
                 channels: Optional[Sequence[str]] = None, min_loudness: Optional[float] = None,
                 max_loudness: Optional[float] = None, tags: Optional[Sequence[str]] = None, *,
                 name_of: Optional[Callable[[str], str]] = None) -> Any:
    """engine.filters.Filters from the command-line options (None when nothing is set).
    ``name_of`` turns a filter's parameter (``sample_rate``) into the name its error messages
    use: the CLI option (``--sample-rate``, :func:`cli_option`) unless told otherwise."""
    from engine.filters import Filters

    name_of = name_of or cli_option
    def listed(values: Optional[Sequence[str]], param: str) -> tuple[str, ...]:
        return tuple(split_values(values, name_of(param)))

    rate_values = tuple(parse_sample_rate(r, name_of("sample_rate")) for r in listed(sample_rates, "sample_rate"))
    channel_values = tuple(parse_channels(c, name_of("channels")) for c in listed(channels, "channels"))
    filters = Filters(min_duration=min_duration, max_duration=max_duration, path_prefix=path_prefix,
                      formats=listed(formats, "format"), sample_rates=rate_values,
                      categories=listed(categories, "category"), channels=channel_values,
                      min_loudness=min_loudness, max_loudness=max_loudness, tags=listed(tags, "tagged"))
    return filters if filters.active else None


#: channel layouts by name (``--channels stereo``)
CHANNEL_NAMES = {"mono": 1, "stereo": 2, "quad": 4, "5.1": 6, "7.1": 8}


def cli_option(param: str) -> str:
    """A filter's parameter name as the CLI spells its option: ``sample_rate`` → ``--sample-rate``."""
    return "--" + param.replace("_", "-")


def parse_sample_rate(text: str, name: str = "--sample-rate") -> int:
    """A ``--sample-rate`` value in Hz: ``48000``, ``48k``, ``44.1kHz``, ``44.1`` (a number under
    1000 is read as kHz: no audio file is sampled that slowly); errors call it ``name``."""
    from engine.errors import InvalidQuery

    value = text.strip().lower().replace(" ", "")
    scale = 1.0
    for unit, factor in (("khz", 1000.0), ("hz", 1.0), ("k", 1000.0)):
        if value.endswith(unit):
            value, scale = value[: -len(unit)], factor
            break
    try:
        hz = float(value) * scale
    except ValueError:
        raise InvalidQuery(f"{name} takes rates such as 48000, 48k or 44.1kHz, got {text!r}") from None
    if hz < 1000 and scale == 1.0 and not text.strip().lower().endswith("hz"):
        hz *= 1000.0
    if not math.isfinite(hz) or hz <= 0:          # 1e309 is inf: int(round(inf)) would be a traceback
        raise InvalidQuery(f"{name} must be a rate above 0, got {text!r}")
    return int(round(hz))


def parse_channels(text: str, name: str = "--channels") -> int:
    """A ``--channels`` value: a count, or mono, stereo, quad, 5.1, 7.1; errors call it ``name``."""
    from engine.errors import InvalidQuery

    value = text.strip().lower()
    if value in CHANNEL_NAMES:
        return CHANNEL_NAMES[value]
    try:
        return int(value)
    except ValueError:
        raise InvalidQuery(f"{name} takes channel counts or names (1 or mono, 2 or stereo, "
                           f"6 or 5.1 …), got {text!r}") from None


def say_why_none(sound_index: Any, hits: Sequence[Any], filters: Any) -> None:
    """When a filtered search found nothing, say on stderr which filter values no indexed file
    has (``--format xyz``, a category or tag the index lacks, a duration beyond every file's)."""
    if hits or filters is None:
        return
    for reason in sound_index.why_no_file(filters):
        err_console.print(f"note: {reason}", highlight=False, soft_wrap=True)


def check_export(folder: Optional[Path], whole_files: bool, pad: float) -> None:
    """Refuse a bad --export before any work: a file given as the folder, or its companion
    options without it; a note when --pad has nothing to pad (--whole-files)."""
    from engine.errors import InvalidOutput
    from engine.outputs import output_folder

    if folder is not None:
        output_folder(folder, "--export")
        if whole_files and pad:
            err_console.print("note: --pad has no effect with --whole-files (each result's whole file is copied)",
                              highlight=False, soft_wrap=True)
    elif whole_files or pad:
        raise InvalidOutput("--whole-files and --pad say how to --export; give --export FOLDER too")


def export_results(hits: Sequence[Any], folder: Optional[Path], whole_files: bool, pad: float,
                   query: str) -> None:
    """Write ``hits`` into ``folder`` (engine.export) and say on stderr what was written."""
    if folder is None:
        return
    from engine.export import export_hits

    folder = folder.expanduser()            # as engine.outputs.output_folder reads it
    earlier = earlier_export(folder)
    if earlier is not None:
        err_console.print(f"note: {display_path(str(folder))} already holds {earlier}: these results are added "
                          "beside it, ranked from 01 again (a name taken gets \" (2)\"); soundsift-export.csv's "
                          "query column says which search wrote each file", highlight=False, soft_wrap=True)
    result = export_hits(hits, folder, whole_files=whole_files, pad=pad, query=query)
    for path, reason in result.failed:
        err_console.print(labelled("not exported:", "bold yellow", cell(f"{path}: {reason}")),
                          highlight=False, soft_wrap=True)
    spans = sum(1 for w in result.written if w.kind == "excerpt")
    files = len(result.written) - spans
    err_console.print(f"exported {len(result.written)} of {count(len(hits), 'result')} to "
                      f"{display_path(str(folder))} ({count(files, 'file')} copied, {count(spans, 'span')} cut out)",
                      highlight=False, soft_wrap=True)
    _note_cut_short_copies(hits, result.written)


def _note_cut_short_copies(hits: Sequence[Any], written: Sequence[Any]) -> None:
    """A note on stderr naming the files copied whole that were cut short when indexed (their
    audio ends before their header says: :func:`cut_short`): the copy is as cut as the file."""
    copied = {w.source for w in written if w.kind == "file"}
    short = sorted({str(Path(h.path)) for h in hits if getattr(h, "header_duration", None) is not None} & copied)
    if short:
        names = ", ".join(display_path(p) for p in short[:3]) + (f" (+{len(short) - 3} more)" if len(short) > 3 else "")
        err_console.print(f"note: copied as {'it is' if len(short) == 1 else 'they are'}, cut short (the audio ends "
                          f"before the header says: an interrupted copy or download): {names}",
                          highlight=False, soft_wrap=True)


def earlier_export(folder: Path) -> Optional[str]:
    """What an earlier export left in ``folder``, as a note says it (``an export of 12 files, last
    query 'rain'``), from its soundsift-export.csv; None when it has none (a new or empty folder)."""
    from engine.export import MANIFEST
    from engine.workbook import from_csv_text

    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        return None
    try:
        with open(manifest, newline="", encoding="utf-8", errors="replace") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error) as e:       # the export goes on; appending to it reports what is wrong
        return f"an export ({MANIFEST} unreadable: {getattr(e, 'strerror', None) or e})"
    if not rows:
        return f"an export ({MANIFEST} lists no file)"
    last = from_csv_text(rows[-1].get("query") or "")
    return f"an export of {count(len(rows), 'file')}, last query {cell(repr(last))}"


def parse_time(text: Optional[str]) -> Optional[float]:
    """Seconds from ``"83.5"``, ``"1:23.5"`` (as hits show a match) or ``"1:01:23.5"``; None stays None."""
    if text is None:
        return None
    parts = str(text).strip().split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if not 1 <= len(values) <= 3 or any(v < 0 or not math.isfinite(v) for v in values) or any(v >= 60 for v in values[1:]):
        raise typer.BadParameter(f"{text!r} is not a time: give seconds (83.5) or minutes:seconds (1:23.5)")
    seconds = 0.0
    for v in values:
        seconds = seconds * 60 + v
    return seconds


def display_path(path: str) -> str:
    """A path for the terminal: relative to the working directory when it lies under it, else as
    given; its control characters as escapes (:func:`cell`)."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return cell(path)
    return cell(path if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel)


#: every control character → its escape, line breaks and tabs too: a table cell is one line
_CELL_ESCAPES = {**CONTROL_ESCAPES, ord("\n"): "\\n", ord("\t"): "\\t"}


def cell(text: str) -> str:
    r"""``text`` for one table cell: control characters shown as escapes, so a file named
    ``esc\x1b[2Jbad.wav`` cannot clear the terminal, nor one holding a line break pass for two,
    nor one named ``invoice\u202eVAW.exe`` (a right-to-left override) read reversed."""
    return text.translate(_CELL_ESCAPES)


NARROW_COLUMNS = 110  # below this terminal width the table shows one path column, no format and no about
#: longest about line in the table (JSON keeps the line whole)
TABLE_ABOUT_CHARS = 100


def show_hits(hits: Sequence[Any], json_out: bool, title: str) -> None:
    """Hits as a JSON list (``Hit.to_dict``) on stdout, or a readable table.

    Paths are shown relative to the working directory when under it, and wrap after a "/", not
    inside a name the column can hold (:class:`PathCell`; a wide table's file column is sized to
    its names: :func:`file_column_width`); figures and times never wrap. A terminal narrower
    than ``NARROW_COLUMNS`` gets one path column instead of file, folder and format (and no "about": what a file or its library sheet says it is). JSON keeps
    the full paths. A file not on disk now (moved without `soundsift relocate`, an unmounted drive)
    says so after its name, as does one cut short when indexed (:func:`cut_short`), and the other
    names of its recording (hard links, byte-identical copies: ``copies``) each on an indented "also at:" line under it. A keyword search adds its BM25 ("words")
    and the named markers it found ("marker"), "more like this" a "copy" column when some hits
    hold the query's very recording.
    """
    if json_out:
        print_json([h.to_dict() for h in hits])
        return
    if not hits:
        out_console.print(f"{cell(title)}: no results")
        return
    from rich.table import Table

    from engine.file_metadata import cut_at_word
    narrow = out_console.width < NARROW_COLUMNS
    names = ("path",) if narrow else ("file", "folder")
    table = Table(title=cell(title))
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    words = any(getattr(h, "keywords", None) is not None for h in hits)     # a keyword search
    if words:
        table.add_column("words", justify="right", no_wrap=True)
    same = any(getattr(h, "same_recording", None) for h in hits)    # "more like this": copies marked
    if same:
        table.add_column("copy", no_wrap=True)
    marked = any(getattr(h, "marker", None) for h in hits)          # a keyword search found named markers
    if marked:
        table.add_column("marker", overflow="fold")
    for name in names:
        table.add_column(name, overflow="fold", ratio=1)    # PathCell: wraps after a "/", not inside a name
    described = not narrow and any(getattr(h, "about", None) for h in hits)   # what files say they are
    if described:
        table.add_column("about", overflow="fold", ratio=2)
    table.add_column("match", justify="right", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    if not narrow:
        table.add_column("format", no_wrap=True)
    rows = []
    for rank, h in enumerate(hits, 1):
        folder = display_path(h.folder)
        name = os.path.basename(h.path) + (" (not on disk)" if getattr(h, "missing", None) else "") + cut_short(h)
        first = cell(os.path.join(folder, name)) if narrow else cell(name)
        where = [PathCell("\n".join([first, *also_at(h)])), *([] if narrow else [PathCell(folder)])]
        fmt = [] if narrow else [f"{h.format} {h.sample_rate / 1000:g} kHz"]
        bm25 = [f"{h.keywords or 0.0:.2f}"] if words else []
        copy = ["same recording" if h.same_recording else ""] if same else []
        mark = [f"{clock(h.marker_at)} {h.marker}" if h.marker else ""] if marked else []
        about = [cut_at_word(h.about or "", TABLE_ABOUT_CHARS)] if described else []
        rows.append((str(rank), f"{h.score:.3f}", *bm25, *copy, *map(cell, mark), *where, *map(cell, about),
                     f"{clock(h.start)}–{clock(h.end)}", clock(h.duration), *map(cell, fmt)))
    if not narrow:
        at = [c.header for c in table.columns].index("file")
        table.columns[at].width = file_column_width(table, rows, at, out_console.width)
    for row in rows:
        table.add_row(*row)
    out_console.print(table)


#: the least width each other wrapping column (folder, about, marker) keeps beside a file column
#: widened to its longest name (:func:`file_column_width`)
MIN_SIDE_COLUMN = 12


def file_column_width(table: Any, rows: Sequence[Sequence[Any]], at: int, width: int) -> Optional[int]:
    """The width to fix the file column (``at``) of ``table`` at, so that a terminal ``width``
    columns wide that cannot show every cell whole still shows each file name on one line: rich
    would narrow the widest wrapping columns alike, folding a name mid-word (``dog-bark│ing.wav``)
    as readily as a folder. The longest name's width, less where the other wrapping columns
    (folder, about, marker) would keep under :data:`MIN_SIDE_COLUMN` each (or their own width;
    a longer name then wraps: :func:`wrap_path`); None, rich's own layout, when every cell fits
    or the file column would get under :data:`MIN_SIDE_COLUMN` itself."""
    from rich.cells import cell_len

    columns = list(zip(*rows))
    widths = [max(cell_len(str(c.header)), *(_longest_line(v) for v in column))
              for c, column in zip(table.columns, columns)]
    wrapping = [i for i, c in enumerate(table.columns) if not c.no_wrap]
    spare = width - sum(w for i, w in enumerate(widths) if i not in wrapping) - (3 * len(widths) + 1)
    if sum(widths[i] for i in wrapping) <= spare:
        return None
    names = max(cell_len(str(v).split("\n", 1)[0]) for v in columns[at])
    fitted = min(names, spare - sum(min(widths[i], MIN_SIDE_COLUMN) for i in wrapping if i != at))
    return fitted if fitted >= MIN_SIDE_COLUMN else None


def _longest_line(value: Any) -> int:
    """Cells of the longest line of a cell's text."""
    from rich.cells import cell_len
    return max(cell_len(line) for line in str(value).split("\n"))


#: where a path may break across lines: after a separator or a space, else (a name wider than the
#: column) after one of these
_PATH_SEPARATORS = "".join(sorted({"/", os.sep}))
_NAME_BREAKS = "-_"


def _pieces(text: str, breaks: str) -> list[str]:
    """``text`` cut after each run of ``breaks`` characters and after each run of spaces."""
    chars = re.escape(breaks)
    return [p for p in re.findall(rf"[^{chars} ]*(?:[{chars}]+| +|$)", text) if p]


def wrap_path(line: str, width: int) -> list[str]:
    """One line of a path cell as lines of at most ``width`` cells, cut after a path separator or a
    space, so that a file or folder name narrower than ``width`` is never cut; a name wider starts
    a line and is cut after a "-" or "_" (a piece wider still is left for rich to fold)."""
    from rich.cells import cell_len

    lines: list[str] = []
    current = ""
    for piece in _pieces(line, _PATH_SEPARATORS):
        parts = [piece]
        if cell_len(piece.rstrip(" ")) > width:        # a name wider than a line: on lines of its own
            parts = _pieces(piece, _NAME_BREAKS)
            if current.strip(" "):
                lines.append(current.rstrip(" "))
                current = ""
        for part in parts:
            if current.strip(" ") and cell_len((current + part).rstrip(" ")) > width:
                lines.append(current.rstrip(" "))
                current = part
            else:
                current += part
    return [*lines, current.rstrip(" ")]


class PathCell:
    """A table cell of paths, one a line (a file name, its folder, "also at: PATH"), that wraps
    where a path may break (:func:`wrap_path`) at the width its column gets: rich folds a path at
    whatever character meets the column's edge, splitting a file name (``…/gcompris/do│g-barking``).
    Its text is shown as it is (no console markup)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.cells import cell_len
        from rich.measure import Measurement

        lines = self.text.split("\n")
        pieces = [p.rstrip(" ") for line in lines for p in _pieces(line, _PATH_SEPARATORS)]
        return Measurement(max(map(cell_len, pieces), default=1), max(map(cell_len, lines), default=1))

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        width = max(1, options.max_width)
        yield Text("\n".join(w for line in self.text.split("\n") for w in wrap_path(line, width)),
                   overflow="fold")


def cut_short(hit: Any) -> str:
    """What a table says after the name of a hit whose file was cut short when indexed (its audio,
    the duration column, ends before its header says: an interrupted copy or download), ``" (cut
    short: header says 1:00.00)"``; "" for a whole file."""
    said = getattr(hit, "header_duration", None)
    return f" (cut short: header says {clock(said)})" if said is not None else ""


def also_at(hit: Any) -> list[str]:
    """The lines a table shows under a hit for the other names of its recording (``copies``: hard
    links, byte-identical copies): ``  also at: PATH`` each, as :func:`display_path` writes it."""
    return [f"  also at: {display_path(p)}" for p in getattr(hit, "copies", None) or ()]

"""``soundsift similar AUDIO_FILE...``: "more like this (or these)" — files of an index that sound alike."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, List, Optional

import typer

from engine.errors import InvalidQuery
from ui.cli.app import app
from ui.cli.common import (IndexOption, VerboseOption, err_console, relays_decoder_output, reports_errors,
                           setup_logging)
from ui.cli.results import (AllCopiesOption, AllSegmentsOption, ExportOption, IndexModelOption, PadOption,
                            WholeFilesOption, check_export, clock, export_results, filter_options, parse_time,
                            say_why_none, show_hits)

log = logging.getLogger("soundsift.similar")


@app.command("similar")
@reports_errors
@relays_decoder_output
@filter_options
def similar_command(
    audio_files: List[Path] = typer.Argument(..., metavar="AUDIO_FILE...",
                                             help="An audio file: indexed (its stored vectors are used) or "
                                                  "not (it is embedded now). Several: more like all of them."),
    index: IndexOption = None,
    k: int = typer.Option(10, "-k", "--top-k", min=1, help="Number of results."),
    json_out: bool = typer.Option(False, "--json", help="Print results as a JSON list on stdout."),
    all_segments: AllSegmentsOption = False,
    all_copies: AllCopiesOption = False,
    filters: Optional[Any] = None,          # replaced by the filter options (filter_options): engine.filters.Filters
    start: Optional[str] = typer.Option(None, "--start", help="Only the part of AUDIO_FILE from this "
                                        "time: seconds (83.5) or minutes:seconds (1:23.5), as matches are shown."),
    end: Optional[str] = typer.Option(None, "--end", help="Only the part of AUDIO_FILE up to this time "
                                      "(one past its end is cut to its end, with a note)."),
    export: ExportOption = None,
    whole_files: WholeFilesOption = False,
    pad: PadOption = 0.0,
    model: IndexModelOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Files that sound like AUDIO_FILE, or like the part of it from --start to --end; given
    several files, like all of them together (the mean of their vectors).

    An indexed file comes first with score ≈ 1; its stored segment vectors are the query (with
    --start/--end, those inside the span; a span holding no whole segment, such as a 1 s slam in
    a long recording, is decoded and embedded itself, at least 0.1 s of it). A file not in the
    index is embedded now (with --start/--end, only that excerpt). Results
    that hold AUDIO_FILE's very recording (a copy, its MP3, a quieter or resampled version; see
    `soundsift duplicates`) are marked: "same recording" in the table, `"same_recording": true`
    in JSON, where AUDIO_FILE's own hit is true too and every other hit false (whole files only,
    not with --start/--end or --all-segments). Names of one recording (hard links, byte-identical
    copies) are one result listing the others ("also at", JSON "copies"; --all-copies: each its
    own); AUDIO_FILE's own leads its names whatever they are called."""
    setup_logging(verbose)
    from engine.query import SoundIndex

    check_export(export, whole_files, pad)
    per_file = not all_segments
    if len(audio_files) > 1:            # more like these: the mean of their vectors
        if start is not None or end is not None:
            raise InvalidQuery("--start and --end take a moment of one file; give one AUDIO_FILE with them")
        with SoundIndex.open(index, model=model) as sound_index:
            audio_files = _usable_examples(sound_index, audio_files)
            hits = sound_index.similar_to_files([str(p) for p in audio_files], k=k, filters=filters,
                                                per_file=per_file, collapse_copies=not all_copies)
            say_why_none(sound_index, hits, filters)
        shown, query = " + ".join(p.name for p in audio_files), ", ".join(map(str, audio_files))
    else:
        audio_file = audio_files[0]
        span = {"start": parse_time(start), "end": parse_time(end)}
        shown_end = span["end"]
        with SoundIndex.open(index, model=model) as sound_index:
            file_id = sound_index.file_id_for_path(audio_file)
            if span["end"] is not None:         # an end past the file's: cut to its end, with a note
                span["end"], shown_end = _within_file(sound_index, audio_file, file_id, span["start"], span["end"])
            if file_id is not None:
                log.debug("%s is indexed (file id %d): using its stored vectors", audio_file, file_id)
                hits = sound_index.similar_to_file(file_id, k=k, filters=filters, per_file=per_file,
                                                   collapse_copies=not all_copies, **span)
            else:
                _refuse_failed(sound_index, audio_file)
                if audio_file.is_file():        # else the search says what is wrong with the path
                    log.info("%s is not in the index: embedding it", audio_file)
                hits = sound_index.search_audio(str(audio_file), k=k, filters=filters, per_file=per_file,
                                                collapse_copies=not all_copies, **span)
            say_why_none(sound_index, hits, filters)
        if per_file and start is None and end is None:      # which hits are copies of this very recording
            from engine.duplicates import mark_copies
            # JSON: every hit carries the mark, AUDIO_FILE's own true; the table shows only its copies
            hits = mark_copies(str(audio_file), hits, itself=True if json_out else None)
        part = (f" {clock(span['start'] or 0.0)}–{'end' if shown_end is None else clock(shown_end)}"
                if start is not None or end is not None else "")
        shown, query = f"{audio_file.name}{part}", f"{audio_file}{part}"
    show_hits(hits, json_out, f"similar to {shown}")
    export_results(hits, export, whole_files, pad, f"similar to {query}")


def _usable_examples(sound_index: Any, audio_files: List[Path]) -> List[Path]:
    """The AUDIO_FILEs a search by several can use: the indexed ones, and files the index does
    not hold and has no reason to refuse (embedded now). One that does not exist, a folder, or a
    file the last index run could not read is said once with its reason
    (engine.query_catalog.why_not_indexed) and left out, not decoded to fail again;
    InvalidQuery when none is left."""
    usable, left_out = [], {}
    for path in audio_files:
        if sound_index.file_id_for_path(path) is not None or (
                path.is_file() and sound_index.failed_reason(path) is None):
            usable.append(path)
        else:
            left_out[path] = ("a folder, not a sound file (name the files in it)" if path.is_dir()
                              else sound_index.why_not_indexed(path))
    if not usable:
        raise InvalidQuery(f"none of the {len(audio_files)} AUDIO_FILEs can be searched by: "
                           + "; ".join(f"{p}: {why}" for p, why in left_out.items()))
    for path, why in left_out.items():
        log.warning("%s: %s; left out of the search", path, why)
    return usable


def _refuse_failed(sound_index: Any, audio_file: Path) -> None:
    """InvalidQuery saying why AUDIO_FILE could not be indexed (its error row's reason), where
    the last index run failed on it: embedding it would load the model only to fail the same way."""
    why = sound_index.failed_reason(audio_file)
    if why is not None:
        raise InvalidQuery(f"{audio_file} is not in index {sound_index.root}: it could not be indexed: {why} "
                           "(fix or replace the file and run `soundsift index` again)")


def _within_file(sound_index: Any, audio_file: Path, file_id: Optional[int], start: Optional[float],
                 end: float) -> tuple[Optional[float], Optional[float]]:
    """``(end to search by, end to show)``: an ``end`` past AUDIO_FILE's end is cut to its end
    (engine.query_span: cut_to_length, its length from file_seconds), with one note on stderr
    saying so."""
    from engine.query_span import cut_to_length, file_seconds
    seconds = file_seconds(sound_index, audio_file if file_id is None else file_id)
    cut = cut_to_length(str(audio_file), start, end, seconds, "--end")
    if cut.note is not None:
        err_console.print(f"note: {cut.note}", highlight=False, soft_wrap=True)
    return cut.end, cut.shown

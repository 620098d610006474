"""``soundsift search "TEXT"``: the files of an index that best match a description."""
from __future__ import annotations

from typing import Any, List, Optional

import typer

from engine.query_defaults import EXCLUDE_WEIGHT
from ui.cli.app import app
from ui.cli.common import IndexOption, VerboseOption, reports_errors, setup_logging
from ui.cli.results import (AllCopiesOption, AllSegmentsOption, ExportOption, IndexModelOption, PadOption,
                            WholeFilesOption, check_export, export_results, filter_options, say_why_none, show_hits,
                            split_values)


@app.command("search")
@reports_errors
@filter_options
def search_command(
    text: str = typer.Argument(..., help="What the sound is like, e.g. \"dog barking in the rain\"."),
    index: IndexOption = None,
    k: int = typer.Option(10, "-k", "--top-k", min=1, help="Number of results."),
    json_out: bool = typer.Option(False, "--json", help="Print results as a JSON list on stdout."),
    all_segments: AllSegmentsOption = False,
    all_copies: AllCopiesOption = False,
    exclude: Optional[List[str]] = typer.Option(None, "--not", help="Sounds not wanted, e.g. --not thunder: "
                                                "segments that sound like them score lower (cosine minus "
                                                "--not-weight × their cosine); repeat or comma-separate."),
    exclude_weight: Optional[float] = typer.Option(None, "--not-weight", min=0.0, max=10.0,
                                                   help="How much each --not sound's cosine is taken off "
                                                   f"(default {EXCLUDE_WEIGHT:g}); only with --not."),
    keywords: bool = typer.Option(False, "--keywords", "-w", help="Also match the words of file and folder "
                                  "names, the descriptions files carry, tags and captions (BM25), fused with "
                                  "the sound match; JSON hits "
                                  "gain \"keywords\". Ranks files, so not with --all-segments."),
    filters: Optional[Any] = None,          # replaced by the filter options (filter_options): engine.filters.Filters
    export: ExportOption = None,
    whole_files: WholeFilesOption = False,
    pad: PadOption = 0.0,
    model: IndexModelOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Search an index by text. JSON: [{"path", "start", "end", "score", …, "copies"}], best first:
    one result per recording, its other names (hard links, byte-identical copies) in "copies"."""
    setup_logging(verbose)
    from engine.errors import InvalidQuery
    from engine.query import SoundIndex

    unwanted = split_values(exclude, "--not")
    if exclude_weight is not None and not unwanted:     # else the weight would go unused without a word
        raise InvalidQuery("--not-weight is the weight of the sounds --not excludes, and no --not was given: "
                           "add --not TEXT, or leave --not-weight out")

    check_export(export, whole_files, pad)
    if keywords and all_segments:
        raise InvalidQuery("--keywords ranks whole files, so it does not go with --all-segments; drop one")
    with SoundIndex.open(index, model=model, text_only=True) as sound_index:     # no torch for a text query
        hits = sound_index.search_text(text, k=k, filters=filters, per_file=not all_segments,
                                       keywords=keywords, exclude=unwanted,
                                       exclude_weight=EXCLUDE_WEIGHT if exclude_weight is None else exclude_weight,
                                       collapse_copies=not all_copies)
        say_why_none(sound_index, hits, filters)
    without = "".join(f" not {u!r}" for u in unwanted)
    show_hits(hits, json_out, f"search {text!r}{without}" + (" (sound + keywords)" if keywords else ""))
    export_results(hits, export, whole_files, pad, text + without)

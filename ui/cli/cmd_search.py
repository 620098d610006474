"""``soundsift search "TEXT"``: the files of an index that best match a description."""
from __future__ import annotations

from typing import List, Optional

import typer

from ui.cli.app import app
from ui.cli.common import INDEX_HELP, MODEL_HELP, reports_errors, setup_logging
from ui.cli.results import (ALL_SEGMENTS_HELP, FORMAT_HELP, MAX_DURATION_HELP, MIN_DURATION_HELP,
                            PATH_PREFIX_HELP, SAMPLE_RATE_HELP, make_filters, show_hits)


@app.command("search")
@reports_errors
def search_command(
    text: str = typer.Argument(..., help="What the sound is like, e.g. \"dog barking in the rain\"."),
    index: Optional[str] = typer.Option(None, "--index", "-i", help=INDEX_HELP),
    k: int = typer.Option(10, "-k", "--top-k", min=1, help="Number of results."),
    json_out: bool = typer.Option(False, "--json", help="Print results as a JSON list on stdout."),
    all_segments: bool = typer.Option(False, "--all-segments", help=ALL_SEGMENTS_HELP),
    min_duration: Optional[float] = typer.Option(None, "--min-duration", min=0, help=MIN_DURATION_HELP),
    max_duration: Optional[float] = typer.Option(None, "--max-duration", min=0, help=MAX_DURATION_HELP),
    path_prefix: Optional[str] = typer.Option(None, "--path-prefix", help=PATH_PREFIX_HELP),
    formats: Optional[List[str]] = typer.Option(None, "--format", help=FORMAT_HELP),
    sample_rates: Optional[List[str]] = typer.Option(None, "--sample-rate", help=SAMPLE_RATE_HELP),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help=MODEL_HELP + " Default: the model that built the index."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Search an index by text. JSON: [{"path", "start", "end", "score", …}], best first."""
    setup_logging(verbose)
    from engine.query import SoundIndex

    filters = make_filters(min_duration, max_duration, path_prefix, formats, sample_rates)
    with SoundIndex.open(index, model=model) as sound_index:
        hits = sound_index.search_text(text, k=k, filters=filters, per_file=not all_segments)
    show_hits(hits, json_out, f"search {text!r}")

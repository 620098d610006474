"""``soundsift similar AUDIO_FILE``: "more like this" — files of an index that sound alike."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import typer

from ui.cli.app import app
from ui.cli.common import INDEX_HELP, MODEL_HELP, reports_errors, setup_logging
from ui.cli.results import (ALL_SEGMENTS_HELP, FORMAT_HELP, MAX_DURATION_HELP, MIN_DURATION_HELP,
                            PATH_PREFIX_HELP, SAMPLE_RATE_HELP, make_filters, show_hits)

log = logging.getLogger("soundsift.similar")


@app.command("similar")
@reports_errors
def similar_command(
    audio_file: Path = typer.Argument(..., help="An audio file: indexed (its stored vectors are "
                                                "used) or not (it is embedded now)."),
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
    """Files that sound like AUDIO_FILE. An indexed file comes first with score ≈ 1."""
    setup_logging(verbose)
    from engine.query import SoundIndex

    filters = make_filters(min_duration, max_duration, path_prefix, formats, sample_rates)
    per_file = not all_segments
    with SoundIndex.open(index, model=model) as sound_index:
        file_id = sound_index.file_id_for_path(audio_file)
        if file_id is not None:
            log.debug("%s is indexed (file id %d): using its stored vectors", audio_file, file_id)
            hits = sound_index.similar_to_file(file_id, k=k, filters=filters, per_file=per_file)
        else:
            log.info("%s is not in the index: embedding it", audio_file)
            hits = sound_index.search_audio(str(audio_file), k=k, filters=filters, per_file=per_file)
    show_hits(hits, json_out, f"similar to {audio_file.name}")

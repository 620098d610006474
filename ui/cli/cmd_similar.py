"""``soundsift similar AUDIO_FILE``: "more like this" — files of an index that sound alike."""
from __future__ import annotations

import logging
from pathlib import Path

import typer

from ui.cli.app import app
from ui.cli.common import IndexOption, VerboseOption, relays_decoder_output, reports_errors, setup_logging
from ui.cli.results import (AllSegmentsOption, FormatOption, IndexModelOption, MaxDurationOption, MinDurationOption,
                            PathPrefixOption, SampleRateOption, make_filters, show_hits)

log = logging.getLogger("soundsift.similar")


@app.command("similar")
@reports_errors
@relays_decoder_output
def similar_command(
    audio_file: Path = typer.Argument(..., help="An audio file: indexed (its stored vectors are "
                                                "used) or not (it is embedded now)."),
    index: IndexOption = None,
    k: int = typer.Option(10, "-k", "--top-k", min=1, help="Number of results."),
    json_out: bool = typer.Option(False, "--json", help="Print results as a JSON list on stdout."),
    all_segments: AllSegmentsOption = False,
    min_duration: MinDurationOption = None,
    max_duration: MaxDurationOption = None,
    path_prefix: PathPrefixOption = None,
    formats: FormatOption = None,
    sample_rates: SampleRateOption = None,
    model: IndexModelOption = None,
    verbose: VerboseOption = False,
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

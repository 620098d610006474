"""``soundsift tag AUDIO_FILE``: zero-shot labels for a sound; needs a model, not an index."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from engine.zeroshot import DEFAULT_TEMPLATE
from ui.cli.app import app
from ui.cli.common import MODEL_HELP, out_console, print_json, reports_errors, setup_logging

TEMPLATE_HELP = "Prompt each label is put in; must contain {label}."


@app.command("tag")
@reports_errors
def tag_command(
    audio_file: Path = typer.Argument(..., help="The audio file to tag."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l",
                                         help="Comma-separated labels, e.g. \"dog,rain,car horn\"."),
    labels_file: Optional[Path] = typer.Option(
        None, "--labels-file", help="Text file with one label per line (or a CSV with a "
                                    "display_name/label/name column)."),
    top: int = typer.Option(5, "--top", "-t", min=1, help="Number of labels to show."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help=MODEL_HELP + " Default: soundsift-base."),
    template: str = typer.Option(DEFAULT_TEMPLATE, "--template", help=TEMPLATE_HELP),
    json_out: bool = typer.Option(False, "--json",
                                  help='Print [{"label", "score", "cosine"}] on stdout, best first.'),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Zero-shot tags: score = softmax over the labels of the model's scaled cosine.

    Labels default to the shipped vocabulary (AudioSet classes for soundsift-base,
    a few hundred everyday sounds otherwise).
    """
    setup_logging(verbose)
    from engine import zeroshot
    from engine.errors import InvalidQuery
    from engine.models import load_model
    from engine.vocabulary import default_labels, load_labels_file, parse_labels

    if labels and labels_file:
        raise InvalidQuery("give --labels or --labels-file, not both")
    if not audio_file.is_file():
        raise InvalidQuery(f"audio file {audio_file} does not exist")
    the_model = load_model(model)
    if labels:
        label_list = parse_labels(labels)
    elif labels_file:
        label_list = load_labels_file(labels_file)
    else:
        label_list = default_labels(the_model)
    vector = zeroshot.audio_query_vector(the_model, audio_file)
    tags = zeroshot.tag(the_model, vector, label_list, top=top, template=template)
    if json_out:
        print_json(tags)
        return
    from rich.table import Table

    table = Table(title=f"{audio_file.name} — {the_model.name}, {len(label_list)} labels")
    table.add_column("label")
    table.add_column("score", justify="right")
    table.add_column("cosine", justify="right")
    for t in tags:
        table.add_row(t["label"], f"{t['score']:.3f}", f"{t['cosine']:.3f}")
    out_console.print(table)

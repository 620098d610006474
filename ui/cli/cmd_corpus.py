"""``soundsift corpus build|list|labels|audit``: the offline training corpus (Debian sound packages +
synthesis), the zero-shot evaluator's label CSV from one of its manifests, and a label audit."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ui.cli.app import MARKUP, SoundsiftTyper, app
from ui.cli.common import (ProgressOption, VerboseOption, count, err_console, out_console, print_json,
                           reports_errors, setup_logging, shows_progress)

corpus_app = SoundsiftTyper(help="Build the offline training corpus (see trainer/corpus); write label CSVs from it.",
                         no_args_is_help=True, add_completion=False,
                         rich_markup_mode=MARKUP)   # also `python -m trainer.corpus`
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("build")
@reports_errors
def build_command(
    out: Path = typer.Option(Path("corpus"), "--out", "-o", help="Output folder."),
    sources: Optional[List[str]] = typer.Option(None, "--sources", "--source", "-s",
                                                help="Sources to use, comma-separated or repeated (default: all)."),
    max_per_label: int = typer.Option(40, "--max-per-label", min=1, help="Training clips per label."),
    val_max_per_label: int = typer.Option(40, "--val-max-per-label", min=1, help="Validation clips per label."),
    val_sources: Optional[List[str]] = typer.Option(None, "--val-sources", "--val-source",
                                                    help="Sources held out for validation, comma-separated or repeated."),
    synth_per_label: int = typer.Option(8, "--synth-per-label", min=1, help="Synthetic clips per label."),
    max_seconds: float = typer.Option(30.0, "--max-seconds", help="Clips are cut to this length."),
    seed: int = typer.Option(0, "--seed"),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Folder of .debs and unpacked packages."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    verbose: VerboseOption = False,
) -> None:
    """Fetch the sound packages, synthesise, label, balance, split by source, write manifests."""
    setup_logging(verbose)
    from trainer.corpus.runner import build_corpus

    summary = build_corpus(out, _names(sources), max_per_label=max_per_label,
                           val_max_per_label=val_max_per_label, val_sources=_names(val_sources),
                           seed=seed, synth_per_label=synth_per_label, max_seconds=max_seconds,
                           cache=cache)
    if json_out:
        print_json(summary.__dict__)
    else:
        out_console.print(f"{summary.train} training + {summary.val} validation clips in {out} "
                          f"({sum(summary.seconds.values()):.0f} s of audio); see {out / 'stats.json'}",
                          highlight=False)


def _names(values: Optional[List[str]]) -> Optional[List[str]]:
    """``--sources a,b --sources c`` → ``[a, b, c]``; None when none were given."""
    names = [name.strip() for value in values or [] for name in value.split(",") if name.strip()]
    return names or None


@corpus_app.command("list")
def list_command(
    json_out: bool = typer.Option(False, "--json", help="Print the sources as a JSON list on stdout."),
) -> None:
    """Print the sources the recipe knows."""
    from trainer.corpus.runner import all_sources
    if json_out:
        print_json(list(all_sources()))
    else:
        print("\n".join(all_sources()))


@corpus_app.command("labels")
@reports_errors
def labels_command(
    manifest: Path = typer.Argument(..., help="Corpus manifest (.jsonl or .csv), e.g. corpus/val.jsonl."),
    out: Path = typer.Option(..., "--out", "-o", help="Label CSV to write (audio,label)."),
    exclude_labels: Optional[str] = typer.Option(None, "--exclude-labels",
                                                 help='Comma-separated labels to leave out, e.g. "gun reload,beep".'),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    verbose: VerboseOption = False,
) -> None:
    """Write the CSV `soundsift eval zeroshot` reads: one audio,label row per item (label: its first
    tag, else its label field; audio relative to the manifest's folder, which is then -a)."""
    setup_logging(verbose)
    from trainer.corpus.eval_labels import write_label_csv

    exclude = [x.strip() for x in (exclude_labels or "").split(",") if x.strip()]
    result = write_label_csv(manifest, out, exclude)
    summary = {"out": str(out), "rows": len(result.rows), "labels": len(result.labels),
               "excluded_rows": result.excluded, "unmatched_exclude_labels": result.unmatched,
               "audio_dir": str(manifest.parent)}
    if json_out:
        print_json(summary)
        return
    out_console.print(f"{count(summary['rows'], 'row')}, {count(summary['labels'], 'label')} → {out}"
                      + (f" ({result.excluded} excluded)" if result.excluded else "")
                      + f"; evaluate with: soundsift eval zeroshot {out} -a {manifest.parent} -m MODEL",
                      highlight=False)


@corpus_app.command("audit")
@reports_errors
def audit_command(
    manifest: Path = typer.Argument(..., help="Manifest (.jsonl or .csv) with audio, tags or label, and source."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="A model NOT trained on this manifest (default: soundsift-base)."),
    with_vocabulary: bool = typer.Option(False, "--with-vocabulary",
                                         help="Let the model's default vocabulary (AudioSet classes for "
                                              "soundsift-base) compete with the manifest's labels."),
    min_clips: int = typer.Option(3, "--min-clips", min=1, help="Report groups with at least this many clips."),
    top: int = typer.Option(25, "--top", "--top-k", "-k", min=1,
                            help="How many of the worst groups to print (also -k/--top-k, the name other "
                                 "commands give a count)."),
    json_out: bool = typer.Option(False, "--json", help='Print the whole report as JSON on stdout: {"manifest", '
                                                        '"model", "clips", "labels", "extra_labels", "groups", '
                                                        '"errors"}, "errors" the unreadable clips left out '
                                                        '[{"path", "reason"}] as `index` lists them.'),
    progress: ProgressOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Rank each (source, label) group by how low the model ranks its own label among all the
    manifest's labels ("This is a sound of {label}."); the top of the list is worth listening to."""
    setup_logging(verbose)
    from dataclasses import asdict

    from engine.errors import InvalidDataset
    from engine.models import load_model
    from engine.vocabulary import default_labels
    from trainer.corpus.audit import audit_manifest, format_report

    if not manifest.is_file():                # said before seconds of loading a model
        raise InvalidDataset(f"{manifest}: no such file" if not manifest.exists() else f"{manifest}: not a file")
    the_model = load_model(model)
    extra = default_labels(the_model) if with_vocabulary else ()
    report = audit_manifest(manifest, the_model, extra_labels=extra, min_clips=min_clips,
                            progress=shows_progress(progress))
    if json_out:                # the unreadable clips under the name and shape every command gives them
        found = asdict(report)
        print_json({**{k: v for k, v in found.items() if k != "skipped"}, "errors": found["skipped"]})
        return
    print("\n".join(format_report(report, top)))
    if not report.groups:                     # an empty table alone reads as "nothing to listen to"
        err_console.print(f"no (source, label) group has {min_clips} clips or more, so none is ranked; "
                          "lower --min-clips", highlight=False, soft_wrap=True)

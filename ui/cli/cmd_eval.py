"""``soundsift eval retrieval|zeroshot``: batch evaluation by the LAION-CLAP protocol."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from engine.query_defaults import DEFAULT_TEMPLATE, LABEL_QUERY_TEMPLATE
from ui.cli.app import MARKUP, SoundsiftTyper, app
from ui.cli.common import (MODEL_HELP, ProgressOption, VerboseOption, count, err_console, out_console, print_json,
                           reports_errors, setup_logging, shows_progress)

eval_app = SoundsiftTyper(
    help="Measure a model: caption retrieval (Clotho, AudioCaps, manifests) and zero-shot "
         "classification (ESC-50, UrbanSound8K, audio/label CSVs).",
    no_args_is_help=True,
    rich_markup_mode=MARKUP,
)
app.add_typer(eval_app, name="eval")

AUDIO_DIR_HELP = ("Folder holding the audio files the CSV names (default: the CSV's own folder, where a "
                  "training manifest's paths start, as soundsift train reads them).")
REPORT_HELP = "Also write report.md and PNG plots into this folder."
CACHE_HELP = ("Embedding cache folder (default: embeddings/ in $SOUNDSIFT_CACHE, else "
              "~/.cache/soundsift/embeddings).")


# Option declarations both eval commands take.
AudioDirOption = Annotated[Optional[Path], typer.Option("--audio-dir", "-a", help=AUDIO_DIR_HELP)]
EvalModelOption = Annotated[Optional[str], typer.Option("--model", "-m", help=MODEL_HELP + " Default: soundsift-base.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the figures as JSON on stdout.")]
ReportOption = Annotated[Optional[Path], typer.Option("--report", help=REPORT_HELP)]
CacheDirOption = Annotated[Optional[Path], typer.Option("--cache-dir", help=CACHE_HELP)]
CacheOption = Annotated[bool, typer.Option("--cache/--no-cache", help="Reuse and store audio embeddings.")]


def _show(result: dict[str, Any], json_out: bool, print_table: Callable[[dict[str, Any]], None],
          report: Optional[Path]) -> None:
    """The figures as JSON or tables on stdout, then where the report went (stderr)."""
    if json_out:
        print_json(result)
    else:
        print_table(result)
    if report is not None:
        err_console.print(f"report written to {report / 'report.md'}", highlight=False, soft_wrap=True)


@eval_app.command("retrieval")
@reports_errors
def retrieval_command(
    csv: Path = typer.Argument(..., help="Clotho (file_name, caption_1…5), AudioCaps "
                               "(audiocap_id, youtube_id, start_time, caption) or manifest (audio, caption) CSV."),
    audio_dir: AudioDirOption = None,
    model: EvalModelOption = None,
    json_out: JsonOption = False,
    report: ReportOption = None,
    batch_size: int = typer.Option(32, "--batch-size", "-b", min=1, help="Clips or captions per model call."),
    cache_dir: CacheDirOption = None,
    cache: CacheOption = True,
    progress: ProgressOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Text→audio and audio→text retrieval: R@1/5/10, mAP@10, median and mean rank.

    Every caption queries all audio, every audio queries all captions; ties rank pessimistically.
    """
    setup_logging(verbose)
    from trainer.evaluation.runner import evaluate_retrieval

    result = evaluate_retrieval(csv, audio_dir, model, batch_size=batch_size, cache_dir=cache_dir,
                                use_cache=cache, progress=shows_progress(progress), report_dir=report)
    _show(result, json_out, _print_retrieval, report)


@eval_app.command("zeroshot")
@reports_errors
def zeroshot_command(
    csv: Path = typer.Argument(..., help="ESC-50 (filename, fold, target, category), UrbanSound8K "
                               "(slice_file_name, fold, classID, class) or generic (audio, label) CSV."),
    audio_dir: AudioDirOption = None,
    model: EvalModelOption = None,
    template: str = typer.Option(DEFAULT_TEMPLATE, "--template", "-t",
                                 help="Prompt per class; {label} is replaced by the class name."),
    query_template: str = typer.Option(LABEL_QUERY_TEMPLATE, "--query-template",
                                       help="Text→audio query per class (every clip of the class "
                                            "is relevant); default the bare label."),
    json_out: JsonOption = False,
    report: ReportOption = None,
    batch_size: int = typer.Option(32, "--batch-size", "-b", min=1, help="Clips or prompts per model call."),
    cache_dir: CacheDirOption = None,
    cache: CacheOption = True,
    progress: ProgressOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Zero-shot classification: top-1/top-5 accuracy, per class and per fold; and text→audio
    R@1/5/10 and mAP@10 with each class label as the query."""
    setup_logging(verbose)
    from trainer.evaluation.runner import evaluate_zeroshot

    result = evaluate_zeroshot(csv, audio_dir, model, template=template, query_template=query_template,
                               batch_size=batch_size,
                               cache_dir=cache_dir, use_cache=cache, progress=shows_progress(progress),
                               report_dir=report)
    _show(result, json_out, _print_zeroshot, report)


def _print_retrieval(result: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title=f"retrieval · {result['model']} · {count(result['n_audio'], 'clip')}, "
                    f"{count(result['n_captions'], 'caption')}")
    keys = ("R@1", "R@5", "R@10", "mAP@10", "median_rank", "mean_rank")
    t.add_column("direction")
    for k in keys:
        t.add_column(k, justify="right")
    for direction, title in (("t2a", "text → audio"), ("a2t", "audio → text")):
        row = result[direction]
        t.add_row(title, *(f"{row[k]:.2f}" if k.endswith("rank") else f"{100 * row[k]:.2f}%" for k in keys))
    out_console.print(t)


def _print_zeroshot(result: dict[str, Any]) -> None:
    from rich.table import Table

    out_console.print(f"zero-shot · {result['model']} · {count(result['n'], 'clip')}: "
                      f"top-1 {100 * result['top1']:.2f}%, top-5 {100 * result['top5']:.2f}%, "
                      f"top-10 {100 * result['top10']:.2f}%, mAP@10 {100 * result['mAP@10']:.2f}%",
                      highlight=False)
    t2a = result["t2a"]
    out_console.print(f"text → audio · {count(result['t2a_queries'], 'class query', 'class queries')}: "
                      + ", ".join(f"{k} {100 * t2a[k]:.2f}%" for k in ("R@1", "R@5", "R@10", "mAP@10")),
                      highlight=False)
    if result.get("per_fold"):
        t = Table(title="per fold")
        for col in ("fold", "n", "top-1", "top-5", "top-10", "mAP@10"):
            t.add_column(col, justify="right")
        for fold, row in result["per_fold"].items():
            t.add_row(fold, str(row["n"]), *(f"{100 * row[k]:.2f}%" for k in ("top1", "top5", "top10", "mAP@10")))
        out_console.print(t)
    t = Table(title="per class (top-1)")
    t.add_column("class")
    t.add_column("accuracy", justify="right")
    for label, acc in sorted(result["per_class"].items(), key=lambda kv: (-kv[1], kv[0])):
        t.add_row(label, f"{100 * acc:.2f}%")
    out_console.print(t)

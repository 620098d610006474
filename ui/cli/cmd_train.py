"""``soundsift train CONFIG``: train or fine-tune soundsift's CLAP from a JSON/TOML config."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from engine.errors import InvalidConfig
from ui.cli.app import app
from ui.cli.common import (VerboseOption, count, err_console, labelled, out_console, print_json, reports_errors,
                           setup_logging)

if TYPE_CHECKING:
    from trainer.loop import TrainResult


@app.command("train")
@reports_errors
def train_command(
    config: Path = typer.Argument(..., help="Training config (.json or .toml), e.g. trainer/configs/toy.json."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in the output folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (overrides the config's out_dir; for a cached-features config, the model "
                                              "folder, overriding its out)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimizer steps (overrides the config)."),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", min=1,
        help="Stop after this many steps but keep the schedule of --steps (checkpoint, then --resume later)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (overrides the config)."),
    progress: Optional[bool] = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on stderr (default: the config's \"progress\" "
                                               "when it says true or false, else when stderr is a terminal)."),
    json_out: bool = typer.Option(False, "--json", help='Print the run summary as JSON on stdout ({"trainer", '
                                                        '"out_dir", "model_dir", "steps", "seconds", …}; a key '
                                                        'the run has no value for is null, not left out).'),
    verbose: VerboseOption = False,
) -> None:
    """Train a model from a config; the result is a model folder --model accepts.

    A training-loop config writes checkpoints, log.jsonl and OUT/model (a model folder that
    --model and load_model accept). A config with "trainer": "cached-features" (e.g.
    trainer/configs/soundsift_base.json) trains soundsift-base's projections on cached frozen
    features instead and writes the model folder to OUT (default: the config's "out")."""
    setup_logging(verbose)
    from engine.outputs import output_folder
    from trainer.config import load_config, trainer_of

    # the output place is checked before torch loads (a second or more), as run_training checks it
    if trainer_of(config) == "cached-features":
        rejected = [flag for flag, given in (("--resume", resume), ("--max-steps", max_steps is not None),
                                             ("--device", device is not None)) if given]
        if rejected:
            raise InvalidConfig(f"{config}: {', '.join(rejected)} cannot be used with a cached-features config "
                                "(it trains on the CPU in one go, without checkpoints); use --steps and --out only")
        if out is not None:                     # the config's own out: read by cached_train, which needs torch
            output_folder(out)
        from trainer.distributed import launched_world_size
        if launched_world_size() > 1:
            raise InvalidConfig(f"{config}: a cached-features config trains in one process on the CPU; "
                                "run it without torchrun")
        _train_cached(config, out, steps, json_out)
        return

    cfg = load_config(config, steps=steps, device=device, progress=progress)
    output_folder(out.expanduser() if out is not None else cfg.out_dir)
    from trainer.train import run_training
    result = run_training(cfg, resume=resume, out_dir=out, max_steps=max_steps, source=config)
    from trainer.distributed import exit_torchrun_process, launched_rank, launched_world_size
    if launched_rank() == 0:   # under torchrun, rank 0 alone reports (it wrote the model and log)
        _report(result, config, out, json_out, _rerun_options(steps, device))
        if result.validation_error:
            err_console.print(labelled("error:", "bold red",
                                       f"the final validation failed ({result.validation_error}); the model in "
                                       f"{result.model_dir} is complete, without final validation figures: lower "
                                       "val_batch_size or fix the validation set, then measure it with soundsift "
                                       "eval retrieval"), highlight=False, soft_wrap=True)
    # Ctrl-C (SIGINT/SIGTERM under torchrun): checkpointed, said how to continue; the shell's code
    # for SIGINT. A failed final validation: the model is written, its figures are not.
    code = 130 if result.interrupted else 1 if result.validation_error else 0
    if launched_world_size() > 1:
        exit_torchrun_process(code)
    if code:
        raise typer.Exit(code)


def _rerun_options(steps: Optional[int], device: Optional[str]) -> str:
    """The overrides a continuation must repeat: without --steps, --resume would run the config's
    steps (another schedule); without --device, another device."""
    return "".join(f" {flag} {value}" for flag, value in (("--steps", steps), ("--device", device))
                   if value is not None)


def _report(result: TrainResult, config: Path, out: Optional[Path], json_out: bool, overrides: str = "") -> None:
    """Print a loop run's summary: JSON on stdout with --json; otherwise what was trained and its
    validation figures on stdout; for a stopped run, how to continue on stderr, with --json too
    (``overrides``: the command line's options that the continuation repeats)."""
    summary = {"trainer": "loop", "out_dir": str(result.out_dir), "steps": result.steps,
               "seconds": round(result.seconds, 3),
               "first_loss": result.losses[0] if result.losses else None,
               "last_loss": result.losses[-1] if result.losses else None,
               "model_dir": str(result.model_dir) if result.model_dir.is_dir() else None,
               "validation": result.validation, "validation_step": result.validated_at,
               "validation_error": result.validation_error or None}     # a summary's keys are always there
    stopped = not summary["model_dir"]
    if stopped:                  # a note on stderr, with --json too (the JSON has no command to run)
        from trainer.distributed import launched_world_size
        world = launched_world_size()
        launch = (f"torchrun --standalone --nproc_per_node {world} -m ui.cli train" if world > 1
                  else "soundsift train")               # the same number of processes resumes exactly
        err_console.print(f"stopped at step {result.steps}; continue with: {launch} {config} --resume"
                          + (f" --out {out}" if out else "") + overrides, highlight=False, soft_wrap=True)
    if json_out:
        print_json(summary)
        return
    if not stopped:
        out_console.print(f"{_what_was_trained(result)} → model in {result.model_dir}", highlight=False)
    if result.validation:
        from trainer.loop import format_metrics
        at = "" if result.validated_at in (None, result.steps) else f" (at step {result.validated_at})"
        out_console.print(f"validation{at}: {format_metrics(result.validation)}", highlight=False)


def _what_was_trained(result: TrainResult) -> str:
    """"trained N steps in S s", or for a resumed run the steps this run took and where it began
    (``result.steps`` is the step reached, ``result.seconds`` this run's time alone)."""
    start, end = result.resumed_at, result.steps
    if start == 0:
        return f"trained {count(end, 'step')} in {result.seconds:.1f} s"
    if start >= end:
        return f"nothing left to train: the run had reached its step {end}"
    return (f"trained steps {start + 1}–{end} (resumed at step {start}; "
            f"{count(end - start, 'step')} in {result.seconds:.1f} s)")


def _train_cached(config: Path, out: Optional[Path], steps: Optional[int], json_out: bool) -> None:
    """Run a cached-feature config (trainer.cached_train); --steps and --out override it."""
    from trainer.cached_train import CachedTrainConfig, run

    cfg = CachedTrainConfig.from_file(config)
    if steps is not None:
        cfg.steps = steps
    model_dir = Path(out or cfg.out)
    report = run(cfg, model_dir)
    summary = {"trainer": "cached-features", "out_dir": str(model_dir), "model_dir": str(model_dir),
               "steps": cfg.steps, "seconds": round(report["seconds"]["total"], 3),
               "final_trained_on_validation": report["final_trained_on_validation"],
               **{k: _finite(report[k]) for k in ("baseline", "start", "final")}}
    held_out = report["seeds"].get(str(cfg.seed))
    summary["held_out"] = _finite(held_out) if cfg.final_with_val and held_out is not None else None
    if json_out:
        print_json(summary)
        return
    out_console.print(f"trained {count(cfg.steps, 'step')} in {summary['seconds']:.1f} s → model in {model_dir}",
                      highlight=False)
    if cfg.final_with_val:
        if held_out is not None:
            out_console.print(f"validation (seed {cfg.seed}, trained without the validation clips): "
                              f"{_figures(held_out)}", highlight=False)
        out_console.print(f"on the validation clips, which the saved model also trained on: {_figures(report['final'])}",
                          highlight=False)
    else:
        out_console.print(f"validation: {_figures(report['final'])}", highlight=False)
    err_console.print(f"(the start and the baseline are logged above; all in {model_dir / 'training_report.json'})",
                      highlight=False, soft_wrap=True)


def _figures(figures: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in _finite(figures).items() if k not in ("step", "loss") and v is not None)


def _finite(figures: dict[str, float]) -> dict[str, float | None]:
    """Figures with NaN (an empty subset, e.g. no unseen labels) as None, so --json stays valid JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in figures.items()}

"""``soundsift train CONFIG``: train or fine-tune soundsift's CLAP from a JSON/TOML config."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ui.cli.app import app
from ui.cli.common import err_console, print_json, reports_errors, setup_logging


@app.command("train")
@reports_errors
def train_command(
    config: Path = typer.Argument(..., help="Training config (.json or .toml), e.g. trainer/configs/toy.json."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in the output folder."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (overrides the config's out_dir)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimizer steps (overrides the config)."),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", min=1,
        help="Stop after this many steps but keep the schedule of --steps (checkpoint, then --resume later)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (overrides the config)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON on stdout."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Train on the config's datasets; writes checkpoints, log.jsonl and OUT/model (a model folder
    that --model and load_model accept)."""
    setup_logging(verbose)
    from trainer.config import load_config
    from trainer.train import run_training

    cfg = load_config(config, steps=steps, device=device, progress=False if no_progress else None)
    result = run_training(cfg, resume=resume, out_dir=out, max_steps=max_steps)
    summary = {"out_dir": str(result.out_dir), "steps": result.steps, "seconds": round(result.seconds, 3),
               "first_loss": result.losses[0] if result.losses else None,
               "last_loss": result.losses[-1] if result.losses else None,
               "model_dir": str(result.model_dir) if result.model_dir.is_dir() else None,
               "validation": result.validation}
    if json_out:
        print_json(summary)
        return
    if summary["model_dir"]:
        err_console.print(f"trained {result.steps} steps in {result.seconds:.1f} s → model in {result.model_dir}")
    else:
        err_console.print(f"stopped at step {result.steps}; continue with: soundsift train {config} --resume"
                          + (f" --out {out}" if out else ""))
    if result.validation:
        from trainer.loop import format_metrics
        err_console.print(f"validation: {format_metrics(result.validation)}", highlight=False)

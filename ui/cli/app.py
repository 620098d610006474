"""The Typer application every ``ui/cli/cmd_*.py`` module registers its commands on."""
from __future__ import annotations

import typer

app = typer.Typer(
    name="soundsift",
    help="Search a sound library by text, by example, or tag it with zero-shot labels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

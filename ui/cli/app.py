"""The Typer application every ``ui/cli/cmd_*.py`` module registers its commands on."""
from __future__ import annotations

import typer

#: help texts are Markdown: paragraphs reflow to the terminal's width (rich mode keeps every
#: source line break, which left ragged lines) and `code` is shown as code
MARKUP = "markdown"

app = typer.Typer(
    name="soundsift",
    help="Search a sound library by text, by example, or tag it with zero-shot labels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=MARKUP,
)

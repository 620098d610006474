"""The ``soundsift`` command line.

Each command lives in its own module ``ui/cli/cmd_<name>.py`` and registers itself on
:data:`ui.cli.app.app`; this package imports them all, so adding a command is adding
a file.
"""
from __future__ import annotations

import importlib
import pkgutil

from ui.cli import common
from ui.cli.app import app

__all__ = ["app", "main"]


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{info.name}")


_register_commands()


def main() -> None:
    """Console-script entry point (common.run_command_line: its exit skips collecting the heap, and
    a stdout closed early ends it quietly)."""
    import typer.main

    common.run_command_line(typer.main.get_command(app))

"""``python -m trainer.corpus build|list|labels|audit``: the same commands as ``soundsift corpus``.

One parser serves both entry points (:mod:`ui.cli.cmd_corpus`), so an option added there is
here too; lists are comma-separated or the option repeated (``--sources tuxpaint,tones``).
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the ``soundsift corpus`` command group under this module's name."""
    import typer.main

    from ui.cli.cmd_corpus import corpus_app

    command = typer.main.get_command(corpus_app)
    return command.main(args=argv, prog_name="python -m trainer.corpus")


if __name__ == "__main__":
    sys.exit(main())

"""``python -m trainer.corpus build|list|labels|audit``: the same commands as ``soundsift corpus``.

One parser serves both entry points (:mod:`ui.cli.cmd_corpus`), so an option added there is
here too; lists are comma-separated or the option repeated (``--sources tuxpaint,tones``).
"""
from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    """Run the ``soundsift corpus`` command group under this module's name, as ``soundsift`` runs
    (:func:`ui.cli.common.run_command_line`; it exits the process with the command's status, as
    Click's standalone mode does)."""
    import typer.main

    from ui.cli.cmd_corpus import corpus_app
    from ui.cli.common import run_command_line

    run_command_line(typer.main.get_command(corpus_app), args=argv, prog_name="python -m trainer.corpus")


if __name__ == "__main__":
    main()

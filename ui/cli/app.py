"""The Typer application every ``ui/cli/cmd_*.py`` module registers its commands on."""
from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

#: help texts are Markdown: paragraphs reflow to the terminal's width (rich mode keeps every
#: source line break, which left ragged lines) and `code` is shown as code
MARKUP = "markdown"


def _untyped_flags(params: list[Any]) -> list[Any]:
    """``params`` with no value type shown beside on/off flags: Typer 0.29 prints ``<bool>`` there,
    as if ``--rebuild`` took a value (``--rebuild true`` is then an "unexpected extra argument")."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class FlagsCommand(TyperCommand):
    """A command whose help lists its flags without a value type (:func:`_untyped_flags`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


class FlagsGroup(TyperGroup):
    """A command group whose help lists its flags without a value type (:func:`_untyped_flags`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


class SoundsiftTyper(typer.Typer):
    """``typer.Typer`` whose groups and commands show flags without a value type in their help."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", FlagsGroup)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", FlagsCommand)
        return super().command(*args, **kwargs)


app = SoundsiftTyper(
    name="soundsift",
    help="Search a sound library by text, by example, or tag it with zero-shot labels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=MARKUP,
)


#: the packages whose versions ``soundsift --version`` lists beside its own (for bug reports)
VERSION_PACKAGES = ("torch", "transformers", "faiss-cpu", "faiss-gpu", "onnxruntime", "soundfile", "av")


def version_line() -> str:
    """``soundsift X (Python …, torch …, …)``, read from the installed packages' metadata without
    importing them, so it prints at once."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None
    parts = [f"Python {platform.python_version()}"]
    parts += [f"{name} {v}" for name in VERSION_PACKAGES if (v := installed(name))]
    return f"soundsift {installed('soundsift') or 'unknown (not installed)'} ({', '.join(parts)})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                       help="Print soundsift's version and its main packages' and exit.")) -> None:
    """Search a sound library by text, by example, or tag it with zero-shot labels."""

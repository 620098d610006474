"""The Typer application every ``ui/cli/cmd_*.py`` module registers its commands on."""
from __future__ import annotations

from typing import Any, get_args

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ui.cli.common import stops_quietly_when_output_closes

#: help texts are Markdown: paragraphs reflow to the terminal's width (rich mode keeps every
#: source line break, which left ragged lines) and `code` is shown as code
MARKUP = "markdown"
#: a value's type as help names it (Typer 0.29 prints ``<str>``, ``<int range>``, ``<list[str]>``)
TYPE_NAMES = {str: "TEXT", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN"}
#: a path parameter's kind (Typer's ``file_okay``/``dir_okay``) as help names it
PATH_NAMES = {"file": "FILE", "dir": "FOLDER"}


def range_words(param: Any) -> str:
    """``param``'s bounds as help shows them after its type (``" ≥ 1"``, ``" 0 to 10"``); "" for none."""
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None and high is not None:
        return f" {low:g} to {high:g}"
    return f" ≥ {low:g}" if low is not None else f" ≤ {high:g}" if high is not None else ""


def type_name(param: Any) -> str:
    """What one value of ``param`` is, as help shows it: TEXT, INTEGER, FLOAT, PATH (FILE,
    FOLDER), with its range in words (``INTEGER ≥ 1``, ``FLOAT 0 to 10``)."""
    desc = getattr(param, "type_descriptor", None)
    if desc is None:                    # a Typer without it (it came in 0.2x): click's own name
        return str(getattr(param.type, "name", "value")).upper() + range_words(param)
    if desc.is_path:
        name = PATH_NAMES.get(desc.path_type, "PATH")
    else:
        annotation = get_args(desc.annotation)[0] if desc.is_list else desc.annotation
        name = TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)).upper())
    return name + range_words(param)


class ReadableOption(TyperOption):
    """An option whose help names its value's type for a person (:func:`type_name`), its range
    in it: ``INTEGER ≥ 1`` where Typer 0.29 prints ``<int range> [x>=1]``; a metavar given
    (``--watch SECONDS``) is kept, and an on/off flag shows none (Typer prints ``<bool>``, as if
    ``--rebuild`` took a value: ``--rebuild true`` is then an "unexpected extra argument")."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag:
            return ""
        return type_name(self) if self.metavar is None else self.metavar + range_words(self)

    def _get_number_range_help_str(self) -> str | None:
        return None                     # in the type (display_type_rich)


class ReadableArgument(TyperArgument):
    """An argument shown as its metavar, by default its name in capitals, singular with ``...``
    when it takes several (``PATH...``, not ``{paths}...``), optional ones in brackets, and its
    type as :func:`type_name` says it where the name does not already (``AUDIO_FILE... PATH``)."""

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        return [self.display_name_raw if self.required else f"[{self.display_name_raw}]"]

    def display_type_rich(self, ctx: Any) -> str | None:
        shown = type_name(self)
        return None if shown == self.display_name_raw.removesuffix("...") else shown

    def _get_number_range_help_str(self) -> str | None:
        return None                     # in the type (display_type_rich)


def argument_metavar(param: TyperArgument) -> str:
    """``param``'s metavar: as given, else its name in capitals (``text`` → ``TEXT``); one
    taking several values ends in ``...``, its name made singular (``paths`` → ``PATH...``)."""
    if param.metavar is not None:
        name = param.metavar.removesuffix("...")
    else:
        name = param.name.upper()
        if param.nargs != 1 and name.endswith("S"):
            name = name[:-1]
    return name + "..." if param.nargs != 1 else name


def _readable_help(params: list[Any]) -> list[Any]:
    """``params`` shown for a person in help: options as :class:`ReadableOption`, arguments as
    :class:`ReadableArgument` (what Typer built, its class changed: only how it is shown differs;
    names, parsing and checks stay Typer's)."""
    for param in params:
        if type(param) is TyperOption:
            param.__class__ = ReadableOption
        elif type(param) is TyperArgument:
            param.metavar = argument_metavar(param)
            param.__class__ = ReadableArgument
    return params


class FlagsCommand(TyperCommand):
    """A command whose help reads for a person (:func:`_readable_help`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable_help(super().get_params(ctx))


class FlagsGroup(TyperGroup):
    """A command group whose help reads for a person (:func:`_readable_help`), and which stops
    quietly when its stdout closes early, help and ``--version`` (printed while its context is
    made) as its commands (run by invoke): :func:`ui.cli.common.stops_quietly_when_output_closes`."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable_help(super().get_params(ctx))

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with stops_quietly_when_output_closes():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with stops_quietly_when_output_closes():
            return super().invoke(ctx)


class SoundsiftTyper(typer.Typer):
    """``typer.Typer`` whose groups and commands show their parameters for a person in help
    (:func:`_readable_help`)."""

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

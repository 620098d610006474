"""Every command README.md shows is parsed against the real command line, without running it.

README says each of its commands was run; nothing kept that true as options were renamed and
added. This test reads the commands out of README.md — the lines of its shell code blocks and the
commands quoted inline in its prose — and parses each one:

- ``soundsift …`` (also ``.venv/bin/soundsift``, ``python -m ui.cli``, ``torchrun … -m ui.cli``,
  and ``python -m trainer.corpus``, which README calls ``soundsift corpus`` under another name)
  against the Click commands Typer builds from :data:`ui.cli.app` (``make_context`` with strict
  parsing: unknown commands and options, missing values, values of the wrong type or out of range,
  extra arguments all fail; nothing is invoked, no model is loaded);
- ``python benchmarks/X.py …`` and ``python -m MODULE …`` of this repository against an argparse
  parser rebuilt from the script's own ``add_argument`` calls (read from its source with ``ast``:
  importing a benchmark would import torch and faiss, and none has a parser builder to import);
  ``python -c`` snippets are parsed as Python and the names they import from this repository
  looked up in its source (:func:`check_snippet`), as are README's ``python`` code blocks;
  ``python -m pytest`` is listed as skipped.

Values Click passes on as text but a command reads itself before any work (``--sample-rate``,
``--channels``, ``--start``, ``--memory-budget``, ``--labels``, ``caption --source``, ``corpus
build --sources``) go through those readers too (:func:`own_value_readers`); rules between
options that a command checks in its body (``--keywords`` with ``--all-segments``) are not
checked. Every long option README names, in prose too, must exist in some command or script.

What a README path names is the reader's file, not this checkout's: a path parameter whose value
fails only a file-system check (``exists=True`` and the like) is not a README error
(:func:`_about_the_file_system`). A command in a code block must
be complete; one quoted inline in prose may name a command or an option without its values
(``soundsift caption --index``, ``soundsift tags add …``): missing arguments and option values
are tolerated there, but every word it does write must parse (:func:`check_words`).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import io
import re
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Sequence

import pytest
import typer

try:                         # Typer 0.29 parses with its own copy of Click's core (typer._click)
    from typer._click import exceptions as cli_errors
except ImportError:          # older Typer: Click itself
    import click.exceptions as cli_errors  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: code blocks whose lines are shell commands; in one that shows ``$ `` prompts only those lines are
#: (the rest is output), and a block without a language holds commands only where it shows prompts
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console", "zsh"}
#: ``python -m MODULE`` that is the ``soundsift`` command line under another name: the words it adds
SOUNDSIFT_MODULES = {"ui.cli": (), "trainer.corpus": ("corpus",)}
#: programs README runs whose options are not soundsift's to check (each is listed as skipped)
FOREIGN_MODULES = {"pytest"}
#: options README names that belong to other programs: pip's, curl's and torchrun's
FOREIGN_OPTIONS = {"--no-deps", "--data-binary", "--standalone", "--nproc_per_node", "--shutdown-timeout"}
#: the skips a passing README may have: foreign tools
ALLOWED_SKIPS = ("pytest's options",)
#: at least this many commands are checked (README had 84 soundsift commands in code blocks, 56
#: inline and 44 argparse ones when this test was written): an extraction that quietly stops
#: finding commands fails, while prose may still be rewritten
MIN_CHECKED = {"soundsift": 70, "soundsift (inline)": 40, "argparse": 30}

_ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON = re.compile(r"python(\d+(\.\d+)?)?")
_SHELL_OPERATORS = set("();<>|&")
#: a long option named anywhere in README's text (``--min-score``, ``--progress/--no-progress``)
_LONG_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
#: what Typer's and Click's path checks say of a path because of the disk it is checked on
_DISK_STATE = re.compile(r"(does not exist|is a file|is a directory|is not (readable|writable|executable))\.?$")
#: Click's message for an option given last without its value ("Option '--index' requires an argument.")
_NEEDS_VALUE = re.compile(r"requires (an|\d+) arguments?")


@dataclass(frozen=True)
class Command:
    """One simple command as README writes it: its words, the README line it starts on, and
    whether it is quoted inline in prose (a mention) rather than in a code block."""

    words: tuple[str, ...]
    line: int
    inline: bool = False

    def __str__(self) -> str:
        where = "inline" if self.inline else "code block"
        return f"README.md:{self.line} ({where}): {shlex.join(self.words)}"


@dataclass
class Report:
    """What :func:`check_readme` found: the commands checked (by kind), skipped (with the reason)
    and failed (with the parser's message)."""

    checked: dict[str, list[Command]] = field(default_factory=dict)
    skipped: list[tuple[Command, str]] = field(default_factory=list)
    failures: list[tuple[Command, str]] = field(default_factory=list)

    def summary(self) -> str:
        counts = ", ".join(f"{kind}: {len(found)}" for kind, found in sorted(self.checked.items()))
        lines = [f"checked {counts}; skipped {len(self.skipped)}; failed {len(self.failures)}"]
        lines += [f"FAILED {command}\n    {error}" for command, error in self.failures]
        lines += [f"skipped {command}: {reason}" for command, reason in self.skipped]
        return "\n".join(lines)


# --- finding the commands -------------------------------------------------------------------


def code_blocks(markdown: str) -> Iterator[tuple[str, int, list[str]]]:
    """(language, line number of its first line, lines) of every fenced code block."""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        i += 1
        if not fence.startswith("```"):
            continue
        language, body, start = fence[3:].strip().lower(), [], i
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        yield language, start + 1, body


def code_block_lines(markdown: str) -> Iterator[tuple[int, str]]:
    """(line number, logical line) of every shell code block: ``\\`` continuations joined, the
    ``$ `` prompt taken off; in a block with prompts only the prompted lines (the rest is output)."""
    for language, start, body in code_blocks(markdown):
        prompted = any(line.lstrip().startswith("$ ") for line in body)
        if language in SHELL_LANGUAGES and (language or prompted):
            yield from _logical_lines(body, start, prompted)


def _logical_lines(body: list[str], first_line: int, prompted: bool) -> Iterator[tuple[int, str]]:
    joined, start = "", first_line
    for number, line in enumerate(body, first_line):
        if not joined:
            start = number
        if line.rstrip().endswith("\\"):
            joined += line.rstrip()[:-1] + " "
            continue
        text, joined = (joined + line).strip(), ""
        if prompted:
            if not text.startswith("$ "):
                continue
            text = text[2:]
        if text:
            yield start, text


def inline_spans(markdown: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every inline code span outside code blocks, a span broken over
    lines read as one line (Markdown spans do not cross paragraphs, so neither does the search)."""
    lines = markdown.splitlines()
    prose = []
    in_block = False
    for line in lines:
        if line.strip().startswith("```"):
            in_block = not in_block
            prose.append("")
        else:
            prose.append("" if in_block else line)
    text = "\n".join(prose)
    for paragraph in re.finditer(r"(?:[^\n]+\n?)+", text):
        for span in re.finditer(r"(?<!`)`([^`]+)`(?!`)", paragraph.group()):
            line = text.count("\n", 0, paragraph.start() + span.start()) + 1
            yield line, " ".join(span.group(1).split())


def simple_commands(text: str) -> list[list[str]]:
    """The simple commands of one shell line: split at ``|``, ``&&``, ``;`` …, redirections and
    ``# comments`` dropped, leading ``NAME=value`` assignments taken off. Raises ValueError for
    unbalanced quotes."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    tokens = iter(list(lexer))
    for token in tokens:
        if token and set(token) <= _SHELL_OPERATORS:
            if "<" in token or ">" in token:
                next(tokens, None)                        # the redirection's target
            else:
                commands.append([])
            continue
        if not commands[-1] and _ENV_ASSIGNMENT.match(token):
            continue
        commands[-1].append(token)
    return [words for words in commands if words]


def readme_commands(markdown: str) -> tuple[list[Command], list[tuple[int, str, str]]]:
    """Every simple command of README's shell code blocks and inline spans, and the lines whose
    quotes do not balance ((line, text, error): a command that cannot even be split)."""
    found: list[Command] = []
    broken: list[tuple[int, str, str]] = []
    sources = [(n, t, False) for n, t in code_block_lines(markdown)] + [(n, t, True) for n, t in inline_spans(markdown)]
    for number, text, inline in sources:
        try:
            commands = simple_commands(text)
        except ValueError as e:
            if _program(text.split()[0] if text.split() else "") is not None:
                broken.append((number, text, str(e)))
            continue
        found += [Command(tuple(words), number, inline) for words in commands if _program(words[0])]
    return found, broken


def _program(word: str) -> str | None:
    """``soundsift``, ``python``, ``torchrun`` or ``benchmark`` when ``word`` starts one of those
    (``.venv/bin/soundsift``, ``python3``, ``benchmarks/query.py``, ``exact_seek.py``), else None."""
    name = word.rsplit("/", 1)[-1]
    if word == "soundsift" or word.endswith("/bin/soundsift"):      # not ~/.cache/soundsift
        return "soundsift"
    if _PYTHON.fullmatch(name):
        return "python"
    if name == "torchrun":
        return "torchrun"
    if name.endswith(".py") and (word.startswith("benchmarks/") or (ROOT / "benchmarks" / name).is_file()):
        return "benchmark"
    return None


# --- checking them --------------------------------------------------------------------------


@functools.cache
def soundsift_command() -> typer.core.TyperGroup:
    """The ``soundsift`` command tree as Typer builds it from :data:`ui.cli.app`."""
    from ui.cli import app

    return typer.main.get_command(app)


def _about_the_file_system(error: Exception) -> bool:
    """Whether ``error`` is a path parameter's value failing only because of what is on disk here
    (``exists=True``, ``dir_okay=False`` …), not because of what README wrote."""
    if not isinstance(error, cli_errors.BadParameter) or isinstance(error, cli_errors.MissingParameter):
        return False
    param = error.param
    descriptor = getattr(param, "type_descriptor", None)           # Typer 0.29
    is_path = getattr(descriptor, "is_path", False) or type(getattr(param, "type", None)).__name__ == "Path"
    return bool(is_path and _DISK_STATE.search(error.format_message()))


def _pending_words(ctx) -> list[str]:
    protected = getattr(ctx, "_protected_args", None)
    if protected is None:                                 # Click before 8.2
        protected = ctx.protected_args
    return [*protected, *ctx.args]


def check_words(root, words: Sequence[str], *, mention: bool = False, prog: str = "soundsift") -> str | None:
    """Parse ``words`` (what follows the program name) with the Typer/Click command ``root`` and
    its subcommands, running nothing: None when they parse, else the parser's message. A
    ``mention`` (a command quoted in prose) may leave out required arguments, option values and
    the subcommand."""
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            ctx = root.make_context(prog, list(words), resilient_parsing=False)
            command = root
            while hasattr(command, "resolve_command"):            # a group: on to its subcommand
                pending = _pending_words(ctx)
                if not pending:
                    if mention:
                        return None
                    raise cli_errors.UsageError("no subcommand given", ctx)
                name, sub, rest = command.resolve_command(ctx, pending)
                ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=False)
                command = sub
        if not mention:
            return _own_value_error(ctx)
    except (typer.Exit, getattr(cli_errors, "Exit", typer.Exit)) as e:          # --help, --version
        return None if e.exit_code == 0 else f"exit code {e.exit_code}"
    except cli_errors.MissingParameter as e:
        return None if mention else _message(e)
    except cli_errors.UsageError as e:
        if _about_the_file_system(e):
            return None
        if mention and (type(e).__name__ == "NoArgsIsHelpError" or _NEEDS_VALUE.search(e.format_message())):
            return None
        return _message(e)
    except cli_errors.ClickException as e:
        return _message(e)
    return None


def own_value_readers() -> dict[tuple[str | None, str], Callable[[Any], object]]:
    """The commands' own readers of option values Click passes on as text (``--sample-rate 44.1k``,
    ``--start 1:23.5``, ``--memory-budget 25%``, ``--source yamnet``), by (command, parameter name;
    command None: wherever the parameter is): each raises on a value its command refuses before
    any work, so a README value they refuse fails as surely as an unknown option."""
    from engine.errors import InvalidQuery
    from engine.index_choice import parse_memory_budget
    from engine.vocabulary import parse_labels
    from trainer.caption_loop import SOURCES
    from trainer.corpus.runner import check_source_names
    from ui.cli.cmd_corpus import _names
    from ui.cli.results import parse_channels, parse_sample_rate, parse_time, split_values

    def caption_source(value: str) -> None:
        if value not in SOURCES:              # as trainer.caption_loop.caption_files says it
            raise InvalidQuery(f"--source must be one of {', '.join(SOURCES)}, not {value!r}")
    return {(None, "sample_rates"): lambda v: [parse_sample_rate(r) for r in split_values(v)],
            (None, "channels"): lambda v: [parse_channels(c) for c in split_values(v)],
            ("similar", "start"): parse_time, ("similar", "end"): parse_time,
            ("index", "memory_budget"): parse_memory_budget, (None, "labels"): parse_labels,
            ("caption", "source"): caption_source, ("corpus build", "sources"): lambda v: check_source_names(_names(v) or [])}


def _own_value_error(ctx) -> str | None:
    """What the command's own reader says of a value parsed into ``ctx`` (its leaf command), or None."""
    from engine.errors import SoundsiftError

    command = " ".join(ctx.command_path.split()[1:])
    for (where, name), read in own_value_readers().items():
        value = ctx.params.get(name)
        if value is None or where not in (None, command):
            continue
        try:
            read(value)
        except (SoundsiftError, ValueError, cli_errors.BadParameter) as e:     # the readers' complaints
            option = next((p.opts[0] for p in ctx.command.params if p.name == name), name)
            return f"{ctx.command_path}: {option} {value!r}: {getattr(e, 'message', None) or e}"
    return None


def _message(error) -> str:
    ctx = getattr(error, "ctx", None)
    return (f"{ctx.command_path}: " if ctx is not None else "") + error.format_message()


class ArgumentError(Exception):
    """What a rebuilt argparse parser would print and exit 2 with."""


class ReadmeArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`ArgumentError` instead of printing and exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise ArgumentError(message)

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        if status:
            raise ArgumentError(message or f"exit status {status}")
        raise _HelpShown


class _HelpShown(Exception):
    pass


class UnreadableParser(Exception):
    """A script's parser that cannot be rebuilt from its source (why, in words)."""


_TYPES = {"int": int, "float": float}
_ACTIONS = {"BooleanOptionalAction": argparse.BooleanOptionalAction}


def _literal(node: ast.AST, what: str) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError) as e:
        raise UnreadableParser(f"{what} is not a literal: {ast.unparse(node)}") from e


@functools.cache
def argparse_parser(script: Path) -> argparse.ArgumentParser:
    """The argparse parser ``script`` builds, rebuilt from its ``add_argument`` calls (names,
    action, nargs, choices, required, int/float types; any other type reads strings as they are)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))

    def builds_parser(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Call) and (getattr(n.func, "attr", None) or getattr(n.func, "id", None)) == "ArgumentParser"
                   for n in ast.walk(node))
    scopes = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and builds_parser(n)]
    if not scopes and builds_parser(tree):
        scopes = [tree]
    if len(scopes) != 1:
        raise UnreadableParser(f"{len(scopes)} functions build an ArgumentParser")
    calls = sorted((n for n in ast.walk(scopes[0]) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)),
                   key=lambda n: (n.lineno, n.col_offset))
    if any(c.func.attr == "add_subparsers" for c in calls):                    # type: ignore[attr-defined]
        raise UnreadableParser("subcommands (add_subparsers)")
    parser = ReadmeArgumentParser(prog=script.name)
    for call in (c for c in calls if c.func.attr == "add_argument"):           # type: ignore[attr-defined]
        names = [_literal(a, "an argument name") for a in call.args]
        parser.add_argument(*names, **_argparse_options(call))                  # type: ignore[arg-type]
    return parser


def _argparse_options(call: ast.Call) -> dict[str, object]:
    options: dict[str, object] = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise UnreadableParser(f"**options in {ast.unparse(call)}")
        if kw.arg in ("nargs", "choices", "required", "dest", "const"):
            options[kw.arg] = _literal(kw.value, kw.arg)
        elif kw.arg == "type":
            name = kw.value.id if isinstance(kw.value, ast.Name) else None
            if name in _TYPES:
                options["type"] = _TYPES[name]
        elif kw.arg == "action":
            if isinstance(kw.value, ast.Constant):
                options["action"] = kw.value.value
            elif isinstance(kw.value, ast.Attribute) and kw.value.attr in _ACTIONS:
                options["action"] = _ACTIONS[kw.value.attr]
            else:
                raise UnreadableParser(f"action {ast.unparse(kw.value)}")
    return options


def check_argparse(script: Path, words: Sequence[str]) -> str | None:
    """Parse ``words`` with ``script``'s rebuilt parser: None when they parse, else its message."""
    try:
        parser = argparse_parser(script)
    except (UnreadableParser, SyntaxError) as e:
        return f"{script.relative_to(ROOT)}: its parser could not be read ({e})"
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            parser.parse_args(list(words))
    except _HelpShown:
        return None
    except ArgumentError as e:
        return f"{script.relative_to(ROOT)}: {e}"
    return None


def _module_path(module: str, package_file: str) -> Path | None:
    """``module``'s file in this repository: ``module.py``, else the package's ``package_file``
    (``__main__.py``: what ``python -m`` runs; ``__init__.py``: what an import reads)."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / package_file):
        if candidate.is_file():
            return candidate
    return None


def _module_file(module: str) -> Path | None:
    return _module_path(module, "__main__.py")


def _top_level_names(tree: ast.Module) -> set[str]:
    """The names a module defines at its top level (in ``if`` and ``try`` blocks too), and those
    its ``__all__`` lists (a package's lazy ``__getattr__`` serves those: ``from engine import
    SoundIndex``)."""
    names: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) \
                        and isinstance(node.value, (ast.List, ast.Tuple)):
                    names.update(e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            for block in ("body", "orelse", "finalbody", "handlers"):
                if isinstance(node, (ast.If, ast.Try, ast.With, ast.ExceptHandler)):
                    visit(getattr(node, block, []))
    visit(tree.body)
    return names


def _module_source(module: str) -> Path | None:
    return _module_path(module, "__init__.py")


def check_snippet(code: str) -> str | None:
    """A ``python -c`` snippet, run nowhere: None when it is Python whose imports from this
    repository name modules and names that exist (read from their source), else what is wrong."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        return f"python -c: not Python: {e}"
    for node in ast.walk(tree):
        modules = [(a.name, []) for a in node.names] if isinstance(node, ast.Import) else \
                  [(node.module, [a.name for a in node.names])] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        for module, names in modules:
            if not (ROOT / module.split(".")[0]).is_dir():
                continue                                # another distribution's module
            source = _module_source(module)
            if source is None:
                return f"python -c: no module {module} in this repository"
            defined = _top_level_names(ast.parse(source.read_text(encoding="utf-8")))
            missing = [n for n in names if n != "*" and n not in defined and _module_source(f"{module}.{n}") is None]
            if missing:
                return f"python -c: {module} has no {', '.join(missing)}"
    return None


def _python_target(words: Sequence[str]) -> tuple[str, str | None, list[str]]:
    """For ``python``/``torchrun`` words: ("module", name, rest), ("script", path, rest),
    ("snippet", code, []) for ``-c``, or ("none", None, []) for a bare interpreter."""
    for i, word in enumerate(words[1:], 1):
        if word == "-m" and i + 1 < len(words):
            return "module", words[i + 1], list(words[i + 2:])
        if word == "-c" and i + 1 < len(words):
            return "snippet", words[i + 1], []
        if word.endswith(".py"):
            return "script", word, list(words[i + 1:])
    return "none", None, []


def check_command(command: Command, report: Report, root) -> None:
    """Check one command, recording it in ``report`` as checked (its kind), skipped or failed."""
    words = command.words
    program = _program(words[0])
    if program == "soundsift":
        _check_soundsift(command, list(words[1:]), report, root)
        return
    if program == "benchmark":
        kind, target, rest = "script", f"benchmarks/{words[0].rsplit('/', 1)[-1]}", list(words[1:])  # exact_seek.py too
    else:
        kind, target, rest = _python_target(words)
    if kind == "snippet":
        error = check_snippet(str(target))
        if error is None:
            report.checked.setdefault("python -c", []).append(command)
        else:
            report.failures.append((command, error))
    elif kind == "module" and target in SOUNDSIFT_MODULES:
        _check_soundsift(command, [*SOUNDSIFT_MODULES[target], *rest], report, root)
    elif kind == "module" and target in FOREIGN_MODULES:
        report.skipped.append((command, f"{target}'s options"))
    elif kind == "module":
        found = _module_file(target)                   # type: ignore[arg-type]
        _check_script(command, found, rest, report, missing=f"no module {target} in this repository")
    elif kind == "script":
        script = ROOT / str(target)
        _check_script(command, script if script.is_file() else None, rest, report, missing=f"no script {target}")
    elif not command.inline:
        report.failures.append((command, "an interpreter with neither -m MODULE nor a script"))


def _check_soundsift(command: Command, words: list[str], report: Report, root) -> None:
    error = check_words(root, words, mention=command.inline)
    kind = "soundsift (inline)" if command.inline else "soundsift"
    if error is None:
        report.checked.setdefault(kind, []).append(command)
    else:
        report.failures.append((command, error))


def _check_script(command: Command, script: Path | None, words: list[str], report: Report, *, missing: str) -> None:
    error = missing if script is None else check_argparse(script, words)
    if error is None:
        report.checked.setdefault("argparse", []).append(command)
    else:
        report.failures.append((command, error))


def check_readme(markdown: str, root=None) -> Report:
    """Find and check every command of ``markdown`` (README.md's text) against ``root`` (default:
    the real ``soundsift`` command tree) and the repository's scripts."""
    root = soundsift_command() if root is None else root
    report = Report()
    commands, broken = readme_commands(markdown)
    for number, text, error in broken:
        report.failures.append((Command((text,), number), f"cannot be split into words: {error}"))
    for command in commands:
        check_command(command, report, root)
    for language, start, body in code_blocks(markdown):
        if language in ("python", "py"):
            block = Command(("<python block>",), start)
            error = check_snippet(textwrap.dedent("\n".join(body)))
            if error is None:
                report.checked.setdefault("python block", []).append(block)
            else:
                report.failures.append((block, error.replace("python -c", "python block")))
    return report


def known_options(root=None) -> set[str]:
    """Every option name of every soundsift command and of every repository script README runs
    through argparse (the benchmarks and the ``python -m`` modules)."""
    found: set[str] = set()

    def walk(command) -> None:
        for param in command.params:
            found.update(getattr(param, "opts", ()) or ())
            found.update(getattr(param, "secondary_opts", ()) or ())
        for sub in getattr(command, "commands", {}).values():
            walk(sub)
    walk(soundsift_command() if root is None else root)
    for script in sorted(ROOT.glob("benchmarks/*.py")) + [f for f in map(_module_file, _argparse_modules()) if f]:
        try:
            found.update(o for action in argparse_parser(script)._actions for o in action.option_strings)
        except (UnreadableParser, SyntaxError):
            continue                    # such a script's commands fail check_readme, naming why
    return found


def _argparse_modules() -> list[str]:
    """The ``python -m`` modules of this repository that README runs (by their words)."""
    modules = []
    for command in readme_commands(README.read_text(encoding="utf-8"))[0]:
        if _program(command.words[0]) in ("python", "torchrun"):
            kind, module, _ = _python_target(command.words)
            if kind == "module" and module not in SOUNDSIFT_MODULES and module not in FOREIGN_MODULES:
                modules.append(module)
    return sorted(set(modules))


def unknown_options(markdown: str, known: set[str]) -> list[tuple[int, str]]:
    """(line, option) of every long option ``markdown`` names — in commands, code spans or prose,
    such as "`--threshold` goes with `caption`" — that no command or script takes."""
    return [(markdown.count("\n", 0, m.start()) + 1, m.group()) for m in _LONG_OPTION.finditer(markdown)
            if m.group() not in known and m.group() not in FOREIGN_OPTIONS]


# --- the tests ------------------------------------------------------------------------------


def test_every_readme_command_parses():
    report = check_readme(README.read_text(encoding="utf-8"))
    failed = [str(command) for command, _ in report.failures]
    assert not failed, report.summary()
    for kind, floor in MIN_CHECKED.items():
        found = len(report.checked.get(kind, []))
        assert found >= floor, f"only {found} {kind} commands found (at least {floor} expected)\n{report.summary()}"
    unexpected = [str(command) for command, why in report.skipped if why not in ALLOWED_SKIPS]
    assert not unexpected, report.summary()


def test_every_option_readme_names_is_taken_by_some_command():
    """Prose names options on their own too ("`--per-file 0` compares every pair"): each must
    still exist in some soundsift command or repository script (one renamed leaves its old name)."""
    markdown = README.read_text(encoding="utf-8")
    known = known_options()
    unknown = unknown_options(markdown, known)
    assert not unknown, "\n".join(f"README.md:{line}: no command or script takes {option}" for line, option in unknown)
    assert unknown_options(markdown + "\nSet `--made-up-flag` in prose.\n", known) == [
        (markdown.count("\n") + 2, "--made-up-flag")]


def fenced(*lines: str) -> str:
    return "Some text.\n\n```bash\n" + "\n".join(lines) + "\n```\n"


WRONG_COMMANDS = [
    (fenced("soundsift search rain --index mylib --made-up-option 3"), "--made-up-option"),
    (fenced("soundsift search rain --index mylib \\", "    --made-up-option 3   # a comment"), "--made-up-option"),
    (fenced("$ SOUNDSIFT_GPU=0 .venv/bin/soundsift tag clip.wav --top-labels 3"), "--top-labels"),
    (fenced("soundsift info --index a && soundsift search x --indx a | jq ."), "--indx"),
    (fenced("soundsift serach rain"), "serach"),
    (fenced("soundsift sheet exprot out.csv"), "exprot"),
    (fenced("soundsift search rain -k"), "-k"),                                 # a missing value
    (fenced("soundsift search rain -k ten"), "ten"),                            # the wrong type
    (fenced("soundsift search rain -k 0"), "-k"),                               # out of range
    (fenced("soundsift relocate old new extra"), "extra"),                      # too many arguments
    (fenced("soundsift index --index mylib"), "'PATH...'"),                    # a required argument
    (fenced("soundsift serve --allow-origin '*'"), "--allow-origin"),           # soundsift's own callback
    (fenced("soundsift search rain --sample-rate fast"), "--sample-rate"),      # soundsift's own readers
    (fenced("soundsift duplicates --channels stereoo"), "stereoo"),
    (fenced("soundsift similar a.wav --start 1:75"), "--start"),
    (fenced("soundsift index ~/Sounds --memory-budget lots"), "lots"),
    (fenced("soundsift tag a.wav --labels ' , '"), "--labels"),
    (fenced("soundsift caption a.wav --source yamnett"), "yamnett"),
    (fenced("python -m trainer.corpus build --sources tuxpaint,tonez"), "tonez"),
    (fenced("python -m trainer.corpus build --sorces tones"), "--sorces"),
    (fenced("torchrun --standalone --nproc_per_node 4 -m ui.cli train x.json --resum"), "--resum"),
    (fenced(".venv/bin/python benchmarks/query.py --queries many"), "many"),
    (fenced(".venv/bin/python benchmarks/query.py --made-up 1"), "--made-up"),
    (fenced(".venv/bin/python benchmarks/no_such_benchmark.py"), "no_such_benchmark"),
    (fenced(".venv/bin/python -m trainer.quantize_aisfx FOLDER"), "--manifest"),
    (fenced(".venv/bin/python -m trainer.no_such_module"), "trainer.no_such_module"),
    (fenced(".venv/bin/python -c \"from tests.tiny_models import make_tiny_clapp; make_tiny_clapp('m')\""), "make_tiny_clapp"),
    (fenced(".venv/bin/python -c \"from engine.no_such import x\""), "engine.no_such"),
    (fenced(".venv/bin/python -c \"from engine import SoundIndex, SoundIndx\""), "SoundIndx"),
    ("```python\nfrom engine.filters import Filters, Filtres\nFilters()\n```\n", "Filtres"),
    (fenced(".venv/bin/python -c \"from engine import (\""), "not Python"),
    (fenced("soundsift search 'unbalanced --index mylib"), "quotation"),
    ("Run `soundsift search rain --made-up-option 3` to see.\n", "--made-up-option"),
    ("Run `soundsift caption --indx` to see.\n", "--indx"),
    ("Run `benchmarks/indexing.py --files 60 --made-up 2` to see.\n", "--made-up"),
]


@pytest.mark.parametrize("snippet, says", WRONG_COMMANDS, ids=[says for _, says in WRONG_COMMANDS])
def test_a_readme_with_a_wrong_command_fails(snippet, says):
    """The checker the README test runs rejects a made-up option, a misspelt command, a missing or
    wrong value and extra arguments, in code blocks and inline, for soundsift and the scripts."""
    report = check_readme(snippet)
    assert len(report.failures) == 1, report.summary()
    assert says in report.failures[0][1] or says in str(report.failures[0][0]), report.summary()


def test_the_forms_readme_writes_commands_in_are_all_found():
    markdown = "\n".join([
        "Text with `soundsift info --index a` inline, and one broken over",
        "lines: `soundsift eval zeroshot",
        "  runs/val_labels.csv -a corpus`.",
        "",
        "  ```bash",
        "  soundsift index ~/Sounds --index mylib --watch 60   # keep it current",
        "  SOUNDSIFT_INDEX_HOME=/x soundsift search \"rain # not a comment\" \\",
        "      -k 3 --json | jq '.[0]' > out.json",
        "  make demo && .venv/bin/soundsift --version",
        "  curl 'http://127.0.0.1:8765/info'",
        "  ```",
        "```",
        "$ HF_HUB_OFFLINE=1 soundsift info --index idx2",
        "error: soundsift is not a command here, this is output",
        "```",
        "```python",
        "soundsift = 1",
        "```",
        "```",
        "tests/      soundsift's suite (a tree, not commands)",
        "```",
    ])
    commands, broken = readme_commands(markdown)
    assert not broken
    assert [(c.words, c.inline) for c in commands] == [
        (("soundsift", "index", "~/Sounds", "--index", "mylib", "--watch", "60"), False),
        (("soundsift", "search", "rain # not a comment", "-k", "3", "--json"), False),
        ((".venv/bin/soundsift", "--version"), False),
        (("soundsift", "info", "--index", "idx2"), False),
        (("soundsift", "info", "--index", "a"), True),
        (("soundsift", "eval", "zeroshot", "runs/val_labels.csv", "-a", "corpus"), True),
    ]
    assert [c.line for c in commands] == [6, 7, 9, 13, 1, 2]
    report = check_readme(markdown)
    assert not report.failures and len(report.checked["soundsift"]) == 4, report.summary()


def test_a_command_quoted_in_prose_may_leave_out_values_but_not_in_a_code_block():
    """Inline, `soundsift caption --index` names an option; in a code block it misses its value."""
    for text in ("soundsift caption --index", "soundsift tags add …", "soundsift sheet", "soundsift train CONFIG",
                 "soundsift similar FILE --start --end"):
        assert not check_readme(f"See `{text}`.\n").failures, text
    for text in ("soundsift caption --index", "soundsift tags add …", "soundsift sheet", "soundsift similar FILE --start --end"):
        assert check_readme(fenced(text)).failures, text


def test_paths_readme_names_need_not_exist_here():
    """A path parameter that must exist (exists=True) takes README's placeholder paths, which do
    not exist here; the other parameters are still checked."""
    paths_app = typer.Typer()

    @paths_app.command()
    def scan(paths: List[Path] = typer.Argument(..., exists=True),
             out: Optional[Path] = typer.Option(None, exists=True, writable=True),
             k: int = typer.Option(1, "-k", min=1)) -> None: ...

    def jsonl(value: Optional[Path]) -> Optional[Path]:
        if value is not None and value.suffix != ".jsonl":
            raise typer.BadParameter("name it .jsonl")
        return value

    @paths_app.command()
    def other(manifest: Optional[Path] = typer.Option(None, callback=jsonl)) -> None: ...

    root = typer.main.get_command(paths_app)
    with pytest.raises(cli_errors.BadParameter, match="does not exist"):     # what a run would say here
        root.commands["scan"].make_context("scan", ["PATH..."])
    assert check_words(root, ["scan", "PATH...", "~/Sounds/not-here", "--out", "FOLDER", "-k", "2"]) is None
    assert "-k" in check_words(root, ["scan", "PATH...", "-k", "0"])
    assert "--made-up" in check_words(root, ["scan", "PATH...", "--made-up"])
    assert "'paths'" in check_words(root, ["scan"])
    assert "jsonl" in check_words(root, ["other", "--manifest", "rows.csv"])      # not about the disk: fails

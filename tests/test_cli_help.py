"""Every command of the `soundsift` CLI answers --help (sqlite-utils style)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from ui.cli import app

EXPECTED = {"index", "search", "similar", "tag", "info", "ui", "train", "caption", "eval",
            "eval retrieval", "eval zeroshot"}


def _commands(group, prefix: str = "") -> list[str]:
    names = []
    if hasattr(group, "commands"):  # a group (typer vendors its own click)
        for name, cmd in group.commands.items():
            full = f"{prefix}{name}"
            names.append(full)
            names += _commands(cmd, full + " ")
    return names


ALL = _commands(typer.main.get_command(app))


def test_design_commands_are_all_there():
    assert EXPECTED <= set(ALL), sorted(EXPECTED - set(ALL))


@pytest.mark.parametrize("command", ALL)
def test_help(command):
    result = CliRunner().invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "--help" in result.output
    assert "<bool>" not in result.output        # an on/off flag takes no value (ui.cli.app.FlagsCommand)


def test_console_script_entry_point_starts():
    out = subprocess.run([sys.executable, "-m", "ui.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name in ("index", "search", "similar", "tag", "info"):
        assert name in out.stdout


@pytest.mark.parametrize("command", ALL)
def test_help_paragraphs_reflow_to_the_terminal(command):
    """A docstring's paragraph is wrapped to the terminal, not at its source line breaks: on a
    wide terminal each paragraph of the command's own description is one line."""
    cmd = typer.main.get_command(app)
    for name in command.split():
        cmd = cmd.commands[name]
    doc = (cmd.help or "").strip()
    paragraphs = [" ".join(p.split()) for p in doc.split("\n\n") if p.strip()]
    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    lines = {" ".join(line.strip(" │").split()) for line in result.output.splitlines()}
    for paragraph in paragraphs:
        plain = paragraph.replace("`", "")          # Markdown code spans are shown without backticks
        assert plain in lines, (command, paragraph)


def test_version_names_soundsift_and_the_packages_it_runs_on():
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert line.startswith(f"soundsift {version('soundsift')} (Python ")
    assert f"torch {version('torch')}" in line and f"onnxruntime {version('onnxruntime')}" in line
    assert len(result.output.strip().splitlines()) == 1

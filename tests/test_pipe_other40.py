"""A BrokenPipeError from something other than stdout or stderr (a socket, a subprocess's pipe) that
escapes a command is a failure: one line on stderr, exit status 1. Until session 40 it was taken
for a closed stdout: the command ended quietly with 141, as if its reader had stopped early, and
stdout was pointed at /dev/null. A closed stdout or stderr is still 141 (test_streams40.py,
test_cli_pipes39.py), and so is a BrokenPipeError where stdout is a pipe written to unwatched (a
command run in-process, not by run_command_line), which cannot tell whether its reader went."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_streams40 import environment
from ui.cli.common import CLOSED_OUTPUT_EXIT

ROOT = Path(__file__).resolve().parents[1]

#: ``socket`` and ``child`` print a line, then write to a socket or a child's stdin whose other end
#: closed; ``plain`` prints a line and raises BrokenPipeError itself (as a library relaying a
#: peer's error would). ``main`` runs the commands as `soundsift` does, ``inprocess`` without
#: run_command_line (stdout and stderr unwatched)
APP = """
import socket, subprocess, sys
import typer
from ui.cli.app import SoundsiftTyper
from ui.cli.common import run_command_line

app = SoundsiftTyper(add_completion=False)

@app.command("socket")
def socket_() -> None:
    print("before", flush=True)
    mine, theirs = socket.socketpair()
    theirs.close()
    mine.sendall(b"x" * 1_000_000)

@app.command("child")
def child() -> None:
    print("before", flush=True)
    done = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE)
    done.wait()
    done.stdin.write(b"x" * 1_000_000)
    done.stdin.flush()

@app.command("plain")
def plain() -> None:
    print("before", flush=True)
    raise BrokenPipeError(32, "Broken pipe")

command = typer.main.get_command(app)
if sys.argv.pop(1) == "main":
    run_command_line(command)
else:
    command.main()
"""


@pytest.fixture()
def app(tmp_path: Path) -> Path:
    script = tmp_path / "app.py"
    script.write_text(APP)
    return script


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("command", ["socket", "child"])
def test_another_pipe_closing_is_a_failure_said_in_one_line(app, command, unbuffered):
    """stdout and stderr are pipes read to their end, as in ``soundsift … | tee log``."""
    done = subprocess.run([sys.executable, str(app), "main", command], capture_output=True, text=True,
                          env=environment(unbuffered), cwd=app.parent, timeout=300)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert done.stdout == "before\n"                 # stdout not pointed at /dev/null: it was fine
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert "broken pipe" in done.stderr and "not its stdout or stderr" in done.stderr


def test_the_same_error_with_stdout_closed_too_is_still_141(app):
    """The reader of stdout gone as well: the quiet 141 of a closed output, nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, str(app), "main", "socket"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=environment(False), cwd=app.parent,
                              timeout=300)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (CLOSED_OUTPUT_EXIT, ""), (done.returncode, done.stderr)


def test_a_pipe_stdout_that_cannot_tell_is_still_taken_for_closed(app):
    """Run in-process without run_command_line, unbuffered: stdout is a pipe whose failed write
    leaves no trace, so a BrokenPipeError is still its reader's: 141 and an empty stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, str(app), "inprocess", "plain"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=environment(True), cwd=app.parent,
                              timeout=300)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (CLOSED_OUTPUT_EXIT, ""), (done.returncode, done.stderr)


def test_under_clirunner_a_broken_pipe_is_a_one_line_failure():
    """A captured stdout has no reader to lose: the error was stdout's all the same, and pointing
    it at /dev/null failed ("fileno"), a traceback's exit 1."""
    from typer.testing import CliRunner

    from ui.cli.app import SoundsiftTyper

    app = SoundsiftTyper(add_completion=False)

    @app.command("pipe")
    def pipe() -> None:
        print("before")
        raise BrokenPipeError(32, "Broken pipe")

    @app.command("other")
    def other() -> None:                 # (two commands: `pipe` is a subcommand, under FlagsGroup)
        pass

    result = CliRunner().invoke(app, ["pipe"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.splitlines()
    assert lines[0] == "before" and len(lines) == 2 and lines[1].startswith("error: "), result.output
    assert "broken pipe" in lines[1]

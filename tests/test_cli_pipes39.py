"""A command whose stdout closes before it is done (``soundsift search … | head -1``) stops quietly:
nothing on stderr, no traceback, exit status 141 (the shell's 128 + SIGPIPE), from both entry
points, `soundsift` and `python -m trainer.corpus`, help included (session 39)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ui.cli.common import CLOSED_OUTPUT_EXIT

ROOT = Path(__file__).resolve().parents[1]
#: the environment as it is, PYTHONUNBUFFERED or not (set where these tests were written): since
#: session 40 a short write to a pipe closing under it fails unbuffered too (test_streams40.py
#: runs both ways)
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SOUNDSIFT = [sys.executable, "-c", "from ui.cli import main; main()"]
CORPUS = [sys.executable, "-m", "trainer.corpus"]

#: a program on the CLI's own classes printing far more than a pipe holds, each the way commands
#: print: plain print, print_json, the rich console, a table; and one printing, then failing
BIG_APP = """
import sys
import typer
from ui.cli.app import SoundsiftTyper
from ui.cli.common import out_console, print_json, run_command_line
from rich.table import Table

app = SoundsiftTyper(add_completion=False)
LINES = [f"line {i} " + "x" * 60 for i in range(20000)]

@app.command("plain")
def plain() -> None:
    for line in LINES:
        print(line)

@app.command("json")
def json_() -> None:
    print_json({"results": LINES})

@app.command("rich")
def rich_() -> None:
    for line in LINES:
        out_console.print(line, highlight=False)

@app.command("table")
def table() -> None:
    t = Table("n", "text")
    for i, line in enumerate(LINES):
        t.add_row(str(i), line)
    out_console.print(t)

@app.command("fails")
def fails() -> None:
    print("\\n".join(LINES))
    raise typer.Exit(1)

run_command_line(typer.main.get_command(app))
"""


def run_into_closed_pipe(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``argv`` with stdout a pipe nobody reads any more (its reader closed before it starts),
    so its first write to stdout fails."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(argv, stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=cwd,
                              env=ENV, timeout=300)
    finally:
        os.close(write_end)


def read_one_line_then_close(argv: list[str], cwd: Path) -> tuple[str, int, str]:
    """Run ``argv``, read the first line of its stdout and close the pipe, as ``| head -1`` does;
    the line, the exit status and stderr."""
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=ENV)
    first = child.stdout.readline()
    child.stdout.close()
    _, err = child.communicate(timeout=300)
    return first, child.returncode, err


@pytest.mark.parametrize("command", ["plain", "json", "rich", "table", "fails"])
def test_reader_stopping_after_one_line_ends_the_command_quietly(command, tmp_path):
    """Click exited 1 (a failure's status) saying nothing, rich exited 1, Python printed "Exception
    ignored … BrokenPipeError" at exit: whichever way the command prints, it is exit status 141
    and an empty stderr."""
    script = tmp_path / "big_app.py"
    script.write_text(BIG_APP)
    first, status, err = read_one_line_then_close([sys.executable, str(script), command], tmp_path)
    assert first.strip() and status == CLOSED_OUTPUT_EXIT and err == "", (first, status, err)


@pytest.mark.parametrize("argv", [
    [*CORPUS, "list"],
    [*CORPUS, "list", "--json"],
    [*CORPUS, "--help"],
    [*CORPUS, "build", "--help"],
    [*SOUNDSIFT, "--help"],
    [*SOUNDSIFT, "--version"],
    [*SOUNDSIFT, "search", "--help"],
    [*SOUNDSIFT, "corpus", "list"],
], ids=lambda argv: " ".join(argv[1:]).replace("from ui.cli import main; main()", "soundsift"))
def test_entry_points_stop_quietly_on_a_closed_stdout(argv, tmp_path):
    """`python -m trainer.corpus list | head -8` exited 1 with nothing on stderr in 2 runs of 3:
    both entry points, commands and help alike, end with 141 and say nothing."""
    done = run_into_closed_pipe(argv, tmp_path)
    assert (done.returncode, done.stderr) == (CLOSED_OUTPUT_EXIT, ""), (done.returncode, done.stderr)


def test_a_reader_that_reads_everything_still_gets_exit_status_0(tmp_path):
    """Only a write that failed is 141: a command whose whole output was read ends as before."""
    done = subprocess.run([*CORPUS, "list"], capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=300)
    assert done.returncode == 0 and "tones" in done.stdout.split() and done.stderr == "", done

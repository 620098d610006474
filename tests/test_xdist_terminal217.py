"""`make test` runs the suite on pytest-xdist workers (``pytest -n 2``), which the controller
starts as child processes: they, and the CLI processes tests start, inherit no terminal size the
run was not given (GNU readline, imported by pytest, put COLUMNS=80 and LINES=24 into the C
environment, and the workers' CLI consoles were fixed at 80 columns: tests/conftest.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

SIZE = "import os; print(os.environ.get('COLUMNS', '-'), os.environ.get('LINES', '-'))"


def test_a_child_process_sees_the_terminal_size_of_this_process_environ():
    done = subprocess.run([sys.executable, "-c", SIZE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [os.environ.get("COLUMNS", "-"), os.environ.get("LINES", "-")]


def test_a_cli_runners_columns_reach_the_clis_consoles():
    from ui.cli.common import err_console, out_console

    with CliRunner(env={"COLUMNS": "123"}).isolation():
        assert (out_console.width, err_console.width) == (123, 123)
    with CliRunner(env={"COLUMNS": "61"}).isolation():
        assert (out_console.width, err_console.width) == (61, 61)


def test_a_test_that_widens_stderrs_console_leaves_it_reading_columns_after(tmp_path):
    """test_train_torchrun.py widened the CLI's stderr console through rich's ``width`` setter:
    monkeypatch's undo set it again, to the 80 columns it had read, fixed for the rest of the
    worker's run (this file's test above failed after it)."""
    from tests.test_train_torchrun import (
        test_a_stopped_run_says_how_to_continue_it_with_as_many_processes as widens_stderr)
    from ui.cli.common import err_console

    with pytest.MonkeyPatch.context() as patch:
        widens_stderr(tmp_path, patch, 1)
    with CliRunner(env={"COLUMNS": "97"}).isolation():
        assert err_console.width == 97

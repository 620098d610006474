"""Every soundsift command ends without the interpreter collecting its whole heap at exit."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [["--help"], ["info", "--index", "no-such-index-here"]])
def test_every_command_freezes_its_objects_at_exit(argv, tmp_path):
    """The finalization's garbage collection of the objects torch and transformers make took
    1–3 s at the end of every command that loaded a model (it was switched off for `serve` only):
    ui.cli.main registers gc.freeze as an exit handler for every command, whatever it ends with."""
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0, flush=True))\n"
            f"sys.argv = ['soundsift', *{argv!r}]\n"
            "from ui.cli import main\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip().splitlines()[-1] == "frozen at exit: True", (done.stdout, done.stderr)

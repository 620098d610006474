"""A reader of stdout or stderr that stops early ends a command quietly with exit status 141,
whether the standard streams are buffered or not (``PYTHONUNBUFFERED``), and what is written to
the closed stream afterwards goes nowhere (session 40; the stdout case: test_cli_pipes39.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ui.cli.common import CLOSED_OUTPUT_EXIT

ROOT = Path(__file__).resolve().parents[1]

#: a program on the CLI's own classes: ``json`` prints far more than a pipe holds in one write;
#: ``plain`` in many; ``rich``, ``log`` and ``warn`` write to stderr (a rich console; log lines
#: and a warning longer than a buffer, whose errors logging and warnings swallow), and an exit
#: handler then writes to stderr again, saying on stdout what became of that write
APP = """
import atexit, logging, sys
import typer
from ui.cli.app import SoundsiftTyper
from ui.cli.common import err_console, print_json, run_command_line, setup_logging

app = SoundsiftTyper(add_completion=False)
LINES = [f"line {i} " + "x" * 60 for i in range(20000)]

def write_late() -> None:
    try:
        sys.stderr.write("late\\n" * 20000)
        sys.stderr.flush()
    except BrokenPipeError:
        print("late write: broken pipe")
    else:
        print("late write: ok")

@app.command("json")
def json_() -> None:
    print_json({"results": LINES})

@app.command("plain")
def plain() -> None:
    for line in LINES:
        print(line)

@app.command("rich")
def rich_() -> None:
    atexit.register(write_late)
    for line in LINES:
        err_console.print(line, highlight=False)

@app.command("log")
def log_() -> None:
    setup_logging()
    atexit.register(write_late)
    for line in LINES[:200]:
        logging.getLogger("app").warning(line)
    print("logged")

@app.command("warn")
def warn() -> None:
    import warnings
    atexit.register(write_late)
    warnings.warn("a long warning " + "x" * 100000)
    print("warned")

run_command_line(typer.main.get_command(app))
"""


def environment(unbuffered: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = str(ROOT)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture()
def app(tmp_path: Path) -> Path:
    script = tmp_path / "app.py"
    script.write_text(APP)
    return script


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("command", ["json", "plain"])
def test_stdout_closed_mid_write_ends_with_141(app, command, unbuffered):
    """Unbuffered, a single write the reader closed under (``print_json`` of a long answer) was
    cut short without an error, the rest dropped: exit status 0, as if all was read. The reader
    takes one line, so that write is under way when it closes, and ends with the pipe's room."""
    child = subprocess.Popen([sys.executable, str(app), command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=environment(unbuffered), cwd=app.parent)
    first = child.stdout.readline()
    child.stdout.close()
    _, err = child.communicate(timeout=300)
    assert first.startswith(b"{" if command == "json" else b"line 0")
    assert (child.returncode, err) == (CLOSED_OUTPUT_EXIT, b""), (child.returncode, err)


def run_with_closed_stderr(app: Path, command: str, unbuffered: bool) -> subprocess.CompletedProcess:
    """Run ``app command`` with stderr a pipe whose reader closed before it started."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, str(app), command], stdout=subprocess.PIPE, stderr=write_end,
                              text=True, env=environment(unbuffered), cwd=app.parent, timeout=300)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("command", ["rich", "log", "warn"])
def test_stderr_closed_ends_with_141_and_later_writes_go_nowhere(app, command, unbuffered):
    """Only stdout was pointed at /dev/null: buffered, stderr's last flush at exit failed (exit
    status 120), unbuffered an exit handler's write to it raised again; log lines lost to a
    closed stderr (logging swallows the error) ended with 120 or 0 by buffering, and a warning
    longer than stderr's buffer with 0 either way. Now 141, and a later write to stderr goes
    nowhere without an error."""
    done = run_with_closed_stderr(app, command, unbuffered)
    expected = {"rich": "", "log": "logged\n", "warn": "warned\n"}[command] + "late write: ok\n"
    assert (done.returncode, done.stdout) == (CLOSED_OUTPUT_EXIT, expected), (done.returncode, done.stdout)


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
def test_streams_read_to_the_end_still_end_with_0(app, unbuffered):
    """Only a write that failed is 141: output read to its end, on stdout and stderr, ends as before."""
    env = environment(unbuffered)
    done = subprocess.run([sys.executable, str(app), "log"], capture_output=True, text=True, env=env,
                          cwd=app.parent, timeout=300)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout == "logged\nlate write: ok\n"
    assert done.stderr.count("WARNING app: line ") == 200 and done.stderr.endswith("late\n" * 20000)


# --- what C decoders print while an upload is decoded (`soundsift serve`, the page) ---

def said_by_the_decoder(caplog: pytest.LogCaptureFixture) -> list[str]:
    import logging
    return [r.getMessage() for r in caplog.records if r.name == "ui.components.uploads" and r.levelno == logging.DEBUG]


def test_an_uploads_decoder_output_is_debug_detail_not_the_servers_stderr(tmp_path, capfd, caplog):
    """libmpg123's "Warning: Xing stream size off …" for an uploaded cut MP3 went to the server's
    stderr as an anonymous line (the server runs threads, so engine.audio's bare-call capture
    stood aside); now it is debug detail under the upload's name (``serve --verbose``)."""
    import logging
    import threading

    from tests.conftest import tone, write
    from ui.components.uploads import read_example

    path = write(tmp_path / "cut.mp3", tone(440, 3.0, 44100), 44100)
    data = path.read_bytes()[: path.stat().st_size // 2]
    serving = threading.Event()
    other = threading.Thread(target=serving.wait, daemon=True)      # as the server's threads
    other.start()
    capfd.readouterr()
    try:
        with caplog.at_level(logging.DEBUG, logger="ui.components.uploads"):
            example = read_example("cut.mp3", data)
    finally:
        serving.set()
    assert capfd.readouterr().err == ""
    assert example.notes == () and example.duration > 1.0
    said = said_by_the_decoder(caplog)
    assert said and all(m.startswith("cut.mp3: the decoder said: ") for m in said)
    assert any("Xing stream size off" in m for m in said), said


def test_a_failed_upload_is_one_line_and_the_decoders_words_debug_detail(monkeypatch, capfd, caplog):
    import logging

    from engine.errors import UnreadableAudio
    from ui.components import uploads

    def talking_decoder(data, name, notes=None):
        os.write(2, b"[parse.c:123] libfoo: cannot sync\n")             # as a C decoder writes
        raise UnreadableAudio(name, "format not recognised")

    monkeypatch.setattr(uploads, "read_sound_bytes", talking_decoder)
    capfd.readouterr()
    with caplog.at_level(logging.DEBUG, logger="ui.components.uploads"), pytest.raises(UnreadableAudio) as failed:
        uploads.read_example("noise.mp3", b"\xff" * 4000)
    assert capfd.readouterr().err == ""
    assert "\n" not in str(failed.value) and str(failed.value).startswith("noise.mp3: not readable as audio")
    assert said_by_the_decoder(caplog) == ["noise.mp3: the decoder said: [parse.c:123] libfoo: cannot sync"]


def test_log_lines_written_meanwhile_are_not_taken_for_the_decoders(monkeypatch, capfd, caplog):
    """A request thread logging while an upload decodes: its line reaches stderr as ever, and
    only what the decoder wrote to fd 2 is said under the upload's name."""
    import logging
    import threading

    import numpy as np

    from ui.components import uploads

    handler = logging.StreamHandler(open(2, "w", closefd=False))     # the server's log, on stderr
    server_log = logging.getLogger("test_streams40.server")
    server_log.addHandler(handler)
    server_log.propagate = False

    def decoder(data, name, notes=None):
        request = threading.Thread(target=server_log.warning, args=("GET /search?q=rain: 200",))
        request.start()
        request.join()
        os.write(2, b"libfoo: a note on the clip\n")
        return np.full((4000, 1), 0.1, np.float32), 16000

    monkeypatch.setattr(uploads, "read_sound_bytes", decoder)
    capfd.readouterr()
    try:
        with caplog.at_level(logging.DEBUG, logger="ui.components.uploads"):
            example = uploads.read_example("clip.wav", b"RIFF" * 100)
    finally:
        server_log.removeHandler(handler)
    assert example.notes == ()
    assert said_by_the_decoder(caplog) == ["clip.wav: the decoder said: libfoo: a note on the clip"]
    assert capfd.readouterr().err == "GET /search?q=rain: 200\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("args", [["--help"], ["search", "--help"]], ids=["help", "command help"])
def test_help_to_a_full_disk_is_one_line(args):
    """`soundsift --help > /dev/full`: help is written while the arguments are parsed, before any
    command's reports_errors, so the full disk was a 40-line traceback; now the line a command's
    own output to a full disk gets, exit status 1."""
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-c", "from ui.cli import main; main()", *args], stdout=full,
                              stderr=subprocess.PIPE, text=True, env=environment(False), cwd=ROOT, timeout=300)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == ["error: no space left on device"], done.stderr

"""Where a command writes: a folder where a file goes (or the reverse) is one line, before any work."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.errors import InvalidOutput
from engine.outputs import make_folder, output_file, output_folder
from tests.conftest import tone, write
from ui.cli import app

SR = 16000
TOY = str(Path(__file__).resolve().parents[1] / "trainer" / "configs" / "toy.json")


def test_output_file_and_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    assert output_file(tmp_path / "f") == tmp_path / "f" and output_file(tmp_path / "new.csv").name == "new.csv"
    assert output_folder(tmp_path / "d") == tmp_path / "d" and output_folder(tmp_path / "new") == tmp_path / "new"
    with pytest.raises(InvalidOutput, match="d: is a folder; --out must name a file"):
        output_file(tmp_path / "d")
    with pytest.raises(InvalidOutput, match="f: is a file; --report must name a folder"):
        output_folder(tmp_path / "f", "--report")
    with pytest.raises(InvalidOutput, match=r"f is a file, not a folder; --out cannot go there"):
        output_file(tmp_path / "f" / "deeper" / "out.csv")
    with pytest.raises(InvalidOutput, match=r"f is a file, not a folder; --report cannot go there"):
        output_folder(tmp_path / "f" / "report", "--report")


def test_a_folder_made_for_an_output_is_named(tmp_path, caplog):
    with caplog.at_level("INFO", logger="engine.outputs"):
        assert make_folder(tmp_path / "picks" / "rain") == tmp_path / "picks" / "rain"
        make_folder(tmp_path / "picks")                          # there already: nothing said
    assert (tmp_path / "picks" / "rain").is_dir()
    assert [r.getMessage() for r in caplog.records] == [f"{tmp_path / 'picks' / 'rain'}: made this folder (it did not exist)"]


def test_a_sheet_written_into_a_new_folder_says_it_made_it(tmp_path, caplog):
    from engine.sheet_export import EXPORT_COLUMNS, write_library_sheet
    with caplog.at_level("INFO", logger="engine.outputs"):
        out = write_library_sheet([dict.fromkeys(EXPORT_COLUMNS, "x")], tmp_path / "sheest" / "lib.csv")   # a typo
    assert out.is_file() and f"{tmp_path / 'sheest'}: made this folder (it did not exist)" in caplog.text


@pytest.fixture
def places(tmp_path):
    audio = tmp_path / "audio"
    write(audio / "beep.wav", tone(1000, 1.0, SR), SR)
    (tmp_path / "labels.csv").write_text("audio,label\nbeep.wav,beep\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio": "audio/beep.wav", "captions": ["a beep"], "tags": ["beep"]}) + "\n")
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    return tmp_path


@pytest.mark.parametrize("args,message", [
    (["caption", "{t}/audio", "--out", "{t}/a_folder"], "a_folder: is a folder; --out must name a file"),
    (["corpus", "labels", "{t}/m.jsonl", "--out", "{t}/a_folder"], "a_folder: is a folder; --out must name a file"),
    (["corpus", "build", "--out", "{t}/a_file", "--sources", "tones"], "a_file: is a file; --out must name a folder"),
    (["eval", "zeroshot", "{t}/labels.csv", "-a", "{t}/audio", "--report", "{t}/a_file", "--no-cache"],
     "a_file: is a file; --report must name a folder"),
    (["train", TOY, "--out", "{t}/a_file"], "a_file: is a file; --out must name a folder"),
    (["caption", "{t}/audio", "--out", "{t}/a_file/m.jsonl"], "a_file is a file, not a folder; --out cannot go there"),
    (["corpus", "labels", "{t}/m.jsonl", "--out", "{t}/a_file/l.csv"], "a_file is a file, not a folder"),
])
def test_commands_refuse_unusable_outputs_in_one_line(places, args, message):
    result = CliRunner().invoke(app, [a.replace("{t}", str(places)) for a in args])
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert sorted(p.name for p in places.iterdir()) == ["a_file", "a_folder", "audio", "labels.csv", "m.jsonl"]
    assert not any((places / "a_folder").iterdir()) and (places / "a_file").read_text() == "x"


#: a child's script: each command of argv[1] (a JSON list of argument lists) run through the CLI;
#: printed, as JSON, each one's exit code, stderr and the exception it raised other than its exit
_RUN_IN_CHILD = """
import json, sys
from typer.testing import CliRunner
from ui.cli import app
runs = [CliRunner().invoke(app, args) for args in json.loads(sys.argv[1])]
print(json.dumps([[r.exit_code, r.stderr, None if r.exception is None or isinstance(r.exception, SystemExit)
                   else repr(r.exception)] for r in runs]))
"""


def test_a_place_the_user_cannot_write_is_refused_before_any_work(places):
    """A folder without write permission (checked by a child that obeys permissions even as
    root; one child runs the three commands): one line naming it, nothing written, no traceback."""
    import os
    import subprocess
    import sys

    from tests.index_fakes import drop_read_override

    shut = places / "shut"
    shut.mkdir()
    shut.chmod(0o555)
    commands = [["caption", f"{places}/audio", "--out", f"{shut}/m.jsonl"],
                ["train", TOY, "--out", f"{shut}/toy"],
                ["eval", "zeroshot", f"{places}/labels.csv", "-a", f"{places}/audio", "--report",
                 f"{shut}/report", "--no-cache"]]
    try:
        child = subprocess.run([sys.executable, "-c", _RUN_IN_CHILD, json.dumps(commands)], capture_output=True,
                               text=True, preexec_fn=drop_read_override, timeout=300,
                               cwd=Path(__file__).resolve().parents[1], env={**os.environ, "COLUMNS": "200"})
        assert child.returncode == 0, child.stderr
        runs = json.loads(child.stdout)
        assert len(runs) == len(commands)
        for args, (code, stderr, exception) in zip(commands, runs):
            said = " ".join(stderr.split())
            assert code == 1 and exception is None, (args, stderr, exception)
            assert f"cannot write in {shut} (permission denied)" in said and "Traceback" not in said, args
        assert list(shut.iterdir()) == []
    finally:
        shut.chmod(0o755)


def test_a_write_the_machine_refuses_mid_command_is_one_line(capsys):
    """The net under the up-front checks: a refused write (a drive that fills or turns read-only
    during the run) is one error line naming the file; any other OSError is a bug and propagates."""
    import errno
    import os

    import typer

    from ui.cli.common import reports_errors

    @reports_errors
    def writes(code: int) -> None:
        raise OSError(code, os.strerror(code), "/drive/out.csv")
    with pytest.raises(typer.Exit):
        writes(errno.ENOSPC)
    assert "error: /drive/out.csv: no space left on device" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(typer.Exit):
        writes(errno.EFBIG)            # over a file-size limit (ulimit -f, a FAT32 drive's 4 GiB)
    assert "error: /drive/out.csv: file too large" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(FileNotFoundError):
        writes(errno.ENOENT)

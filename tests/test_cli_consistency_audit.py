"""The `soundsift` CLI as scripts use it (helper-80's audit): the same option names and short
flags for the same thing in every command, `--json` wherever a command reports data, exit status
130 for Ctrl-C in every command, and stdout lines a pipe or a narrow $COLUMNS does not break."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from conftest import noise, tone, write
from ui.cli import app

runner = CliRunner()
SR = 16000
TOY = Path(__file__).resolve().parents[1] / "trainer" / "configs" / "toy.json"

pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def leaf_commands() -> dict[str, Any]:
    """Every command and subcommand, by its words ("sheet export") (Typer's own Click commands)."""
    found: dict[str, Any] = {}

    def walk(command: Any, words: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*words, name))
        else:
            found[" ".join(words)] = command
    walk(typer.main.get_command(app), ())
    assert {"search", "tag", "caption", "sheet export", "eval zeroshot"} <= set(found)
    return found


def option(command: Any, name: str) -> Any:
    """``command``'s option spelled ``name``, or None."""
    return next((p for p in command.params if p.param_type_name == "option" and name in p.opts), None)


#: the same concept, the same spelling: long name → the short flag it has wherever it is taken
SHARED_FLAGS = {"--index": "-i", "--model": "-m", "--verbose": "-v", "--labels": "-l", "--out": "-o",
                "--top-k": "-k", "--batch-size": "-b", "--audio-dir": "-a", "--port": "-p"}


@pytest.mark.parametrize("long, short", SHARED_FLAGS.items())
def test_a_shared_option_has_one_short_flag_everywhere(long, short):
    for words, command in leaf_commands().items():
        opt = option(command, long)
        if opt is not None:
            assert short in opt.opts + opt.secondary_opts, f"soundsift {words}: {long} without {short}"
        with_short = option(command, short)
        if with_short is not None:
            assert long in with_short.opts, f"soundsift {words}: {short} is not {long} there"


#: commands that report nothing a script reads (a server, the page) or only a file's worth
WITHOUT_JSON = {"ui", "serve"}


def test_every_command_reporting_data_takes_json():
    """`sheet remove` and `sheet export` had no --json (their one line was the only report)."""
    for words, command in leaf_commands().items():
        if words in WITHOUT_JSON:
            continue
        assert option(command, "--json") is not None, f"soundsift {words} has no --json"
        assert option(command, "--json").opts == ["--json"], f"soundsift {words}: --json has a short flag"


def test_a_count_is_k_and_a_minimum_score_is_min_score_in_every_command():
    """`tag` and `corpus audit` took their count as --top (-t) only, `caption` its minimum as
    --threshold/-t only; they keep those and take -k/--top-k and --min-score too (README: Quick start)."""
    commands = leaf_commands()
    for words in ("search", "similar", "tag", "caption", "corpus audit"):
        assert {"-k", "--top-k"} <= set(option(commands[words], "-k").opts), words
    for words in ("tag", "caption", "sheet export"):
        assert option(commands[words], "--min-score") is not None, words
    assert option(commands["tag"], "-t") is option(commands["tag"], "--top")               # kept for scripts
    assert option(commands["caption"], "-t") is option(commands["caption"], "--threshold")


def _interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("args, target", [
    (("search", "rain"), "engine.query.SoundIndex.open"),
    (("info",), "indexer.info.index_info"),
    (("tags", "list"), "indexer.user_tags.tag_counts"),
    (("index", "lib", "--rebuild", "--json"), "indexer.build_index"),       # a rebuild stops with a bare Ctrl-C
])
def test_ctrl_c_is_exit_status_130_in_every_command(monkeypatch, tmp_path, args, target):
    """A Ctrl-C no command handled ended silently (Typer 0.29 exits 130 itself; the Typer
    versions pyproject also allows, from 0.12, let Click say "Aborted!" and exit 1, a failed
    run's code). Now every command says "interrupted" and exits 130, as `index`, `duplicates`
    and `train` do, whatever Typer does (:func:`test_reports_errors_exits_130_on_ctrl_c`)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib").mkdir()
    monkeypatch.setattr(target, _interrupt)
    result = run(*args, "--index", tmp_path / "idx")
    assert result.exit_code == 130, result.output
    assert result.stdout == "" and "interrupted" in result.stderr and "Aborted" not in result.stderr


def test_reports_errors_exits_130_on_ctrl_c():
    """The status comes from soundsift's own wrapper, not from the installed Typer's main."""
    from ui.cli.common import reports_errors
    try:
        reports_errors(_interrupt)()
    except typer.Exit as stopped:
        code: object = stopped.exit_code
    except KeyboardInterrupt:               # left to Typer (a bare KeyboardInterrupt would stop pytest)
        code = "KeyboardInterrupt went through"
    assert code == 130


def test_train_takes_progress_and_no_progress_as_the_other_commands_do(monkeypatch):
    """`train` had --no-progress alone; --progress/--no-progress is every other command's flag."""
    import trainer.config
    from engine.errors import InvalidConfig
    seen = []

    def load_config(path, **overrides):
        seen.append(overrides["progress"])
        raise InvalidConfig("stop here")
    monkeypatch.setattr(trainer.config, "load_config", load_config)
    for flag in ("--progress", "--no-progress", None):
        result = run("train", TOY, *([flag] if flag else []))
        assert result.exit_code == 1 and "stop here" in result.stderr, result.output
    assert seen == [True, False, None]          # None: the config's own "progress"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_clap_dir):  # noqa: F811
    from indexer import build_index
    lib = tmp_path_factory.mktemp("audit_lib")
    write(lib / "tone.wav", tone(440, 1.0, SR), SR)
    write(lib / "noise.wav", noise(2.0, SR, seed=3), SR)
    index_dir = tmp_path_factory.mktemp("audit_idx") / "i"
    build_index([lib], index=index_dir, model=str(tiny_clap_dir), workers=0, progress=False)
    return lib, index_dir


def test_tag_k_is_top_and_caption_min_score_is_threshold(indexed, tiny_clap_dir, tmp_path):
    lib, index_dir = indexed
    by_k = run("tag", lib / "tone.wav", "--index", index_dir, "-l", "dog,rain,bell", "-k", 2, "--json")
    by_top = run("tag", lib / "tone.wav", "--index", index_dir, "-l", "dog,rain,bell", "--top", 2, "--json")
    assert by_k.exit_code == 0, by_k.output
    assert json.loads(by_k.stdout) == json.loads(by_top.stdout) and len(json.loads(by_k.stdout)["files"][0]["tags"]) == 2
    outs = {}
    for flag in ("--min-score", "--threshold"):
        result = run("caption", lib / "tone.wav", "--source", "model", "-m", tiny_clap_dir, "-l", "dog,rain",
                     flag, 0.99, "-o", tmp_path / "m.jsonl", "--json")
        assert result.exit_code == 1 and "no tag reached --threshold" in result.stderr, result.output
        outs[flag] = json.loads(result.stdout)
    assert outs["--min-score"] == outs["--threshold"] and outs["--min-score"]["rows"] == 0


def test_sheet_export_and_remove_print_json(indexed, tmp_path):
    lib, index_dir = indexed
    out = tmp_path / "lib.csv"
    result = run("sheet", "export", out, "--index", index_dir, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"out": str(out), "files": 2} and out.is_file()
    sheet = tmp_path / "described.csv"
    sheet.write_text("Filename,Description\ntone.wav,a clean beep\n")
    assert run("sheet", "import", sheet, "--index", index_dir, "--json").exit_code == 0
    result = run("sheet", "remove", "described.csv", "--index", index_dir, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"sheet": "described.csv", "files": 1}


def test_a_line_on_stdout_is_not_broken_at_a_narrow_width(indexed, tmp_path, monkeypatch):
    """In a pipe rich lays text out 80 columns wide ($COLUMNS if set): `sheet export` said
    "wrote 2 files to" and the path on as many lines as it took, a path cut in pieces."""
    from ui.cli.common import out_console
    lib, index_dir = indexed
    out = tmp_path / ("a_folder_named_at_length_" * 3) / "sheet.csv"
    monkeypatch.setattr(out_console, "_width", 30)
    result = run("sheet", "export", out, "--index", index_dir)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote 2 files to {out}\n"
    assert "\x1b" not in result.stdout                 # not a terminal: no colour codes either

"""What the CLI prints for scripts: one JSON shape whatever the number of inputs (`tag`, `sheet
import`), a file named ``path`` in `caption`'s records too, a file a command could not use as
``{"path", "reason"}`` in an ``"errors"`` list in every command, stdout holding only the JSON document
with --json (warnings and notes on stderr), results on stdout without it, and `train`'s progress
bar off when stderr is not a terminal unless asked for."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from typer.testing import CliRunner

from tests.conftest import noise, tone, write
from ui.cli import app

SR = 16000
REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "trainer" / "configs" / "toy.json"

# label embeddings cached in this test's folder; the class names each `train` encodes, once per run (conftest)
pytestmark = pytest.mark.usefixtures("private_cache", "minilm_memo")


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def said(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_clap_dir):  # noqa: F811
    """A folder of two sounds, a file that is not audio and a library sheet lying among them,
    indexed with the tiny model: (folder, index, the run's summary as a dict)."""
    from indexer import build_index
    lib = tmp_path_factory.mktemp("shapes_lib")
    write(lib / "tone.wav", tone(440, 1.0, SR), SR)
    write(lib / "hiss.wav", noise(1.5, SR, seed=4), SR)
    (lib / "broken.wav").write_text("not audio")
    (lib / "library.csv").write_text("Filename,Description\ntone.wav,A steady tone\n")
    index = tmp_path_factory.mktemp("shapes_idx") / "idx"
    summary = build_index([lib], index=index, model=str(tiny_clap_dir), workers=0, progress=False)
    return lib, index, summary.to_dict()


# -- 1. one JSON shape whatever the number of inputs ----------------------------------------------

def test_tag_json_is_a_record_per_file_for_one_file_too(library, tiny_clap_dir):  # noqa: F811
    """One file printed its bare tags, [{"label", "score", "cosine"}]; several files or a folder
    [{"path", "tags", "from_index"}]: a script had to know which it asked for."""
    lib, _, _ = library
    one = run("tag", lib / "tone.wav", "-m", tiny_clap_dir, "--labels", "dog,rain,bell", "--top", 2, "--json")
    assert one.exit_code == 0, one.output
    records = json.loads(one.stdout)["files"]
    assert isinstance(records, list) and len(records) == 1, records
    assert set(records[0]) == {"path", "tags", "from_index"}
    assert records[0]["path"] == str(lib / "tone.wav") and records[0]["from_index"] is False
    assert len(records[0]["tags"]) == 2 and set(records[0]["tags"][0]) == {"label", "score", "cosine"}
    several = run("tag", lib / "tone.wav", lib / "hiss.wav", "-m", tiny_clap_dir, "--labels", "dog,rain,bell",
                  "--top", 2, "--json")
    assert several.exit_code == 0, several.output
    rows = json.loads(several.stdout)["files"]
    assert [set(r) for r in rows] == [set(records[0])] * 2
    assert rows[0]["path"] == records[0]["path"]
    assert [t["label"] for t in rows[0]["tags"]] == [t["label"] for t in records[0]["tags"]]
    table = run("tag", lib / "tone.wav", "-m", tiny_clap_dir, "--labels", "dog,rain,bell")
    assert table.exit_code == 0 and "cosine" in table.stdout      # a person still gets one file's table


def test_sheet_import_json_is_a_list_for_one_sheet_too(library, tmp_path):
    """One sheet printed its report as an object, several a list of them."""
    lib, index, _ = library
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("Filename,Description\ntone.wav,A steady tone\n")
    second.write_text("Filename,Description\nhiss.wav,Hiss of a radio\n")
    one = run("sheet", "import", first, "--index", index, "--json")
    assert one.exit_code == 0, one.output
    reports = json.loads(one.stdout)["sheets"]
    assert json.loads(one.stdout)["errors"] == []
    assert isinstance(reports, list) and [r["sheet"] for r in reports] == ["first.csv"], reports
    assert reports[0]["matched_rows"] == 1
    both = run("sheet", "import", first, second, "--index", index, "--json")
    assert both.exit_code == 0, both.output
    assert [r["sheet"] for r in json.loads(both.stdout)["sheets"]] == ["first.csv", "second.csv"]
    assert [set(r) for r in json.loads(both.stdout)["sheets"]] == [set(reports[0])] * 2


# -- 2. caption's records name their file `path` ----------------------------------------------------

def test_caption_json_records_name_the_file_path_beside_audio(library, tiny_clap_dir, tmp_path):  # noqa: F811
    """`caption --json` named the file only `audio` (the manifest's key); every other command's
    records call it `path`."""
    lib, _, _ = library
    result = run("caption", lib / "tone.wav", lib / "hiss.wav", "--source", "model", "-m", tiny_clap_dir,
                 "--labels", "dog,rain,bell", "--threshold", 0, "--out", tmp_path / "m.jsonl", "--json")
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert [f.get("path") for f in files] == [str(lib / "tone.wav"), str(lib / "hiss.wav")]
    assert all(f["path"] == f["audio"] for f in files)             # the manifest's key is kept
    written = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert all("path" not in row for row in written)               # the manifest format is unchanged


# -- 3. with --json stdout holds only the JSON document, warnings and notes present ----------------

def _json_commands(lib: Path, index: Path, model: Path, tmp: Path) -> dict[str, tuple[list, int, str]]:
    """Each --json command, run where it warns, notes something or draws a progress bar:
    (arguments, exit code, what stderr says)."""
    gone, outside = tmp / "gone.wav", write(tmp / "outside.wav", tone(880, 1.0, SR), SR)
    sheet = tmp / "sheet.csv"
    sheet.write_text("Filename,Description\ntone.wav,A tone\nnothing.wav,Nothing\n")
    corpus = tmp / "corpus"
    rows = [("a.wav", "beep", tone(300, 0.5, SR)), ("b.wav", "beep", tone(900, 0.5, SR)),
            ("c.wav", "hiss", noise(0.5, SR, seed=1)), ("d.wav", "hiss", noise(0.5, SR, seed=2))]
    for name, _, wave in rows:
        write(corpus / name, wave, SR)
    (corpus / "broken.wav").write_text("not audio")
    manifest = corpus / "val.jsonl"
    manifest.write_text("".join(json.dumps({"audio": name, "captions": [f"a {label}"], "tags": [label],
                                            "label": label, "source": "test"}) + "\n"
                                for name, label, _ in [*rows, ("broken.wav", "beep", None)]))
    (corpus / "labels.csv").write_text("audio,label\n" + "".join(f"{n},{label}\n" for n, label, _ in rows))
    (corpus / "captions.csv").write_text("audio,caption\n" + "".join(f"{n},a {label}\n" for n, label, _ in rows))
    moved = tmp / "moved"
    write(moved / "tone.wav", tone(440, 1.0, SR), SR)        # hiss.wav is not there
    evaluated = ["-a", corpus, "-m", model, "--cache-dir", tmp / "cache", "--progress"]
    return {
        "index": (["index", lib, "--index", tmp / "idx2", "-m", model, "--progress"], 0, "broken.wav"),
        "info": (["info", "--index", index], 0, ""),
        "search": (["search", "a tone", "--index", index, "--format", "xyz"], 0, "note:"),
        "similar": (["similar", lib / "tone.wav", "--index", index, "--format", "xyz"], 0, "note:"),
        "duplicates": (["duplicates", "--index", index, "--format", "xyz", "--progress"], 0, "note:"),
        "tag": (["tag", lib / "tone.wav", lib / "broken.wav", gone, "-m", model, "--labels", "dog"], 0,
                "gone.wav: no such file"),
        "tag --timeline": (["tag", lib / "tone.wav", "--timeline", "-m", model, "--labels", "dog"], 0, "note:"),
        "caption": (["caption", lib / "tone.wav", lib / "broken.wav", gone, "--source", "model", "-m", model,
                     "--labels", "dog", "--threshold", 0, "--out", tmp / "m.jsonl"], 0, "gone.wav: no such file"),
        "tags add": (["tags", "add", "keeper", lib / "tone.wav", outside, "--index", index], 0,
                     "outside.wav: not in the index"),
        "tags remove": (["tags", "remove", "nothing", lib / "tone.wav", outside, "--index", index], 0,
                        "outside.wav: not in the index"),
        "tags list": (["tags", "list", "--index", index], 0, ""),
        "relocate": (["relocate", lib, moved, "--index", index, "--dry-run"], 0, ""),
        "sheet import": (["sheet", "import", sheet, "--index", index, "--dry-run"], 0, "no indexed file for 1 row"),
        "sheet list": (["sheet", "list", "--index", index], 0, ""),
        "sheet export": (["sheet", "export", tmp / "out.csv", "--index", index], 0, ""),
        "sheet remove": (["sheet", "remove", "sheet.csv", "--index", index], 1, "no file"),    # an error: no JSON
        "corpus list": (["corpus", "list"], 0, ""),
        "corpus labels": (["corpus", "labels", manifest, "--out", tmp / "labels.csv",
                           "--exclude-labels", "not a label"], 0, "no item has the excluded label"),
        "corpus audit": (["corpus", "audit", manifest, "-m", model, "--min-clips", 1, "--progress"], 0,
                         "val.jsonl:5: left out of the audit"),
        "eval zeroshot": (["eval", "zeroshot", corpus / "labels.csv", *evaluated], 0, "embedding audio"),
        "eval retrieval": (["eval", "retrieval", corpus / "captions.csv", *evaluated], 0, "embedding audio"),
        "train": (["train", TOY, "--out", tmp / "run", "--steps", 1, "--progress"], 0, "train:"),
    }


@pytest.mark.parametrize("command", ["index", "info", "search", "similar", "duplicates", "tag", "tag --timeline",
                                     "caption", "tags add", "tags remove", "tags list", "relocate", "sheet import",
                                     "sheet list", "sheet export", "sheet remove", "corpus list", "corpus labels",
                                     "corpus audit", "eval zeroshot", "eval retrieval", "train"])
def test_json_stdout_is_only_the_json_document(command, library, tiny_clap_dir, tmp_path):  # noqa: F811
    """Every --json command, with warnings, notes or progress bars on stderr: stdout parses as one
    JSON document (`corpus build` fetches packages: not here). A command that fails prints none."""
    lib, index, _ = library
    args, code, warned = _json_commands(lib, index, tiny_clap_dir, tmp_path)[command]
    result = run(*args, "--json")
    assert result.exit_code == code, result.output
    assert warned in said(result.stderr)                   # the warning, note or bar is there, on stderr
    if code:
        assert result.stdout == ""
    else:
        document = json.loads(result.stdout)               # and stdout is one JSON document, nothing else
        _check_top_level(command, document)


#: the commands whose --json is a list: of records (a hit, a tag, a sheet each) or of names (`corpus list`)
RECORD_LISTS = ("search", "similar", "tags list", "sheet list", "corpus list")
#: summaries' objects of counts under keys of their own (not the names of files, sheets or tags):
#: `info`'s counts, `index`'s totals, what a rebuild carried over (or not), the kinds of entries not scanned
FIXED_COUNTS = ("counts", "totals", "carried_over", "not_carried_over", "skipped")


def _check_top_level(command: str, document: object) -> None:
    """A list only for RECORD_LISTS, each item a record (or a name); every other command an
    object (`duplicates`, `sheet import` and `tag --timeline` printed bare lists, with no room for
    the files they could not use or the file they were about), whose "errors", when there, is a
    list, and none of whose values is an object of counts keyed by names (`info`'s "sheets" was:
    named things with counts are lists of records)."""
    if command in RECORD_LISTS:
        assert isinstance(document, list), (command, document)
        assert all(isinstance(item, (dict, str)) for item in document), (command, document)
        return
    assert isinstance(document, dict), (command, document)
    assert isinstance(document.get("errors", []), list), (command, document)
    for key, value in document.items():
        keyed_counts = isinstance(value, dict) and value and all(isinstance(v, int) for v in value.values())
        assert not keyed_counts or key in FIXED_COUNTS, (command, key, value)


#: the commands whose run above meets a file it cannot use (not audio, not indexed, not there)
WITH_ERRORS = ("caption", "corpus audit", "index", "info", "tag", "tags add", "tags remove")


def _walk(value: object):
    """Every (key, value) in a JSON document, nested ones too."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


@pytest.mark.parametrize("command", WITH_ERRORS)
def test_a_file_a_command_could_not_use_is_path_and_reason_in_errors(command, library, tiny_clap_dir,
                                                                     tmp_path):  # noqa: F811
    """`caption` said them as "PATH: REASON" strings under "failed", `corpus audit` under
    "skipped", `tags add` as "not_indexed" paths beside a "reasons" object, `tag` not at all:
    each now lists them as `index` does, and none keeps a list under the old names."""
    lib, index, _ = library
    args, code, _ = _json_commands(lib, index, tiny_clap_dir, tmp_path)[command]
    result = run(*args, "--json")
    assert result.exit_code == code, result.output
    document = json.loads(result.stdout)
    errors = document["errors"]
    assert errors and all(set(e) - {"at"} == {"path", "reason"} for e in errors), errors    # info's say when (at)
    assert all(isinstance(e["path"], str) and isinstance(e["reason"], str) and e["reason"] for e in errors)
    for key in ("failed", "skipped", "not_indexed", "reasons"):
        assert not any(k == key and isinstance(v, list) for k, v in _walk(document)), key


def test_no_command_names_a_count_errors_or_keys_records_by_name(library, tiny_clap_dir, tmp_path):  # noqa: F811
    """Across the --json commands: a top-level "errors" is never a count (`relocate` said one;
    counts nested in "totals" and "counts" keep the name), and `sheet list` and `tags list` give
    records, not an object keyed by names (whose keys changed from names to paths when two sheets
    shared a name)."""
    lib, index, _ = library
    commands = _json_commands(lib, index, tiny_clap_dir, tmp_path)
    for command in ("relocate", "index", "caption", "tag", "tags add", "tags list", "sheet list"):
        args, code, _ = commands[command]
        result = run(*args, "--json")
        assert result.exit_code == code, result.output
        document = json.loads(result.stdout)
        if command in ("sheet list", "tags list"):
            assert isinstance(document, list), (command, document)
        else:
            assert isinstance(document.get("errors", []), list), (command, document)


# -- 4. without --json: results on stdout, notes on stderr -----------------------------------------

def test_caption_summary_is_on_stdout(library, tiny_clap_dir, tmp_path):  # noqa: F811
    """`caption` said what it wrote on stderr, where `index` and `sheet export` say it on stdout."""
    lib, _, _ = library
    result = run("caption", lib / "tone.wav", "--source", "model", "-m", tiny_clap_dir, "--labels", "dog,rain",
                 "--threshold", 0, "--out", tmp_path / "m.jsonl")
    assert result.exit_code == 0, result.output
    assert f"captioned 1 of 1 file → {tmp_path / 'm.jsonl'}" in said(result.stdout)
    assert "captioned" not in result.stderr


def test_corpus_labels_summary_is_on_stdout(tmp_path):
    corpus = tmp_path / "corpus"
    write(corpus / "audio" / "a.wav", tone(300, 0.3, SR), SR)
    (corpus / "val.jsonl").write_text(json.dumps({"audio": "audio/a.wav", "captions": ["beep"], "tags": ["beep"],
                                                  "label": "beep", "source": "test"}) + "\n")
    result = run("corpus", "labels", corpus / "val.jsonl", "--out", tmp_path / "labels.csv")
    assert result.exit_code == 0, result.output
    assert f"1 row, 1 label → {tmp_path / 'labels.csv'}" in said(result.stdout) and "1 row" not in result.stderr


def test_corpus_build_summary_is_on_stdout(tmp_path, monkeypatch):
    """`corpus build` said what it built on stderr (the build itself fetches packages: faked)."""
    import trainer.corpus.runner
    from trainer.corpus.runner import CorpusSummary

    summary = CorpusSummary(train=12, val=4, seconds={"train": 30.0, "val": 10.0})
    monkeypatch.setattr(trainer.corpus.runner, "build_corpus", lambda out, *args, **kwargs: summary)
    result = run("corpus", "build", "--out", tmp_path / "corpus")
    assert result.exit_code == 0, result.output
    assert f"12 training + 4 validation clips in {tmp_path / 'corpus'} (40 s of audio)" in said(result.stdout)
    assert "training" not in result.stderr
    as_json = run("corpus", "build", "--out", tmp_path / "corpus", "--json")
    assert json.loads(as_json.stdout)["train"] == 12


def test_train_summary_is_on_stdout(tmp_path, monkeypatch):
    """`train` said what it trained, and its validation figures, on stderr."""
    import trainer.train
    from trainer.loop import TrainResult

    model_dir = tmp_path / "run" / "model"
    model_dir.mkdir(parents=True)
    result = TrainResult(out_dir=tmp_path / "run", model_dir=model_dir, steps=3, seconds=1.5, losses=[2.0, 1.0],
                         validation={"zeroshot": {"top1": 0.5}}, validated_at=3)
    monkeypatch.setattr(trainer.train, "run_training", lambda cfg, **kwargs: result)
    done = run("train", TOY, "--out", tmp_path / "run")
    assert done.exit_code == 0, done.output
    assert f"trained 3 steps in 1.5 s → model in {model_dir}" in said(done.stdout)
    assert "validation: zero-shot top1 0.500" in said(done.stdout)
    assert "trained" not in done.stderr and "validation" not in done.stderr


def test_cached_train_summary_is_on_stdout(tmp_path, monkeypatch):
    """A cached-features config's `train` said what it trained, and its figures, on stderr (the
    run is faked: it needs the cached features)."""
    import trainer.cached_train

    figures = {"zs_top1": 0.5, "t2a_R@1": 0.25}
    report = {"seconds": {"total": 2.0}, "final_trained_on_validation": True, "baseline": figures,
              "start": figures, "final": figures, "seeds": {"0": figures}}
    monkeypatch.setattr(trainer.cached_train, "run", lambda cfg, model_dir: report)
    result = run("train", REPO / "trainer" / "configs" / "soundsift_base.json", "--steps", 3, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    printed = said(result.stdout)
    assert f"trained 3 steps in 2.0 s → model in {tmp_path / 'm'}" in printed
    assert "validation (seed 0, trained without the validation clips): zs_top1 0.500 t2a_R@1 0.250" in printed
    assert "trained 3 steps" not in result.stderr and "logged above" in said(result.stderr)    # a note


def test_index_note_about_a_sheet_among_the_files_is_on_stderr(library, capsys):
    """The summary's advice to import a spreadsheet lying among the files was printed on stdout,
    among the results."""
    from ui.cli.cmd_index import _print_summary

    _print_summary(library[2])                               # what `soundsift index` prints
    printed = capsys.readouterr()
    assert "not imported as library sheets: library.csv" in said(printed.err)
    assert "library.csv" not in printed.out and "added" in printed.out      # the results stay on stdout


# -- 5. train's progress bar follows the terminal ---------------------------------------------------

def _bars(monkeypatch) -> list[bool]:
    """The ``disable`` of each tqdm bar the training loop makes; the run stops at the bar."""
    import tqdm.auto
    made: list[bool] = []

    def bar(*args, **kwargs):
        made.append(kwargs.get("disable", False))
        raise RuntimeError("stop at the bar")
    monkeypatch.setattr(tqdm.auto, "tqdm", bar)
    return made


def test_train_progress_bar_is_off_when_stderr_is_no_terminal(tmp_path, monkeypatch):
    """The config's "progress" defaulted to true: a log file got every redraw of the bar."""
    made = _bars(monkeypatch)
    result = run("train", TOY, "--out", tmp_path / "quiet", "--steps", 1)      # CliRunner: stderr is no terminal
    assert isinstance(result.exception, RuntimeError), result.output
    assert made == [True]                                                    # disabled
    made.clear()
    asked = run("train", TOY, "--out", tmp_path / "asked", "--steps", 1, "--progress")
    assert isinstance(asked.exception, RuntimeError), asked.output
    assert made == [False]


class _Terminal:
    """A stderr that is a terminal."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def test_train_config_progress_follows_the_terminal_unless_set(tmp_path, monkeypatch):
    from trainer.config import load_config

    data = json.loads(TOY.read_text())
    assert "progress" not in data
    written = {}
    for value in (True, False):
        written[value] = tmp_path / f"progress_{value}.json"
        written[value].write_text(json.dumps({**data, "progress": value}))
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert load_config(TOY).shows_progress() is True                        # a terminal: on
    assert load_config(written[False]).shows_progress() is False            # the config's false stands
    assert load_config(TOY, progress=False).shows_progress() is False       # so does --no-progress
    monkeypatch.setattr(sys, "stderr", SimpleNamespace(isatty=lambda: False, write=len, flush=lambda: None))
    assert load_config(TOY).shows_progress() is False                       # a log file or a pipe: off
    assert load_config(written[True]).shows_progress() is True              # the config's true stands
    assert load_config(TOY, progress=True).shows_progress() is True         # so does --progress
    monkeypatch.setitem(sys.modules, "ipykernel", ModuleType("ipykernel"))
    assert load_config(TOY).shows_progress() is True                        # a notebook: tqdm's widget
    assert load_config(written[False]).shows_progress() is False

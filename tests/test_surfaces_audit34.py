"""Consistency of the JSON/HTTP surfaces and the CLI's help (audit 34): every `similar --json`
hit carries `same_recording` (the query file's own is true), `/tag` takes `k` like every count,
`/search` takes `not_weight` like `--not-weight`, an empty `q` is called empty, and `--help`
names types and arguments for a person (TEXT, INTEGER ≥ 1, PATH..., not `<int range>`, `{paths}...`)."""
from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_server import get, serving
from ui.cli import app

SR = 16_000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A beep, its copy 6 dB down as FLAC, and a hiss, indexed with FakeModel and served; yields
    (base url, library folder)."""
    lib = tmp_path_factory.mktemp("surfaces") / "lib"
    write(lib / "beep.wav", tone(880, 2.0, SR), SR)
    write(lib / "beep_copy.flac", tone(880, 2.0, SR) * 0.5, SR, format="FLAC")
    write(lib / "hiss.wav", noise(2.0, SR, seed=3), SR)
    idx = lib.parent / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        yield url, lib.resolve()


def test_similar_json_gives_every_hit_same_recording(tmp_path, tiny_clap_dir):
    """The query file's own hit says true (it is the same recording) where it had no key at all."""
    lib = tmp_path / "lib"
    beep = write(lib / "beep.wav", tone(880, 3.0, SR), SR)
    write(lib / "hiss.wav", noise(3.0, SR, seed=4), SR)
    build_index([lib], tmp_path / "idx", str(tiny_clap_dir), workers=0, progress=False)
    result = CliRunner().invoke(app, ["similar", str(beep), "--index", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert [sorted(h) for h in hits[1:]] == [sorted(hits[0])] * (len(hits) - 1)      # the same keys
    marks = {h["path"].rsplit("/", 1)[1]: h["same_recording"] for h in hits}
    assert marks == {"beep.wav": True, "hiss.wav": False}
    table = CliRunner().invoke(app, ["similar", str(beep), "--index", str(tmp_path / "idx")])
    assert table.exit_code == 0 and "same recording" not in table.stdout     # no copy: no "copy" column


def test_similar_over_http_marks_the_query_file_too(served):
    url, lib = served
    _, hits, _ = get(f"{url}/similar?file={quote(str(lib / 'beep.wav'))}&k=3")
    assert {h["path"].rsplit("/", 1)[1]: h["same_recording"] for h in hits} == {
        "beep.wav": True, "beep_copy.flac": True, "hiss.wav": False}


def test_tag_takes_k_as_every_count_does(served):
    url, lib = served
    beep = quote(str(lib / "beep.wav"))
    status, tags, _ = get(f"{url}/tag?file={beep}&labels=beep,dog,rain&k=2")
    assert status == 200 and len(tags) == 2
    _, by_top, _ = get(f"{url}/tag?file={beep}&labels=beep,dog,rain&top=2")      # older clients
    assert by_top == tags
    status, same, _ = get(f"{url}/tag?file={beep}&labels=beep,dog,rain&k=2&top=2.0")
    assert status == 200 and same == tags
    status, body, _ = get(f"{url}/tag?file={beep}&labels=beep,dog,rain&k=1&top=3")
    assert status == 400 and "k=1 and top=3 disagree" in body["error"]
    status, clip_tags, _ = get(f"{url}/tag?labels=beep,dog,rain&k=1", data=(lib / "beep.wav").read_bytes())
    assert status == 200 and len(clip_tags) == 1
    status, body, _ = get(f"{url}/tag?file={beep}&k=0")
    assert status == 400 and "k must be a number of at least 1" in body["error"]


def test_search_takes_not_weight(served):
    """FakeModel embeds every text alike, so a segment scores (1 − not_weight) × its cosine."""
    url, _ = served
    _, plain, _ = get(f"{url}/search?q=beep&k=3")
    status, none_off, _ = get(f"{url}/search?q=beep&not=hiss&not_weight=0&k=3")
    assert status == 200 and [h["score"] for h in none_off] == pytest.approx([h["score"] for h in plain])
    _, quarter, _ = get(f"{url}/search?q=beep&not=hiss&not_weight=0.25&k=3")
    assert [h["score"] for h in quarter] == pytest.approx([0.75 * h["score"] for h in plain], abs=1e-5)
    status, body, _ = get(f"{url}/search?q=beep&not=hiss&not_weight=11")
    assert status == 400 and "not_weight must be a number from 0 to 10, got '11'" in body["error"]


def test_an_empty_parameter_is_called_empty_not_missing(served):
    url, _ = served
    for path, said in (("/search?q=", "q (the text to search for) is empty"),
                       ("/search?q=%20%20&k=2", "q (the text to search for) is empty"),
                       ("/search?k=2", "q (the text to search for) is missing"),
                       ("/similar?file=", "file (an indexed path or file id) is empty"),
                       ("/tag?labels=a", "file (an indexed path or file id) is missing")):
        status, body, _ = get(url + path)
        assert (status, body["error"]) == (400, said), path


#: what Typer 0.29 printed in a value's place instead of a person's words: ``<int range>``,
#: ``<list[str]>``, ``<path>``, ``[x>=1]`` (arguments as ``{text}``, ``{paths}...``: see the usage lines)
TYPING_INTERNALS = re.compile(r"<(str|int|float|bool|path|file|dir|list\[[^\]]*\]|int range|float range)>"
                              r"|\[\S*x[<>]=")


@pytest.mark.parametrize(("command", "usage", "argument"), [
    ("search", "soundsift search [OPTIONS] TEXT", "* TEXT What the sound is like"),
    ("similar", "soundsift similar [OPTIONS] AUDIO_FILE...", "* AUDIO_FILE... PATH An audio file"),
    ("tag", "soundsift tag [OPTIONS] PATH...", "* PATH... Audio files or folders"),
    ("relocate", "soundsift relocate [OPTIONS] OLD NEW", "* OLD PATH The folder the files were indexed in"),
    ("sheet import", "soundsift sheet import [OPTIONS] SHEET...", "* SHEET... PATH The sheets"),
])
def test_help_reads_for_a_person(command, usage, argument):
    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"Usage: {usage}" in result.output
    assert not TYPING_INTERNALS.search(result.output), TYPING_INTERNALS.search(result.output)
    lines = [" ".join(line.strip(" │").split()) for line in result.output.splitlines()]
    assert any(line.startswith(argument) for line in lines), argument


@pytest.mark.parametrize("command", ["search", "similar", "tag", "caption", "info", "sheet import"])
def test_index_help_names_the_index_home(command):
    """``--index NAME`` is a folder under $SOUNDSIFT_INDEX_HOME when it is set (engine.layout.index_home)."""
    result = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "300"})
    (row,) = [" ".join(line.strip(" │").split()) for line in result.output.splitlines()
              if line.strip(" │").startswith("--index ")]
    assert row.startswith("--index -i TEXT Index name (a folder under $SOUNDSIFT_INDEX_HOME, else under "
                          "indexes/ in the current folder) or path to an index folder."), row


def test_search_help_names_its_types_and_ranges():
    result = CliRunner().invoke(app, ["search", "--help"], env={"COLUMNS": "200"})
    lines = [" ".join(line.strip(" │").split()) for line in result.output.splitlines()]
    assert any(line.startswith("--top-k -k INTEGER ≥ 1 Number of results.") for line in lines)
    assert any(line.startswith("--not TEXT Sounds not wanted") for line in lines)
    assert any(line.startswith("--not-weight FLOAT 0 to 10 How much") for line in lines)
    assert any(line.startswith("--export PATH Also write") for line in lines)
    assert any(line.startswith("--json Print results") for line in lines)           # a flag: no type


@pytest.mark.parametrize("args", [["search", "x", "-k", "0"], ["search", "x", "--not-weight", "11"],
                                  ["similar"], ["serve", "--port", "70000"]])
def test_ranges_and_arguments_are_still_checked(args):
    """Help shows ranges in words; the checks are Typer's as before (nothing is run: bad values)."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert ("Invalid value" in result.output) or ("Missing argument 'AUDIO_FILE...'" in result.output)

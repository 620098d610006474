"""CLI contracts of `soundsift search`, `similar` and `tag` (DESIGN.md §3)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import chirp, noise, tone, write
from engine.query import SoundIndex
from tests.cli_width import wide_terminal
from ui.cli import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_clap_dir):  # noqa: F811
    from indexer import build_index
    lib = tmp_path_factory.mktemp("cli_lib")
    write(lib / "a" / "tone.wav", tone(440, 1.0, 48000), 48000)
    write(lib / "a" / "noise.flac", noise(2.0, 44100, seed=4), 44100)
    write(lib / "b" / "sweep.wav", chirp(100, 6000, 3.0, 16000), 16000)
    write(lib / "b" / "low.ogg", tone(120, 1.5, 22050), 22050)
    write(lib / "long.wav", np.concatenate([tone(300, 6.0, 16000), noise(8.0, 16000)]), 16000)
    index_dir = tmp_path_factory.mktemp("cli_idx") / "i"
    build_index([lib], index=index_dir, model=str(tiny_clap_dir), workers=0, progress=False)
    return lib, index_dir


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def json_out(result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("command", ["search", "similar", "tag"])
def test_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "--json" in result.stdout and "Usage" in result.stdout


def test_search_json_contract(indexed):
    lib, index_dir = indexed
    hits = json_out(run("search", "a beep", "--index", index_dir, "-k", 3, "--json"))
    assert len(hits) == 3
    for h in hits:
        assert isinstance(h["path"], str) and h["path"].startswith(str(lib))
        assert all(isinstance(h[key], float) for key in ("start", "end", "score"))
        assert 0.0 <= h["start"] < h["end"]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    with SoundIndex.open(index_dir) as index:
        assert hits == [h.to_dict() for h in index.search_text("a beep", k=3)]


def test_a_hit_whose_file_is_gone_says_so(tmp_path, tiny_clap_dir, monkeypatch):  # noqa: F811
    """Moved without `soundsift relocate`, or on a drive not mounted now: still found, marked."""
    from indexer import build_index
    lib = tmp_path / "lib"
    write(lib / "tone.wav", tone(440, 1.0, 16000), 16000)
    gone = write(lib / "sweep.wav", chirp(100, 6000, 1.5, 16000), 16000)
    build_index([lib], index=tmp_path / "idx", model=str(tiny_clap_dir), workers=0, progress=False)
    gone.rename(tmp_path / "elsewhere.wav")
    hits = json_out(run("search", "a beep", "--index", tmp_path / "idx", "--json"))
    assert {h["path"]: h.get("missing") for h in hits} == {str(lib / "tone.wav"): None, str(gone): True}
    monkeypatch.setenv("COLUMNS", "160")
    table = run("search", "a beep", "--index", tmp_path / "idx")
    assert table.exit_code == 0 and "sweep.wav (not on disk)" in table.stdout
    assert "tone.wav (not" not in table.stdout


def test_search_filters_and_all_segments(indexed):
    lib, index_dir = indexed
    flac_or_ogg = json_out(run("search", "noise", "-i", index_dir, "--json", "--format", "flac,ogg"))
    assert sorted(h["path"] for h in flac_or_ogg) == [str(lib / "a" / "noise.flac"), str(lib / "b" / "low.ogg")]
    under_b = json_out(run("search", "noise", "-i", index_dir, "--json", "--path-prefix", lib / "b"))
    assert {h["path"] for h in under_b} == {str(lib / "b" / "sweep.wav"), str(lib / "b" / "low.ogg")}
    rates = json_out(run("search", "noise", "-i", index_dir, "--json", "--sample-rate", 16000,
                         "--min-duration", 5))
    assert [h["path"] for h in rates] == [str(lib / "long.wav")]
    segments = json_out(run("search", "noise", "-i", index_dir, "--json", "--all-segments", "-k", 50))
    long_segments = [h for h in segments if h["path"] == str(lib / "long.wav")]
    assert len(long_segments) >= 2 and len(segments) > 5
    mono = json_out(run("search", "noise", "-i", index_dir, "--json", "--channels", "1", "-k", 10))
    assert len(mono) == 5                                           # every file of this library is mono
    assert json_out(run("search", "noise", "-i", index_dir, "--json", "--channels", "2,6")) == []
    assert json_out(run("search", "noise", "-i", index_dir, "--json", "--channels", "mono", "-k", 10)) == mono
    assert json_out(run("search", "noise", "-i", index_dir, "--json", "--channels", "stereo,5.1")) == []
    bad = run("search", "noise", "-i", index_dir, "--channels", "surround")
    assert bad.exit_code == 1 and "--channels takes channel counts or names" in bad.stderr
    assert "got 'surround'" in bad.stderr
    for rate in ("16k", "16kHz", "16", "16000 Hz"):            # 16 alone is kHz: nothing is sampled at 16 Hz
        same = json_out(run("search", "noise", "-i", index_dir, "--json", "--sample-rate", rate,
                            "--min-duration", 5))
        assert same == rates, rate
    bad = run("search", "noise", "-i", index_dir, "--sample-rate", "fast")
    assert bad.exit_code == 1 and "--sample-rate takes rates such as 48000, 48k or 44.1kHz" in bad.stderr


def test_search_table_output(indexed):
    _, index_dir = indexed
    result = run("search", "a beep", "--index", index_dir, "-k", 2)
    assert result.exit_code == 0, result.stderr
    assert "score" in result.stdout and ".wav" in result.stdout


@pytest.mark.parametrize("width", [80, 160])
def test_hit_table_fits_the_terminal(width, tmp_path, monkeypatch):
    """Times and scores never wrap; a narrow terminal gets one path column relative to the cwd."""
    import io

    from rich.console import Console

    from engine.query import Hit
    from ui.cli import results

    buf = io.StringIO()
    monkeypatch.setattr(results, "out_console", Console(file=buf, width=width))
    monkeypatch.chdir(tmp_path)
    path = str(tmp_path / "doors" / "a-rather-long-file-name-for-a-door-slam-take-07.wav")
    results.show_hits([Hit(path, 1.5, 11.5, 0.734, 1, 1, 73.25, "WAV", 48000)], False, "search")
    text = buf.getvalue()
    assert all(len(line) <= width for line in text.splitlines())
    assert "0:01.50–0:11.50" in text and "1:13.25" in text and "0.734" in text
    assert str(tmp_path) not in text                  # shown relative to the working directory
    third_column = "".join(line.split("│")[3].strip() for line in text.splitlines() if line.count("│") > 3)
    name = "a-rather-long-file-name-for-a-door-slam-take-07.wav"
    assert third_column == (f"doors/{name}" if width < results.NARROW_COLUMNS else name)
    assert ("format" in text) == (width >= results.NARROW_COLUMNS)
    assert ("WAV 48 kHz" in text) == (width >= results.NARROW_COLUMNS)


def test_search_errors_are_one_line_and_exit_1(indexed, tmp_path):
    result = run("search", "dog", "--index", tmp_path / "missing", "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert "no index at" in result.stderr and "soundsift index" in result.stderr
    result = run("search", "dog", "--index", indexed[1], "--min-duration", 5, "--max-duration", 1)
    assert result.exit_code == 1 and "minimum duration (5.0 s) is longer than the maximum (1.0 s)" in result.stderr


def test_similar_indexed_file_comes_first(indexed):
    lib, index_dir = indexed
    for name in ("a/tone.wav", "long.wav"):
        hits = json_out(run("similar", lib / name, "--index", index_dir, "-k", 4, "--json"))
        assert hits[0]["path"] == str(lib / name) and hits[0]["score"] >= 0.999
        assert len(hits) == 4


def test_similar_unindexed_file_is_embedded(indexed, tmp_path):
    lib, index_dir = indexed
    copy = write(tmp_path / "outside.wav", chirp(100, 6000, 3.0, 16000), 16000)
    hits = json_out(run("similar", copy, "--index", index_dir, "-k", 2, "--json"))
    assert hits[0]["path"] == str(lib / "b" / "sweep.wav") and hits[0]["score"] >= 0.999


def test_search_with_keywords(indexed):
    """--keywords: the file whose name holds the word comes first, with its BM25 in "keywords";
    it ranks files, so --all-segments is refused with a reason."""
    lib, index_dir = indexed
    hits = json_out(run("search", "a rising sweep", "--index", index_dir, "--keywords", "--json"))
    assert hits[0]["path"] == str(lib / "b" / "sweep.wav") and hits[0]["keywords"] > 0
    assert all(h["keywords"] == 0 for h in hits[1:])
    plain = json_out(run("search", "a rising sweep", "--index", index_dir, "--json"))
    assert all("keywords" not in h for h in plain)
    table = run("search", "a rising sweep", "--index", index_dir, "--keywords")
    assert table.exit_code == 0 and "words" in table.stdout and "sweep.wav" in table.stdout
    assert "words" not in run("search", "a rising sweep", "--index", index_dir).stdout
    both = run("search", "sweep", "--index", index_dir, "--keywords", "--all-segments")
    assert both.exit_code == 1 and "--keywords ranks whole files, so it does not go with --all-segments" in both.stderr


def test_similar_to_a_moment_of_a_file(indexed, tmp_path):
    """--start/--end: more like that part. long.wav (14 s) has segments 0–10 s and 4–14 s; a span
    after 10 s overlaps only the second, one before 4 s only the first. A file outside the index
    is cut to the span before it is embedded: 4–14 s of a copy is exactly the stored second segment."""
    lib, index_dir = indexed
    long = lib / "long.wav"

    def top_segment(*args):
        hits = json_out(run("similar", *args, "--index", index_dir, "-k", 3, "--all-segments", "--json"))
        return hits[0]["path"], hits[0]["start"], hits[0]["end"], hits[0]["score"]

    path, start, end, score = top_segment(long, "--start", "0:11")
    assert (path, start, end) == (str(long), 4.0, 14.0) and score >= 0.999
    path, start, end, score = top_segment(long, "--end", "3.5")
    assert (path, start, end) == (str(long), 0.0, 10.0) and score >= 0.999
    copy = tmp_path / "copy.wav"
    copy.write_bytes(long.read_bytes())
    path, start, end, score = top_segment(copy, "--start", "4", "--end", "0:14")
    assert (path, start, end) == (str(long), 4.0, 14.0) and score >= 0.999
    for target in (long, copy):
        past = run("similar", target, "--index", index_dir, "--start", "20")
        assert past.exit_code == 1 and f"{target} is 14.00 s long; the start time 20 s is past its end" in past.stderr
    backwards = run("similar", long, "--index", index_dir, "--start", "5", "--end", "2")
    assert backwards.exit_code == 1 and "must come after the start time" in backwards.stderr
    nonsense = run("similar", long, "--index", index_dir, "--start", "1:75")
    assert nonsense.exit_code == 2 and "is not a time" in nonsense.stderr


def test_similar_missing_file(indexed, tmp_path):
    result = run("similar", tmp_path / "nope.wav", "--index", indexed[1])
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_tag_json_contract(indexed, tmp_path, tiny_clap_dir):  # noqa: F811
    lib, _ = indexed
    audio = lib / "a" / "tone.wav"
    tags = json_out(run("tag", audio, "--model", tiny_clap_dir, "--labels", "dog,rain,siren,piano",
                        "--top", 3, "--json"))["files"][0]["tags"]
    assert len(tags) == 3 and {t["label"] for t in tags} <= {"dog", "rain", "siren", "piano"}
    assert all(isinstance(t["score"], float) and 0 <= t["score"] <= 1 for t in tags)
    assert [t["score"] for t in tags] == sorted((t["score"] for t in tags), reverse=True)
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("dog\nrain\n", encoding="utf-8")
    tags = json_out(run("tag", audio, "-m", tiny_clap_dir, "--labels-file", labels_file, "--json"))["files"][0]["tags"]
    assert sorted(t["label"] for t in tags) == ["dog", "rain"]
    assert sum(t["score"] for t in tags) == pytest.approx(1.0)
    table = run("tag", audio, "-m", tiny_clap_dir, "--labels", "dog,rain")
    assert table.exit_code == 0 and "dog" in table.stdout


def test_tag_argument_errors(indexed, tmp_path, tiny_clap_dir):  # noqa: F811
    audio = indexed[0] / "a" / "tone.wav"
    both = run("tag", audio, "-m", tiny_clap_dir, "--labels", "a", "--labels-file", tmp_path / "x.txt")
    assert both.exit_code == 1 and "not both" in both.stderr
    for blank in ("", " , ,"):              # not a silent fall back to the default vocabulary
        empty = run("tag", audio, "-m", tiny_clap_dir, "--labels", blank)
        assert empty.exit_code == 1 and "holds no labels" in empty.stderr
    missing = run("tag", tmp_path / "none.wav", "-m", tiny_clap_dir)
    assert missing.exit_code == 1 and "none.wav: no such file or folder" in " ".join(missing.stderr.split())
    not_audio = tmp_path / "text.wav"
    not_audio.write_text("hello")
    bad = run("tag", not_audio, "-m", tiny_clap_dir, "--labels", "a,b")
    assert bad.exit_code == 1 and "text.wav" in bad.stderr
    assert "WARNING" not in bad.stderr and bad.stderr.count("error:") == 1   # said once, not warned first


def test_tag_default_model_is_soundsift_base(indexed):
    audio = indexed[0] / "a" / "tone.wav"
    result = run("tag", audio, "--labels", "Telephone,Dog,Rain", "--top", 3)
    assert result.exit_code == 0, result.stderr
    assert "soundsift-base" in result.stdout and "Telephone" in result.stdout


def test_tag_folder_gives_each_file_its_tags_and_skips_unreadable(indexed, tmp_path, tiny_clap_dir):  # noqa: F811
    lib, _ = indexed
    folder = tmp_path / "takes"
    write(folder / "hum.wav", tone(120, 1.0, 16000), 16000)
    write(folder / "sub" / "hiss.flac", noise(1.5, 44100, seed=9), 44100)
    (folder / "broken.wav").write_text("not audio")
    result = run("tag", folder, "-m", tiny_clap_dir, "--labels", "dog,rain,siren", "--top", 2, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["files"]
    assert [r["path"] for r in rows] == [str(folder / "hum.wav"), str(folder / "sub" / "hiss.flac")]
    assert all(len(r["tags"]) == 2 and not r["from_index"] for r in rows)
    single = json_out(run("tag", folder / "hum.wav", "-m", tiny_clap_dir, "--labels", "dog,rain,siren",
                          "--top", 2, "--json"))["files"][0]["tags"]
    assert [t["label"] for t in rows[0]["tags"]] == [t["label"] for t in single]     # as tagged alone
    assert [t["score"] for t in rows[0]["tags"]] == pytest.approx([t["score"] for t in single], abs=1e-6)
    assert "broken.wav" in " ".join(result.stderr.split()) and "1 of 3 files could not be read" in result.stderr
    table = runner.invoke(app, ["tag", str(folder), "-m", str(tiny_clap_dir), "--labels", "dog,rain,siren"],
                          env=wide_terminal(folder))
    assert table.exit_code == 0 and "hum.wav" in table.stdout and "2 files" in table.stdout


def test_tag_with_index_uses_stored_vectors(indexed, tmp_path, monkeypatch):
    """Indexed files are tagged from the index without decoding; an outside file is embedded."""
    from engine import zeroshot

    lib, index_dir = indexed
    outside = write(tmp_path / "outside.wav", chirp(100, 6000, 3.0, 16000), 16000)
    decoded: list[str] = []
    real = zeroshot.file_query_vector
    monkeypatch.setattr(zeroshot, "file_query_vector",
                        lambda model, audio, *a, **k: decoded.append(str(audio)) or real(model, audio, *a, **k))
    result = run("tag", lib, outside, "--index", index_dir, "--labels", "dog,rain,siren", "--top", 3, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["files"]
    assert decoded == [str(outside)]                          # only the file the index lacks
    assert {r["path"]: r["from_index"] for r in rows} == {
        **{str(p): True for p in sorted(lib.rglob("*.*"))}, str(outside): False}
    # the stored vector tags a file as its audio does (same model, same segment policy)
    by_path = {r["path"]: r["tags"] for r in rows}
    from engine.query import SoundIndex
    with SoundIndex.open(index_dir) as idx:
        expected = idx.tag(str(lib / "long.wav"), labels=["dog", "rain", "siren"], top=3)
    assert [t["label"] for t in by_path[str(lib / "long.wav")]] == [t["label"] for t in expected]
    assert [t["score"] for t in by_path[str(lib / "long.wav")]] == pytest.approx([t["score"] for t in expected], abs=1e-5)


def test_tag_files_needs_exactly_one_of_model_and_index(tiny_clap_dir):  # noqa: F811
    from engine.errors import InvalidQuery
    from engine.tagging import tag_files

    with pytest.raises(InvalidQuery, match="not both and not neither"):
        tag_files([], ["a"])


@pytest.mark.parametrize("command", ["similar", "tag"])
def test_decoder_chatter_is_logged_under_the_file_not_left_on_the_terminal(indexed, tmp_path, tiny_clap_dir,
                                                                            capfd, command):
    """An MP3 with junk after its last frame makes libmpg123 print a warning on fd 2; the
    command logs it under the file's name instead (tests/test_decoder_notes.py shows the line)."""
    padded = write(tmp_path / "padded.mp3", tone(440, 2.0, 44100), 44100)
    padded.write_bytes(padded.read_bytes() + bytes(padded.stat().st_size))
    extra = ["--index", indexed[1]] if command == "similar" else ["-m", tiny_clap_dir, "--labels", "dog,rain"]
    capfd.readouterr()
    result = run(command, padded, *extra, "--json")
    assert result.exit_code == 0, result.stderr
    assert capfd.readouterr().err == ""                       # nothing anonymous on fd 2
    logged = [line for line in result.stderr.splitlines() if "Xing" in line]
    assert logged and all(line.startswith(f"WARNING engine.audio: {padded}: ") for line in logged)


def test_search_and_similar_export_their_results(indexed, tmp_path):
    """--export: a whole-file match is copied, a match on part of long.wav (14 s) is cut out;
    --json stays one JSON document on stdout, the summary goes to stderr."""
    import soundfile as sf
    lib, index_dir = indexed
    out = tmp_path / "picks"
    hits = json_out(run("search", "noise", "-i", index_dir, "--json", "-k", 3, "--all-segments",
                        "--path-prefix", lib / "long.wav", "--export", out))
    assert [(h["start"], h["end"]) for h in hits] in ([(0.0, 10.0), (4.0, 14.0)], [(4.0, 14.0), (0.0, 10.0)])
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{r}_long_{h['start']:.1f}-{h['end']:.1f}s.wav" for r, h in
                            zip(("01", "02"), hits)] + ["soundsift-export.csv"])
    assert all(sf.info(str(p)).duration == 10.0 for p in out.glob("*.wav"))
    result = run("search", "noise", "-i", index_dir, "--json", "--format", "flac", "--export", out)
    assert "exported 1 of 1 result to" in result.stderr and "1 file copied, 0 spans cut out" in result.stderr
    assert (out / "01_noise.flac").read_bytes() == (lib / "a" / "noise.flac").read_bytes()

    moment = run("similar", lib / "long.wav", "-i", index_dir, "--start", "11", "-k", 1, "--all-segments",
                 "--export", out, "--pad", "1", "--whole-files")
    assert moment.exit_code == 0, moment.stderr
    assert (out / "01_long.wav").read_bytes() == (lib / "long.wav").read_bytes()
    assert "similar to" in (out / "soundsift-export.csv").read_text().splitlines()[-1]


def test_export_options_are_checked_before_searching(indexed, tmp_path):
    _, index_dir = indexed
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    into_file = run("search", "noise", "-i", index_dir, "--export", a_file)
    assert into_file.exit_code == 1 and f"{a_file}: is a file; --export must name a folder" in into_file.stderr
    assert "search 'noise'" not in into_file.stdout
    stray = run("search", "noise", "-i", index_dir, "--pad", "2")
    assert stray.exit_code == 1 and "give --export FOLDER too" in stray.stderr


def test_search_not_ranks_excluded_sounds_down(indexed):
    _, index_dir = indexed
    got = json_out(run("search", "a beep", "-i", index_dir, "--json", "--not", "noise,hiss", "--not-weight", "0.75"))
    with SoundIndex.open(index_dir) as index:
        want = index.search_text("a beep", k=10, exclude=["noise", "hiss"], exclude_weight=0.75)
        plain = index.search_text("a beep", k=10)
    assert got == [h.to_dict() for h in want] and [h["score"] for h in got] != [h.score for h in plain]
    table = run("search", "a beep", "-i", index_dir, "--not", "noise")
    assert table.exit_code == 0 and "search 'a beep' not 'noise'" in table.stdout
    too_much = run("search", "a beep", "-i", index_dir, "--not", "noise", "--not-weight", "11")
    assert too_much.exit_code == 2


def test_similar_to_several_files_is_like_all_of_them(indexed, tmp_path):
    lib, index_dir = indexed
    outside = write(tmp_path / "probe.wav", tone(300, 1.0, 16000), 16000)
    got = json_out(run("similar", lib / "a" / "tone.wav", outside, "-i", index_dir, "--json", "-k", 4))
    with SoundIndex.open(index_dir) as index:
        want = index.similar_to_files([str(lib / "a" / "tone.wav"), str(outside)], k=4)
    assert got == [h.to_dict() for h in want]
    table = run("similar", lib / "a" / "tone.wav", outside, "-i", index_dir)
    assert table.exit_code == 0 and "similar to tone.wav + probe.wav" in table.stdout
    moment = run("similar", lib / "a" / "tone.wav", outside, "-i", index_dir, "--start", "1")
    assert moment.exit_code == 1 and "give one AUDIO_FILE with them" in moment.stderr


def test_an_index_given_as_the_library_folder_says_what_to_do(tmp_path):
    """--index pointing at a folder of sound files (the library itself): not an index, and the
    hint says an index needs its own folder instead of suggesting to build one there."""
    write(tmp_path / "lib" / "tone.wav", tone(440, 1.0, 16000), 16000)
    for command in (["search", "dog"], ["info"], ["tags", "list"]):
        result = run(*command, "--index", tmp_path / "lib")
        said = " ".join(result.stderr.split())
        assert result.exit_code == 1 and f"no index at {tmp_path / 'lib'}: it holds other files (tone.wav" in said
        assert "needs a folder of its own" in said
    empty = run("search", "dog", "--index", tmp_path / "none")
    assert f"build one with `soundsift index PATH... --index {tmp_path / 'none'}`" in " ".join(empty.stderr.split())


def test_a_filter_that_keeps_nothing_says_which_value_the_index_lacks(indexed):
    _, index_dir = indexed

    def notes(*options):
        result = run("search", "noise", "-i", index_dir, "--json", *options)
        assert result.exit_code == 0 and json.loads(result.stdout) == []
        return " ".join(result.stderr.split())
    assert "no indexed file has format xyz (this index: FLAC, OGG, WAV)" in notes("--format", "xyz")
    assert "no indexed file has sample rate 96000 (this index: 16000 Hz, 22050 Hz, 44100 Hz, 48000 Hz)" in \
        notes("--sample-rate", "96k")
    assert "no indexed file has channel count 2 (this index: 1)" in notes("--channels", "stereo")
    assert "no indexed file has tag nothere (this index: none)" in notes("--tagged", "nothere")
    said = notes("--min-duration", 100)
    assert "no indexed file is 100 s or longer (the longest: 14.0 s)" in said
    assert "note:" not in notes("--format", "ogg", "--min-duration", 10)   # each value exists; together nothing


def test_names_with_brackets_are_printed_as_they_are(tmp_path, tiny_clap_dir):  # noqa: F811
    """Rich markup is never read in printed paths: "[sfx]" is not a style, "[/]" no closing tag."""
    from indexer import build_index
    lib = tmp_path / "lib"
    names = ["[sfx] doors/door slam.wav", "hit [v2].wav", "mix[/]final.wav", "[bold]loud.wav"]
    for i, name in enumerate(names):
        write(lib / name, tone(300 + 100 * i, 1.0, 16000), 16000)
    (lib / "bad [x].wav").write_text("not audio")
    index_dir = tmp_path / "idx"
    build_index([lib], index=index_dir, model=str(tiny_clap_dir), workers=0, progress=False)
    wide = {"COLUMNS": "250"}
    result = runner.invoke(app, ["search", "a tone", "--index", str(index_dir), "-k", "4"], env=wide)
    assert result.exit_code == 0, result.output
    for name in names:
        assert Path(name).name in result.stdout, result.stdout
    assert "[sfx] doors" in result.stdout or "[sfx]" in result.stdout
    result = runner.invoke(app, ["info", "--index", str(index_dir)], env=wide)
    assert result.exit_code == 0, result.output
    assert "bad [x].wav" in result.stdout
    result = runner.invoke(app, ["search", "a tone", "--index", str(index_dir), "--channels", "[/]"], env=wide)
    assert result.exit_code == 1 and "[/]" in result.stderr       # an error line quoting a bracket


def test_times_past_an_hour_read_as_hours_and_round_trip():
    from ui.cli.results import clock, parse_time
    assert [clock(s) for s in (0.0, 83.5, 59.999, 3599.996, 3600.0, 3725.25, 36000.0)] == [
        "0:00.00", "1:23.50", "1:00.00", "1:00:00.00", "1:00:00.00", "1:02:05.25", "10:00:00.00"]
    for seconds in (12.34, 754.5, 3725.25, 7384.01):
        assert parse_time(clock(seconds)) == pytest.approx(seconds)

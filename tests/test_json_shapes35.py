"""The CLI's --json shapes made consistent before more scripts depend on them (session 35):
a file a command could not use is ``{"path", "reason"}`` in an ``"errors"`` list, as `index`
lists its failures (`caption`, `tag`, `tags add/remove`, `corpus audit`); named things with
counts are a list of records whatever their names (`sheet list`, `tags list`); a summary's key
with nothing to say is null, not a made-up value or left out (`relocate --dry-run`, `train`)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app

SR = 16000
TOY = Path(__file__).resolve().parents[1] / "trainer" / "configs" / "toy.json"

pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def is_error_list(errors: object) -> bool:
    """Whether ``errors`` is what `index --json` lists: ``[{"path": str, "reason": str}, …]``."""
    return isinstance(errors, list) and all(
        isinstance(e, dict) and set(e) == {"path", "reason"} and all(isinstance(v, str) and v for v in e.values())
        for e in errors)


@pytest.fixture
def sounds(tmp_path):
    """A folder of a tone, a hiss and a file that is not audio, and a path that does not exist."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "tone.wav", tone(440, 1.0, SR), SR)
    write(lib / "hiss.wav", noise(1.0, SR, seed=3), SR)
    (lib / "broken.wav").write_text("not audio")
    return lib, tmp_path / "gone.wav"


def fake_index(lib: Path, idx: Path) -> Path:
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return idx


# -- 1. caption: failures are {"path", "reason"} objects, as index's ------------------------------

def test_caption_json_lists_unreadable_files_as_index_does(sounds, tiny_clap_dir, tmp_path):  # noqa: F811
    """`caption --json` said failures as strings, "failed": ["PATH: REASON"]; `index --json` as
    objects, "errors": [{"path", "reason"}]."""
    lib, gone = sounds
    result = run("caption", lib / "tone.wav", lib / "broken.wav", gone, "--source", "model", "-m", tiny_clap_dir,
                 "--labels", "dog,rain", "--threshold", 0, "--out", tmp_path / "m.jsonl", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "failed" not in report and is_error_list(report["errors"]), report
    assert [e["path"] for e in report["errors"]] == [str(lib / "broken.wav")]
    assert "not readable as audio" in report["errors"][0]["reason"]
    assert report["missing"] == [str(gone)] and [f["path"] for f in report["files"]] == [str(lib / "tone.wav")]


# -- 2. tag: unreadable files and missing paths are in the JSON, not on stderr alone ---------------

def test_tag_json_lists_the_files_it_could_not_read(sounds, tiny_clap_dir):  # noqa: F811
    """`tag --json` printed only the files tagged: a script could not tell a file left out from
    one never given, without reading stderr."""
    lib, gone = sounds
    result = run("tag", lib / "tone.wav", lib / "broken.wav", gone, "-m", tiny_clap_dir, "--labels", "dog,rain",
                 "--json")
    assert result.exit_code == 0, result.output            # as before: some file was tagged
    out = json.loads(result.stdout)
    assert isinstance(out, dict) and set(out) == {"files", "errors", "missing"}, out
    assert [r["path"] for r in out["files"]] == [str(lib / "tone.wav")]
    assert set(out["files"][0]) == {"path", "tags", "from_index"}
    assert is_error_list(out["errors"]) and [e["path"] for e in out["errors"]] == [str(lib / "broken.wav")]
    assert out["missing"] == [str(gone)]
    assert "broken.wav" in result.stderr                   # still warned about on stderr
    one = json.loads(run("tag", lib / "tone.wav", "-m", tiny_clap_dir, "--labels", "dog,rain", "--json").stdout)
    assert one == {"files": out["files"], "errors": [], "missing": []}     # one shape, one file too


# -- 3. sheet list: one shape whether or not two sheets share a name -------------------------------

def test_sheet_list_json_is_records_whether_or_not_names_are_shared(tmp_path):
    """`sheet list --json` keyed its object by file name, and by path once two sheets shared a
    name: the same sheet's key changed when another was imported."""
    lib = (tmp_path / "Vendor").resolve()
    write(lib / "Vol1" / "door.wav", noise(1.0, SR, seed=1), SR)
    write(lib / "Vol2" / "rain.wav", noise(1.0, SR, seed=2), SR)
    idx = fake_index(lib, tmp_path / "idx")
    one, two = lib / "Vol1" / "metadata.csv", lib / "Vol2" / "metadata.csv"
    one.write_text("Filename,Description\ndoor.wav,An oak door\n")
    two.write_text("Filename,Description\nrain.wav,Rain on a roof\n")
    assert run("sheet", "import", one, "--index", idx).exit_code == 0
    alone = run("sheet", "list", "--index", idx, "--json")
    assert alone.exit_code == 0, alone.output
    assert json.loads(alone.stdout) == [{"sheet": "metadata.csv", "path": str(one), "files": 1}]
    assert run("sheet", "import", two, "--index", idx).exit_code == 0
    both = json.loads(run("sheet", "list", "--index", idx, "--json").stdout)
    assert sorted(both, key=lambda r: r["path"]) == [{"sheet": "metadata.csv", "path": str(one), "files": 1},
                                                     {"sheet": "metadata.csv", "path": str(two), "files": 1}]
    table = run("sheet", "list", "--index", idx)               # a person still sees the paths apart
    assert str(one) in " ".join(table.stdout.split()) and str(two) in " ".join(table.stdout.split())


# -- 4. relocate --dry-run: nothing committed, no generation ---------------------------------------

def test_relocate_dry_run_json_has_no_generation(tmp_path):
    """A dry run said "generation": 0, a generation no index has; and "errors" was a count where
    every other command's "errors" lists {"path", "reason"}."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "tone.wav", tone(440, 1.0, SR), SR)
    (lib / "broken.wav").write_text("not audio")
    idx = fake_index(lib, tmp_path / "idx")
    moved = (tmp_path / "moved").resolve()
    lib.rename(moved)
    dry = run("relocate", lib, moved, "--index", idx, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["generation"] is None and planned["dry_run"] is True, planned
    assert "errors" not in planned and planned["failed"] == 1 and planned["files"] == 1
    done = json.loads(run("relocate", lib, moved, "--index", idx, "--json").stdout)
    assert isinstance(done["generation"], int) and done["generation"] > 1 and done["dry_run"] is False
    assert set(done) == set(planned) and done["failed"] == 1


# -- 5. tags: paths not indexed as errors; counts as records ---------------------------------------

def test_tags_json_lists_errors_and_records(tmp_path):
    """`tags add --json` gave "not_indexed" (paths) and "reasons" (path → reason) where `index`
    gives "errors" [{"path", "reason"}]; `tags list --json` an object keyed by tag."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "tone.wav", tone(440, 1.0, SR), SR)
    write(lib / "hiss.wav", noise(1.0, SR), SR)
    idx = fake_index(lib, tmp_path / "idx")
    outside = write(tmp_path / "outside.wav", tone(880, 1.0, SR), SR)
    added = run("tags", "add", "keeper", lib, outside, "--index", idx, "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout) == {"files": 2, "changed": 2, "errors": [
        {"path": str(outside), "reason": "not in the index (index it first)"}]}
    run("tags", "add", "ep3", lib / "tone.wav", "--index", idx)
    listed = run("tags", "list", "--index", idx, "--json")
    assert json.loads(listed.stdout) == [{"tag": "keeper", "files": 2}, {"tag": "ep3", "files": 1}]
    removed = json.loads(run("tags", "remove", "ep3", lib / "tone.wav", "--index", idx, "--json").stdout)
    assert removed == {"files": 1, "changed": 1, "errors": []}


# -- 5. corpus audit: unreadable clips as {"path", "reason"} ---------------------------------------

def test_corpus_audit_json_lists_unreadable_clips_as_errors(tmp_path, tiny_clap_dir):  # noqa: F811
    """`corpus audit --json` gave them as "skipped": ["PATH: REASON"] strings."""
    rows = [("a.wav", "beep", tone(300, 0.5, SR)), ("b.wav", "hiss", noise(0.5, SR, seed=1))]
    for name, _, wave in rows:
        write(tmp_path / name, wave, SR)
    (tmp_path / "broken.wav").write_text("not audio")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"audio": name, "tags": [label], "source": "test"}) + "\n"
                                for name, label in [("a.wav", "beep"), ("b.wav", "hiss"), ("broken.wav", "beep")]))
    result = run("corpus", "audit", manifest, "-m", tiny_clap_dir, "--min-clips", 1, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "skipped" not in report and is_error_list(report["errors"]), report
    assert [e["path"] for e in report["errors"]] == [str(tmp_path / "broken.wav")]
    assert report["clips"] == 2
    table = run("corpus", "audit", manifest, "-m", tiny_clap_dir, "--min-clips", 1)
    assert f"left out (unreadable): {tmp_path / 'broken.wav'}: not readable as audio" in " ".join(table.stdout.split())


# -- 5. train: a summary's keys are there in every run ---------------------------------------------

def test_train_json_keys_are_there_when_empty(tmp_path, monkeypatch):
    """"validation_error" was there only when the final validation failed (other runs left it
    out), and the summary did not say which trainer ran, as a cached-features run's does."""
    import trainer.train
    from trainer.loop import TrainResult

    model_dir = tmp_path / "run" / "model"
    model_dir.mkdir(parents=True)
    result = TrainResult(out_dir=tmp_path / "run", model_dir=model_dir, steps=3, seconds=1.5, losses=[2.0, 1.0],
                         validation={"zeroshot": {"top1": 0.5}}, validated_at=3)
    monkeypatch.setattr(trainer.train, "run_training", lambda cfg, **kwargs: result)
    done = run("train", TOY, "--out", tmp_path / "run", "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["trainer"] == "loop" and "validation_error" in summary and summary["validation_error"] is None

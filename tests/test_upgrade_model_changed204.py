"""An index built by an older soundsift whose bundled model has been retrained since (session 41's
upgrade check: indexes from three of four older revisions): `soundsift index` of the unchanged
library embeds nothing, so it never loaded the model to find its fingerprint changed, and
reported success; `soundsift info` showed nothing wrong either. Only the next search said the
index must be re-embedded. Both now say so, with the command that does it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.catalog import set_meta
from indexer import build_index
from tests.conftest import catalog_session, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app

OLDER_FINGERPRINT = "7d19d4df4c02" + "0" * 52      # what an older soundsift-base's weights hashed to


def run(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def older_index(tmp_path) -> tuple[Path, Path]:
    """A library and an index of it whose meta records soundsift-base with an older fingerprint
    (built here with a fake model, then its meta written as the older soundsift left it)."""
    lib = tmp_path / "lib"
    write(lib / "tone.wav", tone(440, 1.0, 16000), 16000)
    write(lib / "low.wav", tone(110, 1.5, 16000), 16000)
    idx = tmp_path / "old index"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    with catalog_session(idx, write=True) as s:
        set_meta(s, model_name="soundsift-base", model_fingerprint=OLDER_FINGERPRINT)
    return lib, idx


def test_an_index_run_that_embeds_nothing_says_the_model_changed_since(older_index, caplog):
    lib, idx = older_index
    r = run("index", lib, "--index", idx, "--workers", "0", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["unchanged"] == 2          # nothing embedded: the model was never loaded
    said = " ".join((r.output + caplog.text).split())
    assert "model 'soundsift-base' as it was (fingerprint 7d19d4df4c02), which has changed since" in said
    assert f"`soundsift index PATH... --index '{idx}' --rebuild`" in said


def test_info_says_the_model_changed_since(older_index):
    lib, idx = older_index
    r = run("info", "--index", idx, "--json")
    assert r.exit_code == 0, r.output
    changed = json.loads(r.stdout)["model_changed"]
    assert "which has changed since" in changed and "search, tag and serve refuse the index" in changed
    assert f"--index '{idx.resolve()}' --rebuild`" in changed
    r = run("info", "--index", idx)
    assert r.exit_code == 0 and "model changed" in r.stdout


@pytest.mark.parametrize("name", ["soundsift-base", "fake"])
def test_an_index_whose_model_is_as_it_was_says_nothing(older_index, name):
    """soundsift-base as installed; a fake model, which cannot be told from its files (as a
    laion/* checkpoint cannot): no key, no warning."""
    from indexer.index_model import fingerprint_now
    lib, idx = older_index
    fingerprint = fingerprint_now(name) if name == "soundsift-base" else "fake-v1"
    with catalog_session(idx, write=True) as s:
        set_meta(s, model_name=name, model_fingerprint=fingerprint)
    r = run("info", "--index", idx, "--json")
    assert r.exit_code == 0 and "model_changed" not in json.loads(r.stdout)
    r = run("index", lib, "--index", idx, "--workers", "0")
    assert r.exit_code == 0 and "changed since" not in r.output


def test_a_model_folder_whose_weights_are_gone_is_said_and_info_goes_on(older_index, tmp_path):
    lib, idx = older_index
    folder = tmp_path / "my model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "soundsift-clap"}')    # model.safetensors gone
    with catalog_session(idx, write=True) as s:
        set_meta(s, model_name=str(folder))
    r = run("info", "--index", idx, "--json")
    assert r.exit_code == 0, r.output
    assert "model_changed" not in json.loads(r.stdout)
    assert f"cannot tell whether model '{folder}' has changed since index" in " ".join(r.stderr.split())

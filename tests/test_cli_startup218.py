"""Session 42 (h218): the CLI's start-up imports only what a command uses.

Importing ``ui.cli`` (every command registering itself) brought in engine.query, engine.filters and
engine.zeroshot for three defaults and a type annotation, and with them numpy, sqlalchemy's ORM,
the decoders and faiss: ≈ 0.6 s before ``--help`` or ``--version`` printed a line. The defaults
now live in engine.query_defaults and the commands' ``filters`` parameter (replaced by the filter
options) is annotated ``Any``; engine.vectors imports faiss in the functions that read or write a
FAISS file, so a command that reads only the catalog (``tags list``) starts without it.
"""
from __future__ import annotations

import json

import pytest

from indexer import build_index
from indexer.user_tags import add_tags
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_text_without_torch import cli_noting_imports

#: what a command that loads no index need not import
HEAVY = ["torch", "faiss", "numpy", "sqlalchemy", "sqlalchemy.orm", "soundfile", "engine.catalog",
         "engine.audio", "engine.filters", "engine.query", "engine.zeroshot", "engine.vectors"]


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["search", "--help"], ["tag", "--help"],
                                  ["eval", "zeroshot", "--help"], ["duplicates", "--help"]])
def test_help_and_version_import_none_of_the_engines_heavy_modules(tmp_path, args):
    done, imported = cli_noting_imports(tmp_path, HEAVY, *args)
    assert done.stdout.strip()
    assert imported == set()


def test_search_help_still_shows_the_defaults_it_took_from_the_engine(tmp_path):
    from engine.query import EXCLUDE_WEIGHT
    from engine.zeroshot import DEFAULT_TEMPLATE, LABEL_QUERY_TEMPLATE

    assert (EXCLUDE_WEIGHT, DEFAULT_TEMPLATE, LABEL_QUERY_TEMPLATE) == (0.5, "This is a sound of {label}.", "{label}")
    done, _ = cli_noting_imports(tmp_path, [], "search", "--help")
    assert "(default 0.5)" in " ".join(done.stdout.split())
    for option in ("--min-duration", "--path-prefix", "--tagged", "--not-weight"):   # filter_options' too
        assert option in done.stdout


def test_a_command_reading_only_the_catalog_starts_without_faiss(tmp_path):
    lib = tmp_path / "lib"
    write(lib / "hum.wav", tone(440, 1.0, 16000), 16000)
    write(lib / "hiss.wav", noise(1.0, 16000, seed=2), 16000)
    index = tmp_path / "idx"
    build_index([str(lib)], index, FakeModel(), workers=0, progress=False)
    add_tags(index, [lib / "hum.wav"], ["keeper"])
    done, imported = cli_noting_imports(tmp_path, ["faiss", "torch", "sqlalchemy.orm"],
                                        "tags", "list", "--index", str(index), "--json")
    assert json.loads(done.stdout) == [{"tag": "keeper", "files": 1}]
    assert imported == {"sqlalchemy.orm"}           # the catalog is read; the vectors are not

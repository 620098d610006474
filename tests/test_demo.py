"""The README's first command re-embeds its own index after an upgrade changed soundsift-base."""
from __future__ import annotations

import json

from engine.layout import INDEX_HOME_ENV
from engine.models.factory import BUNDLED, DEFAULT_MODEL
from engine.models.soundsift_clap import SoundsiftClapConfig, fingerprint_of
from ui.demo import built_with_older_model


def _write_index_json(root, fingerprint: str) -> None:
    root.mkdir(parents=True)
    (root / "index.json").write_text(json.dumps({"model_name": DEFAULT_MODEL, "model_fingerprint": fingerprint}))


def test_demo_rebuilds_only_an_index_of_an_older_model(tmp_path, monkeypatch):
    monkeypatch.setenv(INDEX_HOME_ENV, str(tmp_path))
    assert not built_with_older_model("fresh")                      # no index yet: plain indexing
    folder = BUNDLED[DEFAULT_MODEL]
    current = fingerprint_of(folder, SoundsiftClapConfig.from_file(folder / "config.json"))
    _write_index_json(tmp_path / "same", current)
    assert not built_with_older_model("same")
    _write_index_json(tmp_path / "old", "0" * 64)
    assert built_with_older_model("old")

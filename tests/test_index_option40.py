"""Commands that messages suggest name the index as `--index` would open it again: an index
opened as ``./idx`` is written ``./idx`` (``--index idx`` is the bare name of ``indexes/idx``,
another index), quoted where its path holds spaces (engine.layout.index_option)."""
from __future__ import annotations

from pathlib import Path

from engine.layout import index_option, resolve_index_dir


def test_the_sheet_reimport_advice_names_a_folder_here_as_dot_slash():
    from indexer.runner import _reimport_advice
    (advice,) = _reimport_advice(Path("idx"), [("week2.csv", "/sheets/week 2.csv")])
    assert "`soundsift sheet import '/sheets/week 2.csv' --index ./idx`" in advice
    (advice,) = _reimport_advice(Path("/srv/SFX Drive/idx"), [("week2.csv", None)])
    assert "--index '/srv/SFX Drive/idx'`" in advice


def test_the_pages_failed_files_note_names_a_folder_here_as_dot_slash():
    from ui.components.overview_tab import failed_note
    note = failed_note(200, 40_200, "idx")
    assert "`soundsift info --index ./idx --errors 40200 --json`" in note


def test_what_index_option_writes_opens_the_same_folder():
    for root in ("idx", "./idx", "/srv/SFX Drive/idx", "lib/idx"):
        value = index_option(root)
        unquoted = value[1:-1] if value.startswith("'") else value
        assert resolve_index_dir(unquoted).resolve() == Path(root).resolve()


def test_damaged_index_advice_names_a_folder_here_as_dot_slash(tmp_path, monkeypatch):
    from engine.catalog import damaged_catalog
    from engine.vectors import unreadable_vectors
    monkeypatch.chdir(tmp_path)
    assert "--index ./idx` (its tags" in str(damaged_catalog(Path("idx") / "catalog.db", "is empty"))
    assert "--index ./idx --rebuild`" in str(unreadable_vectors(Path("idx") / "vectors-000001.faiss"))
    spaced = Path("SFX Drive") / "idx"
    assert "--index 'SFX Drive/idx' --rebuild`" in str(unreadable_vectors(spaced / "vectors-000001.faiss"))

"""The suite's shared session fixtures are built once per run: conftest.py provides them, and a test
module that imported one by name would get its own module-level copy, built again for that module
(the page's indexed library was built seven times a run). And the shared library stays as built."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
#: session fixtures conftest.py provides to every module, by the helper module defining each
SHARED = {"tests.tiny_models": {"tiny_clap_dir", "tiny_fused_clap_dir"}, "tests.ui_library": {"ui_library"}}


def imported_fixtures(source: str) -> list[str]:
    """The shared session fixtures a module's source imports by name."""
    return sorted(alias.name for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.ImportFrom) and node.module in SHARED
                  for alias in node.names if alias.name in SHARED[node.module])


def test_no_test_module_imports_a_shared_session_fixture():
    sources = {path.name: path.read_text(encoding="utf-8") for path in sorted(TESTS.glob("*.py"))
               if path.name != "conftest.py"}
    found = {name: fixtures for name, source in sources.items() if any(module in source for module in SHARED)
             if (fixtures := imported_fixtures(source))}
    assert found == {}, f"take these by name from conftest.py, do not import them: {found}"


def test_the_check_sees_an_import_of_a_shared_fixture():
    source = "from tests.ui_library import SR, ui_library  # noqa: F401\nfrom tests.tiny_models import make_tiny_clap\n"
    assert imported_fixtures(source) == ["ui_library"]


#: indexes their tests only search (leaving checks that none changed them): built once per module
READ_ONLY = {"test_copies_cost38.py": "indexed", "test_copies_ranked_once.py": "take_of_ten"}


def fixture_scope(source: str, name: str) -> str | None:
    """The scope the module's fixture ``name`` is declared with ("function" unless given); None: no such fixture."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            for deco in node.decorator_list:
                call = deco if isinstance(deco, ast.Call) else None
                if "fixture" in ast.unparse(call.func if call else deco):
                    given = [kw.value for kw in (call.keywords if call else []) if kw.arg == "scope"]
                    return ast.literal_eval(given[0]) if given else "function"
    return None


def test_indexes_their_tests_only_search_are_built_once_per_module():
    scopes = {module: fixture_scope((TESTS / module).read_text(encoding="utf-8"), name)
              for module, name in READ_ONLY.items()}
    assert scopes == {module: "module" for module in READ_ONLY}


def test_ui_library_is_one_session_fixture_for_every_module(request: pytest.FixtureRequest):
    """Named from a module that does not import it, it resolves to the session one of tests/ui_library.py."""
    import tests.ui_library as shared

    definition = request._fixturemanager.getfixturedefs("ui_library", request.node)
    assert definition is not None and len(definition) == 1
    assert definition[0].scope == "session" and definition[0].func.__module__ == shared.__name__


def test_a_change_to_the_shared_library_is_seen(tmp_path):
    """What the session's end checks: a file written, changed in place or removed, a row written to
    the catalog (still in its write-ahead log); not the keyword cache a search keeps there."""
    import sqlite3

    from tests.ui_library import changes, folder_state

    (tmp_path / "index").mkdir()
    writer = sqlite3.connect(tmp_path / "index" / "catalog.db")
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE tags (file_id INTEGER, tag TEXT)")
    writer.commit()
    (tmp_path / "index" / "index.json").write_text("{}")
    (tmp_path / "dog.wav").write_bytes(b"RIFF")
    before = folder_state(tmp_path)
    (tmp_path / "index" / "keywords.npz").write_bytes(b"cache")
    assert changes(before, folder_state(tmp_path)) == []
    writer.execute("INSERT INTO tags VALUES (1, 'keeper')")
    writer.commit()
    assert (tmp_path / "index" / "catalog.db-wal").stat().st_size > 0
    (tmp_path / "index" / "index.json").write_text("[]")
    (tmp_path / "dog.wav").unlink()
    (tmp_path / "sheet.csv").write_text("Filename")
    assert changes(before, folder_state(tmp_path)) == ["dog.wav", "index/catalog.db (rows)", "index/index.json",
                                                       "sheet.csv"]
    writer.close()

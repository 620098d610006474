"""Leftovers of session 34's audit of the search page (streamlit AppTest on a tiny-CLAP index of its
own): one tag choice per tag whatever its spelling, a "Without" box that says when it changes
nothing, sidebar filters that name the tab they narrow and offer the library root once, and a
card whose file has gone since it was indexed saying so instead of a download that fails unseen."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.catalog import File
from tests.conftest import catalog_session, noise, tone, write
from tests.ui_library import page_on

SR = 22_050


def _build(base: Path) -> Path:
    """A library of three files in two folders (ui/, takes/) under ``base``; its root."""
    root = base / "library"
    write(root / "ui" / "click.wav", tone(2000, 0.5, SR), SR)
    write(root / "takes" / "door.wav", noise(2.0, SR, seed=3, amp=0.3), SR)
    write(root / "takes" / "hum.wav", tone(120, 3.0, SR), SR)
    return root


@pytest.fixture(scope="module")
def leftovers_index(tmp_path_factory, tiny_clap_dir) -> Path:  # noqa: F811
    """The index of :func:`_build`'s library (not to be changed: tests that tag or delete copy it)."""
    from indexer import build_index
    base = tmp_path_factory.mktemp("page_leftovers34")
    root = _build(base)
    summary = build_index([root], index=base / "index", model=str(tiny_clap_dir), workers=0, progress=False)
    assert summary.added == 3, summary
    return base / "index"


def _own_index(tmp_path: Path, tiny_clap_dir: Path) -> Path:
    """A fresh index of a fresh library under ``tmp_path``, for a test that tags or deletes."""
    from indexer import build_index
    root = _build(tmp_path)
    assert build_index([root], index=tmp_path / "index", model=str(tiny_clap_dir), workers=0,
                       progress=False).added == 3
    return tmp_path / "index"


def _file_id(index: Path, name: str) -> int:
    """The catalog id of the indexed file named ``name``."""
    with catalog_session(index) as s:
        return next(i for i, p in s.execute(select(File.id, File.path)) if Path(p).name == name)


def _clean(app) -> None:
    assert not app.exception and not app.error, [e.value for e in [*app.exception, *app.error]]


def _searched(index: Path, monkeypatch, query: str = "a sound", **params: str):
    app = page_on(index, monkeypatch)
    app.query_params["q"] = query
    for name, value in params.items():
        app.query_params[name] = value
    app.run()
    _clean(app)
    return app


def _names(app) -> list[str]:
    return [m.value.split(". ", 1)[1].strip("*") for m in app.markdown
            if m.value.startswith("**") and ". " in m.value and m.value.endswith("**")]


# 1. tags ------------------------------------------------------------------------------------------

def test_a_tag_in_two_spellings_is_one_choice_in_the_sidebar_and_on_a_card(tmp_path, tiny_clap_dir,  # noqa: F811
                                                                          monkeypatch):
    """"keeper" on one file and "Keeper" on two were two choices in the sidebar's Tagged box and in
    every card's Tags box, where `soundsift tags list` counts one tag, "Keeper" (3 files); now the
    page offers it once as the CLI shows it, and a card carrying "keeper" offers its own spelling."""
    from indexer.user_tags import add_tags, tag_counts
    index = _own_index(tmp_path, tiny_clap_dir)
    lib = tmp_path / "library"
    add_tags(index, [str(lib / "ui" / "click.wav")], ["keeper"])
    add_tags(index, [str(lib / "takes")], ["Keeper"])
    assert tag_counts(index) == {"Keeper": 3}

    app = _searched(index, monkeypatch)
    tagged = app.sidebar.multiselect(key="f_tags")
    assert tagged.options == ["Keeper"], tagged.options
    rank = _names(app).index("click.wav") + 1
    card = next(m for m in app.multiselect if m.key.startswith(f"user_tags_{rank}_"))
    assert card.options == ["keeper"] and card.value == ["keeper"], (card.options, card.value)

    app.sidebar.multiselect(key="f_tags").set_value(["Keeper"]).run()      # every spelling is kept
    _clean(app)
    assert sorted(_names(app)) == ["click.wav", "door.wav", "hum.wav"]


# 2. the Without box -------------------------------------------------------------------------------

def _without_notes(app) -> list[str]:
    return [c.value for c in app.caption if "Applies to" in c.value]


def test_the_without_box_says_when_it_changes_nothing(leftovers_index, monkeypatch):
    """"thunder" in the Without box was silently ignored by a search by a file (README: it applies
    to text searches only), and when no sound was described; a caption under it says so now, and
    nothing is said while it applies."""
    app = _searched(leftovers_index, monkeypatch, **{"not": "thunder"})
    assert "without **thunder**" in next(m.value for m in app.markdown if " shown" in m.value)
    assert _without_notes(app) == []

    app.session_state["search_by"] = {"kind": "similar", "file_id": _file_id(leftovers_index, "door.wav"),
                                      "name": "door.wav", "start": None, "end": None}
    app.run()
    _clean(app)
    assert _without_notes(app) == [":material/info: Applies to text searches only, not to this search by a file."]

    app.button(key="back_to_text").click().run()
    app.text_input(key="q").set_value("").run()
    _clean(app)
    assert _without_notes(app) == [":material/info: Applies to a text search: describe the sound too."]


# 3. the sidebar -----------------------------------------------------------------------------------

@pytest.mark.parametrize("tab", ["Tag", "Overview"])
def test_the_filters_name_the_tab_they_narrow(leftovers_index, monkeypatch, tab):
    """The sidebar's filters showed beside the Tag tab and the Overview, which they do not change,
    saying nothing; a caption under their header names the Search tab, and the open one as not
    filtered."""
    from ui.components.overview_tab import TAB_KEY
    app = page_on(leftovers_index, monkeypatch)
    app.run()
    _clean(app)
    assert "They narrow the Search tab's results." in [c.value for c in app.sidebar.caption]
    app.session_state[TAB_KEY] = tab
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert (f":material/info: They narrow the Search tab's results only: the {tab} tab is not filtered."
            in [c.value for c in app.sidebar.caption]), [c.value for c in app.sidebar.caption]


def test_the_folder_box_offers_the_whole_library_once(leftovers_index, monkeypatch):
    """The Folder box offered "(whole library)" and then the library root in full: the same files
    twice. The root is named in the box's help now; its subfolders are offered as before."""
    root = str((leftovers_index.parent / "library").resolve())
    app = page_on(leftovers_index, monkeypatch)
    app.run()
    _clean(app)
    folder = app.sidebar.selectbox(key="f_folder")
    assert folder.options == ["(whole library)", "takes", "ui"], folder.options
    assert root in folder.help.replace("\\", ""), folder.help


# 4. a file gone since its card was drawn ------------------------------------------------------------

def _downloads(app) -> list[str]:
    return [b.proto.id for b in app.download_button]


def test_a_card_whose_file_has_gone_says_so_instead_of_a_download(tmp_path, tiny_clap_dir, monkeypatch):  # noqa: F811
    """door.wav deleted after the page showed it: on the next rerun its card drew the File button
    again from the waveform and audio the page had kept, and the click did nothing the user could
    read (the server logged a traceback). The card says the file is gone now; the others keep theirs."""
    index = _own_index(tmp_path, tiny_clap_dir)
    app = _searched(index, monkeypatch)
    assert not [c.value for c in app.caption if "No download" in c.value]
    before = len(app.download_button)
    (tmp_path / "library" / "takes" / "door.wav").unlink()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    notes = [c.value for c in app.caption if "No download" in c.value]
    assert notes == [":material/warning: No download: door.wav is no longer at "
                     f"{(tmp_path / 'library' / 'takes').resolve()} (moved, renamed or deleted since it was "
                     "indexed); index the library again".replace("_", "\\_")], notes
    assert len(app.download_button) == before - 1     # its File button (2 s file, matched whole: no Match)


def _download_log(make_bytes) -> tuple[list[logging.LogRecord], object]:
    """Run a download's callable as Streamlit does on a click; the records its handler logged and
    the response the browser gets."""
    import ui.components.downloads  # noqa: F401  (as the page imports it)
    from streamlit.proto.BackMsg_pb2 import BackendOperationRequest, DeferredFileRequestPayload
    from streamlit.runtime.backend_operation_handler import DeferredFileHandler
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    manager = MediaFileManager(MemoryMediaFileStorage("/media"))
    file_id = manager.add_deferred(make_bytes, "audio/wav", "card", "door.wav")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("streamlit.runtime.backend_operation_handler")
    logger.addHandler(handler)
    try:
        request = BackendOperationRequest(request_id="r1", deferred_file=DeferredFileRequestPayload(file_id=file_id))
        response = asyncio.run(DeferredFileHandler(lambda: manager).handle(request, "session"))
    finally:
        logger.removeHandler(handler)
    return records, response


def test_a_download_of_a_file_gone_since_the_card_was_drawn_logs_one_line(tmp_path):
    """The click after the file went (no rerun between) logged "Error executing deferred callable"
    and a 20-line traceback; one line naming the file and why now. The browser still gets Streamlit's
    failure; an error that is not soundsift's keeps its traceback."""
    from types import SimpleNamespace

    from ui.components.downloads import downloads
    path = write(tmp_path / "door.wav", tone(300, 1.0, SR), SR)
    record = SimpleNamespace(path=str(path), duration=1.0, size=path.stat().st_size, sample_rate=SR, channels=1)
    file_button = downloads(SimpleNamespace(start=0.0, end=1.0), record)[-1]
    path.unlink()
    records, response = _download_log(file_button["data"])
    assert response.error_msg == "Failed to generate file for download"
    assert len(records) == 1 and records[0].exc_info is None, [(r.getMessage(), r.exc_info) for r in records]
    line = records[0].getMessage()
    assert line.startswith("Download not made: ") and str(path) in line and "\n" not in line, line

    def broken() -> bytes:
        raise ValueError("a bug")
    records, _ = _download_log(broken)
    assert len(records) == 1 and records[0].exc_info is not None

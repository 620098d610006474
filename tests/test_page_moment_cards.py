""""More like this" on the card of the file a moment search was by (the page, streamlit AppTest on the
tiny-CLAP UI library): it searches that moment again, as ``soundsift similar FILE --start --end`` does,
not the stored segment the card shows for it."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_ui import heading, no_exception, result_names
from tests.ui_library import UiLibrary, page_on


def thunder_id(ui_library: UiLibrary) -> int:  # noqa: F811
    from engine.query import SoundIndex
    with SoundIndex.open(ui_library.index_dir) as index:
        return int(index.file_id_for_path(ui_library.path("thunder_far.wav")))


def engine_names(ui_library: UiLibrary, file_id: int, start, end) -> list[str]:  # noqa: F811
    """What soundsift similar thunder_far.wav [--start --end] lists, by name."""
    from engine.query import SoundIndex
    with SoundIndex.open(ui_library.index_dir) as index:
        return [Path(h.path).name for h in index.similar_to_file(file_id, k=10, start=start, end=end)]


@pytest.mark.parametrize("start, end, part", [
    (3.0, 4.0, " 3.0–4.0 s"),           # inside both stored segments (0–10, 2–12 s): decoded
    (0.0, 12.0, " 0.0–12.0 s"),         # holding both: their stored vectors
    (None, None, ""),                   # the whole file (its card shows one 10 s segment)
])
def test_more_like_this_on_the_searched_files_card_searches_the_same_moment(ui_library, monkeypatch,  # noqa: F811
                                                                           start, end, part):
    fid = thunder_id(ui_library)
    app = page_on(ui_library.index_dir, monkeypatch)
    app.session_state["search_by"] = {"kind": "similar", "file_id": fid, "name": "thunder_far.wav",
                                      "start": start, "end": end}
    app.run()
    no_exception(app)
    assert heading(app).startswith(f"More like **thunder\\_far.wav**{part} ·")
    assert result_names(app)[0] == "thunder_far.wav"
    shown = next(c.value for c in app.caption if "match " in c.value)
    assert "score 1.000" in shown and ("match 0.0–10.0 s" in shown or "match 2.0–12.0 s" in shown), shown
    [b for b in app.button if b.label == "More like this"][0].click().run()
    no_exception(app)
    by = app.session_state["search_by"]
    assert (by["file_id"], by["start"], by["end"]) == (fid, start, end)         # not the card's 10 s segment
    assert heading(app).startswith(f"More like **thunder\\_far.wav**{part} ·")
    assert result_names(app) == engine_names(ui_library, fid, start, end)
    more = next(b for b in app.button if b.label == "More like this")
    assert more.help == (f"Sounds like the moment searched by ({part.strip()})" if part else "Sounds like this file")


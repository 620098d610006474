"""What an audit of the page as a sound designer uses it found broken (session h57), each fixed in
ui/components/: the "Over time" table's labels that hold a comma, "More like this" on a card whose
file left the index in a re-index, and an empty index's Search tab."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import tone
from tests.ui_library import SR, UiLibrary, page_on, wav_bytes  # noqa: F401
from ui.components.tag_tab import parse_label_text


def test_timeline_tags_quote_a_label_holding_a_comma():
    """'Walk, footsteps 0.40, dog bark 0.30, rain, heavy 0.30' read as five labels: each label
    holding a comma is written as the Labels box takes it, in double quotes."""
    from ui.components.tag_tab import timeline_tags
    tags = [{"label": "Walk, footsteps", "score": 0.4016}, {"label": "dog bark", "score": 0.3023},
            {"label": 'a "quoted, one"', "score": 0.2961}]
    shown = timeline_tags(tags)
    assert shown == '"Walk, footsteps" 0.40, dog bark 0.30, "a ""quoted, one""" 0.30'
    # typed back into the Labels box (scores taken off), the same three labels
    typed = ", ".join(part.rsplit(" ", 1)[0] for part in [
        '"Walk, footsteps" 0.40', "dog bark 0.30", '"a ""quoted, one""" 0.30'])
    assert parse_label_text(typed) == [t["label"] for t in tags]


def test_over_time_table_shows_quoted_labels_from_the_labels_box(ui_library, monkeypatch):  # noqa: F811
    app = page_on(ui_library.index_dir, monkeypatch)
    app.run()
    app.file_uploader(key="tag_upload").upload("steps.wav", wav_bytes(tone(440, 3.0, SR)), "audio/wav")
    app.toggle(key="tag_timeline").set_value(True)
    app.text_area(key="tag_labels").set_value('"Walk, footsteps", dog bark')
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    cells = list(app.dataframe[0].value["tags"])
    assert cells and all('"Walk, footsteps" 0.' in c for c in cells), cells
    assert any("over time: 1 segment:" in md.value for md in app.markdown)      # not "1 segments"


@pytest.mark.parametrize("kind", ["similar", "picked"])
def test_more_like_a_file_gone_from_the_index_names_it_in_the_pages_words(ui_library, monkeypatch, kind):  # noqa: F811
    """A card's "More like this" (or the picks) after the library was re-indexed without its file:
    the engine said '987654 is not in index …; … (`soundsift similar` does that)'."""
    app = page_on(ui_library.index_dir, monkeypatch)
    app.run()
    if kind == "similar":
        app.session_state["search_by"] = {"kind": "similar", "file_id": 987654, "name": "door #3.wav",
                                          "start": None, "end": None}
    else:
        app.session_state["picked"] = {987654: "door #3.wav"}
        app.session_state["search_by"] = {"kind": "picked"}
    app.run()
    assert not app.exception
    said = [e.value for e in app.error]
    assert len(said) == 1, said
    assert "door \\#3.wav" in said[0] and "no longer in the index" in said[0], said
    assert "soundsift similar" not in said[0]


def test_an_empty_index_says_so_not_loosen_the_filters(tmp_path, tiny_clap_dir, monkeypatch):  # noqa: F811
    from indexer import build_index
    library = tmp_path / "library"
    library.mkdir()
    (library / "readme.txt").write_text("no audio here")
    build_index([library], index=tmp_path / "index", model=str(tiny_clap_dir), workers=0, progress=False)
    app: AppTest = page_on(tmp_path / "index", monkeypatch)
    app.query_params["q"] = "dog barking"
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    said = " ".join(i.value for i in app.info)
    assert "holds no files" in said and "Loosen the filters" not in said, said


def test_more_like_a_moment_of_a_long_file_names_it_as_its_card_does():
    """The card of a 10-minute file said "match 5:00.00–5:10.00"; its "More like this" heading
    said "300.0–310.0 s"."""
    def page():
        import streamlit as st

        from engine.filters import Filters
        from ui.components.search_tab import current_search

        class Index:
            def get_file(self, file_id):
                return {"path": "/lib/long.wav"}

            def similar_to_file(self, *args, **kwargs):
                return []
        st.session_state["search_by"] = {"kind": "similar", "file_id": 1, "name": "long field.wav",
                                         "start": 300.0, "end": 310.0}
        st.markdown(current_search(Index(), Filters()).title)

    app = AppTest.from_function(page, default_timeout=30).run()
    assert not app.exception
    assert app.markdown[0].value == "More like **long field.wav** 5:00.00–5:10.00"

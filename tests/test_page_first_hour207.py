"""Session 41's first hour on the web page (helper h207): a card's tags edited after the library
was re-indexed under the page, the Tag tab's heading for a single tag, and a card's words score in
a search that also matches names."""
from __future__ import annotations

from tests.conftest import tone
from tests.test_ui import APP, no_exception, result_names
from tests.ui_library import SR, make_library, wav_bytes


def test_a_tag_added_on_a_card_whose_file_left_the_index_says_it_was_not_saved(tmp_path, tiny_clap_dir,
                                                                               monkeypatch):  # noqa: F811
    """The results are shown; the library is re-indexed meanwhile after one of their files was
    deleted. A tag typed on that file's card stored nothing (no indexed file has its id) and the
    page said nothing: the tag vanished with the card on the next run. It says so now."""
    from streamlit.testing.v1 import AppTest

    from indexer import build_index
    from indexer.user_tags import tag_counts
    from ui.components.server import INDEX_ENV, MODEL_ENV
    root, index_dir = tmp_path / "lib", tmp_path / "index"
    make_library(root)
    build_index([root], index=index_dir, model=str(tiny_clap_dir), workers=0, progress=False)
    monkeypatch.setenv(INDEX_ENV, str(index_dir))
    monkeypatch.delenv(MODEL_ENV, raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["q"] = "sound"
    at.run()
    no_exception(at)
    rank = result_names(at).index("dog_bark.wav") + 1
    (root / "animals" / "dog_bark.wav").unlink()           # deleted, and the library indexed again
    assert build_index([root], index=index_dir, model=str(tiny_clap_dir), workers=0, progress=False).removed == 1

    card_tags = next(m for m in at.multiselect if m.key.startswith(f"user_tags_{rank}_"))
    card_tags.set_value(["keeper"]).run()
    no_exception(at)
    assert tag_counts(index_dir) == {}                     # nothing could be stored
    said = [t.value for t in at.toast]
    assert len(said) == 1 and said[0].startswith("Tags not saved: dog\\_bark.wav (file id "), said
    assert "is no longer in the index" in said[0] and "Search again." in said[0]
    assert "dog_bark.wav" not in result_names(at)        # the search, run again, no longer finds it


def test_the_tag_tab_heading_counts_one_tag_as_one(ui_library, monkeypatch):  # noqa: F811
    """"How many tags" at 1 headed the table "Top 1 tags for …"; it says "Top tag for …" now, and
    "Top 3 tags for …" for more."""
    from streamlit.testing.v1 import AppTest

    from ui.components.server import INDEX_ENV, MODEL_ENV
    monkeypatch.setenv(INDEX_ENV, str(ui_library.index_dir))
    monkeypatch.delenv(MODEL_ENV, raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.file_uploader(key="tag_upload").upload("beep.wav", wav_bytes(tone(1000, 1.0, SR)), "audio/wav")
    headings = {}
    for top in (1, 3):
        at.slider(key="tag_top").set_value(top)
        at.run()
        no_exception(at)
        headings[top] = next(md.value for md in at.markdown if md.value.startswith("Top "))
    assert headings[1].startswith("Top tag for **beep.wav** from the default vocabulary"), headings
    assert headings[3].startswith("Top 3 tags for **beep.wav** from the default vocabulary"), headings


def test_a_card_found_also_by_its_name_shows_its_words_score(ui_library, monkeypatch):  # noqa: F811
    """With "Also match names …" on, a file found by name ranks above files of a higher sound score
    (the CLI shows why in its "words" column); its card showed the score alone, so the first card
    read "score -0.010" above "score 0.139". Each card gives its words score now, and a search without
    the toggle shows none."""
    from streamlit.testing.v1 import AppTest

    from ui.components.server import INDEX_ENV, MODEL_ENV
    monkeypatch.setenv(INDEX_ENV, str(ui_library.index_dir))
    monkeypatch.delenv(MODEL_ENV, raising=False)

    def facts(keywords: bool) -> dict[str, str]:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.query_params["q"] = "thunder"
        if keywords:
            at.query_params["keywords"] = "true"
        at.run()
        no_exception(at)
        lines = [c.value for c in at.caption if c.value.startswith(":material/folder:")]
        return dict(zip(result_names(at), lines))
    found = facts(keywords=True)
    thunder = found["thunder_far.wav"]
    assert float(thunder.rsplit(" · words ", 1)[1]) > 0, thunder
    assert all(v.endswith(" · words 0.00") for k, v in found.items() if k != "thunder_far.wav"), found
    assert not any("words" in v for v in facts(keywords=False).values())

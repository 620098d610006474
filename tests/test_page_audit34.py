"""Session 34's audit of the search page as a sound designer uses it: times written one way per
span (a match across the first minute, a 40 ms click, a large file's excerpt, the map's player,
a download's tooltip), an excerpt caption only when the player holds part of the file, "More like
these (2)", and sliders without hundredths (streamlit AppTest on a tiny-CLAP index of its own)."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import noise, tone, write
from tests.test_page_leftovers34 import _file_id
from tests.ui_library import page_on

SR = 22_050


@pytest.fixture(scope="module")
def audit_index(tmp_path_factory, tiny_clap_dir) -> Path:  # noqa: F811
    """An index of a 40 ms click, a 2 s AIFF (played whole, as WAV), a 45 s AIFF (played as a 30 s
    excerpt from its match) and a 3 s tone."""
    from indexer import build_index
    base = tmp_path_factory.mktemp("page_audit34")
    root = base / "library"
    write(root / "ui" / "click.wav", tone(2000, 0.04, SR), SR)
    write(root / "takes" / "short.aiff", tone(500, 2.0, SR), SR, format="AIFF")
    write(root / "takes" / "long_take.aiff", noise(45.0, SR, seed=7, amp=0.2), SR, format="AIFF")
    write(root / "tones" / "hum.wav", tone(120, 3.0, SR), SR)
    summary = build_index([root], index=base / "index", model=str(tiny_clap_dir), workers=0, progress=False)
    assert summary.added == 4, summary
    return base / "index"


def _searched(index: Path, monkeypatch):
    app = page_on(index, monkeypatch)
    app.query_params["q"] = "a sound"
    app.run()
    assert not app.exception and not app.error, [e.value for e in [*app.exception, *app.error]]
    return app


def test_a_span_across_the_first_minute_is_written_in_one_format():
    """A match 55–65 s read "55.0 s–1:05.00" on its card, in a "More like" heading, and
    "55.0–65.0 s" in its Match download's tooltip: a clock at both ends everywhere now."""
    from ui.components.downloads import downloads
    from ui.components.search_tab import card_facts, span_text

    record = SimpleNamespace(duration=120.0, format="WAV", sample_rate=48000, channels=2, levels="",
                             path="/lib/field/forest.wav", size=1000)
    hit = SimpleNamespace(start=55.0, end=65.0, score=0.5, marker=None, file_id=1)
    assert span_text(55.0, 65.0) == "0:55.00–1:05.00"
    assert card_facts(record, hit).endswith("match 0:55.00–1:05.00 · score 0.500")
    match = downloads(hit, record)[0]
    assert match["label"] == "Match" and "Download 0:55.00–1:05.00 of forest.wav" in match["help"], match["help"]


def test_a_click_shorter_than_a_tenth_of_a_second_is_not_zero_seconds(audit_index, monkeypatch):
    """A 40 ms click read "0.0 s" long and matched "0.0–0.0 s"; hundredths under a second now,
    as the CLI's 0:00.04."""
    from ui.components.search_tab import seconds_text, span_text
    assert (seconds_text(0.04), span_text(0.0, 0.04), seconds_text(1.3)) == ("0.04 s", "0.00–0.04 s", "1.3 s")
    facts = [c.value for c in _searched(audit_index, monkeypatch).caption if "WAV · 22.05 kHz" in c.value]
    click = [f for f in facts if "0.04 s · WAV" in f]
    assert len(click) == 1 and "match 0.00–0.04 s" in click[0], facts


def test_only_a_part_of_a_file_is_captioned_as_an_excerpt(audit_index, monkeypatch):
    """An AIFF file is played as WAV: the whole 2 s one was captioned "excerpt from 0.0 s", and
    the long one "excerpt from 35.0 s" where its card reads in clock time; now the short one has no
    caption and the long one names the part played, as its card writes times."""
    app = _searched(audit_index, monkeypatch)
    excerpts = [c.value for c in app.caption if "excerpt" in c.value]
    assert len(excerpts) == 1, excerpts
    found = re.fullmatch(r"excerpt (\d+\.\d)–(\d+\.\d) s of the file", excerpts[0])
    assert found, excerpts
    start, end = map(float, found.groups())
    assert end == min(45.0, start + 30.0)
    facts = next(c.value for c in app.caption if "AIFF" in c.value and "45.0 s" in c.value)
    assert f"match {start:.1f}–" in facts, (facts, excerpts)


def test_the_maps_player_writes_the_duration_as_the_cards_do(audit_index, monkeypatch):
    """The file picked on the library map was named with "0.0 s" for a 40 ms click."""
    from ui.components.overview_tab import MAP_PICK, OVERVIEW, TAB_KEY
    app = page_on(audit_index, monkeypatch)
    app.session_state[TAB_KEY] = OVERVIEW
    app.session_state[MAP_PICK] = _file_id(audit_index, "click.wav")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    picked = [m.value for m in app.markdown if "click.wav" in m.value]
    assert picked == ["**click.wav** · 0.04 s"], picked


def test_more_like_the_picks_says_how_many_and_sliders_show_no_hundredths(audit_index, monkeypatch):
    """The picks' button read "More like these 2"; the sidebar's sliders "0.00" to "45.00" s in half
    seconds and "-29.00" LUFS in whole LU (Streamlit's default format for floats)."""
    app = _searched(audit_index, monkeypatch)
    boxes = [c for c in app.checkbox if c.key and c.key.startswith("pick_")]
    boxes[0].check().run()
    boxes = [c for c in app.checkbox if c.key and c.key.startswith("pick_")]
    boxes[1].check().run()
    assert app.button(key="more_like_picked").label == "More like these (2)"
    duration = app.sidebar.slider(key="f_duration")
    assert (duration.max, duration.step, duration.proto.format) == (45.0, 0.5, "%.1f")      # 0.0 to 45.0
    assert app.sidebar.slider(key="f_loudness").proto.format == "%.0f"



def _paths(node, kind: str, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Where each element of ``kind`` ("popover", "audio") sits in the page's element tree: what the
    browser knows it by across reruns."""
    found = []
    for i, child in getattr(node, "children", {}).items():
        if getattr(child, "type", None) == kind:
            found.append(path + (i,))
        found += _paths(child, kind, path + (i,))
    return found


def test_the_tags_popover_stays_where_it_was_when_the_first_tag_is_added(audit_index, tmp_path, monkeypatch):
    """A card's first tag drew its badge above the "Tags" popover, moving the popover one place
    down the card: the browser took it for a new one and closed it, so every further tag needed
    another click on "Tags". The badges' place is kept even when there are none."""
    import shutil

    from indexer.user_tags import tag_counts
    index = tmp_path / "index"                  # a copy: the module's index stays untagged
    shutil.copytree(audit_index, index)
    app = _searched(index, monkeypatch)
    before = _paths(app.main, "popover")
    assert len(before) == 4, before
    box = next(m for m in app.multiselect if m.key.startswith("user_tags_1_"))
    box.set_value(["keeper"]).run()
    assert not app.exception, [e.value for e in app.exception]
    assert tag_counts(index) == {"keeper": 1}
    assert ":green-badge[:material/sell: keeper]" in [m.value for m in app.markdown]
    assert _paths(app.main, "popover") == before


def test_a_flat_librarys_cards_name_its_folder_not_a_dot(tmp_path, tiny_clap_dir, monkeypatch):  # noqa: F811
    """Every file of a library kept in one folder (a vendor's pack) showed ":material/folder: ." on
    its card; the folder is named in full, as the sidebar's Folder box names the library root."""
    from indexer import build_index
    from ui.components.markdown_text import plain_markdown
    root = tmp_path / "Metal Impacts"
    write(root / "hit_01.wav", tone(300, 1.0, SR), SR)
    write(root / "hit_02.wav", noise(1.5, SR, seed=2), SR)
    assert build_index([root], index=tmp_path / "index", model=str(tiny_clap_dir), workers=0,
                       progress=False).added == 2
    facts = [c.value for c in _searched(tmp_path / "index", monkeypatch).caption if "match" in c.value]
    assert len(facts) == 2, facts
    assert all(f.startswith(f":material/folder: {plain_markdown(str(root.resolve()))} · ") for f in facts), facts


def test_a_long_upload_is_timed_in_the_heading_as_a_card_would_be(audit_index, monkeypatch):
    """A 65 s reference searched by was headed "(65.0 s)" above cards reading "1:05.00"."""
    import io

    import soundfile as sf

    from ui.components.search_tab import UPLOAD_KEY
    buf = io.BytesIO()
    sf.write(buf, noise(65.0, 8000, seed=4, amp=0.1), 8000, format="WAV", subtype="PCM_16")
    app = page_on(audit_index, monkeypatch)
    app.run()
    app.file_uploader(key=UPLOAD_KEY).upload("reference.wav", buf.getvalue(), "audio/wav").run()
    assert not app.exception and not app.error, [e.value for e in [*app.exception, *app.error]]
    heading = next(m.value for m in app.markdown if " shown" in m.value)
    assert heading.startswith("Sounds like **reference.wav** (1:05.00) · "), heading


def test_the_pages_icon_is_served_by_the_page_not_fetched_from_google(tmp_path, monkeypatch):
    """The favicon was ":material/graphic_eq:", which the browser fetches from fonts.gstatic.com on
    every load: a page served to localhost on an offline machine reached out to the internet (seen
    as a failed request in headless Chromium without network). It is an image drawn here now."""
    import streamlit
    icons = []
    monkeypatch.setattr(streamlit, "set_page_config", lambda **kw: icons.append(kw.get("page_icon")))
    app = page_on(tmp_path / "no index here", monkeypatch)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert icons and not any(isinstance(i, str) for i in icons), icons

    from ui.components.page_icon import page_icon
    image = page_icon()
    assert image.size == (64, 64) and image.getpixel((32, 32))[3] == 255 and image.getpixel((0, 0))[3] == 0


@pytest.mark.parametrize("by, way_out", [
    ({"kind": "similar", "file_id": 99_999, "name": "gone.wav", "start": None, "end": None}, "back_to_text"),
    ({"kind": "picked"}, "clear_picks"),
])
def test_a_search_by_a_file_gone_from_the_index_leaves_a_way_out(audit_index, monkeypatch, by, way_out):
    """"More like this" (or the picks) on a file re-indexed away since its card was shown says so
    and asks to search again or clear the picks, but the page drew neither "Back to text search"
    nor "Clear picks" under that error; pressing Enter in the unchanged query box changes nothing."""
    app = page_on(audit_index, monkeypatch)
    app.query_params["q"] = "a sound"
    app.session_state["picked"] = {99_999: "gone.wav"}
    app.session_state["search_by"] = by
    app.run()
    assert not app.exception
    assert [e.value for e in app.error] and "no longer in the index" in app.error[0].value
    assert {"back_to_text", way_out} <= {b.key for b in app.button}
    app.button(key=way_out).click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    heading = next(m.value for m in app.markdown if " shown" in m.value)
    assert heading.startswith("Results for **a sound**"), heading


def test_the_first_pick_leaves_the_players_where_they_were(audit_index, monkeypatch):
    """Ticking "Pick" on a card while another card played (a designer picking as they listen) drew
    the picks row above the results and moved every card down the element tree: Chromium's player
    stopped and went back to the match's start (seen at 1:37 rewound to 1:35). A second pick, the row
    already there, left it playing; now the first does too."""
    app = _searched(audit_index, monkeypatch)
    players = _paths(app.main, "audio")
    assert len(players) == 4, players
    next(c for c in app.checkbox if c.key and c.key.startswith("pick_")).check().run()
    assert not app.exception
    assert app.button(key="more_like_picked").label == "More like this one"
    assert _paths(app.main, "audio") == players
    app.button(key="clear_picks").click().run()
    assert _paths(app.main, "audio") == players

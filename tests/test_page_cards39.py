"""Session 37's page notes on the result cards (streamlit AppTest and headless Chromium on a tiny-CLAP
index of their own): a sub-second file's player read "0:00 / 0:00", a card took 12 Tab presses to
cross, and an old catalog's card listed a take's marker at "2.20 s" where its badge said "2.25 s".

The Chromium test needs Debian's `chromium` at /usr/bin/chromium, as tests/test_ui_browser.py: it
fails with the install command when it is missing, never skips."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from engine.catalog import FileMetadata
from tests.conftest import catalog_session, noise, tone, write
from tests.test_page_leftovers34 import _searched
from tests.ui_library import as_shown

SR = 16_000
CLICK, DOORS, HUM, RAIN = "click.wav", "doors.wav", "hum.wav", "rain_long.wav"
#: the doors take's markers as a catalog read before session 36 keeps them (to the tenth)
OLD_MARKERS = "0:00.5 Hinge squeal · 0:02.2 Door slam"


@pytest.fixture(scope="module")
def cards39_index(tmp_path_factory, tiny_clap_dir) -> Path:  # noqa: F811
    """A 0.4 s click, a take with markers at 0.5 s and 2.25 s (stored to the tenth, as before
    session 36), a hum and a 12 s rain (a card matching part of its file); the index folder."""
    from indexer import build_index
    from ui.demo import append_markers
    base = tmp_path_factory.mktemp("page_cards39")
    root = base / "library"
    write(root / "ui" / CLICK, tone(2000, 0.4, SR), SR)
    doors = write(root / "foley" / DOORS, noise(4.0, SR, seed=5, amp=0.3), SR)
    append_markers(doors, [(0.5, "Hinge squeal"), (2.25, "Door slam")])
    write(root / "foley" / HUM, tone(120, 3.0, SR), SR)
    write(root / "weather" / RAIN, noise(12.0, SR, seed=7, amp=0.1), SR)
    summary = build_index([root], index=base / "index", model=str(tiny_clap_dir), workers=0, progress=False)
    assert summary.added == 4, summary
    with catalog_session(base / "index", write=True) as s:
        changed = s.query(FileMetadata).filter(FileMetadata.key == "markers").update({"value": OLD_MARKERS})
    assert changed == 1
    return base / "index"


# 1. a sub-second file's player --------------------------------------------------------------------

def test_a_sub_second_files_player_says_how_long_it_plays(cards39_index, monkeypatch):
    """Chromium's player counts whole seconds: a 0.4 s click's read "0:00 / 0:00". Its card says
    "plays 0.40 s" under it, as its facts write the duration; a screen reader hears the file and
    that length as the player's name. A player of a second or more says nothing more."""
    app = _searched(cards39_index, monkeypatch, "a click")
    played = [as_shown(c.value) for c in app.caption if "plays" in c.value]
    assert played == [":material/timer: plays 0.40 s"], played
    facts = [c.value for c in app.caption if CLICK not in c.value and "0.40 s · WAV" in c.value]
    assert len(facts) == 1, [c.value for c in app.caption]        # the card's facts: the same "0.40 s"
    alts = sorted(a.proto.alt for a in app.get("audio"))
    assert alts == [f"{CLICK}, 0.40 s", f"{DOORS}, 4.0 s", f"{HUM}, 3.0 s", f"{RAIN}, 12.0 s"], alts


def test_the_length_a_player_plays():
    """The whole file, or an excerpt's seconds up to the file's end; a note under a second only."""
    from ui.components.player import PlayerSource
    from ui.components.times import player_length_note
    assert PlayerSource(b"", "audio/wav", 0.0).seconds(0.4) == 0.4
    assert PlayerSource(b"", "audio/wav", 0.0, 10.0).seconds(3600.0) == 30.0
    assert PlayerSource(b"", "audio/wav", 0.0, 59.7).seconds(60.0) == pytest.approx(0.3)
    assert player_length_note(0.03) == ":material/timer: plays 0.03 s"
    assert player_length_note(0.994) == ":material/timer: plays 0.99 s"
    assert player_length_note(1.0) is None and player_length_note(12.0) is None


# 2. an old catalog's take ---------------------------------------------------------------------------

def test_an_old_catalogs_take_is_listed_at_its_badges_time(cards39_index, monkeypatch):
    """The catalog keeps "0:02.2 Door slam" until the next index run; the take the search found
    starts at the marker to the sample, 2.25 s, which its badge says. The card's list said
    "2.20 s Door slam" beside it; both write the take's time now, the other marker as stored."""
    app = _searched(cards39_index, monkeypatch, "door slam", keywords="true")
    badges = [m.value for m in app.markdown if ":material/bookmark:" in m.value]
    assert badges == [":violet-badge[:material/bookmark: Door slam at 2.25 s]"], badges
    about = [as_shown(c.value) for c in app.caption if "markers" in c.value]
    assert about == ["markers 0.50 s Hinge squeal · 2.25 s Door slam"], about


def test_a_take_moves_its_marker_in_the_list_and_on_the_waveform(cards39_index):
    """Library.files with the hit's take: the about line and the waveform's ticks at its time; the
    marker of that name nearest it, within the take tolerance, and no other."""
    from ui.components.library import Library
    from ui.components.times import markers_text
    lib = Library(cards39_index)
    with catalog_session(cards39_index) as s:
        fid = s.query(FileMetadata.file_id).filter(FileMetadata.key == "markers").scalar()
    plain = lib.files([fid])[fid]
    assert "markers 0.50 s Hinge squeal · 2.20 s Door slam" in plain.about and plain.marks == (0.5, 2.2)
    taken = lib.files([fid], takes={fid: ("Door slam", 2.25)})[fid]
    assert "markers 0.50 s Hinge squeal · 2.25 s Door slam" in taken.about and taken.marks == (0.5, 2.25)
    assert markers_text(OLD_MARKERS, ("Door slam", 2.4)) == "0.50 s Hinge squeal · 2.20 s Door slam"   # too far
    assert markers_text(OLD_MARKERS, ("Creak", 2.25)) == "0.50 s Hinge squeal · 2.20 s Door slam"      # not its name
    assert markers_text("0:01.0 A · 0:01.1 A", ("A", 1.08)) == "1.00 s A · 1.08 s A"                  # the nearest


# 3. a card's tab stops, in Chromium -----------------------------------------------------------------

#: the focused element, and the result card it is in (its "N. name" line; None outside the cards)
_FOCUSED = """() => {
  const e = document.activeElement;
  let card = null;
  for (let n = e; n; n = n.parentElement) {
    if (n.matches('[data-testid=stVerticalBlock]') && n.querySelector('audio')
        && /^\\d+\\. /.test((n.innerText || '').trim())) card = (n.innerText || '').trim().split('\\n')[0];
  }
  return {tag: e.tagName, label: e.getAttribute('aria-label') || '', text: (e.innerText || '').trim(), card};
}"""


def _stop_name(stop: dict) -> str:
    """A tab stop as a test names it: its label, else its visible words but for icon names."""
    if stop["label"]:
        return stop["label"]
    words = [w for w in stop["text"].split("\n") if w and w not in ("sell", "expand_more", "graph_3", "download")]
    return " ".join(words) or stop["tag"]


def _tab_stops(page, limit: int = 200) -> dict[str, list[str]]:
    """Each result card's tab stops, in order, pressing Tab from the query box to the results' zip."""
    page.get_by_label("Describe the sound").focus()
    cards: dict[str, list[str]] = {}
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = page.evaluate(_FOCUSED)
        if stop["card"]:
            cards.setdefault(stop["card"], []).append(_stop_name(stop))
        elif cards:               # past the last card
            return cards
    raise AssertionError(f"{limit} Tab presses did not cross the results: {cards}")


def test_a_card_takes_five_tab_stops_and_j_jumps_to_the_next_result(cards39_index, tmp_path):
    """Measured on session 36's page: 12 Tab stops a card (13 with Match): the Tags popover, Pick,
    Pick's help, More like this, the waveform's Fullscreen, six inside the audio player, File.
    Now its actions only, the player once: Tags, Pick, More like this, the player, (Match,) File;
    a badged take's card too.
    The player's stop plays and pauses with Space; j / k go to the next / previous card's player.
    What left the tab order is still there for a mouse (and in the accessibility tree)."""
    from tests.test_ui_browser import unexpected_tracebacks
    from ui.components.screenshot import chromium_page, search_url, serving, wait_for_results
    log = tmp_path / "soundsift-ui.log"
    with serving(cards39_index, log=log) as base, chromium_page() as page:
        page.goto(search_url(base, "door slam") + "&keywords=true")      # the take badged
        wait_for_results(page, timeout_ms=120_000)     # two busy cores: a slow first load
        page.locator("audio[data-testid=stAudio]").nth(3).wait_for(state="attached", timeout=30_000)
        page.get_by_role("button", name="File").nth(3).wait_for(state="visible", timeout=30_000)
        try:                # the page's script takes the cards' stops a frame after they are drawn
            page.wait_for_function("() => document.querySelectorAll('[data-soundsift-player]').length === 4",
                                   timeout=15_000)
        except PlaywrightTimeout:
            pass            # session 36's page has no such script: its stops are counted as they are
        stops = _tab_stops(page)
        assert len(stops) == 4, stops
        for card, names in stops.items():
            whole = ["Tags", "Pick", "More like this", f"Player: {card.split('. ', 1)[1]}", "File"]
            matched = whole[:4] + ["Match", "File"]
            assert [n.split(",")[0] for n in names] in (whole, matched), (card, names)
        assert any("Match" in names for names in stops.values())          # the rain's card, 6
        assert page.get_by_text("Door slam at 2.25 s").first.is_visible()   # the take's card, badged
        assert page.get_by_role("button", name="Fullscreen").count() >= 4    # still drawn, for a mouse
        assert page.get_by_role("button", name="Help for Pick").count() == 4    # Pick's help, too

        players = page.locator("[data-soundsift-player]")
        players.first.focus()
        page.keyboard.press("Space")
        page.wait_for_function("() => !document.querySelector('audio').paused", timeout=10_000)
        page.keyboard.press("Space")
        assert page.evaluate("() => document.querySelector('audio').paused")
        page.keyboard.press("j")
        second = page.evaluate(_FOCUSED)
        assert second["label"].startswith("Player: ") and second["card"].startswith("2. "), second
        page.keyboard.press("k")
        assert page.evaluate(_FOCUSED)["card"].startswith("1. ")
        box = page.get_by_label("Describe the sound")
        box.focus()
        page.keyboard.press("End")
        page.keyboard.press("j")                  # typed in the box, not a jump
        assert box.input_value() == "door slamj"
    assert not unexpected_tracebacks(log.read_text(errors="replace"))

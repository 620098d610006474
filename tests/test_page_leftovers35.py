"""Leftovers of session 35's page audits (streamlit AppTest on a tiny-CLAP index of its own, and the
map's chart built without a browser): an index with no files shows no filters, the library map
colours by top-level folder once its folders outnumber the colours, the Failed files table shows
the latest rows and counts the rest, the card of the file "More like this" was by is marked "this
file", and a tag change reads the tag choices again, not every path and facet."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import noise, tone, write
from tests.ui_library import as_shown, page_on

SR = 16_000
#: the library's leaf folders, under three top-level folders: more than the map's ten colours
LEAVES = [f"ui/{n}" for n in ("clicks", "beeps", "pops", "blips")] + \
         [f"doors/{n}" for n in ("wood", "metal", "glass", "car")] + \
         [f"amb/{n}" for n in ("room", "street", "forest", "rain")]
BROKEN = ("bad_1.wav", "bad_2.wav", "bad_3.wav")


def _build(base: Path) -> Path:
    """One short sound in each of :data:`LEAVES` and three broken files; the library's root."""
    root = base / "library"
    for i, leaf in enumerate(LEAVES):
        name = leaf.split("/")[1]
        wave = tone(200 + 150 * i, 0.6, SR) if i % 2 else noise(0.6, SR, seed=i, amp=0.2)
        write(root / leaf / f"{name}.wav", wave, SR)
    for name in BROKEN:
        (root / "broken" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "broken" / name).write_bytes(b"RIFF but not a wave file")
    return root


@pytest.fixture(scope="module")
def leftovers_index(tmp_path_factory, tiny_clap_dir) -> Path:  # noqa: F811
    """The index of :func:`_build`'s library (not changed: the tag test tags a copy)."""
    from indexer import build_index
    base = tmp_path_factory.mktemp("page_leftovers35")
    summary = build_index([_build(base)], index=base / "index", model=str(tiny_clap_dir), workers=0,
                          progress=False)
    assert (summary.added, summary.failed) == (len(LEAVES), len(BROKEN)), summary
    return base / "index"


def _clean(app) -> None:
    assert not app.exception and not app.error, [e.value for e in [*app.exception, *app.error]]


def _overview(index: Path, monkeypatch):
    from ui.components.overview_tab import TAB_KEY
    app = page_on(index, monkeypatch)
    app.session_state[TAB_KEY] = "Overview"
    app.run()
    _clean(app)
    return app


# 1. an index with no files -----------------------------------------------------------------------

def test_an_index_with_no_files_shows_no_filters_but_one_line(tmp_path, tiny_clap_dir, monkeypatch):  # noqa: F811
    """An index whose only files could not be read: the sidebar showed a "Duration 0.0–1.0" slider
    and empty Folder, Format and Sample rate boxes, filtering nothing; it says there is nothing to
    filter yet now, and the Search tab says why there are no results as before."""
    from indexer import build_index
    for name in ("a.wav", "b.wav"):
        (tmp_path / "lib").mkdir(exist_ok=True)
        (tmp_path / "lib" / name).write_bytes(b"RIFF but not a wave file")
    assert build_index([tmp_path / "lib"], index=tmp_path / "index", model=str(tiny_clap_dir), workers=0,
                       progress=False).added == 0
    app = page_on(tmp_path / "index", monkeypatch)
    app.query_params["q"] = "rain"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    sidebar = app.sidebar
    widgets = [*sidebar.slider, *sidebar.select_slider, *sidebar.selectbox, *sidebar.multiselect]
    assert not widgets, [w.label for w in widgets]
    assert [c.value for c in sidebar.caption] == ["Nothing to filter yet: the index holds no files."]
    assert [i.value for i in app.info][0].startswith("The index holds no files: the 2 files indexed could not")


# 2. the library map ------------------------------------------------------------------------------

def test_the_map_colours_by_top_folder_when_folders_outnumber_its_colours(leftovers_index, monkeypatch):
    """Twelve folders: the map coloured each its own, ten colours repeating (at 400 folders, a
    legend Vega cuts at 30 entries). It colours the three top-level folders now, its legend's title
    saying so and of how many folders, and the tooltip still names each file's folder in full."""
    app = _overview(leftovers_index, monkeypatch)
    spec = json.loads(app.get("vega_lite_chart")[0].proto.spec)
    color = spec["encoding"]["color"]
    assert color["field"] == "colour" and color["legend"]["title"] == ["Top folder", "of 12 folders"], color
    assert color["sort"] == ["amb", "doors", "ui"], color["sort"]
    assert [t["field"] for t in spec["encoding"]["tooltip"]] == ["name", "folder"]
    assert any("Coloured by top-level folder" in c.value for c in app.caption)


def test_a_map_of_400_folders_has_ten_legend_entries():
    """400 folders under 25 top-level folders: the nine largest top folders keep a colour each and
    the other sixteen share one entry, so no colour means two things; the tooltip's folder stays whole."""
    from ui.components.overview_tab import build_map_data, map_chart
    paths = [f"/lib/top{t:02d}/sub{j:02d}/f{k}.wav" for t in range(25) for j in range(16)
             for k in range(1 + (t < 9))]             # the first nine top folders hold twice the files
    rows = build_map_data(list(range(len(paths))), np.random.default_rng(0).standard_normal((len(paths), 8)),
                          paths, "/lib")
    spec = map_chart(rows).to_dict()
    color = spec["encoding"]["color"]
    assert color["legend"]["title"] == ["Top folder", "of 400 folders"]
    assert color["sort"] == [f"top{t:02d}" for t in range(9)] + ["other (16 top folders)"]
    assert color["scale"] == {"scheme": "tableau10"}
    assert {r["colour"] for r in rows} == set(color["sort"])
    assert rows[-1]["folder"] == "top24/sub15" and rows[-1]["colour"] == "other (16 top folders)"


def test_a_map_of_few_folders_colours_each_folder():
    """Up to ten folders each keep their colour, the legend titled "Folder" as before."""
    from ui.components.overview_tab import build_map_data, map_chart
    paths = ["/lib/a/x.wav", "/lib/b/c/y.wav", "/lib/z.wav"]
    rows = build_map_data([1, 2, 3], np.eye(3, 4), paths, "/lib")
    color = map_chart(rows).to_dict()["encoding"]["color"]
    assert color["legend"]["title"] == "Folder" and color["sort"] == ["/lib", "a", "b/c"]
    assert [r["colour"] for r in rows] == ["a", "b/c", "/lib"]


# 3. failed files ---------------------------------------------------------------------------------

def test_failed_files_shows_the_latest_rows_and_counts_the_rest(leftovers_index, monkeypatch):
    """The Overview read every error row into one table (a library of thousands of broken files);
    it shows the latest FAILED_SHOWN now (2 here, 200 on the page), counts the rest and names the
    command listing them all, which does list all three."""
    from indexer.info import index_info
    from ui.components import overview_tab
    monkeypatch.setattr(overview_tab, "FAILED_SHOWN", 2, raising=False)
    app = _overview(leftovers_index, monkeypatch)
    assert {m.label: m.value for m in app.metric}["Failed files"] == "3"
    table = app.dataframe[-1].value
    assert len(table) == 2 and {Path(p).name for p in table["path"]} <= set(BROKEN), table
    root = str(index_info(leftovers_index)["index"])
    notes = [c.value for c in app.caption if "more is listed" in c.value]
    assert notes == [f"The latest 2 shown; 1 more is listed by `soundsift info --index {root} --errors 3 --json`."]
    assert len(index_info(leftovers_index, errors_limit=3)["errors"]) == 3


def test_the_failed_files_note_counts_only_what_is_left_out():
    from ui.components.overview_tab import failed_note
    assert failed_note(3, 3, "/x") is None
    assert failed_note(200, 40_200, "/my lib") == ("The latest 200 shown; 40,000 more are listed by "
                                                    "`soundsift info --index '/my lib' --errors 40200 --json`.")


# 4. "more like this" ------------------------------------------------------------------------------

def _cards(app) -> list[str]:
    """The result cards' headings and badges, in page order."""
    return [as_shown(m.value) for m in app.markdown if m.value.startswith("**") or "-badge[" in m.value]


def test_more_like_this_marks_the_file_it_was_by(leftovers_index, monkeypatch):
    """"More like this" on a card: the file itself came first, score 1, with nothing saying so, as
    if it were the best other match. Its card is badged "this file" now (`soundsift similar` lists
    the file itself first), and no other card is."""
    app = page_on(leftovers_index, monkeypatch)
    app.query_params["q"] = "a sound"
    app.run()
    _clean(app)
    button = next(b for b in app.button if b.key and b.key.startswith("more_3_"))
    name = next(c for c in _cards(app) if c.startswith("**3. ")).strip("*").split(". ", 1)[1]
    button.click().run()
    _clean(app)
    cards = _cards(app)
    badge = ":gray-badge[:material/my_location: this file]"
    assert cards.count(badge) == 1, cards
    second = next(i for i, c in enumerate(cards) if c.startswith("**2. "))
    assert cards.index(f"**1. {name}**") < cards.index(badge) < second, cards
    app.button(key="back_to_text").click().run()          # a text search marks no card
    assert badge not in _cards(app)


# 5. tag choices -----------------------------------------------------------------------------------

def test_a_tag_change_reads_the_tag_choices_again_not_every_path(leftovers_index, tmp_path, monkeypatch):
    """A tag added (a card's Tags box, `soundsift tags add`) made the page read every indexed path and
    facet again for the filters (0.3 s at 40,000 files); it reads the user's tags only now, and the
    "Tagged" box offers the new tag."""
    from engine.query import SoundIndex
    from indexer.user_tags import add_tags
    from ui.components.library import Library
    index = tmp_path / "index"                     # a copy: the module's index stays untagged
    shutil.copytree(leftovers_index, index)
    reads: list[str] = []
    real_folders, real_facets = Library.folders, SoundIndex.facets
    monkeypatch.setattr(Library, "folders", lambda self: reads.append("folders") or real_folders(self))
    monkeypatch.setattr(SoundIndex, "facets", lambda self: reads.append("facets") or real_facets(self))
    app = page_on(index, monkeypatch)
    app.run()
    _clean(app)
    assert sorted(reads) == ["facets", "folders"] and not [m for m in app.sidebar.multiselect if m.key == "f_tags"]
    reads.clear()
    clicks = next((leftovers_index.parent / "library").rglob("clicks.wav"))
    add_tags(index, [str(clicks)], ["keeper"])
    app.run()
    _clean(app)
    assert app.sidebar.multiselect(key="f_tags").options == ["keeper"]
    assert reads == [], reads

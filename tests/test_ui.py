"""The Streamlit page, flow by flow, with streamlit.testing AppTest on a tiny-CLAP index."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import tone
from tests.ui_library import SR, THUNDER_COMMENT, THUNDER_TITLE, UiLibrary, as_shown, wav_bytes  # noqa: F401
from ui.components import search_tab
from ui.components.markdown_text import plain_markdown
from ui.components.server import INDEX_ENV, MODEL_ENV

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
RESULT = re.compile(r"^\*\*(\d+)\. (.+)\*\*$")


@pytest.fixture
def app(ui_library: UiLibrary, monkeypatch) -> AppTest:  # noqa: F811
    monkeypatch.setenv(INDEX_ENV, str(ui_library.index_dir))
    monkeypatch.delenv(MODEL_ENV, raising=False)
    return AppTest.from_file(str(APP), default_timeout=60)


def result_names(at: AppTest) -> list[str]:
    """Names of the result cards, in rank order."""
    names = []
    for md in at.markdown:
        m = RESULT.match(md.value)
        if m:
            names.append(as_shown(m.group(2)))
    return names


def heading(at: AppTest) -> str:
    return next((md.value for md in at.markdown if " shown" in md.value), "")


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def open_tab(at: AppTest, label: str) -> AppTest:
    """Select a tab as a click on it does (the tabs track the open one: ui/app.py)."""
    from ui.components.overview_tab import TAB_KEY
    at.session_state[TAB_KEY] = label
    return at


def test_q_in_the_address_opens_with_that_search_done(app):
    app.query_params["q"] = "dog barking"
    app.run()
    no_exception(app)
    assert app.text_input(key="q").value == "dog barking"
    assert heading(app).startswith("Results for **dog barking**")
    names = result_names(app)
    assert sorted(names) == ["cat_meow.flac", "dog_bark.wav", "engine_idle.wav",
                             "rain_heavy.wav", "thunder_far.wav"]
    # every card: folder, duration, score and matching span; a thumbnail; a player
    facts = [c.value for c in app.caption if "match " in c.value]
    assert len(facts) == 5
    assert all(re.search(r"\d+\.\d s · \w+ · [\d.]+ kHz", f) for f in facts)
    assert all(re.search(r"match \d+\.\d–\d+\.\d s · score -?\d\.\d{3}", f) for f in facts)
    assert len(app.get("image")) == 5
    assert len(app.get("audio")) == 5
    # top zero-shot tags on each card (thunder_far.wav's, a 10 s section of 12 s, "this section: …")
    badges = [md.value for md in app.markdown if ":blue-badge[" in md.value]
    assert len(badges) == 5 and all(b.count(":blue-badge[") == 3 for b in badges)


def test_a_card_shows_what_the_file_says_it_holds(app):
    """thunder_far.wav carries a title and a comment (WAV INFO): its card shows them as written
    (Markdown escaped), the other cards show nothing of the kind."""
    app.query_params["q"] = "thunder"
    app.run()
    no_exception(app)
    shown = [c.value for c in app.caption if "far" in c.value and "match " not in c.value]
    assert shown == [plain_markdown(f"{THUNDER_TITLE} — {THUNDER_COMMENT}")]
    assert "\\*far\\*" in shown[0] and "\\[take 2\\]" in shown[0]


def test_player_starts_at_the_matching_segment(app, ui_library):  # noqa: F811
    app.query_params["q"] = "distant thunder"
    app.run()
    no_exception(app)
    names = result_names(app)
    facts = [c.value for c in app.caption if "match " in c.value]
    thunder = names.index("thunder_far.wav")
    start = float(re.search(r"match (\d+\.\d)–", facts[thunder]).group(1))
    players = app.get("audio")
    assert players[thunder].proto.start_time == int(start)
    # the 12 s file has two 10 s segments (0–10, 2–12): whichever matched, its start is shown
    assert start in (0.0, 2.0)


def test_typing_a_query_searches(app):
    app.run()
    no_exception(app)
    assert result_names(app) == []
    assert any(b.label == "dog barking" for b in app.button)  # suggestions while empty
    app.text_input(key="q").set_value("rain on a window").run()
    no_exception(app)
    assert heading(app).startswith("Results for **rain on a window**")
    assert len(result_names(app)) == 5


def test_the_names_toggle_ranks_a_file_by_its_name(app):
    """With "also match names" on, the file whose name holds a query word comes first."""
    app.query_params["q"] = "a cat"
    app.run()
    plain = result_names(app)
    assert plain[0] != "cat_meow.flac"             # the tiny model's sound match alone ranks it lower
    app.toggle(key="keywords").set_value(True).run()
    no_exception(app)
    assert heading(app).startswith("Results for **a cat** (sound + names)")
    assert result_names(app)[0] == "cat_meow.flac" and sorted(result_names(app)) == sorted(plain)


def test_an_address_with_keywords_opens_with_the_toggle_on(app):
    app.query_params["q"] = "a cat"
    app.query_params["keywords"] = "true"
    app.run()
    no_exception(app)
    assert app.toggle(key="keywords").value is True
    assert heading(app).startswith("Results for **a cat** (sound + names)")
    assert result_names(app)[0] == "cat_meow.flac"


@pytest.mark.parametrize("text, shown", [
    ("Door *slam* $5 [take 2].wav", r"Door \*slam\* \$5 \[take 2\].wav"),
    ("_draft_ :red[x] a|b <i> ~~c~~ `d` #e \\f", r"\_draft\_ \:red\[x\] a\|b \<i\> \~\~c\~\~ \`d\` \#e \\f"),
    ("- not a list", r"\- not a list"), ("1. not a list", r"1\. not a list"),
    ("rain.wav  on\ntwo lines", r"rain.wav on two lines"),
])
def test_plain_markdown_escapes_what_markdown_would_act_on(text, shown):
    assert plain_markdown(text) == shown


def test_a_query_with_markdown_characters_is_shown_as_typed(app):
    app.query_params["q"] = "a $5 *coin* drop"
    app.run()
    no_exception(app)
    assert heading(app).startswith(r"Results for **a \$5 \*coin\* drop**")


def test_suggestion_button_fills_the_query(app):
    app.run()
    next(b for b in app.button if b.label == "birds chirping").click().run()
    no_exception(app)
    assert app.text_input(key="q").value == "birds chirping"
    assert len(result_names(app)) == 5


def test_filters_in_the_sidebar_restrict_the_results(app, ui_library):  # noqa: F811
    app.query_params["q"] = "sound"
    app.run()
    assert len(result_names(app)) == 5
    app.sidebar.multiselect(key="f_formats").set_value(["FLAC"]).run()
    no_exception(app)
    assert result_names(app) == ["cat_meow.flac"]

    app.sidebar.multiselect(key="f_formats").set_value([]).run()
    weather = str(ui_library.root / "weather")
    folder = app.sidebar.selectbox(key="f_folder")
    assert weather in folder.options or "weather" in folder.options
    folder.set_value(weather).run()
    no_exception(app)
    assert sorted(result_names(app)) == ["rain_heavy.wav", "thunder_far.wav"]

    app.sidebar.selectbox(key="f_folder").set_value("(whole library)").run()    # a fresh handle: the cards changed
    app.sidebar.multiselect(key="f_rates").set_value([22_050]).run()
    assert result_names(app) == ["thunder_far.wav"]

    app.sidebar.multiselect(key="f_rates").set_value([]).run()
    app.sidebar.slider(key="f_duration").set_value((0.0, 2.0)).run()
    no_exception(app)
    assert sorted(result_names(app)) == ["cat_meow.flac", "dog_bark.wav"]

    app.sidebar.slider(key="f_duration").set_value((5.0, 12.0)).run()
    assert result_names(app) == ["thunder_far.wav"]

    app.sidebar.slider(key="f_duration").set_value((0.0, 12.0)).run()
    channels = app.sidebar.multiselect(key="f_channels")
    assert channels.options == ["mono", "stereo"]
    channels.set_value([2]).run()
    no_exception(app)
    assert result_names(app) == ["rain_heavy.wav"]


def test_filters_that_keep_nothing_say_so(app):
    app.query_params["q"] = "sound"
    app.run()
    app.sidebar.multiselect(key="f_formats").set_value(["FLAC"]).run()
    app.sidebar.multiselect(key="f_rates").set_value([48_000]).run()
    no_exception(app)
    assert result_names(app) == []
    assert any("Nothing found" in i.value for i in app.info)


def test_more_like_this_searches_by_that_file(app):
    app.query_params["q"] = "sound"
    app.run()
    names = result_names(app)
    rank = names.index("rain_heavy.wav")
    more = [b for b in app.button if b.label == "More like this"]
    assert len(more) == 5
    more[rank].click().run()
    no_exception(app)
    assert heading(app).startswith("More like **rain\\_heavy.wav** ·")   # a 3 s file: all of it
    names = result_names(app)
    assert names[0] == "rain_heavy.wav" and len(names) == 5
    first = next(c.value for c in app.caption if "match " in c.value)
    assert "score 1.000" in first  # a file is most like itself
    # back to the text search the address still holds
    next(b for b in app.button if b.label == "Back to text search").click().run()
    assert heading(app).startswith("Results for **sound**")


def test_more_like_this_on_part_of_a_longer_file_searches_by_that_moment(app):
    """thunder_far.wav is 12 s (segments 0–10 s and 2–12 s): its card shows and plays the
    matched 10 s, so "more like this" searches by that moment (the engine's and the CLI's tests
    check which segments that moment selects; here both hold the same noise)."""
    app.query_params["q"] = "sound"
    app.run()
    names = result_names(app)
    rank = names.index("thunder_far.wav")
    match = [c.value for c in app.caption if "match " in c.value][rank]
    span = match.split("match ")[1].split(" s ·")[0]                   # e.g. "2.0–12.0"
    assert span in ("0.0–10.0", "2.0–12.0")
    [b for b in app.button if b.label == "More like this"][rank].click().run()
    no_exception(app)
    assert heading(app).startswith(f"More like **thunder\\_far.wav** {span} s")
    assert result_names(app)[0] == "thunder_far.wav"
    first = next(c.value for c in app.caption if "match " in c.value)
    assert "score 1.000" in first


def test_more_like_this_respects_filters(app):
    app.query_params["q"] = "sound"
    app.run()
    app.sidebar.multiselect(key="f_rates").set_value([48_000]).run()
    names = result_names(app)
    more = [b for b in app.button if b.label == "More like this"]
    more[names.index("dog_bark.wav")].click().run()
    no_exception(app)
    assert sorted(result_names(app)) == ["dog_bark.wav", "engine_idle.wav", "rain_heavy.wav"]


def test_show_more_pages_through_the_results(app, monkeypatch):
    monkeypatch.setattr(search_tab, "PAGE", 2)
    app.query_params["q"] = "sound"
    app.run()
    assert len(result_names(app)) == 2
    app.button(key="show_more").click().run()
    assert len(result_names(app)) == 4
    app.button(key="show_more").click().run()
    no_exception(app)
    names = result_names(app)
    assert len(names) == 5 and len(set(names)) == 5
    assert not any(b.key == "show_more" for b in app.button)


def test_upload_searches_by_example(app, ui_library):  # noqa: F811
    app.run()
    app.file_uploader(key=search_tab.UPLOAD_KEY).upload(
        "query.wav", wav_bytes(ui_library.dog_wave), "audio/wav").run()
    no_exception(app)
    assert heading(app).startswith("Sounds like **query.wav** (1.5 s)")
    names = result_names(app)
    assert names[0] == "dog_bark.wav" and len(names) == 5
    # the upload went nowhere near the library
    assert not list(ui_library.root.rglob("query.wav"))


def test_recording_searches_by_example(app):
    app.run()
    app.audio_input(key=search_tab.RECORD_KEY).upload(
        "recording.wav", wav_bytes(tone(80, 2.5, SR))).run()
    no_exception(app)
    assert heading(app).startswith("Sounds like **recording.wav**")
    assert result_names(app)[0] == "engine_idle.wav"


def test_typing_after_an_upload_returns_to_text_search(app, ui_library):  # noqa: F811
    app.run()
    app.file_uploader(key=search_tab.UPLOAD_KEY).upload(
        "query.wav", wav_bytes(ui_library.dog_wave), "audio/wav").run()
    app.text_input(key="q").set_value("thunder").run()
    assert heading(app).startswith("Results for **thunder**")


def test_oversized_or_broken_upload_is_refused_with_a_reason(app, monkeypatch, ui_library):  # noqa: F811
    from ui.components import uploads
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 1000)
    app.run()
    app.file_uploader(key=search_tab.UPLOAD_KEY).upload(
        "big.wav", wav_bytes(ui_library.dog_wave), "audio/wav").run()
    assert not app.exception
    assert any("upload limit" in e.value for e in app.error)
    assert result_names(app) == []
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 50 * 2**20)
    app.file_uploader(key=search_tab.UPLOAD_KEY).set_value(
        ("notes.wav", b"these are not samples", "audio/wav")).run()
    assert any("notes.wav" in e.value and "not readable as audio" in e.value for e in app.error)


def test_tag_tab_tags_an_upload_with_the_users_labels(app, ui_library):  # noqa: F811
    app.run()
    app.file_uploader(key="tag_upload").upload(
        "*take* [v2].wav", wav_bytes(ui_library.dog_wave), "audio/wav")
    app.text_area(key="tag_labels").set_value("dog bark, rain, car engine")
    app.run()
    no_exception(app)
    said = next(md.value for md in app.markdown if "from your labels" in md.value)
    assert f"**{plain_markdown('*take* [v2].wav')}**" in said        # the file's name, not Markdown
    table = app.dataframe[0].value
    assert sorted(table["label"]) == ["car engine", "dog bark", "rain"]
    assert list(table["score"]) == sorted(table["score"], reverse=True)
    assert abs(float(table["score"].sum()) - 1.0) < 1e-3  # softmax over the three labels


def test_tag_tab_shows_an_upload_over_time_with_its_marked_takes(app, tmp_path):
    """The "Over time" toggle: one row per segment in time order, the upload's marked takes named."""
    from ui.demo import append_markers
    path = tmp_path / "street.wav"
    path.write_bytes(wav_bytes(np.concatenate([tone(440, 6.0, SR), tone(880, 6.0, SR)])))
    append_markers(path, [(1.0, "First call"), (6.0, "Second call")])
    app.run()
    app.file_uploader(key="tag_upload").upload("street.wav", path.read_bytes(), "audio/wav")
    app.toggle(key="tag_timeline").set_value(True)
    app.text_area(key="tag_labels").set_value("tone, noise")
    app.run()
    no_exception(app)
    table = app.dataframe[0].value
    assert list(table["take"]).count("First call") == 1 and list(table["take"]).count("Second call") == 1
    assert len(table) > 2 and list(table["time"]) == sorted(table["time"])
    assert any("over time" in md.value and "2 of them marked takes" in md.value for md in app.markdown)


def test_tag_tab_uses_the_default_vocabulary(app):
    from engine.vocabulary import everyday_labels
    app.run()
    app.audio_input(key="tag_recording").upload("recording.wav", wav_bytes(tone(440, 1.0, SR)))
    app.slider(key="tag_top").set_value(7)
    app.run()
    no_exception(app)
    assert any("from the default vocabulary" in md.value for md in app.markdown)
    labels = list(app.dataframe[0].value["label"])
    assert len(labels) == 7 and set(labels) <= set(everyday_labels())


def test_overview_shows_model_counts_failures_and_the_map(app, ui_library):  # noqa: F811
    open_tab(app, "Overview").run()
    no_exception(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Files"] == "5"
    assert metrics["Segments"] == "6"
    assert metrics["Failed files"] == "1"
    assert any(str(ui_library.root.parent.parent) in c.value or "tiny_clap" in c.value
               for c in app.caption if c.value.startswith("Model "))
    failed = app.dataframe[-1].value
    assert list(failed["path"]) == [str(ui_library.root / "machines" / "broken.wav")]
    assert "not readable as audio" in failed["reason"][0]
    charts = app.get("vega_lite_chart")
    assert len(charts) == 1
    spec = charts[0].proto.spec
    assert '"pick"' in spec and '"folder"' in spec and '"name"' in spec
    next(b for b in app.button if b.label == "Find duplicates").click().run()
    no_exception(app)
    assert any(c.value == "No duplicates among 5 files." for c in app.caption)


def test_the_overview_and_its_map_are_made_only_when_the_tab_is_opened(app, monkeypatch):
    """The first load reads no file vectors and draws no map (seconds at 40,000 files), nor does
    a search (its cards' tags read their own files' vectors); opening the Overview draws the map,
    once per index generation; the other tabs do not redo it."""
    import streamlit as st
    from engine.query import SoundIndex
    from ui.components import overview_tab
    st.cache_data.clear()                         # the session's library was drawn by other tests
    st.cache_resource.clear()
    projected, read = [], []
    real_pca, real_fv = overview_tab.pca_2d, SoundIndex.file_vectors
    monkeypatch.setattr(overview_tab, "pca_2d", lambda v: projected.append(len(v)) or real_pca(v))
    monkeypatch.setattr(SoundIndex, "file_vectors", lambda self, *a, **k: read.append(1) or real_fv(self, *a, **k))

    app.run()
    no_exception(app)
    assert (projected, read) == ([], [])
    assert not app.get("vega_lite_chart") and not app.metric
    assert not any(b.label == "Find duplicates" for b in app.button)
    app.text_input(key="q").set_value("dog barking").run()
    no_exception(app)
    assert len(result_names(app)) == 5 and (projected, read) == ([], [])
    assert sum(":blue-badge[" in md.value for md in app.markdown) == 5   # zero-shot tags

    open_tab(app, "Overview").run()
    no_exception(app)
    assert projected == [5] and len(read) == 1
    assert len(app.get("vega_lite_chart")) == 1 and app.metric
    app.run()                                     # a rerun on the tab: the cached map
    open_tab(app, "Search").run()
    no_exception(app)
    assert not app.get("vega_lite_chart")
    open_tab(app, "Overview").run()
    assert len(app.get("vega_lite_chart")) == 1
    assert projected == [5] and len(read) == 1


def test_picking_a_point_on_the_map_plays_that_file(app, ui_library):  # noqa: F811
    from ui.components.library import Library
    from ui.components.overview_tab import MAP_PICK
    fid = Library(ui_library.index_dir).files(list(range(1, 50)))
    dog_id = next(i for i, r in fid.items() if r.name == "dog_bark.wav")
    open_tab(app, "Overview").run()
    before = len(app.get("audio"))
    app.session_state[MAP_PICK] = dog_id
    app.run()
    no_exception(app)
    assert any(md.value.startswith("**dog\\_bark.wav**") for md in app.markdown)
    assert len(app.get("audio")) == before + 1


def test_unknown_file_ids_are_refused_not_turned_into_paths(app):
    from ui.components.overview_tab import MAP_PICK
    open_tab(app, "Overview").run()
    app.session_state[MAP_PICK] = 987654
    app.session_state["search_by"] = {"kind": "similar", "file_id": 987654, "name": "x"}
    app.run()
    assert not app.exception
    assert any("no file with id 987654" in w.value for w in app.warning)
    assert any("987654" in e.value for e in app.error)
    assert result_names(app) == []


def test_missing_index_shows_how_to_build_one(tmp_path, monkeypatch):
    monkeypatch.setenv(INDEX_ENV, str(tmp_path / "nowhere"))
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert any("soundsift index" in e.value for e in at.error)


def test_each_card_offers_its_file_and_a_long_files_match_for_download(app):
    """The 12 s thunder file matched on one 10 s segment: its card offers that span and the file;
    the other (short) files match whole, so their cards offer the file only."""
    app.query_params["q"] = "distant thunder"
    app.run()
    no_exception(app)
    names = result_names(app)
    buttons: dict[int, list] = {}
    for b in app.get("download_button"):
        if b.proto.id.endswith(("download_results", "download_library_sheet")):     # tested below
            continue
        rank = int(b.proto.id.rsplit("download_", 1)[1].split("_")[1])
        buttons.setdefault(rank, []).append(b.proto)
    assert sorted(buttons) == list(range(1, len(names) + 1))
    for rank, name in enumerate(names, start=1):
        labels = [p.label for p in buttons[rank]]
        assert labels == (["Match", "File"] if name == "thunder_far.wav" else ["File"])
    match = buttons[names.index("thunder_far.wav") + 1][0]
    assert re.fullmatch(r"Download (0\.0–10\.0|2\.0–12\.0) s of thunder\\_far\.wav as WAV .*", match.help)


def test_download_data_is_the_span_or_the_file_made_on_click(ui_library):
    from types import SimpleNamespace

    import soundfile as sf

    from ui.components import downloads as dl
    path = ui_library.path("thunder_far.wav")
    record = SimpleNamespace(path=str(path), duration=12.0, size=path.stat().st_size)
    match, whole = dl.downloads(SimpleNamespace(start=2.0, end=12.0), record)
    assert (match["file_name"], match["mime"], whole["file_name"]) == ("thunder_far_2.0-12.0s.wav", "audio/wav",
                                                                       "thunder_far.wav")
    audio, rate = sf.read(io.BytesIO(match["data"]()), dtype="int16")
    stored, _ = sf.read(str(path), dtype="int16")
    assert rate == 22_050 and len(audio) == 10 * rate
    np.testing.assert_array_equal(audio[1000:], stored[2 * rate + 1000:])   # faded in at the cut only
    assert abs(int(audio[0])) < abs(int(stored[2 * rate])) or stored[2 * rate] == 0
    assert whole["data"]() == path.read_bytes() and not whole["disabled"]
    huge = SimpleNamespace(path=str(path), duration=12.0, size=dl.MAX_FILE_BYTES + 1)
    (only,) = dl.downloads(SimpleNamespace(start=0.0, end=12.0), huge)
    assert only["disabled"] and "too large to download through the page" in only["help"]


def test_the_without_box_ranks_those_sounds_down(app, ui_library):
    from engine.query import SoundIndex
    app.query_params["q"] = "distant thunder"
    app.query_params["not"] = " rain,, engine idle "
    app.run()
    no_exception(app)
    assert heading(app).startswith("Results for **distant thunder** without **rain**, **engine idle**")
    def shown(hits) -> list[tuple[str, str]]:
        return [(Path(h.path).name, f"{h.score:.3f}") for h in hits]
    with SoundIndex.open(ui_library.index_dir) as index:
        plain = shown(index.search_text("distant thunder", k=10))
        without = shown(index.search_text("distant thunder", k=10, exclude=["rain", "engine idle"]))
    assert without != plain                 # the exclusion moves the scores (the tiny model keeps the order)
    scores = [re.search(r"score (-?\d\.\d+)", c.value).group(1) for c in app.caption if "match " in c.value]
    assert list(zip(result_names(app), scores)) == without
    assert app.text_input(key="not").value == " rain,, engine idle "


def test_the_results_shown_download_as_one_zip(app, ui_library):
    import zipfile
    from types import SimpleNamespace

    from engine.query import SoundIndex
    from ui.components import downloads as dl
    app.query_params["q"] = "distant thunder"
    app.run()
    no_exception(app)
    (button,) = [b.proto for b in app.get("download_button") if b.proto.id.endswith("download_results")]
    assert button.label == "Download these 5 results (.zip)" and "soundsift search --export" in button.help
    # what the button's deferred data makes, for two of the results
    with SoundIndex.open(ui_library.index_dir) as index:
        hits = index.search_text("distant thunder", k=10)
    thunder = next(h for h in hits if h.path.endswith("thunder_far.wav"))
    dog = next(h for h in hits if h.path.endswith("dog_bark.wav"))
    with zipfile.ZipFile(io.BytesIO(dl.results_zip([thunder, dog], "distant thunder"))) as zf:
        names = zf.namelist()
        assert names[1] == "02_dog_bark.wav" and zf.read(names[1]) == ui_library.path("dog_bark.wav").read_bytes()
        assert re.fullmatch(r"01_thunder_far_(0\.0-10\.0|2\.0-12\.0)s\.wav", names[0])
        assert "distant thunder" in zf.read("soundsift-export.csv").decode()
    record = SimpleNamespace(duration=12.0, size=dl.MAX_FILE_BYTES + 1, sample_rate=22_050, channels=1,
                             path=str(ui_library.path("thunder_far.wav")))     # there: a file gone is left out
    whole = SimpleNamespace(start=0.0, end=12.0)
    assert dl.results_download([(whole, record)], "q")["disabled"]
    assert not dl.results_download([(SimpleNamespace(start=2.0, end=12.0), record)], "q")["disabled"]  # a span of it


def test_picked_results_search_for_more_like_all_of_them(app, ui_library):
    from engine.query import SoundIndex
    app.query_params["q"] = "sound"
    app.run()
    names = result_names(app)
    first, second = names[0], names[3]
    ids = {}
    for name in (first, second):
        rank = names.index(name)
        box = [c for c in app.checkbox if c.label == "Pick"][rank]
        ids[name] = int(box.key.rsplit("_", 1)[1])
        box.check().run()
    no_exception(app)
    assert any(f"Picked: {plain_markdown(first)}, {plain_markdown(second)}" in c.value for c in app.caption)
    app.button(key="more_like_picked").click().run()
    no_exception(app)
    assert heading(app).startswith(f"More like **{plain_markdown(first)}** + **{plain_markdown(second)}**")
    with SoundIndex.open(ui_library.index_dir) as index:
        want = [Path(h.path).name for h in index.similar_to_files([ids[first], ids[second]], k=10)]
    assert result_names(app) == want
    # picks stay ticked on the new cards, and clearing them ends that search
    ticked = [names_ for names_, c in zip(result_names(app), [c for c in app.checkbox if c.label == "Pick"]) if c.value]
    assert sorted(ticked) == sorted([first, second])
    app.button(key="clear_picks").click().run()
    no_exception(app)
    assert not any("Picked:" in c.value for c in app.caption) and heading(app).startswith("Results for **sound**")


def test_the_loudness_slider_keeps_the_files_in_its_range(app, ui_library):
    from engine.query import SoundIndex
    app.query_params["q"] = "sound"
    app.run()
    with SoundIndex.open(ui_library.index_dir) as index:
        loudness = {Path(h.path).name: index.get_file(h.file_id)["levels"]["loudness_lufs"]
                    for h in index.search_text("sound", k=10)}
    slider = app.sidebar.slider(key="f_loudness")
    low, high = slider.value
    assert (low, high) == (np.floor(min(loudness.values())), np.ceil(max(loudness.values())))
    cut = float(np.round(np.median(list(loudness.values()))))
    slider.set_value((low, cut)).run()
    no_exception(app)
    quiet = sorted(name for name, lufs in loudness.items() if lufs <= cut)
    assert sorted(result_names(app)) == quiet and 0 < len(quiet) < len(loudness)


def test_a_cards_tags_are_stored_shown_and_filter_the_results(ui_library, tmp_path, monkeypatch):  # noqa: F811
    """Tag a result from its card's Tags popover; the badge appears, the sidebar's Tagged filter
    keeps only that file, and taking the tag off again removes it from the catalog."""
    import shutil

    from indexer.user_tags import tag_counts
    index_dir = tmp_path / "index"              # a copy: the shared index stays untagged
    shutil.copytree(ui_library.index_dir, index_dir)
    monkeypatch.setenv(INDEX_ENV, str(index_dir))
    monkeypatch.delenv(MODEL_ENV, raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["q"] = "sound"
    at.run()
    no_exception(at)
    assert not [m for m in at.sidebar.multiselect if m.key == "f_tags"]      # no tags yet: no filter
    rank = result_names(at).index("dog_bark.wav") + 1

    def card_tags():
        return next(m for m in at.multiselect if m.key.startswith(f"user_tags_{rank}_"))
    card_tags().set_value(["keeper"]).run()
    no_exception(at)
    assert tag_counts(index_dir) == {"keeper": 1}
    assert ":green-badge[:material/sell: keeper]" in [md.value for md in at.markdown]
    assert card_tags().value == ["keeper"]
    at.sidebar.multiselect(key="f_tags").set_value(["keeper"]).run()
    no_exception(at)
    assert result_names(at) == ["dog_bark.wav"]
    rank = 1
    card_tags().set_value([]).run()
    no_exception(at)
    assert tag_counts(index_dir) == {}


def test_the_overview_offers_the_library_sheet(app, ui_library):
    """The Overview tab's "Library sheet (.csv)": what `soundsift sheet export` writes, made on click."""
    import csv
    from ui.components import downloads as dl
    open_tab(app, "Overview").run()
    no_exception(app)
    (button,) = [b.proto for b in app.get("download_button") if b.proto.id.endswith("download_library_sheet")]
    assert button.label == "Library sheet (.csv)" and not button.disabled
    rows = list(csv.DictReader(io.StringIO(dl.library_sheet_bytes(str(ui_library.index_dir)).decode("utf-8-sig"))))
    by_name = {r["Filename"]: r for r in rows}
    assert len(rows) == len(set(r["Pathname"] for r in rows)) and "dog_bark.wav" in by_name
    assert f"{len(rows):,}" in button.help
    thunder = by_name["thunder_far.wav"]
    assert (thunder["FXName"], thunder["Comment"]) == (THUNDER_TITLE, THUNDER_COMMENT)
    assert thunder["Pathname"] == str(ui_library.path("thunder_far.wav"))

"""The notes of `soundsift tag` (one label scores 1 for every sound; a sound under 0.1 s is too
short to be told apart) reach the page's Tag tab and the HTTP API's /tag too, in the same words
(engine.tagging.tag_notes); before, only the CLI said them."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from streamlit.testing.v1 import AppTest

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from tests.test_server import serving
from tests.ui_library import SR, UiLibrary, wav_bytes
from ui.components.server import INDEX_ENV, MODEL_ENV

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
SHORT = "is 0.010 s long, under 0.1 s: too short for the model to tell what it is"
NOTES_HEADER = "X-Soundsift-Notes"         # as README's serve section names it
ONE_LABEL = "one label ('beep'): a score is a label's share among the labels given, so it scores 1"

pytestmark = pytest.mark.usefixtures("private_cache")


def test_the_notes_are_worded_once_for_every_place():
    from engine.tagging import tag_notes
    notes = tag_notes(["beep"], [("blip.wav", 0.01), ("beep.wav", 1.0), ("unknown.wav", None)], "do this")
    assert notes[0].startswith(ONE_LABEL) and notes[0].endswith("; do this")
    assert len(notes) == 2 and notes[1].startswith(f"blip.wav {SHORT}")
    assert tag_notes(["beep", "hiss"], [("beep.wav", 0.1)], "do this") == []


# -- the page -------------------------------------------------------------------------------

@pytest.fixture
def app(ui_library: UiLibrary, monkeypatch) -> AppTest:  # noqa: F811
    monkeypatch.setenv(INDEX_ENV, str(ui_library.index_dir))
    monkeypatch.delenv(MODEL_ENV, raising=False)
    return AppTest.from_file(str(APP), default_timeout=60)


def tagged(app: AppTest, name: str, seconds: float, labels: str, over_time: bool = False) -> list[str]:
    """The Tag tab's notes (st.info) for a tone ``seconds`` long uploaded as ``name``."""
    app.run()
    app.file_uploader(key="tag_upload").upload(name, wav_bytes(tone(1000, seconds, SR)), "audio/wav")
    app.text_area(key="tag_labels").set_value(labels)
    app.toggle(key="tag_timeline").set_value(over_time)
    app.run()
    assert not app.exception and not app.error, [e.value for e in [*app.exception, *app.error]]
    assert len(app.dataframe) == 1                      # the tags are shown, the notes besides
    return [" ".join(i.value.replace("\\", "").split()) for i in app.info]


@pytest.mark.parametrize("over_time", [False, True])
def test_tag_tab_says_a_sound_is_too_short_to_tell(app, over_time):
    notes = tagged(app, "blip.wav", 0.01, "beep, hiss", over_time)
    assert len(notes) == 1 and f"blip.wav {SHORT}" in notes[0], notes


def test_tag_tab_says_one_label_scores_1_for_every_sound(app):
    notes = tagged(app, "beep.wav", 1.0, "beep")
    assert len(notes) == 1 and ONE_LABEL in notes[0] and "give other labels too" in notes[0], notes
    assert float(app.dataframe[0].value["score"][0]) == pytest.approx(1.0)


def test_tag_tab_says_nothing_of_a_long_sound_and_several_labels(app):
    assert tagged(app, "beep.wav", 1.0, "beep, hiss") == []


# -- the HTTP API ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An index of a 1 s beep and a 10 ms blip, served; yields (base url, library folder)."""
    tmp = tmp_path_factory.mktemp("notes")
    lib = (tmp / "lib").resolve()
    write(lib / "beep.wav", tone(1000, 1.0, SR), SR)
    write(lib / "blip.wav", tone(1000, 0.01, SR), SR)
    build_index([lib], tmp / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp / "idx", model=FakeModel()) as index, serving(index) as url:
        yield url, lib


def answer(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[list, list[str] | None]:
    """(the tags, the notes of the answer's X-Soundsift-Notes header or None without one)."""
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers=headers or {})
    with urllib.request.urlopen(request, timeout=60) as r:
        assert r.status == 200
        notes = r.headers.get(NOTES_HEADER)
        return json.loads(r.read()), None if notes is None else json.loads(notes)


def test_get_tag_carries_the_notes_in_a_header_the_body_a_list_as_before(served):
    url, lib = served
    tags, notes = answer(f"{url}/tag?file={quote(str(lib / 'blip.wav'))}&labels=beep,hiss")
    assert [set(t) for t in tags] == [{"label", "score", "cosine"}] * 2
    assert notes == [f"{lib / 'blip.wav'} {SHORT} (it hears it padded to its shortest clip), so its tags say "
                     "little of it (a sound this short is often tagged Silence)"]
    tags, notes = answer(f"{url}/tag?file={quote(str(lib / 'beep.wav'))}&labels=beep")
    assert tags[0]["score"] == pytest.approx(1.0) and len(notes) == 1
    assert notes[0].startswith(ONE_LABEL) and notes[0].endswith("compare the cosines or give other labels too")
    assert answer(f"{url}/tag?file={quote(str(lib / 'beep.wav'))}&labels=beep,hiss")[1] is None


def test_post_tag_carries_the_notes_of_the_clip(served):
    url, lib = served
    blip = (lib / "blip.wav").read_bytes()
    _, notes = answer(f"{url}/tag?labels={quote('狗')}", data=blip, headers={"X-Filename": "blíp.wav"})
    assert len(notes) == 2 and notes[0].startswith("one label ('狗'): a score is a label's share")
    assert notes[1].startswith(f"blíp.wav {SHORT}")         # any character, ASCII-escaped in the header
    assert answer(f"{url}/tag?labels=beep,hiss", data=(lib / "beep.wav").read_bytes())[1] is None

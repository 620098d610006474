"""A file's bytes in memory that break off (an upload cut short, or damaged from some point) are read
as the file on disk is: the audio before the break is kept, with the one note saying where decoding
stopped (engine.audio.read_sound_bytes shares engine.audio's block reader and its salvage). Before
session 38 a FLAC cut short, or an MP3 whose end is garbage, was "not readable as audio" when POSTed
to the HTTP API or uploaded on the page, though `soundsift similar FILE` searched by it."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import decode, read_sound_bytes
from engine.errors import UnreadableAudio
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_http_notes34 import ask as ask_http
from tests.test_server import serving
from ui.components.uploads import read_example

SR = 44_100
NOTES_HEADER = "X-Soundsift-Notes"          # as README's serve section names it
STOPPED = "decoding stopped at "
KEPT = "): keeping the audio before it"
#: (extension, soundfile's format and subtype, the file's rate)
FORMATS = {
    "flac": ("FLAC", None, SR),
    "mp3": ("MP3", None, SR),
    "wav": ("WAV", "PCM_16", SR),
    "ogg": ("OGG", "VORBIS", SR),
    "opus": ("OGG", "OPUS", 48_000),
}

pytestmark = pytest.mark.usefixtures("private_cache")


def broken(path: Path, ext: str, how: str, keep: float = 0.5, seconds: float = 3.0) -> bytes:
    """The bytes of ``seconds`` of noise written as ``ext``, cut to ``keep`` of them (``how`` =
    "cut", as an interrupted copy or upload leaves a file) or with the rest random bytes
    ("damaged"); written to ``path`` too."""
    fmt, subtype, rate = FORMATS[ext]
    sf.write(str(path), noise(seconds, rate, seed=3, amp=0.2), rate, format=fmt, subtype=subtype)
    whole = path.read_bytes()
    n = int(len(whole) * keep)
    tail = b"" if how == "cut" else np.random.default_rng(5).integers(0, 256, len(whole) - n, np.uint8).tobytes()
    path.write_bytes(whole[:n] + tail)
    return path.read_bytes()


def stops(notes: list[str]) -> list[str]:
    """The notes saying where decoding stopped (not what a decoder printed besides)."""
    return [n for n in notes if n.startswith(STOPPED)]


# each case where the bytes failed before session 38 (FLAC cut or damaged; MP3 damaged: a cut MP3
# read to its end already), and those read alike already (a cut WAV, Ogg Vorbis, Opus)
CASES = [("flac", "cut"), ("flac", "damaged"), ("mp3", "damaged"),
         ("mp3", "cut"), ("wav", "cut"), ("ogg", "cut"), ("opus", "cut")]


@pytest.mark.parametrize("ext,how", CASES)
def test_bytes_that_break_off_read_as_the_file_does(tmp_path, ext, how):
    """read_sound_bytes gives what decoding the file gives, sample for sample, and the same note."""
    path = tmp_path / f"clip.{ext}"
    data = broken(path, ext, how)
    rate = FORMATS[ext][2]
    file_notes: list[str] = []
    from_file = decode(path, rate, notes=file_notes)            # at its own rate: no resampling
    samples, got_rate = read_sound_bytes(data, path.name)
    assert got_rate == rate and samples.shape == (len(from_file), 1)
    np.testing.assert_array_equal(samples[:, 0], from_file)
    example = read_example(path.name, data)                     # the upload: the same note, named
    assert list(example.notes) == [f"{path.name}: {n}" for n in stops(file_notes)]


@pytest.mark.parametrize("ext,how", [("flac", "cut"), ("flac", "damaged"), ("mp3", "damaged")])
def test_the_audio_before_the_break_is_kept_with_one_note(tmp_path, ext, how, caplog):
    path = tmp_path / f"clip.{ext}"
    data = broken(path, ext, how)
    with caplog.at_level(logging.WARNING, logger="engine.audio"):
        samples, rate = read_sound_bytes(data, "clip." + ext)
    assert 1.2 < len(samples) / rate < 1.6                     # about half of the 3 s
    # without a list the note goes to the log, naming the bytes' name, as a file's does
    logged = [r.getMessage() for r in caplog.records if r.name == "engine.audio"]
    assert len(logged) == 1 and logged[0].startswith(f"clip.{ext}: {STOPPED}{len(samples) / rate:.2f} s of 3.00 s (")
    assert logged[0].endswith(KEPT)
    notes: list[str] = []
    again, _ = read_sound_bytes(data, "clip." + ext, notes)
    np.testing.assert_array_equal(again, samples)
    assert notes == [logged[0].removeprefix(f"clip.{ext}: ")]


def test_an_upload_cut_short_keeps_its_audio_and_says_where_it_stopped(tmp_path):
    data = broken(tmp_path / "take.flac", "flac", "cut")
    example = read_example("take.flac", data)
    assert 1.2 < example.duration < 1.6
    assert len(example.notes) == 1 and example.notes[0].startswith(f"take.flac: {STOPPED}")
    assert example.notes[0].endswith(KEPT)
    whole = tmp_path / "whole.wav"
    write(whole, tone(440, 1.0, SR), SR)
    assert read_example("whole.wav", whole.read_bytes()).notes == ()       # nothing to say


def _flac_audio_start(data: bytes) -> int:
    """Where a FLAC file's first audio frame begins: after "fLaC" and its metadata blocks."""
    at = 4
    while True:
        last, length = data[at] & 0x80, int.from_bytes(data[at + 1:at + 4], "big")
        at += 4 + length
        if last:
            return at


def test_an_upload_broken_before_any_audio_is_still_unreadable(tmp_path):
    """Nothing before the break decodes: one message naming the upload and why, as before."""
    data = broken(tmp_path / "head.flac", "flac", "cut", keep=1.0)
    audio_start = _flac_audio_start(data)
    for head in (data[:audio_start // 2], data[:audio_start + 40]):    # in the header; in the first frame
        with pytest.raises(UnreadableAudio) as caught:
            read_example("head.flac", head)
        assert str(caught.value).startswith("head.flac: not readable as audio (")
        assert str(caught.value).count("head.flac") == 1 and "upload one of: wav" in str(caught.value)


# -- the HTTP API ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Two short sounds, indexed and served; yields (base url, a folder for clips)."""
    tmp = tmp_path_factory.mktemp("salvage38")
    lib = (tmp / "lib").resolve()
    write(lib / "beep.wav", tone(880, 3.0, 16_000), 16_000)
    write(lib / "hiss.wav", noise(2.0, 16_000, seed=4), 16_000)
    build_index([lib], tmp / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp / "idx", model=FakeModel()) as index, serving(index) as url:
        yield url, tmp


def ask(url: str, data: bytes, name: str) -> tuple[int, object, list[str] | None]:
    """(status, JSON body, the notes of the X-Soundsift-Notes header or None) of POSTing ``data`` named ``name``."""
    return ask_http(url, data, {"X-Filename": name})


@pytest.mark.parametrize("ext,how", [("flac", "cut"), ("flac", "damaged"), ("mp3", "damaged")])
@pytest.mark.parametrize("route", ["/similar?k=2", "/tag?labels=beep,hiss&k=2"])
def test_a_posted_clip_cut_short_is_searched_by_with_the_note(served, ext, how, route):
    url, tmp = served
    path = tmp / f"posted_{how}.{ext}"
    data = broken(path, ext, how)
    said: list[str] = []
    decode(path, 16_000, notes=said)                            # what the file's reading says
    status, body, notes = ask(url + route, data, f"cut.{ext}")
    assert status == 200 and len(body) == 2, body
    assert notes == [f"cut.{ext}: {note}" for note in stops(said)] and len(notes) == 1


def test_both_notes_of_a_posted_clip_come_in_one_header(served):
    """A clip cut short and an end past its end: both notes, the decoder's first."""
    url, tmp = served
    data = broken(tmp / "both.flac", "flac", "cut")
    status, _, notes = ask(f"{url}/similar?k=2&end=9", data, "both.flac")
    assert status == 200 and notes is not None and len(notes) == 2, notes
    assert notes[0].startswith(f"both.flac: {STOPPED}") and "so end 0:09.00 is past its end" in notes[1]


# -- the page -------------------------------------------------------------------------------

@pytest.fixture
def app(ui_library, monkeypatch):  # noqa: F811
    from streamlit.testing.v1 import AppTest

    from ui.components.server import INDEX_ENV, MODEL_ENV
    monkeypatch.setenv(INDEX_ENV, str(ui_library.index_dir))
    monkeypatch.delenv(MODEL_ENV, raising=False)
    return AppTest.from_file(str(Path(__file__).resolve().parents[1] / "ui" / "app.py"), default_timeout=60)


def page_notes(app) -> list[str]:
    """The page's notes (st.info), as plain text, once no error or exception is shown."""
    assert not app.exception and not app.error, [e.value for e in [*app.exception, *app.error]]
    return [" ".join(i.value.replace("\\", "").split()) for i in app.info]


def test_the_page_searches_and_tags_by_an_upload_cut_short_and_says_so(app, tmp_path):
    from ui.components.search_tab import UPLOAD_KEY
    data = broken(tmp_path / "take.flac", "flac", "cut")
    app.run()
    app.file_uploader(key=UPLOAD_KEY).upload("take.flac", data, "audio/flac").run()
    notes = page_notes(app)
    assert [n for n in notes if "take.flac: decoding stopped at " in n and n.endswith(KEPT)], notes
    assert any(m.value.startswith("Sounds like **take.flac** (1.") for m in app.markdown)
    app.file_uploader(key="tag_upload").upload("take.flac", data, "audio/flac")
    app.text_area(key="tag_labels").set_value("beep, hiss")
    app.run()
    notes = page_notes(app)
    assert len(app.dataframe) >= 1
    assert len([n for n in notes if "take.flac: decoding stopped at " in n]) == 2, notes     # each tab says it

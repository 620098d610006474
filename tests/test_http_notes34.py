"""The HTTP API (`soundsift serve`) gives the notes the CLI prints, in its X-Soundsift-Notes header
(a JSON list of strings; the body stays the list of hits): a /similar ``end`` past the end of the
file or POSTed clip is cut to its end with a note, as `soundsift similar --end` does; a filtered
/search or /similar that finds nothing because no indexed file has a filter's value says which
(SoundIndex.why_no_file, as `soundsift search` prints it). Both share the CLI's logic
(engine.query_span: cut_to_length, file_seconds)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_server import serving

SR = 16_000
NOTES_HEADER = "X-Soundsift-Notes"          # as README's serve section names it


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A 12 s recording and two short sounds, indexed and served; yields (base url, library)."""
    tmp = tmp_path_factory.mktemp("notes34")
    lib = (tmp / "lib").resolve()
    write(lib / "long.wav", chirp(200, 2000, 12.0, SR), SR)
    write(lib / "beep.wav", tone(880, 3.0, SR), SR)
    write(lib / "hiss.wav", noise(2.0, SR, seed=4), SR)
    build_index([lib], tmp / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp / "idx", model=FakeModel()) as index, serving(index) as url:
        yield url, lib


def ask(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, object, list[str] | None]:
    """(status, JSON body, the notes of the X-Soundsift-Notes header or None without one)."""
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            status, body, notes = r.status, r.read(), r.headers.get(NOTES_HEADER)
    except urllib.error.HTTPError as e:
        status, body, notes = e.code, e.read(), e.headers.get(NOTES_HEADER)
    return status, json.loads(body), None if notes is None else json.loads(notes)


def test_an_end_past_the_file_is_cut_to_its_end_with_a_note(served):
    url, lib = served
    long = lib / "long.wav"
    similar = f"{url}/similar?file={quote(str(long))}&k=3"
    status, hits, notes = ask(f"{similar}&start=10&end=0:20")
    assert status == 200 and hits and hits[0]["path"] == str(long), hits
    assert notes == [f"{long} is 0:12.00 long, so end 0:20.00 is past its end: more like 0:10.00–0:12.00"]
    _, to_its_end, exact_notes = ask(f"{similar}&start=10&end=12")
    assert to_its_end == hits and exact_notes is None         # the same search, nothing to say
    file_id = hits[0]["file_id"]
    _, by_id, id_notes = ask(f"{url}/similar?file={file_id}&k=3&start=10&end=20")
    assert by_id == hits and id_notes == notes
    _, from_start, start_notes = ask(f"{url}/similar?file={file_id}&k=3&end=30")
    assert from_start and start_notes == [f"{long} is 0:12.00 long, so end 0:30.00 is past its end: "
                                          "more like 0:00.00–0:12.00"]
    status, body, past_notes = ask(f"{similar}&start=20&end=30")      # a start past the end: refused
    assert status == 400 and "the start time 20 s is past its end" in body["error"] and past_notes is None


def test_an_end_past_a_posted_clip_is_cut_to_its_end_with_a_note(served):
    url, lib = served
    beep = (lib / "beep.wav").read_bytes()                   # 3 s
    status, hits, notes = ask(f"{url}/similar?k=3&start=1&end=9", data=beep, headers={"X-Filename": "bêep.wav"})
    assert status == 200 and hits
    assert notes == ["bêep.wav is 0:03.00 long, so end 0:09.00 is past its end: more like 0:01.00–0:03.00"]
    _, to_its_end, exact_notes = ask(f"{url}/similar?k=3&start=1&end=3", data=beep)
    assert to_its_end == hits and exact_notes is None
    _, _, unnamed = ask(f"{url}/similar?k=3&end=5", data=beep)
    assert unnamed == ["request body is 0:03.00 long, so end 0:05.00 is past its end: more like 0:00.00–0:03.00"]


def test_a_filter_value_no_file_has_is_named_when_nothing_is_found(served):
    url, lib = served
    status, hits, notes = ask(f"{url}/search?q=beep&format=xyz")
    assert status == 200 and hits == []
    assert notes == ["no indexed file has format xyz (this index: WAV)"]
    _, hits, notes = ask(f"{url}/search?q=beep&keywords=1&tagged=nosuch&path_prefix=/nosuch")
    assert hits == [] and notes == [f"no indexed file has path prefix /nosuch (this index: every file under {lib}/)",
                                    "no indexed file has tag nosuch (this index: none)"]
    _, hits, notes = ask(f"{url}/similar?file={quote(str(lib / 'beep.wav'))}&min_duration=60")
    assert hits == [] and notes == ["no indexed file is 60 s or longer (the longest: 12.0 s)"]
    _, hits, notes = ask(f"{url}/similar?k=2&sample_rate=96k", data=(lib / "hiss.wav").read_bytes())
    assert hits == [] and notes == ["no indexed file has sample rate 96000 (this index: 16000 Hz)"]


def test_a_sheet_of_no_file_says_which_filter_value_no_file_has(served):
    """GET /sheet with filters keeping no file answered a header-only CSV and no hint."""
    url, _ = served
    with urllib.request.urlopen(f"{url}/sheet?format=xyz", timeout=60) as r:
        rows, notes = r.read().decode().splitlines(), r.headers.get(NOTES_HEADER)
    assert len(rows) == 1 and json.loads(notes) == ["no indexed file has format xyz (this index: WAV)"]
    with urllib.request.urlopen(f"{url}/sheet?format=wav", timeout=60) as r:
        assert len(r.read().decode().splitlines()) == 4 and r.headers.get(NOTES_HEADER) is None


def test_both_notes_come_in_one_header(served):
    url, lib = served
    _, hits, notes = ask(f"{url}/similar?file={quote(str(lib / 'long.wav'))}&start=11&end=15&format=xyz")
    assert hits == [] and notes == [f"{lib / 'long.wav'} is 0:12.00 long, so end 0:15.00 is past its end: more "
                                    "like 0:11.00–0:12.00", "no indexed file has format xyz (this index: WAV)"]


def test_no_note_where_something_was_found_or_every_value_is_held(served, monkeypatch):
    url, lib = served
    asked = []
    why_no_file = SoundIndex.why_no_file
    monkeypatch.setattr(SoundIndex, "why_no_file", lambda self, f: asked.append(f) or why_no_file(self, f))
    _, hits, notes = ask(f"{url}/search?q=beep&format=wav&k=2")
    assert len(hits) == 2 and notes is None and asked == []      # found: not looked up
    _, hits, notes = ask(f"{url}/search?q=beep&format=wav&min_duration=5&max_duration=6")
    assert hits == [] and notes is None and len(asked) == 1      # held values that keep nothing together
    _, hits, notes = ask(f"{url}/search?q=beep&k=1")
    assert len(hits) == 1 and notes is None and len(asked) == 1


def test_the_cut_is_the_clis():
    from engine.query_span import cut_to_length
    assert cut_to_length("a.wav", 290.0, 320.0, 300.0, "--end") == (
        None, 300.0, "a.wav is 5:00.00 long, so --end 5:20.00 is past its end: more like 4:50.00–5:00.00")
    assert cut_to_length("a.wav", 290.0, 300.004, 300.0) == (300.004, 300.004, None)    # within the slack
    assert cut_to_length("a.wav", 301.0, 320.0, 300.0) == (320.0, 320.0, None)         # the search refuses it
    assert cut_to_length("a.wav", None, 320.0, None) == (320.0, 320.0, None)           # length unknown


def test_file_seconds_reads_the_catalog_or_the_header(served, tmp_path):
    from engine.query_span import file_seconds
    url, lib = served
    outside = tmp_path / "outside.wav"
    write(outside, tone(440, 2.5, SR), SR)
    (tmp_path / "broken.wav").write_bytes(b"RIFF nonsense")
    index_dir = lib.parent / "idx"
    with SoundIndex.open(index_dir, model=FakeModel()) as index:
        file_id = index.file_id_for_path(lib / "long.wav")
        assert file_seconds(index, file_id) == file_seconds(index, lib / "long.wav") == pytest.approx(12.0)
        assert file_seconds(index, outside) == pytest.approx(2.5)
        assert file_seconds(index, tmp_path / "broken.wav") is None
        assert file_seconds(index, tmp_path / "nosuch.wav") is None

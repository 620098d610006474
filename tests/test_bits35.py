"""Three leftovers (session 35): `/audio` with an ``end`` past the file's end says so in its
X-Soundsift-Notes header (200, 206 and 304 alike), a keyword index write killed mid-way leaves no
temporary file forever (the next write removes it once it is an hour old), and a keyword search
whose copies collapse names the marker its words found even when the leader comes from the
sound side."""
from __future__ import annotations

import json
import logging
import os
import shutil
import time

import pytest

from engine.layout import IndexLayout
from engine.query import SoundIndex
from indexer import build_index
from query_fixtures import FakeModel as BandModel
from query_fixtures import FileSpec, write_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_file_metadata import adtl_chunk, cue_chunk, pcm16, wav_bytes, with_trailing_chunk
from tests.test_serve_api_extras import _file_id, ask, serving

pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)

SR = 16_000


# 1. /audio's end past the file's end ---------------------------------------------------------------

@pytest.fixture
def served(tmp_path):
    """A 1 s beep and a hiss, indexed and served; yields ((host, port), beep's path)."""
    lib = (tmp_path / "lib").resolve()
    beep = write(lib / "beep.wav", tone(880, 1.0, SR), SR)
    write(lib / "hiss.wav", noise(1.0, SR, seed=3), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index, serving(index) as address:
        yield address, str(beep)


def _notes(headers: dict[str, str]) -> list[str] | None:
    given = headers.get("x-soundsift-notes")
    return None if given is None else json.loads(given)


def test_an_audio_end_past_the_file_is_said_on_200_206_and_304(served):
    """/audio served an end past the file's end as the span to its end, silently (where /similar
    says it cut one); now its note says what is sent, on the 304 too (from the catalog's length)."""
    address, beep = served
    file_id = _file_id(address, "beep.wav")
    said = [f"{beep} is 0:01.00 long, so end 0:10.00 is past its end: sending 0:00.50–0:01.00"]
    status, headers, wav = ask(address, "GET", f"/audio/{file_id}?start=0.5&end=10")
    assert status == 200 and wav[:4] == b"RIFF" and _notes(headers) == said
    status, ranged, part = ask(address, "GET", f"/audio/{file_id}?start=0.5&end=10", Range="bytes=0-3")
    assert (status, part, _notes(ranged)) == (206, b"RIFF", said)
    status, cached, body = ask(address, "GET", f"/audio/{file_id}?start=0.5&end=10", If_None_Match=headers["etag"])
    assert (status, body, _notes(cached)) == (304, b"", said)
    for within in ("?start=0.5&end=1", "?start=0.5", "", "?end=0.5"):      # nothing cut: no header
        status, headers, _ = ask(address, "GET", f"/audio/{file_id}{within}")
        assert status == 200 and _notes(headers) is None, within


# 2. a keyword index write's leftovers ---------------------------------------------------------------

def test_a_killed_writers_keyword_tmp_is_removed_once_an_hour_old(tmp_path, caplog):
    """_keep wrote keywords.npz.<pid>-<thread>.tmp and renamed it; one whose writer was killed
    stayed forever. Now the next write removes those an hour old (logged), never a fresh one
    (another process may be writing it)."""
    model = BandModel(16)
    root = tmp_path / "idx"
    write_index(root, [FileSpec(f"/lib/t{i}.wav", model.band_vector(3 + i)) for i in range(4)], dim=16)
    cache = IndexLayout(root).keyword_cache
    old, fresh = cache.with_name(f"{cache.name}.4242-1.tmp"), cache.with_name(f"{cache.name}.4243-2.tmp")
    for leftover in (old, fresh):
        leftover.write_bytes(b"half a keyword index")
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    with caplog.at_level(logging.INFO, logger="engine.query"), SoundIndex.open(root, model=model) as index:
        assert index.search_text("t2", k=2, keywords=True)[0].path == "/lib/t2.wav"
    assert cache.is_file() and not old.exists() and fresh.exists()
    assert [r.getMessage() for r in caplog.records if str(old) in r.getMessage()] == [
        f"{old}: removed, left by a keyword index write that never finished"]
    assert not any(str(fresh) in r.getMessage() for r in caplog.records)


# 3. a collapsed keyword hit led from the sound side --------------------------------------------------

def test_a_leader_from_the_sound_side_names_the_marker_its_copy_was_placed_at(tmp_path):
    """take_401.wav (a low tone: its sound ranks last) has the named marker GATE near its end;
    its byte-identical copy "gate latch copy.wav" ranks high by its name. With k=4 the fused
    ranking holds the copy (placed at GATE) but not take_401, which the sound side's files bring
    in to lead the recording (the copy's name says it is one) – without the marker: the sound
    side was not placed at markers. Now it is, and the hit names GATE as the copy's did."""
    lib = (tmp_path / "lib").resolve()
    lib.mkdir()
    take = lib / "take_401.wav"
    marked = cue_chunk((1, 63_200)) + adtl_chunk((b"labl", 1, "GATE"))     # 3.95 s: too short a take
    take.write_bytes(with_trailing_chunk(wav_bytes(pcm16(tone(150, 4.0, SR))), marked))
    shutil.copyfile(take, lib / "gate latch copy.wav")
    for i in range(5):
        write(lib / f"gate latch {i}.wav", noise(2.0, SR, seed=i), SR)
    for i in range(6):
        write(lib / f"rain {i}.wav", noise(1.0, SR, seed=20 + i), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        every = index.search_text("gate latch", k=4, keywords=True, collapse_copies=False)
        hits = index.search_text("gate latch", k=4, keywords=True)
    copy = next(h for h in every if h.path == str(lib / "gate latch copy.wav"))
    assert str(take) not in [h.path for h in every]                # not in the fused ranking's top 4
    assert (copy.marker, copy.start, copy.end) == ("GATE", 2.0, 4.0)
    led = next(h for h in hits if h.path == str(take))
    assert led.copies == [str(lib / "gate latch copy.wav")]
    assert (led.marker, led.marker_at, led.start, led.end, led.score) == (
        copy.marker, copy.marker_at, copy.start, copy.end, copy.score)

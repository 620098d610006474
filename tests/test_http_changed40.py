"""``GET /audio/ID`` of a file changed since it was indexed (helper 187, session 40).

Export and the page's downloads refuse such a file (helper 182: engine.export.changed_since_indexed,
the catalog's size and mtime_ns); serve's ``/audio`` still sent a span of it, checked against the
catalog's stale duration, so past a shorter file's new end it was padded with silence. It now
answers 409 with ``{"error": …}`` naming the file, in export's words; an unchanged file is served
as before, with the same one stat for its ETag.
"""
from __future__ import annotations

import io
import os
import urllib.error
import urllib.request

import pytest
import soundfile as sf

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_server import get, serving

SR = 16_000


@pytest.fixture
def served(tmp_path):
    """Two files indexed and served; yields (base url, library, file id by name)."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "beep.wav", tone(880, 3.0, SR), SR)
    write(lib / "hiss.wav", noise(2.0, SR, seed=3), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index, serving(index) as url:
        ids = {name: index.file_id_for_path(str(lib / name)) for name in ("beep.wav", "hiss.wav")}
        yield url, lib, ids


def _conflict(url: str, path: str, said: str) -> None:
    status, body, kind = get(url)
    assert (status, kind) == (409, "application/json"), (status, body)
    assert body["error"].startswith(f"{path}: changed since it was indexed ({said}"), body
    assert body["error"].endswith("run `soundsift index` on its folder again, then search again"), body


def test_a_file_cut_shorter_since_indexing_is_409_not_padded_with_silence(served):
    url, lib, ids = served
    path = lib / "beep.wav"
    write(path, tone(880, 1.0, SR), SR)                # 1 s now; the catalog says 3 s
    size = path.stat().st_size
    _conflict(f"{url}/audio/{ids['beep.wav']}", str(path), f"{size:,} bytes now, ")     # was 0–3 s
    _conflict(f"{url}/audio/{ids['beep.wav']}?start=1.5&end=2.5", str(path), f"{size:,} bytes now, ")


def test_a_file_rewritten_in_place_at_its_size_is_409_by_its_mtime(served):
    url, lib, ids = served
    path = lib / "hiss.wav"
    before = path.stat()
    write(path, noise(2.0, SR, seed=4), SR)            # other sound, the same length and size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 5_000_000_000))
    assert path.stat().st_size == before.st_size
    _conflict(f"{url}/audio/{ids['hiss.wav']}?end=1", str(path), "modified ")
    request = urllib.request.Request(f"{url}/audio/{ids['hiss.wav']}?end=1", headers={"If-None-Match": "*"})
    try:                                               # not 304 either: the client's bytes are of other audio
        urllib.request.urlopen(request, timeout=60)
        raise AssertionError("answered")
    except urllib.error.HTTPError as e:
        assert e.code == 409


def test_an_unchanged_file_is_served_and_its_neighbour_s_change_does_not_matter(served):
    url, lib, ids = served
    write(lib / "hiss.wav", tone(440, 0.5, SR), SR)    # another file changed
    status, body, kind = get(f"{url}/audio/{ids['beep.wav']}?start=1&end=2")
    assert (status, kind) == (200, "audio/wav") and body[:4] == b"RIFF", (status, body[:200])
    assert sf.info(io.BytesIO(body)).frames == SR      # the 1 s asked for


def test_a_deleted_file_is_still_404(served):
    url, lib, ids = served
    (lib / "beep.wav").unlink()
    status, body, _ = get(f"{url}/audio/{ids['beep.wav']}")
    assert status == 404 and "beep.wav" in body["error"], body

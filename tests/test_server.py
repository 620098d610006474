"""`soundsift serve` (ui/server.py): the query layer over HTTP, the index and model kept open."""
from __future__ import annotations

import contextlib
import io
import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator
from urllib.parse import quote

import pytest
import soundfile as sf

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel
from ui.server import serve

SR = 16_000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A small library, indexed, served on a free port; yields (base url, library folder)."""
    tmp = tmp_path_factory.mktemp("served")
    lib = (tmp / "lib").resolve()
    write(lib / "door_slam.wav", noise(1.5, SR, seed=1), SR)
    write(lib / "creak.flac", chirp(200, 900, 2.0, SR), SR, format="FLAC")
    write(lib / "beep.wav", tone(880, 3.0, SR), SR)
    build_index([lib], tmp / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp / "idx", model=FakeModel()) as index, serving(index) as url:
        yield url, lib


@contextlib.contextmanager
def serving(index: SoundIndex) -> Iterator[str]:
    """``index`` served on a free port in a thread, for the ``with`` block; yields the base url."""
    ready, stop, found = threading.Event(), threading.Event(), {}

    def started(server):
        found["url"] = server.url
        ready.set()
    thread = threading.Thread(target=serve, args=(index,), kwargs=dict(port=0, ready=started, stop=stop))
    thread.start()
    try:
        assert ready.wait(30)
        yield found["url"]
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def get(url: str, data: bytes | None = None) -> tuple[int, object, str]:
    """(status, JSON body or bytes, content type) of a GET, or a POST of ``data``."""
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            status, body, kind = r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        status, body, kind = e.code, e.read(), e.headers["Content-Type"]
    return status, (json.loads(body) if kind == "application/json" else body), kind


def test_search_with_filters_and_keywords(served):
    url, lib = served
    status, hits, _ = get(f"{url}/search?q={quote('a door slam')}&k=5")
    assert status == 200 and len(hits) == 3
    assert {h["path"] for h in hits} == {str(lib / n) for n in ("door_slam.wav", "creak.flac", "beep.wav")}
    assert set(hits[0]) >= {"path", "start", "end", "score", "file_id", "duration", "format"}
    _, flac, _ = get(f"{url}/search?q=creak&format=flac")
    assert [h["path"] for h in flac] == [str(lib / "creak.flac")]
    _, worded, _ = get(f"{url}/search?q=slam&keywords=1&k=1")
    assert worded[0]["path"] == str(lib / "door_slam.wav") and worded[0]["keywords"] > 0
    _, segments, _ = get(f"{url}/search?q=beep&segments=1&k=20&path_prefix={quote(str(lib / 'beep'))}")
    assert len(segments) > 1 and {h["path"] for h in segments} == {str(lib / "beep.wav")}


def test_more_like_a_file_or_a_clip_and_tags(served):
    url, lib = served
    status, hits, _ = get(f"{url}/similar?file={quote(str(lib / 'creak.flac'))}&k=2")
    assert status == 200 and hits[0]["path"] == str(lib / "creak.flac") and hits[0]["score"] == pytest.approx(1, abs=1e-4)
    _, by_id, _ = get(f"{url}/similar?file={hits[0]['file_id']}&k=2")
    assert by_id == hits
    clip = (lib / "door_slam.wav").read_bytes()
    status, posted, _ = get(f"{url}/similar?k=1", data=clip)
    assert status == 200 and posted[0]["path"] == str(lib / "door_slam.wav")
    _, part, _ = get(f"{url}/similar?file={hits[0]['file_id']}&k=2&start=0:00.5&end=0:01")   # m:ss, as hits show
    _, in_seconds, _ = get(f"{url}/similar?file={hits[0]['file_id']}&k=2&start=0.5&end=1")
    assert part == in_seconds and part[0]["path"] == str(lib / "creak.flac")
    beep = (lib / "beep.wav").read_bytes()        # a POSTed clip's part: its tone alone is the query
    _, whole, _ = get(f"{url}/similar?k=3", data=beep)
    _, first_second, _ = get(f"{url}/similar?k=3&start=0&end=1", data=beep)
    assert [h["path"] for h in first_second] == [h["path"] for h in whole]
    status, body, _ = get(f"{url}/similar?k=3&start=5", data=beep)           # the span is read, not ignored
    assert status == 400 and "error" in body
    status, tags, _ = get(f"{url}/tag?file={quote(str(lib / 'beep.wav'))}&labels=beep,dog,rain&top=2")
    assert status == 200 and len(tags) == 2 and {"label", "score", "cosine"} <= set(tags[0])
    assert {t["label"] for t in tags} <= {"beep", "dog", "rain"}
    status, clip_tags, _ = get(f"{url}/tag?labels=beep,dog,rain&top=3", data=(lib / "beep.wav").read_bytes())
    assert status == 200 and sorted(t["label"] for t in clip_tags) == ["beep", "dog", "rain"]


def test_files_audio_and_info(served):
    url, lib = served
    _, hits, _ = get(f"{url}/search?q=beep&k=3")
    beep = next(h for h in hits if h["path"].endswith("beep.wav"))
    status, record, _ = get(f"{url}/files/{beep['file_id']}")
    assert status == 200 and record["path"] == str(lib / "beep.wav") and record["duration"] == pytest.approx(3.0)
    status, wav, kind = get(f"{url}/audio/{beep['file_id']}?start=0.5&end=1.0")
    assert status == 200 and kind == "audio/wav"
    samples, rate = sf.read(io.BytesIO(wav))
    assert rate == SR and len(samples) == SR // 2
    _, whole, _ = get(f"{url}/audio/{beep['file_id']}")
    assert sf.info(io.BytesIO(whole)).duration == pytest.approx(3.0)
    status, info, _ = get(f"{url}/info")
    assert status == 200 and info["files"] == 3
    status, facets, _ = get(f"{url}/facets")
    assert status == 200 and facets["formats"] == ["FLAC", "WAV"] and facets["sample_rates"] == [SR]


def test_the_library_sheet(served):
    """GET /sheet: the CSV `soundsift sheet export` writes, filtered; with zero-shot tags on request."""
    import csv
    url, lib = served
    status, body, kind = get(f"{url}/sheet")
    assert status == 200 and kind == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert sorted(r["Pathname"] for r in rows) == sorted(str(lib / n) for n in ("door_slam.wav", "creak.flac", "beep.wav"))
    assert all(r["ZeroShotTags"] == "" for r in rows)
    _, body, _ = get(f"{url}/sheet?format=flac&zero_shot=2&labels=beep,dog,rain&min_score=0")
    (creak,) = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    assert creak["Filename"] == "creak.flac" and creak["Format"] == "FLAC"
    labels = creak["ZeroShotTags"].split(", ")
    assert len(labels) == 2 and set(labels) <= {"beep", "dog", "rain"}
    status, error, _ = get(f"{url}/sheet?zero_shot=x")
    assert status == 400 and "zero_shot must be a number" in error["error"]


def test_bad_requests_get_a_reason_and_a_status(served):
    url, lib = served
    cases = [
        ("/search", 400, "q (the text to search for) is missing"),
        ("/search?q=x&k=abc", 400, "k must be a number"),
        ("/search?q=x&k=0", 400, "k must be a number of at least 1"),
        ("/search?q=x&min_duration=-1", 400, "min_duration must be a number of at least 0"),
        ("/similar", 400, "file (an indexed path or file id) is missing"),
        (f"/similar?file={quote('/etc/passwd')}", 404, "/etc/passwd is not in index"),
        ("/files/999999", 404, "file id 999999 is not in index"),
        ("/files/abc", 404, "give a file id"),
        ("/nowhere", 404, "no route GET /nowhere; the routes are:"),
    ]
    for path, status, said in cases:
        got, body, _ = get(url + path)
        assert (got, said in body["error"]) == (status, True), (path, body)
    got, body, _ = get(f"{url}/similar", data=b"not audio at all")
    assert got == 400 and "not readable as audio (Format not recognised" in body["error"]
    assert "BytesIO" not in body["error"]
    got, body, _ = get(f"{url}/search?q=x", data=b"a body no route reads")      # POST /search: GET only
    assert got == 405 and "/search answers GET, not POST" in body["error"]
    for method, path, status in (("PUT", "/search?q=x", 405), ("DELETE", "/files/1", 405), ("PATCH", "/nowhere", 404)):
        request = urllib.request.Request(url + path, method=method, data=b"")
        try:
            urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as e:        # JSON, not http.server's 501 page
            assert (e.code, e.headers["Content-Type"]) == (status, "application/json")
            assert "error" in json.loads(e.read())
            if status == 405:
                assert e.headers["Allow"] in ("GET", "GET, POST")
        else:
            raise AssertionError(f"{method} {path} answered 2xx")
    import http.client                       # one connection: a refused body does not spoil the next request
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("POST", "/nowhere", body=b"x" * 1000)
    first = conn.getresponse()
    assert first.status == 404 and first.getheader("Connection") == "close"
    first.read()
    conn.close()
    _, hits, _ = get(f"{url}/search?q=beep&k=3")
    got, body, _ = get(f"{url}/audio/{hits[0]['file_id']}?start=1&end=0.5")
    assert got == 400 and "must come after start" in body["error"]
    duration = hits[0]["duration"]
    got, body, _ = get(f"{url}/audio/{hits[0]['file_id']}?start={duration + 1}")
    assert got == 400 and f"is past the end of the file ({duration:g} s)" in body["error"]
    got, body, _ = get(f"{url}/similar?file={hits[0]['file_id']}&start=soon")
    assert got == 400 and "start: 'soon' is not a time" in body["error"]
    got, body, _ = get(f"{url}/similar?file={hits[0]['file_id']}&start=1e309")     # inf, not a time
    assert got == 400 and "start: '1e309' is not a time" in body["error"]
    got, body, _ = get(f"{url}/audio/{hits[0]['file_id']}?start=0&end=3600")
    assert got == 400 and "longer than the 600 s /audio sends" in body["error"]


def test_concurrent_requests(served):
    url, _ = served
    queries = ["door", "creak", "beep", "rain", "slam", "chirp", "tone", "noise"] * 3
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda q: get(f"{url}/search?q={q}&k=3"), queries))
    assert all(status == 200 and len(hits) == 3 for status, hits, _ in answers)
    alone = {q: get(f"{url}/search?q={q}&k=3")[1] for q in set(queries)}
    assert all(hits == alone[q] for q, (_, hits, _) in zip(queries, answers))


def test_soundsift_serve_command(tmp_path, tiny_clap_dir):
    """The command: says where it listens, answers, and stops cleanly on SIGTERM."""
    import re
    import signal
    import subprocess
    import sys

    lib = tmp_path / "lib"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", str(tiny_clap_dir), workers=0, progress=False)
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--index", str(tmp_path / "idx"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        found = re.search(r"on (http://127\.0\.0\.1:\d+)/", line)
        assert found, line
        status, hits, _ = get(f"{found.group(1)}/search?q=dog&k=1")
        assert status == 200 and hits[0]["path"] == str((lib / "dog.wav").resolve())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "stopped serving" in err and "Traceback" not in err


def test_ids_that_are_not_numbers_sqlite_holds_and_nul_paths_are_not_found(served):
    """Unicode digits, an id past SQLite's integers and a path with a NUL byte were 500s."""
    url, _ = served
    for path in ("/files/99999999999999999999999", "/audio/99999999999999999999999", "/files/%C2%B2",
                 "/files/%D9%A3", "/similar?file=99999999999999999999999", "/tag?file=%C2%B2",
                 "/similar?file=%2Fetc%2Fpasswd%00.wav"):
        got, body, _ = get(url + path)
        assert got == 404 and "error" in body and "Error" not in body["error"], (path, body)


def test_copies_of_the_query_are_marked_over_http(tmp_path):
    """GET /similar?file= and a POSTed clip mark the results holding the query's very recording,
    as `soundsift similar --json` does."""
    lib = tmp_path / "lib"
    beep = write(lib / "beep.wav", tone(880, 2.0, SR), SR)
    write(lib / "beep_copy.flac", tone(880, 2.0, SR) * 0.5, SR, format="FLAC")     # 6 dB down, as FLAC
    write(lib / "other_beep.wav", tone(880, 2.0, SR) * (1 + noise(2.0, SR, seed=5)), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index, serving(index) as url:
        _, hits, _ = get(f"{url}/similar?file={quote(str(beep.resolve()))}&k=3")
        marks = {h["path"].rsplit("/", 1)[1]: h.get("same_recording") for h in hits}
        assert marks == {"beep.wav": True, "beep_copy.flac": True, "other_beep.wav": False}
        _, posted, _ = get(f"{url}/similar?k=3", data=beep.read_bytes())
        marks = {h["path"].rsplit("/", 1)[1]: h.get("same_recording") for h in posted}
        assert marks == {"beep.wav": True, "beep_copy.flac": True, "other_beep.wav": False}


def test_a_port_in_use_is_one_error_line(tmp_path, tiny_clap_dir):
    import socket

    from typer.testing import CliRunner

    from ui.cli import app

    lib = tmp_path / "lib"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", str(tiny_clap_dir), workers=0, progress=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--index", str(tmp_path / "idx"), "--port", str(port)])
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and f"error: cannot listen on 127.0.0.1:{port}" in said
    assert "Traceback" not in said


def test_unknown_paths_are_not_found(served):
    """Extra path segments were ignored (/info/xyz answered as /info): a 404 naming the path."""
    url, _ = served
    _, hits, _ = get(f"{url}/search?q=beep&k=1")
    fid = hits[0]["file_id"]
    for path in ("/info/xyz", "/facets/a/b", "/search/x?q=dog", "/sheet/x", "/similar/x?file=1", "/info;x",
                 f"/files/{fid}/extra", f"/audio/{fid}/x", f"/files/abc/{fid}"):
        got, body, kind = get(url + path)
        assert (got, kind) == (404, "application/json"), (path, body)
        assert f"no route GET {path.split('?')[0]}" in body["error"], (path, body)
    assert get(f"{url}/info/")[0] == get(f"{url}/files/{fid}/")[0] == 200      # a trailing slash is fine


def test_unknown_query_parameters_are_bad_requests(served):
    url, lib = served
    got, body, _ = get(f"{url}/search?q=dog&limt=5")
    assert got == 400 and "unknown parameter limt for GET /search" in body["error"]
    assert "q, k, keywords, not, not_weight, segments, all_copies, min_duration" in body["error"] and "tagged" in body["error"]
    got, body, _ = get(f"{url}/info?verbose=1&x=2")
    assert got == 400 and "unknown parameters verbose, x for GET /info; it takes none" in body["error"]
    got, body, _ = get(f"{url}/similar?k=1&file=1", data=(lib / "beep.wav").read_bytes())    # file: GET only
    assert got == 400 and "unknown parameter file for POST /similar" in body["error"]
    _, hits, _ = get(f"{url}/search?q=beep&k=1")
    fid = hits[0]["file_id"]
    filters = ("min_duration=0&max_duration=100&path_prefix=/&format=wav,flac&sample_rate=16k&category=DOORS"
               "&channels=mono&min_loudness=-100&max_loudness=10&tagged=x")
    accepted = [f"/search?q=dog&k=2&keywords=1&not=rain&{filters}", f"/search?q=dog&segments=1&{filters}",
                f"/similar?file={fid}&start=0&end=1&k=2&segments=1&{filters}", f"/tag?file={fid}&labels=a,b&top=1",
                f"/audio/{fid}?start=0&end=1", f"/files/{fid}", "/info", "/facets",
                f"/sheet?zero_shot=1&labels=a,b&min_score=0.5&{filters}"]
    for path in accepted:                       # every parameter a route reads is still taken
        got, body, _ = get(url + path)
        assert got == 200, (path, body)
    clip = (lib / "beep.wav").read_bytes()
    for path in (f"/similar?start=0&end=1&k=2&segments=1&{filters}", "/tag?labels=a,b&top=1"):
        got, body, _ = get(url + path, data=clip)
        assert got == 200, (path, body)


def test_filter_errors_name_the_query_parameter(served):
    url, _ = served
    for path, said in (("/search?q=x&sample_rate=fast", "sample_rate takes rates such as 48000"),
                       ("/sheet?sample_rate=-5", "sample_rate must be a rate above 0"),
                       ("/sheet?sample_rate=1e309", "sample_rate must be a rate above 0"),
                       ("/search?q=x&channels=many", "channels takes channel counts or names")):
        got, body, _ = get(url + path)
        assert got == 400 and body["error"].startswith(said) and "--" not in body["error"], (path, body)


def test_parameters_that_are_not_utf8_are_bad_requests(served):
    import socket
    url, _ = served
    for path, name in (("/search?q=%FF%FEdog", "q"), ("/tag?file=1&labels=%C3", "labels"),
                       ("/search?q=dog&path_prefix=%ED%A0%80", "path_prefix")):
        got, body, _ = get(url + path)
        assert got == 400 and f"{name} is not valid UTF-8" in body["error"], (path, body)
    assert get(f"{url}/search?q=caf%C3%A9&k=1")[0] == 200
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:      # raw bytes, not %-escaped
        sock.sendall(b"GET /search?q=\xff HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 400") and b"q is not valid UTF-8" in answer


def test_min_score_is_a_score_from_0_to_1(served):
    url, _ = served
    for value in ("2", "-0.1", "1.01"):
        got, body, _ = get(f"{url}/sheet?zero_shot=1&min_score={value}")
        assert got == 400 and f"min_score must be a number from 0 to 1, got '{value}'" in body["error"], body
    assert get(f"{url}/sheet?zero_shot=1&min_score=1")[0] == get(f"{url}/sheet?min_score=0")[0] == 200


def test_similar_reads_the_file_record_once(served, monkeypatch):
    url, lib = served
    calls = []
    get_file = SoundIndex.get_file
    monkeypatch.setattr(SoundIndex, "get_file", lambda self, file_id: calls.append(file_id) or get_file(self, file_id))
    _, hits, _ = get(f"{url}/similar?file={quote(str(lib / 'creak.flac'))}&k=2")
    assert len(calls) == 1
    _, by_id, _ = get(f"{url}/similar?file={hits[0]['file_id']}&k=2")
    assert by_id == hits and len(calls) == 2


# -- GET /audio streams the excerpt (a long span cost the span twice over in memory) -------------

def _unstamped(wav: bytes) -> bytes:
    """``wav`` without its PEAK chunk's timestamp (libsndfile writes the second it was made)."""
    at = wav.find(b"PEAK", 12)
    return wav if at < 0 else wav[:at + 12] + b"...." + wav[at + 16:]


def _audio_files(folder):
    """Generated files in the sample formats /audio sends: (path, WAV subtype it sends)."""
    import numpy as np
    rng = np.random.default_rng(7)
    made = []
    for name, channels, subtype, fmt in (("six_24bit.wav", 6, "PCM_24", "WAV"), ("float.wav", 2, "FLOAT", "WAV"),
                                         ("double.wav", 3, "DOUBLE", "WAV"), ("mono16.flac", 1, "PCM_16", "FLAC"),
                                         ("ulaw.wav", 1, "ULAW", "WAV"), ("u8.wav", 1, "PCM_U8", "WAV"),
                                         ("adpcm.wav", 1, "IMA_ADPCM", "WAV")):
        x = rng.uniform(-0.9, 0.9, (3 * SR + 1, channels))
        if subtype in ("FLOAT", "DOUBLE"):       # the same peak twice, blocks apart: the first is the PEAK's
            x[1000, 0] = x[30_000, 0] = -1.25
            x[20_000, 1] = 1.5
        made.append((write(folder / name, x, SR, subtype=subtype, format=fmt), subtype))
    return made


def test_an_excerpt_streams_the_bytes_it_was_made_of(tmp_path):
    """excerpt_stream gives, byte for byte, what excerpt_wav (fade=0, what /audio sent) makes:
    24-bit six channels, float (with its PEAK chunk), double, FLAC, µ-law, 8-bit, ADPCM (made whole);
    spans inside the file, at its start, reaching past its end, a single frame."""
    from engine.export import excerpt_stream, excerpt_wav
    for path, subtype in _audio_files(tmp_path):
        for start, end in ((0, 3.0001), (0.5, 1.25), (1.00007, 2.99993), (2.5, 10), (0, 0.0001), (2.99995, 4),
                           (1, 1.02)):
            want, cut_start, cut_end = excerpt_wav(path, start, end, fade=0.0)
            short = end - start < 0.05
            for block_bytes in (None, 1000, 7) if short else (None, 1000):   # blocks of many, a few, one frame
                with excerpt_stream(path, start, end, block_bytes=block_bytes) as stream:
                    got = b"".join(stream)
                assert _unstamped(got) == _unstamped(want), (path.name, start, end, block_bytes)
                assert (stream.length, stream.start, stream.end) == (len(want), cut_start, cut_end)
        assert sf.info(io.BytesIO(got)).subtype == subtype


def test_any_part_of_an_excerpt_is_those_bytes_of_it(tmp_path, monkeypatch):
    """ExcerptStream.part(first, last) gives bytes first–last of the whole excerpt, whatever the
    sample format (an odd data size's pad byte, a float's PEAK chunk, ADPCM made whole) and the
    source (an MP3 is read up to the part, not sought); a float part past the header measures no
    peaks; the same span streams the same bytes twice (the PEAK chunk's time is the file's)."""
    import numpy as np

    from engine import export
    made = _audio_files(tmp_path)
    rng = np.random.default_rng(11)
    t = np.arange(4 * SR) / SR
    for name, fmt, subtype in (("tone.mp3", "MP3", "MPEG_LAYER_III"), ("tone.ogg", "OGG", "VORBIS")):
        made.append((write(tmp_path / name, 0.5 * np.sin(2 * np.pi * 440 * t), SR, format=fmt, subtype=subtype),
                     "PCM_16"))
    made.append((write(tmp_path / "odd24.wav", rng.uniform(-0.5, 0.5, (SR + 1, 1)), SR, subtype="PCM_24"), "PCM_24"))
    for path, _ in made:
        with export.excerpt_stream(path, 0.5, 2.75, block_bytes=4000) as stream:
            whole = b"".join(stream)
        with export.excerpt_stream(path, 0.5, 2.75, block_bytes=4000) as stream:
            assert b"".join(stream) == whole, path.name
        assert len(whole) == stream.length
        head = stream.header_length or 0
        cuts = [(0, len(whole) - 1), (0, 3), (max(0, head - 1), head + 2), (head, head), (len(whole) - 1, len(whole) - 1),
                (head + 4001, head + 12_345)] + [tuple(sorted(rng.integers(0, len(whole), 2))) for _ in range(5)]
        for first, last in cuts:
            with export.excerpt_stream(path, 0.5, 2.75, block_bytes=4000) as stream, \
                    stream.part(first, last) as part:
                assert part.length == last - first + 1
                assert b"".join(part) == whole[first:last + 1], (path.name, first, last)
        with pytest.raises(ValueError, match="not a part"):
            export.excerpt_stream(path, 0.5, 2.75).part(len(whole) - 1, len(whole))
    float_path = made[1][0]
    with export.excerpt_stream(float_path, 0, 3) as stream:
        whole = b"".join(stream)
    monkeypatch.setattr(export, "_peaks", lambda *a: pytest.fail("peaks measured for a part without the header"))
    with export.excerpt_stream(float_path, 0, 3) as stream, stream.part(stream.header_length, stream.length - 1) as part:
        assert b"".join(part) == whole[stream.header_length:]


def test_an_excerpt_is_read_a_block_at_a_time(tmp_path, monkeypatch):
    """Memory stays bounded whatever the span: the header comes before any audio is read past the
    first block, and no read asks for more than a block (1 MB of float32 samples) — a 10 s span
    of 48 kHz six-channel audio is read in 1 MB pieces, never at once."""
    import numpy as np

    from engine import export
    rate, channels = 48_000, 6
    path = write(tmp_path / "long.wav", np.zeros((10 * rate, channels), np.float32), rate, subtype="PCM_24")
    reads = []
    read = sf.SoundFile.read
    monkeypatch.setattr(sf.SoundFile, "read",
                        lambda self, frames=-1, **kw: reads.append(frames) or read(self, frames, **kw))
    monkeypatch.setattr(export, "excerpt_wav", lambda *a, **kw: pytest.fail("the excerpt was made whole"))
    block = export.STREAM_BLOCK_BYTES // (channels * 4)
    with export.excerpt_stream(path, 0.5, 9.5) as stream:
        chunks = iter(stream)
        header = next(chunks)
        assert len(header) < 1000 and reads == [block]
        sizes = [len(c) for c in chunks]
    assert stream.length == len(header) + sum(sizes) == len(header) + 9 * rate * channels * 3
    assert len(reads) == -(-9 * rate // block) and max(reads) == block and sum(reads) == 9 * rate
    assert max(sizes) == block * channels * 3
    reads.clear()                         # a float excerpt reads its first block (is there audio?), then the
    path = write(tmp_path / "long_float.wav", np.zeros((10 * rate, 2), np.float32), rate, subtype="FLOAT")
    with export.excerpt_stream(path, 0, 10, block_bytes=64 * 1024) as stream:      # span twice (peaks first)
        for _ in stream:
            pass
    block = 64 * 1024 // (2 * 4)
    assert max(reads) == block and sum(reads) == block + 2 * 10 * rate


def test_audio_sends_the_bytes_it_sent_before(served):
    """GET /audio is excerpt_wav's output (fade=0) byte for byte, with its length up front."""
    from engine.export import excerpt_wav
    url, lib = served
    _, hits, _ = get(f"{url}/search?q=x&k=3")
    for hit in hits:
        for query, (start, end) in (("", (0, 600)), ("?start=0.5&end=1.25", (0.5, 1.25)),
                                    ("?start=1", (1, 601)), ("?start=0:01.25&end=10", (1.25, 10))):
            request = urllib.request.Request(f"{url}/audio/{hit['file_id']}{query}")
            with urllib.request.urlopen(request, timeout=60) as r:
                body, length = r.read(), int(r.headers["Content-Length"])
            want = excerpt_wav(hit["path"], start, end, fade=0.0)[0]
            assert (_unstamped(body), length) == (_unstamped(want), len(want)), (hit["path"], query)


@pytest.fixture(scope="module")
def served_long(tmp_path_factory):
    """A library of one 30 s recording, 48 kHz, six channels, 24-bit (26 MB as WAV), served;
    yields (base url, its file id)."""
    import numpy as np
    tmp = tmp_path_factory.mktemp("served_long")
    rate = 48_000
    t = np.arange(30 * rate) / rate
    wave = (0.3 * np.sin(2 * np.pi * 220 * t)[:, None] * np.linspace(0.2, 1, 6)).astype(np.float32)
    write(tmp / "lib" / "long.wav", wave, rate, subtype="PCM_24")
    build_index([tmp / "lib"], tmp / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp / "idx", model=FakeModel()) as index, serving(index) as url:
        _, hits, _ = get(f"{url}/search?q=x&k=1")
        yield url, hits[0]["file_id"]


def test_a_client_hanging_up_mid_audio_is_a_debug_line(served_long, caplog):
    """A player that stops listening: the server notes it at debug level, no traceback, and goes on."""
    import logging
    import socket
    import time
    url, file_id = served_long
    caplog.set_level(logging.DEBUG, logger="ui.server")
    host, port = url.removeprefix("http://").split(":")
    for linger in (False, True):            # a FIN (broken pipe), then a reset
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            if linger:
                import struct
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.sendall(f"GET /audio/{file_id}?start=0 HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 30
        while sum("the client went away" in r.getMessage() for r in caplog.records) <= linger:
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            time.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    status, wav, _ = get(f"{url}/audio/{file_id}?start=29&end=29.5")
    assert status == 200 and sf.info(io.BytesIO(wav)).frames == 24_000


def test_a_silent_client_is_dropped(served_long, monkeypatch, caplog):
    """A connection that sends nothing, or stops reading a streamed preview, is closed after the
    handler's timeout (120 s; 0.5 s here), so it does not hold a thread and a file for ever."""
    import logging
    import socket
    import time

    from ui.server import CLIENT_TIMEOUT_SECONDS, SoundsiftHandler
    url, file_id = served_long
    assert SoundsiftHandler.timeout == CLIENT_TIMEOUT_SECONDS == 120.0
    monkeypatch.setattr(SoundsiftHandler, "timeout", 0.5)
    caplog.set_level(logging.DEBUG, logger="ui.server")
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        assert sock.recv(1) == b""                    # nothing asked: the server hangs up
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"GET /audio/{file_id}?start=0 HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 200")
        got = 64
        deadline = time.monotonic() + 30              # stop reading until the server gives up
        while not any("the client went away" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            time.sleep(0.05)
        while chunk := sock.recv(1 << 20):            # then what the buffers held, up to the close
            got += len(chunk)
    assert got < 26_000_000                           # cut short: the 30 s preview is 26 MB
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_audio_that_fails_mid_stream_is_cut_short(served_long, monkeypatch, caplog):
    """The status is out when a read fails: the answer stops short of its length, the connection
    closes, and the server says why in a warning."""
    import http.client
    import logging
    reads = []
    read = sf.SoundFile.read

    def failing(self, frames=-1, **kw):
        reads.append(frames)
        if len(reads) > 3:
            raise RuntimeError("Error in WAV file: the disk went away")
        return read(self, frames, **kw)
    monkeypatch.setattr(sf.SoundFile, "read", failing)
    url, file_id = served_long
    with pytest.raises(http.client.IncompleteRead):
        with urllib.request.urlopen(f"{url}/audio/{file_id}?start=0", timeout=60) as r:
            assert r.status == 200
            r.read()
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("the answer was cut short" in m and "the disk went away" in m for m in said), said


# -- GET /audio answers a Range (a player seeking in a preview it has not fully loaded) ----------

def test_byte_ranges_follow_rfc_9110():
    from ui.byte_ranges import ByteRange, Unsatisfiable, requested_range
    total = 1000
    assert requested_range(None, total) is None
    assert requested_range("bytes=0-499", total) == ByteRange(0, 499, total)
    assert requested_range("bytes=500-", total) == ByteRange(500, 999, total)
    assert requested_range("bytes=-200", total) == ByteRange(800, 999, total)
    assert requested_range("bytes=-5000", total) == ByteRange(0, 999, total)       # a suffix longer than all
    assert requested_range("bytes=990-5000", total) == ByteRange(990, 999, total)  # a last byte past the end
    assert requested_range(" Bytes = 7 - 7 ", total).length == 1
    assert requested_range("bytes=999-999", total).content_range() == "bytes 999-999/1000"
    for ignored in ("bytes=0-1,5-6", "items=0-5", "bytes=5-1", "bytes=-", "bytes=a-b", "0-5", ""):
        assert requested_range(ignored, total) is None, ignored
    for outside in ("bytes=1000-", "bytes=1000-2000", "bytes=-0"):
        with pytest.raises(Unsatisfiable, match="outside the 1000 bytes"):
            requested_range(outside, total)


def _ranged(url: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_audio_sends_the_part_a_range_asks_for(served, tmp_path):
    """Every part of a preview a Range asks for is those bytes of the whole (206, Content-Range);
    a range past the end is 416; If-Range with a stale ETag gets the whole excerpt again."""
    import numpy as np
    url, lib = served
    _, hits, _ = get(f"{url}/search?q=x&k=3")
    for hit in hits:
        preview = f"{url}/audio/{hit['file_id']}?start=0.25&end=1.5"
        status, whole, headers = _ranged(preview, {})
        assert status == 200 and headers["Accept-Ranges"] == "bytes"
        tag, total = headers["ETag"], len(whole)
        rng = np.random.default_rng(hit["file_id"])
        cuts = [(0, 0), (0, 43), (44, 45), (45, 10_000), (total - 1, total - 1), (total - 3, total + 50)]
        cuts += [tuple(sorted(rng.integers(0, total, 2))) for _ in range(6)]
        for first, last in cuts:
            status, part, headers = _ranged(preview, {"Range": f"bytes={first}-{last}"})
            last = min(last, total - 1)
            assert status == 206, (hit["path"], first, last)
            assert headers["Content-Range"] == f"bytes {first}-{last}/{total}"
            assert int(headers["Content-Length"]) == len(part) == last - first + 1
            assert _unstamped(whole[:first] + part + whole[last + 1:]) == _unstamped(whole), (hit["path"], first, last)
            assert headers["ETag"] == tag
        status, tail, headers = _ranged(preview, {"Range": "bytes=-100"})
        assert status == 206 and tail == whole[-100:]
        status, body, headers = _ranged(preview, {"Range": f"bytes={total}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{total}"
        assert "outside the" in json.loads(body)["error"]
        status, again, _ = _ranged(preview, {"Range": "bytes=10-20", "If-Range": tag})
        assert status == 206 and again == whole[10:21]
        status, fresh, _ = _ranged(preview, {"Range": "bytes=10-20", "If-Range": '"stale"'})
        assert status == 200 and _unstamped(fresh) == _unstamped(whole)
        status, several, _ = _ranged(preview, {"Range": "bytes=0-1,5-6"})        # not served: the whole
        assert status == 200 and len(several) == total


def test_a_range_deep_in_a_long_preview_reads_from_there(served_long, monkeypatch):
    """Seeking near the end of a 30 s six-channel preview reads the audio from there, not from
    its start: the part's reads add up to about the part."""
    from engine.export import STREAM_BLOCK_BYTES
    url, file_id = served_long
    reads = []
    read = sf.SoundFile.read
    monkeypatch.setattr(sf.SoundFile, "read",
                        lambda self, frames=-1, **kw: reads.append(frames) or read(self, frames, **kw))
    preview = f"{url}/audio/{file_id}?start=0&end=30"
    status, _, headers = _ranged(preview, {"Range": "bytes=0-99"})
    total = int(headers["Content-Range"].rsplit("/", 1)[1])
    assert status == 206 and total > 25_000_000
    reads.clear()
    status, part, headers = _ranged(preview, {"Range": f"bytes={total - 288_000}-"})     # the last second
    assert status == 206 and len(part) == 288_000
    block = STREAM_BLOCK_BYTES // (6 * 4)                          # frames read at a time (as float32)
    assert reads and sum(reads) <= 2 * block + 48_000              # the first block (is there audio?), then
                                                                   # from the block holding the part: not 30 s
    status, whole, _ = _ranged(preview, {})
    assert whole[-288_000:] == part

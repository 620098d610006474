"""What session 35's audit of `soundsift serve` left (tests/test_http_audit35.py did the rest): a
list parameter that lists nothing, ``missing`` on ``/files/ID``, ``Retry-After`` on the 503 of an
unreadable index, the URL printed for ``--host 0.0.0.0``, ``/audio``'s ETag for an end past the
file's, percent-decoded route paths, and a span shorter than one sample."""
from __future__ import annotations

import json
import shutil
import socket

import pytest

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_server import get, serving
from tests.test_server_audit import _answers, _exchange

SR = 16_000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A 2 s beep, a hiss and a file deleted since it was indexed, served; yields (base url,
    library folder, {name: file id})."""
    tmp = tmp_path_factory.mktemp("leftovers35")
    lib = (tmp / "lib").resolve()
    write(lib / "beep.wav", tone(880, 2.0, SR), SR)
    write(lib / "hiss.wav", noise(1.0, SR, seed=3), SR)
    write(lib / "gone.wav", tone(330, 1.0, SR), SR)
    build_index([lib], tmp / "idx", FakeModel(), workers=0, progress=False)
    (lib / "gone.wav").unlink()
    with SoundIndex.open(tmp / "idx", model=FakeModel()) as index, serving(index) as url:
        _, hits, _ = get(f"{url}/search?q=beep&k=3")
        yield url, lib, {h["path"].rsplit("/", 1)[-1]: h["file_id"] for h in hits}


def _head(url: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of ``GET target``, sent as raw bytes (the path as given, not
    re-quoted by a client library)."""
    (answer,) = _answers(_exchange(url, f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()))
    return answer


def test_labels_listing_nothing_is_a_bad_request(served):
    """``/tag?labels=,,,`` tagged with the default vocabulary, as if no labels were given."""
    url, lib, ids = served
    beep = ids["beep.wav"]
    for listed in (",,,", "%20,%20", '""'):
        got, body, _ = get(f"{url}/tag?file={beep}&labels={listed}")
        assert got == 400 and body["error"].startswith("labels="), (listed, body)
    got, body, _ = get(f"{url}/tag?labels=,&k=1", data=(lib / "beep.wav").read_bytes())
    assert got == 400 and "labels" in body["error"], body
    got, body, _ = get(f"{url}/search?q=beep&format=,")          # a filter's list too
    assert got == 400 and "format" in body["error"], body
    got, tags, _ = get(f"{url}/tag?file={beep}&k=3")            # no labels: the vocabulary, as before
    assert got == 200 and len(tags) == 3
    assert get(f"{url}/tag?file={beep}&labels=")[0] == 200      # empty, as any parameter: not given


def test_a_file_deleted_since_indexing_is_marked_missing_in_its_record(served):
    """Hits of a deleted file carry ``missing: true``; its ``/files/ID`` record said nothing."""
    url, _, ids = served
    _, hits, _ = get(f"{url}/search?q=beep&k=3")
    hit = next(h for h in hits if h["path"].endswith("gone.wav"))
    got, record, _ = get(f"{url}/files/{ids['gone.wav']}")
    assert got == 200 and record["missing"] is True and hit["missing"] is True
    got, record, _ = get(f"{url}/files/{ids['beep.wav']}")
    assert got == 200 and "missing" not in record          # as a hit on disk: the key is left out


def test_an_unreadable_index_is_a_503_with_retry_after(tmp_path):
    """The 503 for connections over the limit says when to retry; the one for an index that
    cannot be read (deleted, being moved) did not."""
    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(880, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index, serving(index) as url:
        assert _head(url, "/info")[0] == 200
        shutil.rmtree(tmp_path / "idx")
        got, headers, body = _head(url, "/info")
    assert got == 503 and "is gone" in json.loads(body)["error"], body
    assert headers.get("retry-after", "").isdigit(), headers


def test_listening_on_all_interfaces_prints_an_address_a_browser_opens(tmp_path, monkeypatch):
    """``--host 0.0.0.0`` printed ``http://0.0.0.0:8765/``, which browsers do not open (Chrome
    and Safari refuse it): now this machine's loopback address, saying it listens on all."""
    from typer.testing import CliRunner

    import ui.server
    from ui.cli import app

    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(880, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    monkeypatch.setattr("engine.query.SoundIndex.model", property(lambda self: FakeModel()))
    urls = []

    def listen_once(index, host, port, ready, **_):
        """serve(): listen, say so (``ready``), and stop at once."""
        server = ui.server.SoundsiftServer(index, host, 0)
        try:
            ready(server)
            urls.append(server.url)
        finally:
            server.server_close()
        return 0
    monkeypatch.setattr(ui.server, "serve", listen_once)
    result = CliRunner().invoke(app, ["serve", "--index", str(tmp_path / "idx"), "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert urls[0].startswith("http://127.0.0.1:") and f"on {urls[0]}/" in said, said
    assert "//0.0.0.0" not in said and "listening on all interfaces" in said, said


def test_the_url_of_a_wildcard_address_is_loopback(tmp_path):
    """SoundsiftServer.url (what `serve`'s ``ready`` gets) for ``0.0.0.0`` and ``::``."""
    from ui.server import SoundsiftServer

    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(880, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    hosts = {"0.0.0.0": "http://127.0.0.1:", "127.0.0.1": "http://127.0.0.1:"}
    if socket.has_ipv6:
        hosts["::"] = "http://[::1]:"
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        for host, url in hosts.items():
            try:
                server = SoundsiftServer(index, host, 0)
            except OSError:             # no IPv6 here
                assert host == "::"
                continue
            server.server_close()
            assert server.url.startswith(url) and server.all_interfaces == (host != "127.0.0.1"), (host, server.url)


def test_the_etag_of_a_preview_follows_the_span_served(served):
    """``end=10`` on a 2 s file serves the same bytes as ``end=2`` (and no end) but had another
    ETag, so a browser downloaded them again; the name said ``_0.0-10.0s.wav`` too."""
    url, _, ids = served
    beep = ids["beep.wav"]
    answers = [_head(url, f"/audio/{beep}?end={end}") for end in ("10", "2")] + [_head(url, f"/audio/{beep}")]
    assert [a[0] for a in answers] == [200, 200, 200]
    assert answers[0][2] == answers[1][2] == answers[2][2]
    assert answers[0][1]["etag"] == answers[1][1]["etag"] == answers[2][1]["etag"]
    assert "_0.0-2.0s.wav" in answers[0][1]["content-disposition"], answers[0][1]
    shorter = _head(url, f"/audio/{beep}?end=1")
    assert shorter[0] == 200 and shorter[1]["etag"] != answers[0][1]["etag"]


def test_route_paths_are_percent_decoded_once(served):
    """``/%69nfo`` was a 404 while ``/files/%31`` was file 1: the id was decoded, the route not.
    Now the path is decoded once, as a whole: ``%2531`` is ``%31``, not a file id."""
    url, _, ids = served
    got, _, body = _head(url, "/%69nfo")
    assert got == 200 and "files" in json.loads(body), body
    beep = ids["beep.wav"]
    escaped = "".join(f"%{ord(c):02X}" for c in str(beep))
    got, _, body = _head(url, f"/%66iles/{escaped}")
    assert got == 200 and json.loads(body)["path"].endswith("beep.wav"), body
    got, _, body = _head(url, f"/files/%25{ord(str(beep)[0]):02X}")
    assert got == 404 and "give a file id" in json.loads(body)["error"], body


def test_a_span_shorter_than_one_sample_says_so(served):
    """``start=1&end=1.00001`` (0.16 of a sample at 16 kHz) was "not inside the file (2.00 s
    long); re-index it if it changed", as if the file had changed."""
    url, _, ids = served
    got, _, body = _head(url, f"/audio/{ids['beep.wav']}?start=1&end=1.00001")
    error = json.loads(body)["error"]
    assert got == 400 and "shorter than one sample" in error and "re-index" not in error, error
    assert _head(url, f"/audio/{ids['beep.wav']}?start=1&end=1.0001")[0] == 200     # 1.6 samples: one


def test_export_of_a_span_past_the_end_still_says_the_file_changed(tmp_path):
    """engine.export: a span wholly past the end (the file was cut since it was indexed) is still
    told to re-index, however short; one under a sample inside it is told it is too short."""
    from engine.errors import UnreadableAudio
    from engine.export import excerpt_wav

    path = write(tmp_path / "beep.wav", tone(880, 1.0, SR), SR)
    with pytest.raises(UnreadableAudio, match="re-index"):
        excerpt_wav(path, 5.0, 5.00001)
    with pytest.raises(UnreadableAudio, match="shorter than one sample"):
        excerpt_wav(path, 0.5, 0.50001)

"""`soundsift serve`'s ``GET /sheet`` stops its catalog read where its client hung up (session 38),
end to end over HTTP: engine.sheet_export.library_rows reads the files a batch of
engine.sheet_export.SQL_CHUNK at a time with an engine.zeroshot.between_batches checkpoint
before each (session 37; tests/test_sheet_read_checkpoint39.py tests it at library_rows only).
Here a client hangs up while the server is between two batches of that read: the rest of the
catalog is not read, no file is tagged and no sheet is written, and the server answers the next
request whole."""
from __future__ import annotations

import http.client
import logging
import socket
import threading

import pytest

import engine.sheet_export
from engine.query import SoundIndex
from tests.index_fakes import FakeModel
from tests.test_http_checkpoints39 import FILES, library, sheets_written  # noqa: F401 (fixtures)
from tests.test_http_hangup39 import PATIENCE, _all_ended, _no_tracebacks, _said, serving
from tests.test_server_audit import _address
from ui.http_handler import SoundsiftHandler

pytestmark = pytest.mark.usefixtures("private_cache")      # label embeddings cached in the test's folder

#: files per batch of the catalog read here: the library's 6 files are 3 batches
CHUNK = 2
READ = "before its next batch of files read from the catalog"


class CountingModel(FakeModel):
    """FakeModel that counts the label texts it embeds (a sheet's zero-shot column)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed_text(self, texts):
        self.texts += list(texts)
        return super().embed_text(texts)


@pytest.mark.parametrize("query", ["/sheet", "/sheet?zero_shot=2&labels=read-a,read-b"])
def test_a_sheet_stops_its_catalog_read_at_its_next_batch_once_the_client_hangs_up(
        library, monkeypatch, caplog, sheets_written, query):
    """Held at the second batch of the catalog read (one batch read) while the client hangs up:
    the read stops there, before the third batch and before the files' metadata and tags, the
    labels and the CSV. Were the read not checked between its batches, the hang-up would be seen
    only at a later stage, which this test fails on (the work is released there unheld)."""
    caplog.set_level(logging.DEBUG, logger="ui.server")
    monkeypatch.setattr(engine.sheet_export, "SQL_CHUNK", CHUNK)
    stages, held, gone = [], threading.Event(), threading.Event()
    checkpoint = SoundsiftHandler.checkpoint

    def holding(handler, stage="before its next batch of segments"):
        stages.append(stage)
        if stage == READ and stages.count(READ) == 2:
            held.set()                  # one batch read: the client hangs up now
            assert gone.wait(PATIENCE)
        elif stage != "before it began" and stage != READ:
            held.set()                  # past the catalog read unheld: no hang-up during it
        return checkpoint(handler, stage)
    monkeypatch.setattr(SoundsiftHandler, "checkpoint", holding)
    model = CountingModel()
    with SoundIndex.open(library, model=model) as index, serving(index) as (url, server):
        sock = socket.create_connection(_address(url), timeout=PATIENCE)
        sock.sendall(f"GET {query} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        assert held.wait(PATIENCE)
        sock.close()
        gone.set()
        _all_ended(server)
        assert stages == ["before it began", READ, READ], stages
        assert sheets_written == [] and model.texts == []
        assert _said(caplog, f"hung up before its answer; its work stopped {READ}")
        _no_tracebacks(caplog)

        # the server goes on: the same sheet, whole, for a client that waits
        monkeypatch.setattr(SoundsiftHandler, "checkpoint", checkpoint)
        conn = http.client.HTTPConnection(*_address(url), timeout=PATIENCE)
        conn.request("GET", query + ("&min_score=0" if "zero_shot" in query else ""))
        answer = conn.getresponse()
        lines = answer.read().decode("utf-8-sig").splitlines()
        conn.close()
    assert answer.status == 200 and len(lines) == 1 + FILES
    assert sheets_written == [FILES]
    if "zero_shot" in query:
        assert all("read-a" in line or "read-b" in line for line in lines[1:])

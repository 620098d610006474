"""`soundsift serve`'s checkpoints in long single-step work (helper 149): ``/sheet?zero_shot=N``
zero-shot tags every file the filters keep (1.8 s of its 3.3 s on 40,000 files; a million files
take a minute), with no checkpoint in it: a client that hung up had its sheet tagged and written
all the same, and ``--request-timeout`` never stopped it. It now stops before each batch of
vectors tagged (engine.zeroshot.TAG_ROWS), of label texts embedded, and before the CSV is written."""
from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
from collections import OrderedDict

import numpy as np
import pytest

import engine.sheet_export
from engine import zeroshot
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from tests.test_http_hangup39 import PATIENCE, _all_ended, _no_tracebacks, _said, serving
from tests.test_server_audit import _address
from ui.http_handler import SoundsiftHandler

pytestmark = pytest.mark.usefixtures("private_cache")      # label embeddings cached in the test's folder

SR = 16_000
FILES = 6
#: rows tagged at once here (engine.zeroshot.TAG_ROWS): the sheet's 6 files are 3 batches
ROWS = 2


class SlowTextModel(FakeModel):
    """FakeModel whose label texts take longer to embed than the request_timeout below."""

    def embed_text(self, texts):
        import time
        time.sleep(0.5)
        return super().embed_text(texts)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Six tones indexed by FakeModel."""
    tmp = tmp_path_factory.mktemp("checkpoints")
    for i in range(FILES):
        write(tmp / "lib" / f"tone{i}.wav", tone(220 * (i + 1), 0.5, SR), SR)
    build_index([tmp / "lib"], tmp / "idx", FakeModel(), workers=0, progress=False)
    return tmp / "idx"


@pytest.fixture
def sheets_written(monkeypatch):
    """The sheets the server wrote as CSV (engine.sheet_export.sheet_bytes), counted."""
    written = []
    sheet_bytes = engine.sheet_export.sheet_bytes

    def counted(rows, suffix=".csv"):
        written.append(len(rows))
        return sheet_bytes(rows, suffix)
    monkeypatch.setattr(engine.sheet_export, "sheet_bytes", counted)
    return written


def test_a_sheets_zero_shot_tagging_stops_at_its_next_batch_once_the_client_hangs_up(
        library, monkeypatch, caplog, sheets_written):
    """The zero-shot column went on to the last file, and the sheet was written, for a client
    that had gone; the tagging stops before its next batch of vectors now (here the second of
    three: one batch done), and nothing is written."""
    caplog.set_level(logging.DEBUG, logger="ui.server")
    monkeypatch.setattr(zeroshot, "TAG_ROWS", ROWS, raising=False)
    stages, held, gone = [], threading.Event(), threading.Event()
    checkpoint = SoundsiftHandler.checkpoint

    def holding(handler, stage="before its next batch of segments"):
        stages.append(stage)
        if stage.endswith("vectors to tag") and stages.count(stage) == 2:
            held.set()                  # one batch tagged: the client hangs up now
            assert gone.wait(PATIENCE)
        return checkpoint(handler, stage)
    monkeypatch.setattr(SoundsiftHandler, "checkpoint", holding)
    sheet_bytes = engine.sheet_export.sheet_bytes
    monkeypatch.setattr(engine.sheet_export, "sheet_bytes",       # (the work came to its end unheld)
                        lambda rows, suffix=".csv": held.set() or sheet_bytes(rows, suffix))
    with SoundIndex.open(library, model=FakeModel()) as index, serving(index) as (url, server):
        sock = socket.create_connection(_address(url), timeout=PATIENCE)
        sock.sendall(b"GET /sheet?zero_shot=2&labels=hang-a,hang-b,hang-c HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert held.wait(PATIENCE)
        sock.close()
        gone.set()
        _all_ended(server)
    assert sheets_written == [], "the sheet was tagged and written for a client that had hung up"
    assert [s for s in stages if s.endswith("vectors to tag")] == ["before its next batch of vectors to tag"] * 2
    assert _said(caplog, "hung up before its answer; its work stopped before its next batch of vectors to tag")
    _no_tracebacks(caplog)


def test_a_sheets_zero_shot_tagging_past_the_request_timeout_is_a_503(library, monkeypatch, caplog, sheets_written):
    """--request-timeout did not stop /sheet?zero_shot=N: it ran to its end and answered 200.
    Past the limit (here: the labels took longer to embed) it stops at its next checkpoint with
    a 503 in JSON saying why and what to ask instead, and the connection goes on."""
    caplog.set_level(logging.DEBUG, logger="ui.server")
    monkeypatch.setattr(zeroshot, "_label_cache", OrderedDict())     # the labels are embedded, slowly
    with SoundIndex.open(library, model=SlowTextModel()) as index, \
            serving(index, request_timeout=0.2) as (url, _):
        conn = http.client.HTTPConnection(*_address(url), timeout=PATIENCE)
        conn.request("GET", "/sheet?zero_shot=2&labels=slow-a,slow-b")
        answer = conn.getresponse()
        body = answer.read()
        assert (answer.status, answer.getheader("Content-Type")) == (503, "application/json"), body[:200]
        said = json.loads(body)["error"]
        assert "--request-timeout" in said and "0.2 s" in said, said
        assert "was stopped before" in said and "or without zero_shot" in said, said   # (here, at its tagging)
        assert answer.getheader("Retry-After") is None
        conn.request("GET", "/info")                    # the same connection goes on
        assert conn.getresponse().status == 200
        conn.close()
    assert sheets_written == []
    _no_tracebacks(caplog)


def test_a_sheet_without_a_time_limit_is_whole(library, monkeypatch, sheets_written):
    """The checkpoints change nothing for a client that waits: every file, each with its tags."""
    monkeypatch.setattr(zeroshot, "TAG_ROWS", ROWS, raising=False)
    with SoundIndex.open(library, model=FakeModel()) as index, serving(index, request_timeout=0) as (url, _):
        conn = http.client.HTTPConnection(*_address(url), timeout=PATIENCE)
        conn.request("GET", "/sheet?zero_shot=1&labels=whole-a&min_score=0")
        answer = conn.getresponse()
        lines = answer.read().decode("utf-8-sig").splitlines()
        conn.close()
    assert answer.status == 200
    assert len(lines) == 1 + FILES and all("whole-a" in line for line in lines[1:])
    assert sheets_written == [FILES]


def test_tag_many_scores_in_batches_with_a_checkpoint_before_each(monkeypatch):
    """tag_many scored all rows in one step (and held n × labels float64 arrays three times over);
    it scores TAG_ROWS at a time, the check called before each batch, with the same tags."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, FakeModel.dim)).astype(np.float32)
    model, labels = FakeModel(), ["batch-a", "batch-b", "batch-c"]
    whole = zeroshot.tag_many(model, vectors, labels, top=2, min_score=0.2)
    monkeypatch.setattr(zeroshot, "TAG_ROWS", 3, raising=False)
    stages = []
    with zeroshot.checking_between_batches(stages.append):
        batched = zeroshot.tag_many(model, vectors, labels, top=2, min_score=0.2)
    assert batched == whole
    assert stages == ["before its next batch of vectors to tag"] * 3         # rows 0-2, 3-5, 6


def test_text_embedding_stops_at_its_next_batch():
    """Many label texts (a vocabulary of hundreds, not cached yet) were embedded in one step:
    a check raising stops them before the next batch of TEXT_BATCH."""
    class Stop(Exception):
        pass

    class Counting(FakeModel):
        batches = 0

        def embed_text(self, texts):
            self.batches += 1
            return super().embed_text(texts)

    def stop_after_first(stage: str) -> None:
        if model.batches:
            raise Stop(stage)
    model = Counting()
    with zeroshot.checking_between_batches(stop_after_first), pytest.raises(Stop, match="batch of texts"):
        zeroshot.text_vectors(model, [f"text {i}" for i in range(2 * zeroshot.TEXT_BATCH + 1)])
    assert model.batches == 1

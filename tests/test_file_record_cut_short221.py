"""A file cut short says so in its hits (``header_duration``, session 42), but its record from
``SoundIndex.get_file`` — the HTTP API's ``GET /files/ID`` — left it out (the catalog row is one of
the indexer's keys, which the record's ``metadata`` hides), so a client that looked the file up
read a 1.3 s file with nothing to say it was meant to be 4 s. The record now carries it too."""
from __future__ import annotations

import json

import pytest

from engine.query import SoundIndex
from tests.index_fakes import FakeModel
from tests.test_cut_short_hits215 import cut_index  # noqa: F401  (the fixture: cut.wav cut to a third, whole.wav)

pytestmark = pytest.mark.usefixtures("private_cache")


def file_ids(index: SoundIndex) -> dict[str, int]:
    vectors = index.file_vectors()
    return {path.rsplit("/", 1)[1]: int(fid) for path, fid in zip(vectors.paths, vectors.file_ids)}


def test_the_file_record_of_a_cut_short_file_says_what_its_header_says(cut_index):  # noqa: F811
    with SoundIndex.open(cut_index, model=FakeModel()) as index:
        ids = file_ids(index)
        cut, whole = index.get_file(ids["cut.wav"]), index.get_file(ids["whole.wav"])
    assert cut["duration"] == pytest.approx(4.0 / 3, abs=0.01)
    assert cut["header_duration"] == 4.0
    assert "header_duration" not in whole
    assert "header_duration" not in cut["metadata"]          # an indexer's row, not what the file says


def test_get_files_id_over_http_says_a_file_is_cut_short(cut_index):  # noqa: F811
    from tests.test_serve_api_extras import ask, serving
    with SoundIndex.open(cut_index, model=FakeModel()) as index, serving(index) as address:
        ids = file_ids(index)
        status, _, body = ask(address, "GET", f"/files/{ids['cut.wav']}")
        assert status == 200, body
        whole_status, _, whole_body = ask(address, "GET", f"/files/{ids['whole.wav']}")
    assert json.loads(body)["header_duration"] == 4.0
    assert whole_status == 200 and "header_duration" not in json.loads(whole_body)

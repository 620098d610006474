"""A result card on one section of a longer file (the page, streamlit AppTest on the tiny-CLAP UI
library): its tags were the whole file's alone, read as describing the match (a dog bark at 2:10 of a
street ambience badged "traffic, wind"). Now the section's own tags come first, labelled "this
section:", as ``soundsift tag FILE --timeline --index`` tags that segment, and the file's after them,
labelled "whole file:", as ``soundsift tag FILE --index`` tags it; a card on a whole file keeps its
tags unlabelled. A file the indexer found cut short says so on its card."""
from __future__ import annotations

import re
import shutil
import sqlite3

import numpy as np
import pytest

from engine.errors import InvalidQuery
from tests.test_ui import no_exception, result_names
from tests.ui_library import UiLibrary, page_on


def labels(markdown: str, colour: str) -> list[str]:
    """The labels of a line's badges of ``colour``, in order."""
    return re.findall(rf":{colour}-badge\[([^\]]*)\]", markdown)


def test_a_section_match_shows_that_sections_tags_beside_the_whole_files(ui_library: UiLibrary,  # noqa: F811
                                                                        monkeypatch):
    from engine.query import SoundIndex
    from engine.tagging import tag_files, tag_timeline

    app = page_on(ui_library.index_dir, monkeypatch)
    app.query_params["q"] = "thunder"
    app.run()
    no_exception(app)
    names = result_names(app)
    assert len(names) == 5
    # thunder_far.wav is 12 s (segments 0–10 and 2–12 s): its match is a section; the others are whole
    match = [c.value for c in app.caption if "match " in c.value][names.index("thunder_far.wav")]
    start, end = (float(t) for t in re.search(r"match (\d+\.\d)–(\d+\.\d) s", match).groups())
    assert end - start == 10.0
    lines = [md.value for md in app.markdown]
    section = [m for m in lines if m.startswith("this section: ")]
    whole = [m for m in lines if m.startswith("whole file: ")]
    assert len(section) == len(whole) == 1
    plain = [m for m in lines if m.startswith(":blue-badge[")]        # the four whole files' cards
    assert len(plain) == 4 and all(len(labels(m, "blue")) == 3 for m in plain)

    thunder = ui_library.path("thunder_far.wav")
    with SoundIndex.open(ui_library.index_dir) as index:
        spans, from_index = tag_timeline(thunder, index=index, top=3)
        files, _ = tag_files([thunder], index=index, top=3)
        segments, vectors = index.file_segments(thunder)        # the vectors the timeline tags
        assert all(np.array_equal(index.segment_vector(h.segment_id), v) for h, v in zip(segments, vectors))
        with pytest.raises(InvalidQuery, match="not in this index"):
            index.segment_vector(max(h.segment_id for h in segments) + 10_000)
    assert from_index and files[0].from_index
    matched = next(s for s in spans if (round(s.start, 1), round(s.end, 1)) == (start, end))
    assert labels(section[0], "blue") == [t["label"] for t in matched.tags]
    assert labels(whole[0], "gray") == [t["label"] for t in files[0].tags]
    assert not labels(whole[0], "blue")


def test_a_file_indexed_cut_short_says_so_on_its_card(ui_library: UiLibrary, tmp_path, monkeypatch):  # noqa: F811
    """The indexer records the duration a cut file's header says (tests/test_cut_short_hits215.py);
    here that row is written into a copy of the index, as it would be for thunder_far.wav cut short."""
    index_dir = tmp_path / "index"              # a copy: the shared index stays as built
    shutil.copytree(ui_library.index_dir, index_dir)
    conn = sqlite3.connect(index_dir / "catalog.db")
    try:
        with conn:
            (fid,) = conn.execute("SELECT id FROM files WHERE path LIKE '%thunder_far.wav'").fetchone()
            conn.execute("INSERT INTO file_metadata (file_id, key, value) VALUES (?, 'header_duration', '75.00')",
                         (fid,))
    finally:
        conn.close()
    app = page_on(index_dir, monkeypatch)
    app.query_params["q"] = "thunder"
    app.run()
    no_exception(app)
    assert len(result_names(app)) == 5
    cut = [c.value for c in app.caption if "cut short" in c.value]
    assert cut == [":material/content_cut: cut short: holds 12.0 s of the 1:15.00 its header says "
                   "(an interrupted copy or download?)"]

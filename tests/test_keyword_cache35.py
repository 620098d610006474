"""The keyword index kept beside the index (engine.query_keywords, IndexLayout.keyword_cache):
a keyword search in a new process reads it back instead of building it from the catalog, and
whatever changes the words (a user tag, a caption, a new generation) or the file itself (cut
short, written for another state) makes it rebuilt, never searched stale."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from sqlalchemy import select

import engine.query_keywords as query_keywords
from engine.catalog import Caption, File
from engine.keywords import KeywordIndex
from engine.layout import IndexLayout
from engine.query import SoundIndex
from indexer.user_tags import add_tags
from query_fixtures import FakeModel, FileSpec, write_index
from tests.conftest import catalog_session

pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)

DIM = 16


def _files(model: FakeModel, odd_name: str = "/lib/misc/brass_band_take.wav") -> list[FileSpec]:
    files = [FileSpec(f"/lib/tones/t{i}.wav", model.band_vector(3 + (i % 2))) for i in range(6)]
    return [*files, FileSpec(odd_name, model.band_vector(12)), FileSpec("/lib/misc/x17.wav", model.band_vector(14))]


@pytest.fixture
def index_root(tmp_path):
    model = FakeModel(DIM)
    write_index(tmp_path / "idx", _files(model), dim=DIM)
    return tmp_path / "idx", model


@pytest.fixture
def builds(monkeypatch):
    """Counts the KeywordIndex builds (each still builds)."""
    calls = []
    build = KeywordIndex.build.__func__

    def counting(cls, docs):
        calls.append(1)
        return build(cls, docs)
    monkeypatch.setattr(KeywordIndex, "build", classmethod(counting))
    return calls


def _search(root, model, text: str, k: int = 3):
    """(path, BM25) of the keyword search's hits for ``text`` in a SoundIndex of its own (as a
    new process opens one)."""
    with SoundIndex.open(root, model=model) as index:
        return [(h.path, round(h.keywords, 9)) for h in index.search_text(text, k=k, keywords=True)]


def test_a_new_sound_index_reads_the_kept_keyword_index_back(index_root, builds):
    root, model = index_root
    first = _search(root, model, "brass band")
    assert first[0][0] == "/lib/misc/brass_band_take.wav" and first[0][1] > 0
    assert _search(root, model, "brass band") == first
    assert _search(root, model, "tones") and len(builds) == 1        # no process built it again
    assert IndexLayout(root).keyword_cache.is_file()
    assert IndexLayout(root).foreign_entries() == []                # soundsift's own file (a rebuild may replace it)


def test_a_user_tag_added_later_is_found(index_root, builds):
    root, model = index_root
    assert all(kw == 0 for _, kw in _search(root, model, "marimba", k=8))
    add_tags(root, ["/lib/misc/x17.wav"], ["marimba"])
    hits = _search(root, model, "marimba")
    assert hits[0][0] == "/lib/misc/x17.wav" and hits[0][1] > 0 and len(builds) == 2
    assert _search(root, model, "marimba") == hits and len(builds) == 2      # kept again


def test_a_caption_added_later_is_found(index_root):
    root, model = index_root
    assert all(kw == 0 for _, kw in _search(root, model, "gravel footsteps", k=8))
    with catalog_session(root, write=True) as s:
        fid = s.scalar(select(File.id).where(File.path == "/lib/misc/x17.wav"))
        s.add(Caption(file_id=fid, text="footsteps on gravel", source="test"))
    hits = _search(root, model, "gravel footsteps")
    assert hits[0][0] == "/lib/misc/x17.wav" and hits[0][1] > 0


def test_a_new_generation_is_searched_by_its_own_names(index_root):
    root, model = index_root
    assert _search(root, model, "brass band")[0][1] > 0
    write_index(root, _files(model, "/lib/misc/violin_solo.wav"), dim=DIM, generation=2)
    assert all(path != "/lib/misc/brass_band_take.wav" and kw == 0 for path, kw in _search(root, model, "brass band"))
    hits = _search(root, model, "violin")
    assert hits[0] == ("/lib/misc/violin_solo.wav", hits[0][1]) and hits[0][1] > 0


def _cut_short(cache):            # a full disk, a crash mid-copy
    cache.write_bytes(cache.read_bytes()[:200])


def _one_array(cache):
    with cache.open("wb") as fh:
        np.save(fh, np.arange(3))


@pytest.mark.parametrize("spoil", [_cut_short, _one_array, lambda cache: cache.write_bytes(b"hello")])
def test_an_unreadable_kept_index_is_built_again_and_said(index_root, builds, caplog, spoil):
    root, model = index_root
    first = _search(root, model, "brass band")
    cache = IndexLayout(root).keyword_cache
    spoil(cache)
    with caplog.at_level(logging.WARNING, logger="engine.query"):
        assert _search(root, model, "brass band") == first
    assert len(builds) == 2 and str(cache) in caplog.text and "cannot be read" in caplog.text
    assert _search(root, model, "brass band") == first and len(builds) == 2     # written whole again


def test_one_kept_for_another_state_is_not_used(index_root, builds):
    """A file kept for another state (as another index's, copied over) is rebuilt, not searched."""
    root, model = index_root
    cache = IndexLayout(root).keyword_cache
    with cache.open("wb") as fh:
        KeywordIndex.build([(1, "/lib/tones/violin")]).save(fh, "another state")
    hits = _search(root, model, "brass band")
    assert hits[0] == ("/lib/misc/brass_band_take.wav", hits[0][1]) and hits[0][1] > 0
    assert not any(kw > 0 for path, kw in _search(root, model, "violin", k=8))


def test_a_folder_that_refuses_it_still_searches(index_root, builds, monkeypatch):
    root, model = index_root
    monkeypatch.setattr(query_keywords, "folder_writable", lambda folder: False)
    assert _search(root, model, "brass band")[0][0] == "/lib/misc/brass_band_take.wav"
    assert not IndexLayout(root).keyword_cache.exists() and list(root.glob("keywords*")) == []


@pytest.mark.parametrize("docs", [[], [(3, "DOORSLAM_Wood_01"), (5, "Door_Slam_02 gunshot"), (5, "木のドア"), (9, "x")]])
def test_save_and_load_give_the_same_index(tmp_path, docs):
    built = KeywordIndex.build(docs)
    path = tmp_path / "k.npz"
    with path.open("wb") as fh:
        built.save(fh, "key")
    back = KeywordIndex.load(path, "key")
    assert KeywordIndex.load(path, "other") is None
    assert back.known == built.known and back.postings.keys() == built.postings.keys()
    np.testing.assert_array_equal(back.file_ids, built.file_ids)
    np.testing.assert_array_equal(back.lengths, built.lengths)
    for query in ("door slam", "doorslam", "ドア", "gun shot", "wood"):
        for a, b in zip(back.scores(query), built.scores(query)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(back.containing_all(query), built.containing_all(query))


def test_paths_read_as_folder_and_name_give_the_words_of_the_whole_path(tmp_path):
    """build_keyword_index splits each folder once (a library repeats it in every file's path):
    the same postings as the whole paths', composed and CJK words included."""
    paths = ["/Volumes/Bibliothe\u0300que/Cafe\u0301Bar/DOORSLAM_Wood_01.wav", "/lib/木のドア/雷雨_02.flac",
             "/ＤＯＯＲ/ﾄﾞｱ/Straße.wav", "/lib/ＤＯＯＲSlam/KickDrum808.aif", "/Cafe\u0301Bar/x.wav"]
    model = FakeModel(DIM)
    write_index(tmp_path / "idx", [FileSpec(p, model.band_vector(3)) for p in paths], dim=DIM)
    with catalog_session(tmp_path / "idx") as s:
        split = query_keywords.build_keyword_index(s.connection())
        ids = dict(s.connection().exec_driver_sql("SELECT path, id FROM files").fetchall())
    whole = KeywordIndex.build([(ids[p], p.rsplit(".", 1)[0]) for p in paths])
    assert split.postings.keys() == whole.postings.keys() and {"café", "ドア", "door", "doorslam"} <= split.postings.keys()
    np.testing.assert_array_equal(split.lengths, whole.lengths)
    for stem, (rows, counts) in whole.postings.items():
        np.testing.assert_array_equal(split.postings[stem][0], rows)
        np.testing.assert_array_equal(split.postings[stem][1], counts)

"""Keyword search fused with the sound match (engine.keywords; SoundIndex.search_text(keywords=True)):
words from names, BM25 against its formula written out, reciprocal rank fusion, and the fused
search on an index — a file found by its name alone, filters, tags and captions added later."""
from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import select

from engine.catalog import Caption, File
from engine.errors import InvalidQuery
from engine.filters import Filters
from engine.keywords import B, K1, KeywordIndex, fuse, words
from engine.query import SoundIndex
from query_fixtures import FakeModel, FileSpec, write_index
from tests.conftest import catalog_session


pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


def test_words_split_names_as_libraries_write_them():
    assert words("Foley/Footsteps/GravelRun_02.take3") == ["foley", "footstep", "gravel", "run", "take3"]
    assert words("DOOR_Wood_SLAM-close 01") == ["door", "wood", "slam", "close"]
    assert words("This is a sound of dogs barking.") == ["dog", "bark"]      # stop words, stems
    assert words("Tür knallt, 雷") == ["tür", "knallt", "雷"]                  # any script
    assert words("a 1 22 x") == []
    assert words("TR-808 Kick 01, 440 Hz") == ["tr", "808", "kick", "440", "hz"]   # numbers that name things


def test_bm25_scores_equal_the_formula():
    docs = {1: "dog bark dog", 2: "dog", 3: "cat meow loud long name here", 4: "rain"}
    index = KeywordIndex.build(docs.items())
    ids, scores = index.scores("dogs barking")
    bags = {f: words(t) for f, t in docs.items()}
    avg = np.mean([len(b) for b in bags.values()])
    expect = {}
    for f, bag in bags.items():
        s = 0.0
        for w in ("dog", "bark"):
            n = sum(w in b for b in bags.values())
            tf = bag.count(w)
            idf = math.log(1 + (len(bags) - n + 0.5) / (n + 0.5))
            s += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(bag) / avg))
        if s > 0:
            expect[f] = s
    assert ids.tolist() == sorted(expect, key=lambda f: -expect[f])
    np.testing.assert_allclose(scores, [expect[f] for f in ids.tolist()])
    assert index.scores("dog", allowed=np.array([2, 4]))[0].tolist() == [2]
    assert index.scores("thunder")[0].size == 0


def test_reciprocal_rank_fusion():
    # 3 is 3rd and 1st: 1/63 + 1/61 beats 1 (1/61 alone); 2 and 4 tie at 1/62: 2 appeared first
    assert fuse([1, 2, 3], [3, 4]) == [3, 1, 2, 4]
    assert fuse([5, 6], []) == [5, 6]


DIM = 16


@pytest.fixture
def named_index(tmp_path):
    """Eight files: six near band 3 with plain names, one far from it whose name says "band",
    one far from it that a caption will describe later."""
    model = FakeModel(DIM)
    files = [FileSpec(f"/lib/tones/t{i}.wav", model.band_vector(3 + (i % 2))) for i in range(6)]
    files.append(FileSpec("/lib/misc/brass_band_take.wav", model.band_vector(12)))
    files.append(FileSpec("/lib/misc/x17.wav", model.band_vector(14)))
    write_index(tmp_path / "idx", files, dim=DIM)
    with SoundIndex.open(tmp_path / "idx", model=model) as index:
        yield index, model, tmp_path / "idx"


def test_a_file_found_by_its_name_alone_ranks_up(named_index):
    index, model, _ = named_index
    plain = index.search_text("band 3", k=3)
    assert "/lib/misc/brass_band_take.wav" not in [h.path for h in plain]
    fused = index.search_text("band 3", k=3, keywords=True)
    # every file of this small index is in the sound's pool, so the named one adds 1/61 to its
    # sound term (1/(60 + 7)) and comes first; then the best sound match
    assert [h.path for h in fused][:2] == ["/lib/misc/brass_band_take.wav", plain[0].path]
    named = fused[0]
    assert named.keywords > 0 and all(h.keywords == 0.0 for h in fused if h is not named)
    # its score stays its own cosine with the query
    assert named.score == pytest.approx(float(model.band_vector(12) @ model.band_vector(3)), abs=1e-5)
    assert named.to_dict()["keywords"] == named.keywords and "keywords" not in plain[0].to_dict()


def test_keyword_search_keeps_to_the_filters_and_ranks_files(named_index):
    index, _, _ = named_index
    fused = index.search_text("band 3", k=8, keywords=True, filters=Filters(path_prefix="/lib/tones"))
    assert fused and all(h.path.startswith("/lib/tones/") for h in fused)
    with pytest.raises(InvalidQuery, match="ranks files"):
        index.search_text("band 3", keywords=True, per_file=False)


def test_captions_stored_later_are_searched_without_a_new_generation(named_index):
    index, _, root = named_index
    assert all(h.keywords == 0.0 for h in index.search_text("gravel footsteps", k=8, keywords=True))
    with catalog_session(root, write=True) as s:
        fid = s.scalar(select(File.id).where(File.path == "/lib/misc/x17.wav"))
        s.add(Caption(file_id=fid, text="footsteps on gravel", source="test"))
    hits = index.search_text("gravel footsteps", k=3, keywords=True)
    assert hits[0].path == "/lib/misc/x17.wav" and hits[0].keywords > 0


def test_files_holding_every_word_of_an_excluded_text_leave_the_keyword_side(named_index):
    """Weight 0 leaves the sound side as it is, so only the keyword side can change."""
    index, _, _ = named_index
    plain = [h.path for h in index.search_text("band 3", k=8)]
    fused = index.search_text("band 3", k=8, keywords=True, exclude=["Brass bands"], exclude_weight=0.0)
    assert [h.path for h in fused] == plain and all(h.keywords == 0.0 for h in fused)
    partly = index.search_text("band 3", k=3, keywords=True, exclude=["brass trumpet"], exclude_weight=0.0)
    assert partly[0].path == "/lib/misc/brass_band_take.wav" and partly[0].keywords > 0


def test_files_containing_all_words():
    kw = KeywordIndex.build([(1, "/lib/Brass_Band_Take.wav"), (2, "/lib/brass/solo.wav"), (3, "rain on a roof")])
    assert kw.containing_all("brass band").tolist() == [1]
    assert sorted(kw.containing_all("brass").tolist()) == [1, 2]
    assert kw.containing_all("brass trumpet").tolist() == [] and kw.containing_all("the a").tolist() == []

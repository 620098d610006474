"""Search lands on a marker written without separators ("DOORSLAM", "GATELATCH") as it does on
one spelled out: the query's words and the marker's are matched as keyword search matches them
(engine.keywords.terms_with_parts)."""
from engine.keywords import terms_with_parts
from engine.query import SoundIndex
from indexer import build_index
from tests.index_fakes import FakeModel
from tests.test_file_metadata import (adtl_chunk, cue_chunk, noise, pcm16, wav_bytes,
                                      with_trailing_chunk)


def test_terms_with_parts_splits_compounds_and_joins_query_words():
    assert {"door", "slam"} <= terms_with_parts("DOORSLAM_01")
    assert "gatelatch" in terms_with_parts("the gate latch", join=True)
    assert "gatelatch" not in terms_with_parts("the gate latch")
    assert terms_with_parts("therapist") == {"therapist"}          # no junk split


def test_a_compound_marker_is_found_by_its_words_and_a_query_compound_by_its_parts(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    take = lib / "take_401.wav"
    chunks = (cue_chunk((1, 8_000), (2, 24_000), (3, 56_000))
              + adtl_chunk((b"labl", 1, "DOORSLAM"), (b"labl", 2, "Wind gust"), (b"labl", 3, "GATELATCH")))
    take.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(4.0, 16000, seed=5))), chunks))
    build_index([lib], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        latch = index.search_text("gate latch", k=3, keywords=True)[0]
        assert (latch.marker, latch.marker_at) == ("GATELATCH", 3.5)
        slam = index.search_text("door slam", k=3, keywords=True)[0]
        assert (slam.marker, slam.marker_at) == ("DOORSLAM", 0.5)
        assert index.search_text("slam", k=3, keywords=True)[0].marker == "DOORSLAM"    # one part is enough
        assert index.search_text("wind gust", k=3, keywords=True)[0].marker == "Wind gust"

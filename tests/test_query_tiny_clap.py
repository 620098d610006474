"""The query layer on an index built by the real indexer with the tiny random CLAP model."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import catalog_session, chirp, noise, tone, write
from engine.errors import ModelMismatch
from engine.filters import Filters
from engine.models import load_model
from engine.query import SoundIndex


pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


@pytest.fixture(scope="module")
def clap_library(tmp_path_factory, tiny_clap_dir):  # noqa: F811
    """Eight files in mixed formats and rates (one 24 s file → several segments), indexed."""
    from indexer import build_index

    lib = tmp_path_factory.mktemp("lib")
    write(lib / "animals" / "low.wav", tone(220, 2.0, 48000), 48000)
    write(lib / "animals" / "high.flac", tone(3000, 1.5, 44100), 44100)
    write(lib / "water" / "hiss.wav", noise(3.0, 16000, seed=1), 16000)
    write(lib / "water" / "rumble.ogg", noise(2.0, 22050, seed=2, amp=0.1), 22050)
    write(lib / "tools" / "sweep.wav", chirp(100, 8000, 4.0, 32000), 32000)
    write(lib / "tools" / "stereo.wav", np.stack([tone(500, 1.0, 48000), tone(700, 1.0, 48000)], 1), 48000)
    write(lib / "tools" / "beep.aiff", tone(1000, 0.3, 8000), 8000)
    long = np.concatenate([tone(300, 8.0, 16000), noise(8.0, 16000, seed=3), chirp(200, 4000, 8.0, 16000)])
    write(lib / "long.wav", long, 16000)
    index_dir = tmp_path_factory.mktemp("idx") / "clap"
    summary = build_index([lib], index=index_dir, model=str(tiny_clap_dir), workers=0, progress=False)
    assert summary.added == 8 and summary.failed == 0
    return lib, index_dir


@pytest.fixture(scope="module")
def clap_index(clap_library, tiny_clap_dir):  # noqa: F811
    with SoundIndex.open(clap_library[1], model=load_model(str(tiny_clap_dir))) as index:
        yield index


def stored(index: SoundIndex) -> tuple[dict[int, str], np.ndarray, np.ndarray]:
    """file id → path, and every (file id, vector) the index holds, read around the query layer."""
    import faiss
    from sqlalchemy import select

    from engine.catalog import File, SegmentRow
    from engine.vectors import read_index
    with catalog_session(index.layout.root) as s:
        paths = dict(s.execute(select(File.id, File.path)).all())
        seg_file = dict(s.execute(select(SegmentRow.id, SegmentRow.file_id)).all())
    fx = read_index(index.root / index.info()["vectors_file"], mmap=False)
    ids = faiss.vector_to_array(fx.id_map)
    vecs = np.stack([fx.reconstruct(int(i)) for i in ids])
    return paths, np.array([seg_file[int(i)] for i in ids]), vecs


def truth_per_file(paths, fids, vecs, q, keep=lambda p: True):
    scores = vecs @ q
    best: dict[str, float] = {}
    for fid, s in zip(fids, scores):
        p = paths[int(fid)]
        if keep(p):
            best[p] = max(best.get(p, -9.0), float(s))
    return sorted(best.items(), key=lambda kv: -kv[1])


@pytest.mark.parametrize("text", ["dog barking", "rain and thunder", "a high pitch beep"])
def test_search_text_matches_brute_force(clap_index, text):
    paths, fids, vecs = stored(clap_index)
    q = clap_index.model.embed_text([text])[0]
    hits = clap_index.search_text(text, k=5)
    truth = truth_per_file(paths, fids, vecs, q)[:5]
    assert [h.path for h in hits] == [p for p, _ in truth]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in truth], atol=1e-5)
    segments = clap_index.search_text(text, k=len(vecs), per_file=False)
    assert len(segments) == len(vecs) == clap_index.info()["segments"]
    np.testing.assert_allclose([h.score for h in segments], np.sort(vecs @ q)[::-1], atol=1e-5)


def test_filters_match_brute_force(clap_index, clap_library):
    lib = clap_library[0]
    paths, fids, vecs = stored(clap_index)
    q = clap_index.model.embed_text(["water"])[0]
    prefix = str(lib / "tools")
    for filters, keep in [
        (Filters(path_prefix=prefix), lambda p: p.startswith(prefix)),
        (Filters(formats=["wav"]), lambda p: p.endswith(".wav")),
        (Filters(min_duration=2.5), lambda p: p.endswith(("hiss.wav", "sweep.wav", "long.wav"))),
        (Filters(sample_rates=[48000, 8000]), lambda p: p.endswith(("low.wav", "stereo.wav", "beep.aiff"))),
        (Filters(channels=[2]), lambda p: p.endswith("stereo.wav")),
        (Filters(channels=(1,), formats=["wav"]), lambda p: p.endswith(".wav") and not p.endswith("stereo.wav")),
    ]:
        hits = clap_index.search_text("water", k=8, filters=filters)
        truth = truth_per_file(paths, fids, vecs, q, keep)
        assert [h.path for h in hits] == [p for p, _ in truth], filters


def test_long_file_has_segments_and_best_one_is_reported(clap_index, clap_library):
    long_path = str(clap_library[0] / "long.wav")
    rec = clap_index.get_file(clap_index.file_id_for_path(long_path))
    assert len(rec["segments"]) >= 3 and rec["duration"] == pytest.approx(24.0)
    seg_hits = [h for h in clap_index.search_text("sweep", k=100, per_file=False) if h.path == long_path]
    file_hit = next(h for h in clap_index.search_text("sweep", k=8) if h.path == long_path)
    assert (file_hit.start, file_hit.end, file_hit.score) == pytest.approx(
        (seg_hits[0].start, seg_hits[0].end, seg_hits[0].score))


def test_similar_on_indexed_file_returns_it_first(clap_index, clap_library):
    for name in ["animals/low.wav", "long.wav", "tools/beep.aiff"]:
        path = str(clap_library[0] / name)
        hits = clap_index.similar_to_file(path, k=3)
        assert hits[0].path == path and hits[0].score >= 0.999


def test_search_audio_of_a_short_indexed_file_finds_it(clap_index, clap_library):
    path = clap_library[0] / "water" / "hiss.wav"
    hits = clap_index.search_audio(path, k=2)
    assert hits[0].path == str(path) and hits[0].score >= 0.999


def test_tag_and_rank_texts_use_the_model(clap_index, clap_library):
    path = clap_library[0] / "animals" / "high.flac"
    vec = clap_index.audio_vector(path)
    labels = ["dog", "rain", "siren", "piano", "engine"]
    cos = clap_index.model.embed_text([f"This is a sound of {label}." for label in labels]) @ vec
    tags = clap_index.tag(path, labels=labels, top=5)
    assert [t["label"] for t in tags] == [labels[i] for i in np.argsort(-cos)]
    np.testing.assert_allclose([t["cosine"] for t in tags], np.sort(cos)[::-1], atol=1e-5)
    assert sum(t["score"] for t in tags) == pytest.approx(1.0)
    ranked = clap_index.rank_texts(path, labels)
    assert [t for t, _ in ranked] == [labels[i] for i in np.argsort(-(clap_index.model.embed_text(labels) @ vec))]
    default = clap_index.tag(path, top=3)
    assert len(default) == 3 and all(t["label"] for t in default)


def test_default_model_is_the_one_that_built_the_index(clap_library, tiny_clap_dir):  # noqa: F811
    with SoundIndex.open(clap_library[1]) as index:   # model name read from the catalog
        assert index.info()["model"] == str(tiny_clap_dir.resolve())
        assert index.search_text("dog", k=1)[0].score > -1.0
        assert index.model.fingerprint == index.info()["fingerprint"]


def test_opening_with_another_model_is_a_mismatch(clap_library, tiny_fused_clap_dir):  # noqa: F811
    with pytest.raises(ModelMismatch, match="built with model"):
        SoundIndex.open(clap_library[1], model=str(tiny_fused_clap_dir))


def test_search_sees_files_added_by_a_later_run(tmp_path, tiny_clap_dir):  # noqa: F811
    from indexer import build_index
    lib = tmp_path / "lib"
    write(lib / "a.wav", tone(440, 1.0, 48000), 48000)
    build_index([lib], index=tmp_path / "i", model=str(tiny_clap_dir), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "i") as index:
        assert [h.path for h in index.search_text("beep", k=5)] == [str(lib / "a.wav")]
        write(lib / "b.wav", noise(1.0, 48000), 48000)
        build_index([lib], index=tmp_path / "i", progress=False, workers=0)
        assert {h.path for h in index.search_text("beep", k=5)} == {str(lib / "a.wav"), str(lib / "b.wav")}
        (lib / "a.wav").unlink()
        build_index([lib], index=tmp_path / "i", progress=False, workers=0)
        assert [h.path for h in index.search_text("beep", k=5)] == [str(lib / "b.wav")]

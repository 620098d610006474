"""The query layer against brute force, on indexes whose every vector the test chose."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import tone, write
from engine.errors import IndexNotFound, InvalidQuery, ModelMismatch
from engine.query import Filters, SoundIndex
from query_fixtures import FakeModel, FileSpec, write_index

DIM = 16
FORMATS = ["WAV", "FLAC", "OGG", "MP3"]
RATES = [8000, 16000, 44100, 48000]


pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


def random_library(seed: int = 0, n_files: int = 40) -> list[FileSpec]:
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n_files):
        n_seg = int(rng.integers(1, 6))
        folder = "animals" if i % 3 == 0 else ("water" if i % 3 == 1 else "tools")
        files.append(FileSpec(path=f"/lib/{folder}/f{i:03d}.{FORMATS[i % 4].lower()}",
                              vectors=rng.standard_normal((n_seg, DIM)),
                              duration=0.5 + n_seg * 0.5, format=FORMATS[i % 4],
                              sample_rate=RATES[(i // 4) % 4]))
    return files


def unit(x: np.ndarray) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, np.float64))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(files: list[FileSpec], q: np.ndarray, k: int, per_file: bool,
                keep=lambda f: True) -> list[tuple[str, float, int]]:
    """(path, score, segment index within the file) of the true top-k."""
    rows = []
    for f in files:
        if not keep(f):
            continue
        scores = unit(f.vectors) @ np.asarray(q, np.float64).reshape(-1)
        if per_file:
            j = int(np.argmax(scores))
            rows.append((f.path, float(scores[j]), j))
        else:
            rows.extend((f.path, float(s), j) for j, s in enumerate(scores))
    rows.sort(key=lambda r: -r[1])
    return rows[:k]


@pytest.fixture
def library(tmp_path):
    files = random_library()
    write_index(tmp_path / "idx", files, dim=DIM, errors=[("/lib/bad.wav", "not readable as audio")])
    model = FakeModel(DIM)
    with SoundIndex.open(tmp_path / "idx", model=model) as index:
        yield index, files, model


@pytest.mark.parametrize("per_file", [True, False])
@pytest.mark.parametrize("k", [1, 5, 17, 100])
def test_search_text_is_exact_top_k(library, per_file, k):
    index, files, model = library
    for text in ["dog barking", "rain on a tin roof", "x"]:
        q = model.embed_text([text])[0]
        hits = index.search_text(text, k=k, per_file=per_file)
        truth = brute_force(files, q, k, per_file)
        assert [h.path for h in hits] == [t[0] for t in truth]
        np.testing.assert_allclose([h.score for h in hits], [t[1] for t in truth], atol=1e-5)


def test_per_file_reports_best_segment_span(library):
    index, files, model = library
    q = model.embed_text(["a query"])[0]
    by_path = {f.path: f for f in files}
    hits = index.search_text("a query", k=10)
    assert len({h.file_id for h in hits}) == len(hits) == 10
    for h in hits:
        f = by_path[h.path]
        j = int(np.argmax(unit(f.vectors) @ q))
        assert (h.start, h.end) == pytest.approx((j * 0.5, min(f.duration, j * 0.5 + 1.0)))
        assert h.folder == h.path.rsplit("/", 1)[0]
        assert h.duration == pytest.approx(f.duration)
        assert h.format == f.format and h.sample_rate == f.sample_rate
        d = h.to_dict()
        assert {"path", "start", "end", "score", "file_id", "segment_id"} <= d.keys()


def test_all_segments_mode_returns_several_segments_of_one_file(tmp_path):
    v = unit(np.eye(DIM)[:3])
    files = [FileSpec("/a.wav", np.vstack([v[0], v[0] * 0.9 + v[1] * 0.1, v[2]]), duration=2.0),
             FileSpec("/b.wav", v[0] + v[1])]
    write_index(tmp_path / "i", files, dim=DIM)
    with SoundIndex.open(tmp_path / "i", model=FakeModel(DIM)) as index:
        segs = index.search_vectors(v[0], k=3, per_file=False)
        assert [h.path for h in segs] == ["/a.wav", "/a.wav", "/b.wav"]
        assert segs[0].score == pytest.approx(1.0, abs=1e-6)
        assert len({h.segment_id for h in segs}) == 3
        per_file = index.search_vectors(v[0], k=3)
        assert [h.path for h in per_file] == ["/a.wav", "/b.wav"]   # only two files exist


FILTERS = [
    (Filters(min_duration=1.5), lambda f: f.duration >= 1.5),
    (Filters(max_duration=1.0), lambda f: f.duration <= 1.0),
    (Filters(min_duration=1.0, max_duration=2.0), lambda f: 1.0 <= f.duration <= 2.0),
    (Filters(path_prefix="/lib/water/"), lambda f: f.path.startswith("/lib/water/")),
    (Filters(formats=("flac", ".mp3")), lambda f: f.format in ("FLAC", "MP3")),
    (Filters(formats=["Wav"]), lambda f: f.format == "WAV"),
    (Filters(sample_rates=[44100]), lambda f: f.sample_rate == 44100),
    (Filters(path_prefix="/lib/animals", sample_rates=(8000, 48000), max_duration=2.5),
     lambda f: f.path.startswith("/lib/animals") and f.sample_rate in (8000, 48000) and f.duration <= 2.5),
]


@pytest.mark.parametrize("per_file", [True, False])
@pytest.mark.parametrize("filters,keep", FILTERS)
def test_filters_give_exact_top_k_among_allowed(library, filters, keep, per_file):
    index, files, model = library
    assert any(keep(f) for f in files) and not all(keep(f) for f in files)
    for text in ["footsteps", "thunder"]:
        q = model.embed_text([text])[0]
        hits = index.search_text(text, k=6, filters=filters, per_file=per_file)
        truth = brute_force(files, q, 6, per_file, keep)
        assert [h.path for h in hits] == [t[0] for t in truth]
        np.testing.assert_allclose([h.score for h in hits], [t[1] for t in truth], atol=1e-5)


def test_channel_counts_must_be_whole_and_positive():
    assert Filters(channels=("2", 1)).channels == (2, 1) and Filters(channels=2).active
    with pytest.raises(InvalidQuery, match="channel counts must be 1 or more, got 0"):
        Filters(channels=[0])
    with pytest.raises(InvalidQuery, match="channel counts must be whole numbers"):
        Filters(channels=["stereo"])


def test_filter_matching_nothing_gives_no_hits(library):
    index, _, _ = library
    assert index.search_text("dog", filters=Filters(path_prefix="/elsewhere")) == []


def test_bad_filters_and_queries_are_invalid(library):
    index, _, _ = library
    with pytest.raises(InvalidQuery, match=r"minimum duration \(3 s\) is longer than the maximum"):
        Filters(min_duration=3, max_duration=1)
    with pytest.raises(InvalidQuery, match="≥ 0"):
        Filters(min_duration=-1)
    with pytest.raises(InvalidQuery, match="empty"):
        index.search_text("  ")
    with pytest.raises(InvalidQuery, match="k must be"):
        index.search_text("dog", k=0)


def test_similar_to_indexed_file_returns_it_first(library):
    index, files, _ = library
    for i in (0, 7, 13):
        path = files[i].path
        hits = index.similar_to_file(path, k=5)
        assert hits[0].path == path and hits[0].score >= 0.999
        assert len({h.path for h in hits}) == 5
        by_id = index.similar_to_file(hits[0].file_id, k=5)
        assert [h.path for h in by_id] == [h.path for h in hits]


def test_similar_puts_the_query_before_an_identical_copy(tmp_path):
    """A byte-identical copy ties at 1.000; the query itself comes first whichever id is lower."""
    rng = np.random.default_rng(3)
    v = rng.standard_normal((2, DIM))
    files = [FileSpec(path=f"/lib/{n}.wav", vectors=v if n != "other" else rng.standard_normal((2, DIM)),
                      duration=1.0, format="WAV", sample_rate=16000) for n in ("a_copy", "b_orig", "other")]
    write_index(tmp_path / "idx", files, dim=DIM)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel(DIM)) as index:
        for query, twin in (("/lib/b_orig.wav", "/lib/a_copy.wav"), ("/lib/a_copy.wav", "/lib/b_orig.wav")):
            hits = index.similar_to_file(query, k=3)
            assert [h.path for h in hits[:2]] == [query, twin]
            assert hits[1].score == pytest.approx(hits[0].score, abs=1e-6) and hits[2].path == "/lib/other.wav"


def test_similar_scores_best_match_to_any_segment(library):
    index, files, _ = library
    f = files[4]
    q = unit(f.vectors)
    truth = []
    for g in files:
        truth.append((g.path, float((unit(g.vectors) @ q.T).max())))
    truth.sort(key=lambda r: -r[1])
    hits = index.similar_to_file(f.path, k=8)
    assert [h.path for h in hits] == [t[0] for t in truth[:8]]
    np.testing.assert_allclose([h.score for h in hits], [t[1] for t in truth[:8]], atol=1e-5)


def test_similar_to_unknown_file_is_invalid(library):
    index, _, _ = library
    with pytest.raises(InvalidQuery, match="not in index"):
        index.similar_to_file("/lib/none.wav")
    assert index.file_id_for_path("/lib/none.wav") is None


def test_file_states_are_the_recorded_size_and_mtime_of_indexed_paths(library):
    index, files, _ = library
    every = index.file_states()
    assert set(every) == {f.path for f in files}
    assert every[files[0].path] == (1000, 0)               # as write_index recorded them
    assert index.file_states([files[1].path, "/lib/none.wav"]) == {files[1].path: (1000, 0)}
    assert index.file_states([]) == {}


@pytest.fixture
def tone_index(tmp_path):
    """One file per fake-model band, each holding that band's vector."""
    model = FakeModel(DIM)
    files = [FileSpec(f"/tones/band{b:02d}.wav", model.band_vector(b)) for b in range(DIM)]
    write_index(tmp_path / "tones", files, dim=DIM)
    with SoundIndex.open(tmp_path / "tones", model=model) as index:
        yield index, model


def test_search_audio_by_waveform_and_by_path(tone_index, tmp_path):
    index, model = tone_index
    band = model.band_of(440.0)
    hits = index.search_audio(tone(440.0, 0.8, 8000), k=3, sample_rate=8000)
    assert hits[0].path == f"/tones/band{band:02d}.wav" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    # another rate is resampled to the model's; a 3 s file is segmented and averaged
    path = write(tmp_path / "q.flac", tone(440.0, 3.0, 22050), 22050)
    assert index.search_audio(path, k=1)[0].path == hits[0].path
    assert index.search_audio(tone(440.0, 0.8, 22050), k=1, sample_rate=22050)[0].path == hits[0].path


def test_search_audio_by_a_span_of_the_example(tone_index, tmp_path):
    """start/end pick the part of the example that is the query: a 440 Hz second, then a
    2 kHz second, found by each span alone, as a waveform and as a file."""
    index, model = tone_index
    low, high = model.band_of(440.0), model.band_of(2000.0)
    assert low != high
    wave = np.concatenate([tone(440.0, 1.0, 8000), tone(2000.0, 1.0, 8000)])
    path = write(tmp_path / "two.wav", wave, 8000)
    for audio, rate in ((wave, 8000), (path, None)):
        first = index.search_audio(audio, k=1, sample_rate=rate, end=1.0)[0]
        second = index.search_audio(audio, k=1, sample_rate=rate, start=1.0)[0]
        assert (first.path, second.path) == (f"/tones/band{low:02d}.wav", f"/tones/band{high:02d}.wav")
        assert second.score == pytest.approx(1.0, abs=1e-5)
        with pytest.raises(InvalidQuery, match="is 2.00 s long; the start time 3 s is past its end"):
            index.search_audio(audio, k=1, sample_rate=rate, start=3.0)
        with pytest.raises(InvalidQuery, match="must come after"):
            index.search_audio(audio, k=1, sample_rate=rate, start=1.5, end=0.5)


def test_an_excerpt_of_a_long_file_stops_decoding_at_its_end(tmp_path, monkeypatch):
    """A moment near the start of a 70 s file reads one 20 s block, not the whole file."""
    import engine.audio as audio
    from engine.zeroshot import excerpt

    path = write(tmp_path / "long.wav", tone(440.0, 70.0, 8000), 8000)
    pulled = []
    real = audio.iter_blocks

    def counting(*args, **kwargs):
        for block in real(*args, **kwargs):
            pulled.append(len(block))
            yield block
    monkeypatch.setattr(audio, "iter_blocks", counting)
    wave, rate = excerpt(FakeModel(DIM), path, None, 2.0, 5.0)
    assert (len(wave), rate) == (3 * 8000, 8000) and len(pulled) == 1


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_a_moment_late_in_a_long_file_is_read_from_there(tmp_path, monkeypatch, suffix):
    """60–62 s of a 70 s file at 44.1 kHz: the file is read from just before 60 s (a seek), and the
    moment's samples at 16 kHz are those of the whole file decoded (within float rounding)."""
    import engine.audio as audio
    from engine.zeroshot import EXCERPT_PREROLL, _file_excerpt

    sr = 44100
    t = np.arange(70 * sr) / sr
    x = (0.3 * np.sin(2 * np.pi * (200 + 30 * t) * t)).astype(np.float32)
    path = write(tmp_path / f"long{suffix}", np.stack([x, 0.5 * x], 1), sr)
    whole = audio.decode(path, 16000)
    read = []
    real = audio._read_blocks

    def counting(*args, **kwargs):
        for data, last in real(*args, **kwargs):
            read.append(len(data))
            yield data, last
    monkeypatch.setattr(audio, "_read_blocks", counting)
    moment = _file_excerpt(str(path), 16000, 60.0, 62.0)
    assert len(moment) == 2 * 16000
    np.testing.assert_allclose(moment, whole[60 * 16000:62 * 16000], atol=1e-5)
    assert sum(read) <= (10.0 + EXCERPT_PREROLL) * sr       # one block from 59.95 s, not 60 s of audio first
    with pytest.raises(InvalidQuery, match="is 70.00 s long; the start time 71 s is past its end"):
        _file_excerpt(str(path), 16000, 71.0, None)


def test_similar_to_a_moment_queries_the_segments_inside_it(tmp_path):
    """Segments 0–1, 0.5–1.5 and 1–2 s of one file, each its own band: the span of the middle
    segment queries that segment alone; a span inside no segment, those overlapping it."""
    model = FakeModel(DIM)
    bands = [2, 8, 14]
    spec = FileSpec("/lib/long.wav", np.stack([model.band_vector(b) for b in bands]), duration=2.0,
                    bounds=[(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)])
    write_index(tmp_path / "moments", [spec], dim=DIM)
    with SoundIndex.open(tmp_path / "moments", model=model) as index:
        exact = index.similar_to_file("/lib/long.wav", k=3, per_file=False, start=0.5, end=1.5)
        assert (exact[0].start, exact[0].end) == (0.5, 1.5) and exact[0].score == pytest.approx(1.0, abs=1e-5)
        assert all(h.score < 0.99 for h in exact[1:])
        short = index.similar_to_file("/lib/long.wav", k=3, per_file=False, start=0.9, end=1.1)
        assert sorted((h.start, h.end) for h in short) == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]
        assert all(h.score == pytest.approx(1.0, abs=1e-5) for h in short)


def test_search_audio_rejects_bad_waveforms(tone_index):
    index, _ = tone_index
    with pytest.raises(InvalidQuery, match="sample_rate"):
        index.search_audio(tone(440.0, 0.5, 8000))
    with pytest.raises(InvalidQuery, match="NaN"):
        index.search_audio(np.full(800, np.nan, np.float32), sample_rate=8000)
    with pytest.raises(InvalidQuery, match="does not exist"):
        index.search_audio("/no/such/file.wav")
    with pytest.raises(InvalidQuery, match="is a folder; give one audio file"):
        index.search_audio(str(Path(__file__).parent))


def test_tag_and_rank_texts(tone_index):
    index, model = tone_index
    band = model.band_of(1000.0)
    labels = [f"band {b}" for b in range(DIM)]
    audio = tone(1000.0, 0.8, 8000)
    tags = index.tag(audio, labels=labels, top=3, template="{label}", sample_rate=8000)
    assert [t["label"] for t in tags][0] == f"band {band}"
    assert [t["score"] for t in tags] == sorted((t["score"] for t in tags), reverse=True)
    assert tags[0]["cosine"] == pytest.approx(1.0, abs=1e-5)
    every = index.tag(audio, labels=labels, top=DIM, template="{label}", sample_rate=8000)
    assert sum(t["score"] for t in every) == pytest.approx(1.0)
    # a template without {label} would give every label the same text, hence the same score
    with pytest.raises(InvalidQuery, match="has no {label} placeholder"):
        index.tag(audio, labels=labels, top=3, template="a sound", sample_rate=8000)
    # other braces are text, not fields
    from engine.zeroshot import class_prompts
    assert class_prompts(["dog", "rain"], "{label} {x}") == ["dog {x}", "rain {x}"]
    ranked = index.rank_texts(audio, ["band 0", f"band {band}", "band 15"], sample_rate=8000)
    assert ranked[0] == (f"band {band}", pytest.approx(1.0, abs=1e-5))
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_label_embeddings_are_cached_per_model(tone_index):
    index, model = tone_index
    labels = [f"band {b}" for b in range(DIM)]
    audio = tone(300.0, 0.5, 8000)
    index.tag(audio, labels=labels, template="{label}!", sample_rate=8000)
    calls = model.text_calls
    index.tag(audio, labels=labels, template="{label}!", sample_rate=8000)
    assert model.text_calls == calls
    with pytest.raises(InvalidQuery, match="template"):
        index.tag(audio, labels=labels, template="{name}", sample_rate=8000)


def test_label_embeddings_are_cached_on_disk_across_processes(tmp_path):
    from engine import zeroshot
    labels = ["dog", "rain", "band 3"]
    first = zeroshot.label_vectors(FakeModel(DIM), labels)
    zeroshot._label_cache.clear()                       # as in a new process
    again = FakeModel(DIM)
    np.testing.assert_array_equal(zeroshot.label_vectors(again, labels), first)
    assert again.text_calls == 0
    assert len(list((tmp_path / "cache" / "labels").glob("*.npy"))) == 1
    other = FakeModel(DIM, fingerprint="fake-v2")       # another model never reuses them
    zeroshot.label_vectors(other, labels)
    assert other.text_calls == 1


def test_model_with_other_fingerprint_is_refused(tmp_path):
    write_index(tmp_path / "i", random_library(n_files=3), dim=DIM, model_name="fake")
    with pytest.raises(ModelMismatch, match=r"built with model 'fake'.*--model fake"):
        SoundIndex.open(tmp_path / "i", model=FakeModel(DIM, name="other", fingerprint="other-v2"))


def test_missing_index_is_reported(tmp_path):
    with pytest.raises(IndexNotFound, match="soundsift index"):
        SoundIndex.open(tmp_path / "nothing")


def test_an_index_in_its_first_run_says_so(tmp_path):
    """A search while the first run has made the catalog but committed nothing yet."""
    import os

    from engine.catalog import open_catalog
    from engine.layout import IndexLayout
    from indexer.write import WriterLock

    layout = IndexLayout(tmp_path / "i")
    layout.root.mkdir()
    open_catalog(layout.catalog, create=True).dispose()
    with pytest.raises(IndexNotFound, match="holds no finished index"):
        SoundIndex.open(layout.root, model=FakeModel(DIM))
    with WriterLock(layout.lock):
        with pytest.raises(IndexNotFound, match=rf"being indexed for the first time \(process {os.getpid()}\)"):
            SoundIndex.open(layout.root, model=FakeModel(DIM))
    with pytest.raises(IndexNotFound, match="holds no finished index"):      # the writer gone
        SoundIndex.open(layout.root, model=FakeModel(DIM))


def test_reload_after_new_generation(tmp_path):
    root = tmp_path / "i"
    first = random_library(seed=1, n_files=5)
    write_index(root, first, dim=DIM, generation=1)
    with SoundIndex.open(root, model=FakeModel(DIM)) as index:
        assert {h.path for h in index.search_text("q", k=50)} == {f.path for f in first}
        second = [FileSpec(f"/new/g{i}.wav", f.vectors) for i, f in enumerate(random_library(seed=2, n_files=7))]
        write_index(root, second, dim=DIM, generation=2)
        (root / "vectors-000001.faiss").unlink()          # the writer drops the old generation
        assert {h.path for h in index.search_text("q", k=50)} == {f.path for f in second}
        assert index.info()["generation"] == 2
        assert index.refresh() is False


def test_info_errors_facets_get_file_and_file_vectors(library):
    index, files, _ = library
    info = index.info()
    n_segs = sum(len(f.vectors) for f in files)
    assert (info["files"], info["segments"], info["vectors"], info["errors"]) == (len(files), n_segs, n_segs, 1)
    assert info["model"] == "fake" and info["fingerprint"] == "fake-v1" and info["dim"] == DIM
    assert info["index_type"] == "IDMap2,FlatIP"
    assert index.errors() == [{"path": "/lib/bad.wav", "reason": "not readable as audio",
                               "at": pytest.approx(index.errors()[0]["at"])}]
    facets = index.facets()
    assert facets["formats"] == sorted(FORMATS) and facets["sample_rates"] == RATES
    rec = index.get_file(index.file_id_for_path(files[2].path))
    assert rec["path"] == files[2].path and len(rec["segments"]) == len(files[2].vectors)
    with pytest.raises(InvalidQuery):
        index.get_file(10_000)
    fv = index.file_vectors()
    assert fv.vectors.shape == (len(files), DIM) and len(fv.paths) == len(files)
    for fid, path, vec in zip(fv.file_ids, fv.paths, fv.vectors):
        f = next(f for f in files if f.path == path)
        np.testing.assert_allclose(vec, unit(unit(f.vectors).mean(axis=0))[0], atol=1e-5)
        assert index.get_file(int(fid))["path"] == path


def test_concurrent_readers_during_rewrites_see_whole_generations(tmp_path):
    """Searches in threads while generations are committed: every answer is one generation."""
    import threading
    root = tmp_path / "i"
    gens = {g: [FileSpec(f"/gen{g}/f{i}.wav", f.vectors) for i, f in enumerate(random_library(seed=g, n_files=6))]
            for g in range(1, 7)}
    write_index(root, gens[1], dim=DIM, generation=1)
    failures: list[str] = []
    seen: set[int] = set()
    with SoundIndex.open(root, model=FakeModel(DIM)) as index:
        def reader(seed: int) -> None:
            rng = np.random.default_rng(seed)
            for _ in range(40):
                try:
                    hits = index.search_vectors(rng.standard_normal(DIM).astype(np.float32), k=6)
                except Exception as e:  # noqa: BLE001 - collected and asserted below
                    failures.append(repr(e))
                    continue
                folders = {h.folder for h in hits}
                if len(hits) != 6 or len(folders) != 1:
                    failures.append(f"mixed or short answer: {[h.path for h in hits]}")
                else:
                    seen.add(int(folders.pop()[4:]))
        threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        for g in range(2, 7):
            write_index(root, gens[g], dim=DIM, generation=g)
        for t in threads:
            t.join()
        assert failures == []
        assert index.search_vectors(np.ones(DIM, np.float32), k=1)[0].folder == "/gen6"
    assert seen and seen <= set(gens)


def test_empty_index_answers_with_nothing(tmp_path):
    write_index(tmp_path / "e", [], dim=DIM)
    with SoundIndex.open(tmp_path / "e", model=FakeModel(DIM)) as index:
        assert index.search_text("dog") == []
        assert index.search_text("dog", filters=Filters(formats=["wav"])) == []
        assert (index.info()["files"], index.info()["vectors"]) == (0, 0)
        assert index.file_vectors().vectors.shape == (0, DIM)


@pytest.mark.parametrize("per_file", [True, False])
def test_ivf_index_with_all_lists_probed_is_exact(tmp_path, per_file):
    """IVF indexes (engine.index_choice) take nprobe from meta and the selector nested right."""
    files = random_library(seed=5)
    write_index(tmp_path / "ivf", files, dim=DIM, factory="IVF4,Flat", index_params={"nprobe": 4})
    model = FakeModel(DIM)
    with SoundIndex.open(tmp_path / "ivf", model=model) as index:
        assert index.info()["index_type"].startswith("IVF")
        for filters, keep in [(None, lambda f: True), FILTERS[3], FILTERS[4]]:
            q = model.embed_text(["wind"])[0]
            hits = index.search_text("wind", k=7, filters=filters, per_file=per_file)
            truth = brute_force(files, q, 7, per_file, keep)
            assert [h.path for h in hits] == [t[0] for t in truth]
        first = index.similar_to_file(files[3].path, k=3)[0]
        assert first.path == files[3].path and first.score >= 0.999
        assert index.file_vectors().vectors.shape == (len(files), DIM)


def test_opq_ivf_pq_index_honours_filters(tmp_path):
    files = random_library(seed=6, n_files=120)
    write_index(tmp_path / "pq", files, dim=DIM, factory="OPQ4,IVF4,PQ4x4", index_params={"nprobe": 4})
    with SoundIndex.open(tmp_path / "pq", model=FakeModel(DIM)) as index:
        hits = index.search_text("wind", k=5, filters=Filters(path_prefix="/lib/water/"))
        assert len(hits) == 5 and all(h.path.startswith("/lib/water/") for h in hits)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert index.similar_to_file(files[1].path, k=1)[0].path == files[1].path


@pytest.mark.parametrize("per_file", [True, False])
def test_excluded_sounds_score_exactly_cosine_minus_their_weighted_cosines(library, per_file):
    index, files, model = library
    q, thunder, wind = model.embed_text(["footsteps", "thunder", "wind"])
    plain = [h.path for h in index.search_text("footsteps", k=6, per_file=per_file)]
    changed = False
    for exclude, weight, vector in [(["thunder"], 0.5, q - 0.5 * thunder),
                                    (["thunder", " wind "], 1.0, q - thunder - wind),
                                    ("thunder", 2.0, q - 2.0 * thunder), ([" "], 0.5, q)]:
        hits = index.search_text("footsteps", k=6, per_file=per_file, exclude=exclude, exclude_weight=weight)
        truth = brute_force(files, vector, 6, per_file)
        assert [h.path for h in hits] == [t[0] for t in truth]
        np.testing.assert_allclose([h.score for h in hits], [t[1] for t in truth], atol=1e-5)
        changed |= [h.path for h in hits] != plain
    assert changed                               # the random library does move under exclusion
    with pytest.raises(InvalidQuery, match="weight of excluded sounds must lie in 0–10, got -1"):
        index.search_text("footsteps", exclude=["thunder"], exclude_weight=-1)


@pytest.mark.parametrize("per_file", [True, False])
def test_more_like_these_searches_by_the_mean_of_the_examples(library, tmp_path, per_file):
    """Two indexed files (stored vectors) and one outside the index (embedded now): the query is
    the mean of their unit vectors, and the results are exactly its top k."""
    index, files, model = library
    outside = write(tmp_path / "probe.wav", tone(440, 1.0, model.sample_rate), model.sample_rate)
    probe = model.band_vector(model.band_of(440))
    examples = [files[0].path, index.file_id_for_path(files[3].path), outside]
    centroid = unit(np.mean([unit(unit(files[0].vectors).mean(axis=0))[0],
                             unit(unit(files[3].vectors).mean(axis=0))[0], probe], axis=0))[0]
    hits = index.similar_to_files(examples, k=6, per_file=per_file)
    truth = brute_force(files, centroid, 6, per_file)
    assert [h.path for h in hits] == [t[0] for t in truth]
    np.testing.assert_allclose([h.score for h in hits], [t[1] for t in truth], atol=1e-5)
    alone = unit(unit(files[0].vectors).mean(axis=0))[0]
    assert [h.path for h in index.similar_to_files([files[0].path], k=3)] == [
        t[0] for t in brute_force(files, alone, 3, True)]
    with pytest.raises(InvalidQuery, match="at least one example"):
        index.similar_to_files([])
    with pytest.raises(InvalidQuery, match="99999 is not in index"):
        index.similar_to_files([99_999])

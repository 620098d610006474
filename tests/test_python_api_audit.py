"""The Python API as a researcher or an integrator calls it: argument slips get clear errors,
scores mean what the docstrings say, a closed index stays closed. Fake models, tiny indexes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import tone, write
from engine.errors import IndexNotFound, InvalidQuery, ModelUnavailable
from engine.filters import Filters
from engine.query import SoundIndex
from query_fixtures import FakeModel, FileSpec, write_index

DIM = 16


pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


def unit(x) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, np.float64))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def index(tmp_path):
    rng = np.random.default_rng(3)
    files = [FileSpec(f"/lib/f{i}.wav", rng.standard_normal((2, DIM)), duration=1.5) for i in range(6)]
    write_index(tmp_path / "idx", files, dim=DIM)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel(DIM)) as idx:
        yield idx


# --------------------------------------------------------------------- search_vectors
def test_search_vectors_scores_are_cosines_for_a_vector_not_of_unit_length(index):
    v = np.random.default_rng(0).standard_normal(DIM)
    unit_hits = index.search_vectors(unit(v)[0].astype(np.float32), k=4)
    long_hits = index.search_vectors(10 * v, k=4)          # float64, length ≈ 40
    assert [h.path for h in long_hits] == [h.path for h in unit_hits]
    np.testing.assert_allclose([h.score for h in long_hits], [h.score for h in unit_hits], atol=1e-5)
    assert all(-1.0 < h.score < 1.0 for h in long_hits)    # not clamped to ±1


@pytest.mark.parametrize("queries, says", [
    (np.full(DIM, np.nan), "NaN"),
    (np.full(DIM, np.inf), "NaN or Inf"),
    (np.zeros(DIM), "all zeros"),
    (np.zeros((0, DIM)), "no query vectors"),
    (np.ones((1, 1, DIM)), "1-D"),
    (np.float32(1.0), "1-D"),
    ("abc", "real numbers"),
    (np.ones(DIM, complex), "real numbers"),
])
def test_search_vectors_refuses_what_is_no_query(index, queries, says):
    with pytest.raises(InvalidQuery, match=says):
        index.search_vectors(queries, k=3)


# ------------------------------------------------------------------------------ k
@pytest.mark.parametrize("k", [2.5, "3", None, True])
def test_k_that_is_no_whole_number_is_an_invalid_query(index, k):
    for call in (lambda: index.search_text("dog", k=k), lambda: index.similar_to_file("/lib/f0.wav", k=k),
                 lambda: index.search_vectors(np.ones(DIM), k=k),
                 lambda: index.similar_to_files(["/lib/f0.wav"], k=k)):
        with pytest.raises(InvalidQuery, match="k must be"):
            call()


def test_k_is_checked_before_the_text_is_embedded(index):
    model = index.model
    before = model.text_calls
    with pytest.raises(InvalidQuery):
        index.search_text("dog", k=0)
    assert model.text_calls == before
    assert len(index.search_text("dog", k=np.int64(2))) == 2


def test_search_text_of_another_type_says_so_not_empty(index):
    with pytest.raises(InvalidQuery, match="must be a str, got bytes"):
        index.search_text(b"dog")


# ------------------------------------------------------------- files, spans, rates
def test_a_bool_is_not_a_file_id(index):
    with pytest.raises(InvalidQuery, match="not True"):
        index.similar_to_file(True)


@pytest.mark.parametrize("span", [{"start": float("nan")}, {"end": float("inf")}, {"start": "1"}])
def test_span_times_must_be_finite_numbers(index, span):
    with pytest.raises(InvalidQuery, match="time must be"):
        index.similar_to_file("/lib/f0.wav", **span)
    with pytest.raises(InvalidQuery, match="time must be"):
        index.search_audio(tone(440, 2.0, 8000), sample_rate=8000, **span)


@pytest.mark.parametrize("rate", [0, -8000, 8000.5])
def test_waveform_sample_rate_must_be_positive_whole_hz(index, rate):
    wave = tone(440, 1.0, 8000)
    for call in (lambda: index.search_audio(wave, sample_rate=rate), lambda: index.audio_vector(wave, rate),
                 lambda: index.rank_texts(wave, ["a"], sample_rate=rate),
                 lambda: index.tag(wave, ["a", "b"], sample_rate=rate)):
        with pytest.raises(InvalidQuery, match="sample_rate"):
            call()


def test_one_string_is_one_example_text_or_label(index, tmp_path):
    clip = write(tmp_path / "c.wav", tone(440, 1.0, 8000), 8000)
    assert [h.path for h in index.similar_to_files("/lib/f1.wav", k=3)] == \
        [h.path for h in index.similar_to_files(["/lib/f1.wav"], k=3)]
    assert [t for t, _ in index.rank_texts(clip, "a dog barking")] == ["a dog barking"]
    assert [t["label"] for t in index.tag(clip, "dog,rain")] == ["dog,rain"]
    assert len(index.similar_to_files(iter([1, 2]), k=2)) == 2      # any iterable of examples


# ------------------------------------------------------------------------- lifetime
def test_use_after_close_raises_and_close_is_idempotent(tmp_path):
    from engine.query import IndexClosed
    write_index(tmp_path / "idx", [FileSpec("/a.wav", np.eye(DIM)[:1])], dim=DIM)
    idx = SoundIndex.open(tmp_path / "idx", model=FakeModel(DIM))
    assert idx.search_vectors(np.eye(DIM)[0], k=1)[0].path == "/a.wav"
    idx.close()
    idx.close()
    assert idx.closed
    for call in (lambda: idx.search_vectors(np.eye(DIM)[0], k=1), lambda: idx.search_text("dog"),
                 idx.info, idx.facets, lambda: idx.model, idx.refresh):
        with pytest.raises(IndexClosed, match="was closed"):
            call()
    assert issubclass(IndexClosed, IndexNotFound)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel(DIM)) as again:
        assert not again.closed and again.info()["files"] == 1
    assert again.closed


def test_hits_and_records_are_plain_json(index):
    hits = index.search_vectors(np.random.default_rng(1).standard_normal((2, DIM)), k=3, per_file=False)
    json.dumps([h.to_dict() for h in hits] + [index.info(), index.facets(), index.get_file(hits[0].file_id)],
               allow_nan=False)


# ---------------------------------------------------------------------------- filters
@pytest.mark.parametrize("bounds", [{"min_duration": float("nan")}, {"max_duration": float("nan")},
                                    {"min_loudness": float("nan")}, {"max_loudness": "loud"},
                                    {"min_duration": True}])
def test_filter_bounds_that_are_no_numbers_are_invalid(bounds):
    with pytest.raises(InvalidQuery, match="must be a number"):
        Filters(**bounds)


def test_filter_bounds_given_as_strings_are_numbers(index):
    assert Filters(min_duration="1", max_loudness="-3") == Filters(min_duration=1.0, max_loudness=-3.0)
    assert len(index.search_text("dog", k=10, filters=Filters(min_duration="1"))) == 6


# ------------------------------------------------------------------------ duplicates
def _copies(tmp_path):
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.3
    paths = [str(write(tmp_path / n, wave, 16000)) for n in ("a.wav", "b.wav", "c.wav")]
    return paths, unit(np.ones((3, DIM))).astype(np.float32), np.ones(3), np.full(3, 1000)


def test_find_duplicates_per_file_0_compares_every_pair_as_the_cli_does(tmp_path):
    from engine.duplicates import find_duplicates
    paths, vectors, durations, sizes = _copies(tmp_path)
    every = find_duplicates(paths, vectors, durations, sizes, per_file=None)
    zero = find_duplicates(paths, vectors, durations, sizes, per_file=0)
    assert zero.candidates == every.candidates == 3
    assert [g.paths for g in zero.groups] == [g.paths for g in every.groups] == [paths]
    with pytest.raises(InvalidQuery, match="per_file"):
        find_duplicates(paths, vectors, durations, sizes, per_file=-1)


def test_find_duplicates_with_arrays_of_other_lengths_says_so(tmp_path):
    from engine.duplicates import find_duplicates
    paths, vectors, durations, sizes = _copies(tmp_path)
    with pytest.raises(InvalidQuery, match="2 paths, 3 vectors"):
        find_duplicates(paths[:2], vectors, durations, sizes)


# ----------------------------------------------------------------------------- export
@pytest.mark.parametrize("option", [{"pad": -1.0}, {"pad": float("nan")}, {"fade": -0.1}, {"fade": float("inf")}])
def test_export_refuses_a_negative_or_non_finite_pad_or_fade(tmp_path, option):
    from engine.export import export_hits
    from engine.query import Hit
    src = write(tmp_path / "src.wav", tone(440, 3.0, 8000), 8000)
    hit = Hit(path=str(src), start=1.0, end=2.0, score=0.5, file_id=1, segment_id=1, duration=3.0,
              format="WAV", sample_rate=8000)
    with pytest.raises(InvalidQuery, match="finite number of seconds"):
        export_hits([hit], tmp_path / "out", **option)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- models
def test_embed_text_refuses_one_string_and_embed_audio_one_waveform():
    model = FakeModel(DIM)
    with pytest.raises(TypeError, match="list of strings"):
        model.embed_text("a dog barking")
    with pytest.raises(TypeError, match="list of waveforms"):
        model.embed_audio(tone(440, 1.0, 8000))
    assert model.embed_text(["a dog barking"]).shape == (1, DIM)
    assert model.embed_audio(np.stack([tone(440, 1.0, 8000)] * 2)).shape == (2, DIM)   # rows: a batch


@pytest.mark.parametrize("name", ["", "   "])
def test_load_model_with_an_empty_name_does_not_read_the_current_folder(name):
    from engine.models import load_model
    with pytest.raises(ModelUnavailable, match="model name is empty"):
        load_model(name)


def test_load_model_bundled_name_with_spaces_around_it():
    from engine.models.factory import BUNDLED, load_model
    if not (BUNDLED["soundsift-fast"] / "config.json").is_file():
        pytest.skip("bundled soundsift-fast weights not installed")
    assert load_model(" soundsift-fast\n").name == "soundsift-fast"


def test_lazy_public_names_show_in_dir():
    import engine
    assert {"SoundIndex", "load_model", "AudioTextModel"} <= set(dir(engine))

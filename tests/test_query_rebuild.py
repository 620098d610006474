"""A SoundIndex held open across `soundsift index --rebuild` follows the rebuilt index.

The rebuild swaps a new index folder into the old one's place (indexer.rebuild); the query
layer notices the new folder at its path, drops its engine and vectors, reopens, and takes
the new index's model when it was opened without one (explicit models that no longer
match raise ModelMismatch). The tiny CLAP folders give the real case, also through the
Streamlit page; the fake models (tests/index_fakes.py) a change of dimension, the swap
window and the concurrent test.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

import engine.live_catalog
import engine.models
from engine.errors import IndexNotFound, ModelMismatch
from engine.live_catalog import LiveCatalog
from engine.models import load_model
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel, WideModel
from tests.tiny_models import make_tiny_clap
from ui.components.overview_tab import OVERVIEW, TAB_KEY

SR = 16000


pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


@pytest.fixture(scope="module")
def tiny_clap_b(tmp_path_factory) -> Path:
    """Model B: another tiny random CLAP (another fingerprint, same architecture)."""
    return make_tiny_clap(tmp_path_factory.mktemp("tiny_clap_b"), seed=7)


@pytest.fixture
def lib(tmp_path) -> Path:
    lib = tmp_path / "lib"
    write(lib / "low.wav", tone(220, 2.0, SR), SR)
    write(lib / "hiss.wav", noise(1.5, SR, seed=1), SR)
    write(lib / "sweep.flac", chirp(200, 6000, 3.0, SR), SR)
    write(lib / "beep.wav", tone(3000, 0.5, SR), SR)
    return lib.resolve()


def hits_of(index: SoundIndex, text: str = "dog barking", k: int = 4) -> list[tuple[str, float, float, float]]:
    return [(h.path, h.start, h.end, round(h.score, 5)) for h in index.search_text(text, k=k)]


# -- the real case: tiny CLAP A, rebuilt with tiny CLAP B ---------------------------------------
def test_open_index_without_a_model_follows_a_rebuild_to_the_new_model(lib, tmp_path, tiny_clap_dir,
                                                                      tiny_clap_b):
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    fp_a, fp_b = load_model(str(tiny_clap_dir)).fingerprint, load_model(str(tiny_clap_b)).fingerprint
    assert fp_a != fp_b
    index = SoundIndex.open(idx)                     # the index's own model, as the UI opens it
    try:
        before = hits_of(index)
        assert index.model.fingerprint == fp_a and len(before) == 4
        old_folder = os.stat(idx).st_ino

        build_index([lib], idx, str(tiny_clap_b), workers=0, progress=False, rebuild=True)
        assert os.stat(idx).st_ino != old_folder    # the folder was swapped, not updated

        after = hits_of(index)
        assert index.model.fingerprint == fp_b and index.model.dim == index.info()["dim"]
        assert index.info()["fingerprint"] == fp_b
        with SoundIndex.open(idx) as fresh:
            assert fresh.model.fingerprint == fp_b
            assert after == hits_of(fresh)
            assert index.info() == fresh.info()
            probe = lib / "sweep.flac"
            assert index.search_audio(probe, k=1)[0].path == str(probe)
            assert ([h.to_dict() for h in index.search_audio(probe, k=4)]
                    == [h.to_dict() for h in fresh.search_audio(probe, k=4)])
        assert after != before                       # B's vectors, not A's
    finally:
        index.close()


def test_an_explicit_model_that_no_longer_matches_raises_model_mismatch(lib, tmp_path, tiny_clap_dir,
                                                                       tiny_clap_b):
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    with SoundIndex.open(idx, model=str(tiny_clap_dir)) as index:
        assert len(hits_of(index)) == 4
        build_index([lib], idx, str(tiny_clap_b), workers=0, progress=False, rebuild=True)
        for _ in range(2):                           # every query, not only the first
            with pytest.raises(ModelMismatch) as e:
                index.search_text("dog barking")
        msg = " ".join(str(e.value).split())
        assert f"index {idx} was rebuilt while it was open" in msg
        assert f"built with model {str(tiny_clap_b)!r}" in msg
        assert f"--index {idx} --rebuild --model {tiny_clap_dir}`" in msg
        with pytest.raises(ModelMismatch):
            index.similar_to_file(lib / "low.wav")
        with pytest.raises(ModelMismatch):       # what SoundIndex.open says with that model
            SoundIndex.open(idx, model=str(tiny_clap_dir))


# -- fake models: a change of dimension, the swap window, readers in threads --------------------


@pytest.fixture
def fake_models(monkeypatch) -> dict[str, FakeModel]:
    """``load_model`` by name for the fake models (what an index without --model loads)."""
    models: dict[str, FakeModel] = {"fake": FakeModel(name="fake", fingerprint="fake-v1"),
                                    "wide": WideModel(name="wide", fingerprint="wide-v1")}
    monkeypatch.setattr(engine.models, "load_model", lambda name=None: models[str(name)])
    return models


def answers(index: SoundIndex, probe: Path) -> list[tuple[str, float, float, float]]:
    return [(h.path, h.start, h.end, round(h.score, 4)) for h in index.search_audio(probe, k=3)]


def test_a_rebuild_to_another_dim_is_followed(lib, tmp_path, fake_models):
    idx = tmp_path / "idx"
    build_index([lib], idx, fake_models["fake"], workers=0, progress=False)
    with SoundIndex.open(idx) as index:
        assert index.search_audio(lib / "low.wav", k=1)[0].path == str(lib / "low.wav")
        assert index.model.dim == 8 and index.file_vectors().vectors.shape == (4, 8)
        build_index([lib], idx, fake_models["wide"], workers=0, progress=False, rebuild=True)
        for name in ("low.wav", "beep.wav"):                     # tones: every segment alike
            top = index.search_audio(lib / name, k=1)[0]
            assert top.path == str(lib / name) and top.score == pytest.approx(1.0, abs=1e-5)
        assert index.model is fake_models["wide"] and index.info()["dim"] == 12
        assert index.file_vectors().vectors.shape == (4, 12)
        assert index.policy.window == 1.0                        # B's segments
        sweep = index.get_file(index.file_id_for_path(lib / "sweep.flac"))
        assert [s["end"] for s in sweep["segments"]][:2] == [1.0, 1.5]
        with SoundIndex.open(idx) as fresh:
            for probe in sorted(lib.iterdir()):
                assert answers(index, probe) == answers(fresh, probe)


def test_an_incremental_update_keeps_the_open_model_and_catalog(lib, tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    monkeypatch.setattr(engine.models, "load_model", lambda name=None: FakeModel())   # a new one per load
    with SoundIndex.open(idx) as index:
        assert index.info()["files"] == 4
        model, engine_before = index.model, index._catalog.engine
        write(lib / "new.wav", tone(880, 1.0, SR), SR)
        build_index([lib], idx, workers=0, progress=False)    # a new generation, same folder
        assert index.search_audio(lib / "new.wav", k=1)[0].path == str(lib / "new.wav")
        assert index.info()["files"] == 5
        assert index.model is model and index._catalog.engine is engine_before   # nothing reopened


def test_the_pages_library_follows_a_rebuild_with_its_search(lib, tmp_path, fake_models):
    from ui.components.library import Library
    idx = tmp_path / "idx"
    build_index([lib], idx, fake_models["fake"], workers=0, progress=False)
    with SoundIndex.open(idx) as index:
        library = Library(idx)
        before = library.generation()
        assert {r.path for r in library.files(list(range(1, 10))).values()} == {str(p) for p in lib.iterdir()}
        write(lib / "another.wav", tone(660, 1.0, SR), SR)          # takes file id 1 in the new catalog
        build_index([lib], idx, fake_models["wide"], workers=0, progress=False, rebuild=True)
        assert library.generation() != before
        assert json.loads(library.generation()) == index.info()["vectors_file"]
        for probe in sorted(lib.iterdir()):
            hit = index.search_audio(probe, k=1)[0]
            assert library.file(hit.file_id).path == hit.path == str(probe)
        assert library.folders() == [str(lib)]


def test_a_query_during_the_swap_waits_for_the_new_folder(lib, tmp_path, fake_models, monkeypatch):
    idx = tmp_path / "idx"
    build_index([lib], idx, fake_models["fake"], workers=0, progress=False)
    new = tmp_path / "idx.rebuild-1"
    build_index([lib], new, fake_models["wide"], workers=0, progress=False)
    waits: list[float] = []

    def sleep(seconds: float) -> None:              # the rebuild's second rename lands meanwhile
        waits.append(seconds)
        if len(waits) == 2:
            os.rename(new, idx)
    monkeypatch.setattr(engine.live_catalog, "_sleep", sleep)
    with SoundIndex.open(idx) as index:
        assert index.info()["dim"] == 8
        os.rename(idx, tmp_path / "idx.replaced-1")          # the rebuild's first rename
        top = index.search_audio(lib / "beep.wav", k=1)[0]
        assert top.path == str(lib / "beep.wav") and index.info()["dim"] == 12
        assert waits == list(LiveCatalog.missing_waits[:2])


def test_a_query_on_an_index_that_stays_gone_raises_index_not_found(lib, tmp_path, fake_models,
                                                                   monkeypatch):
    idx = tmp_path / "idx"
    build_index([lib], idx, fake_models["fake"], workers=0, progress=False)
    waits: list[float] = []
    monkeypatch.setattr(engine.live_catalog, "_sleep", waits.append)
    with SoundIndex.open(idx) as index:
        index.search_text("x")
        os.rename(idx, tmp_path / "elsewhere")
        with pytest.raises(IndexNotFound, match=f"index {idx} is gone"):
            index.search_text("x")
        assert waits == list(LiveCatalog.missing_waits)
        os.rename(tmp_path / "elsewhere", idx)                # moved back: it serves again
        assert len(index.search_text("x", k=2)) == 2


def test_readers_in_threads_during_a_rebuild_always_get_a_consistent_answer(lib, tmp_path, fake_models):
    """Searches in threads while the index is rebuilt with a model of another dim: every
    answer is the old index's or the new one's, never an error or a mix; every search begun
    after the rebuild returned gets the new one. (A search begun before it may still be the
    last to finish, with the old answer: a CI run under load saw that.)"""
    idx = tmp_path / "idx"
    build_index([lib], idx, fake_models["fake"], workers=0, progress=False)
    probes = sorted(lib.iterdir())
    failures: list[str] = []
    got: list[tuple[Path, list, bool]] = []     # probe, answer, begun after the rebuild
    stop = threading.Event()
    with SoundIndex.open(idx) as index:
        old = {p: answers(index, p) for p in probes}

        def reader(seed: int) -> None:
            rng = np.random.default_rng(seed)
            n = 0
            while n < 20 or not stop.is_set():
                n += 1
                probe = probes[int(rng.integers(len(probes)))]
                after = stop.is_set()
                try:
                    got.append((probe, answers(index, probe), after))
                except Exception as e:  # noqa: BLE001 - collected and asserted below
                    failures.append(repr(e))
        threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        build_index([lib], idx, fake_models["wide"], workers=0, progress=False, rebuild=True)
        stop.set()
        for t in threads:
            t.join()
        assert failures == []
        assert index.model is fake_models["wide"] and index.info()["dim"] == 12
        with SoundIndex.open(idx) as fresh:
            new = {p: answers(fresh, p) for p in probes}
        assert all(old[p] != new[p] for p in probes)
        assert [(p.name, a) for p, a, _ in got if a not in (old[p], new[p])] == []
        assert [(p.name, a) for p, a, after in got if after and a != new[p]] == []
        assert answers(index, probes[0]) == new[probes[0]]


# -- the Streamlit page, open across a rebuild -------------------------------------------------
@pytest.fixture
def page_index(tmp_path, tiny_clap_dir) -> Path:
    """A private index (the page caches its SoundIndex per folder) built with tiny CLAP A."""
    from tests.ui_library import make_library
    make_library(tmp_path / "library")
    idx = tmp_path / "index"
    build_index([tmp_path / "library"], idx, str(tiny_clap_dir), workers=0, progress=False)
    return idx


def page(index_dir: Path, monkeypatch, model: Path | None = None):
    """The page on ``index_dir`` with ?q=dog barking (not run yet)."""
    from tests.ui_library import page_on
    # (conftest puts the real __main__ back after the test: AppTest replaces it)
    at = page_on(index_dir, monkeypatch, model)
    at.query_params["q"] = "dog barking"
    return at


def cards(at) -> list[tuple[str, str]]:
    """(file name, score as shown) of each result card, in rank order."""
    import re

    from tests.ui_library import as_shown
    names = [as_shown(m.group(1))
             for md in at.markdown if (m := re.match(r"^\*\*\d+\. (.+)\*\*$", md.value))]
    scores = [re.search(r"score (-?\d\.\d{3})", c.value).group(1) for c in at.caption if "match " in c.value]
    return list(zip(names, scores))


def test_the_page_shows_the_rebuilt_index_without_a_restart(page_index, tmp_path, monkeypatch,
                                                           tiny_clap_b):
    at = page(page_index, monkeypatch).run()
    assert not at.exception and not at.error
    before = cards(at)
    assert len(before) == 5
    build_index([tmp_path / "library"], page_index, str(tiny_clap_b), workers=0, progress=False,
                rebuild=True)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.exception or at.error]
    with SoundIndex.open(page_index) as fresh:
        expected = [(Path(h.path).name, f"{h.score:.3f}") for h in fresh.search_text("dog barking", k=5)]
    assert cards(at) == expected != before
    at.session_state[TAB_KEY] = OVERVIEW              # the model is named there, drawn when it is open
    at.run()
    assert any(str(tiny_clap_b) in c.value for c in at.caption if c.value.startswith("Model "))


def test_the_page_with_a_model_override_says_it_no_longer_fits(page_index, tmp_path, monkeypatch,
                                                              tiny_clap_dir, tiny_clap_b):
    at = page(page_index, monkeypatch, model=tiny_clap_dir).run()
    assert not at.exception and len(cards(at)) == 5
    build_index([tmp_path / "library"], page_index, str(tiny_clap_b), workers=0, progress=False,
                rebuild=True)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("was rebuilt while it was open" in e.value for e in at.error)
    assert cards(at) == []

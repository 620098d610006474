"""Audit of the search path: filters on approximate indexes, path and tag filters as people type
them, and the hit table with odd file names; expected results by brute force."""
from __future__ import annotations

import io
import os
import unicodedata

import numpy as np
import pytest

from engine.catalog import File, Tag
from engine.filters import Filters
from engine.query import Hit, SoundIndex
from query_fixtures import FakeModel, FileSpec, write_index
from tests.conftest import catalog_session

DIM = 16

pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)


def two_clusters(n_near: int = 180, n_far: int = 20, seed: int = 0) -> list[FileSpec]:
    """Files around +e0 ("near", most of them) and around −e0 ("far"), one or two segments each."""
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n_near + n_far):
        centre = np.zeros(DIM)
        centre[0] = 3.0 if i < n_near else -3.0
        folder = "near" if i < n_near else "far"
        n_seg = 1 + i % 2
        files.append(FileSpec(path=f"/lib/{folder}/f{i:03d}.wav",
                              vectors=centre + 0.3 * rng.standard_normal((n_seg, DIM)),
                              duration=0.5 + 0.5 * n_seg))
    return files


def brute_force(files: list[FileSpec], q: np.ndarray, k: int, per_file: bool,
                keep=lambda f: True) -> list[tuple[str, float]]:
    """(path, cosine) of the true top k among the kept files (per file: its best segment)."""
    rows = []
    for f in files:
        if keep(f):
            v = np.atleast_2d(np.asarray(f.vectors, np.float64))
            scores = (v / np.linalg.norm(v, axis=1, keepdims=True)) @ q
            rows += [(f.path, float(scores.max()))] if per_file else [(f.path, float(s)) for s in scores]
    return sorted(rows, key=lambda r: -r[1])[:k]


@pytest.mark.parametrize("factory", ["IVF8,Flat", "IVF8,SQ8"])
@pytest.mark.parametrize("per_file", [True, False])
def test_filtered_ivf_search_reaches_allowed_files_in_lists_not_probed(tmp_path, factory, per_file):
    """nprobe 1 probes the list nearest the query: a filter keeping only files of the far cluster
    found none there and returned [] (20 allowed files exist); the search now probes more lists
    until it has k, and they are the true top k with their cosines."""
    files = two_clusters()
    write_index(tmp_path / "ivf", files, dim=DIM, factory=factory, index_params={"nprobe": 1})
    q = np.zeros(DIM, np.float32)
    q[0] = 1.0
    with SoundIndex.open(tmp_path / "ivf", model=FakeModel(DIM)) as index:
        for k in (5, 20, 50):
            hits = index.search_vectors(q, k=k, filters=Filters(path_prefix="/lib/far/"), per_file=per_file)
            truth = brute_force(files, q.astype(np.float64), k, per_file, keep=lambda f: "/far/" in f.path)
            assert len(hits) == len(truth) == min(k, 20 if per_file else 30)
            assert all("/far/" in h.path for h in hits)
            if factory.endswith("Flat"):                  # exact storage: the exact top k
                assert [h.path for h in hits] == [p for p, _ in truth]
            np.testing.assert_allclose([h.score for h in hits], [s for _, s in truth],
                                       atol=1e-5 if factory.endswith("Flat") else 0.02)
        unfiltered = index.search_vectors(q, k=5)         # the probed list still answers alone
        assert all("/near/" in h.path for h in unfiltered) and len(unfiltered) == 5


def test_unfiltered_per_file_search_asking_past_the_probed_lists_gets_k_files(tmp_path):
    """A per-file search for more files than the lists probed hold returns k files, not fewer."""
    files = two_clusters(n_near=40, n_far=40, seed=3)
    write_index(tmp_path / "ivf", files, dim=DIM, factory="IVF2,Flat", index_params={"nprobe": 1})
    q = np.zeros(DIM, np.float32)
    q[0] = 1.0
    with SoundIndex.open(tmp_path / "ivf", model=FakeModel(DIM)) as index:
        hits = index.search_vectors(q, k=60)
        truth = brute_force(files, q.astype(np.float64), 60, per_file=True)
        assert [h.path for h in hits] == [p for p, _ in truth]


def table_texts(monkeypatch, hit: Hit, title: str) -> list[str]:
    """What ``soundsift search`` prints for ``hit`` as a table, at 80 columns (one path column)
    and at 300 (file, folder and about columns)."""
    from rich.console import Console

    from ui.cli import results
    texts = []
    for width in (80, 300):
        buf = io.StringIO()
        monkeypatch.setattr(results, "out_console", Console(file=buf, width=width, markup=False))
        results.show_hits([hit], False, title)
        texts.append(buf.getvalue())
    return texts


def test_show_hits_table_shows_control_characters_in_names_as_escapes(tmp_path, monkeypatch):
    r"""A file named with an escape sequence cleared the terminal (``\x1b[2J``) or set its title
    when the table listed it, and a name holding a line break read as two rows; the log lines
    already escaped them (ui.cli.common.TerminalSafeFormatter). JSON keeps the name exactly."""
    import json

    from ui.cli import results

    path = str(tmp_path / "evil\ndir" / "a\x1b[2Jb\x1b]0;owned\x07c\td.wav")
    hit = Hit(path, 0.0, 1.0, 0.5, 1, 1, 1.0, "WAV", 48000, about="Door\x1b[31m slam")
    for text in table_texts(monkeypatch, hit, "search 'x'"):
        assert "\x1b" not in text and "\x07" not in text and "\t" not in text
    assert len(text.splitlines()) == 6          # title, header, three rules and the hit's one line
    assert r"a\x1b[2Jb\x1b]0;owned\x07c\td.wav" in text and r"evil\ndir" in text
    assert r"Door\x1b[31m slam" in text
    printed = []
    monkeypatch.setattr(results, "print_json", printed.append)
    results.show_hits([hit], True, "search 'x'")
    assert json.loads(json.dumps(printed[0]))[0]["path"] == path


def test_path_prefix_through_a_symbolic_link_finds_the_files_stored_resolved(tmp_path):
    """The catalog stores resolved paths (indexer.scan); ``--path-prefix ~/Sounds/Doors`` where
    ``~/Sounds`` links to the drive matched nothing."""
    real = tmp_path / "drive" / "Sounds"
    (real / "Doors").mkdir(parents=True)
    link = tmp_path / "home_Sounds"
    os.symlink(real, link)
    rng = np.random.default_rng(1)
    files = [FileSpec(path=str(real / folder / f"f{i}.wav"), vectors=rng.standard_normal(DIM))
             for i, folder in enumerate(["Doors", "Doors", "Rain", "DoorsOld"])]
    write_index(tmp_path / "idx", files, dim=DIM)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel(DIM)) as index:
        for prefix in (str(link / "Doors") + os.sep, str(real / "Doors") + os.sep):
            hits = index.search_text("door", k=10, filters=Filters(path_prefix=prefix))
            assert sorted(h.path for h in hits) == [files[0].path, files[1].path]
        hits = index.search_text("door", k=10, filters=Filters(path_prefix=str(link / "Doors")))
        assert len(hits) == 3                                 # a plain prefix: DoorsOld too


NFD, NFC = unicodedata.normalize("NFD", "Café"), unicodedata.normalize("NFC", "Café")


@pytest.fixture
def accents(tmp_path):
    """An index with a folder named decomposed (e + U+0301), one composed, and tags of both forms."""
    rng = np.random.default_rng(2)
    files = [FileSpec(path=f"/lib/{NFD}/a.wav", vectors=rng.standard_normal(DIM)),
             FileSpec(path=f"/lib/{NFC}/b.wav", vectors=rng.standard_normal(DIM)),
             FileSpec(path="/lib/Other/c.wav", vectors=rng.standard_normal(DIM))]
    write_index(tmp_path / "idx", files, dim=DIM)
    with catalog_session(tmp_path / "idx", write=True) as s:
        ids = {f.path: f.id for f in s.query(File)}
        s.add_all([Tag(file_id=ids[files[0].path], label=f"{NFD} noise", score=1.0, source="user"),
                   Tag(file_id=ids[files[2].path], label=f"{NFC} NOISE", score=1.0, source="user")])
    with SoundIndex.open(tmp_path / "idx", model=FakeModel(DIM)) as index:
        yield index, files


def test_path_prefix_matches_accents_composed_or_decomposed(accents):
    """A folder copied from macOS keeps its decomposed name; a typed "é" is one character: the
    path prefix matched only the form typed."""
    index, files = accents
    for form in (NFC, NFD):
        hits = index.search_text("x", k=10, filters=Filters(path_prefix=f"/lib/{form}/"))
        assert sorted(h.path for h in hits) == sorted([files[0].path, files[1].path])


def test_tag_filter_matches_accents_composed_or_decomposed(accents):
    """The same for tags: "Café noise" stored decomposed was not found by the composed word,
    and the note on stderr said no file had it."""
    index, files = accents
    for form in (NFC, NFD):
        hits = index.search_text("x", k=10, filters=Filters(tags=[f"{form} Noise"]))
        assert sorted(h.path for h in hits) == sorted([files[0].path, files[2].path])
        assert index.why_no_file(Filters(tags=[f"{form} noise"])) == []


def test_keyword_search_finds_names_numbered_without_a_separator(tmp_path):
    """``Footsteps01.wav`` was one word, "footsteps01", so "footsteps" never matched it (nor
    "door" ``DoorSlam03``); its letters count now, and the whole word still ranks first."""
    from engine.keywords import KeywordIndex

    index = KeywordIndex.build([(1, "/lib/Footsteps01"), (2, "/lib/DoorSlam03"), (3, "/lib/rain"),
                                (4, "/lib/take3"), (5, "/lib/take4")])
    assert index.scores("footsteps")[0].tolist() == [1]
    assert index.scores("door slam")[0].tolist() == [2]
    assert index.scores("take3")[0].tolist()[:1] == [4] and sorted(index.scores("take")[0].tolist()) == [4, 5]
    assert index.containing_all("door slam").tolist() == [2]

    model = FakeModel(DIM)
    files = [FileSpec(f"/lib/tones/t{i}.wav", model.band_vector(3)) for i in range(6)]
    files.append(FileSpec("/lib/misc/Footsteps01.wav", model.band_vector(12)))
    write_index(tmp_path / "idx", files, dim=DIM)
    with SoundIndex.open(tmp_path / "idx", model=model) as sound_index:
        hits = sound_index.search_text("band 3 footsteps", k=3, keywords=True)
        assert "/lib/misc/Footsteps01.wav" in [h.path for h in hits]
        found = next(h for h in hits if h.path.endswith("Footsteps01.wav"))
        assert found.keywords > 0


def test_format_filter_takes_like_wildcards_literally(tmp_path):
    """``--format`` also matches the extension with SQL LIKE, whose ``_`` and ``%`` matched any
    character: "w_v" kept the WAV files and "%" every file; the note then said the index had them."""
    rng = np.random.default_rng(4)
    files = [FileSpec(path="/lib/a.wav", vectors=rng.standard_normal(DIM), format="WAV"),
             FileSpec(path="/lib/b.w_v", vectors=rng.standard_normal(DIM), format="RAW")]
    write_index(tmp_path / "idx", files, dim=DIM)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel(DIM)) as index:
        assert [h.path for h in index.search_text("x", filters=Filters(formats=["w_v"]))] == ["/lib/b.w_v"]
        assert index.search_text("x", filters=Filters(formats=["%"])) == []
        assert index.why_no_file(Filters(formats=["%"])) != []
        assert [h.path for h in index.search_text("x", filters=Filters(formats=[".WAV"]))] == ["/lib/a.wav"]


@pytest.fixture(scope="module")
def pq_library(tmp_path_factory):
    """The writer's own OPQ+IVF+PQ tier with exact re-ranking (test_query_rerank's: 300 files
    of 10 segments, nprobe 2 of 64 lists as tuned): (root, segment id → path, raw vectors, model)."""
    from test_index_retrain import commit, files
    from test_query_rerank import N_FILES, PER_FILE, PQ_BUDGET, TextModel, segment_paths

    from engine.rerank import RawSidecar, sidecar_path

    root = tmp_path_factory.mktemp("pq") / "idx"
    commit(root, files("a", 100, PER_FILE, seed=21))
    meta = commit(root, files("b", N_FILES - 100, PER_FILE, seed=22), budget=PQ_BUDGET)
    assert meta["index_kind"] == "opq-ivf-pq" and meta["index_params"]["rerank"] >= 1
    return root, segment_paths(root), RawSidecar(sidecar_path(root / meta["vectors_file"])), TextModel()


def test_filter_to_one_file_on_a_tuned_reranked_pq_index_returns_its_segments(pq_library):
    """A filter keeping one file of 10 segments gave 0 or 1 of its best 3 segments, as its
    lists were mostly not probed; now exactly its best 3, with their exact cosines."""
    root, seg_path, raw, model = pq_library
    q = model.embed_text(["rain"])[0]
    with SoundIndex.open(root, model=model) as index:
        for path in sorted(set(seg_path.values()))[:40:7]:
            ids = np.array(sorted(i for i, p in seg_path.items() if p == path))
            truth = np.sort(raw.vectors(ids) @ q)[::-1][:3]
            hits = index.search_text("rain", k=3, filters=Filters(path_prefix=path), per_file=False)
            np.testing.assert_allclose([h.score for h in hits], truth, atol=1e-5)
            best = index.search_text("rain", k=3, filters=Filters(path_prefix=path))
            assert [h.path for h in best] == [path] and abs(best[0].score - truth[0]) < 1e-5


def test_filtered_reranked_pq_search_reranks_a_full_candidate_pool(pq_library):
    """A filter keeping 10 files (100 segments): the re-rank asks for k · rerank candidates, but
    the lists probed held only a few allowed ones, and the exact top 5 segments were missed for
    10 of 60 queries; a short candidate pool now probes more lists, and all 60 are exact."""
    root, seg_path, raw, model = pq_library
    prefix = "/lib/a000"                                      # a0000.wav … a0009.wav
    ids = np.array(sorted(i for i, p in seg_path.items() if p.startswith(prefix)))
    assert len(ids) == 100
    with SoundIndex.open(root, model=model) as index:
        for t in range(60):
            q = model.embed_text([f"q{t}"])[0]
            truth = np.sort(raw.vectors(ids) @ q)[::-1][:5]
            hits = index.search_text(f"q{t}", k=5, filters=Filters(path_prefix=prefix), per_file=False)
            np.testing.assert_allclose([h.score for h in hits], truth, atol=1e-5)


def test_every_table_path_shows_control_characters_as_escapes(tmp_path, monkeypatch):
    """display_path serves the duplicates, tag and info tables too: a name with an escape
    sequence or a right-to-left override reaches no terminal raw."""
    from ui.cli.results import display_path
    monkeypatch.chdir(tmp_path)
    assert display_path(str(tmp_path / "a\x1b[2Jb.wav")) == "a\\x1b[2Jb.wav"
    assert display_path("/elsewhere/invoice\u202evaw.exe") == "/elsewhere/invoice\\u202evaw.exe"
    assert display_path(display_path("/x/a\tb.wav")) == "/x/a\\tb.wav"          # escaping twice changes nothing

"""Shared fixtures: generated audio, small libraries. Everything offline and CPU-only."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import soundfile as sf

if TYPE_CHECKING:
    import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


#: set (to "1") where the call below gave child processes their thread counts, for
#: tests/test_suite_threads197.py; the run's own OMP_NUM_THREADS leaves it unset
CHILD_THREADS_SET = "SOUNDSIFT_TESTS_CHILD_THREADS_SET"
#: FAISS's OpenMP thread count in this process once the call below is done (later tests and
#: the code they run set their own: torch.set_num_threads, engine.query_faiss.one_omp_thread)
FAISS_THREADS_AT_START: int = 0


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def own_openmp_threads() -> int:
    """The OpenMP thread count the call below gives this process's own torch and FAISS work: the
    usable cores, or in a pytest-xdist worker (``pytest -n N``: $PYTEST_XDIST_WORKER is set) its
    share of them, so that N workers' threads do not outnumber the cores (2 workers, 2 cores: 1)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return usable_cores()
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    return max(1, usable_cores() // int(workers)) if workers.isdigit() and int(workers) > 0 else 1


def _one_openmp_thread_in_child_processes() -> None:
    """Child processes the tests start (the CLI, `serve`, a trainer, decoder workers) run
    torch's and FAISS's OpenMP work on one thread, as torchrun starts its ranks: their models are
    tiny, and a second thread on two shared cores only spins (a one-process `train` of the torchrun
    test: 10.4 -> 5.3 s of CPU, the same losses). This process keeps the counts it had: torch and
    faiss are loaded first (the OpenMP runtime they share reads OMP_NUM_THREADS once, on loading),
    torch's count is pinned before the variable is set (it reads it lazily again), and numpy's
    OpenBLAS, which reads OMP_NUM_THREADS too, is given the usable cores in its own variable.
    A variable already set by whoever started the run is left as it is.

    Under pytest-xdist the controller, which runs no tests, does this first, and its workers
    inherit its OMP_NUM_THREADS=1 (with CHILD_THREADS_SET): a worker loads torch and faiss with
    its share of the cores instead (:func:`own_openmp_threads`), then sets 1 again for its
    children."""
    global FAISS_THREADS_AT_START
    import importlib

    from_controller = bool(os.environ.get("PYTEST_XDIST_WORKER")) and os.environ.get(CHILD_THREADS_SET) == "1"
    if from_controller:                 # an xdist worker, given OMP_NUM_THREADS=1 by the controller's call
        os.environ["OMP_NUM_THREADS"] = str(own_openmp_threads())
    import torch

    faiss = importlib.import_module("faiss")
    if "OMP_NUM_THREADS" in os.environ and not from_controller:
        FAISS_THREADS_AT_START = faiss.omp_get_max_threads()
        return
    torch.set_num_threads(torch.get_num_threads())
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(usable_cores()))
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ[CHILD_THREADS_SET] = "1"
    FAISS_THREADS_AT_START = faiss.omp_get_max_threads()


_one_openmp_thread_in_child_processes()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Child processes get no terminal size this run was not given. GNU readline, which pytest
    imports on starting (``_pytest.capture._readline_workaround``), puts COLUMNS=80 and LINES=24
    into the process's C environment, which ``os.environ`` does not show and child processes
    inherit: pytest-xdist's workers, started after this hook, built the CLI's rich consoles at a
    fixed 80 columns, and a test's ``CliRunner(env={"COLUMNS": ...})`` changed nothing. A size in
    ``os.environ`` (the run's own) stays."""
    for name in ("COLUMNS", "LINES"):
        if name not in os.environ:
            os.unsetenv(name)

# The tiny random CLAP checkpoints, as session fixtures for every test module: defined once
# here, so each is built once per run (a module importing them would get its own copy).
from tests.tiny_models import tiny_clap_dir, tiny_fused_clap_dir  # noqa: E402,F401

# The indexed library the page's tests share (tests/ui_library.py), a session fixture too: loaded
# here as a plugin so it is built once per run; a test module takes it by naming it, never by
# importing it. (An import here would be circular: ui_library takes its tones from this file.)
pytest_plugins = ["tests.ui_library"]

# A session on an index's catalog, opened as the product opens it (read-only in a folder that
# cannot be written; ``write=True``: one transaction, committed on leaving), its engine disposed
# on leaving: a test that edits a catalog "as an older soundsift left it" or reads what a command
# stored takes this instead of opening the catalog by hand.
from engine.catalog import catalog_session  # noqa: E402,F401


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Streamlit's AppTest leaves ui/app.py registered as ``__main__``; a later child process
    started with "spawn" (the trainer's two-rank test) would run the page again. Put it back."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture(autouse=True, scope="session")
def _python_sigint():
    """Ctrl-C as Python handles it, however the run was started: a shell starting ``make test``
    in the background (``make test &``, a script's ``( … & )``) leaves SIGINT ignored, and the
    tests of what Ctrl-C does (the trainer's, the watch's) then see nothing arrive."""
    import signal

    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def _restore_root_logger():
    """The CLI's ``setup_logging`` reconfigures the root logger (level INFO, its own stderr
    handler, ``force=True``); undo that after each test so later tests see pytest's setup."""
    import logging

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """Label and audio embeddings cached on disk go to a folder of this test ($SOUNDSIFT_CACHE);
    a test file takes it for every test with ``pytestmark = pytest.mark.usefixtures("private_cache")``."""
    monkeypatch.setenv("SOUNDSIFT_CACHE", str(tmp_path / "cache"))


def tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, sr: int, seed: int = 0, amp: float = 0.3) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def chirp(f0: float, f1: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return (amp * np.sin(phase)).astype(np.float32)


def padded(sound: np.ndarray, seconds: float, at: float, sr: int) -> np.ndarray:
    """``sound`` ``at`` seconds into ``seconds`` of digital silence."""
    out = np.zeros(int(seconds * sr), np.float32)
    out[int(at * sr):int(at * sr) + len(sound)] = sound
    return out


def write(path: Path, data: np.ndarray, sr: int, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, **kw)
    return path


@pytest.fixture
def audio_tools():
    """The generators above, for tests that build their own files."""
    class Tools:
        pass
    t = Tools()
    t.tone, t.noise, t.chirp, t.write = tone, noise, chirp, write
    return t


#: MiniLM vectors already computed in this run: (texts, chunk size, weights signature) → tensor
_MINILM_VECTORS: dict[tuple, "torch.Tensor"] = {}


def _weights_signature(module) -> tuple:
    """What tells two text towers' weights apart, cheaply: per tensor, its name, shape, device,
    dtype, sum and sum of squares. Equal signatures: the same weights."""
    import torch

    signature = []
    with torch.no_grad():
        for name, t in module.state_dict().items():
            flat = t.reshape(-1) if t.is_floating_point() else t.reshape(-1).double()
            signature.append((name, tuple(t.shape), str(t.device), str(t.dtype), float(flat.sum()),
                              float(flat @ flat)))
    return tuple(signature)


@pytest.fixture(scope="module")
def minilm_memo():
    """``MiniLMTextTower.encode_many`` computes a list of texts once per run: a frozen tower with
    the same weights asked for the same list again gets a copy of the vectors it gave the first
    time (every ``init_baseline`` and cached-trainer run encodes the 521 AudioSet class names).
    A trainable tower always computes. The first call in a
    run (or a test run alone) goes through the real network. A test file takes it for all its
    tests and module fixtures with ``pytestmark = pytest.mark.usefixtures("minilm_memo")``."""
    from engine.towers.minilm import MiniLMTextTower

    real = MiniLMTextTower.encode_many

    def encode_many(self, texts, chunk_size: int = 128):
        texts = [str(t) for t in texts]
        if self.trainable:
            return real(self, texts, chunk_size)
        key = (tuple(texts), chunk_size, _weights_signature(self.encoder))
        if key not in _MINILM_VECTORS:
            _MINILM_VECTORS[key] = real(self, texts, chunk_size).clone()
        return _MINILM_VECTORS[key].clone()

    with pytest.MonkeyPatch.context() as patch:      # for the whole test file, its module fixtures too
        patch.setattr(MiniLMTextTower, "encode_many", encode_many)
        yield

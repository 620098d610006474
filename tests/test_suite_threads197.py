"""The suite's child processes run OpenMP (torch, FAISS) on one thread, as torchrun starts its
ranks, while the pytest process keeps FAISS's default count (tests/conftest.py): the searches'
own thread handling is tested against that default (test_faiss_threads46.py). A pytest-xdist
worker (``pytest -n N``) runs its own on its share of the cores instead: N workers on N cores,
one thread each."""
from __future__ import annotations

import os
import subprocess
import sys

from tests import conftest
from tests.conftest import CHILD_THREADS_SET

COUNTS = "import faiss, torch; print(faiss.omp_get_max_threads(), torch.get_num_threads())"


def _counts(env: dict[str, str]) -> tuple[int, int]:
    """(FAISS's, torch's) thread count in a fresh interpreter started with ``env``."""
    done = subprocess.run([sys.executable, "-c", COUNTS], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    faiss_threads, torch_threads = map(int, done.stdout.split())
    return faiss_threads, torch_threads


def test_children_use_one_openmp_thread_and_this_process_faiss_default():
    child = _counts(dict(os.environ))
    if os.environ.get(CHILD_THREADS_SET) != "1":       # the run was started with its own OMP_NUM_THREADS
        assert "OMP_NUM_THREADS" in os.environ, "conftest gave child processes no OpenMP thread count"
        assert child[0] == int(os.environ["OMP_NUM_THREADS"]), child       # torch may cap it at the cores
        return
    assert child == (1, 1), child
    # OpenMP's default, the usable cores, as conftest left it (read then: tests run later set their own);
    # in an xdist worker the cores over the workers
    cores, workers = len(os.sched_getaffinity(0)), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    own = max(1, cores // int(workers)) if os.environ.get("PYTEST_XDIST_WORKER") else cores
    assert conftest.FAISS_THREADS_AT_START == own == conftest.own_openmp_threads()

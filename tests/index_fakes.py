"""A deterministic stand-in model for indexer tests (fast, no torch), and library builders.

``FakeModel`` embeds a clip as the L2-normalised log energy in 8 frequency bands: the
same audio always gives the same vector, alone or in a batch (the model contract), and
different sounds give different vectors. ``delay`` slows each call (kill tests need a
run that is still busy when the signal lands).
"""
from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

import numpy as np

from engine.models.base import AudioTextModel, l2_normalize


class FakeModel(AudioTextModel):
    sample_rate = 16000
    dim = 8
    window_seconds = 2.0

    def __init__(self, name: str = "fake", fingerprint: str = "fake-v1", delay: float = 0.0) -> None:
        self.name = name
        self.fingerprint = fingerprint
        self.delay = delay
        self.calls: list[int] = []          # batch sizes seen

    def embed_audio(self, waveforms):
        self.calls.append(len(waveforms))
        if self.delay:
            time.sleep(self.delay)
        edges = np.linspace(0, 129, self.dim + 1).astype(int)
        rows = []
        for x in waveforms:
            spec = np.abs(np.fft.rfft(np.asarray(x, np.float32), n=256))
            rows.append(np.log1p(np.add.reduceat(spec, edges[:-1])) + 1e-3)
        return l2_normalize(np.asarray(rows))

    def embed_text(self, texts):
        return l2_normalize(np.ones((len(texts), self.dim), np.float32))



class CtrlCAtCall(FakeModel):
    """FakeModel, but Ctrl-C lands in its ``n``-th embedding call."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def embed_audio(self, waveforms):
        if len(self.calls) + 1 == self.n:
            raise KeyboardInterrupt
        return super().embed_audio(waveforms)


class WideModel(FakeModel):
    """Another model than FakeModel: another dim and a shorter window (so other segments); the
    new model of the rebuild tests."""

    dim = 12
    window_seconds = 1.0

def drop_read_override() -> None:
    """``preexec_fn`` for a subprocess that must obey file permissions even as root.

    Drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set before exec, so
    the new program never gets them. Not root: nothing to do (permissions apply anyway).
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


#: a `--rebuild` of argv[1] into index argv[2] with a slow FakeModel, a commit after every file
_SLOW_REBUILD = """
import sys
from indexer import build_index
from tests.index_fakes import FakeModel
build_index([sys.argv[1]], sys.argv[2], FakeModel(name="slow", fingerprint="slow-v1", delay=0.3),
            workers=0, batch_size=1, checkpoint_files=1, progress=False, rebuild=True)
"""


def kill_a_rebuild(lib: Path, idx: Path) -> Path:
    """Start a slow ``--rebuild`` of ``idx`` over ``lib`` in another process and kill -9 it once
    its folder beside the index (``<idx>.rebuild-<pid>``) holds a first checkpoint; returns that
    folder, left behind as a killed rebuild leaves it."""
    import signal
    import subprocess
    import sys

    from engine.layout import IndexLayout

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_REBUILD, str(lib), str(idx)], cwd=root,
                            env=dict(os.environ, PYTHONPATH=str(root)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = idx.with_name(f"{idx.name}.rebuild-{proc.pid}")
    deadline = time.monotonic() + 60
    while not IndexLayout(folder).index_json.exists():            # its first checkpoint is written
        assert proc.poll() is None and time.monotonic() < deadline, "the rebuild ended or never checkpointed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return folder

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

"""Indexing speed settings that must not move a vector: soundsift-base's onnxruntime sessions (the
YAMNet tower and the int8 aisfx CNN) sleep between runs instead of busy-waiting, which starved the
torch frontend and the decoder processes on 2 cores (benchmarks/indexing.py --spinning-too), and
the vectors they give are those of spinning sessions, bit for bit, alone or batched."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from engine.models import load_model
from engine.towers import onnx_export, yamnet
from tests.conftest import chirp, noise, tone

SR = 44100


def _spinning_entry(session) -> str:
    """The session's allow_spinning setting; "1", onnxruntime's default, when it was not set."""
    try:
        return session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:        # onnxruntime: "SessionOptions does not have configuration with key"
        return "1"


@pytest.fixture(scope="module")
def sleeping():
    return load_model("soundsift-base")


@pytest.fixture(scope="module")
def spinning():
    """soundsift-base with every tower session left spinning (onnxruntime's default), YAMNet
    included (a tower of its own, not the process's shared one)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(onnx_export, "session_options", functools.partial(onnx_export.session_options, spinning=True))
        mp.setattr(yamnet, "_SHARED", {})
        return load_model("soundsift-base")


def _waves() -> list[np.ndarray]:
    """Clips of the lengths an indexer cuts: shorter than a YAMNet patch, a few seconds, a full window."""
    return [tone(440, 0.5, SR), noise(2.0, SR, seed=1), chirp(100, 8000, 4.0, SR),
            tone(1000, 10.0, SR, amp=0.1) + noise(10.0, SR, seed=2, amp=0.05),
            noise(7.3, SR, seed=3, amp=0.01), chirp(3000, 200, 10.0, SR, amp=0.8)]


def test_tower_sessions_sleep_after_a_run(sleeping):
    assert sleeping.module.aisfx.quantized
    assert _spinning_entry(sleeping.module._yamnet._session) == "0"
    assert _spinning_entry(sleeping.module.aisfx._session) == "0"


def test_spinning_fixture_really_spins(sleeping, spinning):
    assert _spinning_entry(spinning.module._yamnet._session) == "1"       # the fixture really spins
    assert _spinning_entry(spinning.module.aisfx._session) == "1"
    assert spinning.module._yamnet is not sleeping.module._yamnet


def test_sleeping_sessions_keep_every_vector(sleeping, spinning):
    waves = _waves()
    batched = sleeping.embed_audio(waves)
    np.testing.assert_array_equal(batched, spinning.embed_audio(waves))
    alone = np.concatenate([sleeping.embed_audio([w]) for w in waves])
    np.testing.assert_array_equal(alone, np.concatenate([spinning.embed_audio([w]) for w in waves]))
    np.testing.assert_allclose(alone, batched, atol=1e-6)      # batching is only about speed
    assert sleeping.fingerprint == spinning.fingerprint


def test_float_aisfx_session_sleeps_too():
    from engine.towers.aisfx import EmbeddingNet, OnnxEmbeddingNet

    assert _spinning_entry(OnnxEmbeddingNet(EmbeddingNet(width=4))._session) == "0"


def test_frontend_runs_on_one_torch_thread_and_gives_the_same_frames(sleeping):
    import torch

    from engine.towers.aisfx import AisfxFrontend

    frontend = sleeping.module.aisfx_frontend
    assert frontend.torch_threads == 1
    seen = []
    real = frontend._log_mel
    try:
        frontend._log_mel = lambda w: seen.append(torch.get_num_threads()) or real(w)
        threads = torch.get_num_threads()
        frontend(torch.from_numpy(noise(1.0, SR, seed=4)))
    finally:
        del frontend._log_mel
    assert seen == [1] and torch.get_num_threads() == threads       # restored after the call
    wave = torch.from_numpy(chirp(50, 20000, 10.0, SR) + noise(10.0, SR, seed=5, amp=0.1))
    torch.set_num_threads(2)
    try:
        np.testing.assert_array_equal(AisfxFrontend(torch_threads=1)(wave).numpy(), AisfxFrontend()(wave).numpy())
    finally:
        torch.set_num_threads(threads)


def test_frontend_threads_leave_the_vectors(sleeping):
    """The whole model with its frontend on torch's threads (as before) gives the same vectors."""
    import torch

    waves = _waves()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = sleeping.embed_audio(waves)
        sleeping.module.aisfx_frontend.torch_threads = None
        np.testing.assert_array_equal(sleeping.embed_audio(waves), one)
    finally:
        sleeping.module.aisfx_frontend.torch_threads = 1
        torch.set_num_threads(threads)


def test_the_frontend_leaves_torch_threads_alone_outside_the_main_thread(sleeping):
    """torch_threads(1) in a request thread made torch's process default 1 for a moment, and a
    thread starting torch then (another request) kept one thread for its life (helper-84)."""
    import threading

    import torch

    frontend = sleeping.module.aisfx_frontend
    seen: list[tuple[int, int]] = []
    real = frontend._log_mel

    def in_a_thread() -> None:
        before = torch.get_num_threads()
        frontend._log_mel = lambda w: seen.append((before, torch.get_num_threads())) or real(w)
        frontend(torch.from_numpy(noise(0.5, SR, seed=6)))
    try:
        worker = threading.Thread(target=in_a_thread)
        worker.start()
        worker.join()
    finally:
        del frontend._log_mel
    assert len(seen) == 1 and seen[0][1] == seen[0][0]


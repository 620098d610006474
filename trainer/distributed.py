"""Joining the process group ``torchrun`` describes, for ``soundsift train`` on several GPUs.

``torchrun --nproc_per_node N -m ui.cli train CONFIG`` starts N copies of the command with
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` in their
environment; a process group must still be created in each. :func:`torchrun_process_group`
does that for the length of a run (NCCL on CUDA, Gloo on the CPU) and takes it down again,
all ranks together, when the run ends.
"""
from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Iterator

import torch

log = logging.getLogger(__name__)


def launched_world_size() -> int:
    """``WORLD_SIZE`` as torchrun set it (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def launched_rank() -> int:
    """``RANK`` as torchrun set it (0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0") or 0)


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of ranks; ``(0, 1)`` outside a process group."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def local_device_index(rank: int) -> int:
    """The GPU this rank drives: torchrun's ``LOCAL_RANK``, else ``rank`` modulo the GPUs here."""
    local = os.environ.get("LOCAL_RANK")
    if local is not None:
        return int(local)
    return rank % max(torch.cuda.device_count(), 1)


def barrier() -> None:
    """Wait for every rank (a no-op outside a process group)."""
    if rank_and_world()[1] > 1:
        torch.distributed.barrier()


@contextmanager
def torchrun_process_group(device: str = "auto") -> Iterator[tuple[int, int]]:
    """Join torchrun's process group for the block; yields ``(rank, world_size)``.

    Does nothing (yields ``(0, 1)`` or the existing group's ranks) when the process was not
    launched by torchrun with ``WORLD_SIZE > 1`` or a group already exists: a caller that made
    its own group keeps it. ``device`` is the training config's (``auto``, ``cpu``, ``cuda``,
    ``cuda:N``): the backend is NCCL when it runs on CUDA, Gloo otherwise. On a clean exit every
    rank meets at a barrier before the group is destroyed, so no rank tears down its
    connections while another still uses them; after an error it is destroyed at once (the
    other ranks fail in their next collective and torchrun stops them).
    """
    if (launched_world_size() <= 1 or not torch.distributed.is_available()
            or torch.distributed.is_initialized()):
        yield rank_and_world()
        return
    on_cuda = device != "cpu" and torch.cuda.is_available()
    if on_cuda:
        torch.cuda.set_device(local_device_index(launched_rank()))
    backend = "nccl" if on_cuda else "gloo"
    torch.distributed.init_process_group(backend)
    rank, world = rank_and_world()
    log.info("rank %d of %d joined the %s process group", rank, world, backend)
    ok = False
    try:
        yield rank, world
        ok = True
    finally:
        if ok:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def exit_torchrun_process(code: int = 0) -> None:
    """End a torchrun worker now, skipping interpreter shutdown (streams and logs flushed first).

    With Gloo, a worker that already destroyed its process group still aborts now and then
    while the interpreter shuts down ("terminate called without an active exception", no
    Python frame; 2-rank stress runs of the loss test here: 1 of 20 without a barrier before
    destroy_process_group, 3 of 400 with a barrier and/or a garbage collection first), and
    torchrun then reports the whole run as failed although its work is saved. Ending with
    ``os._exit`` after the run is complete avoids that teardown; call it only when nothing is
    left to do.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)

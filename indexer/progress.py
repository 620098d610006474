"""The indexing progress bar, counted in bytes of audio rather than files.

A bar that counts files sits still for minutes on an hour-long recording and then jumps (the
long-recordings audit: "0/1" for 92 s; 320 of 324 files at 30 s, then 39 s more at "99 %").
Here each file weighs its size, and is credited as its segments are embedded, in proportion to
how far into the file (by its header's duration) they reach.
"""
from __future__ import annotations

from typing import Any

from engine.wording import count


class AudioProgress:
    """Moves ``bar`` (a tqdm counting bytes) as files are embedded part by part."""

    def __init__(self, bar: Any, files: int):
        self.bar = bar
        self.files = files
        self.finished = 0
        self.credited: dict[int, int] = {}

    def reached(self, job: int, size: int, fraction: float) -> None:
        """File ``job`` (``size`` bytes) is embedded up to ``fraction`` of its length."""
        want = int(size * min(max(fraction, 0.0), 1.0))
        gained = want - self.credited.get(job, 0)
        if gained > 0:
            self.credited[job] = want
            self.bar.update(gained)

    def done(self, job: int, size: int) -> None:
        """File ``job`` is indexed or has failed: the rest of its bytes, and one more file."""
        self.reached(job, size, 1.0)
        self.credited.pop(job, None)
        self.finished += 1
        self.bar.set_postfix_str(f"{self.finished}/{count(self.files, 'file')}", refresh=False)

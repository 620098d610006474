"""What every source yields: a candidate clip with its label, tags, captions and a way to get audio."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Candidate:
    """One clip a source can contribute, before balancing and conversion.

    ``read`` returns the encoded bytes of a recorded file; ``render`` writes a synthesised
    WAV to the path it is given. Exactly one of them is set. ``rate`` (optional) asks for
    the audio to be resampled to that rate when it is written (synthesis varies its rates so
    no source can be recognised by its sample rate).
    """

    source: str
    origin: str
    label: str
    tags: tuple[str, ...] = ()
    captions: tuple[str, ...] = ()
    read: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)
    render: Callable[[Path], None] | None = field(default=None, compare=False, repr=False)
    rate: int | None = None

"""Files re-encoded in place keep what the user gave them.

A sound designer converts ``rain_01.wav`` to ``rain_01.flac`` in its folder (or ``.aiff`` to
``.wav``, ``.wav`` to ``.mp3``) and deletes the original. The bytes changed, so no move pairs
them (:mod:`indexer.moves` wants the same size, time and content fingerprint): by path it is a
deleted file and a new one, and the user's tags, captions and library-sheet rows would leave
with the old row. Within one index run :func:`candidates` pairs instead a deleted file with the
new file of the same folder and the same name but for its extension, where that is one to one
(one of each with that name); :func:`same_recording` accepts the pair once the new file is
decoded and embedded: its length agrees with the old one's (:data:`LENGTH_TOLERANCE_REL`, at
least :data:`LENGTH_TOLERANCE_S`) and its file vector (its segments' vectors averaged,
re-normalised) has a cosine of at least :data:`MIN_COSINE` to the old file's stored one
(measured: ``benchmarks/reencode_threshold.py``). The new file then takes the old one's tags,
captions and sheet rows (indexer.write.Changes.inherit); its vectors, segments, levels and
embedded metadata are its own. A refused pair is a deleted file and a new one, as before.

A ``--watch`` (indexer.watch) may see the two halves in different runs: the new file in one and
the original deleted in a later one, or the original deleted first. It tells each run what its
runs did within a window (:class:`AcrossRuns`): a file one of them added (and paired with nothing)
counts as new in the run where a file of its name is deleted, by the same rule (one to one among
this run's new files and those, then :func:`same_recording` on the two stored vectors), and takes
the deleted file's rows; a deleted file carrying the user's notes whose name no new file has
(:func:`unmatched`) stays indexed until the window is up, so a file of its name arriving meanwhile
is paired in that run as in one.
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from engine.models.base import l2_normalize
from indexer.scan import ScannedFile

log = logging.getLogger(__name__)

#: how far the new file's decoded length may be from the old one's: 1 %, and 50 ms at least
LENGTH_TOLERANCE_REL, LENGTH_TOLERANCE_S = 0.01, 0.05
#: the lowest cosine between the new file's vector and the old file's stored one taken for one
#: recording, midway between (benchmarks/reencode_threshold.py, 36 generated clips, both bundled
#: models) FLAC, MP3 at 64 kbps, Ogg Vorbis q0–q3 and a 22.05 kHz resample (lowest 0.92) and
#: another sound under the name (highest 0.72). Another take of one steady sound (rain_02 for
#: rain_01) scores as high as a re-encode: only its length can tell it
MIN_COSINE = 0.82
#: the pairs an index summary's table names (`--verbose` logs every one), and those its --json lists
NAMED_PAIRS, LISTED_PAIRS = 3, 100


@dataclass(frozen=True)
class Reencode:
    """An indexed file (``old``, gone) and the file of the same folder and name that replaced it
    in another format (``new``), taken for one recording."""

    old: str
    new: str


def name_key(path: str) -> tuple[str, str]:
    """A path's folder and its file name without the extension: ``/lib/rain_01.wav`` and
    ``/lib/rain_01.flac`` share one."""
    folder, name = os.path.split(path)
    return folder, os.path.splitext(name)[0]


def candidates(deleted: Sequence[str], new: Sequence[ScannedFile]) -> dict[str, str]:
    """New path → deleted path, for each folder and name without extension (:func:`name_key`)
    that exactly one deleted file and exactly one new file have; the pair is only a candidate
    until :func:`same_recording` says so."""
    gone: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in deleted:
        gone[name_key(path)].append(path)
    arrived: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in new:
        if name_key(f.path) in gone:
            arrived[name_key(f.path)].append(f.path)
    return {news[0]: gone[key][0] for key, news in arrived.items() if len(news) == 1 and len(gone[key]) == 1}


def file_vector(vectors: np.ndarray) -> np.ndarray:
    """A file's unit vector from its segments' vectors (n, dim): their mean, re-normalised, as
    the query layer makes it (engine.query.SoundIndex.file_vector)."""
    return l2_normalize(np.asarray(vectors, np.float32).mean(axis=0))


def same_length(old_seconds: float, new_seconds: float) -> bool:
    """Whether two decoded lengths agree within :data:`LENGTH_TOLERANCE_REL` of the old one, or
    :data:`LENGTH_TOLERANCE_S` for a short file."""
    return abs(new_seconds - old_seconds) <= max(LENGTH_TOLERANCE_S, LENGTH_TOLERANCE_REL * old_seconds)


def same_recording(old_seconds: float, old_vector: np.ndarray | None, new_seconds: float,
                   new_vectors: np.ndarray) -> bool:
    """Whether a new file (decoded to ``new_seconds``, its segments' ``new_vectors``) is the
    indexed file of ``old_seconds`` and stored file vector ``old_vector`` (None: none could be
    read) encoded anew: the lengths agree (:func:`same_length`) and the cosine of the file
    vectors is at least :data:`MIN_COSINE`."""
    if old_vector is None or not len(new_vectors) or not same_length(old_seconds, new_seconds):
        return False
    return float(file_vector(new_vectors) @ l2_normalize(old_vector)) >= MIN_COSINE


def named(pairs: Sequence[Mapping[str, str]], total: int) -> str:
    """The first :data:`NAMED_PAIRS` of ``pairs`` (``{"old", "new"}``) of ``total`` for a summary
    line: ``/lib/rain_01.wav → rain_01.flac, …`` and how many more."""
    shown = ", ".join(f"{p['old']} → {os.path.basename(p['new'])}" for p in pairs[:NAMED_PAIRS])
    more = total - min(len(pairs), NAMED_PAIRS)
    return shown + (f" and {more} more (--verbose names all)" if more > 0 else "")


def unmatched(deleted: Sequence[str], arrived: Sequence[str]) -> list[str]:
    """The paths of ``deleted`` whose folder and name without extension (:func:`name_key`) no
    other deleted path and no path of ``arrived`` has: the original of a conversion whose new file
    has not arrived yet, were it one (a name two deleted files share never pairs)."""
    gone: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in deleted:
        gone[name_key(path)].append(path)
    taken = {name_key(p) for p in arrived}
    return sorted(paths[0] for key, paths in gone.items() if len(paths) == 1 and key not in taken)


@dataclass
class AcrossRuns:
    """What a ``--watch`` tells one run of its runs before, so that a conversion whose new file and
    deleted original fall in different runs is paired as one run pairs it (indexer.watch), and
    what the run tells back (``added``, ``kept``)."""

    arrived: frozenset[str] = frozenset()   # files its runs added lately, paired with nothing: new
                                            # files still, for a deleted file of their name
    let_go: frozenset[str] = frozenset()    # deleted files kept by its runs whose time is up: removed
    added: list[str] = field(default_factory=list)      # the run's files added, paired with nothing
    kept: list[str] = field(default_factory=list)       # the run's deleted files kept for a later run


@dataclass
class Pairing:
    """The candidate pairs of one run (:func:`candidates`), waiting for their new files' vectors:
    what the catalog holds of each old file."""

    olds: dict[str, str]                # new path → old path, while undecided
    seconds: dict[str, float]           # old path → its decoded length
    vectors: dict[str, np.ndarray]      # old path → its stored file vector (where it could be read)

    def __len__(self) -> int:
        return len(self.olds)

    def decide(self, new: str, seconds: float, vectors: np.ndarray) -> tuple[str, bool] | None:
        """The old path of the pair whose new file ``new`` was decoded (``seconds``) and embedded
        (its segments' ``vectors``), and whether it is that recording (:func:`same_recording`);
        None where ``new`` is in no pair (left undecided: the pair is taken out)."""
        old = self.olds.pop(new, None)
        if old is None:
            return None
        return old, same_recording(self.seconds.get(old, -1.0), self.vectors.get(old), seconds, vectors)

    def let_go(self, new: str) -> str | None:
        """Take the pair of new file ``new`` out undecided (it failed, or was not embedded): the old
        path, which is a deleted file after all; None where ``new`` is in no pair."""
        return self.olds.pop(new, None)

"""Pure decisions of the corpus: the validation split by source and the per-label balancing cap."""
from __future__ import annotations

import random
from collections import defaultdict

from trainer.corpus.clips import Candidate

#: sources held out for validation by default: everyday sounds (gcompris), a game's sfx and
#: ambiences (redeclipse) and a real-voice package (ktuberling)
DEFAULT_VALIDATION = ("gcompris", "redeclipse", "ktuberling")


def family(c: Candidate) -> str:
    """What must not straddle the split: the Debian package, or the synthesis tool."""
    return c.origin.split(":", 1)[0]


def split_by_source(cands: list[Candidate], val_sources: tuple[str, ...] | list[str]
                    ) -> tuple[list[Candidate], list[Candidate]]:
    """(train, validation): whole sources held out. Raises ValueError when a held-out source's
    package also feeds a training source (then the split would leak its recording chain)."""
    held = set(val_sources)
    train = [c for c in cands if c.source not in held]
    val = [c for c in cands if c.source in held]
    shared = {family(c) for c in train} & {family(c) for c in val}
    if shared:
        raise ValueError(f"package(s) {sorted(shared)} feed both training and validation sources; "
                         "hold out every source of a package together")
    return train, val


def balance(cands: list[Candidate], max_per_label: int, caps: dict[str, int] | None = None,
            seed: int = 0) -> list[Candidate]:
    """At most ``max_per_label`` clips per label (``caps`` overrides per label), taken round-robin
    across sources in a seeded order so every source of a label keeps a share. Deterministic:
    the result is in the input's order."""
    caps = caps or {}
    by_label: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, c in enumerate(cands):
        by_label[c.label][c.source].append(i)
    keep: set[int] = set()
    for label in sorted(by_label):
        cap = caps.get(label, max_per_label)
        rng = random.Random(f"{seed}:{label}")
        queues = []
        for source in sorted(by_label[label]):
            idx = list(by_label[label][source])
            rng.shuffle(idx)
            queues.append(idx)
        taken = 0
        while taken < cap and any(queues):
            for q in queues:
                if q and taken < cap:
                    keep.add(q.pop())
                    taken += 1
    return [c for i, c in enumerate(cands) if i in keep]

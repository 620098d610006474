"""Files a library reaches through symbolic links that point outside its roots.

The catalog keeps a file by its resolved path (:mod:`indexer.scan`), so a file reached through
``lib/linked → /elsewhere`` is kept as ``/elsewhere/…``: outside the roots under which a run drops
the files it no longer finds. The index therefore remembers each such link (meta ``linked``: the
link's path as walked → its resolved target) and every root it was given (meta ``roots_given``).
A run also drops what it no longer reaches under the targets of its own roots' links (the link was
removed, or its target deleted), except where another root's link or a root given to other runs
covers the same place: those files may still belong to the library through them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from indexer.scan import under_roots

LINKS_KEY = "linked"
ROOTS_KEY = "roots_given"


@dataclass(frozen=True)
class LinkScope:
    """What a run learns from the links: ``targets`` it may drop files under besides its roots,
    and the ``links`` and ``roots_given`` the index records after it."""

    targets: list[str]
    links: dict[str, str]
    roots_given: list[str]

    def meta(self) -> dict[str, Any]:
        return {LINKS_KEY: self.links, ROOTS_KEY: self.roots_given}

    def changes(self, meta: Mapping[str, Any]) -> bool:
        """Whether ``meta`` (the index's) records other links or roots than this run found."""
        return (meta.get(LINKS_KEY) or {}) != self.links or sorted(meta.get(ROOTS_KEY) or []) != self.roots_given


def link_scope(meta: Mapping[str, Any], walked_roots: Iterable[str], roots: Iterable[str],
               found: Mapping[str, str]) -> LinkScope:
    """The links of a run over ``walked_roots`` (absolute, as the walk spells paths; ``roots``: the
    same resolved) that found the symbolic links ``found`` (link path → resolved target) on its way;
    ``meta``: the index's, as the previous runs left it. A recorded link is this run's when it lies
    under a walked root as spelt, or in a folder that resolves under one (the library given once as
    ``~/Sounds``, once as the ``/mnt/sfx`` it links to)."""
    walked_roots, roots = list(walked_roots), list(roots)
    outside = {link: target for link, target in found.items() if not under_roots(target, roots)}
    before: dict[str, str] = dict(meta.get(LINKS_KEY) or {})
    mine = {link: target for link, target in before.items()
            if under_roots(link, walked_roots) or under_roots(os.path.realpath(os.path.dirname(link)), roots)}
    others = {link: target for link, target in before.items() if link not in mine}
    elsewhere = set(others.values()) | (set(meta.get(ROOTS_KEY) or []) - set(roots))
    targets = sorted(t for t in set(mine.values()) | set(outside.values())
                     if not any(under_roots(t, [x]) or under_roots(x, [t]) for x in elsewhere))
    return LinkScope(targets=targets, links={**others, **outside},
                     roots_given=sorted(set(meta.get(ROOTS_KEY) or []) | set(roots)))

"""Which FAISS index to build: a pure function of (vectors, dim, memory budget, GPU).

Tiers (autofaiss-style), by vector count and by the memory the raw vectors need:
  * exact ``Flat`` while the library is small (≤ EXACT_MAX vectors): perfect recall; also
    whatever the budget below POINTS_PER_LIST·MIN_NLIST (~10k) vectors, too few to train
    an IVF (and a few MB at most);
  * ``IVF<nlist>,Flat`` in the middle, while raw float32 vectors fit the budget;
  * ``IVF<nlist>,SQ8`` when they don't but 1 byte per dimension does (4× smaller);
  * ``OPQ<m>[_<d>],IVF<nlist>,PQ<m>np`` when even that doesn't fit (about dim/8 bytes per
    vector; the rotation also projects to ``d`` dims when m does not divide dim).
All use inner product over L2-normalised vectors. The search parameter (``nprobe``)
starts at the value returned here and is then set by measurement
(:func:`tune_nprobe`) so recall@10 against exact search reaches the target.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from engine.errors import InvalidConfig

EXACT_MAX = 100_000
MIN_NLIST = 256
SQ8_BYTES_PER_DIM = 1
FLOAT_BYTES = 4
TARGET_RECALL = 0.95
#: tuning aims this much above TARGET_RECALL: it measures on a few hundred of the index's
#: own vectors and keeps the cheapest setting that crosses the target there, so on new
#: queries recall lands lower (measured at 200k × 512, PQ re-ranked: tuned 0.962 → 0.948,
#: 0.961 → 0.946 on 300 held-out queries)
TUNING_MARGIN = 0.02
#: iterations of the OPQ rotation's training. faiss's default, 50, took 108 s of a 112 s
#: build at 50k × 512 (2 cores); 10 takes 29 s, and the re-ranked search tuned after it
#: still reaches the target (the re-rank factor absorbs the coarser codes)
OPQ_NITER = 10
#: share of physical memory the index may use when no budget is given
DEFAULT_BUDGET_SHARE = 0.25
MEMORY_BUDGET_ENV = "SOUNDSIFT_MEMORY_BUDGET"


@dataclass(frozen=True)
class IndexChoice:
    """A FAISS factory string plus the search parameters to start from."""

    factory: str
    kind: str                       # "flat" | "ivf-flat" | "ivf-sq8" | "opq-ivf-pq"
    nlist: int = 0
    train_size: int = 0             # vectors to train the coarse quantizer on (0: none)
    params: dict[str, Any] = field(default_factory=dict)
    gpu: bool = False
    bytes_per_vector: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: k-means wants at least this many training points per list (faiss warns below 39)
POINTS_PER_LIST = 39


def _nlist(n: int, min_nlist: int = MIN_NLIST) -> int:
    """About 4·√n lists, a power of two, between ``min_nlist`` and 65536, and no more than
    n / POINTS_PER_LIST so that every list gets enough training points."""
    nlist = int(min(65536, max(min_nlist, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))))
    while nlist > min_nlist and nlist * POINTS_PER_LIST > n:
        nlist //= 2
    return nlist


#: code sizes (bytes per vector) that faiss's GPU IVF-PQ supports
GPU_PQ_M = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)


def _pq_shape(dim: int, gpu: bool = False) -> tuple[int, int]:
    """(PQ sub-quantizers m, the OPQ output dimension) for ``dim``-d vectors.

    m = dim/8, about 8 dimensions per code byte (64 for 512-d); on a GPU the largest supported
    size not above it. PQ needs m to divide its input, so when it does not divide ``dim`` the
    OPQ rotation also projects to the largest multiple of m below ``dim``: soundsift-base's
    521-d vectors (521 is prime) become 520-d for PQ65 (512-d for PQ64 on a GPU), not PQ1.
    """
    m = max(1, dim // 8)
    if gpu:
        m = max(x for x in GPU_PQ_M if x <= m)
    return m, m * (dim // m)


def choose_index(n_vectors: int, dim: int, memory_budget: int, gpu: bool = False, *,
                 exact_max: int = EXACT_MAX, min_nlist: int = MIN_NLIST) -> IndexChoice:
    """The index type for ``n_vectors`` vectors of ``dim`` within ``memory_budget`` bytes.

    ``exact_max`` and ``min_nlist`` move the tier boundaries (tests use small ones).
    """
    if n_vectors < 0 or dim <= 0 or memory_budget <= 0:
        raise ValueError("n_vectors ≥ 0, dim > 0 and memory_budget > 0 are required")
    flat_bytes = n_vectors * dim * FLOAT_BYTES
    too_few_to_train = n_vectors < POINTS_PER_LIST * min_nlist    # ~10k: tiny whatever the budget
    if too_few_to_train or (n_vectors <= exact_max and flat_bytes <= memory_budget):
        return IndexChoice("IDMap2,Flat", "flat", gpu=gpu, bytes_per_vector=dim * FLOAT_BYTES + 8)
    nlist = _nlist(n_vectors, min_nlist)
    train = min(n_vectors, 64 * nlist)
    nprobe = max(8, nlist // 64)
    if flat_bytes <= memory_budget:
        return IndexChoice(f"IVF{nlist},Flat", "ivf-flat", nlist, train, {"nprobe": nprobe}, gpu,
                           dim * FLOAT_BYTES + 8)
    if n_vectors * dim * SQ8_BYTES_PER_DIM <= memory_budget:
        return IndexChoice(f"IVF{nlist},SQ8", "ivf-sq8", nlist, train, {"nprobe": nprobe}, gpu,
                           dim * SQ8_BYTES_PER_DIM + 8)
    m, d_out = _pq_shape(dim, gpu)
    opq = f"OPQ{m}" if d_out == dim else f"OPQ{m}_{d_out}"
    # "np": no polysemous training (a Hamming-order code layout for L2 filtering we never
    # use; it made PQ training ~40× slower in measurements)
    return IndexChoice(f"{opq},IVF{nlist},PQ{m}np", "opq-ivf-pq", nlist, train,
                       {"nprobe": nprobe * 2}, gpu, m + 8)


def needs_rebuild(current_factory: str | None, choice: IndexChoice) -> bool:
    """True when the index on disk is not the one ``choice`` asks for.

    The factory string holds the type and ``nlist`` (a power of two near 4·√n), so an IVF
    index is retrained once the library has grown (or shrunk) about 4× since it was built.
    A missing ``current_factory`` means an exact index written before index choice existed.
    """
    return (current_factory or "IDMap2,Flat") != choice.factory


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_memory_budget(text: str | int) -> int:
    """Bytes from ``"4G"``, ``"512MiB"``, ``"1.5GB"``, ``"25%"`` (of physical memory, at most
    100%) or an int; ValueError saying what it takes for anything else."""
    if isinstance(text, int):
        value = text
    else:
        t = str(text).strip().upper().replace(" ", "")
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(%|[KMGT]?)(?:I?B)?", t)
        if not m:
            raise ValueError(f"memory budget {text!r} is not a size; write e.g. 4G, 512M, 25% "
                             "or a number of bytes")
        number, unit = float(m.group(1)), m.group(2)
        if unit == "%" and number > 100:
            raise ValueError(f"memory budget {text!r} is more than this machine's memory; give a share "
                             "of at most 100% (25% is the default), or a size such as 4G")
        value = int(number / 100 * physical_memory()) if unit == "%" else int(number * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"memory budget {text!r} must be more than 0 bytes")
    return value


def physical_memory() -> int:
    """Bytes of physical memory of this machine."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def default_memory_budget() -> int:
    """$SOUNDSIFT_MEMORY_BUDGET if set, else a quarter of physical memory; InvalidConfig naming the
    variable when it holds no budget."""
    env = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if env:
        try:
            return parse_memory_budget(env)
        except ValueError as e:         # every command that writes an index: one line naming it
            raise InvalidConfig(f"${MEMORY_BUDGET_ENV}: {e}") from e
    return int(DEFAULT_BUDGET_SHARE * physical_memory())


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean share of the exact top-k ids that the approximate search also returned."""
    hits = [len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]
    return float(np.mean(hits)) if hits else 1.0


def without_self(ids: np.ndarray, self_ids: np.ndarray | None, k: int) -> np.ndarray:
    """The first ``k`` ids of each row other than the row's own query id (-1 padded).

    Queries drawn from the index's own vectors always find themselves; leaving that
    match out keeps it from inflating the measured recall (by up to 1/k).
    """
    ids = np.asarray(ids)
    if self_ids is None:
        return ids[:, :k]
    out = np.full((len(ids), k), -1, dtype=np.int64)
    for i, (row, me) in enumerate(zip(ids, np.asarray(self_ids))):
        rest = row[row != me][:k]
        out[i, :len(rest)] = rest
    return out


def grown_nprobe(nprobe: int, growth: float, nlist: int) -> int:
    """The next nprobe to try after ``nprobe`` missed: ``growth`` times it, at least one more,
    at most ``nlist``."""
    return min(nlist, max(nprobe + 1, int(np.ceil(nprobe * growth))))


def warm_start(missed_nprobe: int, growth: float, nlist: int) -> tuple[int, int]:
    """(the known miss, the first nprobe to try) after ``missed_nprobe`` was measured below target."""
    miss = min(int(missed_nprobe), nlist - 1)
    return miss, grown_nprobe(miss, growth, nlist)


def tune_nprobe(index: Any, queries: np.ndarray, truth_ids: np.ndarray, start: int, nlist: int,
                k: int = 10, target: float = TARGET_RECALL,
                self_ids: np.ndarray | None = None,
                search: Callable[[np.ndarray, int], np.ndarray] | None = None,
                known_miss: int = 0, growth: float = 2.0, tolerance: float = 0.0) -> tuple[int, float]:
    """Smallest ``nprobe`` (from ``start``) whose measured recall@k reaches ``target``.

    Doubles ``nprobe`` until the target is met, then bisects between the last miss and
    the first hit (recall grows with nprobe), so the answer is the smallest integer, not
    just the smallest power of two. ``truth_ids`` are the exact top-k ids of ``queries``
    (brute force on the same vectors). With ``self_ids`` (the queries' own ids in the
    index) each query's match with itself is left out of both sides: ``truth_ids`` must
    then be the exact top-(k+1), and the index is searched for k+1 as well (see
    :func:`without_self`). Returns (nprobe, measured recall); if even
    nprobe = nlist misses the target the best recall found is returned with it, for the
    caller to report honestly. The index's own ``nprobe`` is left at the returned value.
    ``search(queries, n) → ids`` replaces ``index.search`` (e.g. a re-ranked search that
    reads the index's ``nprobe``). ``known_miss``: an nprobe already measured below the target
    (the bisection's lower end, so it is not searched again; ``start`` must be above it).
    ``growth``: the factor nprobe grows by while it misses; ``tolerance``: the bisection stops
    once the answer is within this fraction above the smallest (0: the exact integer). A caller
    that knows the answer is near ``start`` (a previous commit's value) passes a small growth
    and a tolerance, and saves most of the searches, each of which costs seconds near nlist.
    """
    import faiss

    ivf = faiss.extract_index_ivf(index)
    q = np.ascontiguousarray(queries, dtype=np.float32)

    truth = without_self(truth_ids, self_ids, k)
    fetch = k if self_ids is None else k + 1

    def measure(nprobe: int) -> float:
        ivf.nprobe = nprobe
        ids = search(q, fetch) if search is not None else index.search(q, fetch)[1]
        return recall_at_k(without_self(ids, self_ids, k), truth, k)

    nprobe = max(1, min(start, nlist))
    miss = known_miss                          # largest nprobe known to miss
    while True:
        r = measure(nprobe)
        if r >= target or nprobe >= nlist:
            break
        miss, nprobe = nprobe, grown_nprobe(nprobe, growth, nlist)
    if r < target:
        return nprobe, r
    hit, hit_recall = nprobe, r
    while hit - miss > max(1, int(tolerance * miss)):
        mid = (hit + miss) // 2
        r = measure(mid)
        if r >= target:
            hit, hit_recall = mid, r
        else:
            miss = mid
    ivf.nprobe = hit
    return hit, hit_recall


#: re-rank factors tried for a compressed index (candidates = k · factor), ascending
RERANK_FACTORS = (4, 8, 16, 32, 64)
#: cost of re-scoring one candidate against its raw vector, in units of one PQ code
#: scanned (a random read of dim·2 bytes plus a dim-long dot product vs. m table lookups;
#: a rough ratio, only used to choose between settings that all reach the target)
RERANK_COST = 32


def search_cost(nprobe: int, factor: int, n_vectors: int, nlist: int, k: int = 10) -> float:
    """Work per query of an IVF search with re-ranking, in scanned codes."""
    return nprobe * n_vectors / max(1, nlist) + RERANK_COST * k * factor


def tune_reranked(index: Any, queries: np.ndarray, truth_ids: np.ndarray, nlist: int,
                  n_vectors: int, vectors: Callable[[np.ndarray], np.ndarray], k: int = 10,
                  target: float = TARGET_RECALL, self_ids: np.ndarray | None = None,
                  factors: tuple[int, ...] = RERANK_FACTORS, missed: dict[str, int] | None = None,
                  growth: float = 2.0, tolerance: float = 0.0) -> tuple[dict[str, int], float]:
    """(``{"nprobe", "rerank"}``, measured recall@k) for an IVF index searched with re-ranking.

    For each re-rank factor the smallest ``nprobe`` reaching ``target`` is measured (recall
    of the re-ranked results, :func:`tune_nprobe`); of the settings that reach it, the one
    with the least :func:`search_cost` wins. Larger factors are not tried once their
    re-ranking alone costs more than the best setting found. If none reaches the target the
    best recall found is returned with its setting. ``vectors(ids)`` returns raw vectors;
    the arguments are otherwise those of :func:`tune_nprobe`. The index's ``nprobe`` is
    left at the chosen value.

    ``missed``: a setting (``{"nprobe", "rerank"}``, a previous commit's choice) just measured
    below the target. Its factor is kept and only nprobe grows from there (``growth``,
    ``tolerance`` as in :func:`tune_nprobe`): the factor was the cheapest on nearly the same
    vectors. The full sweep runs only when that factor cannot reach the target at any nprobe.
    """
    import faiss
    from engine.rerank import reranked_search

    def plain(q: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        return index.search(q, n)

    def searcher(factor: int) -> Callable[[np.ndarray, int], np.ndarray]:
        return lambda q, n: reranked_search(plain, q, n, factor, vectors, limit=n_vectors)[1]

    if missed is not None:
        miss, start = warm_start(missed["nprobe"], growth, nlist)
        nprobe, recall = tune_nprobe(index, queries, truth_ids, start, nlist, k,
                                     target, self_ids, search=searcher(int(missed["rerank"])),
                                     known_miss=miss, growth=growth, tolerance=tolerance)
        if recall >= target:
            return {"nprobe": int(nprobe), "rerank": int(missed["rerank"])}, float(recall)

    tried: list[tuple[bool, float, float, int, int]] = []   # (reached, -recall, cost, factor, nprobe)
    for factor in factors:
        best = min((t for t in tried if t[0]), key=lambda t: t[2], default=None)
        if best is not None and search_cost(0, factor, n_vectors, nlist, k) >= best[2]:
            break
        nprobe, recall = tune_nprobe(index, queries, truth_ids, 1, nlist, k, target, self_ids,
                                     search=searcher(factor))
        tried.append((recall >= target, -recall, search_cost(nprobe, factor, n_vectors, nlist, k),
                      factor, nprobe))
    reached = [t for t in tried if t[0]]
    pick = (min(reached, key=lambda t: t[2]) if reached
            else min(tried, key=lambda t: (t[1], t[2])))
    faiss.extract_index_ivf(index).nprobe = pick[4]
    return {"nprobe": int(pick[4]), "rerank": int(pick[3])}, float(-pick[1])

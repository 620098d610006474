"""The library map: file vectors projected to 2-D (PCA), one point per file, coloured by folder (by
top-level folder where the folders outnumber the colours)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ui.components.folder_names import card_folder


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """(N, D) → (N, 2) coordinates on the two main axes; deterministic signs.

    The axes are the top two eigenvectors of the centred vectors' D×D scatter matrix XᵀX (of
    the N×N Gram matrix XXᵀ when there are fewer vectors than dimensions): the coordinates of
    the full SVD of X, U·S, to rounding (≈1e-14 relative at 20,000 × 905), in a sixth of its
    time (0.5 s instead of 3.3 s on one core; benchmarks/web_first_load.py). When the second and
    third axes explain the same variance, any basis of that plane is as good as the SVD's.
    """
    x = np.asarray(vectors, dtype=np.float64)
    out = np.zeros((x.shape[0], 2), np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] == 0:
        return out.astype(np.float32)
    n, d = x.shape
    x = x - x.mean(axis=0, keepdims=True)
    k = min(2, n, d)
    if n >= d:
        _, axes = np.linalg.eigh(x.T @ x)                  # eigenvalues ascending: take the last
        proj = x @ axes[:, ::-1][:, :k]
    else:
        w, u = np.linalg.eigh(x @ x.T)
        proj = u[:, ::-1][:, :k] * np.sqrt(np.clip(w[::-1][:k], 0.0, None))
    # fix the sign of each axis so the map does not flip between runs
    for j in range(k):
        pivot = np.argmax(np.abs(proj[:, j]))
        if proj[pivot, j] < 0:
            proj[:, j] = -proj[:, j]
    out[:, :k] = proj
    return out.astype(np.float32)


def map_rows(file_ids: Sequence[int], paths: Sequence[str], xy: np.ndarray,
             root: str | None = None) -> list[dict[str, Any]]:
    """One dict per point: file_id, name, folder (below ``root``, or ``root`` itself in full), x, y."""
    folders: dict[str, str] = {}          # a few hundred folders for tens of thousands of files

    def folder_of(parent: str) -> str:
        if parent not in folders:
            folder = str(Path(parent))
            folders[parent] = card_folder(folder, root) if root else folder      # as cards name it
        return folders[parent]

    rows = []
    for fid, path, (x, y) in zip(file_ids, paths, np.asarray(xy).tolist()):
        parent, name = os.path.split(str(path))
        rows.append({"file_id": int(fid), "name": name, "folder": folder_of(parent),
                     "x": float(x), "y": float(y)})
    return rows


#: colours of the map's scheme (Vega's "tableau10"); more folders than these repeat them
MAP_COLOURS = 10
MAP_SCHEME = "tableau10"


def top_folder(folder: str) -> str:
    """The top-level folder below the library root of ``folder`` as :func:`map_rows` names it
    (below the root, or in full: the root itself, a folder outside it)."""
    parts = Path(folder).parts
    return folder if os.path.isabs(folder) or not parts else parts[0]


def colour_by_folder(rows: list[dict[str, Any]]) -> tuple[str | list[str], list[str]]:
    """Set each row's ``colour``; the legend's title and its entries in order. A row's colour is
    its folder while the folders fit the :data:`MAP_COLOURS` colours; else its top-level folder
    (400 folders repeated ten colours in a legend Vega cuts at 30 entries), the largest
    :data:`MAP_COLOURS` - 1 by name and the rest as one "other" entry when even those are more.
    The ``folder`` the tooltip shows stays in full."""
    folders = {r["folder"] for r in rows}
    if len(folders) <= MAP_COLOURS:
        for r in rows:
            r["colour"] = r["folder"]
        return "Folder", sorted(folders)
    tops = {f: top_folder(f) for f in folders}
    sizes: dict[str, int] = {}
    for r in rows:
        sizes[tops[r["folder"]]] = sizes.get(tops[r["folder"]], 0) + 1
    ranked = sorted(sizes, key=lambda t: (-sizes[t], t))          # the largest first
    named = ranked if len(ranked) <= MAP_COLOURS else ranked[:MAP_COLOURS - 1]
    other = f"other ({len(ranked) - len(named):,} top folders)"
    kept = set(named)
    for r in rows:
        top = tops[r["folder"]]
        r["colour"] = top if top in kept else other
    # two lines: Vega cuts a legend title at 180 px
    return ["Top folder", f"of {len(folders):,} folders"], named if len(named) == len(ranked) else [*named, other]


def selected_file_id(selection: Any, param: str = "pick") -> int | None:
    """The file id of the point picked on the map, from Streamlit's selection state."""
    if not selection:
        return None
    sel = selection.get("selection", {}) if isinstance(selection, dict) else getattr(selection, "selection", {})
    points = sel.get(param) if isinstance(sel, dict) else getattr(sel, param, None)
    if not points:
        return None
    first = points[0] if isinstance(points, list) else points
    value = first.get("file_id") if isinstance(first, dict) else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None

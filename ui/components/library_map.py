"""The library map: file vectors projected to 2-D (PCA by SVD), one point per file."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """(N, D) → (N, 2) coordinates on the two main axes; deterministic signs."""
    x = np.asarray(vectors, dtype=np.float64)
    n = x.shape[0]
    out = np.zeros((n, 2), np.float64)
    if n < 2:
        return out.astype(np.float32)
    x = x - x.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    k = min(2, s.size)
    proj = u[:, :k] * s[:k]
    # fix the sign of each axis so the map does not flip between runs
    for j in range(k):
        pivot = np.argmax(np.abs(proj[:, j]))
        if proj[pivot, j] < 0:
            proj[:, j] = -proj[:, j]
    out[:, :k] = proj
    return out.astype(np.float32)


def map_rows(file_ids: Sequence[int], paths: Sequence[str], xy: np.ndarray,
             root: str | None = None) -> list[dict[str, Any]]:
    """One dict per point: file_id, name, folder (below ``root``), x, y."""
    rows = []
    for fid, path, (x, y) in zip(file_ids, paths, np.asarray(xy)):
        p = Path(path)
        folder = str(p.parent)
        if root:
            try:
                folder = str(p.parent.relative_to(root)) or "."
            except ValueError:
                pass
        rows.append({"file_id": int(fid), "name": p.name, "folder": folder,
                     "x": float(x), "y": float(y)})
    return rows


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

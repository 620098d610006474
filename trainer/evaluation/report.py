"""Markdown reports with PNG plots (matplotlib, Agg canvas; no display needed).

Retrieval: ``report.md`` + ``recall_at_k.png`` (R@k curves, text→audio and audio→text).
Zero-shot: ``report.md`` + ``confusion_matrix.png`` + ``per_class_accuracy.png``.

Every plot is drawn in memory before any file is written, and each file is replaced whole
(written beside it, then renamed), so a plot that fails leaves the folder as it was rather than
half a report. Class names are drawn as written: a "$" in one never starts matplotlib's math mode.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from engine.outputs import make_folder
from engine.zeroshot import LABEL_QUERY_TEMPLATE

RETRIEVAL_KEYS = ("R@1", "R@5", "R@10", "mAP@10", "median_rank", "mean_rank")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    """The figure drawn as PNG bytes (drawing errors raise here, before any file is written)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _write_files(out: Path, files: Mapping[str, bytes]) -> None:
    """Each of ``files`` (name → bytes) written whole into ``out``: beside, then renamed."""
    for name, data in files.items():
        tmp = out / f".{name}.tmp"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, out / name)
        finally:
            tmp.unlink(missing_ok=True)


def _save(fig, out: Path) -> Path:
    _write_files(out.parent, {out.name: _png(fig)})
    return out


def plot_subject(model: str, source: str = "", width: int = 60) -> str:
    """The second line of a plot's title: the model and the data file's name, cut at its start
    to ``width`` characters (a PNG opened apart from its report.md said neither, so the plots of
    a fine-tune and of its start looked alike)."""
    text = f"{model} on {Path(source).name}" if source else str(model)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")     # a name not UTF-8, as report.md writes it
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _title(ax, title: str, subject: str) -> None:
    ax.set_title(f"{title}\n{subject}" if subject else title, parse_math=False)


def plot_recall_curves(curves: Mapping[str, np.ndarray], out: Path, subject: str = "") -> Path:
    """One line per direction: R@k against k = 1 … len(curve); ``subject``: :func:`plot_subject`."""
    return _save(_recall_figure(curves, subject), out)


def _recall_figure(curves: Mapping[str, np.ndarray], subject: str = ""):
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    for name, curve in curves.items():
        ks = np.arange(1, len(curve) + 1)
        ax.plot(ks, curve, marker="o" if len(curve) <= 20 else None, markersize=3, label=name)
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    _title(ax, "Retrieval recall@k", subject)
    fig.tight_layout()
    return fig


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], out: Path, subject: str = "") -> Path:
    """Row-normalised confusion matrix (true class down, predicted across)."""
    return _save(_confusion_figure(matrix, labels, subject), out)


def _confusion_figure(matrix: np.ndarray, labels: Sequence[str], subject: str = ""):
    n = len(labels)
    size = min(4 + 0.22 * n, 24)
    fig = _figure(size, size)
    ax = fig.add_subplot()
    rows = matrix.sum(axis=1, keepdims=True)
    norm = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fontsize = max(4, 10 - n // 10)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=fontsize, parse_math=False)
    ax.set_yticks(range(n), labels, fontsize=fontsize, parse_math=False)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    _title(ax, "Zero-shot confusion matrix (row-normalised)", subject)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def plot_per_class(per_class: Mapping[str, float], out: Path, subject: str = "") -> Path:
    """Horizontal bars of per-class top-1 accuracy, best on top."""
    return _save(_per_class_figure(per_class, subject), out)


def _per_class_figure(per_class: Mapping[str, float], subject: str = ""):
    items = sorted(per_class.items(), key=lambda kv: kv[1])
    fig = _figure(7, max(3, 0.22 * len(items) + 1))
    ax = fig.add_subplot()
    ax.barh(range(len(items)), [v for _, v in items], color="tab:blue")
    ax.set_yticks(range(len(items)), [k for k, _ in items], fontsize=max(4, 10 - len(items) // 10),
                  parse_math=False)
    ax.set_xlim(0, 1)
    ax.set_xlabel("top-1 accuracy")
    _title(ax, "Per-class accuracy", subject)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def _fmt(key: str, value: float) -> str:
    return f"{value:.2f}" if key.endswith("rank") else f"{100 * value:.2f} %"


def write_retrieval_report(out_dir: str | Path, result: Mapping, curves: Mapping[str, np.ndarray],
                           source: str = "", shared_captions: bool = True) -> Path:
    """``report.md`` and ``recall_at_k.png`` in ``out_dir``; returns the Markdown path.

    ``shared_captions``: whether clips sharing a caption text were each a right answer (a
    manifest) or each caption's own clip alone (Clotho, AudioCaps), as the protocol line says.
    """
    png = _png(_recall_figure(curves, plot_subject(result["model"], source)))
    relevance = ("clips sharing a caption text are each a right answer" if shared_captions
                 else "each caption's own clip is its one right answer")
    lines = [
        "# Retrieval evaluation",
        "",
        f"- model: `{result['model']}`",
        *([f"- data: `{source}`"] if source else []),
        *_warning_line(result),
        f"- audio clips: {result['n_audio']}, captions: {result['n_captions']}",
        f"- protocol: LAION-CLAP (R@k; mAP@10 as AP@10; {relevance}; ties ranked pessimistically)",
        "",
        "| direction | " + " | ".join(RETRIEVAL_KEYS) + " |",
        "|---|" + "---:|" * len(RETRIEVAL_KEYS),
    ]
    for direction, title in (("t2a", "text → audio"), ("a2t", "audio → text")):
        row = result[direction]
        lines.append(f"| {title} | " + " | ".join(_fmt(k, row[k]) for k in RETRIEVAL_KEYS) + " |")
    lines += ["", "![recall@k](recall_at_k.png)", ""]
    return _write_report(out_dir, lines, {"recall_at_k.png": png})


def _warning_line(result: Mapping) -> list[str]:
    """The run's warning (the model trained on this data: runner's ``"warning"``), for report.md."""
    return [f"- **warning**: {result['warning']}"] if result.get("warning") else []


def _write_report(out_dir: str | Path, lines: Sequence[str], pngs: Mapping[str, bytes]) -> Path:
    """The plots, then ``report.md``, into ``out_dir`` (made if missing); returns report.md's path."""
    out = make_folder(out_dir)
    # a name that is not UTF-8 (surrogate escapes) is written escaped, not a traceback
    md = "\n".join(lines).encode("utf-8", errors="backslashreplace")
    _write_files(out, {**pngs, "report.md": md})
    return out / "report.md"


def _cell(text: object) -> str:
    """``text`` as one Markdown table cell: a ``|`` escaped, line breaks made spaces (a class
    named "on|off switch" broke its row into three cells)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def write_zeroshot_report(out_dir: str | Path, result: Mapping, confusion: np.ndarray,
                          labels: Sequence[str], template: str, source: str = "",
                          query_template: str = LABEL_QUERY_TEMPLATE) -> Path:
    """``report.md``, ``confusion_matrix.png`` and ``per_class_accuracy.png`` in ``out_dir``."""
    subject = plot_subject(result["model"], source)
    pngs = {"confusion_matrix.png": _png(_confusion_figure(confusion, labels, subject)),
            "per_class_accuracy.png": _png(_per_class_figure(result["per_class"], subject))}
    lines = [
        "# Zero-shot classification",
        "",
        f"- model: `{result['model']}`",
        *([f"- data: `{source}`"] if source else []),
        *_warning_line(result),
        f"- clips: {result['n']}, classes: {len(labels)}",
        f"- prompt template: `{template}`",
        "",
        "| top-1 | top-5 | top-10 | mAP@10 |",
        "|---:|---:|---:|---:|",
        "| " + " | ".join(f"{100 * result[k]:.2f} %" for k in ("top1", "top5", "top10", "mAP@10")) + " |",
        "",
    ]
    if "t2a" in result:
        lines += [f"Text → audio: each of the {result['t2a_queries']} classes queries every clip as "
                  f"`{query_template}`; all clips of the class are relevant.", "",
                  "| " + " | ".join(RETRIEVAL_KEYS) + " |", "|" + "---:|" * len(RETRIEVAL_KEYS),
                  "| " + " | ".join(_fmt(k, result["t2a"][k]) for k in RETRIEVAL_KEYS) + " |", ""]
    if result.get("per_fold"):
        lines += ["## Per fold", "", "| fold | n | top-1 | top-5 | top-10 | mAP@10 |", "|---|---:|---:|---:|---:|---:|"]
        for fold, row in result["per_fold"].items():
            lines.append(f"| {_cell(fold)} | {row['n']} | "
                         + " | ".join(f"{100 * row[k]:.2f} %" for k in ("top1", "top5", "top10", "mAP@10")) + " |")
        lines.append("")
    lines += ["## Per class", "", "| class | top-1 |", "|---|---:|"]
    for label, acc in sorted(result["per_class"].items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {_cell(label)} | {100 * acc:.2f} % |")
    lines += ["", "![per-class accuracy](per_class_accuracy.png)", "",
              "![confusion matrix](confusion_matrix.png)", ""]
    return _write_report(out_dir, lines, pngs)

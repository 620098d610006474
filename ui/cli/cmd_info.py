"""``soundsift info``: what an index holds, which model built it, which files failed."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ui.cli.app import app
from ui.cli.common import IndexOption, VerboseOption, count, out_console, print_json, reports_errors, setup_logging
from ui.cli.results import cell

if TYPE_CHECKING:
    from engine.errors import IndexUnreadable


@app.command("info")
@reports_errors
def info_command(
    index: IndexOption = None,
    errors: int = typer.Option(20, "--errors", "-e", min=0, help="Show the latest N error rows."),
    json_out: bool = typer.Option(False, "--json", help="Print the information as JSON on stdout."),
    verbose: VerboseOption = False,
) -> None:
    """Counts of files, segments and errors, total duration, model, index type, formats, library
    categories, errors."""
    setup_logging(verbose)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    from indexer.info import index_info

    info = index_info(index, errors_limit=errors)
    changed = _model_changed(info)
    if changed:     # only then: serve refuses such an index, so GET /info (every key of this) never has one
        info["model_changed"] = changed
    unreadable = _vectors_error(info)
    if json_out:
        print_json(info if unreadable is None else {**info, "error": str(unreadable)})
    else:
        _print_info(info, unreadable is not None)
    if unreadable is not None:      # what the catalog holds was shown; a script sees the failure
        raise unreadable


def _model_changed(info: dict[str, Any]) -> str | None:
    """What to do when the model ``info``'s index was built with has other weights under its name
    now (indexer.index_model.changed_since_indexed): searches refuse the index until it is
    re-embedded. None while it matches, or cannot be told without loading the model."""
    from indexer.index_model import changed_since_indexed

    if info.get("generation") is None:
        return None
    return changed_since_indexed(info, info["index"])


def _vectors_error(info: dict[str, Any]) -> "IndexUnreadable | None":
    """IndexUnreadable (engine.vectors.unreadable_vectors) when the vectors file the catalog of
    ``info`` (indexer.info.index_info) names is missing or does not read as FAISS, which every
    search would stop at; None when it reads, or no commit has named one yet."""
    from engine.errors import IndexUnreadable
    from engine.vectors import check_readable, recorded_length

    if info.get("generation") is None or not info.get("vectors_file"):
        return None
    try:
        check_readable(Path(info["index"]) / info["vectors_file"], recorded_length(info))
    except IndexUnreadable as e:
        return e
    return None


#: library categories listed in the table (all of them in --json)
CATEGORIES_SHOWN = 12


def _loudness_range(levels: dict[str, Any]) -> str:
    """"-48.2 … -14.2 LUFS", and how many files are silent or under the −70 LUFS gate (stored as
    −120, engine.loudness.SILENCE_DB: no measurement to put in the range)."""
    silent = int(levels.get("silent_files") or 0)
    if levels.get("quietest_lufs") is None:
        return f"{count(silent, 'file')}, all silent or under -70 LUFS"
    shown = f"{levels['quietest_lufs']:.1f} … {levels['loudest_lufs']:.1f} LUFS"
    return shown + (f", and {count(silent, 'file')} silent or under -70" if silent else "")


def _duration(seconds: float) -> str:
    h, rest = divmod(int(round(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _sheet_names(sheets: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Each sheet record's (name, files) for the table: its file name, or its path where several
    imported sheets share that name (as `sheet list` shows them)."""
    names = [r["sheet"] for r in sheets]
    return [((r["path"] or r["sheet"]) if names.count(r["sheet"]) > 1 else r["sheet"], r["files"])
            for r in sheets]


def _silence_text(c: dict[str, int]) -> str:
    """The ``silent segments`` row of the counts ``c``: how many were left out, how many files are
    silence throughout, and how many files are not judged by the rule of now yet."""
    said = [f"{c.get('silent_left_out', 0)} left out (digital silence, in files with sound elsewhere)"]
    if c.get("files_of_silence"):
        n = c["files_of_silence"]
        said.append(f"{count(n, 'file')} of silence throughout, {'each ' if n > 1 else ''}kept as its first segment")
    if c.get("silence_not_judged"):
        said.append(f"{count(c['silence_not_judged'], 'file')} not judged yet (indexed before this was judged, "
                    "or with markers before a silent take was left out: run `soundsift index` to judge "
                    "those on disk)")
    return "; ".join(said)


def _print_info(info: dict[str, Any], vectors_unreadable: bool = False) -> None:
    """The tables of ``info``; ``vectors_unreadable``: its vectors file does not read as FAISS."""
    from rich.table import Table

    from indexer.write import human_size
    c = info["counts"]
    t = Table(title=f"index {info['index']}", show_header=False)
    t.add_row("files", str(c["files"]) + (f" ({c['described']} described: title, comment … in the file or an imported sheet)"
                                          if c.get("described") else ""))
    marked = int(c.get("marked") or 0)
    t.add_row("segments", str(c["segments"]) + (f" (with the takes of {count(marked, 'file')} "
                                                "with named markers)" if marked else ""))
    t.add_row("errors", str(c["errors"]))
    if c.get("silent_left_out") or c.get("files_of_silence") or c.get("silence_not_judged"):
        t.add_row("silent segments", _silence_text(c))
    if c.get("metadata_not_reread"):
        t.add_row("embedded metadata", f"of {count(c['metadata_not_reread'], 'file')} read by an older soundsift, "
                  "which read less (descriptions, markers, cue sheets …): the next `soundsift index` of its folders "
                  "reads it again, embedding nothing")
    if info.get("sheets"):
        t.add_row("library sheets", " · ".join(f"{name} ({count(n, 'file')})"
                                               for name, n in _sheet_names(info["sheets"])))
    t.add_row("total duration", _duration(info["total_duration"]))
    levels = info.get("loudness") or {}
    if levels.get("measured_files"):
        t.add_row("loudness", _loudness_range(levels)
                  + ("" if levels["measured_files"] == c["files"] else
                     f" ({levels['measured_files']} of {count(c['files'], 'file')} measured; "
                     "`soundsift index … --rebuild` measures the others)"))
    if info.get("generation") is None:      # no commit yet: no model, vectors or index type to show
        t.add_row("state", "no commit yet: a first `soundsift index` run is writing it, or stopped before "
                  "its first checkpoint (run it again to finish)")
    else:
        t.add_row("model", str(info.get("model_name")))
        t.add_row("fingerprint", str(info.get("model_fingerprint")))
        if info.get("model_changed"):
            t.add_row("model changed", info["model_changed"])
        t.add_row("dim / sample rate", f"{info.get('dim')} / {info.get('sample_rate')} Hz")
        policy = info.get("segment_policy") or {}
        if policy:
            takes = ", and one per marked take" if "marker" in str(policy.get("kind", "")) else ""
            t.add_row("segments policy", f"{policy.get('window')} s windows, hop {policy.get('hop')} s{takes}")
        t.add_row("index type", f"{info.get('index_type')} ({info.get('faiss_factory')}, {info.get('metric')})")
        if info.get("index_params"):
            t.add_row("index parameters", str(info["index_params"]))
        if info.get("recall_at_10") is not None:     # an exact index's 1.0 is so by construction
            exact = info.get("index_kind", "flat") == "flat"
            t.add_row(f"recall@10 ({'exact search' if exact else 'measured'})", f"{info['recall_at_10']:.3f}")
        elif not c["segments"]:
            t.add_row("recall@10", "— (not measured: no vectors)")
        if info.get("trained_on"):
            t.add_row("trained on", f"{count(info['trained_on'], 'vector')} (retrained when ~4× more or fewer)")
        if info.get("memory_budget"):
            t.add_row("memory budget", f"{info['memory_budget'] / 2**30:.2f} GiB")
        size = info.get("vectors_bytes")
        t.add_row("vectors file", f"{info.get('vectors_file')}"
                                  + (" (missing)" if size is None else
                                     f" ({human_size(size)}, unreadable)" if vectors_unreadable else
                                     f" ({human_size(size)})"))
        t.add_row("generation", str(info.get("generation")))
        if info.get("updated_at"):
            t.add_row("updated", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["updated_at"])))
    out_console.print(t)

    if info["formats"]:
        f = Table(title="formats")
        for col in ("format", "files", "duration"):
            f.add_column(col, justify="left" if col == "format" else "right")
        for row in info["formats"]:
            f.add_row(row["format"], str(row["files"]), _duration(row["duration"]))
        out_console.print(f)
    if info.get("sample_rates") or info.get("channels"):
        from engine.filters import channel_name
        r = Table(title="sample rates · channels")
        for col in ("sample rate", "files", "channels", "files "):
            r.add_column(col, justify="right")
        rates, chans = info.get("sample_rates") or [], info.get("channels") or []
        for i in range(max(len(rates), len(chans))):
            rate = [f"{rates[i]['sample_rate'] / 1000:g} kHz", str(rates[i]["files"])] if i < len(rates) else ["", ""]
            chan = [channel_name(chans[i]["channels"]), str(chans[i]["files"])] if i < len(chans) else ["", ""]
            r.add_row(*rate, *chan)
        out_console.print(r)
    if info.get("categories"):
        shown = info["categories"][:CATEGORIES_SHOWN]
        g = Table(title="library categories (--category)" + (f", the {len(shown)} largest of {len(info['categories'])}"
                                                              if len(shown) < len(info["categories"]) else ""))
        g.add_column("category")
        g.add_column("files", justify="right")
        for row in shown:
            g.add_row(row["category"], str(row["files"]))
        out_console.print(g)
    if info["errors"]:
        e = Table(title=f"latest errors ({len(info['errors'])} of {c['errors']})")
        e.add_column("file", overflow="fold")
        e.add_column("reason", overflow="fold")
        for row in info["errors"]:
            e.add_row(cell(row["path"]), cell(row["reason"]))
        out_console.print(e)

"""``soundsift index PATH...``: build or update an index (incremental)."""
from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any, List, Optional, Sequence

import typer

from engine.layout import index_option
from ui.cli.app import app
from ui.cli.common import (INTERRUPTED_EXIT, MODEL_HELP, IndexOption, ProgressOption, VerboseOption, count,
                           err_console, labelled, out_console, print_json, reports_errors, setup_logging,
                           shows_progress)


@app.command("index")
@reports_errors
def index_command(
    paths: List[Path] = typer.Argument(..., help="Folders (scanned recursively) or audio files."),
    index: IndexOption = None,
    model: Optional[str] = typer.Option(
        None, "--model", "-m",
        help=MODEL_HELP + " Default: the model the index was built with; 'soundsift-base' for a new "
                          "one, and with --rebuild."),
    workers: Optional[int] = typer.Option(
        None, "--workers", "-j", min=0,
        help="Decoder processes, as make -j (0: decode in this process). Default: half the cores."),
    old_workers: Optional[int] = typer.Option(
        None, "-w", min=0, hidden=True, help="Deprecated spelling of --workers (-w is --keywords in search)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1,
                                             help="Segments per model call (default 16)."),
    checkpoint_files: int = typer.Option(
        256, "--checkpoint-files", min=1, help="Commit after this many finished files (an interrupted run keeps them)."),
    checkpoint_seconds: float = typer.Option(60.0, "--checkpoint-seconds", min=0.0,
                                             help="…or after this many seconds, whichever comes first (after a commit "
                                                  "that took over 0.25 s, not before 19 times its time)."),
    memory_budget: Optional[str] = typer.Option(
        None, "--memory-budget",
        help="Memory the vectors may take (e.g. 4G, 512M, 25%); picks the FAISS index type: exact "
             "while small, IVF-Flat, then compressed (SQ8, OPQ+PQ) when float32 vectors don't fit. "
             "Default: $SOUNDSIFT_MEMORY_BUDGET, else a quarter of physical memory."),
    rebuild: bool = typer.Option(
        False, "--rebuild",
        help="Re-embed every file under PATH... with --model (default soundsift-base, not the index's "
             "own model) into a fresh index that replaces this one once complete; tags and captions of "
             "unchanged, moved or renamed files are carried over. Until then the index stays searchable; a failed or "
             "interrupted rebuild leaves it as it was. For a changed or another model."),
    watch: Optional[float] = typer.Option(
        None, "--watch", min=1.0, metavar="SECONDS",
        help="Keep going: look at PATH... every SECONDS (names, sizes, times; no audio read) and index "
             "again when files were added, changed or removed. The model stays loaded. Ctrl-C (or "
             "SIGTERM) stops it as it stops a run: finished files kept, exit status 130."),
    json_out: bool = typer.Option(False, "--json", help="Print the run summary as JSON on stdout "
                                                        "(with --watch: one line per run)."),
    progress: ProgressOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Index the audio files under PATH... (new and changed files only; deleted ones are dropped).

    Bad files are reported (one warning each; `soundsift info` lists them) and skipped: the run still exits 0.

    An interrupted run keeps its last checkpoint: run it again to finish.

    With --rebuild the whole index is re-embedded (e.g. after soundsift-base was retrained).
    """
    setup_logging(verbose)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    from indexer import build_index
    from indexer.runner import IndexInterrupted

    workers = _workers(workers, old_workers)
    budget = _memory_budget(memory_budget)
    _warn_of_the_index_here(index)
    options = dict(workers=workers, batch_size=batch_size,
                   progress=shows_progress(progress),
                   checkpoint_files=checkpoint_files, checkpoint_seconds=checkpoint_seconds, memory_budget=budget)
    if watch is not None:
        if rebuild:
            raise typer.BadParameter("--rebuild replaces the index once; run it, then --watch", param_hint="--watch")
        _watch(paths, index, model, watch, json_out, options)
        return
    try:
        summary = build_index(paths, index=index, model=model, rebuild=rebuild, **options)
    except IndexInterrupted as stopped:     # the warning said what was kept; --json says it too
        if json_out:
            print_json(stopped.summary.to_dict())
        raise typer.Exit(INTERRUPTED_EXIT) from None
    if json_out:
        print_json(summary.to_dict())
        _note_sheets(summary.to_dict(), paths)  # notes go to stderr with --json too
    else:
        _print_summary(summary.to_dict(), paths)


def _workers(given: Optional[int], old: Optional[int]) -> Optional[int]:
    """``--workers``/``-j``, or the deprecated ``-w`` (which means ``--keywords`` to `search`) with a
    warning on stderr: a script writing ``index -w 4`` keeps working and is told the new spelling."""
    if old is None:
        return given
    if given is not None:
        raise typer.BadParameter("-w is the old spelling of --workers: give -j (or --workers) alone",
                                 param_hint="-w")
    err_console.print(labelled("warning:", "yellow", f"`soundsift index -w {old}` is deprecated (in `soundsift "
                               f"search`, -w is --keywords): write -j {old} or --workers {old}"))
    return old


def _warn_of_the_index_here(index: Optional[str]) -> None:
    """A warning on stderr when ``--index NAME``, a bare name, is about to make a new index under
    the index home while ``./NAME`` here is an index folder (which ``--index ./NAME`` opens, and the
    search commands point at): the run would embed the whole library again into another index."""
    from engine.layout import IndexLayout, index_here, is_index_name, resolve_index_dir
    if index is None or not is_index_name(index):
        return
    root = resolve_index_dir(index)
    here = None if IndexLayout(root).catalog.is_file() else index_here(index, root)
    if here is not None:
        err_console.print(labelled("warning:", "yellow", f"{here} is an index folder, but --index {index} is a bare "
                                   f"name: this run makes a new index at {root} and embeds every file into it. "
                                   f"To update {here}, stop it (Ctrl-C) and pass --index {index_option(here)}"),
                          highlight=False, soft_wrap=True)


def _memory_budget(given: Optional[str]) -> Optional[int]:
    """``--memory-budget`` in bytes (None: not given, after checking $SOUNDSIFT_MEMORY_BUDGET,
    which the run would read: InvalidConfig naming it); a value soundsift cannot use is one line,
    exit code 1 (InvalidQuery), before any work."""
    from engine.errors import InvalidQuery
    from engine.index_choice import default_memory_budget, parse_memory_budget

    if given is None:
        default_memory_budget()
        return None
    try:
        return parse_memory_budget(given)
    except ValueError as e:
        raise InvalidQuery(f"--memory-budget: {e}") from e


def _watch(paths: List[Path], index: Optional[str], model: Optional[str], interval: float, json_out: bool,
           options: dict[str, Any]) -> None:
    """``--watch``: the first run's summary as usual, then one line per run. Ctrl-C or SIGTERM
    ends it as it ends a plain run, exit status 130 (a run in progress commits its finished files
    first; with --json its summary, ``"interrupted": true``, is the last line)."""
    import json
    import time

    from indexer.runner import IndexInterrupted
    from indexer.watch import watch_index

    runs = 0

    def report(summary: Any) -> None:
        nonlocal runs
        s = summary.to_dict()
        if json_out:
            sys.stdout.write(json.dumps(s, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            if runs == 0:
                _note_sheets(s, paths)
        elif runs == 0:
            _print_summary(s, paths)
        else:
            out_console.print(f"{time.strftime('%H:%M:%S')} generation {s['generation']}: {s['added']} added, "
                              f"{s['updated']} updated, {s['removed']} removed, "
                              + (f"{s['moved']} moved, " if s.get("moved") else "")
                              + (f"{s['reencoded']} re-encoded, " if s.get("reencoded") else "")
                              + (f"{s['kept_for_reencode']} deleted kept a while for a conversion, "
                                 if s.get("kept_for_reencode") else "") + f"{s['failed']} failed "
                              f"({s['seconds']:.1f} s)", highlight=False)
        runs += 1
    try:
        watch_index(paths, index, model, interval=interval, on_run=report, **options)
    except KeyboardInterrupt as stopped:      # Ctrl-C or SIGTERM (indexer.interrupts), in a run or between runs
        if json_out and isinstance(stopped, IndexInterrupted):
            report(stopped.summary)
        err_console.print("stopped watching", highlight=False)   # stdout: only the runs (JSON lines with --json)
        raise typer.Exit(INTERRUPTED_EXIT) from None


def _print_summary(s: dict[str, Any], paths: Sequence[Path] = ()) -> None:
    from rich.table import Table

    title = f"index {s['index']} (generation {s['generation']})"
    t = Table(title=title + (", rebuilt" if s.get("rebuild") else ""), show_header=False)
    if s.get("rebuild"):
        t.add_row("model", f"{s['model']} (was {s['previous_model'] or '?'})")
    for key in ("added", "updated", "removed", "unchanged", "failed"):
        t.add_row(key, str(s[key]))
    if s.get("moved"):
        kept = "tags and captions" if s.get("rebuild") else "vectors, tags and captions"   # a rebuild embeds all
        t.add_row("moved or renamed", f"{s['moved']} (kept their {kept})")
    if s.get("reencoded"):
        from indexer.reencodes import named
        t.add_row("re-encoded in place", f"{s['reencoded']} of the updated (kept their tags, captions and sheet rows): "
                                         f"{named(s['reencoded_files'], s['reencoded'])}")
    if s.get("same_file"):
        t.add_row("other names of a file", f"{count(s['same_file'], 'hard link')} (given its vectors, not embedded again)")
    if s.get("same_audio"):
        t.add_row("identical copies", f"{count(s['same_audio'], 'copy', 'copies')} of another file, byte for byte "
                                      "(given its vectors, not embedded again)")
    if s.get("metadata_reread"):
        t.add_row("metadata read again", f"{count(s['metadata_reread'], 'unchanged file')} (a newer reader)")
    if s.get("levels_measured"):
        t.add_row("loudness measured", f"{count(s['levels_measured'], 'unchanged file')} (indexed before it was)")
    if s.get("skipped"):
        from indexer.scan import describe_skipped
        t.add_row("not scanned", describe_skipped(s["skipped"], s.get("skipped_folders") or ()))
    t.add_row("segments embedded", str(s["n_segments"]))
    if s.get("silent_left_out"):
        t.add_row("silent segments", f"{s['silent_left_out']} left out (digital silence, in files with sound elsewhere)")
    if s.get("silence_judged"):
        t.add_row("silence judged", f"{count(s['silence_judged'], 'unchanged file')} indexed before it was left out: "
                                    f"{count(s.get('silent_segments_dropped', 0), 'stored segment')} of digital "
                                    "silence dropped (nothing embedded again)")
    t.add_row("audio", f"{s['audio_seconds']:.1f} s")
    t.add_row("wall time", f"{s['seconds']:.2f} s")
    t.add_row("speed", _speed(s))
    totals = s.get("totals") or {}
    t.add_row("index now holds", f"{count(totals.get('files', 0), 'file')}, "
                                 f"{count(totals.get('segments', 0), 'segment')}, "
                                 f"{count(totals.get('errors', 0), 'error')}")
    if s.get("rebuild"):
        kept, left = s["carried_over"], s["not_carried_over"]
        t.add_row("carried over", f"{count(kept['tags'], 'tag')}, {count(kept['captions'], 'caption')} "
                                  f"(not: {count(left['tags'], 'tag')}, {count(left['captions'], 'caption')})")
    out_console.print(t)
    _note_sheets(s, paths)
    st = Table(title="time per stage (s)")
    st.add_column("stage")
    st.add_column("seconds", justify="right")
    for stage, sec in s["timings"].items():
        st.add_row(stage, f"{sec:.3f}")
    out_console.print(st)
    footnote = _stages_footnote(s)
    if footnote:
        out_console.print(footnote, style="dim")


def _note_sheets(s: dict[str, Any], paths: Sequence[Path] = ()) -> None:
    """The note on stderr (with --json too) naming the spreadsheets among the files that were
    not imported as library sheets (``sheets_not_imported``), if any: each by its path in the
    library given (``paths``, as the user wrote them), and a lone one in the ready-to-run import."""
    sheets = s.get("sheets_not_imported") or []
    if sheets:
        given = [_as_given(p, paths) for p in sheets]
        names = ", ".join(name for name, _ in given[:3]) + (f" (+{len(sheets) - 3} more)" if len(sheets) > 3 else "")
        sheet = shlex.quote(given[0][1]) if len(sheets) == 1 and given[0][1] else "SHEET"
        err_console.print(f"note: spreadsheets among the files, not imported as library sheets: {names}; if one "
                          f"describes the sounds, `soundsift sheet import {sheet} --index {index_option(s['index'])}` "
                          "makes its descriptions searchable", highlight=False, soft_wrap=True)


def _as_given(sheet: str, paths: Sequence[Path]) -> tuple[str, str | None]:
    """A spreadsheet found in the library: its path under the given library folder holding it
    (a bare name at the folder's top; two folders' metadata.csv told apart), and its path as the
    user would write it (that folder as given, joined to it), None where no given folder holds it."""
    real = os.path.realpath(sheet)
    for root in sorted(paths, key=lambda p: -len(os.path.realpath(p))):         # the deepest folder first
        rel = os.path.relpath(real, os.path.realpath(root))
        if rel == ".":
            return os.path.basename(sheet), str(root)
        if not rel.startswith(os.pardir + os.sep) and rel != os.pardir:
            return rel, os.path.join(str(root), rel)
    return (os.path.basename(sheet), None) if not paths else (sheet, sheet)


def _speed(s: dict[str, Any]) -> str:
    """The summary's speed row: files per second and times real time of what was embedded, or
    that nothing was (a speed of files skipped, copied or failing says nothing)."""
    if not s["n_segments"]:
        return "nothing embedded" if s["added"] or s["updated"] or s["failed"] else "nothing to embed"
    return f"{s['files_per_second']:.2f} files/s, {s['x_realtime']:.1f}× real time"


def _stages_footnote(s: dict[str, Any]) -> str:
    """Where decode and resample ran (``workers``: 0 in this process), to read the stage times
    by; for a run that embedded nothing, what its decode_wait was spent on (none where it is 0)."""
    workers = s.get("workers")
    if not s["n_segments"]:             # no model waited for audio: the decoder started, and read files that failed
        if not (s.get("timings") or {}).get("decode_wait"):
            return ""
        if not workers:
            return ("nothing was embedded: decode_wait is the time the decoder (in this process, --workers 0) "
                    "spent reading files that failed.")
        return (f"nothing was embedded: decode_wait is the time the run waited on "
                f"{count(workers, 'decoder worker process', 'decoder worker processes')} (starting, and reading "
                "any file that failed).")
    if workers == 0:
        return ("decode and resample ran in this process (--workers 0), between the model's batches; "
                "decode_wait is the time they kept the model waiting.")
    where = f"{count(workers, 'worker process', 'worker processes')}" if workers else "worker processes"
    return f"decode and resample ran in {where}, beside embed; decode_wait is the time the model waited for audio."

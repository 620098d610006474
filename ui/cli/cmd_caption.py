"""``soundsift caption PATH...``: tag-guided synthetic captions (BLAT) → a training manifest."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import typer

from ui.cli.app import app
from ui.cli.common import (INDEX_HELP, MODEL_HELP, VerboseOption, count, err_console, error_records, labelled,
                           out_console, present_audio_files, print_json, relays_decoder_output, reports_errors,
                           setup_logging)


def _index_model(index: Optional[str]) -> Optional[str]:
    """The model an existing index was built with (its catalog's ``model_name``)."""
    from engine.catalog import catalog_session, get_meta
    from engine.layout import IndexLayout, resolve_index_dir

    layout = IndexLayout(resolve_index_dir(index))
    if not layout.catalog.is_file():
        return None
    with catalog_session(layout) as s:
        return get_meta(s).get("model_name")


def _why_none(source: str, threshold: float) -> str:
    """Why a file that was read got no captions."""
    return ("no description, title, comment or keywords" if source == "metadata" else
            f"no tag reached --threshold {threshold:g}")


@app.command("caption")
@reports_errors
@relays_decoder_output
def caption_command(
    paths: List[Path] = typer.Argument(..., help="Audio files or folders (searched recursively)."),
    out: Path = typer.Option(Path("manifest.jsonl"), "--out", "-o", help="Training manifest to write (JSONL: "
                                                                                   "name it .jsonl)."),
    index: Optional[str] = typer.Option(None, "--index", "-i",
                                        help=INDEX_HELP + " When given, tags and captions are stored in its catalog."),
    source: str = typer.Option("yamnet", "--source", "-s",
                               help="yamnet: AudioSet tags from YAMNet; model: the model's zero-shot tags; both; "
                                    "metadata: the description, title and comment each file carries, as written."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help=MODEL_HELP + " For --source model/both; default: the index's model, "
                                                          "else soundsift-base."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l", help="Comma-separated zero-shot labels (--source model/both; "
                                                                   "a label holding a comma in double quotes)."),
    labels_file: Optional[Path] = typer.Option(None, "--labels-file", help="Zero-shot labels, one per line "
                                                                              "(--source model/both)."),
    top_k: int = typer.Option(5, "--top-k", "-k", min=1, help="Keep at most this many tags per file."),
    threshold: float = typer.Option(0.2, "--threshold", "--min-score", "-t", min=0.0, max=1.0,
                                    help="Minimum tag score (YAMNet posterior / zero-shot softmax); --min-score "
                                         "as `soundsift tag` and `sheet export` call it."),
    captions_per_file: int = typer.Option(3, "--captions", min=1, help="Captions written per file."),
    sheet: Optional[Path] = typer.Option(None, "--sheet",
                                         help="With --source metadata: a library's metadata sheet (CSV, "
                                              "tab-separated, .xlsx or .ods, as `soundsift sheet import` reads) whose "
                                              "descriptions join the files' own."),
    json_out: bool = typer.Option(False, "--json", help='Print {"manifest", "rows", "errors", "missing", "stored", '
                                                        '"files"} on stdout: "errors" the unreadable files '
                                                        '[{"path", "reason"}] as `index` lists them; each of "files" '
                                                        'is its manifest row (its path as "audio") with "path" as '
                                                        'other commands name it.'),
    verbose: VerboseOption = False,
) -> None:
    """Caption unlabeled audio from its tags (BLAT) and write a training manifest.

    Tags come from YAMNet (AudioSet classes) and/or the model's zero-shot labels; with --source
    metadata the captions are the descriptions the files carry, and with --sheet those a
    library's spreadsheet gives them (a described library trains on its own words). With --index,
    tags and captions are also stored in that index's catalog; the run then holds the index's
    writer lock, as `soundsift index` does: it fails at once when another process is writing
    that index."""
    setup_logging(verbose)
    from contextlib import AbstractContextManager, nullcontext

    from engine.errors import InvalidQuery
    from engine.outputs import output_file
    from engine.layout import existing_index
    from trainer.caption_loop import caption_files, store_in_catalog, write_manifest
    from trainer.datasets import JSONL_SUFFIXES

    if labels is not None and labels_file:
        raise InvalidQuery("give --labels or --labels-file, not both")
    if (labels is not None or labels_file) and source in ("yamnet", "metadata"):
        raise InvalidQuery(f"--labels and --labels-file choose the zero-shot labels: they go with --source model or "
                           f"both (--source {source} would ignore them)")
    output_file(out)                  # a folder there: say so before any work
    if out.suffix.lower() not in JSONL_SUFFIXES:
        raise InvalidQuery(f"--out {out}: the manifest is written as JSONL, which `soundsift train` reads from a "
                           f"file named .jsonl (or .json, .ndjson); name it e.g. {out.with_suffix('.jsonl').name}")
    if source == "metadata" and index is not None:
        raise InvalidQuery("--source metadata reads what the files carry, which the index already holds "
                           "(keyword search matches it): drop --index")
    lock: AbstractContextManager = nullcontext()
    if index is not None:
        from indexer.write import WriterLock
        lock = WriterLock(existing_index(index).lock)      # IndexNotFound / IndexBusy before any work
    with lock:
        files, missing = present_audio_files(paths, logging.getLogger("soundsift.caption"))
        the_model, label_list = None, None
        if source in ("model", "both"):
            from engine.models import load_model
            the_model = load_model(model or (_index_model(index) if index else None))
            if labels is not None or labels_file:
                from engine.vocabulary import load_labels_file, one_label_note, parse_labels
                label_list = parse_labels(labels) if labels is not None else load_labels_file(labels_file)
                note = one_label_note(label_list, "every file gets it as a tag, at any --threshold; give the "
                                                  "other things the sounds may be as labels too")
                if note:
                    err_console.print(f"note: {note}", highlight=False, soft_wrap=True)
        rows, errors = caption_files(files, source=source, model=the_model, labels=label_list, top_k=top_k,
                                     threshold=threshold, captions_per_file=captions_per_file, sheet=sheet)
        # no captions: a manifest already there (an earlier run's) is kept, not emptied, and the
        # index keeps the tags and captions it has (the run fails: it changes nothing)
        written = write_manifest(rows, out) if any(r.captions for r in rows) else 0
        stored = store_in_catalog(index, rows) if index and written else None
    if json_out:
        print_json({"manifest": str(out) if written else None, "rows": written, "errors": error_records(errors),
                    "missing": [str(p) for p in missing], "stored": stored,
                    "files": [{"path": r.path, **r.manifest_row()} for r in rows]})
    else:
        _say_what_was_done(written, len(files), out, rows, errors, missing, stored, source, threshold)
    if not written:         # an empty manifest trains nothing: say why, and fail the command
        why = ("none of them could be read" if len(errors) == len(files) else
               "none of them carries a description, title or comment (their metadata), and no --sheet "
               "describes them" if source == "metadata" else "no tag reached --threshold")
        kept = f"; index {index} keeps its tags and captions" if index else ""
        err_console.print(labelled("error:", "bold red", f"no captions: {why}{kept}"), highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _say_what_was_done(written: int, n_files: int, out: Path, rows: list, errors: list, missing: list,
                       stored: Optional[dict], source: str, threshold: float) -> None:
    """`caption`'s summary on stdout (its result, as `index` and `sheet export` print theirs): the
    files captioned, unreadable, left without captions and not found, then what the index stored."""
    uncaptioned = sum(not r.captions for r in rows)
    out_console.print(f"captioned {written} of {count(n_files, 'file')} → {out}" + ("" if written else " not written")
                      + (f"; {len(errors)} unreadable" if errors else "")
                      + (f"; {uncaptioned} without captions ({_why_none(source, threshold)})" if uncaptioned else "")
                      + (f"; {count(len(missing), 'path')} not found" if missing else ""),
                      highlight=False, soft_wrap=True)
    if stored is not None:          # said even when nothing was written: the catalog changed
        outside, bare = stored["not_in_index"], stored["left_bare"]
        out_console.print(f"stored {count(stored['tags'], 'tag')} and {count(stored['captions'], 'caption')} for "
                          f"{count(stored['files'] - bare, 'file')} in the index"
                          + (f" ({count(outside, 'file')} not indexed)" if outside else "")
                          + (f"; {count(bare, 'file')} got none (no tag reached --threshold): "
                             f"{'its' if bare == 1 else 'their'} earlier tags and captions removed" if bare else ""),
                          highlight=False)

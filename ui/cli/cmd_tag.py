"""``soundsift tag PATH...``: zero-shot labels for a sound, a folder, or the files of an index."""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional

import typer

from engine.query_defaults import DEFAULT_TEMPLATE
from ui.cli.app import app
from ui.cli.common import (INDEX_HELP, MODEL_HELP, VerboseOption, count, error_records, out_console,
                           present_audio_files, print_json, relays_decoder_output, reports_errors, setup_logging)

TEMPLATE_HELP = "Prompt each label is put in; must contain {label}."

log = logging.getLogger("soundsift.tag")


@app.command("tag")
@reports_errors
@relays_decoder_output
def tag_command(
    paths: List[Path] = typer.Argument(..., help="Audio files or folders (searched recursively)."),
    labels: Optional[str] = typer.Option(None, "--labels", "-l",
                                         help="Comma-separated labels, e.g. \"dog,rain,car horn\"; a label holding "
                                              "a comma in double quotes: '\"Walk, footsteps\",rain'."),
    labels_file: Optional[Path] = typer.Option(
        None, "--labels-file", help="Text file with one label per line (or a CSV with a "
                                    "display_name/label/name column)."),
    top: int = typer.Option(5, "--top", "-t", "--top-k", "-k", min=1,
                            help="Number of labels to show (also -k/--top-k, the name search, similar and "
                                 "caption give a count)."),
    min_score: float = typer.Option(0.0, "--min-score", min=0.0, max=1.0,
                                    help="Leave out tags scoring below this (of the --top best); a file or "
                                         "segment with none left says so."),
    index: Optional[str] = typer.Option(
        None, "--index", "-i", help=INDEX_HELP + " Tag with its model; the files it holds are tagged "
                                    "from their stored vectors, without decoding."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help=MODEL_HELP + " Default: the index's model, else soundsift-base."),
    template: str = typer.Option(DEFAULT_TEMPLATE, "--template", help=TEMPLATE_HELP),
    timeline: bool = typer.Option(False, "--timeline",
                                  help="One file: the tags of each of its segments in time order (the "
                                       "model's windows, 10 s every 5 s for soundsift-base, and each take its "
                                       "named markers mark), so a long recording says what it holds when."),
    json_out: bool = typer.Option(False, "--json",
                                  help='Print {"files", "errors", "missing"} on stdout: "files" a record per '
                                       'file tagged (one file too), [{"path", "tags", "from_index"}], its tags '
                                       '[{"label", "score", "cosine"}] best first; "errors" the files that could '
                                       'not be read, [{"path", "reason"}] as `index` lists them; "missing" the '
                                       'paths that do not exist. With --timeline {"path", "from_index", '
                                       '"segments"}, its segments [{"start", "end", "tags", "marker" (takes '
                                       'only)}] in time order.'),
    verbose: VerboseOption = False,
) -> None:
    """Zero-shot tags: score = softmax over the labels of the model's scaled cosine.

    Labels default to the shipped vocabulary (AudioSet's 521 classes for the bundled
    soundsift-base and soundsift-fast, 495 everyday sounds for other models). One file gives
    its tags; a folder or several files give each file's top tags (unreadable files, and paths
    that do not exist among several, are reported, in --json too, and skipped); --timeline gives one file's tags
    segment by segment. A note on stderr says when the scores say little: one label (it scores 1
    for every sound) or a sound under 0.1 s (too short for the model to tell what it is).
    """
    setup_logging(verbose)
    from engine.errors import InvalidQuery
    from engine.vocabulary import load_labels_file, parse_labels

    if labels is not None and labels_file:
        raise InvalidQuery("give --labels or --labels-file, not both")
    label_list = (parse_labels(labels) if labels is not None
                  else load_labels_file(labels_file) if labels_file else None)
    paths = [_as_on_disk(p) for p in paths]
    one_file = len(paths) == 1 and paths[0].is_file()
    if timeline:
        if not one_file:
            single = len(paths) == 1
            raise InvalidQuery(f"--timeline tags one file; {', '.join(map(str, paths))} "
                               + ("is a folder" if single and paths[0].is_dir() else
                                  "does not exist" if single and not paths[0].exists() else
                                  "are several" if not single else "is not a file"))
        _tag_timeline(paths[0], label_list, index, model, top, template, json_out, min_score)
        return
    with _tagging_source(index, model) as (the_model, sound_index):
        from engine.tagging import tag_files
        from engine.vocabulary import default_labels

        gone = _indexed_not_on_disk(paths, sound_index)
        here = [p for p in paths if p not in gone]
        files, missing = present_audio_files(here, log) if here else ([], [])
        files += gone
        one_file = one_file or (len(paths) == 1 and bool(gone))

        tagger = sound_index.model if sound_index else the_model
        name, label_list = tagger.name, label_list or default_labels(tagger)
        tagged, errors = tag_files(files, label_list, model=the_model, index=sound_index, top=top,
                                   template=template, min_score=min_score)
    if len(files) == 1 and errors:
        raise errors[0]
    for e in errors:
        log.warning("%s", e)
    if not tagged:
        raise InvalidQuery(f"none of the {len(files)} files could be read; the first: {errors[0]}")
    n_labels = len(label_list)
    if json_out:                # one record per file whatever the number of paths: one shape for scripts
        print_json({"files": [t.to_dict() for t in tagged], "errors": error_records(errors),
                    "missing": [str(p) for p in missing]})
    elif one_file:
        where = " (not on disk)" if tagged[0].missing else ""
        _print_tags(tagged[0].tags, f"{paths[0].name}{where} — {name}, {count(n_labels, 'label')}", min_score)
    else:
        _print_file_tags(tagged, f"{count(len(tagged), 'file')} — {name}, {count(n_labels, 'label')}", min_score)
    _say_notes(label_list, [(t.path, t.seconds) for t in tagged])
    for t in tagged:
        if t.missing:
            log.warning("%s: not on disk: tagged from the vectors the index stored of it", t.path)
    if one_file:
        return
    skipped = ([f"{len(errors)} of {count(len(files), 'file')} could not be read"] if errors else []) + (
        [f"{count(len(missing), 'path')} not found"] if missing else [])
    if skipped:
        from ui.cli.common import err_console
        err_console.print(f"{'; '.join(skipped)} (warnings above)", highlight=False)


def _indexed_not_on_disk(paths: list[Path], sound_index: Any) -> list[Path]:
    """Of ``paths``, those not on disk now (moved, deleted, an unmounted drive) that the index
    holds: tagged from its stored vectors, as `soundsift similar` finds sounds like them."""
    if sound_index is None:
        return []
    absent = [p for p in paths if not os.path.lexists(p)]
    held = sound_index.file_states([str(p) for p in absent]) if absent else {}
    return [p for p in absent if str(p) in held]


def _as_on_disk(path: Path) -> Path:
    """``path`` as the disk spells its names where it does not exist as typed but does so spelt (a
    name typed with its accents composed, "é", for a file copied from a macOS HFS+ disk, which keeps
    them decomposed: engine.folder_paths.on_disk_spelling), so that it is tagged, and found in the
    index, as that file; else as given."""
    from engine.folder_paths import on_disk_spelling
    if os.path.lexists(path) or str(path).isascii():
        return path
    spelt = on_disk_spelling(os.path.abspath(os.path.expanduser(str(path))))
    return Path(spelt) if os.path.lexists(spelt) else path


def _tag_timeline(path: Path, label_list: Optional[list], index: Optional[str], model: Optional[str],
                  top: int, template: str, json_out: bool, min_score: float = 0.0) -> None:
    """``soundsift tag FILE --timeline``: one row per segment, in time order."""
    from engine.tagging import tag_timeline
    from engine.vocabulary import default_labels
    with _tagging_source(index, model) as (the_model, sound_index):
        tagger = sound_index.model if sound_index else the_model
        label_list = label_list or default_labels(tagger)
        spans, from_index = tag_timeline(path, label_list, model=the_model, index=sound_index, top=top,
                                         template=template, min_score=min_score)
    if json_out:
        print_json({"path": str(path), "from_index": from_index,    # as --json's "files" records name theirs
                    "segments": [s.to_dict() for s in spans]})
    else:
        _print_timeline(path, spans, from_index, f"{tagger.name}, {count(len(label_list), 'label')}", min_score)
    _say_notes(label_list, [(str(path), max((s.end for s in spans), default=None))])


def _print_timeline(path: Path, spans: list, from_index: bool, what: str, min_score: float) -> None:
    """The timeline's table: a row per segment, the take its marker names, its tags."""
    from rich.table import Table

    from ui.cli.results import clock
    source = "stored vectors" if from_index else "decoded"
    table = Table(title=f"{path.name} — {what}, {count(len(spans), 'segment')} ({source})")
    table.add_column("time", no_wrap=True)
    table.add_column("take", overflow="fold")
    table.add_column("tags (score)", overflow="fold", ratio=1)
    for s in spans:
        table.add_row(f"{clock(s.start)}–{clock(s.end)}", s.marker or "", _tag_cell(s.tags, min_score))
    out_console.print(table)


@contextmanager
def _tagging_source(index: Optional[str], model: Optional[str]) -> Iterator[tuple]:
    """(model, None) without an index; (None, open SoundIndex) with one, whose model embeds the
    labels without torch where it can (a file the index holds is tagged from its stored vectors;
    another one loads the rest of the model)."""
    if index is None:
        from engine.models import load_model
        yield load_model(model), None
        return
    from engine.query import SoundIndex
    with SoundIndex.open(index, model=model, text_only=True) as sound_index:
        yield None, sound_index


def _say_notes(labels: list[str], lengths: list[tuple[str, Optional[float]]]) -> None:
    """A note on stderr for what makes the scores say little: one label (it scores 1 for every
    sound) and each sound too short to be told apart, worded as the page and the HTTP API word
    them (engine.tagging.tag_notes)."""
    from engine.tagging import tag_notes
    from ui.cli.common import err_console
    from ui.cli.results import display_path

    notes = tag_notes(labels, [(display_path(path), seconds) for path, seconds in lengths],
                      "compare the cosines (--json) or give other labels too")
    for note in notes:
        err_console.print(f"note: {note}", highlight=False, soft_wrap=True)


def _none_above(min_score: float) -> str:
    """What a file or segment none of whose tags reached ``--min-score`` shows."""
    return f"no tag scores {min_score:g} or more (--min-score)"


def _tag_cell(tags: list[dict], min_score: float) -> str:
    """Tags in one cell, best first; a label holding a comma in double quotes, as --labels takes it."""
    from engine.vocabulary import quoted
    return ", ".join(f"{quoted(t['label'])} {t['score']:.2f}" for t in tags) if tags else _none_above(min_score)


def _print_tags(tags: list[dict], title: str, min_score: float = 0.0) -> None:
    """One file's tags as a table (label, score, cosine), best first."""
    if not tags:
        out_console.print(f"{title}: {_none_above(min_score)}", highlight=False)
        return
    from rich.table import Table

    table = Table(title=title)
    table.add_column("label")
    table.add_column("score", justify="right")
    table.add_column("cosine", justify="right")
    for t in tags:
        table.add_row(t["label"], f"{t['score']:.3f}", f"{t['cosine']:.3f}")
    out_console.print(table)


def _print_file_tags(tagged: list, title: str, min_score: float = 0.0) -> None:
    from rich.table import Table

    from ui.cli.results import display_path

    table = Table(title=title)
    table.add_column("file", overflow="fold", ratio=1)
    table.add_column("tags (score)", overflow="fold", ratio=2)
    for t in tagged:
        table.add_row(display_path(t.path), _tag_cell(t.tags, min_score))
    out_console.print(table)

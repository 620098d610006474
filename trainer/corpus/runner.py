"""Build the offline training corpus: gather → split by source → balance → convert → manifests + stats.

Output folder layout::

    audio/<source>/<label>-<hash>.flac   clips (original rate and channels; synthesis varies rates)
    train.jsonl, val.jsonl               manifests (audio, captions[], tags[], source, label, …)
    stats.json                           counts per source and label, durations, skips, timings
    .cache/                              downloaded .debs and unpacked packages (reused)
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import CorpusError
from engine.outputs import output_folder
from trainer.corpus.clips import Candidate
from trainer.corpus.select import DEFAULT_VALIDATION, balance, split_by_source

log = logging.getLogger(__name__)

SYNTH_SOURCES = ("tones", "speech", "music", "signals", "gm-effects")
MIN_VALIDATION = 200


@dataclass
class CorpusSummary:
    """What a build produced; also written to stats.json."""

    train: int = 0
    val: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    per_source: dict[str, int] = field(default_factory=dict)
    per_label: dict[str, int] = field(default_factory=dict)
    val_sources: list[str] = field(default_factory=list)
    dropped_names: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    stale_removed: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def all_sources() -> list[str]:
    """Every source the recipe knows: the package sources of recipes.toml and the synthesisers."""
    from trainer.corpus.packages import load_recipes
    return sorted(load_recipes()) + list(SYNTH_SOURCES)


def check_source_names(sources: list[str], val_sources: list[str] | None = None) -> None:
    """Raise :class:`CorpusError` for a source the recipe does not know (one line: each unknown
    name, the known one it looks like a typo of, then the known names), or a validation source
    that is not among ``sources``."""
    from trainer.config import with_guesses
    known = all_sources()
    unknown = [s for s in [*sources, *(val_sources or [])] if s not in known]
    if unknown:
        raise CorpusError(f"unknown corpus source{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(with_guesses(unknown, known))}; known: {', '.join(known)}")
    outside = [s for s in val_sources or [] if s not in sources]
    if outside:
        raise CorpusError(f"validation source{'s' if len(outside) > 1 else ''} {', '.join(outside)} "
                          f"{'are' if len(outside) > 1 else 'is'} not among the sources built: {', '.join(sources)}")


def gather(sources: list[str], cache: Path, *, seed: int, synth_per_label: int
           ) -> tuple[list[Candidate], dict[str, int]]:
    """Candidates of every named source (packages fetched into ``cache`` once) and how many
    files each package source dropped for names without meaning."""
    from trainer.corpus.debian import fetch_package
    from trainer.corpus.packages import load_recipes, package_candidates
    recipes = load_recipes()
    check_source_names(sources)
    cands: list[Candidate] = []
    dropped: dict[str, int] = {}
    for name in sources:
        if name in recipes:
            tree = fetch_package(recipes[name].package, cache)
            got, dropped[name] = package_candidates(tree, recipes[name])
        elif name == "tones":
            from trainer.corpus.tones import tone_candidates
            got = tone_candidates(synth_per_label, seed)
        elif name == "speech":
            from trainer.corpus.speech import speech_candidates
            got = speech_candidates(synth_per_label * 15, seed)
        elif name == "signals":
            from trainer.corpus.signals import signal_candidates
            got = signal_candidates(synth_per_label, seed)
        elif name == "gm-effects":
            from trainer.corpus.music import effect_candidates
            got = effect_candidates(synth_per_label, seed, cache / "midi")
        else:
            from trainer.corpus.music import music_candidates
            got = music_candidates(max(1, synth_per_label // 2), seed, cache / "midi")
        log.info("%-18s %5d candidate clips", name, len(got))
        cands.extend(got)
    return cands, dropped


def build_corpus(out: Path, sources: list[str] | None = None, *, max_per_label: int = 40,
                 val_max_per_label: int = 40, val_sources: list[str] | None = None,
                 seed: int = 0, synth_per_label: int = 8, max_seconds: float = 30.0,
                 cache: Path | None = None, min_val: int = MIN_VALIDATION) -> CorpusSummary:
    """Build the corpus under ``out`` (see the module docstring) and return its summary."""
    from trainer.corpus.writer import SkipClip, manifest_row, write_clip
    t0 = time.perf_counter()
    out = output_folder(out)
    sources = list(sources) if sources else all_sources()
    check_source_names(sources, val_sources)       # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache) if cache else out / ".cache"
    held = [s for s in (val_sources if val_sources is not None else DEFAULT_VALIDATION) if s in sources]
    summary = CorpusSummary(val_sources=held)

    cands, summary.dropped_names = gather(sources, cache, seed=seed, synth_per_label=synth_per_label)
    summary.timings["gather"] = round(time.perf_counter() - t0, 1)

    caps = {k: int(v) for k, v in _caps().items()}
    try:
        train, val = split_by_source(cands, held)
    except ValueError as e:
        raise CorpusError(f"--val-sources {held}: {e}") from e
    train = balance(train, max_per_label, caps, seed)
    val = balance(val, val_max_per_label, {k: min(v, val_max_per_label) for k, v in caps.items()}, seed)

    t1 = time.perf_counter()
    skipped: Counter[str] = Counter()
    per_source: Counter[str] = Counter()
    per_label: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    for split, items in (("train", train), ("val", val)):
        rows = []
        for n, c in enumerate(items, 1):
            try:
                w = write_clip(c, out, max_seconds)
            except SkipClip as e:
                skipped[c.source] += 1
                log.debug("skipped %s", e)
                continue
            rows.append(manifest_row(c, w, split))
            per_source[c.source] += 1
            per_label[c.label] += 1
            seconds[split] += w.duration
            if n % 200 == 0:
                log.info("%s: %d/%d clips written", split, n, len(items))
        _write_jsonl(out / f"{split}.jsonl", rows)
        setattr(summary, split, len(rows))
    summary.timings["convert"] = round(time.perf_counter() - t1, 1)
    summary.stale_removed = prune_audio(out)
    summary.timings["total"] = round(time.perf_counter() - t0, 1)
    summary.per_source = dict(per_source.most_common())
    summary.per_label = dict(per_label.most_common())
    summary.seconds = {k: round(v, 1) for k, v in seconds.items()}
    summary.skipped = dict(skipped)
    (out / "stats.json").write_text(json.dumps(summary.__dict__, indent=2, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    log.info("corpus: %d train + %d validation clips (%s), %.0f s of audio, in %.0f s",
             summary.train, summary.val, ", ".join(held), sum(seconds.values()), summary.timings["total"])
    for source, n in summary.per_source.items():
        log.info("  source %-18s %5d", source, n)
    for label, n in list(summary.per_label.items())[:30]:
        log.info("  label  %-28s %5d", label, n)
    if summary.train == 0:                 # train.jsonl is empty: `soundsift train` would refuse it
        log.warning("training split is empty: every source built (%s) is held out for validation "
                    "(--val-sources)", ", ".join(sources))
    if summary.val < min_val:
        log.warning("validation split has %d clips, fewer than %d: hold out more sources "
                    "(--val-sources)", summary.val, min_val)
    return summary


def prune_audio(out: Path) -> int:
    """Delete clips under ``out/audio`` that no manifest names (left by an earlier build with
    other settings); return how many."""
    named: set[str] = set()
    for split in ("train", "val"):
        path = out / f"{split}.jsonl"
        if path.is_file():
            with path.open(encoding="utf-8") as f:
                named.update(json.loads(line)["audio"] for line in f if line.strip())
    removed = 0
    for p in sorted((out / "audio").rglob("*.flac")):
        if p.relative_to(out).as_posix() not in named:
            p.unlink()
            removed += 1
    return removed


def _caps() -> dict[str, int]:
    import tomllib
    from importlib.resources import files
    return tomllib.loads((files("trainer.corpus") / "recipes.toml").read_text("utf-8")).get("caps", {})


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)

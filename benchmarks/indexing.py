"""Indexing throughput with a real-size CLAP (random weights) on a generated library.

Run by hand (not a test):
    .venv/bin/python benchmarks/indexing.py [--files 500] [--minutes 30] [--workers N] [--model M]

Builds transformers' default ``ClapConfig()`` (the laion/clap-htsat-unfused architecture)
with random weights into a temp folder (loaded by the HF backend like a download), or loads
``--model`` (e.g. soundsift-base, soundsift-fast) instead, writes
a mixed library (wav/flac/ogg/mp3/aiff, 16–96 kHz, mono/stereo, 1 s to 2 min), then in
one run measures:
  * pipeline: ``build_index`` (worker decode + cross-file batches), × real time, files/s,
    time per stage;
  * model only: ``embed_audio`` on pre-decoded 48 kHz segments at several batch sizes
    (best one kept) — the ceiling the pipeline is compared with;
  * naive: one file at a time, decode → resample → embed each segment alone;
  * with ``--before-too``: the pipeline again with the model as it ran before session 32 (its
    onnxruntime sessions left spinning after each run, onnxruntime's default, and soundsift's aisfx
    frontend on torch's threads rather than one), the two in alternating rounds (``--rounds``), their
    ratio, and the largest difference between the two models' vectors of the probe segments
    (0: these are scheduling settings and change no number).
  * with ``--workers-list 0 1 2``: the pipeline at each decoder count (0 decodes in the indexing
    process), in alternating rounds, with each round's speedup over the first count
    (``--formats wav,flac,mp3 --rates 44100,48000`` narrows the library).
Prints one JSON object (also written with --out).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FORMATS = [("wav", {}), ("flac", {}), ("ogg", {}), ("mp3", {}), ("aiff", {})]
RATES = [16000, 22050, 44100, 48000, 96000]


def make_model(folder: Path) -> Path:
    """A real-size random CLAP checkpoint with a processor (tokenizer trained offline)."""
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    from tests.tiny_models import _train_tokenizer

    if (folder / "config.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    ClapModel(ClapConfig()).eval().save_pretrained(folder)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad"),
                  tokenizer=_train_tokenizer(folder)).save_pretrained(folder)
    return folder


def lengths(n_files: int, minutes: float, rng: np.random.Generator) -> list[float]:
    """Mostly short effects (1–8 s), a few long ambiences (30–120 s), scaled to ``minutes``."""
    n_long = max(1, n_files // 25)
    x = np.concatenate([rng.uniform(1, 8, n_files - n_long), rng.uniform(30, 120, n_long)])
    x *= minutes * 60 / x.sum()
    return [float(max(0.2, v)) for v in rng.permutation(x)]


def make_library(folder: Path, n_files: int, minutes: float, seed: int = 0,
                 formats: list[str] | None = None, rates: list[int] | None = None) -> list[Path]:
    """``n_files`` noisy tones cycling through ``formats`` × ``rates`` (default all of them).

    Written in blocks through a temp name: libvorbis overflows its stack encoding one long
    buffer (an ``alloca`` as large as the buffer; libsndfile#1095, python-soundfile#396) and a
    crash there left a headers-only ``.ogg`` that later runs kept, since existing files are reused.
    """
    rng = np.random.default_rng(seed)
    fmts = [(e, kw) for e, kw in FORMATS if formats is None or e in formats]
    rates = rates or RATES
    paths = []
    for i, seconds in enumerate(lengths(n_files, minutes, rng)):
        ext, kw = fmts[i % len(fmts)]
        sr = rates[(i // len(fmts)) % len(rates)]
        if ext == "mp3" and sr > 48000:
            sr = 48000                      # MP3 tops out at 48 kHz
        n = int(seconds * sr)
        t = np.arange(n) / sr
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t) + 0.1 * rng.standard_normal(n)
        if i % 3 == 0:
            x = np.stack([x, np.roll(x, 100)], axis=1)
        p = folder / f"d{i % 10}" / f"s{i:04d}.{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists():
            write_in_blocks(p, x.astype(np.float32), sr, **kw)
        paths.append(p)
    return paths


def write_in_blocks(path: Path, x: np.ndarray, sr: int, block: int = 65536, **kw) -> None:
    """``sf.write`` ``block`` frames at a time, into a temp name renamed when complete."""
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")     # the suffix names the format
    try:
        with sf.SoundFile(str(tmp), "w", sr, 1 if x.ndim == 1 else x.shape[1], **kw) as f:
            for i in range(0, len(x), block):
                f.write(x[i:i + block])
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def model_only(model, segments: list[np.ndarray], batch_sizes: list[int]) -> dict[str, float]:
    """Segments per second of ``embed_audio`` on pre-decoded clips, per batch size."""
    out = {}
    model.embed_audio(segments[:1])             # warm-up
    for bs in batch_sizes:
        t = time.perf_counter()
        for i in range(0, len(segments), bs):
            model.embed_audio(segments[i:i + bs])
        out[str(bs)] = len(segments) / (time.perf_counter() - t)
    return out


def naive(model, paths: list[Path]) -> tuple[float, int, float]:
    """One file at a time, one segment at a time: (seconds, segments, audio seconds)."""
    from engine.audio import iter_segments
    from engine.segments import SegmentPolicy

    policy = SegmentPolicy(window=model.window_seconds)
    t = time.perf_counter()
    n = 0
    audio = 0.0
    for p in paths:
        for seg in iter_segments(p, model.sample_rate, policy):
            model.embed_audio([seg.waveform])
            n += 1
        audio += sf.info(str(p)).duration
    return time.perf_counter() - t, n, audio


@contextlib.contextmanager
def spinning_sessions():
    """Inside, new onnxruntime tower sessions busy-wait after each run (and YAMNet gets a tower of
    its own): a model loaded here runs its towers as before session 32."""
    from engine.towers import onnx_export, yamnet

    plain = onnx_export.session_options
    shared = dict(yamnet._SHARED)
    yamnet._SHARED.clear()
    onnx_export.session_options = functools.partial(plain, spinning=True)
    try:
        yield
    finally:
        onnx_export.session_options = plain
        yamnet._SHARED.clear()
        yamnet._SHARED.update(shared)


def load_as_before(name: str):
    """``name`` loaded as it ran before session 32: spinning sessions, the aisfx frontend on torch's
    threads (the model's vectors are the same)."""
    from engine.models import load_model

    with spinning_sessions():
        model = load_model(name)
    frontend = getattr(getattr(model, "module", None), "aisfx_frontend", None)
    if frontend is not None:
        frontend.torch_threads = None
    return model


def alternating_rounds(models: dict[str, object], paths: list[Path], workdir: Path, rounds: int,
                       per_run: dict[str, dict] | None = None, **kw) -> dict[str, dict[str, list[float]]]:
    """Wall seconds of ``build_index`` into a fresh index per run (``models`` name → model, with
    ``per_run[name]`` added to ``kw``), alternating, ``rounds`` times, and the CPU seconds of this
    process (the model's side; worker decoders run in others, in-process ones count here)."""
    import shutil

    from indexer import build_index

    seconds: dict[str, dict[str, list[float]]] = {"wall": {n: [] for n in models}, "cpu": {n: [] for n in models}}
    for r in range(rounds):
        for name, model in (models.items() if r % 2 == 0 else reversed(models.items())):
            idx = workdir / f"index-{os.getpid()}-{name}-{r}"
            cpu = time.process_time()
            wall = build_index(paths, idx, model, progress=False, **{**kw, **(per_run or {}).get(name, {})}).seconds
            seconds["wall"][name].append(round(wall, 2))
            seconds["cpu"][name].append(round(time.process_time() - cpu, 2))
            shutil.rmtree(idx, ignore_errors=True)
    return seconds


def compare_workers(model, paths: list[Path], workdir: Path, rounds: int, counts: list[int],
                    **kw) -> dict[str, object]:
    """The pipeline at each decoder count in ``counts``, alternating; median seconds, each round's
    speedup over ``counts[0]`` (a gain is real only if every round shows it) and the median's."""
    names = {f"workers={n}": {"workers": n} for n in counts}
    rounds_s = alternating_rounds({name: model for name in names}, paths, workdir, rounds, per_run=names, **kw)
    wall = rounds_s["wall"]
    base = next(iter(names))
    med = {k: float(np.median(v)) for k, v in wall.items()}
    return {"cpus": os.cpu_count(), "seconds": rounds_s, "median_seconds": med,
            "speedup_vs_first": {k: round(med[base] / med[k], 3) for k in names},
            "speedup_vs_first_by_round": {k: [round(a / b, 3) for a, b in zip(wall[base], wall[k])]
                                          for k in names}}


def main() -> None:
    ap = argparse.ArgumentParser(description="indexing throughput benchmark")
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None, help="pipeline batch (default: best model-only)")
    ap.add_argument("--batch-sizes", default="1,4,8,16")
    ap.add_argument("--probe-segments", type=int, default=48, help="segments for the model-only sweep")
    ap.add_argument("--naive-files", type=int, default=40, help="files for the naive loop (a sample)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "soundsift-bench")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--model", help="a model for load_model (default: a random real-size HF CLAP)")
    ap.add_argument("--before-too", action="store_true",
                    help="also time the pipeline with the model as it ran before session 32 (same vectors)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds for --before-too / --workers-list")
    ap.add_argument("--workers-list", type=int, nargs="+", metavar="N",
                    help="also time the pipeline at each of these decoder counts (0: in-process), "
                         "in alternating rounds, with ratios to the first")
    ap.add_argument("--formats", help="comma-separated library formats (default: wav,flac,ogg,mp3,aiff)")
    ap.add_argument("--rates", help="comma-separated library sample rates (default: 16000 to 96000)")
    args = ap.parse_args()

    import torch

    from engine.audio import iter_segments
    from engine.models import load_model
    from engine.segments import SegmentPolicy
    from indexer import build_index

    args.workdir.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    model = load_model(args.model or str(make_model(args.workdir / "clap-htsat-unfused-random")))
    formats = args.formats.split(",") if args.formats else None
    rates = [int(r) for r in args.rates.split(",")] if args.rates else None
    tag = "".join(f"-{v}" for v in (args.formats, args.rates) if v).replace(",", "_")
    paths = make_library(args.workdir / f"lib-{args.files}-{args.minutes:g}{tag}", args.files, args.minutes,
                         formats=formats, rates=rates)
    setup_s = time.perf_counter() - t
    policy = SegmentPolicy(window=model.window_seconds)

    # (a) model only, on pre-decoded segments
    segs = []
    for p in paths:
        segs += [s.waveform for s in iter_segments(p, model.sample_rate, policy)]
        if len(segs) >= args.probe_segments:
            break
    segs = segs[:args.probe_segments]
    sweep = model_only(model, segs, [int(b) for b in args.batch_sizes.split(",")])
    best_bs, best_rate = max(sweep.items(), key=lambda kv: kv[1])

    # the pipeline, at the best batch size unless told otherwise
    idx = args.workdir / f"index-{os.getpid()}"
    s = build_index(paths, idx, model, workers=args.workers,
                    batch_size=args.batch_size or int(best_bs), progress=True)
    pipe_rate = s.n_segments / s.seconds

    # (b) naive loop on a sample of the files
    sample = paths[:: max(1, len(paths) // args.naive_files)][:args.naive_files]
    naive_s, naive_n, naive_audio = naive(model, sample)
    naive_rate = naive_n / naive_s

    result = {
        "model": args.model or "random clap-htsat-unfused",
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": str(getattr(model, "device", "cpu"))},
        "library": {"files": len(paths), "audio_minutes": round(s.audio_seconds / 60, 2),
                    "segments": s.n_segments, "setup_seconds": round(setup_s, 1)},
        "pipeline": {"seconds": round(s.seconds, 2), "x_realtime": round(s.x_realtime, 2),
                     "files_per_second": round(s.files_per_second, 3),
                     "segments_per_second": round(pipe_rate, 3), "batch_size": args.batch_size or int(best_bs),
                     "workers": args.workers, "timings": s.timings,
                     # a stage under 10 ms (index tuning of a small index) is no rate worth printing
                     "stage_x_realtime": {k: round(s.audio_seconds / v, 1) for k, v in s.timings.items() if v >= 0.01},
                     "stage_files_per_second": {k: round(len(paths) / v, 2) for k, v in s.timings.items()
                                                if v >= 0.01}},
        "model_only": {"segments_per_second_by_batch": {k: round(v, 3) for k, v in sweep.items()},
                       "best_batch_size": int(best_bs), "probe_segments": len(segs)},
        "naive": {"files": len(sample), "segments": naive_n, "seconds": round(naive_s, 2),
                  "segments_per_second": round(naive_rate, 3),
                  "x_realtime": round(naive_audio / naive_s, 2)},
        "ratios": {"pipeline_vs_model_only": round(pipe_rate / best_rate, 3),
                   "pipeline_vs_naive": round(pipe_rate / naive_rate, 3)},
    }
    if args.before_too:
        before = load_as_before(args.model or str(args.workdir / "clap-htsat-unfused-random"))
        diff = float(np.abs(model.embed_audio(segs) - before.embed_audio(segs)).max())
        rounds = alternating_rounds({"now": model, "before": before}, paths, args.workdir, args.rounds,
                                    workers=args.workers, batch_size=args.batch_size or int(best_bs))
        med = {kind: {k: float(np.median(v)) for k, v in by.items()} for kind, by in rounds.items()}
        result["now_vs_before"] = {"seconds": rounds, "median_seconds": med,
                                   "speedup": round(med["wall"]["before"] / med["wall"]["now"], 3),
                                   "cpu_ratio": round(med["cpu"]["before"] / med["cpu"]["now"], 3),
                                   "max_abs_vector_difference": diff}
    if args.workers_list:
        result["workers"] = compare_workers(model, paths, args.workdir, args.rounds, args.workers_list,
                                            batch_size=args.batch_size or int(best_bs))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

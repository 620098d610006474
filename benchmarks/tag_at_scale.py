"""``soundsift tag … --index`` on a large index with a revision's engine.tagging and today's (run by hand).

    .venv/bin/python benchmarks/tag_at_scale.py /tmp/scale35 [--rev HEAD] [--rounds 3]

``/tmp/scale35`` is what ``benchmarks/commands_at_scale.py build /tmp/scale35`` writes (40,000
files, a tiny random CLAP). Three measurements, each ``rev``'s engine.tagging
(benchmarks/revision_module.py; the rest of the code is today's) against today's, in alternating
rounds in this one run, with their ratios:

* ``tag_files`` in one process with the model loaded, outside the timings: one indexed file, a leaf
  folder's 100 files and a category folder's 4,000 (median seconds, and the stored vectors read);
* the peak RSS that tagging one file adds to a process that has opened the index and loaded the
  model (each in a fresh process, its peak reset once the model is loaded: Linux's clear_refs);
* the whole command ``soundsift tag FILE --top 5 --index …`` (wall and peak RSS from
  /usr/bin/time -v, the revision's module put in engine.tagging's place in the process).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: run in a fresh process: ``soundsift ARGS`` with engine.tagging as of REV ("" for today's)
_CLI = """
import sys
sys.path.insert(0, {root!r})
if {rev!r}:
    from benchmarks.revision_module import module_at
    module_at({rev!r}, "engine/tagging.py", "engine.tagging")
from ui.cli import main
sys.argv = ["soundsift", *{args!r}]
main()
"""

#: run in a fresh process: the peak RSS (MB) tagging FILE adds once the index and model are loaded
#: (the peak is reset first, /proc/self/clear_refs: loading the model peaks higher than it stays)
_GROWTH = """
import json, sys
sys.path.insert(0, {root!r})
if {rev!r}:
    from benchmarks.revision_module import module_at
    module_at({rev!r}, "engine/tagging.py", "engine.tagging")
from engine.query import SoundIndex
from engine.tagging import tag_files

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key + ":")) / 1024

with SoundIndex.open({index!r}) as si:
    si.model, si.refresh()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = status("VmRSS")
    tagged, _ = tag_files([{file!r}], ["door", "rain", "engine"], index=si, top=2)
    assert tagged[0].from_index
    print(json.dumps({{"loaded MB": before, "tagging adds MB": status("VmHWM") - before}}))
"""


def _folder(base: Path, rel: str) -> list[Path]:
    return sorted(p for p in (base / "library" / rel).rglob("*") if p.is_file())


def time_tag_files(base: Path, rounds: int, rev: str) -> dict:
    """Median seconds of ``tag_files`` (``rev``'s and today's) on 1, 100 and 4,000 indexed files,
    and the stored vectors each read."""
    from benchmarks.revision_module import module_at
    from engine import tagging
    from engine.query import SoundIndex
    from engine.query_snapshot import _Snapshot

    before = module_at(rev, "engine/tagging.py", "tagging_before")
    leaf = _folder(base, "Doors/Vol_01/Wood_Slam")
    cases = {"1 file": leaf[:1], "a leaf folder": leaf, "a category folder": _folder(base, "Doors")}
    read = [0]
    snap_vectors = _Snapshot.vectors

    def counted(self, ids):
        out = snap_vectors(self, ids)
        read[0] += len(out)
        return out

    _Snapshot.vectors = counted
    import engine.query_catalog as qc
    every = qc.all_vectors

    def counted_all(index, ids):
        got, vecs = every(index, ids)
        read[0] += len(vecs)
        return got, vecs

    qc.all_vectors = counted_all
    out: dict[str, dict] = {}
    try:
        with SoundIndex.open(base / "index") as si:
            si.model                                        # loaded once, outside the timings
            for case, files in cases.items():
                times: dict[str, list[float]] = {"before": [], "after": []}
                vectors: dict[str, int] = {}
                for _ in range(rounds):
                    for name, module in (("before", before), ("after", tagging)):
                        read[0] = 0
                        t = time.perf_counter()
                        tagged, _ = module.tag_files(files, ["door", "rain", "engine"], index=si, top=2)
                        times[name].append(time.perf_counter() - t)
                        vectors[name] = read[0]
                        assert len(tagged) == len(files) and all(t.from_index for t in tagged)
                mid = {name: round(statistics.median(ts), 4) for name, ts in times.items()}
                out[f"{case} ({len(files)})"] = {"median s": mid, "vectors read": vectors,
                                                 "before / after": round(mid["before"] / mid["after"], 1)}
    finally:
        _Snapshot.vectors, qc.all_vectors = snap_vectors, every
    return out


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)


def memory_of_tagging(base: Path, rounds: int, rev: str) -> dict:
    """Peak RSS (MB) that tagging one file adds once the index is open and the model loaded."""
    one = str(_folder(base, "Doors/Vol_01/Wood_Slam")[0])
    seen: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(rounds):
        for name, r in (("before", rev), ("after", "")):
            done = _python(_GROWTH.format(root=str(ROOT), rev=r, index=str(base / "index"), file=one))
            seen[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    mid = {name: {k: round(statistics.median(x[k] for x in runs), 1) for k in runs[0]} for name, runs in seen.items()}
    adds = {name: m["tagging adds MB"] for name, m in mid.items()}
    return {"median MB": mid, "before / after (added)": round(adds["before"] / max(adds["after"], 0.1), 1)}


def time_command(base: Path, rounds: int, rev: str) -> dict:
    """Wall seconds and peak RSS of ``soundsift tag FILE --top 5 --index``, ``rev``'s tagging and today's."""
    one = str(_folder(base, "Doors/Vol_01/Wood_Slam")[0])
    args = ["tag", one, "--top", "5", "--index", str(base / "index")]
    seen: dict[str, dict[str, list[float]]] = {"before": {"wall s": [], "peak MB": []},
                                               "after": {"wall s": [], "peak MB": []}}
    for _ in range(rounds):
        for name, r in (("before", rev), ("after", "")):
            code = _CLI.format(root=str(ROOT), rev=r, args=args)
            done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", code], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if done.returncode:
                raise SystemExit(f"soundsift {' '.join(args)} ({name}): exit {done.returncode}\n{done.stderr[-2000:]}")
            for line in done.stderr.splitlines():
                if "Elapsed (wall clock)" in line:
                    parts = line.rsplit(" ", 1)[-1].split(":")
                    seen[name]["wall s"].append(sum(float(p) * 60 ** i for i, p in enumerate(reversed(parts))))
                elif "Maximum resident set size" in line:
                    seen[name]["peak MB"].append(int(line.rsplit(" ", 1)[-1]) / 1024)
    mid = {name: {k: round(statistics.median(v), 2) for k, v in m.items()} for name, m in seen.items()}
    return {"median": mid, "before / after": {k: round(mid["before"][k] / mid["after"][k], 2) for k in mid["after"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps({"rev": args.rev, "rounds": args.rounds,
                      "tag_files": time_tag_files(args.base, args.rounds, args.rev),
                      "memory tagging one file adds": memory_of_tagging(args.base, args.rounds, args.rev),
                      "soundsift tag FILE --top 5 --index": time_command(args.base, args.rounds, args.rev)},
                     indent=1), flush=True)


if __name__ == "__main__":
    main()

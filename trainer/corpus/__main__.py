"""``python -m trainer.corpus build --out corpus/ [--sources …] [--max-per-label N]``."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the corpus, print its summary as JSON on stdout."""
    parser = argparse.ArgumentParser(prog="python -m trainer.corpus",
                                     description="Build soundsift's offline training corpus.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="fetch packages, synthesise, label, balance, split, write")
    b.add_argument("--out", type=Path, default=Path("corpus"), help="output folder (default corpus/)")
    b.add_argument("--sources", nargs="+", help="sources to use (default: all); see `list`")
    b.add_argument("--max-per-label", type=int, default=40, help="training clips per label (default 40)")
    b.add_argument("--val-max-per-label", type=int, default=40, help="validation clips per label (default 40)")
    b.add_argument("--val-sources", nargs="+", help="sources held out for validation")
    b.add_argument("--synth-per-label", type=int, default=8, help="synthetic clips per label (default 8)")
    b.add_argument("--max-seconds", type=float, default=30.0, help="clips are cut to this length")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--cache", type=Path, help="where .debs and unpacked packages live (default OUT/.cache)")
    b.add_argument("-v", "--verbose", action="store_true")
    sub.add_parser("list", help="print the known sources")
    args = parser.parse_args(argv)

    from trainer.corpus.runner import all_sources, build_corpus
    if args.command == "list":
        print("\n".join(all_sources()))
        return 0
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    summary = build_corpus(args.out, args.sources, max_per_label=args.max_per_label,
                           val_max_per_label=args.val_max_per_label, val_sources=args.val_sources,
                           seed=args.seed, synth_per_label=args.synth_per_label,
                           max_seconds=args.max_seconds, cache=args.cache)
    print(json.dumps(summary.__dict__, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`hil`: run test vectors on a rack of real or virtual boards.

    hil run --rack RACK.yaml VECTOR_DIR... [--boards NAME,...] [--junit FILE] [--json]
            [--repeat N]

VECTOR_DIR is a vector directory or any directory above vectors (build/vectors/...). Each
board runs the vectors of its board type (docs/rack.md). Output: one line per vector as it
finishes (with --json, one JSON object per line instead); --junit FILE keeps a JUnit XML
report that is complete after every vector. Exit status: 0 all passed, 1 some vector
failed or could not run (a board failed), 2 bad input (rack file, vectors, options),
130 interrupted (what finished is reported).

Public name: `main`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emu.errors import EmuError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hil", description="Hardware in the loop: run test vectors "
                                "on a rack of boards (real or virtual).")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run test vectors on the rack's boards")
    run.add_argument("vectors", nargs="+", metavar="VECTOR_DIR",
                     help="vector directories, or directories holding vectors")
    run.add_argument("--rack", required=True, metavar="RACK.yaml", help="the rack configuration")
    run.add_argument("--boards", metavar="NAME,...", help="only these boards (default: all)")
    run.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (kept up to date)")
    run.add_argument("--json", action="store_true", help="one JSON object per vector on stdout")
    run.add_argument("--repeat", type=int, default=1, metavar="N", help="run every vector N times")
    return p


def _vectors(dirs: list[str]):
    from emu.vectors import find_vectors

    found = []
    for d in dirs:
        path = Path(d)
        if not path.is_dir():
            raise EmuError(f"{d}: no such directory (give vector directories, e.g. "
                           f"build/vectors/msp430fr5994/checksum)")
        vectors = list(find_vectors(path))
        if not vectors:
            raise EmuError(f"{d}: no test vectors (directories with vector.json) in it")
        found += vectors
    return found


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .rack import load_rack
    from .runner import Reporter, run_rack

    try:
        config = load_rack(args.rack)
        vectors = _vectors(args.vectors)
        boards = [b.strip() for b in args.boards.split(",") if b.strip()] if args.boards else None
        if boards:
            config.select(boards)  # unknown names are a user error, before anything starts
        reporter = Reporter(json_stream=sys.stdout if args.json else None, junit=args.junit,
                            text_stream=None if args.json else sys.stdout)
        outcomes = run_rack(config, vectors, boards, args.repeat, reporter)
    except EmuError as e:
        print(f"hil: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hil: interrupted; the finished vectors are reported", file=sys.stderr)
        return 130
    counts = {k: sum(o.outcome == k for o in outcomes) for k in ("passed", "failed", "error")}
    print(f"hil: {counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors",
          file=sys.stderr)
    return 0 if outcomes and counts["passed"] == len(outcomes) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""python -m firmware.dnn {generate,eval} ... (see firmware/dnn/__init__.py)."""

from __future__ import annotations

import argparse
import json
import sys

from . import default_input, evaluate, generate, load_quantized
from .model import ModelError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.dnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write model.h and costs.json for a model directory")
    g.add_argument("model_dir")
    g.add_argument("out_dir")
    g.add_argument("--commit-every", type=int, nargs="+", metavar="N",
                   help="output elements per commit: one value, or one per stage (0: whole stage); "
                        "default: model.json's commit_every")
    e = sub.add_parser("eval", help="float and int8 accuracy on the model's test set")
    e.add_argument("model_dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            model, qm = load_quantized(args.model_dir)
            every = args.commit_every or [model.commit_every]
            generate(qm, args.out_dir, commit_every=every[0] if len(every) == 1 else every,
                     default_input=default_input(args.model_dir, model, qm), source=args.model_dir)
        else:
            print(json.dumps(evaluate(args.model_dir), indent=2))
    except (ModelError, OSError) as exc:
        print(f"dnn: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

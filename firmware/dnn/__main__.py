"""python -m firmware.dnn {generate,eval} ... (see firmware/dnn/__init__.py)."""

from __future__ import annotations

import argparse
import json
import sys

from . import default_input, evaluate, generate, load_quantized
from .codegen import plan
from .design import ORDERS, stage_designs
from .model import ModelError


def _tile(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"tile {text!r}: CxHxW, e.g. 8x2x2 (0: a whole dimension)") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.dnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write model.h and costs.json for a model directory")
    g.add_argument("model_dir")
    g.add_argument("out_dir")
    g.add_argument("--commit-every", type=int, nargs="+", metavar="N",
                   help="output elements (a design: steps) per commit: one value, or one per stage (0: whole "
                        "stage, a design: a whole pass); default: the layers' designs', then model.json's "
                        "commit_every")
    g.add_argument("--order", nargs="+", choices=ORDERS, metavar="ORDER",
                   help=f"loop order ({', '.join(ORDERS)}): one value for every conv2d/dwconv2d/dense stage, or "
                        "one per stage; default: the layers' designs in model.json")
    g.add_argument("--tile", type=_tile, nargs="+", metavar="CxHxW",
                   help="output tile (channels x rows x columns, 0: a whole dimension): one, or one per stage")
    g.add_argument("--in-tile", type=int, nargs="+", metavar="K",
                   help="input order: reduction slices per pass (0: all): one, or one per stage")
    g.add_argument("--stage-input", type=int, nargs="+", choices=(0, 1), metavar="0|1",
                   help="copy each tile's input region into SRAM: one, or one per stage")
    e = sub.add_parser("eval", help="float and int8 accuracy on the model's test set")
    e.add_argument("model_dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            model, qm = load_quantized(args.model_dir)
            overrides = {key: getattr(args, key) for key in ("order", "tile", "in_tile", "stage_input")
                         if getattr(args, key) is not None}
            if "stage_input" in overrides:
                overrides["stage_input"] = [bool(v) for v in overrides["stage_input"]]
            designs, every = stage_designs(model, plan(qm), overrides, args.commit_every)
            generate(qm, args.out_dir, commit_every=every, designs=designs,
                     default_input=default_input(args.model_dir, model, qm), source=args.model_dir)
        else:
            print(json.dumps(evaluate(args.model_dir), indent=2))
    except (ModelError, OSError) as exc:
        print(f"dnn: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

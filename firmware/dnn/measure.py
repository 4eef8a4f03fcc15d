"""Measure designs on the emulator: instructions per inference and, on the Cortex-M4, the
bytes the firmware really reads and writes in non-volatile memory, by kind (docs/models.md).

    python -m firmware.dnn.measure build digits [--board B] [--order O] [--tile CxHxW]
        [--in-tile K] [--stage-input 0|1] [--commit-every N]

runs the flashed firmware of build/<board>/dnn_<model>.elf on its built-in input with the
design written over its dnn_design / dnn_commit_every tables (no rebuild), under continuous
power, and prints a JSON object per board. Needs the emulator (emu); the generator does not.

Counted (Cortex-M4 only: data accesses through Unicorn memory hooks; the MSP430 engine has
none) in bytes, per symbol kind: `nv_reads` of activations (app_input, dnn_buffer,
dnn_pooled), weights_and_biases (stage<i>_weight / _pairs / _rows / _bias), accumulators
(dnn_acc), tables (the stage, design and commit tables), output_sent (app_output, read by
RESULT); `nv_writes` of activations (dnn_buffer, app_output, dnn_pooled), accumulators and
other_nv (the task state, the runtime's commits, the job word); `sram`: bytes staged into
dnn_staged and read from it. These are what costs.json predicts: the test suite checks
them against it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

from .codegen import plan
from .design import Design, commit_table, design_table, stage_designs
from .model import ModelError

BOARDS = ("msp430fr5994", "cortex-m4-mram")


def _kinds(image) -> list[tuple[int, int, str, str]]:
    """(start, end, read kind, write kind) of the symbols that matter."""
    out = []
    for name, sym in image.symbols.items():
        if name in ("app_input", "dnn_buffer", "dnn_pooled"):
            kinds = ("activations", "activations")
        elif name == "app_output":  # written by the last stage, read by RESULT only
            kinds = ("output_sent", "activations")
        elif re.fullmatch(r"stage\d+_(weight|pairs|rows|bias)", name):
            kinds = ("weights_and_biases", "weights_and_biases")
        elif name == "dnn_acc":
            kinds = ("accumulators", "accumulators")
        elif name == "dnn_staged":
            kinds = ("staging", "staging")
        elif name in ("dnn_stages", "dnn_design", "dnn_commit_every"):
            kinds = ("tables", "tables")
        else:
            continue
        if sym.size:
            out.append((sym.address, sym.address + sym.size, *kinds))
    return sorted(out)


def instructions_to_output(m) -> int:
    """Instructions from power-on (the machine as prepared) until the one that sends the
    first UART byte (not counted), by stepping then bisection on snapshots."""
    m.power_on()
    stride = 1 << 14
    while True:
        snap, base = m.snapshot(), m.instructions
        m.step(stride)
        if m.uart_since_boot:
            break
        if m.instructions - base < stride:
            raise RuntimeError("the firmware stopped before sending anything")
    lo, hi = 0, m.instructions - base
    while hi - lo > 1:
        mid = (lo + hi) // 2
        m.restore(snap)
        m.step(mid)
        lo, hi = (lo, mid) if m.uart_since_boot else (mid, hi)
    return base + lo


def commits(m) -> int:
    """Commits of the job (runtime/task.c: seq - base of the committed header)."""
    active = int.from_bytes(m.read_symbol("rt_active"), "little")
    raw = m.read_symbol("rt_header")
    step = len(raw) // 2
    h = raw[active * step:(active + 1) * step]
    return int.from_bytes(h[0:4], "little") - int.from_bytes(h[4:8], "little")


def measure(elf: str | Path, designs: list[Design], every: list[int], data: bytes | None = None,
            low_energy: bool = False, instructions: bool = True) -> dict:
    """Run the firmware with these per-stage designs and commit granularities under
    continuous power: instructions to the first RESULT byte (unless `instructions` is
    false), commits, the output, and (Cortex-M4) the non-volatile bytes read and written by
    kind over the whole job."""
    import emu

    m = emu.Machine.from_elf(elf)
    counted = m.board.arch == "cortex-m"
    reads, writes = Counter(), Counter()
    if counted:
        kinds = _kinds(m.image)
        nv = [(r.start, r.end) for r in m.board.nonvolatile_regions]

        def kind(address: int, write: bool) -> str | None:
            for a, b, rk, wk in kinds:
                if a <= address < b:
                    return wk if write else rk
            if write and any(a <= address < b for a, b in nv):
                return "other_nv"
            return None

        def on_access(access, address, size, value, pc, index):
            k = kind(address, access == "w")
            if k:
                (writes if access == "w" else reads)[k] += size

        m.engine.watch_memory([(a, b) for a, b, _, _ in kinds] + nv, on_access)

    def prepare() -> None:
        m.reset()
        if data is not None:
            m.write_symbol("app_input", data)
        m.write_symbol("dnn_design", design_table(designs))
        m.write_symbol("dnn_commit_every", commit_table(every))
        if low_energy:
            m.write_symbol("rt_low_energy", (1).to_bytes(2, "little"))

    prepare()
    first = None
    if instructions:
        first = instructions_to_output(m)
        reads.clear(), writes.clear()  # count the whole job again, to its end
        prepare()
    r = m.run()
    if r.outcome != "completed":
        raise RuntimeError(f"{elf}: {r.outcome} {r.error}")
    result = {"board": m.board.name, "instructions": first, "commits": commits(m),
              "output": m.read_symbol("app_output").hex()}
    if counted:
        result["sram"] = {"staged": writes.pop("staging", 0), "reads": reads.pop("staging", 0)}
        result["nv_reads"] = dict(sorted(reads.items()))
        result["nv_writes"] = dict(sorted(writes.items()))
    return result


def main(argv: list[str] | None = None) -> int:
    from . import load_quantized
    from .__main__ import _tile
    from .design import ORDERS

    parser = argparse.ArgumentParser(prog="python -m firmware.dnn.measure", description=__doc__.split("\n\n")[0])
    parser.add_argument("build")
    parser.add_argument("model")
    parser.add_argument("--board", choices=BOARDS, action="append")
    parser.add_argument("--order", nargs="+", choices=ORDERS)
    parser.add_argument("--tile", type=_tile, nargs="+")
    parser.add_argument("--in-tile", type=int, nargs="+")
    parser.add_argument("--stage-input", type=int, nargs="+", choices=(0, 1))
    parser.add_argument("--commit-every", type=int, nargs="+")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    try:
        model, qm = load_quantized(root / "models" / args.model)
        overrides = {k: getattr(args, k) for k in ("order", "tile", "in_tile", "stage_input")
                     if getattr(args, k) is not None}
        if "stage_input" in overrides:
            overrides["stage_input"] = [bool(v) for v in overrides["stage_input"]]
        designs, every = stage_designs(model, plan(qm), overrides, args.commit_every)
    except ModelError as exc:
        print(f"dnn: {exc}", file=sys.stderr)
        return 2
    for board in args.board or BOARDS:
        print(json.dumps(measure(Path(args.build) / board / f"dnn_{args.model}.elf", designs, every)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

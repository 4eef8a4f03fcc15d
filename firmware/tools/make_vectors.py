#!/usr/bin/env python3
"""Write the test vectors of one app for one board (format: docs/vectors.md).

    make_vectors.py ELF REFERENCE OUT_DIR

REFERENCE is an app's reference.py (`run(input) -> output`) or a DNN model directory
(firmware/models/<model>/: the int8 reference of firmware/dnn).

Vectors: `default` (the input built into the ELF, as flashed), `random-1` .. `random-3`
(seeded random inputs of the input buffer's size) and `default-failures` (the built-in
input under a fixed power schedule). Expected outputs come from the app's reference.py
(`run(input) -> output`), never from the firmware.
"""

import importlib.util
import random
import shutil
import sys
from pathlib import Path

from emu.elf import ElfImage
from emu.vectors import Vector

SCHEDULE = (1500, 2500, 4000, 700)


def reference_function(path: Path):
    if path.is_dir():
        from firmware.dnn import load_quantized

        return load_quantized(path)[1].run
    spec = importlib.util.spec_from_file_location("reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run


def main(elf_path: str, reference_path: str, out: str) -> None:
    elf = ElfImage.read(elf_path)
    run = reference_function(Path(reference_path))
    board, firmware = Path(elf_path).parent.name, Path(elf_path).stem
    default = elf.flashed_bytes("app_input")
    rng = random.Random(f"{firmware}-vectors")
    inputs = {"default": (default, None), "default-failures": (default, SCHEDULE)}
    for i in range(1, 4):
        inputs[f"random-{i}"] = (rng.randbytes(len(default)), None)
    out_dir = Path(out)
    shutil.rmtree(out_dir, ignore_errors=True)
    for name, (data, schedule) in inputs.items():
        Vector(name, firmware, board, data, bytes(run(data)), schedule=schedule).write(out_dir)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])

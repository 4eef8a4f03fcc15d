"""Source positions: functions from the symbol table, file:line from DWARF. For MSP430
(2-byte-address DWARF, which pyelftools rejects) the project's own line-table reader is
checked row by row against llvm-dwarfdump."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import emu
from emu.debuginfo import SourceMap, _line_rows_from_elf


@pytest.mark.skipif(shutil.which("llvm-dwarfdump") is None, reason="llvm-dwarfdump not installed")
@pytest.mark.parametrize("name", ["msp430fr5994/demo.elf", "bench/msp430fr5994/matvec.elf"])
def test_msp430_line_rows_match_llvm_dwarfdump(build_dir, name):
    elf = build_dir / name
    dump = subprocess.run(["llvm-dwarfdump", "--debug-line", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    reference = []
    for row in dump.splitlines():  # Address Line Column File ISA Discriminator Flags
        fields = row.split()
        if re.fullmatch(r"0x[0-9a-f]+", fields[0] if fields else "") and "end_sequence" not in fields:
            reference.append((int(fields[0], 16), int(fields[1])))
    ours = [(address, line) for address, _, line in _line_rows_from_elf(elf)]
    assert reference and ours == reference


@pytest.mark.parametrize("board", ["msp430fr5994", "cortex-m4-mram"])
def test_demo_positions(build_dir, board):
    elf = build_dir / board / "demo.elf"
    m = emu.Machine.from_elf(elf)
    pos = SourceMap.from_elf(elf).lookup(m.resolve_address("redo_commit") if "redo_commit" in m.image.symbols
                                         else m.resolve_address("main"))
    assert pos.function in ("redo_commit", "main")
    assert pos.file == "apps/demo/main.c" and pos.line > 0
    assert SourceMap.from_elf(elf).lookup(0x3).function is None  # no code there

"""Assemble and link tiny test programs in a temporary directory (real toolchains)."""

from __future__ import annotations

import subprocess
from pathlib import Path

MSP430_LD = """
MEMORY { FRAM (rwx) : ORIGIN = 0x4400, LENGTH = 0xBB80  VEC (rx) : ORIGIN = 0xFFFE, LENGTH = 2 }
SECTIONS { .text : { *(.text*) } > FRAM  .nv : { *(.nv) } > FRAM  .vectors : { KEEP(*(.vectors)) } > VEC }
"""


def msp430(tmp: Path, source: str, name: str = "prog", script: str = MSP430_LD) -> Path:
    """Assemble `source` (ending with the reset vector in section .vectors) for MSP430."""
    src, obj, ld, elf = (tmp / f"{name}{ext}" for ext in (".s", ".o", ".ld", ".elf"))
    src.write_text(source)
    ld.write_text(script)
    subprocess.run(["clang", "--target=msp430", "-c", str(src), "-o", str(obj)], check=True)
    subprocess.run(["ld.lld", "-m", "msp430elf", "-T", str(ld), str(obj), "-o", str(elf)], check=True)
    return elf

"""Assemble and link tiny test programs in a temporary directory (real toolchains)."""

from __future__ import annotations

import subprocess
from pathlib import Path

MSP430_LD = """
MEMORY { FRAM (rwx) : ORIGIN = 0x4400, LENGTH = 0xBB80  VEC (rx) : ORIGIN = 0xFFFE, LENGTH = 2 }
SECTIONS { .text : { *(.text*) } > FRAM  .nv : { *(.nv) } > FRAM  .vectors : { KEEP(*(.vectors)) } > VEC }
"""


def msp430_script(vectors: int) -> str:
    """`MSP430_LD` with the vector table from `vectors` (an interrupt vector's address) up
    to the reset vector at 0xFFFE, for programs that handle interrupts."""
    return MSP430_LD.replace("ORIGIN = 0xFFFE, LENGTH = 2", f"ORIGIN = {vectors:#x}, LENGTH = {0x10000 - vectors}")


def msp430(tmp: Path, source: str, name: str = "prog", script: str = MSP430_LD) -> Path:
    """Assemble `source` (ending with the reset vector in section .vectors) for MSP430."""
    src, obj, ld, elf = (tmp / f"{name}{ext}" for ext in (".s", ".o", ".ld", ".elf"))
    src.write_text(source)
    ld.write_text(script)
    subprocess.run(["clang", "--target=msp430", "-c", str(src), "-o", str(obj)], check=True)
    subprocess.run(["ld.lld", "-m", "msp430elf", "-T", str(ld), str(obj), "-o", str(elf)], check=True)
    return elf


CORTEX_LD = """
MEMORY { FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 1M  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 128K
         MRAM (rw) : ORIGIN = 0x60000000, LENGTH = 512K }
SECTIONS {
  .isr : { KEEP(*(.isr)) } > FLASH
  .text : { *(.text*) *(.rodata*) } > FLASH
  .mram : { *(.mram) } > MRAM
  .data : { *(.data*) } > RAM AT > FLASH
  .bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM
}
"""


def cortex_c(tmp: Path, source: str, name: str = "prog", script: str = CORTEX_LD) -> Path:
    """Compile and link a freestanding C program for Cortex-M4 with its own linker script
    and vector table (nothing from the project's firmware)."""
    src, ld, elf = tmp / f"{name}.c", tmp / f"{name}.ld", tmp / f"{name}.elf"
    src.write_text(source)
    ld.write_text(script)
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O2", "-g", "-nostartfiles",
                    "-nostdlib", "-ffreestanding", "-T", str(ld), str(src), "-o", str(elf)], check=True)
    return elf

"""Average cycles per instruction and share of non-volatile writes of a firmware run.

The energy model charges every instruction the same: `cpi` cycles and, on average,
`nv_writes_per_instruction` non-volatile writes. This module measures both on a
firmware's continuous-power run, single-stepped (about 10-25 us per instruction, so for
runs of up to a few million instructions), so that a board's default figures (and a
user's [mcu] overrides) can be derived from real code:

    python -m emu.power.cpi build/msp430fr5994/checksum.elf

Cycle counts per instruction class:

* MSP430/MSP430X (TI SLAU367, "Instruction Cycles and Lengths"; the rule "1 cycle per
  word fetched or memory operand" of the mspgcc manual): format I = 1, + 1 for an
  @Rn/@Rn+/#N source, + 2 for an X(Rn)/&ADDR source, + 3 for a memory destination, + 1
  when writing PC; jumps 2; format II, PUSH, CALL, RETI, the address instructions
  (MOVA...), PUSHM/POPM and CALLA per the tables; an extension word adds 1 cycle to a
  memory-operand instruction. FRAM runs without wait states at 8 MHz.
* Cortex-M4 (ARM Cortex-M4 TRM instruction timing, e.g. TI SWCU192 table 3-25): 1 cycle
  for data processing and stores, 2 for loads, 1 + N for LDM/STM/PUSH/POP of N
  registers, 1 + P for taken branches with P = 2 (pipeline refill, 1 to 3), 2-12 for
  divisions (7 assumed), 4 for long multiplies; flash without wait states at 4 MHz. IT
  takes 1 cycle; an instruction that an IT block skips is charged as if it executed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ..engines.base import StopKind
from ..machine import Machine

__all__ = ["CpiEstimate", "estimate_cpi", "msp430_cycles", "thumb_cycles"]

PIPELINE_REFILL = 2  # Cortex-M4 "P": 1..3 cycles


@dataclass(frozen=True)
class CpiEstimate:
    instructions: int
    cycles: int
    nv_writes: int  # instructions that wrote non-volatile memory

    @property
    def cpi(self) -> float:
        return self.cycles / self.instructions if self.instructions else 0.0

    @property
    def nv_writes_per_instruction(self) -> float:
        return self.nv_writes / self.instructions if self.instructions else 0.0


def estimate_cpi(machine: Machine, max_instructions: int = 5_000_000) -> CpiEstimate:
    """Single-step the continuous-power run from the flashed state (the machine is reset
    before and after)."""
    engine = machine.engine
    cycles_of = msp430_cycles if machine.board.arch == "msp430" else thumb_cycles
    machine.reset()
    machine.power_on()
    writers: set[int] = set()  # instructions (by index) that wrote non-volatile memory
    engine.watch_memory([(r.start, r.end) for r in machine.board.nonvolatile_regions],
                        lambda kind, address, size, value, pc, index: kind == "w" and writers.add(index))
    count = cycles = 0
    try:
        pc = engine.pc
        while count < max_instructions:
            code = engine.read_memory(pc, 8)
            before = engine.instructions
            stop = machine.step(1)
            if engine.instructions == before:
                break
            nxt = engine.pc
            cycles += cycles_of(code, pc, nxt)
            count += 1
            pc = nxt
            if stop.kind != StopKind.LIMIT:
                break
    finally:
        engine.watch_memory(None, None)
        machine.reset()
    return CpiEstimate(count, cycles, len(writers))


def msp430_cycles(code: bytes, pc: int, next_pc: int) -> int:
    w = int.from_bytes(code[:2], "little")
    extended = 0x1800 <= w <= 0x1FFF
    if extended:
        w = int.from_bytes(code[2:4], "little")
    if w < 0x1000:  # MSP430X address instructions
        op, src, dst = (w >> 4) & 0xF, (w >> 8) & 0xF, w & 0xF
        if op in (4, 5):  # RRCM/RRAM/RLAM/RRUM: one cycle per bit
            return ((w >> 10) & 3) + 1
        if op == 1 and dst == 0:  # RETA
            return 4
        return {0: 3, 1: 3, 2: 4, 3: 4, 6: 4, 7: 4, 8: 2, 9: 3, 10: 3, 11: 3}.get(op, 1 + (dst == 0))
    if w < 0x1300:  # format II
        op, mode, reg = (w >> 7) & 7, (w >> 4) & 3, w & 0xF
        const = reg == 3 or (reg == 2 and mode >= 2)
        if op == 6:  # RETI
            return 5
        if op == 4:  # PUSH
            return 3 if mode == 0 or const else {1: 5, 2: 4, 3: 4}[mode] + extended
        if op == 5:  # CALL
            return 4 if mode == 0 else {1: 5, 2: 4, 3: 5}[mode] + extended
        return 1 if mode == 0 or const else {1: 4, 2: 3, 3: 3}[mode] + extended
    if w < 0x1400:  # CALLA
        return 5
    if w < 0x1800:  # PUSHM/POPM
        n = ((w >> 4) & 0xF) + 1
        return 2 + (2 * n if (w & 0x0100) == 0 else n)
    if w < 0x4000:  # jumps
        return 2
    src, ad, mode, dst = (w >> 8) & 0xF, (w >> 7) & 1, (w >> 4) & 3, w & 0xF
    cycles = 1
    const = src == 3 or (src == 2 and mode >= 2)
    if not const:
        cycles += {0: 0, 1: 2, 2: 1, 3: 1}[mode]
    if ad:
        cycles += 3
    elif dst == 0 and (mode == 0 or const):
        cycles += 1
    return cycles + (extended and (ad or (mode and not const)))


def thumb_cycles(code: bytes, pc: int, next_pc: int) -> int:
    h = int.from_bytes(code[:2], "little")
    wide = (h >> 11) in (0x1D, 0x1E, 0x1F)
    size = 4 if wide else 2
    taken = next_pc != pc + size
    refill = 1 + PIPELINE_REFILL
    if not wide:
        if h & 0xFF00 == 0x4700:  # BX, BLX
            return refill
        if h & 0xFC00 == 0x4400 and (h & 0x87) == 0x87:  # ADD/MOV to PC
            return refill
        if h & 0xF800 == 0x4800:  # LDR literal
            return 2
        if h & 0xF000 == 0x5000:
            return 2 if (h >> 9) & 7 >= 3 else 1
        if 0x6000 <= h < 0xA000:  # LDR/STR immediate, SP-relative
            return 2 if h & 0x0800 else 1
        if h & 0xFE00 in (0xB400, 0xBC00):  # PUSH, POP
            n = bin(h & 0x1FF).count("1")
            return 1 + n + (PIPELINE_REFILL if h & 0xFF00 == 0xBD00 else 0)
        if h & 0xF000 == 0xC000:  # STM, LDM
            return 1 + bin(h & 0xFF).count("1")
        if h & 0xF000 == 0xD000 and h & 0x0F00 != 0x0F00 or h & 0xF800 == 0xE000 or h & 0xF500 == 0xB100:
            return refill if taken else 1  # B<cond>, B, CBZ/CBNZ
        return 1
    h2 = int.from_bytes(code[2:4], "little")
    if h & 0xF800 == 0xF000 and h2 & 0x8000:  # branches and control
        if h2 & 0x5000:  # BL, B.W
            return refill
        return refill if taken else 1  # B<cond>.W, or MSR/MRS/barriers (not taken: 1)
    if h & 0xFFF0 == 0xE8D0 and h2 & 0xFFE0 == 0xF000:  # TBB/TBH
        return 3 + refill
    if h & 0xFFD0 in (0xE880, 0xE890, 0xE900, 0xE910):  # STM/LDM wide (incl. PUSH.W/POP.W)
        n = bin(h2).count("1")
        return 1 + n + (PIPELINE_REFILL if h & 0x0010 and h2 & 0x8000 else 0)
    if h & 0xFE40 == 0xE840 and h & 0x0120:  # LDRD/STRD
        return 3
    if h & 0xFE00 == 0xF800:  # LDR*/STR* wide
        return 2 if h & 0x0010 else 1
    if h & 0xFFF0 in (0xFB90, 0xFBB0):  # SDIV, UDIV
        return 7
    if h & 0xFF80 == 0xFB80 or h & 0xFFC0 == 0xFBC0:  # long multiplies
        return 4
    if h & 0xFFF0 == 0xFB00 and (h2 & 0xF000) != 0xF000:  # MLA/MLS
        return 2
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for path in argv:
        m = Machine.from_elf(path)
        e = estimate_cpi(m)
        print(f"{path}: {m.board.name}: {e.instructions} instructions, {e.cycles} cycles, CPI {e.cpi:.3f}, "
              f"NV-writing instructions {e.nv_writes} ({e.nv_writes_per_instruction:.4f} per instruction)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

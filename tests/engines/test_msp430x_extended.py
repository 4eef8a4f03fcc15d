"""MSP430X extended register-mode ADDCX, SUBCX, DADDX, RRCX/RRUX (repair X1): icicle's
SLEIGH gives them the flag bugs D1-D4. mspdebug has no MSP430X, so expected values come
from SLAU367 (4.5.2.1 register-mode extension word, 4.6.3 extended instructions), worked
out by hand below. Runs through the real engine with its repair breakpoints."""

from __future__ import annotations

import pytest

from emu.engines import Access, Mapping
from emu.engines.icicle_engine import IcicleEngine
from emu.engines.base import StopKind

C, Z, N, V = 0x1, 0x2, 0x4, 0x100


class _NoBus:
    def read(self, address, size):
        raise AssertionError("no MMIO expected")

    def write(self, address, size, value):
        raise AssertionError("no MMIO expected")


def run(words, regs, sr=0):
    engine = IcicleEngine()
    engine.map([Mapping(0x4000, 0x1000, Access.RWX)], _NoBus())
    code = b"".join(w.to_bytes(2, "little") for w in words) + (0x3FFF).to_bytes(2, "little")
    engine.write_memory(0x4000, code)
    engine.scan_code(0x4000, code)
    end = 0x4000 + 2 * len(words)
    engine.set_exits([end])
    for name, value in regs.items():
        engine.write_register(name, value)
    engine.write_register("sr", sr)
    engine.pc = 0x4000
    stop = engine.run(100)
    assert stop.kind == StopKind.EXIT and stop.pc == end and engine.instructions == 1
    return {name: engine.read_register(name) for name in regs}, engine.read_register("sr")


@pytest.mark.parametrize("words, regs, sr, out, out_sr", [
    # ADDCX.W R5,R6: 7FFFh + FFFFh + 1 = 1_7FFFh -> 7FFFh, C; no signed overflow (V = 0)
    ([0x1840, 0x6506], {"r5": 0x7FFF, "r6": 0xFFFF}, C, {"r6": 0x7FFF}, C),
    # ADDCX.A R5,R6 (A/L = 0, B/W = 1): 7FFFFh + FFFFFh + 1 = 17FFFFh -> 7FFFFh, C
    ([0x1800, 0x6546], {"r5": 0x7FFFF, "r6": 0xFFFFF}, C, {"r6": 0x7FFFF}, C),
    # DADDX.W R5,R6: 9999 + 1 = (1)0000 -> C and Z
    ([0x1840, 0xA506], {"r5": 1, "r6": 0x9999}, 0, {"r6": 0}, C | Z),
    # DADDX.A R5,R6: 99999 + 1 = (1)00000 -> C and Z (five BCD digits)
    ([0x1800, 0xA546], {"r5": 1, "r6": 0x99999}, 0, {"r6": 0}, C | Z),
    # SUBCX.W R5,R6 with C = 0: 1234h + ~FFFFh + 0 = 1234h, no carry out: C = 0
    ([0x1840, 0x7506], {"r5": 0xFFFF, "r6": 0x1234}, 0, {"r6": 0x1234}, 0),
    # RRUX.W R6 (RRCX with ZC): 2 -> 1, carry in taken as 0, C = old bit 0 = 0, V reset
    ([0x1940, 0x1006], {"r6": 2}, C, {"r6": 1}, 0),
    # RRCX.W R6: 2 with C = 1 -> 8001h, N; V reset (icicle sets V, as D2)
    ([0x1840, 0x1006], {"r6": 2}, C, {"r6": 0x8001}, N),
    # RRUX.A #4,R6 (ZC, n-1 = 3): ABCDEh >> 4 = 0ABCDh; last bit out = bit 3 of E = 1: C
    ([0x1903, 0x1046], {"r6": 0xABCDE}, 0, {"r6": 0x0ABCD}, C),
    # ADDCX.W R5,R6 repeated (R7 & 0xF) + 1 = 3 times (# = 1, Rn = R7): 0 + 1 + 1 + 1
    ([0x18C7, 0x6506], {"r5": 1, "r6": 0, "r7": 2}, 0, {"r6": 3}, 0),
    # ADDCX.B R5,R6: FFh + 01h + 0 = (1)00h -> 0, C and Z; bits 19:8 of R6 cleared
    ([0x1840, 0x6546], {"r5": 1, "r6": 0x123FF}, 0, {"r6": 0}, C | Z),
])
def test_extended_register_forms(words, regs, sr, out, out_sr):
    got, got_sr = run(words, regs, sr)
    for name, value in out.items():
        assert got[name] == value, (name, hex(got[name]))
    assert got_sr & (C | Z | N | V) == out_sr, hex(got_sr)

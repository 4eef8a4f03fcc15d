"""MSP430X extended instructions on icicle (with the repairs of msp430_fixups) against the
model written from TI's SLAU367 chapter 4 "CPUX" (mspdebug has no MSP430X).

(a) random programs of extended instructions (tests/msp430x_diff.py): every register and
    SR after every instruction, the data areas (SRAM and FRAM above 64 KB) at the end, and
    the run through IcicleEngine (JIT, pruned sites) must equal the model;
(b) one regression test per divergence X2-X6 (X1: every instruction with an extension
    word; its register-mode cases are in test_msp430x_extended.py), expected values worked
    out by hand from the manual, run through IcicleEngine;
(c) `data_accesses` (the dry run behind `emu war`/`emu explain`) on the new forms.
"""

from __future__ import annotations

import pytest

pytest.importorskip("icicle")

from emu.engines import Access, Mapping, msp430_fixups as fx  # noqa: E402
from emu.engines.base import StopKind  # noqa: E402
from emu.engines.icicle_engine import IcicleEngine  # noqa: E402
from tests import msp430x_diff as xd  # noqa: E402

C, Z, N, V = 0x1, 0x2, 0x4, 0x100


def test_random_extended_programs_match_the_model():
    rep = xd.compare(xd.generate(120, seed=20240607))
    print(rep.summary())
    assert not rep.errors, rep.summary()
    assert not rep.divergences, rep.summary(verbose=True)
    assert rep.instructions > 3000 and rep.engine_runs == 120


def test_every_instruction_from_the_models_state_matches():
    """Each instruction stepped on icicle + repairs from the model's state (so one early
    difference cannot hide later ones)."""
    assert xd.classify(xd.generate(40, seed=99), fixups=True) == {}


def test_without_the_repairs_icicle_diverges_in_every_x_class():
    counts = xd.classify(xd.generate(60, seed=1), fixups=False)
    forms = " ".join(form for form, _ in counts)
    for needle in ("CMPA", "SUBA", "ADDA", "MOVX.A", "SXTX.A", "SWPBX.W", "CALLA ADDR", "RRAM"):
        assert needle in forms, needle


class _NoBus:
    def read(self, address, size):
        raise AssertionError("no MMIO expected")

    def write(self, address, size, value):
        raise AssertionError("no MMIO expected")


def run(words, regs, mem=None, sr=0, steps=1):
    """Run `words` at 4400h through IcicleEngine (repair breakpoints from scan_code);
    SRAM 1C00h-3BFFh, FRAM 10000h-10FFFh. Returns (engine, registers, SR)."""
    eng = IcicleEngine()
    eng.map([Mapping(0x1C00, 0x2000, Access.RW), Mapping(0x4400, 0x1000, Access.RWX),
             Mapping(0x10000, 0x1000, Access.RW)], _NoBus())
    code = b"".join(w.to_bytes(2, "little") for w in words) + (0x3FFF).to_bytes(2, "little")
    eng.write_memory(0x4400, code)
    for a, data in (mem or {}).items():
        eng.write_memory(a, data)
    eng.scan_code(0x4400, code)
    end = 0x4400 + 2 * len(words)
    eng.set_exits([end])
    eng.write_register("sp", 0x3B00)
    for name, value in regs.items():
        eng.write_register(name, value)
    eng.write_register("sr", sr)
    eng.pc = 0x4400
    stop = eng.run(100)
    assert stop.kind == StopKind.EXIT and stop.pc == end and eng.instructions == steps
    return eng, {n: eng.read_register(n) for n in ("sp", *regs)}, eng.read_register("sr")


def w20(v):
    return (v & 0xFFFFF).to_bytes(4, "little")


# X2 -- CMPA/ADDA/SUBA: 20-bit operations, "N: set if result is negative" = bit 19, V on a
# 20-bit signed overflow (SLAU367 4.6.4 ADDA, CMPA, SUBA)
@pytest.mark.parametrize("words, regs, out, flags", [
    ([0x05D6], {"r5": 5, "r6": 3}, {"r6": 3}, N),  # CMPA R5,R6: 3 - 5 < 0, borrow: C = 0
    ([0x07A6, 0xFFFF], {"r6": 1}, {"r6": 0x80000}, N | V),  # ADDA #7FFFFh,R6: overflow
    ([0x05F6], {"r5": 1, "r6": 0x80000}, {"r6": 0x7FFFF}, C | V),  # SUBA R5,R6
    ([0x05E6], {"r5": 1, "r6": 0xFFFFF}, {"r6": 0}, C | Z),  # ADDA R5,R6: carry out of bit 19
])
def test_x2_address_arithmetic_flags(words, regs, out, flags):
    _, got, sr = run(words, regs)
    assert {k: got[k] for k in out} == out
    assert sr & (C | Z | N | V) == flags


def test_x3_mova_immediate_stays_20_bits():
    # MOVA #0E9779h,R13: "#imm20 -> Rdst" (4.6.4 MOVA); icicle sign-extends to FFFE9779h
    _, got, _ = run([0x0E8D, 0x9779], {"r13": 0})
    assert got["r13"] == 0xE9779


@pytest.mark.parametrize("words, value, out, flags", [
    # RRAM.A #2,R10: arithmetic shift of the 20-bit word, MSB (bit 19) kept; C = bit 1
    ([0x0540 | 10], 0xB7E7E, 0xEDF9F, N | C),
    # RRAM.W #3,R10: 8008h -> F001h, N (bit 15); C = bit 2 of 8008h = 0
    ([0x0950 | 10], 0x18008, 0xF001, N),
    # RLAM.W #4,R10: 1F00Fh -> .W: F00Fh << 4 = 00F0h, C = bit 12 of F00Fh = 1; N = 0
    ([0x0E50 | 10], 0x1F00F, 0x00F0, C),
    # RLAM.W #1,R10: 4000h -> 8000h: N
    ([0x0250 | 10], 0x4000, 0x8000, N),
])
def test_x4_rotations(words, value, out, flags):
    # RRAM/RLAM (4.6.3): "The word instruction ... clears the bits Rdst.19:16"; V undefined
    # for RLAM, reset for RRAM
    _, got, sr = run(words, {"r10": value})
    assert got["r10"] == out
    assert sr & (C | Z | N) == flags


def test_x5_mova_autoincrement_into_its_own_register():
    # MOVA @R5+,R5: the source (incl. R5 += 4) completes before Rdst is written (4.4.5)
    _, got, _ = run([0x0515], {"r5": 0x2000}, mem={0x2000: w20(0x14410)})
    assert got["r5"] == 0x14410


def test_x6_calla_symbolic():
    # CALLA EDE at 4400h (2 words), x20 = 100h relative to the index word at 4402h: the
    # target is the 20-bit word at 4502h; the return address 4404h is pushed (SP - 4)
    words = [0x1390, 0x0100] + [0x4303] * 0x7E  # NOPs up to 4500h
    words += [0x4303, 0x0000, 0x0000]  # 4500h: NOP; 4502h: the target (filled below)
    eng = IcicleEngine()
    eng.map([Mapping(0x1C00, 0x2000, Access.RW), Mapping(0x4400, 0x1000, Access.RWX)], _NoBus())
    code = b"".join(w.to_bytes(2, "little") for w in words)
    code = code[:0x102] + w20(0x4500) + code[0x106:]
    eng.write_memory(0x4400, code)
    eng.scan_code(0x4400, code)
    eng.set_exits([0x4500])
    eng.write_register("sp", 0x3B00)
    eng.pc = 0x4400
    stop = eng.run(10)
    assert stop.kind == StopKind.EXIT and stop.pc == 0x4500 and eng.instructions == 1
    assert eng.read_register("sp") == 0x3AFC
    assert eng.read_memory(0x3AFC, 4) == w20(0x4404)


@pytest.mark.parametrize("words, regs, mem, out", [
    # MOVX.A @R5,R9: the upper word's bits 15:4 are not part of the 20-bit operand
    ([0x1800, 0x4569], {"r5": 0x2000, "r9": 0}, {0x2000: bytes([0xF0, 0xCF, 0x00, 0xB7])}, {"r9": 0x0CFF0}),
    # SXTX.A R9: bit 7 into bits 19:8 (4.6.3 SXTX)
    ([0x1800, 0x1189], {"r9": 0x12394}, {}, {"r9": 0xFFF94}),
    # SWPBX.W R9: bytes of the low word swapped, bits 19:16 cleared (4.6.3 SWPBX)
    ([0x1840, 0x1089], {"r9": 0x1A821}, {}, {"r9": 0x21A8}),
    # PUSHX.A @R4+: R4 += 4 (4.4.5: .A steps by 4), SP - 4
    ([0x1800, 0x1274], {"r4": 0x2000}, {0x2000: w20(0xABCDE)}, {"r4": 0x2004, "sp": 0x3AFC}),
    # PUSHX.B @R4+: R4 += 1, SP - 2
    ([0x1840, 0x1274], {"r4": 0x2001}, {}, {"r4": 0x2002, "sp": 0x3AFE}),
    # MOVX.W -2(R5),R9 with a 20-bit index FFFFEh: 10000h - 2 = 0FFFEh wraps modulo 1 MB
    ([0x1FCF, 0x4519, 0xFFFE], {"r5": 0x10002, "r9": 0}, {0x10000: bytes([0x34, 0x12])}, {"r9": 0x1234}),
])
def test_x1_extended_memory_forms(words, regs, mem, out):
    eng, got, _ = run(words, regs, mem)
    assert {k: got[k] for k in out} == out


def test_x1_nonregister_extension_word_does_not_clear_carry():
    # MOVX.W #20005h,R9: source bits 19:16 = 2 put a 1 in bit 8 of the extension word,
    # which icicle takes for ZC and clears C; MOVX changes no flag (4.6.3 MOVX)
    _, got, sr = run([0x1940, 0x4039, 0x0005], {"r9": 0x12345}, sr=C)
    assert got["r9"] == 0x0005 and sr & C


# (c) data accesses of the new forms
class _Mem:
    def __init__(self, regs, mem=None):
        self.regs = {n: 0 for n in fx._NAMES}
        self.regs.update(regs)
        self.mem = bytearray(0x100000)
        for a, d in (mem or {}).items():
            self.mem[a:a + len(d)] = d

    def load(self, words):
        code = b"".join(w.to_bytes(2, "little") for w in words)
        self.mem[0x4400:0x4400 + len(code)] = code
        return self

    def read_register(self, name):
        return self.regs[name]

    def write_register(self, name, value):
        raise AssertionError("a dry run writes nothing")

    def read_memory(self, a, n):
        return bytes(self.mem[a:a + n])

    def write_memory(self, a, d):
        raise AssertionError("a dry run writes nothing")


@pytest.mark.parametrize("words, regs, mem, accesses", [
    ([0x0515], {"r5": 0x2000}, {}, [("r", 0x2000, 4, None)]),  # MOVA @R5+,R5
    ([0x0576, 0xFFFC], {"r5": 0xABCDE, "r6": 0x10004}, {}, [("w", 0x10000, 4, 0xABCDE)]),  # MOVA R5,-4(R6)
    ([0x1417], {"sp": 0x3000, "r6": 1, "r7": 2}, {}, [("w", 0x2FFC, 4, 2), ("w", 0x2FF8, 4, 1)]),  # PUSHM.A #2,R7
    ([0x1716], {"sp": 0x3000}, {}, [("r", 0x3000, 2, None), ("r", 0x3002, 2, None)]),  # POPM.W #2,R7
    ([0x1381, 0x2000], {"sp": 0x3000}, {0x12000: w20(0x4400)},  # CALLA &12000h
     [("r", 0x12000, 4, None), ("w", 0x2FFC, 4, 0x4404)]),
    ([0x1800, 0x55C6, 0x0010], {"r5": 0x10000, "r6": 0x20000}, {},  # ADDX.A R5,10h(R6)
     [("r", 0x20010, 4, None), ("w", 0x20010, 4, 0x10000)]),
    ([0x1840, 0x1274], {"r4": 0x2001, "sp": 0x3000}, {0x2001: b"\x5a"},  # PUSHX.B @R4+
     [("r", 0x2001, 1, None), ("w", 0x2FFE, 1, 0x5A)]),
])
def test_data_accesses_of_extended_forms(words, regs, mem, accesses):
    cpu = _Mem({"pc": 0x4400, **regs}, mem).load(words)
    assert fx.data_accesses(cpu, 0x4400) == accesses


def test_fixup_sites_mark_the_divergent_x_forms_only():
    code = b"".join(w.to_bytes(2, "little") for w in [
        0x0C56,          # 4400 MOVA R12,R6        right in icicle: no site
        0x05E6,          # 4402 ADDA R5,R6         X2
        0x0F86, 0x0000,  # 4404 MOVA #F0000h,R6    X3
        0x0086, 0x0234,  # 4408 MOVA #0234h,R6     right: no site
        0x1840, 0x6506,  # 440C ADDCX.W R5,R6      X1
        0x1517,          # 4410 PUSHM.W #2,R7      right
        0x0110,          # 4412 RETA               right
    ])
    sites = set(fx.fixup_sites(code, 0x4400))
    assert {0x4402, 0x4404, 0x440C} <= sites  # (440Eh, ADDC R5,R6, is a D3 site of its own)
    assert not sites & {0x4400, 0x4408, 0x440A, 0x4410, 0x4412}

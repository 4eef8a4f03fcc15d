"""icicle's MSP430 engine, with the repairs of emu/engines/msp430_fixups.py, against
mspdebug's simulator and against TI's instruction-set rules.

(a) a few hundred random programs (tests/msp430_diff.py) must run identically on icicle
    + fixups (stepped, and as the engine runs them: JIT with breakpoints at the fixup
    sites), on the Python model and on `mspdebug sim` (skipped without mspdebug);
(b) one regression test per divergence found, with expected values derived from TI's
    MSP430FR58xx/59xx/68xx/69xx Family User's Guide (SLAU367P, chapter 4 "CPUX"), never
    from running mspdebug. The ids D1..D11 are those of msp430_fixups and
    docs/msp430-divergences.md; M1/M2 are cases where mspdebug is the one that is wrong.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("icicle")

from emu.engines import msp430_fixups as fx  # noqa: E402
from tests import msp430_diff as d  # noqa: E402
from tests import msp430_isa as isa  # noqa: E402
from tests.msp430_isa import Abs, Idx, Imm, Ind, Inc, Reg, Sym  # noqa: E402

C, Z, N, V = 0x1, 0x2, 0x4, 0x100
SP0 = 0x3000
RAM = 0x2000  # inside the scratch area


# --------------------------------------------------------------------------------------
# (a) differential check
# --------------------------------------------------------------------------------------
@pytest.mark.skipif(d.mspdebug_path() is None, reason="mspdebug is not installed "
                    "(apt-get install mspdebug; `make toolchains` does it)")
def test_random_programs_match_mspdebug_and_model():
    t0 = time.time()
    progs = d.generate(300, seed=20240601)
    # every program is stepped on icicle+fixups, the model and mspdebug (all registers
    # after each instruction, scratch memory after each program); every third one also
    # runs as the engine runs it (JIT, breakpoints at the sites)
    rep = d.compare(progs, engine_every=3)
    print(rep.summary())
    assert not rep.errors, rep.summary()
    assert not rep.divergences, rep.summary(verbose=True)
    assert rep.instructions > 10_000
    assert rep.truncated < len(progs) // 4  # undefined-DADD cut-offs stay the exception
    print(f"{time.time() - t0:.1f} s")


def test_random_programs_match_model_without_mspdebug():
    """The same check against the Python model only (runs where mspdebug is missing)."""
    progs = d.generate(40, seed=7)
    rep = d.compare(progs, use_mspdebug=False, engine_every=4)
    assert not rep.errors, rep.summary()
    assert not rep.divergences, rep.summary(verbose=True)


# --------------------------------------------------------------------------------------
# (b) regression tests: small snippets on icicle + fixups
# --------------------------------------------------------------------------------------
def run(items, regs=None, mem=None, sr=0):
    """Assemble `items` at 0x4400 (each a callable taking the address and returning
    words, or a tuple for msp430_isa.Asm), run them to the end on icicle with the fixups,
    both stepped and as the engine runs them, check both agree, return (regs, memory)."""
    asm = isa.Asm(d.CODE)
    for it in items:
        kind, *args = it
        getattr(asm, kind)(*args)
    end = asm.place(isa.Label("end"))
    asm.jmp("jmp", end)
    code, _ = asm.assemble()
    image = bytearray(d.SCRATCH_HI - d.SCRATCH_LO)
    for addr, data in (mem or {}).items():
        image[addr - d.SCRATCH_LO:addr - d.SCRATCH_LO + len(data)] = data
    r = {"pc": d.CODE, "sp": SP0, "sr": sr, "r3": 0}
    r.update(regs or {})
    prog = d.Program(0, code, r, bytes(image), end.value, {})
    stepped = d.run_icicle(prog, fixups=True)
    blocks = d.run_icicle_blocks(prog, fixups=True)
    assert stepped.status == "ok" and blocks.status == "ok", (stepped.status, blocks.status)
    assert stepped.states[-1] == blocks.states[-1]
    assert stepped.memory == blocks.memory
    model = d.run_model(prog)
    assert model.states[-1] == stepped.states[-1]
    return dict(zip(d.REG_NAMES, stepped.states[-1])), stepped.memory


def word(mem, addr):
    i = addr - d.SCRATCH_LO
    return mem[i] | (mem[i + 1] << 8)


def flags(regs):
    return regs["sr"] & (C | Z | N | V)


def w16(v):
    return bytes([v & 0xFF, (v >> 8) & 0xFF])


# D1 -- DADD: "src + dst + C -> dst (decimally)"; C "set if the BCD result is too large
# (word > 9999h, byte > 99h)"; N = MSB; Z = result zero; V undefined (not checked)
# (SLAU367P 4.6.2.16)
@pytest.mark.parametrize("byte,dst,src,cin,result,c", [
    (False, 0x9999, 1, 0, 0x0000, 1),     # the measured icicle bug: C stayed clear
    (False, 0x0999, 1, 0, 0x1000, 0),
    (False, 0x0999, 0, 1, 0x1000, 0),     # carry in (DADC)
    (False, 0x9999, 0x9999, 1, 0x9999, 1),
    (False, 0x1234, 0x8765, 0, 0x9999, 0),
    (False, 0x5000, 0x5000, 0, 0x0000, 1),
    (True, 0x99, 1, 0, 0x00, 1),
    (True, 0x45, 0x54, 1, 0x00, 1),
    (True, 0x09, 0x01, 0, 0x10, 0),
    (True, 0x79, 0x01, 0, 0x80, 0),
])
def test_d1_dadd(byte, dst, src, cin, result, c):
    regs, _ = run([("op1", "dadd", Imm(src, long=True), Reg(6), byte)], {"r6": dst}, sr=cin)
    assert regs["r6"] == result
    msb = 0x80 if byte else 0x8000
    assert flags(regs) & (C | Z | N) == (C if c else 0) | (Z if result == 0 else 0) | \
        (N if result & msb else 0)


def test_d1_dadd_memory_and_dadc():
    regs, mem = run([("op1", "dadd", Imm(0x0001), Abs(RAM), False),
                     ("op1", "dadd", Imm(0), Reg(7), False)],  # DADC: adds the carry
                    {"r7": 0x0009}, mem={RAM: w16(0x9999)})
    assert word(mem, RAM) == 0x0000
    assert regs["r7"] == 0x0010 and not regs["sr"] & C


# D2 -- RRC: "C -> MSB -> ... LSB -> C"; V: Reset (SLAU367P 4.6.2.41)
@pytest.mark.parametrize("byte,value,cin,result,cout", [
    (False, 0x0002, 1, 0x8001, 0),
    (False, 0x0003, 0, 0x0001, 1),
    (True, 0x0002, 1, 0x0081, 0),
])
def test_d2_rrc(byte, value, cin, result, cout):
    regs, _ = run([("op2", "rrc", Reg(6), byte)], {"r6": value}, sr=cin | V)
    assert regs["r6"] == result
    msb = 0x80 if byte else 0x8000
    assert flags(regs) == (C if cout else 0) | (N if result & msb else 0)  # V reset


def test_d2_rrc_memory_v_reset():
    regs, mem = run([("op2", "rrc", Abs(RAM))], mem={RAM: w16(0x1234)}, sr=C)
    assert word(mem, RAM) == 0x891A
    assert flags(regs) == N


# D3 -- ADDC: src + dst + C -> dst; V set if two operands of the same sign give a result
# of the other sign (SLAU367P 4.6.2.3)
def test_d3_addc_overflow_flag():
    regs, _ = run([("op1", "addc", Reg(5), Reg(6))], {"r5": 0x7FFF, "r6": 0xFFFF}, sr=C)
    assert regs["r6"] == 0x7FFF  # 32767 + (-1) + 1
    assert flags(regs) == C  # carry out, no overflow (operands of different sign)
    regs, _ = run([("op1", "addc", Reg(5), Reg(6), True)], {"r5": 0x7F, "r6": 0x00}, sr=C)
    assert regs["r6"] == 0x80
    assert flags(regs) == N | V  # 127 + 0 + 1 = 128 overflows a byte


# D4 -- SUBC: dst + .not.src + C -> dst; C = no borrow; V on signed overflow
# (SLAU367P 4.6.2.52)
def test_d4_subc_carry_and_overflow():
    regs, _ = run([("op1", "subc", Reg(5), Reg(6))], {"r5": 0xFFFF, "r6": 0x1234}, sr=0)
    assert regs["r6"] == 0x1234  # 0x1234 - 0xFFFF - 1 borrows
    assert flags(regs) == 0  # C clear (borrow), no overflow
    regs, _ = run([("op1", "subc", Reg(5), Reg(6))], {"r5": 0x7FFF, "r6": 0xF78E}, sr=0)
    assert regs["r6"] == 0x778E  # -2162 - 32767 - 1 = -34930: overflows
    assert flags(regs) == C | V
    regs, _ = run([("op1", "subc", Imm(0xFF), Reg(6), True)], {"r6": 0x01}, sr=0)
    assert regs["r6"] == 0x01 and flags(regs) == 0


# D5 -- @Rn+: "Rn is incremented afterwards by 1 for .B instructions and by 2 for .W
# instructions" (SLAU367P 4.4.5)
@pytest.mark.parametrize("mn,byte,step", [
    ("rrc", False, 2), ("rrc", True, 1), ("swpb", False, 2), ("rra", True, 1),
    ("rra", False, 2), ("sxt", False, 2), ("push", False, 2), ("push", True, 1),
])
def test_d5_format2_autoincrement(mn, byte, step):
    regs, mem = run([("op2", mn, Inc(5), byte)], {"r5": RAM}, mem={RAM: w16(0x1234)})
    assert regs["r5"] == RAM + step
    if mn == "push":
        assert regs["sp"] == SP0 - 2
        lo = mem[SP0 - 2 - d.SCRATCH_LO]
        assert lo == 0x34 and (byte or word(mem, SP0 - 2) == 0x1234)
    elif mn == "swpb":
        assert word(mem, RAM) == 0x3412


def test_d5_call_autoincrement():
    target = isa.Label("target")
    regs, mem = run([("op1", "mov", Imm(RAM), Reg(5)),
                     ("op1", "mov", Imm(target), Abs(RAM)),
                     ("op2", "call", Inc(5)),
                     ("place", target)])
    assert regs["r5"] == RAM + 2
    assert regs["sp"] == SP0 - 2
    assert word(mem, SP0 - 2) == target.value  # return address = next instruction


# D6 -- the source operand, including its autoincrement, is complete before the
# destination is evaluated (POP SP: SLAU367P fig. 4-8 "The POP SP instruction places SP1
# into the stack pointer SP (SP2 = SP1)")
def test_d6_mov_autoincrement_to_same_register():
    regs, _ = run([("op1", "mov", Inc(5), Reg(5))], {"r5": RAM}, mem={RAM: w16(0x2222)})
    assert regs["r5"] == 0x2222


def test_d6_destination_indexed_on_incremented_register():
    regs, mem = run([("op1", "add", Inc(5), Idx(5, 0))], {"r5": RAM},
                    mem={RAM: w16(0x0100), RAM + 2: w16(0x0023)})
    assert regs["r5"] == RAM + 2
    assert word(mem, RAM + 2) == 0x0123 and word(mem, RAM) == 0x0100


def test_d6_push_sp_pop_sp():
    regs, mem = run([("op2", "push", Reg(1)), ("op1", "mov", Inc(1), Reg(1))])
    # PUSH SP stores SP1 = SP0 - 2 (M1: mspdebug stores SP0); POP SP leaves SP1:
    # "The stack pointer is two bytes lower than before this sequence"
    assert word(mem, SP0 - 2) == SP0 - 2
    assert regs["sp"] == SP0 - 2


# D7 -- SXT in register mode: "dst.7 -> dst.19:8"; N, Z, C = .not.Z, V reset
# (SLAU367P 4.6.2.57)
@pytest.mark.parametrize("value,result,fl", [
    (0x0080, 0xFFF80, N | C), (0x127F, 0x0007F, C), (0xFF00, 0x00000, Z),
])
def test_d7_sxt_register_bits_19_16(value, result, fl):
    regs, _ = run([("op2", "sxt", Reg(6))], {"r6": value}, sr=V)
    assert regs["r6"] == result
    assert flags(regs) == fl


def test_sxt_memory_16_bits():
    regs, mem = run([("op2", "sxt", Abs(RAM))], mem={RAM: w16(0x0080)})
    assert word(mem, RAM) == 0xFF80 and flags(regs) == N | C


# D8 -- CALL: "dst -> tmp; SP - 2 -> SP; PC -> @SP; tmp -> PC" (SLAU367P 4.6.2.10)
def test_d8_call_indirect_sp():
    target = isa.Label("target")
    regs, mem = run([("op2", "push", Imm(target)),
                     ("op2", "call", Ind(1)),
                     ("op1", "mov", Imm(0xDEAD), Reg(6)),  # the return address: skipped
                     ("place", target)], {"r6": 0})
    assert regs["r6"] == 0  # went to the TOS read before the push, not to the return
    assert regs["sp"] == SP0 - 4
    assert word(mem, SP0 - 2) == target.value
    assert word(mem, SP0 - 4) == target.value - 4  # return address: the skipped MOV


# D9 -- BR @Rn+ (MOV @Rn+,PC) increments Rn (SLAU367P 4.4.5)
def test_d9_branch_autoincrement():
    target = isa.Label("target")
    regs, _ = run([("op1", "mov", Imm(RAM), Reg(5)),
                   ("op1", "mov", Imm(target), Abs(RAM)),
                   ("op1", "mov", Inc(5), Reg(0)),
                   ("op1", "mov", Imm(0xDEAD), Reg(6)),  # skipped
                   ("place", target)])
    assert regs["r5"] == RAM + 2
    assert regs["r6"] != 0xDEAD


# D10 -- symbolic mode: the extension word holds ADDR - PC(extension word); for an
# instruction in the lower 64 KB the address is wrapped to 16 bits (SLAU367P 4.4.3.1)
def test_d10_symbolic_source_below_code_not_first_in_block():
    regs, mem = run([("emu", isa.nop()),  # the symbolic instruction is not a block start
                     ("op1", "mov", Sym(RAM), Reg(5)),
                     ("op1", "add", Sym(RAM + 2), Reg(5)),
                     ("op1", "mov", Reg(5), Sym(RAM + 4)),
                     ("op2", "push", Sym(RAM))],
                    mem={RAM: w16(0x1111), RAM + 2: w16(0x2222)})
    assert regs["r5"] == 0x3333
    assert word(mem, RAM + 4) == 0x3333
    assert word(mem, SP0 - 2) == 0x1111


# D11 -- a source register is read before the instruction changes anything; SR as a
# source gives the flags before the instruction (SLAU367P 4.4.1, register mode)
@pytest.mark.parametrize("op,sr,dst,result", [
    ("add", C, 0x0000, 0x0001),
    ("add", V | C, 0x0000, 0x0101),
    ("bit", V, 0x0100, None),
    ("and", V | N, 0xFFFF, 0x0104),
    ("xor", V | C, 0x0101, 0x0000),
    ("cmp", V | N, 0x0104, None),
])
def test_d11_sr_as_source(op, sr, dst, result):
    regs, _ = run([("op1", op, Reg(2), Reg(6))], {"r6": dst}, sr=sr)
    if result is not None:
        assert regs["r6"] == result
    elif op == "bit":  # 0x100 & 0x100: C = not Z, V reset
        assert flags(regs) == C
    else:  # CMP: equal -> Z, C (no borrow)
        assert flags(regs) == Z | C


# M2 -- @SP+ steps by 2 also for byte operations: POP.B "SP + 2 -> SP"
# (SLAU367P 4.6.2.37); mspdebug 0.22 steps by 1
def test_m2_byte_pop_steps_sp_by_two():
    regs, _ = run([("op1", "mov", Inc(1), Reg(6), True)], mem={SP0: w16(0xABCD)})
    assert regs["sp"] == SP0 + 2 and regs["r6"] == 0xCD


def test_reti_restores_sr_and_pc():
    target = isa.Label("target")
    regs, _ = run([("op2", "push", Imm(target)), ("op2", "push", Imm(N | C, long=True)),
                   ("op2", "reti"), ("op1", "mov", Imm(0xDEAD), Reg(6)),
                   ("place", target)], {"r6": 0})
    assert regs["r6"] == 0 and regs["sp"] == SP0 and flags(regs) == N | C


# --------------------------------------------------------------------------------------
# fixup_sites
# --------------------------------------------------------------------------------------
def test_fixup_sites_cover_every_divergence_class_and_only_even_addresses():
    # odd base: sites must still be even and inside the code
    lines = [
        ("op1", "dadd", Reg(5), Reg(6)), ("op2", "rrc", Reg(6)),
        ("op1", "addc", Reg(5), Reg(6)), ("op1", "subc", Reg(5), Reg(6)),
        ("op2", "push", Inc(5)), ("op1", "mov", Inc(5), Reg(5)), ("op2", "sxt", Reg(5)),
        ("op2", "call", Ind(1)), ("op1", "mov", Inc(5), Reg(0)),
        ("op1", "mov", Sym(0x2000), Reg(5)), ("op1", "cmp", Reg(2), Reg(5)),
    ]
    words = []
    for kind, *args in lines:
        if kind == "op1":
            words += isa.fmt1(args[0], args[1], args[2], at=0x4402 + 2 * len(words))
        else:
            words += isa.fmt2(args[0], args[1], at=0x4402 + 2 * len(words))
    code = b"\x00" + isa.words_to_bytes(words)
    sites = fx.fixup_sites(code, 0x4401, prune=False)
    assert all(a % 2 == 0 and 0x4401 <= a < 0x4401 + len(code) for a in sites)
    # every instruction start is a site
    addr = 0x4402
    for kind, *args in lines:
        assert addr in sites, (kind, args)
        n = len(isa.fmt1(args[0], args[1], args[2]) if kind == "op1"
                 else isa.fmt2(args[0], args[1]))
        addr += 2 * n
    ids = set()
    for a in sites:
        i = a - 0x4401
        ids.update(fx.divergences(code[i] | (code[i + 1] << 8)))
    assert {f"D{k}" for k in range(1, 12)} <= ids


def _sites(*lines):
    words = []
    for kind, *args in lines:
        at = 0x4400 + 2 * len(words)
        if kind == "op1":
            words += isa.fmt1(args[0], args[1], args[2], at=at)
        elif kind == "op2":
            words += isa.fmt2(args[0], args[1], at=at)
        else:
            words += [args[0]]
    return fx.fixup_sites(isa.words_to_bytes(words), 0x4400)


def test_flag_only_sites_are_pruned_only_when_the_flag_is_dead():
    rrc = ("op2", "rrc", Reg(6))
    # V written by the next ADD before anything reads it: dead, no breakpoint needed
    assert _sites(rrc, ("op1", "add", Reg(5), Reg(7)), ("word", 0x3FFF)) == []
    # RRC (reads only C) then AND (writes V): still dead
    assert _sites(rrc, ("op2", "rrc", Reg(7)), ("op1", "and", Reg(5), Reg(7)), ("word", 0x3FFF)) == []
    # JGE reads V: live
    assert _sites(rrc, ("word", 0x3400), ("op1", "add", Reg(5), Reg(7))) == [0x4400]
    # the program's final self-branch observes the state: live
    assert _sites(rrc, ("word", 0x3FFF)) == [0x4400]
    # PUSH SR reads every flag: live
    assert _sites(rrc, ("op2", "push", Reg(2)), ("op1", "add", Reg(5), Reg(7))) == [0x4400]
    # SUBC's wrong C is read by the next ADDC: live
    assert _sites(("op1", "subc", Reg(5), Reg(6)), ("op1", "addc", Reg(5), Reg(7)),
                  ("word", 0x3FFF)) == [0x4400, 0x4402]
    # SXT Rn: bits 19:16 matter only if Rn is used as an address before a 16-bit write
    sxt = ("op2", "sxt", Reg(5))
    assert _sites(sxt, ("op1", "add", Reg(5), Reg(7)), ("op1", "mov", Reg(6), Reg(5)), ("word", 0x3FFF)) == []
    assert _sites(sxt, ("op1", "mov", Ind(5), Reg(7)), ("op1", "mov", Reg(6), Reg(5))) == [0x4400]
    # a call #f is followed into f and back through its ret
    call, ret = ("word", 0x12B0), ("word", 0x4130)
    # 4400 sxt r5; 4402 call #440c; 4406 mov r6, r5; 4408 jmp $; 440a (pad); 440c f: ...; ret
    def with_callee(*body):
        return _sites(sxt, call, ("word", 0x440C), ("op1", "mov", Reg(6), Reg(5)), ("word", 0x3FFF),
                      ("word", 0x4303), *body, ret)
    assert with_callee(("op1", "add", Reg(5), Reg(7))) == []  # f reads r5 as a value only
    assert with_callee(("op1", "mov", Ind(5), Reg(7))) == [0x4400]  # f uses r5 as an address
    # f clears C with `bic #1, sr` (an SR write): the SXT scan goes on through it
    assert with_callee(("op1", "bic", Imm(1), Reg(2)), ("op1", "mov", Reg(6), Reg(5))) == []
    # paths that merge again (jz over one instruction) are both followed
    assert _sites(sxt, ("word", 0x2401), ("op1", "add", Reg(5), Reg(7)), ("op1", "mov", Reg(6), Reg(5)),
                  ("word", 0x3FFF)) == []
    assert _sites(sxt, ("word", 0x2401), ("op1", "mov", Ind(5), Reg(7)), ("op1", "mov", Reg(6), Reg(5)),
                  ("word", 0x3FFF)) == [0x4400]
    # without pruning every site is kept
    words = isa.fmt2("rrc", Reg(6)) + isa.fmt1("add", Reg(5), Reg(7))
    assert fx.fixup_sites(isa.words_to_bytes(words), 0x4400, prune=False) == [0x4400]


def test_fixup_sites_skip_correct_instructions():
    fine = [isa.fmt1("mov", Reg(5), Reg(6)), isa.fmt1("add", Imm(1), Reg(6)),
            isa.fmt1("addc", Imm(0), Reg(6)), isa.fmt1("addc", Reg(6), Reg(6)),  # ADC, RLC
            isa.fmt1("subc", Imm(0), Reg(6)), isa.fmt2("sxt", Abs(0x2000)),
            isa.fmt1("mov", Inc(1), Reg(0)), isa.fmt1("mov", Reg(2), Reg(5)),
            isa.fmt2("push", Reg(5)), isa.fmt2("call", Imm(0x4400, long=True)),
            isa.jump("jne", 0x4400, 0x4410), [0xC312], [0xD312]]  # ..., CLRC, SETC
    for w in fine:
        assert fx.fixup_sites(isa.words_to_bytes(w[:1]), 0x4400) == [], hex(w[0])
    # L1: what may change SR bits 7:3 is a site (EINT, DINT, MOV R14,SR, BIS #imm,SR, RETI)
    for w in (0xD232, 0xC232, 0x4E02, 0xD032, 0x1300):
        assert fx.divergences(w) == ["L1"], hex(w)


def test_execute_rejects_reserved_msp430x_forms():
    # extension word with A/L = 0 before a B/W = 0 instruction: reserved (SLAU367 table 4-11);
    # the MSP430X forms themselves are modelled (tests/engines/test_msp430x_differential.py)
    cpu = d.DictCpu(d.Program(0, isa.words_to_bytes([0x1805, 0x5505]), {"pc": d.CODE},
                              bytes(d.SCRATCH_HI - d.SCRATCH_LO), d.CODE + 4, {}))
    with pytest.raises(NotImplementedError):
        fx.execute(cpu, d.CODE)
    assert fx.fixup_sites(isa.words_to_bytes([0x1845]), d.CODE) == []

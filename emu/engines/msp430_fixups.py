"""Repairs for the MSP430 instructions that icicle-emu mis-executes.

icicle's MSP430X semantics come from Ghidra's SLEIGH spec (TI430Common.sinc), not from TI.
A differential check against mspdebug's simulator (tests/msp430_diff.py), with every
disagreement settled by TI's MSP430FR58xx/59xx/68xx/69xx Family User's Guide (SLAU367P,
chapter 4 "CPUX"), found the forms below wrong in icicle. The engine adapter puts an icicle
breakpoint on every address `fixup_sites` returns and, when execution reaches one, calls
`execute` instead of letting icicle run the instruction (it counts as one retired
instruction). See docs/msp430-divergences.md for the table with manual references.

=====  ======================================================  ==========================
id     form (icicle wrong)                                     correct (SLAU367P)
=====  ======================================================  ==========================
D1     DADD/DADC .B/.W, all modes: C cleared before the add,   src + dst + C decimally,
       so the carry in is ignored and the carry out is 0;      C = BCD carry (4.6.2.16)
       DADC.W (DADD #0 via R3) stops icicle with InvalidOpSize
D2     RRC .B/.W, all modes: V = (dst != 0 && C)               V reset (4.6.2.41)
D3     ADDC .B/.W: V wrong when src + C overflows (src =       V = signed overflow of
       0x7FFF/0x7F with C = 1); ADC and RLC are right          src + dst + C (4.6.2.3)
D4     SUBC .B/.W: C wrong when src + (1 - C) wraps (src =     C/V of dst + ~src + C
       0xFFFF/0xFF, C = 0), V wrong when it overflows (src =   (4.6.2.52)
       0x7FFF/0x7F, C = 0); SBC is right
D5     RRC, RRC.B, SWPB, PUSH, PUSH.B, CALL @Rn+: Rn not        Rn += 1 (.B) / 2 (4.4.5)
       incremented; RRA.B @Rn+: Rn += 2
D6     format I with @Rn+ source and destination Rn or X(Rn):   source (incl. increment)
       increment applied after the destination is written       completes before the
       (so POP SP = MOV @SP+,SP leaves SP = value + 2)           destination (4.3.2 fig.
                                                               4-8, 4.4.5)
D7     SXT Rn: bits 19:16 cleared                               Rn.19:8 = Rn.7 (4.6.2.57)
D8     CALL @SP / CALL X(SP): operand read after the push       dst -> tmp before SP - 2
                                                               (4.6.2.10)
D9     MOV @Rn+,PC (BR @Rn+, Rn != SP): Rn not incremented      Rn += 2 (4.4.5)
D10    symbolic operand ADDR (X(PC)) of an instruction that     (PC + X) & 0xFFFF for PC
       is not the first of an icicle translation block: the    in the lower 64 KB
       SLEIGH context bit ctx_isHi (set by the pspec for        (4.4.3.1)
       0-0xFFFF) is lost, so the address is computed modulo
       1 MB, and a source index is taken unsigned: a source
       below the instruction is read at address + 0x10000
D11    ADD/ADDC/SUB/SUBC/CMP/DADD/BIT/XOR/AND SR,dst: flags     the source is the SR
       are written before the source register SR is read, so    value before the
       the source value is the partly updated SR                instruction (4.4.1)
=====  ======================================================  ==========================

Instruction counting (found by stepping every budget around such instructions):

=====  ======================================================  ==========================
L1     an instruction that may change SR bits 7:3 (EINT, DINT,  the instruction limit
       MOV to SR, RETI; not SETC/CLRC/...): icicle does not     holds after every
       stop at its instruction limit before the second          instruction
       instruction after it, so a run retires one more
=====  ======================================================  ==========================

MSP430X (mspdebug has none; found by tests/msp430x_diff.py, icicle against this model,
every case settled by SLAU367P 4.5/4.6.3/4.6.4):

=====  ======================================================  ==========================
X1     every instruction with an extension word (1800h-1FFFh   4.5.2, 4.6.3 per
       before format I/II): D1-D4 flag code in ADDCX/SUBCX/     instruction
       DADDX/RRCX; .A: N/V from bit 31, memory operands read
       as 32 bits; bit 8 of a non-register extension word (a
       source address bit) taken for ZC, clearing C; DADDX.A
       stops (InvalidOpSize); SXTX.A writes 32 bits; SWPBX.W Rn
       rotates; PUSHX.A/.B @Rn+ no increment; 20-bit X(Rn) not
       wrapped at 1 MB (SWPBX/SXTX)
X2     CMPA/ADDA/SUBA (#imm20, Rsrc): N and V not from bit 19   4.6.4
X3     MOVA #imm20,Rdst with bit 19 set: sign-extended to 32    4.6.4 MOVA
       bits
X4     RRAM .A (shifts in 0, not bit 19) and .W (N); RLAM.W (N) 4.6.3 RRAM, RLAM
X5     MOVA @Rn+,Rn: increment applied after the load           4.4.5 (as D6)
X6     CALLA EDE (PC-relative): index taken from the opcode     4.6.4 CALLA
       word, return address 2 bytes short
=====  ======================================================  ==========================

`execute` is a complete, exact model of the MSP430X instruction set of the FR5994 (20-bit
registers and addresses): the MSP430 instructions, the extended ones (extension word,
register mode with repetition count and ZC, 20-bit indexes/addresses/immediates), the
address instructions (MOVA, CMPA, ADDA, SUBA, BRA, RETA), RRCM/RRAM/RLAM/RRUM, CALLA,
PUSHM/POPM. So it is also correct for the harmless false positives `fixup_sites` may
return. MSP430X forms icicle executes right (MOVA except X3/X5, CALLA except EDE, PUSHM,
POPM, RRCM, RRUM, RLAM.A) are not sites. Reserved encodings raise NotImplementedError.

Choices where the manual leaves the result open (documented, not checked):
* DADD with non-BCD digits ("the result is not defined for non-BCD numbers"): each digit
  is added in binary with a 1-bit carry in, corrected by +6 when above 9, carry out = 1 when
  the corrected value exceeds 15. V ("undefined") is left unchanged, as icicle does.
* PUSH.B writes only the byte at the new SP (the high byte of the stack word is unchanged).
* Word accesses use the even address (A0 ignored).
"""

from __future__ import annotations

MASK20 = 0xFFFFF
_NAMES = ("pc", "sp", "sr", "r3", "r4", "r5", "r6", "r7",
          "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")

C_BIT, Z_BIT, N_BIT, V_BIT = 0x0001, 0x0002, 0x0004, 0x0100

# format I opcodes (bits 15:12)
MOV, ADD, ADDC, SUBC, SUB, CMP, DADD, BIT, BIC, BIS, XOR, AND = range(4, 16)
# format II opcodes (bits 9:7)
RRC, SWPB, RRA, SXT, PUSH, CALL, RETI = range(7)


def divergences(word: int) -> list[str]:
    """Ids (D1..D11, L1, X1..X6, see the module docstring) of the icicle bugs an instruction
    whose first word is `word` can hit; empty if icicle executes it correctly. An
    extension word (X1) is one only when a format I or II instruction follows
    (`fixup_sites` checks that)."""
    word &= 0xFFFF
    out = []
    if word >= 0x4000:
        op = word >> 12
        As = (word >> 4) & 3
        sreg = (word >> 8) & 0xF
        Ad = (word >> 7) & 1
        dreg = word & 0xF
        # ADC/SBC (ADDC/SUBC #0 via R3) and RLC (ADDC Rn,Rn) decode to dedicated SLEIGH
        # constructors whose flags are right
        emulated = As == 0 and (sreg == 3 or (op == ADDC and Ad == 0 and sreg == dreg))
        if op == DADD:
            out.append("D1")
        elif op == ADDC and not emulated:
            out.append("D3")
        elif op == SUBC and not emulated:
            out.append("D4")
        if As == 3 and sreg not in (0, 2, 3):
            if sreg == dreg:  # @Rn+ source whose destination uses the same register
                out.append("D6")
            elif op == MOV and dreg == 0 and Ad == 0 and sreg != 1:  # BR @Rn+ (not RET)
                out.append("D9")
        if (As == 1 and sreg == 0) or (Ad == 1 and dreg == 0):  # symbolic operand
            out.append("D10")
        if As == 0 and sreg == 2 and op not in (MOV, BIC, BIS):  # SR as source
            out.append("D11")
    elif 0x1000 <= word < 0x1380:
        code = (word >> 7) & 7
        byte = (word >> 6) & 1
        As = (word >> 4) & 3
        reg = word & 0xF
        if code == RRC:
            out.append("D2")
        if As == 3 and reg not in (0, 2, 3):
            if code in (RRC, SWPB, PUSH, CALL) or (code == RRA and byte):
                out.append("D5")
        if code == SXT and As == 0 and reg not in (0, 2, 3):
            out.append("D7")
        if code == CALL and reg == 1 and As in (1, 2):
            out.append("D8")
        if As == 1 and reg == 0 and code != RETI:
            out.append("D10")
    else:
        out += _x_divergences(word)
    if word == 0x1300 or (_writes_sr(word) and not _keeps_sr_mode_bits(word)):
        out.append("L1")  # (RETI: 0x1300)
    return out


def _keeps_sr_mode_bits(word: int) -> bool:
    """Is `word` a BIS/BIC/XOR/AND to SR with a constant-generator source that leaves
    SR bits 7:3 (GIE, CPUOFF, OSCOFF, SCG0, SCG1) alone (SETC, CLRC, SETZ, ...)?"""
    if word < 0x4000:
        return False
    op, sreg, As = word >> 12, (word >> 8) & 0xF, (word >> 4) & 3
    constant = {(3, 0): 0, (3, 1): 1, (3, 2): 2, (3, 3): 0xFFFF, (2, 2): 4, (2, 3): 8}.get((sreg, As))
    if constant is None or op not in (BIS, BIC, XOR, AND):
        return False
    return (constant | 0xFF07) == 0xFFFF if op == AND else not constant & 0xF8


def _x_divergences(word: int) -> list[str]:
    """MSP430X forms (first word below 1000h or 1380h-1FFFh) icicle gets wrong."""
    if 0x1800 <= word < 0x2000:
        return ["X1"]  # every instruction with an extension word
    if 0x1390 <= word < 0x13A0:
        return ["X6"]  # CALLA EDE (PC-relative)
    if word >= 0x1000:
        return []  # CALLA (other modes), PUSHM, POPM: right
    src, op, dst = (word >> 8) & 0xF, (word >> 4) & 0xF, word & 0xF
    if op in (9, 10, 11, 13, 14, 15):
        return ["X2"]  # CMPA/ADDA/SUBA: N and V
    if op == 8 and src & 0x8:
        return ["X3"]  # MOVA #imm20 with bit 19 set: sign-extended to 32 bits
    if op in (4, 5) and ((word >> 8) & 3 == 1 or ((word >> 8) & 3 == 2 and op == 5)):
        return ["X4"]  # RRAM .A/.W, RLAM.W
    if op == 1 and src == dst:
        return ["X5"]  # MOVA @Rn+,Rn
    return []


def fixup_sites(code: bytes, base: int, prune: bool = True) -> list[int]:
    """Addresses (even, within [base, base+len(code))) where an instruction the engine
    mis-executes could start. False positives are fine (a breakpoint there is harmless if
    never executed as an instruction start); misses are not.

    A site whose only bug is a wrong flag (D2, D3, D4) is left out when that flag is
    provably dead: every path from the next instruction overwrites it before anything
    reads it (`_flags_dead`); likewise SXT Rn (D7) when bits 19:16 of Rn are cleared
    before Rn is used as an address (`_upper_bits_dead`). That keeps the common `rrc`,
    `addc` and `sxt` of compiled shifts and 32-bit arithmetic at JIT speed; what a program can observe is unchanged, but between
    such an instruction and the one that overwrites the flag, SR holds icicle's value.
    `prune=False` repairs every site (for instruction-by-instruction comparisons)."""
    sites = []
    start = base + (base & 1)
    end = base + len(code) - 1  # an instruction needs its full first word
    for a in range(start, end, 2):
        i = a - base
        word = code[i] | (code[i + 1] << 8)
        if 0x1800 <= word < 0x2000:  # X1: an extension word before format I or II
            if i + 4 <= len(code) and _extended_form(code[i + 2] | (code[i + 3] << 8)):
                sites.append(a)
            continue
        ids = divergences(word)
        if not ids:
            continue
        if prune:
            length = _decode(word)[0]
            wrong_flags = _FLAG_ONLY.get(frozenset(ids))
            if wrong_flags is not None and _flags_dead(code, base, a + length, wrong_flags):
                continue
            if ids == ["D7"] and _upper_bits_dead(code, base, a + length, word & 0xF):
                continue
        sites.append(a)
    return sites


def _extended_form(word: int) -> bool:
    """Can `word` follow an extension word (format I, or format II except CALL/RETI)?"""
    return word >= 0x4000 or 0x1000 <= word < 0x1280


# -- flag liveness ------------------------------------------------------------------
_N, _Z, _C, _V = 4, 2, 1, 8  # SR bits
_ALL = _N | _Z | _C | _V
# divergences whose only effect is a wrong flag after a correct result: id set -> flags
_FLAG_ONLY = {frozenset({"D2"}): _V, frozenset({"D3"}): _V, frozenset({"D4"}): _C | _V}
_JUMP_READS = (_Z, _Z, _C, _C, _N, _N | _V, _N | _V, 0)
_SEQ, _JUMP, _STOP = "seq", "jump", "stop"


def _decode(word: int) -> tuple[int, int, int, str]:
    """(length in bytes, flags read, flags written, kind) of a core MSP430 instruction;
    kind `stop` for anything the liveness scan does not follow (calls, returns, writes
    to PC, MSP430X instructions). Writes to SR are the flag scan's business
    (`_writes_sr`)."""
    if word >= 0x4000:
        op, sreg, Ad, As, dreg = word >> 12, (word >> 8) & 0xF, (word >> 7) & 1, (word >> 4) & 3, word & 0xF
        length = 2 + (2 if (As == 1 and sreg != 3) or (As == 3 and sreg == 0) else 0) + 2 * Ad
        reads = _ALL if (As == 0 and sreg == 2) else (_C if op in (ADDC, SUBC, DADD) else 0)
        writes = {ADD: _ALL, ADDC: _ALL, SUB: _ALL, SUBC: _ALL, CMP: _ALL, BIT: _ALL, AND: _ALL,
                  XOR: _ALL, DADD: _N | _Z | _C}.get(op, 0)
        if Ad == 0 and dreg == 0 and op not in (CMP, BIT):
            return length, reads, writes, _STOP
        return length, reads, writes, _SEQ
    if word >= 0x2000:
        cond = (word >> 10) & 7
        return 2, _JUMP_READS[cond], 0, _JUMP
    if 0x1000 <= word < 0x1380:
        code, As, reg = (word >> 7) & 7, (word >> 4) & 3, word & 0xF
        length = 2 + (2 if (As == 1 and reg != 3) or (As == 3 and reg == 0) else 0)
        if code in (CALL, RETI) or (As == 0 and reg == 0 and code != PUSH):
            return length, _ALL, 0, _STOP
        reads = _C if code == RRC else (_ALL if code == PUSH and As == 0 and reg == 2 else 0)
        writes = _ALL if code in (RRC, RRA, SXT) else 0
        return length, reads, writes, _SEQ
    return 0, _ALL, 0, _STOP


def _flags_dead(code: bytes, base: int, address: int, flags: int) -> bool:
    """True if, on every path from `address`, `flags` are overwritten before being read."""

    def step(word: int, pending: int) -> int | None:
        if _writes_sr(word):
            return None  # SR as an operand: not followed
        _, reads, writes, _ = _decode(word)
        return None if reads & pending else pending & ~writes

    return _dead(code, base, address, flags, step)


def _writes_sr(word: int) -> bool:
    if word >= 0x4000:
        return (word >> 7) & 1 == 0 and word & 0xF == 2 and word >> 12 not in (CMP, BIT)
    return 0x1000 <= word < 0x1380 and (word >> 4) & 3 == 0 and word & 0xF == 2 and (word >> 7) & 7 != PUSH


def _upper_bits_dead(code: bytes, base: int, address: int, reg: int) -> bool:
    """True if, on every path from `address`, bits 19:16 of register `reg` are cleared by
    a (non-X) write to it before the register is used as an address (the only way core
    instructions observe those bits)."""

    def step(word: int, pending: int) -> int | None:
        if word >= 0x4000:
            op, sreg, Ad, As, dreg = word >> 12, (word >> 8) & 0xF, (word >> 7) & 1, (word >> 4) & 3, word & 0xF
            if (As and sreg == reg) or (Ad and dreg == reg):
                return None
            return 0 if (Ad == 0 and dreg == reg and op not in (CMP, BIT)) else pending
        if 0x1000 <= word < 0x1380:
            code, As, r = (word >> 7) & 7, (word >> 4) & 3, word & 0xF
            if r == reg and As:
                return None
            return 0 if (r == reg and code in (RRC, SWPB, RRA, SXT)) else pending
        return pending  # jumps

    return _dead(code, base, address, 1, step)


def _dead(code: bytes, base: int, address: int, state: int, step, budget: int = 64) -> bool:
    """Walk every path from `address` until `step(word, state)` returns 0 (dead on that
    path) or None (used: live). `call #target` is followed into the callee and back
    through its `ret` (so a helper such as __mspabi_mpyi between the instruction and the
    overwrite does not end the scan). Conservative: anything else not followed (leaving
    the segment, indirect calls, returns to an unknown caller, writes to PC, MSP430X
    code, a loop, more than `budget` instructions) counts as a use."""
    work = [(address, state, ())]
    seen = set()
    while work:
        address, pending, returns = work.pop()
        while pending:
            if (address, pending, returns) in seen:
                break  # explored from here already (paths merge, or a loop came back)
            seen.add((address, pending, returns))
            budget -= 1
            i = address - base
            if budget < 0 or i < 0 or i + 2 > len(code):
                return False
            word = code[i] | (code[i + 1] << 8)
            if word == _JMP_SELF:
                return False  # the end of the program: the final state shows the value
            if word == _CALL_IMMEDIATE and i + 4 <= len(code) and len(returns) < _MAX_CALL_DEPTH:
                returns = returns + (address + 4,)
                address = code[i + 2] | (code[i + 3] << 8)
                continue
            if word == _RET and returns:
                address, returns = returns[-1], returns[:-1]
                continue
            length, _, _, kind = _decode(word)
            if kind == _STOP:
                return False
            after = step(word, pending)
            if after is None:
                return False
            if kind == _JUMP:
                offset = word & 0x3FF
                target = address + 2 + 2 * (offset - 0x400 if offset & 0x200 else offset)
                if (word >> 10) & 7 == 7:  # jmp: only the target
                    address = target
                    continue
                work.append((target, after, returns))
            pending = after
            address += length
    return True


_JMP_SELF = 0x3FFF  # jmp $
_CALL_IMMEDIATE = 0x12B0  # call #target (the target is the next word)
_RET = 0x4130  # mov @sp+, pc
_MAX_CALL_DEPTH = 4


class _Exec:
    """One instruction's execution on a snapshot of the registers."""

    def __init__(self, cpu, pc: int):
        self.cpu = cpu
        self.r = [cpu.read_register(n) & MASK20 for n in _NAMES]
        self.start = pc & MASK20
        self.r[0] = (self.start + 2) & MASK20  # PC as seen while the instruction runs
        self.dirty = set()

    # -- memory ---------------------------------------------------------------------
    def read(self, addr: int, byte: bool) -> int:
        addr &= MASK20
        if byte:
            return self.cpu.read_memory(addr, 1)[0]
        d = self.cpu.read_memory(addr & ~1, 2)
        return d[0] | (d[1] << 8)

    def write(self, addr: int, value: int, byte: bool) -> None:
        addr &= MASK20
        if byte:
            self.cpu.write_memory(addr, bytes([value & 0xFF]))
        else:
            self.cpu.write_memory(addr & ~1, bytes([value & 0xFF, (value >> 8) & 0xFF]))

    def code(self, addr: int) -> int:
        """An instruction or extension word (an instruction fetch, not a data read)."""
        return self.read(addr, False)

    def fetch(self) -> int:
        """Next extension word; advances PC."""
        w = self.code(self.r[0])
        self.r[0] = (self.r[0] + 2) & MASK20
        return w

    # -- registers ------------------------------------------------------------------
    def setreg(self, n: int, value: int) -> None:
        if n == 3:
            return  # R3 is the constant generator: writes are discarded
        self.r[n] = value & MASK20
        self.dirty.add(n)

    def flags(self, n=None, z=None, c=None, v=None) -> None:
        sr = self.r[2]
        for bit, val in ((N_BIT, n), (Z_BIT, z), (C_BIT, c), (V_BIT, v)):
            if val is not None:
                sr = (sr | bit) if val else (sr & ~bit)
        self.setreg(2, sr)

    @staticmethod
    def indexed(base: int, x: int) -> int:
        """X(Rn) for an MSP430 instruction (SLAU367 4.4.2.1/4.4.2.2)."""
        if base & 0xF0000:
            return (base + (x - 0x10000 if x & 0x8000 else x)) & MASK20
        return (base + x) & 0xFFFF

    # -- operands -------------------------------------------------------------------
    def source(self, As: int, reg: int, byte: bool):
        """Evaluate a source (or format-II) operand. Returns (value, location) where
        location is ('r', n), ('m', addr) or None (constant). Autoincrement is applied
        immediately (the source completes before the destination is evaluated)."""
        mask = 0xFF if byte else 0xFFFF
        if reg == 3:  # constant generator R3
            return ({0: 0, 1: 1, 2: 2, 3: mask}[As]), None
        if reg == 2 and As >= 2:  # constant generator R2
            return (4 if As == 2 else 8), None
        if As == 0:
            return self.r[reg] & mask, ("r", reg)
        if As == 1:
            if reg == 2:  # absolute
                addr = self.fetch()
            elif reg == 0:  # symbolic: X(PC), relative to the extension word's address
                ext_addr = self.r[0]
                addr = self.indexed(ext_addr, self.fetch())
            else:
                addr = self.indexed(self.r[reg], self.fetch())
            return self.read(addr, byte), ("m", addr)
        addr = self.r[reg]
        if As == 3:
            if reg == 0:  # immediate @PC+
                value = self.fetch() & mask
                return value, ("m", addr)
            step = 2 if (not byte or reg == 1) else 1
            self.setreg(reg, addr + step)
        return self.read(addr, byte), ("m", addr)

    def destination(self, Ad: int, reg: int, byte: bool, need_value: bool):
        mask = 0xFF if byte else 0xFFFF
        if Ad == 0:
            value = (0 if reg == 3 else self.r[reg] & mask) if need_value else 0
            return value, ("r", reg)
        if reg == 2:
            addr = self.fetch()
        elif reg == 0:  # symbolic: X(PC)
            ext_addr = self.r[0]
            addr = self.indexed(ext_addr, self.fetch())
        elif reg == 3:
            raise NotImplementedError("X(R3) destination")
        else:
            addr = self.indexed(self.r[reg], self.fetch())
        return (self.read(addr, byte) if need_value else 0), ("m", addr)

    def store(self, loc, value: int, byte: bool, sxt_reg: bool = False) -> None:
        if loc is None:
            return
        kind, where = loc
        if kind == "m":
            self.write(where, value, byte)
        elif sxt_reg:
            self.setreg(where, value)
        else:
            self.setreg(where, value & (0xFF if byte else 0xFFFF))

    # -- instructions ---------------------------------------------------------------
    def run(self) -> None:
        word = self.code(self.start)
        if 0x1800 <= word < 0x2000:
            self.extended(word)
        elif word >= 0x4000:
            self.format1(word)
        elif word >= 0x2000:
            self.jump(word)
        elif 0x1000 <= word < 0x1300 or word == 0x1300:
            self.format2(word)
        elif 0x1300 < word < 0x1400:
            self.calla(word)
        elif 0x1400 <= word < 0x1800:
            self.pushm_popm(word)
        elif word < 0x1000:
            self.address(word)
        else:
            raise NotImplementedError(f"not an MSP430X instruction: {word:#06x}")
        self.commit()

    def commit(self) -> None:
        cpu = self.cpu
        for n in sorted(self.dirty - {0}):
            cpu.write_register(_NAMES[n], self.r[n])
        cpu.write_register("pc", self.r[0])

    def format1(self, word: int) -> None:
        op = word >> 12
        sreg = (word >> 8) & 0xF
        Ad = (word >> 7) & 1
        byte = bool(word & 0x40)
        As = (word >> 4) & 3
        dreg = word & 0xF
        bits = 8 if byte else 16
        mask = (1 << bits) - 1
        msb = 1 << (bits - 1)

        src, _ = self.source(As, sreg, byte)
        dst, loc = self.destination(Ad, dreg, byte, need_value=op != MOV)
        sr = self.r[2]
        carry = sr & C_BIT
        res = None
        if op == MOV:
            res = src
        elif op in (ADD, ADDC, SUB, SUBC, CMP):
            if op in (SUB, SUBC, CMP):
                s = ~src & mask
                cin = 1 if op in (SUB, CMP) else carry
            else:
                s = src
                cin = carry if op == ADDC else 0
            r = self.add(dst, s, cin, bits)
            if op != CMP:
                res = r
        elif op == DADD:
            res = self.decimal_add(dst, src, carry, bits)
        elif op in (BIT, AND):
            r = src & dst
            self.flags(n=r & msb, z=r == 0, c=r != 0, v=False)
            if op == AND:
                res = r
        elif op == BIC:
            res = dst & ~src & mask
        elif op == BIS:
            res = dst | src
        elif op == XOR:
            r = src ^ dst
            self.flags(n=r & msb, z=r == 0, c=r != 0, v=(src & dst & msb))
            res = r
        if res is not None:
            self.store(loc, res, byte)

    def format2(self, word: int) -> None:
        code = (word >> 7) & 7
        byte = bool(word & 0x40)
        As = (word >> 4) & 3
        reg = word & 0xF
        if code == RETI:
            if word != 0x1300:
                raise NotImplementedError(f"not an MSP430 core instruction: {word:#06x}")
            sp = self.r[1]
            srword = self.read(sp, False)
            pcword = self.read(sp + 2, False)
            self.setreg(2, srword & 0x0FFF)
            self.setreg(1, sp + 4)
            self.r[0] = (pcword | ((srword & 0xF000) << 4)) & MASK20
            return
        if byte and code in (SWPB, SXT, CALL):
            raise NotImplementedError(f"invalid byte form: {word:#06x}")
        bits = 8 if byte else 16
        msb = 1 << (bits - 1)

        if code == PUSH:
            if As == 0:  # register: read after the decrement (SLAU367 fig. 4-8, PUSH SP)
                sp = (self.r[1] - 2) & MASK20
                self.setreg(1, sp)
                value, _ = self.source(0, reg, byte)
            else:
                value, _ = self.source(As, reg, byte)
                sp = (self.r[1] - 2) & MASK20
                self.setreg(1, sp)
            self.write(sp, value, byte)
            return
        if code == CALL:
            target, _ = self.source(As, reg, False)  # dst -> tmp first (SLAU367 4.6.2.10)
            sp = (self.r[1] - 2) & MASK20
            self.setreg(1, sp)
            self.write(sp, self.r[0] & 0xFFFF, False)
            self.r[0] = target & 0xFFFF
            return

        value, loc = self.source(As, reg, byte)
        if code == RRC:
            self.store(loc, self.rotate_right(value, self.r[2] & C_BIT, bits), byte)
        elif code == RRA:
            res = (value >> 1) | (value & msb)
            self.flags(n=res & msb, z=res == 0, c=value & 1, v=False)
            self.store(loc, res, byte)
        elif code == SWPB:
            self.store(loc, ((value & 0xFF) << 8) | (value >> 8), False)
        elif code == SXT:
            res = (value & 0xFF) | (0xFF00 if value & 0x80 else 0)
            self.flags(n=res & 0x8000, z=res == 0, c=res != 0, v=False)
            if loc is not None and loc[0] == "r":
                self.store(loc, res | (0xF0000 if value & 0x80 else 0), False, sxt_reg=True)
            else:
                self.store(loc, res, False)

    # -- MSP430X (SLAU367 4.5) --------------------------------------------------------
    def read20(self, addr: int) -> int:
        """A 20-bit operand in memory: two words, bits 19:16 in bits 3:0 of the upper one
        (SLAU367 4.5.1, fig. "20-bit address word in memory"); one access of 4 bytes."""
        d = self.cpu.read_memory(addr & MASK20 & ~1, 4)
        return (d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) & MASK20

    def write20(self, addr: int, value: int) -> None:
        """Store 20 bits in two words; bits 31:20 are written as 0."""
        value &= MASK20
        self.cpu.write_memory(addr & MASK20 & ~1, value.to_bytes(4, "little"))

    def load(self, addr: int, bits: int) -> int:
        return self.read20(addr) if bits == 20 else self.read(addr, bits == 8)

    def save(self, addr: int, value: int, bits: int) -> None:
        if bits == 20:
            self.write20(addr, value)
        else:
            self.write(addr, value, bits == 8)

    def put(self, loc, value: int, bits: int) -> None:
        """Write a result: to memory in the operand's width, or to a register, where
        .W clears bits 19:16 and .B bits 19:8 (SLAU367 4.5.2.3)."""
        if loc is None:
            return
        kind, where = loc
        if kind == "m":
            self.save(where, value, bits)
        else:
            self.setreg(where, value & ((1 << bits) - 1))

    @staticmethod
    def _sext16(x: int) -> int:
        return x - 0x10000 if x & 0x8000 else x

    def xsource(self, As: int, reg: int, bits: int, hi: int):
        """A source operand of an instruction with a non-register-mode extension word
        (SLAU367 4.5.2.2): indexes, absolute addresses and immediates are 20 bits (`hi` =
        bits 19:16 from the extension word), X(Rn) and ADDR are computed modulo 1 MB
        without the 64 KB wrap of MSP430 instructions (4.4.2); @Rn+ steps by 1 (.B; SP:
        2), 2 (.W) or 4 (.A). Returns (value, location) as `source`."""
        mask = (1 << bits) - 1
        if reg == 3:
            return {0: 0, 1: 1, 2: 2, 3: mask}[As], None
        if reg == 2 and As >= 2:
            return (4 if As == 2 else 8), None
        if As == 0:
            return self.r[reg] & mask, ("r", reg)
        if As == 1:
            if reg == 2:  # &abs20
                addr = (hi << 16) | self.fetch()
            else:  # X(Rn); ADDR = X(PC), PC = the address of the index word
                base = self.r[reg]
                addr = (base + ((hi << 16) | self.fetch())) & MASK20
            return self.load(addr, bits), ("m", addr)
        addr = self.r[reg]
        if As == 3:
            if reg == 0:  # #imm20 (.W/.B: the low 16/8 bits)
                return ((hi << 16) | self.fetch()) & mask, None
            step = {8: 2 if reg == 1 else 1, 16: 2, 20: 4}[bits]
            self.setreg(reg, addr + step)
        return self.load(addr, bits), ("m", addr)

    def xdestination(self, reg: int, bits: int, hi: int, need_value: bool):
        """An indexed, symbolic or absolute destination with 20-bit address (4.5.2.2)."""
        if reg == 2:
            addr = (hi << 16) | self.fetch()
        elif reg == 3:
            raise NotImplementedError("X(R3) destination")
        else:
            base = self.r[reg]
            addr = (base + ((hi << 16) | self.fetch())) & MASK20
        return (self.load(addr, bits) if need_value else 0), ("m", addr)

    @staticmethod
    def _width(al: int, bw: int) -> int:
        bits = {(1, 0): 16, (1, 1): 8, (0, 1): 20}.get((al, bw))
        if bits is None:
            raise NotImplementedError("reserved MSP430X operand size (A/L = 0, B/W = 0)")
        return bits

    def extended(self, ext: int) -> None:
        """An instruction with an extension word (SLAU367 4.5.2.1-4.5.2.4, 4.6.3).

        Register mode (format I: As = Ad = 0; format II: As = 0): the register-mode
        extension word gives a repetition count (bits 3:0 + 1, or the 4 LSBs of Rn + 1
        with # = 1) and ZC (carry in taken as 0 on every repetition: RRUX, ...).
        Otherwise bits 10:7 and 3:0 are bits 19:16 of the source and destination
        index, address or immediate. PUSHX takes its operand's bits from the source
        field, the other format II instructions (whose operand TI calls dst) from the
        destination field."""
        word = self.fetch()
        al = (ext >> 6) & 1
        bw = (word >> 6) & 1
        if word >= 0x4000:
            op, sreg, Ad, As, dreg = word >> 12, (word >> 8) & 0xF, (word >> 7) & 1, (word >> 4) & 3, word & 0xF
            bits = self._width(al, bw)
            if As == 0 and Ad == 0:
                for cin0 in self._repetitions(ext):
                    src = 0 if sreg == 3 else self.r[sreg] & ((1 << bits) - 1)
                    dst = 0 if dreg == 3 else self.r[dreg] & ((1 << bits) - 1)
                    res = self._alu(op, src, dst, bits, cin0)
                    if res is not None:
                        self.put(("r", dreg), res, bits)
                return
            src, _ = self.xsource(As, sreg, bits, (ext >> 7) & 0xF)
            if Ad == 0:
                loc = ("r", dreg)
                dst = 0 if dreg == 3 else self.r[dreg] & ((1 << bits) - 1)
            else:
                dst, loc = self.xdestination(dreg, bits, ext & 0xF, need_value=op != MOV)
            res = self._alu(op, src, dst, bits, None)
            if res is not None:
                self.put(loc, res, bits)
            return
        if not 0x1000 <= word < 0x1280:  # CALL and RETI have no extended form
            raise NotImplementedError(f"not an MSP430X extended instruction: {ext:#06x} {word:#06x}")
        code, As, reg = (word >> 7) & 7, (word >> 4) & 3, word & 0xF
        if code in (SWPB, SXT):  # SWPBX/SXTX: A/L = 0 with B/W = 0 is .A (4.5.2.2 note)
            if bw:
                raise NotImplementedError(f"reserved SWPBX/SXTX size: {ext:#06x} {word:#06x}")
            bits = 16 if al else 20
        else:
            bits = self._width(al, bw)
        mask = (1 << bits) - 1
        msb = 1 << (bits - 1)
        if As == 0:
            reps = self._repetitions(ext)
        else:
            reps = [None]
        hi = (ext >> 7) & 0xF if code == PUSH else ext & 0xF
        for cin0 in reps:
            if As == 0:
                value, loc = (0 if reg == 3 else self.r[reg] & mask), ("r", reg)
            else:
                value, loc = self.xsource(As, reg, bits, hi)
            if code == PUSH:  # PUSHX: source first, then SP - 2 (.B/.W) or 4 (.A)
                sp = (self.r[1] - (4 if bits == 20 else 2)) & MASK20
                self.setreg(1, sp)
                self.save(sp, value, bits)
            elif code == RRC:
                cin = self.r[2] & C_BIT if cin0 is None else cin0
                self.put(loc, self.rotate_right(value, cin, bits), bits)
            elif code == RRA:
                res = (value >> 1) | (value & msb)
                self.flags(n=res & msb, z=res == 0, c=value & 1, v=False)
                self.put(loc, res, bits)
            elif code == SWPB:  # bytes of the low word swapped; .A keeps bits 19:16
                res = (value & 0xF0000) | ((value & 0xFF) << 8) | ((value >> 8) & 0xFF)
                self.put(loc, res, bits)
            elif code == SXT:  # bit 7 into bits 19:8 (.A) or 15:8 (.W)
                res = (value & 0xFF) | ((mask & ~0xFF) if value & 0x80 else 0)
                self.flags(n=res & msb, z=res == 0, c=res != 0, v=False)
                self.put(loc, res, bits)
            else:
                raise NotImplementedError(f"not an MSP430X extended instruction: {ext:#06x} {word:#06x}")

    def _repetitions(self, ext: int) -> list:
        """Register-mode extension word (4.5.2.1): one entry per repetition, each the
        carry in forced by ZC (0) or None (use C)."""
        n = ((self.r[ext & 0xF] if ext & 0x80 else ext) & 0xF) + 1
        return [0 if ext & 0x100 else None] * n

    def _alu(self, op: int, src: int, dst: int, bits: int, cin0) -> int | None:
        """Format I operation in `bits` (8, 16, 20) bits with the flags of 4.6.3 (V of
        DADDX undefined: unchanged). `cin0`: forced carry in (ZC) or None. Returns the
        result to store, None for CMP/BIT."""
        mask = (1 << bits) - 1
        msb = 1 << (bits - 1)
        carry = (self.r[2] & C_BIT) if cin0 is None else cin0
        if op == MOV:
            return src
        if op in (ADD, ADDC, SUB, SUBC, CMP):
            if op in (SUB, SUBC, CMP):
                s, cin = ~src & mask, (1 if op in (SUB, CMP) else carry)
            else:
                s, cin = src, (carry if op == ADDC else 0)
            r = self.add(dst, s, cin, bits)
            return None if op == CMP else r
        if op == DADD:
            return self.decimal_add(dst, src, carry, bits)
        if op in (BIT, AND):
            r = src & dst
            self.flags(n=r & msb, z=r == 0, c=r != 0, v=False)
            return r if op == AND else None
        if op == BIC:
            return dst & ~src & mask
        if op == BIS:
            return dst | src
        r = src ^ dst  # XOR
        self.flags(n=r & msb, z=r == 0, c=r != 0, v=(src & dst & msb))
        return r

    def address(self, word: int) -> None:
        """MSP430X address instructions, 0000h-0FFFh (SLAU367 4.5.3, 4.6.4: MOVA, CMPA,
        ADDA, SUBA; BRA = MOVA dst,PC; RETA = MOVA @SP+,PC) and RRCM/RRAM/RLAM/RRUM (4.6.3,
        fig. 4-33). 20-bit operands; memory operands are 20-bit words (`read20`);
        z16 indexes are sign-extended and added modulo 1 MB."""
        src, op, dst = (word >> 8) & 0xF, (word >> 4) & 0xF, word & 0xF
        if op in (4, 5):
            self.rotate_multiple(word)
            return
        if op == 0:  # MOVA @Rsrc,Rdst
            self.setreg(dst, self.read20(self.r[src]))
        elif op == 1:  # MOVA @Rsrc+,Rdst: the increment completes before the write
            a = self.r[src]
            self.setreg(src, a + 4)
            self.setreg(dst, self.read20(a))
        elif op == 2:  # MOVA &abs20,Rdst
            self.setreg(dst, self.read20((src << 16) | self.fetch()))
        elif op == 3:  # MOVA z16(Rsrc),Rdst (z16(PC): PC = the address of the index word)
            base = self.r[src]
            self.setreg(dst, self.read20(base + self._sext16(self.fetch())))
        elif op == 6:  # MOVA Rsrc,&abs20
            self.write20((dst << 16) | self.fetch(), self.r[src])
        elif op == 7:  # MOVA Rsrc,z16(Rdst)
            base = self.r[dst]
            self.write20(base + self._sext16(self.fetch()), self.r[src])
        else:
            value = ((src << 16) | self.fetch()) if op < 12 else self.r[src]
            kind = op & 3  # MOVA, CMPA, ADDA, SUBA (#imm20 for 8-11, Rsrc for 12-15)
            if kind == 0:
                self.setreg(dst, value)
            elif kind == 2:
                self.setreg(dst, self.add(self.r[dst], value, 0, 20))
            else:
                r = self.add(self.r[dst], ~value & MASK20, 1, 20)
                if kind == 3:
                    self.setreg(dst, r)

    def rotate_multiple(self, word: int) -> None:
        """RRCM/RRAM/RLAM/RRUM #n,Rdst (n = 1..4), .A (bit 4 = 0) or .W (clears bits
        19:16). C = the last bit shifted out; V reset (RLAM: undefined, here: reset)."""
        n = ((word >> 10) & 3) + 1
        kind = (word >> 8) & 3
        bits = 16 if word & 0x10 else 20
        reg = word & 0xF
        mask, msb = (1 << bits) - 1, 1 << (bits - 1)
        v = self.r[reg] & mask
        c = self.r[2] & C_BIT
        for _ in range(n):
            if kind == 2:  # RLAM
                c, v = (v >> (bits - 1)) & 1, (v << 1) & mask
            else:
                out = v & 1
                top = (c << (bits - 1)) if kind == 0 else (v & msb) if kind == 1 else 0
                c, v = out, (v >> 1) | top
        self.flags(n=v & msb, z=v == 0, c=c, v=False)
        self.setreg(reg, v)

    def calla(self, word: int) -> None:
        """CALLA (SLAU367 4.6.4): dst -> tmp; PC.19:16 and PC.15:0 pushed (SP - 4, the
        20-bit return address as a 20-bit memory word); tmp -> PC."""
        mode, reg = (word >> 4) & 0xF, word & 0xF
        if mode == 4:  # Rdst
            tmp = self.r[reg]
        elif mode == 5:  # z16(Rdst)
            base = self.r[reg]
            tmp = self.read20(base + self._sext16(self.fetch()))
        elif mode == 6:  # @Rdst
            tmp = self.read20(self.r[reg])
        elif mode == 7:  # @Rdst+
            a = self.r[reg]
            self.setreg(reg, a + 4)
            tmp = self.read20(a)
        elif mode == 8:  # &abs20
            tmp = self.read20((reg << 16) | self.fetch())
        elif mode == 9:  # EDE: PC + x20, PC = the address of the index word
            base = self.r[0]
            tmp = self.read20(base + ((reg << 16) | self.fetch()))
        elif mode == 11:  # #imm20
            tmp = (reg << 16) | self.fetch()
        else:
            raise NotImplementedError(f"not an MSP430X instruction: {word:#06x}")
        sp = (self.r[1] - 4) & MASK20
        self.write20(sp, self.r[0])
        self.setreg(1, sp)
        self.r[0] = tmp & MASK20

    def pushm_popm(self, word: int) -> None:
        """PUSHM.A/.W #n,Rdst: Rdst, Rdst-1, ... pushed (SP - 4 / - 2 each); POPM.A/.W
        #n,Rdst (encoded with the lowest register Rdst - n + 1, fig. 4-32): popped from the
        lowest register up; .W pops clear bits 19:16 (SLAU367 4.6.3). Flags unchanged."""
        n = ((word >> 4) & 0xF) + 1
        reg = word & 0xF
        a = not (word >> 8) & 1  # .A
        step = 4 if a else 2
        sp = self.r[1]
        if word < 0x1600:
            for i in range(n):
                sp = (sp - step) & MASK20
                self.save(sp, self.r[(reg - i) & 0xF], 20 if a else 16)
        else:
            for i in range(n):
                value = self.load(sp, 20 if a else 16)
                sp = (sp + step) & MASK20
                self.setreg((reg + i) & 0xF, value)
        self.setreg(1, sp)

    # -- arithmetic shared by the core and the extended (X1) forms ----------------------
    def add(self, dst: int, s: int, cin: int, bits: int) -> int:
        """dst + s + cin in `bits` bits (s already complemented for subtraction); sets
        N, Z, C (carry out) and V (signed overflow)."""
        msb = 1 << (bits - 1)
        total = dst + s + cin
        r = total & ((1 << bits) - 1)
        self.flags(n=r & msb, z=r == 0, c=total >> bits, v=~(dst ^ s) & (dst ^ r) & msb)
        return r

    def decimal_add(self, dst: int, src: int, cin: int, bits: int) -> int:
        """BCD dst + src + cin digit by digit; sets N, Z, C (V is undefined: unchanged)."""
        r, c = 0, cin
        for i in range(0, bits, 4):
            t = ((dst >> i) & 0xF) + ((src >> i) & 0xF) + c
            if t > 9:
                t += 6
            r |= (t & 0xF) << i
            c = 1 if t > 0xF else 0
        self.flags(n=r >> (bits - 1) & 1, z=r == 0, c=c)
        return r

    def rotate_right(self, value: int, cin: int, bits: int) -> int:
        """RRC: carry into the MSB, bit 0 into C; V reset."""
        r = (value >> 1) | ((1 << (bits - 1)) if cin else 0)
        self.flags(n=r >> (bits - 1) & 1, z=r == 0, c=value & 1, v=False)
        return r

    def jump(self, word: int) -> None:
        cond = (word >> 10) & 7
        off = word & 0x3FF
        if off & 0x200:
            off -= 0x400
        sr = self.r[2]
        n = bool(sr & N_BIT)
        v = bool(sr & V_BIT)
        taken = (
            not sr & Z_BIT, bool(sr & Z_BIT), not sr & C_BIT, bool(sr & C_BIT),
            n, n == v, n != v, True,
        )[cond]
        if taken:
            self.r[0] = (self.start + 2 + 2 * off) & MASK20


def execute(cpu, pc: int) -> None:
    """Execute the one instruction at pc as the real CPU does: update registers (incl.
    PC and SR flags) and memory. `cpu` has read_register(name)->int,
    write_register(name, value), read_memory(address, size)->bytes,
    write_memory(address, data); register names are lowercase 'pc','sp','sr','r3'..'r15'.

    Memory traffic: the instruction and extension words are fetched with read_memory(a, 2);
    each operand read is exactly one read_memory(a, 1 or 2) and each result write one
    write_memory(a, 1 or 2 bytes), in program order (read-modify-write reads first). An
    operand may be a peripheral register, so the caller's read_memory/write_memory must
    route MMIO addresses to the bus. Registers are written back only after the whole
    instruction succeeded (an exception from `cpu` leaves the registers untouched).
    20-bit (.A) memory operands are one access of 4 bytes (bits 31:20 ignored on read,
    written as 0). Raises NotImplementedError for reserved encodings."""
    _Exec(cpu, pc).run()


class _Probe(_Exec):
    """A dry run of one instruction that records its data accesses and changes nothing."""

    def __init__(self, cpu, pc: int):
        super().__init__(cpu, pc)
        self.accesses: list[tuple[str, int, int, int | None]] = []

    def code(self, addr: int) -> int:
        d = self.cpu.read_memory(addr & MASK20 & ~1, 2)
        return d[0] | (d[1] << 8)

    def read(self, addr: int, byte: bool) -> int:
        addr = addr & MASK20 if byte else addr & MASK20 & ~1
        self.accesses.append(("r", addr, 1 if byte else 2, None))
        return super().read(addr, byte)

    def write(self, addr: int, value: int, byte: bool) -> None:
        addr = addr & MASK20 if byte else addr & MASK20 & ~1
        self.accesses.append(("w", addr, 1 if byte else 2, value & (0xFF if byte else 0xFFFF)))

    def read20(self, addr: int) -> int:
        self.accesses.append(("r", addr & MASK20 & ~1, 4, None))
        return super().read20(addr)

    def write20(self, addr: int, value: int) -> None:
        self.accesses.append(("w", addr & MASK20 & ~1, 4, value & MASK20))

    def commit(self) -> None:
        pass


def data_accesses(cpu, pc: int) -> list[tuple[str, int, int, int | None]]:
    """The data accesses the instruction at pc would make, in program order, without
    executing it: ("r", address, size, None) and ("w", address, size, value written).
    Instruction fetches (opcode, extension and immediate words) are not data accesses.
    `cpu` as for `execute`, but only read: its read_memory must have no side effects
    (the caller gives peripheral registers as zeros: operand values never change the
    addresses an MSP430 instruction accesses, only written values; the repetition count
    from Rn of an MSP430X register-mode instruction touches no memory). A 20-bit operand
    is one access of size 4. Raises NotImplementedError for reserved encodings."""
    probe = _Probe(cpu, pc)
    probe.run()
    return probe.accesses


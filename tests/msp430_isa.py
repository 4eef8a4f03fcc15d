"""A small encoder for the MSP430 (non-X) instruction set, used by the differential tests.

It produces machine code directly; it does not depend on an assembler.

Covered: the 27 core instructions

* format I (two operands): MOV ADD ADDC SUBC SUB CMP DADD BIT BIC BIS XOR AND, ``.W`` and ``.B``
* format II (one operand): RRC SWPB RRA SXT PUSH CALL RETI (``.B`` where the ISA has it:
  RRC RRA PUSH)
* jumps: JNE JEQ JNC JC JN JGE JL JMP

with every addressing mode:

===========  =================  ==========================================
operand      source (As)        destination (Ad)
===========  =================  ==========================================
``Reg(n)``   Rn        (As=0)   Rn        (Ad=0)
``Idx(n,x)`` X(Rn)     (As=1)   X(Rn)     (Ad=1)
``Sym(a)``   ADDR      (As=1, R0: PC-relative, X = a - address of the extension word)
``Abs(a)``   &ADDR     (As=1, R2)   &ADDR (Ad=1, R2)
``Ind(n)``   @Rn       (As=2)   -
``Inc(n)``   @Rn+      (As=3)   -
``Imm(v)``   #v: constant generator R2/R3 for 0, 1, 2, 4, 8, -1 (As/reg pairs
             R3/0, R3/1, R3/2, R2/2, R2/3, R3/3), otherwise @PC+ with an extension word
             (``Imm(v, long=True)`` forces the extension-word form even for those values)
===========  =================  ==========================================

Not covered: the MSP430X extended instructions (extension words 0x18xx-0x1Fxx, the
address instructions MOVA/ADDA/CMPA/SUBA/CALLA/RRxM/PUSHM/POPM in 0x0000-0x17FF).
mspdebug's simulator (the reference of the differential check) implements none of them: it
reports "unknown single-operand opcode" for 0x0xxx/0x14xx-0x1Fxx and even decodes CALLA
(0x134x) as RETI, and its address space and registers are 16 bits wide.

Everything is little-endian 16-bit words; ``Asm`` assembles a sequence with labels.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence, Union

PC, SP, SR, CG = 0, 1, 2, 3

FMT1 = {
    "mov": 0x4, "add": 0x5, "addc": 0x6, "subc": 0x7, "sub": 0x8, "cmp": 0x9,
    "dadd": 0xA, "bit": 0xB, "bic": 0xC, "bis": 0xD, "xor": 0xE, "and": 0xF,
}
FMT2 = {"rrc": 0, "swpb": 1, "rra": 2, "sxt": 3, "push": 4, "call": 5, "reti": 6}
FMT2_BYTE_OK = {"rrc", "rra", "push"}
JUMPS = {"jne": 0, "jeq": 1, "jnc": 2, "jc": 3, "jn": 4, "jge": 5, "jl": 6, "jmp": 7}
JUMP_ALIASES = {"jnz": "jne", "jz": "jeq", "jlo": "jnc", "jhs": "jc"}


class Label:
    """A code address resolved by ``Asm`` (or given directly as ``value``)."""

    def __init__(self, name: str = "", value: int | None = None):
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"Label({self.name!r}, {self.value if self.value is None else hex(self.value)})"


Addr = Union[int, Label]


def _addr(a: Addr) -> int:
    if isinstance(a, Label):
        if a.value is None:
            raise ValueError(f"unresolved label {a.name}")
        return a.value
    return a


@dataclass(frozen=True)
class Reg:
    n: int

    def text(self) -> str:
        return _rname(self.n)


@dataclass(frozen=True)
class Idx:
    n: int
    x: int

    def text(self) -> str:
        return f"{_s16(self.x)}({_rname(self.n)})"


@dataclass(frozen=True)
class Sym:
    addr: Addr

    def text(self) -> str:
        a = self.addr
        return a.name if isinstance(a, Label) and a.value is None else hex(_addr(a))


@dataclass(frozen=True)
class Abs:
    addr: Addr

    def text(self) -> str:
        a = self.addr
        return "&" + (a.name if isinstance(a, Label) and a.value is None else hex(_addr(a)))


@dataclass(frozen=True)
class Ind:
    n: int

    def text(self) -> str:
        return f"@{_rname(self.n)}"


@dataclass(frozen=True)
class Inc:
    n: int

    def text(self) -> str:
        return f"@{_rname(self.n)}+"


@dataclass(frozen=True)
class Imm:
    value: Addr
    long: bool = False

    def text(self) -> str:
        v = self.value
        if isinstance(v, Label) and v.value is None:
            return "#" + v.name
        return "#" + hex(_addr(v))


Operand = Union[Reg, Idx, Sym, Abs, Ind, Inc, Imm]


def _rname(n: int) -> str:
    return {0: "pc", 1: "sp", 2: "sr"}.get(n, f"r{n}")


def _s16(x: int) -> str:
    x &= 0xFFFF
    return str(x - 0x10000 if x & 0x8000 else x)


def _cg(value: int, byte: bool):
    """(As, reg) of the constant generator for value, or None."""
    mask = 0xFF if byte else 0xFFFF
    v = value & mask
    table = {0: (0, CG), 1: (1, CG), 2: (2, CG), 4: (2, SR), 8: (3, SR), mask: (3, CG)}
    return table.get(v)


def src_fields(op: Operand, byte: bool, ext_addr: int):
    """(As, reg, [extension word]) for a source operand whose extension word (if any)
    sits at ext_addr."""
    if isinstance(op, Reg):
        return 0, op.n, []
    if isinstance(op, Idx):
        if op.n in (PC, SR, CG):
            raise ValueError("X(Rn) with R0/R2/R3 is symbolic/absolute/constant: use Sym/Abs/Imm")
        return 1, op.n, [op.x & 0xFFFF]
    if isinstance(op, Sym):
        return 1, PC, [(_addr(op.addr) - ext_addr) & 0xFFFF]
    if isinstance(op, Abs):
        return 1, SR, [_addr(op.addr) & 0xFFFF]
    if isinstance(op, Ind):
        if op.n in (SR, CG):
            raise ValueError("@R2/@R3 are constants: use Imm")
        return 2, op.n, []
    if isinstance(op, Inc):
        if op.n in (PC, SR, CG):
            raise ValueError("@PC+/@R2+/@R3+ are immediates/constants: use Imm")
        return 3, op.n, []
    if isinstance(op, Imm):
        if not op.long and not isinstance(op.value, Label):
            cg = _cg(op.value, byte)
            if cg is not None:
                return cg[0], cg[1], []
        return 3, PC, [_addr(op.value) & 0xFFFF]
    raise TypeError(op)


def dst_fields(op: Operand, ext_addr: int):
    """(Ad, reg, [extension word]) for a format-I destination."""
    if isinstance(op, Reg):
        return 0, op.n, []
    if isinstance(op, Idx):
        if op.n in (PC, SR, CG):
            raise ValueError("X(Rn) with R0/R2/R3 as destination: use Sym/Abs")
        return 1, op.n, [op.x & 0xFFFF]
    if isinstance(op, Sym):
        return 1, PC, [(_addr(op.addr) - ext_addr) & 0xFFFF]
    if isinstance(op, Abs):
        return 1, SR, [_addr(op.addr) & 0xFFFF]
    raise ValueError(f"{type(op).__name__} is not a destination mode")


def fmt1(mn: str, src: Operand, dst: Operand, byte: bool = False, at: int = 0) -> list[int]:
    """Encode a two-operand instruction located at address `at`."""
    opc = FMT1[mn]
    As, sreg, sext = src_fields(src, byte, at + 2)
    Ad, dreg, dext = dst_fields(dst, at + 2 + 2 * len(sext))
    word = (opc << 12) | (sreg << 8) | (Ad << 7) | (int(byte) << 6) | (As << 4) | dreg
    return [word] + sext + dext


def fmt2(mn: str, op: Operand | None = None, byte: bool = False, at: int = 0) -> list[int]:
    """Encode a one-operand instruction (RETI takes no operand)."""
    code = FMT2[mn]
    if byte and mn not in FMT2_BYTE_OK:
        raise ValueError(f"{mn}.b does not exist")
    if mn == "reti":
        return [0x1300]
    As, reg, ext = src_fields(op, byte, at + 2)
    return [0x1000 | (code << 7) | (int(byte) << 6) | (As << 4) | reg] + ext


def jump(mn: str, target: int, at: int = 0) -> list[int]:
    """Encode a conditional/unconditional jump at `at` to `target`."""
    mn = JUMP_ALIASES.get(mn, mn)
    delta = target - (at + 2)
    if delta & 1:
        raise ValueError("odd jump offset")
    off = delta // 2
    if not -512 <= off <= 511:
        raise ValueError("jump out of range")
    return [0x2000 | (JUMPS[mn] << 10) | (off & 0x3FF)]


def words_to_bytes(words: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(words)}H", *words)


def operand_size(op: Operand | None, byte: bool = False) -> int:
    """Number of extension words of a source operand."""
    if op is None:
        return 0
    if isinstance(op, (Idx, Sym, Abs)):
        return 1
    if isinstance(op, Imm):
        if isinstance(op.value, Label) or op.long:
            return 1
        return 0 if _cg(op.value, byte) is not None else 1
    return 0


# --- emulated instructions (TI's names for common core-instruction forms) -------------
def nop():
    return ("mov", Imm(0), Reg(CG), False)


def ret():
    return ("mov", Inc(SP), Reg(PC), False)


def pop(dst: Operand, byte=False):
    return ("mov", Inc(SP), dst, byte)


def br(src: Operand):
    return ("mov", src, Reg(PC), False)


@dataclass
class Item:
    kind: str  # "fmt1" | "fmt2" | "jump" | "label" | "word"
    mn: str = ""
    src: Operand | None = None
    dst: Operand | None = None
    byte: bool = False
    target: Addr | None = None
    label: Label | None = None
    value: Addr = 0
    addr: int = 0

    def size(self) -> int:
        if self.kind == "label":
            return 0
        if self.kind in ("jump", "word"):
            return 2
        if self.kind == "fmt2":
            return 2 + 2 * operand_size(self.src, self.byte)
        n = 2 + 2 * operand_size(self.src, self.byte)
        return n + (2 if isinstance(self.dst, (Idx, Sym, Abs)) else 0)

    def text(self) -> str:
        suffix = ".b" if self.byte else ""
        if self.kind == "fmt1":
            return f"{self.mn}{suffix} {self.src.text()}, {self.dst.text()}"
        if self.kind == "fmt2":
            return self.mn if self.mn == "reti" else f"{self.mn}{suffix} {self.src.text()}"
        if self.kind == "jump":
            t = self.target
            return f"{self.mn} {t.name if isinstance(t, Label) else hex(t)}"
        if self.kind == "word":
            return f".word {self.value}"
        return f"{self.label.name}:"


class Asm:
    """Sequential assembler with forward/backward labels.

    Sizes never depend on label values (label immediates always use an extension word),
    so two passes suffice."""

    def __init__(self, base: int):
        self.base = base
        self.items: list[Item] = []

    def label(self, name: str = "") -> Label:
        return Label(name or f"L{len(self.items)}")

    def place(self, label: Label) -> Label:
        self.items.append(Item("label", label=label))
        return label

    def op1(self, mn, src, dst, byte=False):
        self.items.append(Item("fmt1", mn=mn, src=src, dst=dst, byte=byte))

    def op2(self, mn, src=None, byte=False):
        self.items.append(Item("fmt2", mn=mn, src=src, byte=byte))

    def emu(self, t):
        mn, src, dst, byte = t
        self.op1(mn, src, dst, byte)

    def jmp(self, mn, target: Addr):
        self.items.append(Item("jump", mn=mn, target=target))

    def word(self, value: Addr):
        self.items.append(Item("word", value=value))

    def assemble(self) -> tuple[bytes, list[Item]]:
        addr = self.base
        for it in self.items:
            it.addr = addr
            if it.kind == "label":
                it.label.value = addr
            addr += it.size()
        words: list[int] = []
        for it in self.items:
            if it.kind == "fmt1":
                w = fmt1(it.mn, it.src, it.dst, it.byte, it.addr)
            elif it.kind == "fmt2":
                w = fmt2(it.mn, it.src, it.byte, it.addr)
            elif it.kind == "jump":
                w = jump(it.mn, _addr(it.target), it.addr)
            elif it.kind == "word":
                w = [_addr(it.value) & 0xFFFF]
            else:
                w = []
            if 2 * len(w) != it.size():
                raise AssertionError(f"size mismatch for {it.text()}")
            words.extend(w)
        return words_to_bytes(words), [it for it in self.items if it.kind != "label"]

"""Differential check of icicle-emu's MSP430X extended instructions against the Python
model of emu/engines/msp430_fixups.py (written from TI's SLAU367, chapter 4 "CPUX").

mspdebug's simulator has no MSP430X, so this check has two opinions: icicle (SLEIGH, with
the repairs at `fixup_sites`) and the model. Every disagreement found was settled by the
manual (docs/msp430-divergences.md, section 1, X-ids).

Random programs of extended instructions:

* address instructions MOVA (Rsrc, #imm20, @Rsrc, @Rsrc+, &abs20, z16(Rsrc) to a
  register; Rsrc to &abs20 and z16(Rdst)), CMPA/ADDA/SUBA (#imm20, Rsrc);
  RRCM/RRAM/RLAM/RRUM .A/.W #1-4;
* PUSHM.A/.W and POPM.A/.W of register ranges;
* format I with an extension word (MOVX ... XORX, .A/.W/.B): register mode with
  repetition count #n or Rn and ZC; memory sources X(Rn) with 20-bit index, &abs20,
  symbolic (PC + X20), @Rn, @Rn+, #imm20, the constant generator; memory destinations
  X(Rn), &abs20, symbolic;
* format II with an extension word: RRCX/RRUX/RRAX (registers, with repetition; memory),
  SWPBX/SXTX .A/.W, PUSHX .A/.W/.B followed by POPX (MOVX @SP+,Rn);
* CALLA in all seven modes to subroutines ending in RETA, BRA (MOVA #imm20,PC,
  MOVA Rn,PC, MOVA @Rn,PC) forward.

Data lives in SRAM (0x2000-0x3000) and in FRAM above 64 KB (0x10100-0x10F00, mapped
read/write here), so 20-bit addresses and pointers are exercised; code at 0x4400.
Compared: every register (20 bits) and SR after every instruction (icicle stepped with the
repairs at every site vs. the model), both data areas at the end; and the program run the
way the engine runs it (IcicleEngine: JIT, pruned repair sites) against the model's
final state.

CLI: python tests/msp430x_diff.py --programs N --seed S [--raw] [--show SEED]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import Counter
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (HERE, ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

from emu.engines import msp430_fixups as fx  # noqa: E402

REG_NAMES = fx._NAMES
LOW, LOW_END = 0x1C00, 0x3C00  # SRAM: data at 0x2000-0x3000, stack below 0x3B00
HIGH, HIGH_END = 0x10000, 0x11000  # FRAM above 64 KB (read/write)
CODE, CODE_SIZE = 0x4400, 0x1000
SP0 = 0x3B00
DATA = ((0x2000, 0x3000), (HIGH + 0x100, HIGH_END - 0x100))
POINTERS = (4, 5, 6)
DATA_REGS = tuple(range(7, 16))
MAX_STEPS = 600
V_BIT = 0x100

OPS1 = ("mov", "add", "addc", "subc", "sub", "cmp", "dadd", "bit", "bic", "bis", "xor", "and")
OP1_CODE = {name: 4 + i for i, name in enumerate(OPS1)}
SPECIALS = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFF, 0x80000, 0xFFFFF,
            0x10000, 0x9999, 0x99999, 0x0FFFF, 0xF0000, 0x12345, 0x00080, 0xFFF80]


def rand20(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.35:
        return rng.choice(SPECIALS)
    if r < 0.5:  # BCD
        return sum(rng.randrange(10) << (4 * i) for i in range(5))
    return rng.randrange(0x100000)


# --------------------------------------------------------------------------------------
# a tiny two-pass assembler: items of fixed size, words computed once labels are known
# --------------------------------------------------------------------------------------
@dataclass
class Item:
    size: int  # bytes
    emit: object  # callable(address, labels) -> list of words
    text: str
    v_undefined: bool = False  # the instruction leaves V undefined (not compared)


@dataclass
class XProgram:
    seed: int
    code: bytes
    regs: dict
    low: bytes
    high: bytes
    end: int
    listing: dict  # address -> text
    v_undefined: set = field(default_factory=set)  # addresses

    def text(self) -> str:
        return "\n".join(f"  {a:05x}: {t}" for a, t in sorted(self.listing.items()))


class Gen:
    """One random, well-formed program (module docstring)."""

    def __init__(self, seed: int, length: int = 24):
        self.seed = seed
        self.rng = random.Random(seed)
        self.length = length
        self.items: list[Item] = []
        self.labels: dict[str, int] = {}
        self.ptr: dict[int, int] = {}
        self.low = bytearray(LOW_END - LOW)
        self.high = bytearray(HIGH_END - HIGH)
        self.subs: list[tuple[str, list[Item]]] = []
        self.mem_labels: list[tuple[int, str]] = []  # (address, label): 20-bit target stored there

    # -- helpers ---------------------------------------------------------------------
    def add(self, words_or_fn, text: str, size: int | None = None, v_undefined=False) -> None:
        if callable(words_or_fn):
            self.items.append(Item(size, words_or_fn, text, v_undefined))
        else:
            words = list(words_or_fn)
            self.items.append(Item(2 * len(words), lambda a, l, w=words: w, text, v_undefined))
        if v_undefined:  # V is undefined (DADDX, RLAM): define it before anything reads it
            self.items.append(Item(2, lambda a, l: [0x07D7], "CMPA R7,R7"))

    def data_addr(self, bits: int) -> int:
        lo, hi = self.rng.choice(DATA)
        a = self.rng.randrange(lo, hi - 4)
        return a if bits == 8 else a & ~1

    def ptr_target(self, p: int, bits: int, near: bool = False) -> int:
        """A data address near pointer p (|offset| < 2 KB) or anywhere."""
        base = self.ptr[p]
        for _ in range(20):
            a = base + self.rng.randrange(-0x7F0, 0x7F0) if near else self.data_addr(bits)
            a = a if bits == 8 else a & ~1
            if any(lo <= a < hi - 4 for lo, hi in DATA):
                return a
        return base

    def live_ptr(self, bits: int) -> int:
        ps = [p for p in POINTERS if bits == 8 or not self.ptr[p] & 1]
        if ps:
            return self.rng.choice(ps)
        a = self.data_addr(16)  # every pointer odd (after .B @Rn+): re-seed R4
        self.add([((a >> 16) << 8) | 0x84, a & 0xFFFF], f"MOVA #{a:#x},R4")
        self.ptr[4] = a
        return 4

    def data_reg(self) -> int:
        return self.rng.choice(DATA_REGS)

    def src_reg(self) -> int:
        return self.rng.choice(DATA_REGS + POINTERS)

    # -- items -----------------------------------------------------------------------
    def address_item(self) -> None:
        rng = self.rng
        k = rng.randrange(10)
        d = self.data_reg()
        if k < 4:  # MOVA/CMPA/ADDA/SUBA Rsrc,Rdst or #imm20,Rdst
            kind = rng.randrange(4)
            name = ("MOVA", "CMPA", "ADDA", "SUBA")[kind]
            if rng.random() < 0.5:
                s = self.src_reg()
                self.add([(s << 8) | ((12 + kind) << 4) | d], f"{name} R{s},R{d}")
            else:
                v = rand20(rng)
                self.add([((v >> 16) << 8) | ((8 + kind) << 4) | d, v & 0xFFFF], f"{name} #{v:#x},R{d}")
        elif k < 7:  # MOVA loads
            m = rng.randrange(4)
            if m == 0:
                p = self.live_ptr(16)
                self.add([(p << 8) | 0x00 | d], f"MOVA @R{p},R{d}")
            elif m == 1:
                p = self.live_ptr(16)
                self.add([(p << 8) | 0x10 | d], f"MOVA @R{p}+,R{d}")
                self.ptr[p] += 4
            elif m == 2:
                a = self.data_addr(16)
                self.add([((a >> 16) << 8) | 0x20 | d, a & 0xFFFF], f"MOVA &{a:#x},R{d}")
            else:
                p = self.live_ptr(16)
                t = self.ptr_target(p, 16, near=True)
                self.add([(p << 8) | 0x30 | d, (t - self.ptr[p]) & 0xFFFF], f"MOVA {t - self.ptr[p]}(R{p}),R{d}")
        elif k < 9:  # MOVA stores
            s = self.src_reg()
            if rng.random() < 0.5:
                a = self.data_addr(16)
                self.add([(s << 8) | 0x60 | (a >> 16), a & 0xFFFF], f"MOVA R{s},&{a:#x}")
            else:
                p = self.live_ptr(16)
                t = self.ptr_target(p, 16, near=True)
                self.add([(s << 8) | 0x70 | p, (t - self.ptr[p]) & 0xFFFF], f"MOVA R{s},{t - self.ptr[p]}(R{p})")
        else:  # RRCM/RRAM/RLAM/RRUM
            n = rng.randrange(1, 5)
            kind = rng.randrange(4)
            w = rng.randrange(2)
            name = ("RRCM", "RRAM", "RLAM", "RRUM")[kind] + (".W" if w else ".A")
            self.add([((n - 1) << 10) | (kind << 8) | 0x40 | (w << 4) | d], f"{name} #{n},R{d}",
                     v_undefined=kind == 2)

    def pushm_item(self) -> None:
        rng = self.rng
        a = rng.random() < 0.5
        hi_reg = rng.randrange(8, 16)
        n = rng.randrange(1, hi_reg - 6)  # registers R7 and up only
        self.add([(0x1400 if a else 0x1500) | ((n - 1) << 4) | hi_reg],
                 f"PUSHM.{'A' if a else 'W'} #{n},R{hi_reg}")
        if rng.random() < 0.5:
            self.address_item()
        hi2 = rng.randrange(7 + n - 1, 16)  # pops the same number of registers elsewhere
        self.add([(0x1600 if a else 0x1700) | ((n - 1) << 4) | (hi2 - n + 1)],
                 f"POPM.{'A' if a else 'W'} #{n},R{hi2}")

    def width(self):
        bits = self.rng.choice((8, 16, 20))
        al, bw = {8: (1, 1), 16: (1, 0), 20: (0, 1)}[bits]
        return bits, al, bw, {8: ".B", 16: ".W", 20: ".A"}[bits]

    def src_operand(self, bits: int):
        """(As, reg, src19:16, extra words as callables, text, pointer update)."""
        rng = self.rng
        k = rng.choice(["reg", "idx", "abs", "sym", "ind", "inc", "imm", "imm", "cg"])
        if k == "reg":
            s = self.src_reg()
            return 0, s, 0, [], f"R{s}"
        if k in ("idx", "abs", "sym"):
            return self.memory_operand(k, bits)
        if k in ("ind", "inc"):
            p = self.live_ptr(bits)
            if k == "inc":
                self.ptr[p] += {8: 1, 16: 2, 20: 4}[bits]
                return 3, p, 0, [], f"@R{p}+"
            return 2, p, 0, [], f"@R{p}"
        if k == "imm":
            v = rand20(rng)
            return 3, 0, v >> 16, [lambda a, v=v: v & 0xFFFF], f"#{v:#x}"
        As, reg, v = rng.choice([(0, 3, 0), (1, 3, 1), (2, 3, 2), (3, 3, -1), (2, 2, 4), (3, 2, 8)])
        return As, reg, 0, [], f"#{v}"

    def dst_operand(self, bits: int):
        rng = self.rng
        k = rng.choice(["reg", "reg", "idx", "abs", "sym"])
        if k == "reg":
            d = self.data_reg()
            return 0, d, 0, [], f"R{d}"
        return self.memory_operand(k, bits)

    def memory_operand(self, k: str, bits: int):
        """An indexed ("idx"), absolute ("abs") or symbolic ("sym") operand, as a source's."""
        if k == "idx":
            p = self.live_ptr(bits) if bits != 8 else self.rng.choice(POINTERS)
            t = self.ptr_target(p, bits)
            x = (t - self.ptr[p]) & 0xFFFFF
            return 1, p, x >> 16, [lambda a, x=x: x & 0xFFFF], f"{x:#x}(R{p})"
        t = self.data_addr(bits)
        if k == "abs":
            return 1, 2, t >> 16, [lambda a, t=t: t & 0xFFFF], f"&{t:#x}"
        # symbolic: X = target - address of the index word; the high bits are resolved
        # when the item's address is known
        return 1, 0, ("sym", t), [("sym", t)], f"{t:#x}"

    def _emit_ext(self, head, src_hi, dst_hi, extra, text, v_undef=False):
        """An instruction: extension word (head without the 19:16 fields), opcode word,
        extra words; ('sym', target) entries are PC-relative 20-bit indexes."""
        size = 4 + 2 * len(extra)

        def emit(addr, labels, head=head, extra=extra):
            ext, word = head
            words = [ext, word]
            for i, e in enumerate(extra):
                at = addr + 4 + 2 * i
                if isinstance(e, tuple):
                    x = (e[1] - at) & 0xFFFFF
                    words.append(x & 0xFFFF)
                    hi = x >> 16
                    if i == 0 and src_hi == ("sym", e[1]):
                        words[0] |= hi << 7
                    else:
                        words[0] |= hi
                else:
                    words.append(e(at))
            if not isinstance(src_hi, tuple):
                words[0] |= src_hi << 7
            if not isinstance(dst_hi, tuple):
                words[0] |= dst_hi
            return words

        self.add(emit, text, size, v_undef)

    def format1_item(self) -> None:
        rng = self.rng
        op = rng.choice(OPS1)
        bits, al, bw, suffix = self.width()
        if rng.random() < 0.4:  # register mode: repetition and ZC
            s, d = self.src_reg() if rng.random() < 0.8 else 3, self.data_reg()
            zc = rng.random() < 0.3
            if rng.random() < 0.3:
                rn = self.data_reg()
                rep, rtext = 0x80 | rn, f"RPT R{rn} "
            else:
                n = rng.randrange(16) if rng.random() < 0.5 else 0
                rep, rtext = n, (f"RPT #{n + 1} " if n else "")
            ext = 0x1800 | (0x100 if zc else 0) | (al << 6) | rep
            word = (OP1_CODE[op] << 12) | (s << 8) | (bw << 6) | d
            self.add([ext, word], f"{rtext}{op.upper()}X{suffix}{' ZC' if zc else ''} R{s},R{d}",
                     v_undefined=op == "dadd")
            return
        As, sreg, shi, sx, stext = self.src_operand(bits)
        Ad, dreg, dhi, dx, dtext = self.dst_operand(bits) if rng.random() < 0.7 else \
            (0, self.data_reg(), 0, [], None)
        if dtext is None:
            dtext = f"R{dreg}"
        if As == 0 and Ad == 0:  # register mode belongs to the branch above
            Ad, dreg, dhi, dx, dtext = 1, 2, 0, [], None
            t = self.data_addr(bits)
            dhi, dx, dtext = t >> 16, [lambda a, t=t: t & 0xFFFF], f"&{t:#x}"
        head = (0x1800 | (al << 6), (OP1_CODE[op] << 12) | (sreg << 8) | (Ad << 7) | (bw << 6) | (As << 4) | dreg)
        self._emit_ext(head, shi, dhi, sx + dx, f"{op.upper()}X{suffix} {stext},{dtext}", op == "dadd")

    def format2_item(self) -> None:
        rng = self.rng
        code = rng.choice(["rrc", "rra", "swpb", "sxt", "push"])
        if code in ("swpb", "sxt"):
            bits = rng.choice((16, 20))
            al, bw, suffix = (1, 0, ".W") if bits == 16 else (0, 0, ".A")
        else:
            bits, al, bw, suffix = self.width()
        num = {"rrc": 0, "swpb": 1, "rra": 2, "sxt": 3, "push": 4}[code]
        reg_mode = rng.random() < 0.5
        if reg_mode:
            d = self.data_reg() if code != "push" else self.src_reg()
            rep, rtext, zc = 0, "", False
            if code in ("rrc", "rra"):
                zc = code == "rrc" and rng.random() < 0.4
                n = rng.randrange(16) if rng.random() < 0.6 else 0
                rep, rtext = n, (f"RPT #{n + 1} " if n else "")
            ext = 0x1800 | (0x100 if zc else 0) | (al << 6) | rep
            word = 0x1000 | (num << 7) | (bw << 6) | d
            name = "RRUX" if zc else f"{code.upper()}X"
            self.add([ext, word], f"{rtext}{name}{suffix} R{d}")
        else:
            if code == "push":
                As, reg, hi, extra, text = self.src_operand(bits)
                if As == 0:
                    As, reg, hi, extra, text = 2, 4, 0, [], "@R4"
                    if bits != 8 and self.ptr[4] & 1:
                        As, reg, text = 2, 3, "#2"
                head = (0x1800 | (al << 6), 0x1000 | (num << 7) | (bw << 6) | (As << 4) | reg)
                self._emit_ext(head, hi, 0, extra, f"PUSHX{suffix} {text}")
            else:
                Ad, reg, hi, extra, text = self.dst_operand(bits)
                if Ad == 0:
                    Ad, reg, text = 1, 2, None
                    t = self.data_addr(bits)
                    hi, extra, text = t >> 16, [lambda a, t=t: t & 0xFFFF], f"&{t:#x}"
                head = (0x1800 | (al << 6), 0x1000 | (num << 7) | (bw << 6) | (1 << 4) | reg)
                self._emit_ext(head, 0, hi, extra, f"{code.upper()}X{suffix} {text}")
        if code == "push":  # POPX = MOVX @SP+,Rn
            d = self.data_reg()
            self.add([0x1800 | (al << 6), 0x4000 | (1 << 8) | (bw << 6) | (3 << 4) | d],
                     f"POPX{suffix} R{d}")

    def call_item(self) -> None:
        """CALLA to a subroutine (a few instructions, then RETA) in one of seven modes."""
        rng = self.rng
        name = f"S{len(self.subs)}"
        mode = rng.choice(["reg", "idx", "ind", "inc", "abs", "sym", "imm"])
        slot = None
        if mode in ("idx", "ind", "inc", "abs", "sym"):
            slot = self.data_addr(16)
            self.mem_labels.append((slot, name))
        if mode == "reg":
            r = self.data_reg()
            self.add(lambda a, l: [0x0080 | ((l[name] >> 16) << 8) | r, l[name] & 0xFFFF],
                     f"MOVA #{name},R{r}", 4)
            self.add([0x1340 | r], f"CALLA R{r}")
        elif mode in ("ind", "inc", "idx"):
            p = self.live_ptr(16)
            self.add([((slot >> 16) << 8) | 0x80 | p, slot & 0xFFFF], f"MOVA #{slot:#x},R{p}")
            p = p if p is not None else 4
            if mode == "ind":
                self.add([0x1360 | p], f"CALLA @R{p}")
                self.ptr[p] = slot
            elif mode == "inc":
                self.add([0x1370 | p], f"CALLA @R{p}+")
                self.ptr[p] = slot + 4
            else:
                x = rng.randrange(-0x40, 0x40) * 2
                self.add([((slot - x) >> 16 << 8) | 0x80 | p, (slot - x) & 0xFFFF],
                         f"MOVA #{slot - x:#x},R{p}")
                self.add([0x1350 | p, x & 0xFFFF], f"CALLA {x}(R{p})")
                self.ptr[p] = slot - x
        elif mode == "abs":
            self.add([0x1380 | (slot >> 16), slot & 0xFFFF], f"CALLA &{slot:#x}")
        elif mode == "sym":
            self.add(lambda a, l: [0x1390 | (((slot - (a + 2)) & 0xFFFFF) >> 16), (slot - (a + 2)) & 0xFFFF],
                     f"CALLA {slot:#x}", 4)
        else:
            self.add(lambda a, l: [0x13B0 | (l[name] >> 16), l[name] & 0xFFFF], f"CALLA #{name}", 4)
        body = []
        saved = self.items
        self.items = body
        for _ in range(rng.randrange(1, 4)):
            rng.choice([self.address_item, self.format1_item])()
        self.items = saved
        body.append(Item(2, lambda a, l: [0x0110], "RETA"))
        self.subs.append((name, body))

    def branch_item(self) -> None:
        """BRA forward over one instruction: MOVA #imm20,PC / MOVA Rn,PC / MOVA @Rn,PC."""
        rng = self.rng
        name = f"B{len(self.items)}"
        mode = rng.choice(["imm", "reg", "ind"])
        if mode == "imm":
            self.add(lambda a, l: [0x0080 | ((l[name] >> 16) << 8), l[name] & 0xFFFF], f"BRA #{name}", 4)
        elif mode == "reg":
            r = self.data_reg()
            self.add(lambda a, l: [0x0080 | ((l[name] >> 16) << 8) | r, l[name] & 0xFFFF], f"MOVA #{name},R{r}", 4)
            self.add([(r << 8) | 0xC0], f"BRA R{r}")
        else:
            slot = self.data_addr(16)
            self.mem_labels.append((slot, name))
            p = self.live_ptr(16)
            self.add([((slot >> 16) << 8) | 0x80 | p, slot & 0xFFFF], f"MOVA #{slot:#x},R{p}")
            self.ptr[p] = slot
            self.add([(p << 8) | 0x00], f"BRA @R{p}")
        self.add([0x4303], "NOP (skipped)")  # MOV #0,R3
        self.items.append(Item(0, lambda a, l, n=name: [], f"<{name}>"))
        self.items[-1].label = name

    def build(self) -> XProgram:
        rng = self.rng
        regs = {"sp": SP0, "sr": rng.randrange(16) & 0xF, "r3": 0}
        regs["sr"] = (regs["sr"] & 7) | (V_BIT if regs["sr"] & 8 else 0)
        for r in DATA_REGS:
            regs[f"r{r}"] = rand20(rng)
        for p in POINTERS:
            lo, hi = rng.choice(DATA)
            self.ptr[p] = rng.randrange(lo + 0x400, hi - 0x400) & ~1
            regs[f"r{p}"] = self.ptr[p]
        for i in range(len(self.low)):
            self.low[i] = rng.randrange(256)
        for i in range(len(self.high)):
            self.high[i] = rng.randrange(256)
        for _ in range(self.length):
            r = rng.random()
            if r < 0.3:
                self.address_item()
            elif r < 0.6:
                self.format1_item()
            elif r < 0.78:
                self.format2_item()
            elif r < 0.86:
                self.pushm_item()
            elif r < 0.94:
                self.call_item()
            else:
                self.branch_item()
        end_item = Item(2, lambda a, l: [0x3FFF], "JMP $")
        end_item.label = "END"
        self.items.append(end_item)
        for name, body in self.subs:
            body[0].label = name
            self.items += body
        # pass 1: addresses
        addr, labels, places = CODE, {}, []
        for it in self.items:
            lab = getattr(it, "label", None)
            if lab:
                labels[lab] = addr
            places.append(addr)
            addr += it.size
        code, listing, vund = [], {}, set()
        for it, a in zip(self.items, places):
            words = it.emit(a, labels)
            assert 2 * len(words) == it.size, it.text
            code += words
            if it.size:
                listing[a] = it.text
            if it.v_undefined:
                vund.add(a)
        for slot, name in self.mem_labels:
            area, base = (self.low, LOW) if slot < LOW_END else (self.high, HIGH)
            area[slot - base:slot - base + 4] = labels[name].to_bytes(4, "little")
        data = b"".join(w.to_bytes(2, "little") for w in code)
        return XProgram(self.seed, data, {**regs, "pc": CODE}, bytes(self.low), bytes(self.high),
                        labels["END"], listing, vund)


def generate(n: int, seed: int) -> list[XProgram]:
    return [Gen(seed * 100_003 + i).build() for i in range(n)]


# --------------------------------------------------------------------------------------
# runners
# --------------------------------------------------------------------------------------
@dataclass
class Trace:
    states: list
    pcs: list
    low: bytes
    high: bytes
    status: str = "ok"


class ModelCpu:
    def __init__(self, prog: XProgram):
        self.regs = {n: prog.regs.get(n, 0) for n in REG_NAMES}
        self.mem = bytearray(0x100000)
        self.mem[LOW:LOW_END] = prog.low
        self.mem[HIGH:HIGH_END] = prog.high
        self.mem[CODE:CODE + len(prog.code)] = prog.code

    def read_register(self, name):
        return self.regs[name]

    def write_register(self, name, value):
        self.regs[name] = value

    def read_memory(self, address, size):
        return bytes(self.mem[address:address + size])

    def write_memory(self, address, data):
        self.mem[address:address + len(data)] = data

    def state(self):
        return tuple(self.regs[n] for n in REG_NAMES)

    def areas(self):
        return bytes(self.mem[LOW:LOW_END]), bytes(self.mem[HIGH:HIGH_END])


class IcicleCpu(ModelCpu):
    _vm = None

    def __init__(self, prog: XProgram):
        import icicle

        if IcicleCpu._vm is None:
            IcicleCpu._vm = icicle.Icicle("msp430", jit=False)
        vm = self.vm = IcicleCpu._vm
        vm.reset()
        rw, rwx = icicle.MemoryProtection.ReadWrite, icicle.MemoryProtection.ExecuteReadWrite
        vm.mem_map(LOW, LOW_END - LOW, rw)
        vm.mem_map(HIGH, HIGH_END - HIGH, rw)
        vm.mem_map(CODE, CODE_SIZE, rwx)
        vm.mem_write(LOW, prog.low)
        vm.mem_write(HIGH, prog.high)
        vm.mem_write(CODE, prog.code)
        for n, v in prog.regs.items():
            self.write_register(n, v)

    def read_register(self, name):
        return self.vm.pc if name == "pc" else self.vm.reg_read(name.upper())

    def write_register(self, name, value):
        if name == "pc":
            self.vm.pc = value
        else:
            self.vm.reg_write(name.upper(), value)

    def read_memory(self, address, size):
        return bytes(self.vm.mem_read(address, size))

    def write_memory(self, address, data):
        self.vm.mem_write(address, bytes(data))

    def state(self):
        return tuple(self.read_register(n) for n in REG_NAMES)

    def areas(self):
        return (bytes(self.vm.mem_read(LOW, LOW_END - LOW)), bytes(self.vm.mem_read(HIGH, HIGH_END - HIGH)))

    def step(self) -> str | None:
        vm = self.vm
        vm.icount_limit = vm.icount + 1
        st = vm.run()
        if "InstructionLimit" not in str(st):
            return f"icicle: {st} {vm.exception_code} {vm.exception_value:#x}"
        return None


def run_model(prog: XProgram) -> Trace:
    cpu = ModelCpu(prog)
    return _run(cpu, prog, lambda pc: fx.execute(cpu, pc))


def run_icicle(prog: XProgram, fixups: bool = True) -> Trace:
    cpu = IcicleCpu(prog)
    sites = set(fx.fixup_sites(prog.code, CODE, prune=False)) if fixups else set()

    def step(pc):
        if pc in sites:
            fx.execute(cpu, pc)
            return None
        return cpu.step()

    return _run(cpu, prog, step)


def _run(cpu, prog, step) -> Trace:
    states, pcs, status = [cpu.state()], [], "ok"
    for _ in range(MAX_STEPS):
        pc = cpu.read_register("pc")
        if pc == prog.end:
            break
        pcs.append(pc)
        try:
            err = step(pc)
        except NotImplementedError as e:
            err = f"model: {e}"
        if err:
            status = err
            break
        states.append(cpu.state())
    else:
        status = "step limit"
    low, high = cpu.areas()
    return Trace(states, pcs, low, high, status)


def run_engine(prog: XProgram) -> Trace:
    """As the project's IcicleEngine runs it: JIT, breakpoints at the (pruned) sites."""
    from emu.engines.base import Access, Mapping
    from emu.engines.icicle_engine import IcicleEngine

    class _Bus:
        def read(self, address, size):
            raise AssertionError("no MMIO")

        def write(self, address, size, value):
            raise AssertionError("no MMIO")

    eng = IcicleEngine()
    eng.map([Mapping(LOW, LOW_END - LOW, Access.RW), Mapping(CODE, CODE_SIZE, Access.RX),
             Mapping(HIGH, HIGH_END - HIGH, Access.RW)], _Bus())
    eng.write_memory(LOW, prog.low)
    eng.write_memory(HIGH, prog.high)
    eng.write_memory(CODE, prog.code)
    eng.scan_code(CODE, prog.code)
    for n, v in prog.regs.items():
        if n != "pc":
            eng.write_register(n, v)
    eng.pc = CODE
    eng.set_exits([prog.end])
    eng.reset_counter()
    stop = eng.run(MAX_STEPS)
    status = "ok" if stop.kind.value == "exit" else f"engine: {stop}"
    state = tuple(eng.read_register(n) for n in REG_NAMES)
    return Trace([state], [None] * eng.instructions, eng.read_memory(LOW, LOW_END - LOW),
                 eng.read_memory(HIGH, HIGH_END - HIGH), status)


# --------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------
@dataclass
class Report:
    programs: int = 0
    instructions: int = 0
    engine_runs: int = 0
    divergences: list = field(default_factory=list)  # (seed, form, detail)
    errors: list = field(default_factory=list)

    def forms(self) -> Counter:
        return Counter(f for _, f, _ in self.divergences)

    def summary(self, verbose: bool = False) -> str:
        lines = [f"{self.programs} programs, {self.instructions} instructions "
                 f"({self.engine_runs} also through IcicleEngine): "
                 f"{len(self.divergences)} divergences, {len(self.errors)} errors"]
        for form, n in self.forms().most_common():
            lines.append(f"  {n:5d}  {form}")
        for e in self.errors[:10]:
            lines.append(f"  error: {e}")
        if verbose:
            for seed, form, detail in self.divergences[:20]:
                lines.append(f"  seed {seed}: {form}: {detail}")
        return "\n".join(lines)


def form_of(text: str) -> str:
    """The instruction form of a listing line: mnemonic and operand modes."""
    import re

    t = re.sub(r"RPT (#\d+|R\d+) ", "RPT ", text)
    t = re.sub(r"#S\d+|#B\d+", "#label", t)
    t = re.sub(r"-?(0x)?[0-9a-f]+\(R\d+\)", "X(Rn)", t)
    t = re.sub(r"@R\d+", "@Rn", t)
    t = re.sub(r"&0x[0-9a-f]+", "&abs", t)
    t = re.sub(r"#-?(0x)?[0-9a-f]+", "#imm", t)
    t = re.sub(r"\bR\d+\b", "Rn", t)
    t = re.sub(r"\b0x[0-9a-f]+\b", "ADDR", t)
    return t


def _diff(a, b, sr_ignore=0) -> list[str]:
    out = []
    for n, x, y in zip(REG_NAMES, a, b):
        if n == "sr":
            x, y = x & ~sr_ignore, y & ~sr_ignore
        if x != y:
            out.append(f"{n} {x:#x} != {y:#x}")
    return out


def compare(progs: list[XProgram], fixups: bool = True, engine_every: int = 1) -> Report:
    rep = Report()
    for i, prog in enumerate(progs):
        rep.programs += 1
        m = run_model(prog)
        if m.status != "ok":
            rep.errors.append(f"seed {prog.seed}: model {m.status}")
            continue
        ic = run_icicle(prog, fixups=fixups)
        rep.instructions += len(m.pcs)
        found = False
        for k in range(1, min(len(m.states), len(ic.states))):
            pc = m.pcs[k - 1]
            ignore = V_BIT if pc in prog.v_undefined else 0
            d = _diff(ic.states[k], m.states[k], ignore)
            if d:
                rep.divergences.append((prog.seed, form_of(prog.listing.get(pc, "?")),
                                        f"at {pc:#x} {prog.listing.get(pc)}: icicle vs model: {', '.join(d)}"))
                found = True
                break
        if not found and ic.status != m.status:
            pc = m.pcs[len(ic.states) - 1] if len(ic.states) - 1 < len(m.pcs) else None
            rep.divergences.append((prog.seed, form_of(prog.listing.get(pc, "?")) if pc else "status",
                                    f"icicle {ic.status} at {pc}"))
            found = True
        if not found and (ic.low, ic.high) != (m.low, m.high):
            rep.divergences.append((prog.seed, "memory", _mem_detail(prog)))
            found = True
        if fixups and not found and i % engine_every == 0:
            rep.engine_runs += 1
            e = run_engine(prog)
            last = m.states[-1]
            if e.status != "ok" or len(e.pcs) != len(m.pcs) or _diff(e.states[-1], last, V_BIT) \
                    or (e.low, e.high) != (m.low, m.high):
                rep.divergences.append((prog.seed, "engine run", f"{e.status}, {len(e.pcs)} vs "
                                        f"{len(m.pcs)} instructions, {_diff(e.states[-1], last, V_BIT)}"))
    return rep


def classify(progs: list[XProgram], fixups: bool = False) -> Counter:
    """Every instruction of every program on icicle from the model's state before it
    (registers and data areas copied over): the forms whose single step differs, with
    the registers that differ (not only the first divergence of each program)."""
    out: Counter = Counter()
    examples: dict = {}
    for prog in progs:
        mc, ic = ModelCpu(prog), IcicleCpu(prog)
        sites = set(fx.fixup_sites(prog.code, CODE, prune=False)) if fixups else set()
        for _ in range(MAX_STEPS):
            pc = mc.read_register("pc")
            if pc == prog.end:
                break
            for n in REG_NAMES:
                ic.write_register(n, mc.read_register(n))
            low, high = mc.areas()
            ic.vm.mem_write(LOW, low)
            ic.vm.mem_write(HIGH, high)
            before = mc.state()
            try:
                fx.execute(mc, pc)
            except NotImplementedError:
                break
            if pc in sites:
                fx.execute(ic, pc)
                err = None
            else:
                err = ic.step()
            ignore = V_BIT if pc in prog.v_undefined else 0
            d = [x.split()[0] for x in _diff(ic.state(), mc.state(), ignore)]
            if mc.areas() != ic.areas():
                d.append("mem")
            if err:
                d = ["fault"]
            if d:
                key = (form_of(prog.listing.get(pc, "?")), " ".join(d))
                out[key] += 1
                examples.setdefault(key, (prog.seed, pc, prog.listing.get(pc), before,
                                          _diff(ic.state(), mc.state(), ignore), err))
            if err:
                break
    classify.examples = examples
    return out


def _mem_detail(prog: XProgram) -> str:
    """The first instruction after which the data areas differ."""
    mc, ic = ModelCpu(prog), IcicleCpu(prog)
    sites = set(fx.fixup_sites(prog.code, CODE, prune=False))
    for _ in range(MAX_STEPS):
        pc = mc.read_register("pc")
        if pc == prog.end:
            break
        fx.execute(mc, pc)
        if pc in sites:
            fx.execute(ic, pc)
        elif ic.step():
            break
        if mc.areas() != ic.areas():
            return f"at {pc:#x} {prog.listing.get(pc)}: memory differs"
    return "memory differs"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--raw", action="store_true", help="icicle without the repairs")
    ap.add_argument("--show", type=int, help="print the program with this seed")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--classify", action="store_true",
                    help="step every instruction from the model's state; list differing forms")
    a = ap.parse_args(argv)
    if a.show is not None:
        prog = Gen(a.show).build()
        print(prog.text())
        return 0
    if a.classify:
        counts = classify(generate(a.programs, a.seed), fixups=not a.raw)
        for (form, regs), n in sorted(counts.items()):
            ex = classify.examples[(form, regs)]
            print(f"{n:5d}  {form:32s} {regs:14s} e.g. seed {ex[0]} {ex[2]}: {ex[4]} {ex[5] or ''}")
            if a.verbose:
                print("       before:", " ".join(f"{n}={v:#x}" for n, v in zip(REG_NAMES, ex[3])))
        return 1 if counts else 0
    rep = compare(generate(a.programs, a.seed), fixups=not a.raw)
    print(rep.summary(verbose=a.verbose))
    return 1 if rep.divergences or rep.errors else 0


if __name__ == "__main__":
    sys.exit(main())

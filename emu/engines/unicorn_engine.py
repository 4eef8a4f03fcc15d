"""Cortex-M4 engine on Unicorn 2.1 (QEMU TCG), with exact instruction counting.

What it adds to Unicorn, and why:

* Exact counting without a Python call per instruction. Unicorn's `count=` of
  `emu_start` is compiled into translated blocks (blocks translated during an
  uncounted run are later reused without counting) and reports nothing when
  emulation stops early at an exit or a fault. Instead one native UC_HOOK_CODE
  hook (`_ucount.c`) is registered before anything is translated, so every block
  calls it. It counts, and calls `uc_emu_stop` when the budget is used up; that
  stop takes effect before the hooked instruction executes, so the instruction
  at the limit is neither executed nor counted.

* What counts as one instruction: every Thumb instruction, including an IT
  instruction and each instruction of its block, taken or skipped (a skipped one
  executes as a no-op). Unicorn cannot stop inside an IT block (it reverts stop
  requests there), so a budget that ends inside one is honoured by running only
  the block's head: ITSTATE is shortened to the instructions the budget allows, and
  set back to the rest of the block afterwards; a run that starts inside a block
  carries on from ITSTATE. WFI, WFE, YIELD and SEV retire as ordinary
  instructions and never stop a run (nothing here models sleep).

* Stops. LIMIT: exactly `budget` instructions retired. EXIT: pc is an exit
  address, that instruction not executed (if the budget runs out exactly there,
  EXIT is reported; a run that starts on an exit returns EXIT at once). FAULT:
  invalid instruction, unmapped access, write to a read-only region, fetch from a
  non-executable region, or a CPU exception Unicorn does not model for Cortex-M
  (BKPT, ...; SVC without an SVCall handler): the faulting instruction did not retire,
  is not counted, and pc and `EngineStop.pc` are its address.

* Exceptions. Unicorn models neither exception entry nor return on M-profile: QEMU
  raises EXCP_SWI for `svc` and EXCP_EXCEPTION_EXIT for a branch to an EXC_RETURN value
  in handler mode, and Unicorn stops (UC_HOOK_INTR). `interrupt()` (asked for by the
  machine between runs), SVC and exception return are done here in Python, once per
  exception: the ARMv7-M stacking (xPSR with ITSTATE, so an interrupt may come
  between two instructions of an IT block), EXC_RETURN, IPSR and vector fetch. A
  data fault inside an IT block is reported at the faulting instruction, with the
  instructions before it counted, but Unicorn has run the rest of that block.

* Memory lives in one host buffer mapped with `mem_map_ptr`, so aliases share bytes
  (flash at 0x08000000 is also visible at 0x00000000: see `DEFAULT_ALIASES`),
  raw reads/writes are plain memory copies, and snapshots copy pages directly.
  Access.RX regions are mapped without write permission, so a CPU store to flash is
  a FAULT, while `write_memory` (flashing) writes the host buffer and drops the
  translated code over those bytes (through every alias).

* MMIO ranges are `uc_mmio_map` regions whose callbacks forward to the bus (no host
  memory behind the 512 MiB peripheral window). If the bus raises, run() re-raises
  it; Unicorn abandons the accessing instruction (pc stays on it, not counted), so
  resuming repeats the access. Raw `read_memory`/`write_memory` on MMIO ranges use
  a side-effect-free shadow (zeros until written), never the bus.

* Fast save()/load(). Unicorn runs in virtual-TLB mode with a native TLB-fill hook
  that identity-maps pages and grants write access only on a write fill, which marks
  the page dirty; after a TLB flush the first store to a page must refill, so every
  written page is seen, at no cost per store. A flush costs about a millisecond, so
  the dirty set is kept across save/load (a superset of what was written since) and the
  TLB is flushed only when it passes ~100 pages. A state is a list of immutable 1 KiB
  pages shared with earlier states (only changed pages are copied) plus Unicorn's CPU
  context (all registers, banked stack pointers, FPU, IT state) and the counter.
  load() rewrites only pages that differ (dirty since the last save/load, or held
  as different page objects) and drops translations of rewritten executable pages.
  States can be loaded in any order, any number of times, on the engine that
  saved them.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import mmap
from dataclasses import dataclass

import numpy as np
from typing import Sequence

from unicorn import (
    UC_ARCH_ARM,
    UC_ERR_OK,
    UC_HOOK_CODE,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_HOOK_MEM_INVALID,
    UC_HOOK_TLB_FILL,
    UC_MODE_THUMB,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    UC_TLB_VIRTUAL,
    Uc,
    UcError,
)
from unicorn import arm_const as A
from unicorn import unicorn_const as C
from unicorn.unicorn_py3.unicorn import (
    MMIO_READ_CFUNC,
    MMIO_WRITE_CFUNC,
    uc_hook_h,
    uclib,
)

from .base import Access, Engine, EngineStop, Mapping, MmioBus, StateKey, StopKind, merge_ranges

try:
    from . import _ucount
except ImportError as exc:  # pragma: no cover - build problem, not logic
    raise ImportError(
        "emu.engines._ucount is not built; run `pip install -e .` or "
        "`python setup.py build_ext --inplace` in the project root"
    ) from exc

__all__ = ["UnicornEngine", "DEFAULT_ALIASES", "PAGE_SIZE"]

#: Unicorn's ARM target page: mapping granularity and snapshot page size.
PAGE_SIZE = 1024
_PAGE_SHIFT = 10

#: alias start -> start of the mapping it mirrors (cortex-m4-mram board: flash alias).
DEFAULT_ALIASES = {0x0000_0000: 0x0800_0000}

_PERMS = {
    Access.R: UC_PROT_READ,
    Access.RW: UC_PROT_READ | UC_PROT_WRITE,
    Access.RX: UC_PROT_READ | UC_PROT_EXEC,
    Access.RWX: UC_PROT_READ | UC_PROT_WRITE | UC_PROT_EXEC,
}

# name -> (unicorn id for reading, unicorn id for writing)
_REGISTERS: dict[str, tuple[int, int]] = {f"r{i}": (A.UC_ARM_REG_R0 + i,) * 2 for i in range(13)}
_REGISTERS.update({
    "sp": (A.UC_ARM_REG_SP,) * 2,
    "lr": (A.UC_ARM_REG_LR,) * 2,
    "pc": (A.UC_ARM_REG_PC,) * 2,
    # XPSR reads APSR|IPSR|EPSR; the NZCVQG variant also writes GE (plain XPSR does not)
    "xpsr": (A.UC_ARM_REG_XPSR, A.UC_ARM_REG_XPSR_NZCVQG),
    "msp": (A.UC_ARM_REG_MSP,) * 2,
    "psp": (A.UC_ARM_REG_PSP,) * 2,
    "control": (A.UC_ARM_REG_CONTROL,) * 2,
    "primask": (A.UC_ARM_REG_PRIMASK,) * 2,
    "basepri": (A.UC_ARM_REG_BASEPRI,) * 2,
    "faultmask": (A.UC_ARM_REG_FAULTMASK,) * 2,
})

# accessed with MRS/MSR privilege rules by QEMU: see UnicornEngine._privileged
# registers a batch write may set directly (no privilege or mode side effects)
_BATCH = {f"r{i}": A.UC_ARM_REG_R0 + i for i in range(13)}
_BATCH.update(sp=A.UC_ARM_REG_SP, lr=A.UC_ARM_REG_LR, pc=A.UC_ARM_REG_PC, xpsr=A.UC_ARM_REG_XPSR_NZCVQG)
_BATCH_SLOTS = len(_BATCH) + 1  # + the APSR_NZCV write that follows an xPSR write

_PRIVILEGED_REGISTERS = frozenset({"msp", "psp", "control", "primask", "basepri", "faultmask"})

_MEM_FAULTS = {
    C.UC_MEM_READ_UNMAPPED: "read from unmapped address",
    C.UC_MEM_WRITE_UNMAPPED: "write to unmapped address",
    C.UC_MEM_FETCH_UNMAPPED: "instruction fetch from unmapped address",
    C.UC_MEM_WRITE_PROT: "write to read-only address",
    C.UC_MEM_READ_PROT: "read from unreadable address",
    C.UC_MEM_FETCH_PROT: "instruction fetch from non-executable address",
}
_DATA_FAULTS = frozenset({C.UC_MEM_READ_UNMAPPED, C.UC_MEM_WRITE_UNMAPPED, C.UC_MEM_WRITE_PROT,
                          C.UC_MEM_READ_PROT})
_ERR_FAULTS = {
    C.UC_ERR_READ_UNMAPPED: "read from unmapped memory",
    C.UC_ERR_WRITE_UNMAPPED: "write to unmapped memory",
    C.UC_ERR_FETCH_UNMAPPED: "instruction fetch from unmapped memory",
    C.UC_ERR_WRITE_PROT: "write to read-only memory",
    C.UC_ERR_READ_PROT: "read from unreadable memory",
    C.UC_ERR_FETCH_PROT: "instruction fetch from non-executable memory",
    C.UC_ERR_READ_UNALIGNED: "unaligned read",
    C.UC_ERR_WRITE_UNALIGNED: "unaligned write",
    C.UC_ERR_FETCH_UNALIGNED: "unaligned instruction fetch",
    C.UC_ERR_EXCEPTION: "unhandled CPU exception",
}
# QEMU's EXCP_* numbers (target/arm/cpu.h) as seen by UC_HOOK_INTR
_EXCEPTIONS = {
    1: "undefined instruction", 2: "SVC (supervisor call)", 3: "prefetch abort", 4: "data abort",
    5: "IRQ", 6: "FIQ", 7: "BKPT (breakpoint)", 8: "exception return (EXC_RETURN)",
    16: "semihosting call", 17: "coprocessor access (NOCP)", 18: "invalid state (INVSTATE)",
    22: "unaligned access (UNALIGNED)",
}


class _Region(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("size", ctypes.c_uint64), ("host", ctypes.c_void_p),
                ("page0", ctypes.c_uint64), ("exec", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


class _Counter(ctypes.Structure):
    """Mirror of `ucount_t` in _ucount.c (checked against `_ucount.layout()`)."""

    _fields_ = [
        ("count", ctypes.c_uint64), ("limit", ctypes.c_uint64), ("last_addr", ctypes.c_uint64),
        ("it_lo", ctypes.c_uint64), ("it_hi", ctypes.c_uint64), ("it_base", ctypes.c_uint64),
        ("it_open", ctypes.c_uint32), ("it_split", ctypes.c_uint32),
        ("last_counted", ctypes.c_uint32), ("stop_pending", ctypes.c_uint32),
        ("intr_seen", ctypes.c_uint32), ("intno", ctypes.c_uint32),
        ("mem_type", ctypes.c_uint32), ("mem_size", ctypes.c_uint32),
        ("mem_addr", ctypes.c_uint64), ("mem_value", ctypes.c_int64), ("mem_pc", ctypes.c_uint64),
        ("dirty_map", ctypes.c_void_p), ("dirty_list", ctypes.c_void_p),
        ("ndirty", ctypes.c_uint64), ("npages", ctypes.c_uint64),
        ("page_shift", ctypes.c_uint32), ("nregions", ctypes.c_uint32),
        ("hot", ctypes.c_uint32), ("pad", ctypes.c_uint32),
        ("uc", ctypes.c_void_p), ("emu_stop", ctypes.c_void_p), ("ctl", ctypes.c_void_p),
        ("code_bits", ctypes.c_void_p), ("code_lo", ctypes.c_uint64), ("code_size", ctypes.c_uint64),
        ("regions", _Region * _ucount.MAX_REGIONS),
        ("trace", ctypes.c_void_p), ("trace_base", ctypes.c_uint64), ("trace_len", ctypes.c_uint64),
    ]


def _check_layout() -> None:
    lay = _ucount.layout()
    ok = lay.pop("sizeof") == ctypes.sizeof(_Counter) and lay.pop("region_sizeof") == ctypes.sizeof(_Region)
    ok = ok and all(getattr(_Counter, name).offset == off for name, off in lay.items())
    consts = ("UC_MEM_WRITE", "UC_PROT_READ", "UC_PROT_WRITE", "UC_PROT_EXEC",
              "UC_CTL_TB_REMOVE_CACHE", "UC_CTL_TLB_FLUSH", "UC_CTL_IO_WRITE")
    ok = ok and all(getattr(_ucount, k) == getattr(C, k) for k in consts)
    if not ok:
        raise ImportError("emu.engines._ucount does not match unicorn_engine._Counter or this "
                          "unicorn's constants; rebuild it")


_check_layout()

_EXCP_SWI, _EXCP_EXCEPTION_EXIT = 2, 8  # QEMU's EXCP_* numbers (see _EXCEPTIONS)
_VTOR, _CCR = 0xE000_ED08, 0xE000_ED14  # System Control Block (ARMv7-M B3.2)

_NO_ADDRESS = (1 << 64) - 1  # last_addr before the first hooked instruction of a run
_NO_PC = 0xFFFF_FFFF  # record_pcs: not recorded
_AT_LIMIT = -1  # _enter_it_block: the budget is used up


def _it_left(state: int) -> int:
    """Instructions left in the IT block that ITSTATE `state` (non-zero) describes."""
    low = state & 0xF
    return 4 - ((low & -low).bit_length() - 1)


def _it_truncate(state: int, n: int) -> int:
    """ITSTATE for only the next `n` (1-3) instructions of `state`'s block: same
    conditions, then the block ends."""
    return (state & 0xF0) | (state & (0xF << (5 - n)) & 0xF) | 1 << (4 - n)


def _it_advance(state: int, n: int) -> int:
    """ITSTATE after `n` instructions of the block (ARMv7-M ITAdvance)."""
    for _ in range(n):
        state = 0 if state & 7 == 0 else (state & 0xE0) | (state << 1 & 0x1F)
    return state
_EMU_START = uclib.uc_emu_start
_REG_READ = uclib.uc_reg_read
_REG_WRITE = uclib.uc_reg_write
_EMU_STOP = uclib.uc_emu_stop


@dataclass(frozen=True, eq=False)
class _State:
    """What save() returns: opaque to callers, valid only on the engine that made it."""

    owner: object  # the engine's token
    context: object  # unicorn UcContext (all CPU registers, incl. banked SPs, FPU, ITSTATE)
    pages: list  # one immutable bytes per page; shared with other states
    mmio_shadow: dict
    count: int
    digest: tuple[int | None, ...]  # of `pages`, per storage region (see _page_digest); None: not known yet


_MASK64 = (1 << 64) - 1


def _watch_hook_types(kinds: str) -> int:
    if kinds not in ("rw", "w"):
        raise ValueError(f"watch_memory kinds must be 'rw' or 'w', not {kinds!r}")
    return C.UC_HOOK_MEM_WRITE | (C.UC_HOOK_MEM_READ if "r" in kinds else 0)


def _page_digest(index: int, page: bytes) -> int:
    """One page's share of its region's digest (a sum over the region's pages, so a save
    updates it for the changed pages only; bytes objects cache their hash)."""
    return hash((index, page))


class _PageView:
    """Some pages of a page list (those where `inside[i]` is 1), compared (==) by their
    contents only when asked."""

    __slots__ = ("pages", "inside")

    def __init__(self, pages: list, inside: bytes):
        self.pages, self.inside = pages, inside

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _PageView) or other.inside != self.inside:
            return False
        a, b, inside = self.pages, other.pages, self.inside
        # pages are shared between states: only those held as different objects need a look
        return a is b or all(a[i] == b[i] for i in _ucount.ident_diff(a, b) if inside[i])

    __hash__ = None  # (a StateKey's digest stands for it)


@dataclass(frozen=True)
class _Segment:
    start: int
    end: int
    host_offset: int | None  # None: MMIO (raw access uses the shadow)
    executable: bool


class UnicornEngine(Engine):
    """Cortex-M4 (Thumb, ARMv7E-M with FPU) on Unicorn. See the module docstring."""

    register_names = tuple(_REGISTERS)
    watch_cost = 2e-7  # memory hooks on the watched ranges only: near native speed

    def __init__(self, aliases: dict[int, int] | None = None):
        # UC_MODE_MCLASS would silently force a Cortex-M33 (v8-M) in Unicorn 2.1;
        # plain Thumb mode + the M4 model gives the real ARMv7E-M core.
        self._uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB, A.UC_CPU_ARM_CORTEX_M4)
        self._uch = self._uc._uch
        self._aliases = dict(DEFAULT_ALIASES if aliases is None else aliases)
        self._token = object()  # identifies this engine's saved states
        self._c = _Counter()
        self._caddr = ctypes.addressof(self._c)
        self._c.uc = self._uch.value
        self._c.emu_stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        self._c.ctl = ctypes.cast(uclib.uc_ctl, ctypes.c_void_p).value
        self._c.page_shift = _PAGE_SHIFT
        self._c.limit = 0
        self._u32 = ctypes.c_uint32()
        self._u32_ref = ctypes.byref(self._u32)
        self._exits: frozenset[int] = frozenset()
        self._watch_hooks: list = []  # watch_memory
        self._trace: array.array | None = None  # record_pcs: the buffer the hook fills
        self._mapped = False
        self._running = False
        self._bus: MmioBus | None = None
        self._bus_error: BaseException | None = None
        self._segments: list[_Segment] = []
        self._code: tuple[int, int, int] | None = None  # IT-bitmap window: start, size, host offset
        self._mmio_shadow: dict[int, bytearray] = {}
        self._base: list = []
        self._hooks: list[uc_hook_h] = []
        self._uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        self._uc.ctl_exits_enabled(True)
        # All hooks before any translation: code hooks are compiled into blocks.
        self._code_hook = self._hook(UC_HOOK_CODE, _ucount.CODE_HOOK)
        self._hook(UC_HOOK_TLB_FILL, _ucount.TLB_FILL_HOOK)
        self._hook(UC_HOOK_MEM_INVALID, _ucount.MEM_INVALID_HOOK)
        self._hook(UC_HOOK_INTR, _ucount.INTR_HOOK)
        self._hook(UC_HOOK_INSN_INVALID, _ucount.INSN_INVALID_HOOK)
        self._reset_context = self._uc.context_save()
        self._batch_ids = (ctypes.c_int * _BATCH_SLOTS)()
        self._batch_vals = (ctypes.c_uint32 * _BATCH_SLOTS)()
        self._batch_ptrs = (ctypes.c_void_p * _BATCH_SLOTS)(
            *(ctypes.addressof(self._batch_vals) + 4 * i for i in range(_BATCH_SLOTS)))
        self._mmio_read_cb = MMIO_READ_CFUNC(self._mmio_read)
        self._mmio_write_cb = MMIO_WRITE_CFUNC(self._mmio_write)

    def _hook(self, kind: int, fn: int) -> uc_hook_h:
        h = uc_hook_h()
        err = uclib.uc_hook_add(self._uch, ctypes.byref(h), kind, fn, self._caddr, 1, 0)
        if err != UC_ERR_OK:
            raise UcError(err)
        self._hooks.append(h)
        return h

    def _use_code_hook(self, fn: int) -> None:
        """Replace the counting hook (CODE_HOOK or CODE_HOOK_TRACED); translated blocks
        call the hook they were compiled with, so they are dropped."""
        err = uclib.uc_hook_del(self._uch, self._code_hook)
        if err != UC_ERR_OK:
            raise UcError(err)
        self._hooks.remove(self._code_hook)
        self._code_hook = self._hook(UC_HOOK_CODE, fn)
        self._uc.ctl_flush_tb()

    # -- memory map -------------------------------------------------------------------
    def map(self, mappings: Sequence[Mapping], bus: MmioBus) -> None:
        if self._mapped:
            raise RuntimeError("map() may be called only once")
        self._bus = bus
        by_start = {m.start: m for m in mappings}
        ram = [m for m in mappings if not m.mmio]
        for m in ram:
            if m.start % PAGE_SIZE or m.size % PAGE_SIZE or m.size <= 0:
                raise ValueError(f"memory mapping {m.start:#x}+{m.size:#x} is not {PAGE_SIZE}-byte aligned")
        # storage: mappings with their own bytes; aliases reuse their target's bytes
        owners = [m for m in ram if not self._alias_target(m, by_start)]
        offsets: dict[int, int] = {}
        total = 0
        for m in owners:
            offsets[m.start] = total
            total += m.size
        self._npages = total // PAGE_SIZE
        # anonymous mmap: zero-filled, page-aligned, never moves
        self._mem = mmap.mmap(-1, max(total, PAGE_SIZE))
        self._mv = memoryview(self._mem)
        self._host = ctypes.addressof(ctypes.c_char.from_buffer(self._mem))
        self._dirty_map = (ctypes.c_uint8 * max(self._npages, 1))()
        self._dirty_list = (ctypes.c_uint32 * max(self._npages, 1))()
        c = self._c
        c.dirty_map = ctypes.addressof(self._dirty_map)
        c.dirty_list = ctypes.addressof(self._dirty_list)
        c.npages = self._npages
        segments: list[_Segment] = []
        regions = []
        for m in ram:
            target = self._alias_target(m, by_start)
            off = offsets[target.start] if target else offsets[m.start]
            perms = _PERMS[Access(m.access)]
            self._uc.mem_map_ptr(m.start, m.size, perms, self._host + off)
            execu = bool(perms & UC_PROT_EXEC)
            segments.append(_Segment(m.start, m.end, off, execu))
            regions.append((m.start, m.size, off, execu))
        if len(regions) > _ucount.MAX_REGIONS:
            raise ValueError(f"at most {_ucount.MAX_REGIONS} memory mappings are supported")
        # code is fetched mostly from the first region: put executable ones first
        regions.sort(key=lambda r: not r[3])
        for i, (start, size, off, execu) in enumerate(regions):
            r = c.regions[i]
            r.start, r.size, r.host, r.page0, r.exec = start, size, self._host + off, off // PAGE_SIZE, execu
        c.nregions = len(regions)
        # MMIO: page-aligned, merged ranges (Unicorn maps whole pages)
        for start, end in self._mmio_ranges([m for m in mappings if m.mmio]):
            err = uclib.uc_mmio_map(self._uch, start, end - start, self._mmio_read_cb,
                                    ctypes.c_void_p(start), self._mmio_write_cb, ctypes.c_void_p(start))
            if err != UC_ERR_OK:
                raise UcError(err)
        for m in mappings:
            if m.mmio:
                segments.append(_Segment(m.start, m.end, None, False))
        self._segments = sorted(segments, key=lambda s: s.start)
        # IT-site bitmap over the first executable, non-alias, read-only mapping (flash)
        code = next((m for m in ram if Access(m.access) == Access.RX and not self._alias_target(m, by_start)), None)
        if code is not None:
            self._code = (code.start, code.size, offsets[code.start])
            self._code_bits = (ctypes.c_uint8 * (code.size // 16))()
            c.code_bits = ctypes.addressof(self._code_bits)
            c.code_lo, c.code_size = code.start, code.size
            self._update_it_bits()
        zero = bytes(PAGE_SIZE)
        self._base = [zero] * self._npages  # memory == these pages + dirty pages
        self._region_of: list[int] = []  # page index -> storage region (owners' order)
        self._regions: list[tuple[int, int]] = []  # storage region -> (first page, pages)
        for r, m in enumerate(owners):
            self._regions.append((offsets[m.start] // PAGE_SIZE, m.size // PAGE_SIZE))
            self._region_of += [r] * (m.size // PAGE_SIZE)
        self._digest = tuple(sum(_page_digest(i, zero) for i in range(first, first + n)) & _MASK64
                             for first, n in self._regions)
        self._adopted: dict[int, tuple] = {}  # id(pages) -> (pages, address, first page, bytes, region digest)
        self._plans: dict[tuple, tuple[tuple[int, ...], tuple[int, ...], bytes]] = {}  # see _page_plan
        self._scratch = None  # a UcContext that state_key(None) saves the CPU into
        self._mapped = True

    def _alias_target(self, m: Mapping, by_start: dict[int, Mapping]) -> Mapping | None:
        target = by_start.get(self._aliases.get(m.start, -1))
        if target is None or target.mmio or target is m:
            return None
        if m.size > target.size:
            raise ValueError(f"alias {m.start:#x}+{m.size:#x} is larger than {target.start:#x}+{target.size:#x}")
        return target

    @staticmethod
    def _mmio_ranges(mmio: list[Mapping]) -> list[tuple[int, int]]:
        spans = sorted((m.start & ~(PAGE_SIZE - 1), -(-m.end // PAGE_SIZE) * PAGE_SIZE) for m in mmio)
        merged: list[list[int]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        return [(s, e) for s, e in merged]

    # MMIO callbacks (user_data carries the range start). An exception from the bus
    # stops the run; run() re-raises it. Unicorn then abandons the accessing
    # instruction (pc stays on it, not counted), so it repeats the access if resumed.
    def _mmio_read(self, uc, offset, size, base):
        try:
            return self._bus.read((base or 0) + offset, size) & ((1 << (8 * size)) - 1)
        except BaseException as e:  # noqa: BLE001 - re-raised by run()
            self._abort(e)
            return 0

    def _mmio_write(self, uc, offset, size, value, base):
        try:
            self._bus.write((base or 0) + offset, size, value & ((1 << (8 * size)) - 1))
        except BaseException as e:  # noqa: BLE001 - re-raised by run()
            self._abort(e)

    def _abort(self, e: BaseException) -> None:
        if self._bus_error is None:
            self._bus_error = e
        self._c.stop_pending = 1  # if Unicorn reverts the stop (IT block) the hook re-asks
        _EMU_STOP(self._uch)

    # -- exits ----------------------------------------------------------------------
    def set_exits(self, addresses: Sequence[int]) -> None:
        exits = frozenset(a & ~1 for a in addresses)
        if exits != self._exits:
            self._uc.ctl_set_exits(sorted(exits))
            # Unicorn checks exits while translating: drop blocks translated before.
            self._uc.ctl_flush_tb()
            self._exits = exits

    # -- running ----------------------------------------------------------------------
    @property
    def instructions(self) -> int:
        c = self._c
        if not self._running:
            return c.count
        # during a run (bus callbacks) the instruction being executed has not retired;
        # inside an IT block the count already includes the whole block
        if c.it_open and c.it_lo <= c.last_addr < c.it_hi:
            return c.it_base + self._block_index(c.last_addr)
        return c.count - c.last_counted

    def reset_counter(self) -> None:
        self._c.count = 0

    def run(self, budget: int) -> EngineStop:
        if budget < 0:
            raise ValueError("budget must be >= 0")
        if not self._mapped:
            raise RuntimeError("map() first")
        c = self._c
        if budget == 0:
            return EngineStop(StopKind.LIMIT, self.pc)
        c.limit = c.count + budget
        uch, u32, ref = self._uch, self._u32, self._u32_ref
        while True:
            c.stop_pending = c.intr_seen = c.mem_type = c.last_counted = c.it_split = c.it_open = 0
            c.last_addr = c.mem_pc = _NO_ADDRESS
            _REG_READ(uch, A.UC_ARM_REG_PC, ref)
            start_pc, start_count = u32.value, c.count
            resume = self._enter_it_block(start_pc & ~1)
            if resume == _AT_LIMIT:
                return EngineStop(StopKind.LIMIT, start_pc & ~1)
            self._running = True
            try:
                err = _EMU_START(uch, start_pc | 1, 0, 0, 0)
            finally:
                self._running = False
            if self._bus_error is not None:
                # Unicorn abandons the instruction whose access raised (pc stays on
                # it): like a fault, it did not retire and runs again next time.
                e, self._bus_error = self._bus_error, None
                if c.last_counted and c.last_addr == self.pc:
                    c.count -= 1
                c.last_counted = 0
                raise e
            if err != UC_ERR_OK:
                return self._fault(err)
            _REG_READ(uch, A.UC_ARM_REG_PC, ref)
            pc = u32.value
            if resume is not None and pc == c.it_hi:
                self._write_itstate(resume)  # the rest of the block is still to come
            if c.it_split:
                # Stopped before an IT instruction whose block the limit splits: retire
                # the IT here (it only sets ITSTATE); the loop runs the block's head.
                self._write_itstate(self._halfword(pc) & 0xFF)
                self._write(A.UC_ARM_REG_PC, (pc + 2) | 1)
                c.count += 1
                continue
            if c.intr_seen and c.intno in (_EXCP_SWI, _EXCP_EXCEPTION_EXIT):
                stop = self._exception(c.intno, pc)
                if stop is not None:
                    return stop
                if c.count >= c.limit:
                    return EngineStop(StopKind.LIMIT, self.pc)
                continue
            if c.stop_pending:
                return EngineStop(StopKind.LIMIT, pc)
            if c.intr_seen:
                return self._fault(None)
            if pc in self._exits:
                return EngineStop(StopKind.EXIT, pc)
            # Otherwise a WFI halted Unicorn: it retired; keep running.
            if c.count == start_count and pc == start_pc:  # pragma: no cover - defensive
                return EngineStop(StopKind.FAULT, pc, f"engine made no progress at {pc:#x}")

    # -- IT blocks --------------------------------------------------------------------
    # Unicorn cannot stop inside an IT block, and does not call the code hook for a
    # skipped conditional instruction. So the hook counts a block with its IT
    # instruction, and a stop inside a block is made by running only its head: ITSTATE
    # (ARMv7-M A7.3.3: bits 7:4 the condition of the next instruction, 3:0 the length
    # and then/else pattern of the rest) is shortened to the instructions the budget
    # allows, and set back to the rest of the block afterwards.
    def _enter_it_block(self, pc: int) -> int | None:
        """Before a run that starts inside an IT block (ITSTATE != 0): count the
        instructions of the block that this run will execute, and shorten ITSTATE if
        the budget ends inside it. Returns the ITSTATE to restore after the run (or
        None), or _AT_LIMIT when the budget is already used up."""
        state = self._itstate()
        if not state:
            return None
        c = self._c
        left, budget = _it_left(state), c.limit - c.count
        if budget == 0:
            return _AT_LIMIT
        n = min(left, budget)
        c.it_lo, c.it_hi, c.it_base, c.it_open = pc, self._block_end(pc, n), c.count, 1
        c.count += n
        if n == left:
            return None
        self._write_itstate(_it_truncate(state, n))
        return _it_advance(state, n)

    def _itstate(self) -> int:
        x = self._read(A.UC_ARM_REG_XPSR)
        return (x >> 25 & 3) | (x >> 8 & 0xFC)

    def _write_itstate(self, state: int) -> None:
        # EPSR writes set exactly IT and T (T stays 1: Thumb only)
        self._write(A.UC_ARM_REG_EPSR, 1 << 24 | (state & 3) << 25 | (state & 0xFC) << 8)

    def _halfword(self, address: int) -> int:
        return int.from_bytes(self.read_memory(address, 2), "little")

    def _block_end(self, pc: int, n: int) -> int:
        """Address after the `n` instructions starting at `pc`."""
        for _ in range(n):
            pc += 4 if self._halfword(pc) >> 11 >= 0x1D else 2
        return pc

    def _block_index(self, address: int) -> int:
        """Instructions of the last entered IT block before `address`."""
        a, i = self._c.it_lo, 0
        while a < address:
            a, i = self._block_end(a, 1), i + 1
        return i

    def _fault(self, err: int | None) -> EngineStop:
        c = self._c
        pc = self.pc
        counted, c.last_counted = c.last_counted, 0
        if (err is None or err == C.UC_ERR_EXCEPTION) and c.last_addr != _NO_ADDRESS:
            # Exception instructions (SVC, BKPT, ...) may have moved pc: report the
            # instruction itself and leave pc on it. It did not retire.
            pc = self.pc = c.last_addr
            if counted:
                c.count -= 1
        else:
            # The hook counts an instruction before it executes: if the stop left pc
            # on the last hooked instruction, that one did not retire.
            if counted and c.last_addr == pc:
                c.count -= 1
            if c.mem_type in _DATA_FAULTS and c.mem_pc not in (pc, _NO_ADDRESS):
                # A data fault inside an IT block: Unicorn finishes the block before
                # it stops. Report the faulting instruction (the rest of its block ran)
                # and count the instructions before it.
                pc = self.pc = c.mem_pc
                if c.it_lo <= pc < c.it_hi:
                    c.count = c.it_base + self._block_index(pc)
        # (the reason names what and where; the faulting pc is EngineStop.pc)
        if err is None:
            reason = "CPU exception: " + _EXCEPTIONS.get(c.intno, f"number {c.intno}")
        elif err == C.UC_ERR_INSN_INVALID:
            reason = f"invalid instruction ({self._opcode(pc)})"
        elif c.mem_type in _MEM_FAULTS:
            reason = f"{_MEM_FAULTS[c.mem_type]} {c.mem_addr:#x} ({c.mem_size} bytes)"
        else:
            reason = _ERR_FAULTS.get(err, f"unicorn error {err}")
        return EngineStop(StopKind.FAULT, pc, reason)

    # -- exceptions ---------------------------------------------------------------------
    # Unicorn (QEMU with the M-profile handled by Unicorn's hooks) models neither exception
    # entry nor return for Cortex-M: QEMU raises EXCP_SWI for SVC and EXCP_EXCEPTION_EXIT
    # for a branch to EXC_RETURN in handler mode, and Unicorn stops. Both are done here in
    # Python, once per exception (ARMv7-M ARM B1.5.6 ExceptionEntry, B1.5.8 ExceptionReturn).
    def interrupt_masked(self, number: int, priority: int = 0) -> bool:
        """PRIMASK or FAULTMASK set, BASEPRI at or above `priority` (NVIC priority
        value, 0 = highest), or a handler running: exceptions do not nest here (every
        configurable priority is treated as equal to the active one)."""
        if self._read(A.UC_ARM_REG_XPSR) & 0x1FF:
            return True
        with self._privileged():
            if self._read(A.UC_ARM_REG_PRIMASK) & 1 or self._read(A.UC_ARM_REG_FAULTMASK) & 1:
                return True
            basepri = self._read(A.UC_ARM_REG_BASEPRI) & 0xFF
        return bool(basepri) and priority >= basepri

    def stop_soon(self) -> None:
        # the code hook has counted the executing instruction: it stops before the next
        c = self._c
        if self._running:
            c.limit = min(c.limit, c.count)

    def interrupt(self, number: int) -> None:
        """Exception entry for exception `number` (16 + IRQ) at the current boundary."""
        if not 2 <= number < 512:
            raise ValueError(f"Cortex-M exception number {number} is out of range")
        self._enter(number, self.pc)

    def _enter(self, number: int, return_address: int) -> None:
        """Push the 8-word frame (R0-R3, R12, LR, return address, xPSR) on the current
        stack, 8-byte aligned when CCR.STKALIGN is set (xPSR bit 9 records the padding);
        LR = EXC_RETURN; IPSR = number; PC = the vector at VTOR + 4 * number."""
        xpsr = self._read(A.UC_ARM_REG_XPSR)
        ipsr = xpsr & 0x1FF
        control = self._read(A.UC_ARM_REG_CONTROL)
        use_psp = not ipsr and control & 2
        with self._privileged():
            sp = self._read(A.UC_ARM_REG_PSP if use_psp else A.UC_ARM_REG_MSP)
        stkalign = self._system_word(_CCR) >> 9 & 1
        pad = (sp >> 2 & 1) & stkalign
        frame = (sp - 0x20) & ~(pad << 2) & 0xFFFF_FFFF
        words = [self._read(A.UC_ARM_REG_R0 + i) for i in range(4)]
        words += [self._read(A.UC_ARM_REG_R12), self._read(A.UC_ARM_REG_LR), return_address & ~1,
                  (xpsr & ~(1 << 9)) | pad << 9]
        self._stack_write(frame, b"".join(w.to_bytes(4, "little") for w in words))
        with self._privileged():
            self._write(A.UC_ARM_REG_PSP if use_psp else A.UC_ARM_REG_MSP, frame)
        self._write(A.UC_ARM_REG_LR, 0xFFFF_FFF1 if ipsr else (0xFFFF_FFFD if use_psp else 0xFFFF_FFF9))
        self._write(A.UC_ARM_REG_IPSR, number)  # handler mode: QEMU switches SP to the MSP
        self._write(A.UC_ARM_REG_APSR_NZCV, xpsr & 0xF000_0000)  # refresh QEMU's mode flags
        vtor = self._system_word(_VTOR) & ~0x7F
        handler = int.from_bytes(self.read_memory(vtor + 4 * number, 4), "little")
        self._write_itstate(0)  # the handler runs outside any IT block (the frame keeps it)
        self._c.it_open = 0
        self.pc = handler

    def _exception(self, intno: int, raw_pc: int) -> EngineStop | None:
        """SVC (entry to SVCall, the SVC retired) or exception return (the branch
        retired); None when done, else the fault to report."""
        c = self._c
        where = c.last_addr
        if intno == _EXCP_SWI:
            with self._privileged():
                masked = self._read(A.UC_ARM_REG_PRIMASK) & 1 or self._read(A.UC_ARM_REG_FAULTMASK) & 1
            vtor = self._system_word(_VTOR) & ~0x7F
            vector = int.from_bytes(self.read_memory(vtor + 4 * 11, 4), "little")
            if masked or self._read(A.UC_ARM_REG_XPSR) & 0x1FF or not vector & 1:
                # the real CPU escalates to HardFault (masked, or SVC in a handler, which
                # this model does not nest) or faults on a vector without the Thumb bit
                # (no handler installed): reported as the SVC's fault
                return self._fault(None)
            c.last_counted = 0  # the SVC retired
            self._enter(11, where + 2)
            return None
        excret = raw_pc | 1  # QEMU has branched to it (bit 0 is the Thumb bit)
        if excret not in (0xFFFF_FFF1, 0xFFFF_FFF9, 0xFFFF_FFFD):
            return EngineStop(StopKind.FAULT, where, f"exception return to invalid EXC_RETURN {excret:#x}")
        c.last_counted = 0
        use_psp = excret & 4
        with self._privileged():
            frame = self._read(A.UC_ARM_REG_PSP if use_psp else A.UC_ARM_REG_MSP)
        data = self.read_memory(frame, 32)
        r = [int.from_bytes(data[i : i + 4], "little") for i in range(0, 32, 4)]
        xpsr = r[7]
        if bool(excret & 8) != (xpsr & 0x1FF == 0):
            return EngineStop(StopKind.FAULT, where, "exception return to thread mode with a stacked IPSR "
                              f"of {xpsr & 0x1FF} (INVPC)")
        for i in range(4):
            self._write(A.UC_ARM_REG_R0 + i, r[i])
        self._write(A.UC_ARM_REG_R12, r[4])
        self._write(A.UC_ARM_REG_LR, r[5])
        sp = (frame + 0x20 + (4 if xpsr >> 9 & 1 and self._system_word(_CCR) >> 9 & 1 else 0)) & 0xFFFF_FFFF
        with self._privileged():
            self._write(A.UC_ARM_REG_PSP if use_psp else A.UC_ARM_REG_MSP, sp)
        self._write(A.UC_ARM_REG_IPSR, xpsr & 0x1FF)
        if excret & 8:  # thread mode, on the stack EXC_RETURN names (SPSEL selects the bank)
            control = self._read(A.UC_ARM_REG_CONTROL)
            if bool(control & 2) != bool(use_psp):
                with self._privileged(keep=True):
                    self._write(A.UC_ARM_REG_CONTROL, (control & ~2) | (2 if use_psp else 0))
        self._write(A.UC_ARM_REG_XPSR_NZCVQG, xpsr)
        self._write(A.UC_ARM_REG_APSR_NZCV, xpsr & 0xF000_0000)  # refresh QEMU's mode flags
        self._c.it_open = 0  # ITSTATE came back with the frame's xPSR
        self.pc = r[6]
        return None

    def _system_word(self, address: int) -> int:
        """A System Control Block register as the CPU's exception logic sees it."""
        return self._bus.read(address, 4) if self._bus is not None else 0

    def _stack_write(self, address: int, data: bytes) -> None:
        for s, a, b in self._pieces(address, len(data)):
            if s.host_offset is None:
                raise ValueError(f"exception stacking at {address:#x} is not in RAM")
        self.write_memory(address, data)

    def _opcode(self, pc: int) -> str:
        try:
            hw = int.from_bytes(self.read_memory(pc, 2), "little")
            if hw >> 11 >= 0x1D:
                hw2 = int.from_bytes(self.read_memory(pc + 2, 2), "little")
                return f"opcode {hw:04x} {hw2:04x}"
            return f"opcode {hw:04x}"
        except ValueError:
            return "opcode unreadable"

    # -- registers --------------------------------------------------------------------
    @property
    def pc(self) -> int:
        _REG_READ(self._uch, A.UC_ARM_REG_PC, self._u32_ref)
        return self._u32.value & ~1

    @pc.setter
    def pc(self, value: int) -> None:
        # bit 0 is the Thumb bit; clearing it would make the next instruction fault
        self._u32.value = (value | 1) & 0xFFFF_FFFF
        _REG_WRITE(self._uch, A.UC_ARM_REG_PC, self._u32_ref)

    def read_register(self, name: str) -> int:
        if name == "pc":
            return self.pc
        try:
            rid = _REGISTERS[name][0]
        except KeyError:
            raise KeyError(f"unknown register {name!r}; known: {', '.join(_REGISTERS)}") from None
        if name in _PRIVILEGED_REGISTERS and name != "control":  # CONTROL reads need no privilege
            with self._privileged():
                return self._read(rid)
        return self._read(rid)

    def write_register(self, name: str, value: int) -> None:
        if name == "pc":
            self.pc = value
            return
        try:
            rid = _REGISTERS[name][1]
        except KeyError:
            raise KeyError(f"unknown register {name!r}; known: {', '.join(_REGISTERS)}") from None
        if name in _PRIVILEGED_REGISTERS:
            with self._privileged(keep=rid == A.UC_ARM_REG_CONTROL):
                self._write(rid, value)
        else:
            self._write(rid, value)
        if name in _PRIVILEGED_REGISTERS or name == "xpsr":
            # QEMU caches privilege/handler mode in its TB flags and register writes
            # do not refresh them; an NZCV write makes Unicorn call arm_rebuild_hflags.
            self._write(A.UC_ARM_REG_APSR_NZCV, self._read(A.UC_ARM_REG_XPSR) & 0xF000_0000)

    def write_registers(self, values: dict[str, int]) -> None:
        # one C call through prebuilt arrays (the binding's batch is slower); the
        # privileged registers go one by one (see write_register)
        ids, vals, n = self._batch_ids, self._batch_vals, 0
        xpsr = None
        for name, value in values.items():
            rid = _BATCH.get(name)
            if rid is None:
                continue
            if name == "pc":
                value |= 1  # the Thumb bit (see the pc setter)
            elif name == "xpsr":
                xpsr = value
            ids[n], vals[n] = rid, value & 0xFFFF_FFFF
            n += 1
        if xpsr is not None:  # refresh QEMU's cached mode flags (see write_register)
            ids[n], vals[n] = A.UC_ARM_REG_APSR_NZCV, xpsr & 0xF000_0000
            n += 1
        if n:
            err = uclib.uc_reg_write_batch(self._uch, ids, self._batch_ptrs, n)
            if err != UC_ERR_OK:
                raise UcError(err)
        for name, value in values.items():
            if name not in _BATCH:
                self.write_register(name, value)

    def reset_cpu(self) -> None:
        """Restore the CPU context captured when the engine was created (Cortex-M reset
        state: Thread mode, privileged, MSP, PRIMASK/BASEPRI/FAULTMASK/CONTROL = 0)."""
        self.load_cpu(self._reset_context)  # ITSTATE = 0

    cpu_snapshots = True

    def save_cpu(self) -> object:
        return self._uc.context_save()  # (all of CPUARMState: banked SPs, FPU, ITSTATE)

    def load_cpu(self, cpu: object) -> None:
        if self._running:
            raise RuntimeError("load_cpu() during run()")
        self._uc.context_restore(cpu)
        self._c.it_open = 0  # (a run starting inside an IT block reads ITSTATE again)
        # see write_register: refresh QEMU's cached privilege/mode flags
        self._write(A.UC_ARM_REG_APSR_NZCV, self._read(A.UC_ARM_REG_XPSR) & 0xF000_0000)

    def _read(self, rid: int) -> int:
        err = _REG_READ(self._uch, rid, self._u32_ref)
        if err != UC_ERR_OK:
            raise UcError(err)
        return self._u32.value

    def _write(self, rid: int, value: int) -> None:
        self._u32.value = value & 0xFFFF_FFFF
        err = _REG_WRITE(self._uch, rid, self._u32_ref)
        if err != UC_ERR_OK:
            raise UcError(err)

    @contextlib.contextmanager
    def _privileged(self, keep: bool = False):
        """Access system registers like a debugger, whatever the CPU's privilege.

        QEMU applies MRS/MSR rules: unprivileged thread mode reads MSP, PSP, PRIMASK,
        BASEPRI, FAULTMASK as 0 and ignores writes to them. So while the CPU is
        unprivileged (CONTROL.nPRIV set, IPSR 0), clear nPRIV around the access and
        set it again afterwards (unless `keep`: the access wrote CONTROL itself)."""
        control = self._read(A.UC_ARM_REG_CONTROL)
        unprivileged = control & 1 and not self._read(A.UC_ARM_REG_XPSR) & 0x1FF
        if unprivileged:
            self._set_control_in_handler_mode(control & ~1)
        try:
            yield
        finally:
            if unprivileged and not keep:
                self._set_control_in_handler_mode(self._read(A.UC_ARM_REG_CONTROL) | 1)

    def _set_control_in_handler_mode(self, control: int) -> None:
        # Handler mode is privileged and ignores CONTROL.SPSEL writes (ARMv7-M), so a
        # CONTROL write there changes nPRIV without swapping stack pointers; entering
        # and leaving handler mode through IPSR swaps SP banks both ways.
        self._write(A.UC_ARM_REG_IPSR, 1)
        self._write(A.UC_ARM_REG_CONTROL, control)
        self._write(A.UC_ARM_REG_IPSR, 0)

    # -- raw memory -------------------------------------------------------------------
    def _pieces(self, address: int, size: int):
        """(segment, start, end) pieces covering [address, address+size)."""
        a, end = address, address + size
        while a < end:
            for s in self._segments:
                if s.start <= a < s.end:
                    b = min(end, s.end)
                    yield s, a, b
                    a = b
                    break
            else:
                raise ValueError(f"address {a:#x} is not mapped")

    def read_memory(self, address: int, size: int) -> bytes:
        if size <= 0:
            return b""
        out = bytearray()
        for s, a, b in self._pieces(address, size):
            if s.host_offset is None:
                out += self._shadow_read(a, b - a)
            else:
                o = s.host_offset + a - s.start
                out += self._mv[o : o + b - a]
        return bytes(out)

    def write_memory(self, address: int, data: bytes) -> None:
        # (bytes and views of them cannot change under us: no copy)
        data = memoryview(data if isinstance(data, bytes) or (isinstance(data, memoryview)
                                                              and isinstance(data.obj, bytes))
                          else bytes(data)).cast("B")
        pos = 0
        for s, a, b in self._pieces(address, len(data)):
            n = b - a
            if s.host_offset is None:
                self._shadow_write(a, data[pos : pos + n])
            else:
                o = s.host_offset + a - s.start
                self._mv[o : o + n] = data[pos : pos + n]
                first = o // PAGE_SIZE
                _ucount.mark_dirty(self._caddr, first, (o + n - 1) // PAGE_SIZE - first + 1)
                self._drop_code(o, n)
                if self._code is not None and self._code[2] <= o + n and o < self._code[2] + self._code[1]:
                    self._update_it_bits()
            pos += n

    def write_pages(self, address: int, pages: Sequence[bytes]) -> None:
        """write_memory of the pages one after the other; whole pages keep these very
        bytes objects as the engine's saved view of them, so the next save neither copies
        nor hashes them (a caller passing the same list object again, e.g. the volatile
        fill of one boot number, makes a whole region's digest a lookup)."""
        known = self._adopted.get(id(pages))
        if known is not None and known[0] is pages and known[1] == address:  # seen: checked, joined
            _, _, first, data, region_digest = known
            if region_digest is None and self._regions[self._region_of[first]] == (first, len(pages)):
                # used again (a campaign's fill): worth its digest, a hash of every page
                region_digest = sum(_page_digest(first + j, p) for j, p in enumerate(pages)) & _MASK64
                self._adopted[id(pages)] = (pages, address, first, data, region_digest)
            whole = region_digest is not None or self._regions[self._region_of[first]] == (first, len(pages))
        else:
            data = b"".join(pages)
            piece = next(iter(self._pieces(address, len(data))), None) if data else None
            if (address % PAGE_SIZE or piece is None or piece[2] - piece[1] != len(data)
                    or piece[0].host_offset is None or set(map(len, pages)) != {PAGE_SIZE}):
                self.write_memory(address, data)
                return
            first = (piece[0].host_offset + address - piece[0].start) // PAGE_SIZE
            region_digest = None  # (computed when the same pages come again, or when needed)
            whole = self._regions[self._region_of[first]] == (first, len(pages))
            if whole:
                if len(self._adopted) > 16:
                    self._adopted.clear()
                self._adopted[id(pages)] = (pages, address, first, data, None)
        self.write_memory(address, data)  # marks the pages dirty: a save finds them unchanged
        old, base = self._base, list(self._base)
        base[first : first + len(pages)] = pages
        digest = list(self._digest)
        if whole:
            digest[self._region_of[first]] = region_digest
        else:
            for j, p in enumerate(pages):
                i = first + j
                r = self._region_of[i]
                if old[i] is not p and digest[r] is not None:
                    digest[r] = (digest[r] + _page_digest(i, p) - _page_digest(i, old[i])) & _MASK64
        self._base, self._digest = base, tuple(digest)

    def _update_it_bits(self) -> None:
        """Recompute the IT-site bitmap of the code window from its bytes."""
        start, size, off = self._code
        hw = np.frombuffer(self._mv[off : off + size], dtype="<u2")
        it = ((hw & 0xFF00) == 0xBF00) & ((hw & 0xF) != 0)
        ctypes.memmove(self._code_bits, np.packbits(it, bitorder="little").tobytes(), size // 16)

    def _drop_code(self, offset: int, size: int) -> None:
        """Invalidate translated blocks over host bytes [offset, offset+size), through
        every executable mapping of them (the bytes may be code seen via an alias)."""
        for s in self._segments:
            if s.executable and s.host_offset is not None:
                lo = max(offset, s.host_offset)
                hi = min(offset + size, s.host_offset + s.end - s.start)
                if lo < hi:
                    self._uc.ctl_remove_cache(s.start + lo - s.host_offset, s.start + hi - s.host_offset)

    # MMIO ranges have no memory behind them; raw access sees a side-effect-free shadow.
    def _shadow_read(self, address: int, size: int) -> bytes:
        out = bytearray()
        for a in range(address, address + size):
            page = self._mmio_shadow.get(a // PAGE_SIZE)
            out.append(page[a % PAGE_SIZE] if page else 0)
        return bytes(out)

    def _shadow_write(self, address: int, data) -> None:
        for i, v in enumerate(bytes(data)):
            a = address + i
            self._mmio_shadow.setdefault(a // PAGE_SIZE, bytearray(PAGE_SIZE))[a % PAGE_SIZE] = v

    # -- access watching ----------------------------------------------------------------
    def watch_memory(self, ranges, callback, kinds: str = "rw") -> None:
        for handle in self._watch_hooks:
            self._uc.hook_del(handle)
        self._watch_hooks = []
        if not ranges or callback is None:
            return

        def note(uc, access, address, size, value, user):
            # during a run `instructions` excludes the accessing instruction (counted on entry)
            write = access == C.UC_MEM_WRITE
            callback("w" if write else "r", address, size, value & ((1 << 8 * size) - 1) if write else None,
                     uc.reg_read(A.UC_ARM_REG_PC), self.instructions)

        hooks = _watch_hook_types(kinds)
        for start, end in merge_ranges(ranges):  # overlapping hooks would report an access twice
            self._watch_hooks.append(self._uc.hook_add(hooks, note, begin=start, end=end - 1))

    def record_pcs(self, count: int):
        if count <= 0:
            if self._trace is not None:
                self._use_code_hook(_ucount.CODE_HOOK)
            self._c.trace, self._c.trace_len, self._trace = None, 0, None
            return None
        # (holes, 0xFFFFFFFF, only where the engine itself retires an instruction: an IT
        # instruction whose block a stop splits, a run resumed inside a block)
        if self._trace is None:
            self._use_code_hook(_ucount.CODE_HOOK_TRACED)
        self._trace = array.array("I", [_NO_PC]) * count
        c = self._c
        c.trace_base, c.trace_len = c.count, count
        c.trace = self._trace.buffer_info()[0]
        return self._trace

    # -- snapshots --------------------------------------------------------------------
    def save(self) -> object:
        self._snap_pages()
        c = self._c
        shadow = {k: bytes(v) for k, v in self._mmio_shadow.items()} if self._mmio_shadow else {}
        return _State(self._token, self._uc.context_save(), self._base, shadow, c.count, self._digest)

    def _snap_pages(self) -> None:
        """Make `_base` (and its digests) the memory as it is now."""
        if self._running:
            raise RuntimeError("save() during run()")
        dirty = _ucount.take_dirty(self._caddr)  # a superset of the pages written since
        if dirty:
            old, new = self._base, _ucount.snap_pages(self._host, PAGE_SIZE, self._base, dirty)
            digest, region_of = list(self._digest), self._region_of
            for i in dirty:
                if new[i] is not old[i]:
                    r = region_of[i]
                    if digest[r] is not None:
                        digest[r] = (digest[r] + _page_digest(i, new[i]) - _page_digest(i, old[i])) & _MASK64
            self._base, self._digest = new, tuple(digest)

    def load(self, state: object) -> None:
        if not isinstance(state, _State) or state.owner is not self._token:
            raise ValueError("state was not saved by this engine")
        if self._running:
            raise RuntimeError("load() during run()")
        dirty = _ucount.take_dirty(self._caddr)
        if state.pages is not self._base:
            dirty = sorted(set(dirty).union(_ucount.ident_diff(self._base, state.pages)))
        else:
            dirty.sort()
        if dirty:
            _ucount.restore_pages(self._caddr, self._host, PAGE_SIZE, state.pages, dirty)
        self._base, self._digest = state.pages, state.digest
        self._uc.context_restore(state.context)
        c = self._c
        c.count = state.count
        c.last_counted = c.stop_pending = c.it_open = 0
        self._mmio_shadow = {k: bytearray(v) for k, v in state.mmio_shadow.items()}

    def state_key(self, state: object | None, ranges: Sequence[tuple[int, int]] | None = None) -> StateKey:
        """Pages (by their running digests), Unicorn's CPU context without its header (which
        holds bookkeeping that differs between saves of one state; it includes ITSTATE)
        and the MMIO shadow; not the counter. With `ranges`: their pages instead of all,
        and no CPU context. `state` None: the current state (no save needed)."""
        context = None
        if state is None:
            self._snap_pages()
            pages, digests = self._base, self._digest
            shadow = tuple(sorted((k, bytes(v)) for k, v in self._mmio_shadow.items()))
            if ranges is None:
                if self._scratch is None:
                    self._scratch = self._uc.context_save()
                else:
                    self._uc.context_update(self._scratch)
                context = self._scratch
        else:
            if not isinstance(state, _State) or state.owner is not self._token:
                raise ValueError("state was not saved by this engine")
            pages, digests = state.pages, state.digest
            shadow = tuple(sorted(state.mmio_shadow.items()))
            context = state.context
        if ranges is not None:
            whole, single, inside = self._page_plan(tuple(ranges))
            if any(digests[r] is None for r in whole):  # (only these: a volatile fill's may be unknown)
                digests = self._known_digests(pages, digests, whole)
            digest = hash((tuple(digests[r] for r in whole), tuple(pages[i] for i in single), shadow))
            return StateKey(digest, (shadow, _PageView(pages, inside)))
        if None in digests:
            digests = self._known_digests(pages, digests)
        raw = bytes(context)
        cpu = raw[len(raw) - int.from_bytes(raw[:8], "little"):]  # header: size_t context_size first
        extra = (cpu, shadow)
        return StateKey(hash((digests, extra)), (extra, pages))

    def _known_digests(self, pages: list, digests: tuple, regions: Sequence[int] | None = None) -> tuple:
        """`digests` with the unknown ones (of `regions`, default all) computed from
        `pages` (kept if current)."""
        wanted = range(len(digests)) if regions is None else regions
        known = tuple(d if d is not None or r not in wanted else
                      sum(_page_digest(i, pages[i]) for i in range(first, first + n)) & _MASK64
                      for r, (d, (first, n)) in enumerate(zip(digests, self._regions)))
        if pages is self._base:
            self._digest = known
        return known

    def _page_plan(self, ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, ...], tuple[int, ...], bytes]:
        """(storage regions wholly in `ranges`, other pages touching them, 1 for each page
        of either, 0 for the others): cached."""
        plan = self._plans.get(ranges)
        if plan is None:
            pages: set[int] = set()
            for start, end in ranges:
                for s, a, b in self._pieces(start, end - start):
                    if s.host_offset is not None:
                        o = s.host_offset + a - s.start
                        pages.update(range(o // PAGE_SIZE, (o + b - a - 1) // PAGE_SIZE + 1))
            inside = bytes(int(i in pages) for i in range(self._npages))
            whole = tuple(r for r, (first, n) in enumerate(self._regions) if pages.issuperset(range(first, first + n)))
            for r in whole:
                first, n = self._regions[r]
                pages.difference_update(range(first, first + n))
            plan = self._plans[ranges] = (whole, tuple(sorted(pages)), inside)
        return plan

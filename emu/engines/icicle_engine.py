"""MSP430X engine on icicle-emu (a SLEIGH-based JIT; Unicorn has no MSP430).

icicle counts instructions exactly (`icount_limit`) and runs at native JIT speed. It has
no MMIO callbacks, no memory hooks and no snapshots, so this adapter builds them:

* MMIO: peripheral pages are mapped with no access. An access traps (the faulting
  instruction is rolled back); the adapter opens just the bytes touched (read-only for a
  read, read/write for a write), fills read values from the bus, steps the one
  instruction, and replays traps until the instruction completes. Writes reach the bus
  after the instruction retires, reads' side effects happen once.
* Snapshots: writable memory is tracked in 1 KiB pages. After `save`/`load` every page is
  write-protected; the first CPU write to a page traps, marks it dirty and re-opens it.
  `save` copies only pages dirtied since the last save/load; `load` rewrites only pages
  that differ. Both take microseconds.
* ISA repairs: instructions icicle mis-executes (see docs/msp430-divergences.md) get a
  breakpoint and are executed in Python by `msp430_fixups`.
* Interrupts: icicle has no interrupt logic; `interrupt` performs the MSP430X acceptance
  sequence (SLAU367 "Interrupt acceptance") in Python between runs. icicle's RETI (SLEIGH)
  restores SR and the 20-bit PC from that frame (tests/engines/test_interrupts.py).

icicle counts an instruction whose data access faults in `icount` although it does not
retire (fetch and decode faults are not counted); the adapter subtracts it back so the
counting rule of `base` holds.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Sequence

import icicle

from . import msp430_fixups
from .base import Access, Engine, EngineStop, Mapping, MmioBus, StateKey, StopKind

try:  # (a helper of the Unicorn engine's extension: indices where two lists hold other objects)
    from ._ucount import ident_diff as _ident_diff
except ImportError:  # pragma: no cover - build problem; the plain loop does the same
    def _ident_diff(a: list, b: list) -> list[int]:
        return [i for i, (x, y) in enumerate(zip(a, b)) if x is not y]

__all__ = ["IcicleEngine"]

P = icicle.MemoryProtection
EC = icicle.ExceptionCode
RS = icicle.RunStatus

PAGE = 0x400
GIE, SCG0 = 0x0008, 0x0040  # status register bits
_PROT = {Access.R: P.ReadOnly, Access.RW: P.ReadWrite, Access.RX: P.ExecuteRead, Access.RWX: P.ExecuteReadWrite}
# what a tracked page becomes while clean: writes trap
_CLEAN = {Access.RW: P.ReadOnly, Access.RWX: P.ExecuteRead}

REGISTERS = ("pc", "sp", "sr") + tuple(f"r{i}" for i in range(3, 16))
_ICICLE_NAME = {"pc": "PC", "sp": "SP", "sr": "SR", **{f"r{i}": f"R{i}" for i in range(3, 16)}}
_ICICLE_NAME.update({"r0": "PC", "r1": "SP", "r2": "SR"})

# icicle's enums are not hashable: key by name
_FAULT_TEXT = {
    "ReadUnmapped": "read of unmapped address",
    "WriteUnmapped": "write to unmapped address",
    "ReadPerm": "read not permitted at",
    "WritePerm": "write not permitted at",
    "ExecViolation": "execution not permitted at",
    "ReadUnaligned": "unaligned read at",
    "WriteUnaligned": "unaligned write at",
    "InvalidInstruction": "invalid instruction at",
    "SelfModifyingCode": "self-modifying code (not supported by the MSP430 engine): the "
                         "program wrote into code it had already run, at pc",
}


class _FixupCpu:
    """The CPU as `msp430_fixups.execute` sees it: memory accesses to peripheral
    registers go through the bus, like the CPU's own."""

    def __init__(self, engine: "IcicleEngine"):
        self._engine = engine
        self.read_register = engine.read_register
        self.write_register = engine.write_register

    def read_memory(self, address: int, size: int) -> bytes:
        e = self._engine
        if e._in_mmio(address):
            return e._bus.read(address, size).to_bytes(size, "little")
        return e.read_memory(address, size)

    def write_memory(self, address: int, data: bytes) -> None:
        e = self._engine
        if e._in_mmio(address):
            e._bus.write(address, len(data), int.from_bytes(data, "little"))
        else:
            e.write_memory(address, data)


class _ProbeCpu(_FixupCpu):
    """The CPU as `msp430_fixups.data_accesses` sees it: peripheral registers read as
    zeros (no side effects), writes are never made."""

    def read_memory(self, address: int, size: int) -> bytes:
        e = self._engine
        return bytes(size) if e._in_mmio(address) else e.read_memory(address, size)

    def write_memory(self, address: int, data: bytes) -> None:  # pragma: no cover - never called
        raise AssertionError("a probe does not write")


_DATA_FAULTS = ("ReadUnmapped", "WriteUnmapped", "ReadPerm", "WritePerm", "ReadUnaligned", "WriteUnaligned")


_DATA_FAULT_CODES = tuple(getattr(EC, name) for name in _DATA_FAULTS)


def _counted(code) -> bool:
    """icicle counts an instruction whose data access faults (then rolls it back), but
    not one that fails to fetch or decode."""
    return code in _DATA_FAULT_CODES


@dataclass(frozen=True)
class _State:
    registers: tuple[int, ...]
    pages: tuple[bytes, ...]
    instructions: int


class IcicleEngine(Engine):
    register_names = REGISTERS
    _stop_watched = False  # stop_soon was called during a watched step
    watch_cost = 3.5e-5  # watch_memory single-steps with the instruction model

    def __init__(self) -> None:
        self._vm = icicle.Icicle("msp430")
        self._bus: MmioBus | None = None
        self._mmio: list[Mapping] = []
        self._base = 0  # vm.icount at the last counter reset
        self._exits: set[int] = set()
        self._fixups: set[int] = set()
        # dirty tracking
        self._pages: list[tuple[int, int, Access]] = []  # (start, size, access) of tracked pages
        self._page_index: dict[int, int] = {}  # page start -> index
        self._shadow: list[bytes] = []
        self._dirty: set[int] = set()
        self._tracking = False
        # icicle never drops translated code (not on mem_write, protect or remap), so a
        # write from Python over executable memory after a run needs a fresh VM
        self._mappings: list[Mapping] = []
        self._code_ranges: list[tuple[int, int]] = []
        self._ran = False
        self._stale_code = False
        self._widths: dict[int, int] = {}  # pc -> operand width of MMIO instructions
        self._stop_soon = False
        self._watch: tuple | None = None  # watch_memory: (ranges, callback, kinds)
        self._armed: set[int] = set()  # exits this VM has had (see set_exits)
        self.unwatched_instructions = 0  # watched steps whose accesses the model could not say
        self._picks: dict[tuple, object] = {}  # state_key(ranges=...): ranges -> page picker

    # -- memory map -------------------------------------------------------------------
    def map(self, mappings: Sequence[Mapping], bus: MmioBus) -> None:
        self._bus = bus
        self._mappings = list(mappings)
        for m in mappings:
            if m.mmio:
                self._vm.mem_map(m.start, m.size, P.NoAccess)
                self._mmio.append(m)
                continue
            self._vm.mem_map(m.start, m.size, _PROT[m.access])
            for start in range(m.start, m.end, PAGE):
                size = min(PAGE, m.end - start)
                self._page_index[start] = len(self._pages)
                self._pages.append((start, size, m.access))
                self._shadow.append(bytes(size))

    def _in_mmio(self, address: int) -> bool:
        for m in self._mmio:
            if m.start <= address < m.end:
                return True
        return False

    def set_exits(self, addresses: Sequence[int]) -> None:
        for a in self._exits - self._fixups:
            self._vm.remove_breakpoint(a)
        self._exits = set(addresses)
        for a in self._exits:
            self._vm.add_breakpoint(a)
        # icicle checks breakpoints when it translates a block: one added inside a block
        # translated before is never hit, so code that may have run needs a fresh VM
        new = self._exits - self._armed
        if new:
            self._armed |= new
            if self._ran:
                self._stale_code = True

    def scan_code(self, address: int, code: bytes) -> None:
        """Place repair breakpoints for instructions icicle mis-executes in `code`, and
        remember it as code (see `_touches_code`)."""
        self._code_ranges.append((address, address + len(code)))
        for a in msp430_fixups.fixup_sites(code, address):
            if a not in self._fixups:
                self._fixups.add(a)
                self._vm.add_breakpoint(a)

    # -- running ----------------------------------------------------------------------
    @property
    def instructions(self) -> int:
        return self._vm.icount - self._base

    def reset_counter(self) -> None:
        self._base = self._vm.icount

    def run(self, budget: int) -> EngineStop:
        if self._watch is not None:
            return self._run_watched(budget)
        return self._run(budget)

    def _run(self, budget: int) -> EngineStop:
        if self._stale_code:
            self._rebuild()
        self._ran = True
        vm = self._vm
        limit = vm.icount + budget
        while True:
            vm.icount_limit = limit
            status = vm.run()
            if status == RS.InstructionLimit:
                # budget used up on an exit: the program has completed (as on Unicorn)
                kind = StopKind.EXIT if vm.pc in self._exits else StopKind.LIMIT
                return EngineStop(kind, vm.pc)
            if status == RS.Breakpoint:
                pc = vm.pc
                if pc in self._exits:
                    return EngineStop(StopKind.EXIT, pc)
                if pc in self._fixups:
                    msp430_fixups.execute(_FixupCpu(self), pc)
                    vm.icount += 1
                    if vm.icount >= limit or self._stop_soon:
                        self._stop_soon = False
                        return EngineStop(StopKind.LIMIT, vm.pc)
                    continue
                raise RuntimeError(f"unexpected breakpoint at {pc:#x}")
            if status != RS.UnhandledException:
                return EngineStop(StopKind.FAULT, vm.pc, f"engine stopped: {status.name}")
            code, address = vm.exception_code, vm.exception_value
            if code == EC.CpuStateChanged:
                # a write to SR's GIE/CPUOFF bits (EINT, ...): the instruction retired and
                # icicle only reports it (it models no interrupts or sleep): go on
                if vm.icount >= limit:
                    return EngineStop(StopKind.EXIT if vm.pc in self._exits else StopKind.LIMIT, vm.pc)
                continue
            if _counted(code):  # icicle counted the data access's instruction: it did not retire
                vm.icount -= 1
                if vm.icount >= limit:  # icicle began it with the budget already used up
                    return EngineStop(StopKind.EXIT if vm.pc in self._exits else StopKind.LIMIT, vm.pc)
            if code in (EC.ReadPerm, EC.WritePerm) and self._in_mmio(address):
                fault = self._complete_mmio(code, address)
                if fault:
                    self._stop_soon = False
                    return fault
                if vm.icount >= limit or self._stop_soon:
                    self._stop_soon = False
                    return EngineStop(StopKind.LIMIT, vm.pc)
                continue
            if code == EC.WritePerm and self._tracking and self._mark_dirty(address):
                continue
            return EngineStop(StopKind.FAULT, vm.pc, self._describe(code, address))

    def _describe(self, code, address: int) -> str:
        name = str(code).rpartition(".")[2]
        text = _FAULT_TEXT.get(name)
        if text is None:
            return f"{name} (value {address:#x})"
        if code in (EC.InvalidInstruction, EC.SelfModifyingCode):
            return f"{text} {self._vm.pc:#x}"
        return f"{text} {address:#x}"

    # -- MMIO completion ----------------------------------------------------------------
    def _access_width(self, pc: int) -> int:
        """Operand width of the instruction at pc: 1, 2 or 4 (20-bit .A in 32 bits).
        Cached: code changes only by flashing, which rebuilds the cache with the VM."""
        width = self._widths.get(pc)
        if width is None:
            width = self._widths[pc] = self._decode_width(pc)
        return width

    def _decode_width(self, pc: int) -> int:
        word = int.from_bytes(self._vm.mem_read(pc, 2), "little")
        if word & 0xF800 == 0x1800:  # MSP430X extension word
            nxt = int.from_bytes(self._vm.mem_read(pc + 2, 2), "little")
            al, bw = (word >> 6) & 1, (nxt >> 6) & 1
            return {(1, 0): 2, (1, 1): 1, (0, 1): 4}.get((al, bw), 2)
        if word < 0x1000:  # MSP430X address instructions (MOVA, ...): 20-bit
            return 4
        if word >= 0x4000 or 0x1000 <= word < 0x1400:
            return 1 if (word >> 6) & 1 else 2
        return 2

    def _complete_mmio(self, code, address: int) -> EngineStop | None:
        vm, bus = self._vm, self._bus
        width = self._access_width(vm.pc)
        reads: dict[int, int] = {}
        writes: set[int] = set()
        opened: list[int] = []
        try:
            for _ in range(16):
                if code in (EC.ReadPerm, EC.WritePerm) and self._in_mmio(address):
                    a = address if width == 1 else address & ~1
                    if code == EC.ReadPerm and a not in reads:
                        value = bus.read(a, width)
                        reads[a] = value
                        vm.mem_write(a, value.to_bytes(width, "little"))  # ignores protection
                        vm.mem_protect(a, width, P.ReadOnly)
                    else:
                        writes.add(a)
                        vm.mem_protect(a, width, P.ReadWrite)
                    opened.append(a)
                elif not (code == EC.WritePerm and self._tracking and self._mark_dirty(address)):
                    return EngineStop(StopKind.FAULT, vm.pc, self._describe(code, address))
                status = vm.step(1)
                if status != RS.UnhandledException or vm.exception_code == EC.CpuStateChanged:
                    break  # (CpuStateChanged: it retired, having written SR)
                code, address = vm.exception_code, vm.exception_value
                if _counted(code):  # rolled back: try again with this access allowed
                    vm.icount -= 1
            else:
                return EngineStop(StopKind.FAULT, vm.pc, "instruction touches too many peripheral registers")
            # the instruction has retired (counted) by now; its writes happen during it, at
            # the count its reads saw (a timer started by a write counts from that instruction)
            vm.icount -= 1
            try:
                for a in sorted(writes):
                    bus.write(a, width, int.from_bytes(vm.mem_read(a, width), "little"))
            finally:
                vm.icount += 1
            return None
        finally:
            for a in opened:
                vm.mem_protect(a, width, P.NoAccess)

    # -- interrupts ------------------------------------------------------------------------
    def stop_soon(self) -> None:
        self._stop_soon = True  # checked when the MMIO instruction has completed
        self._stop_watched = True  # and by _run_watched, whose one-instruction runs it ends too

    def interrupt_masked(self, number: int, priority: int = 0) -> bool:
        return not self.read_register("sr") & GIE

    def interrupt(self, number: int) -> None:
        """MSP430X interrupt acceptance (SLAU367 4.3.4.1): push PC[15:0], then the SR word
        with PC[19:16] in its bits 15:12 (SR[11:0] below); clear SR except SCG0 (GIE,
        CPUOFF, OSCOFF, SCG1 cleared: the CPU leaves any low-power mode); PC = the 16-bit
        word at the vector address `number`. Retires no instruction."""
        if not 0xFF80 <= number <= 0xFFFC or number & 1:
            raise ValueError(f"MSP430 interrupt vector address {number:#x} is not in 0xFF80-0xFFFC")
        cpu = _FixupCpu(self)  # stack writes go where the CPU's would (dirty tracking, MMIO)
        pc, sr = self._vm.pc & 0xFFFFF, self.read_register("sr")
        sp = (self.read_register("sp") - 2) & 0xFFFFF
        cpu.write_memory(sp, (pc & 0xFFFF).to_bytes(2, "little"))
        sp = (sp - 2) & 0xFFFFF
        cpu.write_memory(sp, (((pc >> 4) & 0xF000) | (sr & 0x0FFF)).to_bytes(2, "little"))
        self.write_register("sp", sp)
        self.write_register("sr", sr & SCG0)
        self._vm.pc = int.from_bytes(self._vm.mem_read(number, 2), "little")

    # -- registers and memory --------------------------------------------------------------
    @property
    def pc(self) -> int:
        return self._vm.pc

    @pc.setter
    def pc(self, value: int) -> None:
        self._vm.pc = value

    def read_register(self, name: str) -> int:
        return self._vm.reg_read(_ICICLE_NAME[name])

    def write_register(self, name: str, value: int) -> None:
        self._vm.reg_write(_ICICLE_NAME[name], value & 0xFFFFF)

    def read_memory(self, address: int, size: int) -> bytes:
        return bytes(self._vm.mem_read(address, size))

    def write_memory(self, address: int, data: bytes) -> None:
        # icicle's mem_write ignores page permissions, which is what flashing needs
        data = bytes(data)
        self._note_code_write(address, data)
        self._vm.mem_write(address, data)
        if self._tracking:
            for start in range(address & ~(PAGE - 1), address + len(data), PAGE):
                self._mark_dirty(start)

    def _note_code_write(self, address: int, data: bytes) -> None:
        """Before a write from Python: if it changes code that already ran, the next run
        needs a fresh VM (icicle keeps translated code forever)."""
        if self._ran and not self._stale_code and self._touches_code(address, data):
            self._stale_code = True

    def _touches_code(self, address: int, data: bytes) -> bool:
        """Does writing `data` change bytes of the flashed code (`scan_code` segments)?"""
        end = address + len(data)
        for lo, hi in self._code_ranges:
            a, b = max(lo, address), min(hi, end)
            if a < b and self._vm.mem_read(a, b - a) != data[a - address : b - address]:
                return True
        return False

    def _rebuild(self) -> None:
        """Move the whole state to a new icicle VM (empty code cache)."""
        old, vm = self._vm, icicle.Icicle("msp430")
        for m in self._mappings:
            vm.mem_map(m.start, m.size, P.NoAccess if m.mmio else _PROT[m.access])
            if not m.mmio:
                vm.mem_write(m.start, bytes(old.mem_read(m.start, m.size)))
        if self._tracking:
            for index, (start, size, access) in enumerate(self._pages):
                if index not in self._dirty and access in _CLEAN:
                    vm.mem_protect(start, size, _CLEAN[access])
        for a in self._exits | self._fixups:
            vm.add_breakpoint(a)
        self._armed = set(self._exits)
        self._ran = False
        for name in REGISTERS:
            vm.reg_write(_ICICLE_NAME[name], old.reg_read(_ICICLE_NAME[name]))
        vm.icount = old.icount
        self._vm = vm
        self._stale_code = False
        self._widths.clear()

    # -- access watching ----------------------------------------------------------------
    def watch_memory(self, ranges, callback, kinds: str = "rw") -> None:
        # icicle has no memory hooks: single-step, and before each step let the exact
        # instruction model (msp430_fixups) say what the instruction will access
        if kinds not in ("rw", "w"):
            raise ValueError(f"watch_memory kinds must be 'rw' or 'w', not {kinds!r}")
        self._watch = (tuple((a, b) for a, b in ranges), callback, kinds) if ranges and callback else None
        self.unwatched_instructions = 0

    def _run_watched(self, budget: int) -> EngineStop:
        ranges, callback, kinds = self._watch
        probe = _ProbeCpu(self)
        stop = EngineStop(StopKind.LIMIT, self.pc)
        for _ in range(budget):
            pc, index = self.pc, self.instructions
            try:
                accesses = msp430_fixups.data_accesses(probe, pc)
            except NotImplementedError:  # an MSP430X form the model lacks: not reported
                accesses = None
            self._stop_watched = False
            stop = self._run(1)
            if self.instructions == index:  # did not retire (exit, fault)
                return stop
            if accesses is None:
                self.unwatched_instructions += 1
                continue
            for kind, address, size, _ in accesses:
                if kind in kinds and any(address < b and a < address + size for a, b in ranges):
                    value = int.from_bytes(self.read_memory(address, size), "little") if kind == "w" else None
                    callback(kind, address, size, value, pc, index)
            if stop.kind != StopKind.LIMIT or self._stop_watched:  # (stop_soon: as _run does)
                return stop
        return stop

    # -- snapshots ---------------------------------------------------------------------
    def _mark_dirty(self, address: int) -> bool:
        index = self._page_index.get(address & ~(PAGE - 1))
        if index is None:
            return False
        start, size, access = self._pages[index]
        if not start <= address < start + size or index in self._dirty:
            return False
        self._dirty.add(index)
        if access in _CLEAN:
            self._vm.mem_protect(start, size, _PROT[access])
        return True

    def _sync_dirty(self) -> None:
        vm = self._vm
        for index in self._dirty:
            start, size, access = self._pages[index]
            self._shadow[index] = bytes(vm.mem_read(start, size))
            if access in _CLEAN:
                vm.mem_protect(start, size, _CLEAN[access])
        self._dirty.clear()

    def _start_tracking(self) -> None:
        if self._tracking:
            return
        vm = self._vm
        for index, (start, size, access) in enumerate(self._pages):
            self._shadow[index] = bytes(vm.mem_read(start, size))
            if access in _CLEAN:
                vm.mem_protect(start, size, _CLEAN[access])
        self._dirty.clear()
        self._tracking = True

    def save(self) -> _State:
        self._start_tracking()
        self._sync_dirty()
        vm = self._vm
        regs = tuple(vm.reg_read(_ICICLE_NAME[r]) for r in REGISTERS)
        return _State(regs, tuple(self._shadow), vm.icount - self._base)

    def load(self, state: object) -> None:
        assert isinstance(state, _State)
        self._start_tracking()
        vm = self._vm
        shadow = self._shadow
        # pages written since, or held as other objects than the state's (a C loop finds those)
        changed = self._dirty.union(_ident_diff(shadow, list(state.pages)))
        for index in sorted(changed):
            page = state.pages[index]
            start, size, access = self._pages[index]
            if index in self._dirty or shadow[index] != page:
                self._note_code_write(start, page)
                vm.mem_write(start, page)
            shadow[index] = page
            if index in self._dirty and access in _CLEAN:
                vm.mem_protect(start, size, _CLEAN[access])
        self._dirty.clear()
        for name, value in zip(REGISTERS, state.registers):
            vm.reg_write(_ICICLE_NAME[name], value)
        self._base = vm.icount - state.instructions

    def state_key(self, state: object | None, ranges: Sequence[tuple[int, int]] | None = None) -> StateKey:
        """Registers and pages (what `load` restores), not the counter. With `ranges`: the
        pages touching them, without registers (`state` None: the current state)."""
        if state is None:
            state = self.save()
        assert isinstance(state, _State)
        if ranges is None:
            parts = (state.registers, state.pages)
        else:
            ranges = tuple(ranges)
            pick = self._picks.get(ranges)
            if pick is None:
                index = [i for i, (start, size, _) in enumerate(self._pages)
                         if any(start < b and a < start + size for a, b in ranges)]
                pick = self._picks[ranges] = (lambda pages: ()) if not index else (
                    lambda pages, get=operator.itemgetter(*index): (get(pages),) if len(index) == 1 else get(pages))
            parts = ((), pick(state.pages))
        return StateKey(hash(parts), parts)

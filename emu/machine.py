"""A board, a CPU engine, peripherals and power: the emulated device.

`Machine` owns the power-failure semantics everything else relies on:

* Loading an ELF is flashing: PT_LOAD segments are written at their load addresses once.
  A reboot reloads nothing; non-volatile memory keeps exactly what the firmware wrote.
* A power failure "after K instructions" means exactly K instructions retired in that
  power-on period. At a failure all volatile memory, registers and peripheral state are
  lost. At the next power-on volatile memory and registers hold what `volatile_init` says
  (random from the seed, zeros, or what they held), then the board's reset rule applies.
* A run ends `completed` when the CPU is about to execute a branch to itself, reaches
  `until`, or waits for host input that is not there (it enters `proto_wait_input`, the
  project firmware's wait for a UART byte, while the UART input is empty: the firmware
  has done what it can and now waits for the host); `crash` on an invalid instruction or
  bad access; `timeout` when `max_instructions` (all periods together) run out.
* Runs are deterministic: same ELF, options and seed give the same result. `state_key()`
  is the state that decides the rest of a run (all but the instruction counters and the
  UART output already sent), for campaigns that stop a trial once it converges (`Probe`).
* Interrupts: peripherals request them (`Peripheral.irq_pending`); the machine accepts a
  pending, unmasked one at the boundary before the next instruction it runs (acceptance
  is not an instruction and is not counted) and stops its engine runs at the instruction
  counts where a peripheral announces a request (`irq_next`), so no per-instruction
  callback is needed. While a request is pending but masked the machine steps one
  instruction at a time until the CPU unmasks it (docs/semantics.md, "Interrupts").
  `supply` is the supply voltage that voltage monitors watch (set by `emu.power`).
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .boards import Board, board_for_elf_machine, get_board
from .elf import ElfImage
from .engines import create_engine
from .engines.base import Engine, EngineStop, Mapping, StopKind
from .errors import EmuError
from .peripherals import Link, PeripheralBus, Supply, build_bus

__all__ = ["Machine", "RunResult", "Snapshot", "Probe", "VOLATILE_INIT", "DEFAULT_MAX_INSTRUCTIONS"]

VOLATILE_INIT = ("random", "zero", "keep")
# Functions in which firmware waits for host input (firmware/lib/protocol.c).
INPUT_WAIT_SYMBOLS = ("proto_wait_input",)
DEFAULT_MAX_INSTRUCTIONS = 10**9


@dataclass
class RunResult:
    """What a run did. Attributes mirror `emu run --json`."""

    board: str
    outcome: str  # "completed" | "crash" | "timeout"
    instructions: int  # all power-on periods
    power_cycles: list[int]  # instructions retired in each period, the last is the final one
    stop_pc: int
    uart: bytes  # bytes the firmware sent
    reads: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None
    waiting_for_input: bool = False  # completed in the firmware's wait for host input

    @property
    def power_failures(self) -> int:
        return len(self.power_cycles) - 1

    def to_json(self) -> dict:
        return {
            "board": self.board,
            "outcome": self.outcome,
            "instructions": self.instructions,
            "power_cycles": list(self.power_cycles),
            "power_failures": self.power_failures,
            "stop_pc": self.stop_pc,
            "uart": self.uart.hex(),
            "reads": {k: v.hex() for k, v in self.reads.items()},
            "error": self.error,
            "waiting_for_input": self.waiting_for_input,
        }


@dataclass(frozen=True)
class Snapshot:
    """The whole machine state: registers, all memory, peripherals, counters, link."""

    engine: object
    bus: object
    link: tuple[bytes, bytes]
    powered: bool
    cycles: tuple[int, ...]  # completed periods
    period: int  # instructions at the start of the current period (engine counter)
    boots: int
    tx_at_boot: int  # UART bytes sent before the current (or last) boot
    irq_delay: bool = False  # an interrupt waits for the instruction after an EINT


@dataclass(frozen=True)
class Probe:
    """`run(probe=...)`: in the run's last power-on period (no scheduled failure left),
    `check(machine)` is called when the period's instruction count is `first`, 2 x
    `first`, 4 x `first`, ... (a long run is probed a few times only), and before that
    period's power-on (the machine then powered off); when it returns True the run stops
    with outcome "stopped"."""

    first: int
    check: "Callable[[Machine], bool]"

    def at_or_after(self, count: int) -> int:
        """The first probe point >= count (count >= 1)."""
        point = self.first
        while point < count:
            point <<= 1
        return point


class Machine:
    """An emulated board running one firmware image. Create with `Machine.from_elf`."""

    def __init__(self, image: ElfImage, board: Board, *, volatile_init: str = "random", seed: int = 0,
                 until: int | str | None = None, max_instructions: int = DEFAULT_MAX_INSTRUCTIONS,
                 uart_input: bytes = b"", observe: Sequence[str] = (), verbose: bool = False,
                 engine: Engine | None = None):
        if volatile_init not in VOLATILE_INIT:
            raise EmuError(f"unknown volatile-init policy {volatile_init!r}; use one of {', '.join(VOLATILE_INIT)}")
        if max_instructions < 0:
            raise EmuError("max-instructions must be >= 0")
        self.image, self.board = image, board
        self._volatile = board.volatile_regions
        self._fill_size = sum(r.size for r in self._volatile) + 4 * 16  # memory, then registers
        self._nv_ranges = tuple((r.start, r.end) for r in board.nonvolatile_regions)
        self.volatile_init, self.seed = volatile_init, seed
        self.max_instructions = max_instructions
        self.verbose = verbose
        self.link = Link()
        self.link.rx.extend(uart_input)
        self.bus: PeripheralBus = build_bus(board.peripherals, self.link, self._report_unmodeled)
        self.supply: Supply | None = None  # set per power-on period by energy-driven runs
        self._connect_peripherals(self.bus.peripherals)
        self.interrupts_taken = 0  # interrupts accepted since the machine was created
        #: of those, the ones whose exception frame did not go wholly into volatile memory
        #: (a stack in FRAM or MRAM): the engine writes it, no CPU store a watch would see
        self.frames_outside_volatile = 0
        self.engine = engine or create_engine(board.arch)
        self.engine.map([Mapping(r.start, r.size, r.access, r.mmio) for r in board.regions], self.bus)
        self._flash(image)
        self.observe_symbols(observe)
        exits = set(_self_branches(board.arch, image))
        self.input_waits = frozenset(self._symbol_addresses(INPUT_WAIT_SYMBOLS))
        exits |= self.input_waits
        if until is not None:
            exits.add(self.resolve_address(until))
        self.exits = frozenset(exits)
        self.engine.set_exits(sorted(self.exits))
        self.engine.reset_counter()
        self._powered = False
        self._cycles: list[int] = []
        self._period_start = 0
        self._boots = 0
        self._tx_at_boot = 0
        self._irq_delay = False
        self._pool: bytes | None = None
        self._fills: dict[int, list[list[bytes]] | None] = {}  # see _fill_pages
        self._cpu_at_power_on: dict[tuple, object] = {}  # (fill offset, reset vectors) -> Engine.save_cpu()
        self._initial = self.snapshot()

    @classmethod
    def from_elf(cls, path: str | Path, board: str | None = None, **options) -> "Machine":
        """Flash the ELF at `path` into a new machine. `board` defaults from the ELF's
        machine type. Options: volatile_init, seed, until, max_instructions, uart_input,
        observe (["SYMBOL[:NBYTES]", ...]), verbose."""
        image = ElfImage.read(path)
        expected = board_for_elf_machine(image.machine)
        if board is None:
            if expected is None:
                raise EmuError(f"{path}: ELF machine {image.machine} is not supported (MSP430 or ARM)")
            chosen = expected
        else:
            chosen = get_board(board)
            if image.machine != chosen.elf_machine:
                raise EmuError(f"{path}: ELF machine {image.machine} does not match board {chosen.name} "
                               f"({chosen.elf_machine}); pick another --board or rebuild the firmware")
        return cls(image, chosen, **options)

    def add_peripherals(self, peripherals: Sequence) -> None:
        """Put more peripheral models on the machine's bus, ahead of the board's (see
        `PeripheralBus.add`): e.g. a simulated debug probe's core-debug registers. Before
        the machine runs: snapshots taken earlier do not know them (`reset()` does)."""
        if self.instructions:
            raise EmuError("add peripherals before the machine runs")
        peripherals = tuple(peripherals)
        self.bus.add(peripherals)
        self._connect_peripherals(peripherals)
        self._initial = replace(self._initial, bus=self.bus.save())

    def _connect_peripherals(self, peripherals: Sequence) -> None:
        for p in peripherals:
            p.clock = lambda: self.engine.instructions
            p.power = self
        self._irq_sources = tuple(p for p in self.bus.peripherals if p.irq is not None)
        if self._irq_sources:  # a write that enables an interrupt ends the engine run at once
            self.bus.irq_changed = lambda: self.engine.stop_soon()

    # -- flashing ---------------------------------------------------------------------
    def _flash(self, image: ElfImage) -> None:
        for seg in image.segments:
            self._check_segment(seg.address, len(seg.data))
            self.engine.write_memory(seg.address, seg.data)
            if seg.executable:
                self.engine.scan_code(seg.address, seg.data)

    def _check_segment(self, address: int, size: int) -> None:
        a, end = address, address + size
        while a < end:
            region = self.board.region_at(a)
            if region is None or region.mmio or region.volatile:
                what = "outside the board's memory" if region is None else f"in {region.name}"
                raise EmuError(
                    f"{self.image.path.name}: segment {address:#x}..{end:#x} lies {what} at {a:#x} on board "
                    f"{self.board.name}; link it into non-volatile memory ({self._nv_summary()})")
            a = min(end, region.end)

    def _nv_summary(self) -> str:
        return ", ".join(f"{r.name} {r.start:#x}-{r.end - 1:#x}" for r in self.board.nonvolatile_regions)

    # -- addresses and symbols -----------------------------------------------------------
    def resolve_address(self, where: int | str) -> int:
        """An address from an int, a number string (0x..) or a symbol name."""
        if isinstance(where, int):
            return where
        try:
            return int(where, 0)
        except ValueError:
            pass
        address = self.image.symbol(where).address
        return address & ~1 if self.board.arch == "cortex-m" else address

    def _symbol_addresses(self, names: Iterable[str]) -> Iterable[int]:
        for name in names:
            if name in self.image.symbols:
                yield self.resolve_address(name)

    def observe_symbols(self, specs: Sequence[str]) -> None:
        """The symbols ("SYMBOL[:NBYTES]") whose bytes `run()` reports in `reads`."""
        self.observe = [self._parse_read(spec) for spec in specs]

    def _parse_read(self, spec: str) -> tuple[str, int, int]:
        name, _, count = spec.partition(":")
        sym = self.image.symbol(name)
        try:
            size = int(count, 0) if count else sym.size
        except ValueError:
            raise EmuError(f"bad byte count in --read {spec!r}; use SYMBOL or SYMBOL:NBYTES") from None
        if size <= 0:
            raise EmuError(f"symbol {name!r} has no size; give one as {name}:NBYTES")
        return name, sym.address, size

    def read_symbol(self, name: str, nbytes: int | None = None) -> bytes:
        sym = self.image.symbol(name)
        size = sym.size if nbytes is None else nbytes
        if size <= 0:
            raise EmuError(f"symbol {name!r} has no size; pass nbytes")
        return self.read_memory(sym.address, size)

    def write_symbol(self, name: str, data: bytes) -> None:
        self.write_memory(self.image.symbol(name).address, data)

    def read_memory(self, address: int, size: int) -> bytes:
        self._check_access(address, size)
        return self.engine.read_memory(address, size)

    def write_memory(self, address: int, data: bytes) -> None:
        self._check_access(address, len(data))
        self.engine.write_memory(address, data)

    def _check_access(self, address: int, size: int) -> None:
        a, end = address, address + size
        while a < end:
            region = self.board.region_at(a)
            if region is None or region.mmio:
                raise EmuError(f"address {a:#x} is not memory on board {self.board.name}")
            a = region.end

    # -- power --------------------------------------------------------------------------
    @property
    def powered(self) -> bool:
        return self._powered

    @property
    def instructions(self) -> int:
        """Instructions retired since the machine was flashed, all periods together."""
        return self.engine.instructions

    @property
    def period_instructions(self) -> int:
        """Instructions retired in the current power-on period."""
        return self.engine.instructions - self._period_start if self._powered else 0

    @property
    def power_failures(self) -> int:
        """Power failures since the machine was flashed (or reset)."""
        return len(self._cycles)

    @property
    def boots(self) -> int:
        return self._boots

    @property
    def uart_since_boot(self) -> bytes:
        """UART bytes the firmware sent since the current (or last) power-on."""
        return bytes(self.link.tx[self._tx_at_boot :])

    def power_on(self) -> None:
        """Apply power: volatile state per `volatile_init`, then the board's reset rule."""
        if self._powered:
            return
        engine, board = self.engine, self.board
        vectors = engine.read_memory(*_RESET_VECTORS[board.arch])
        cpu_key = None
        if self.volatile_init != "keep":
            fill = self._volatile_fill()
            regions = self._fill_pages(fill)
            for i, r in enumerate(self._volatile):
                if regions is None:
                    engine.write_memory(r.start, fill[: r.size])
                else:
                    engine.write_pages(r.start, regions[i])
                fill = fill[r.size :]
            if engine.cpu_snapshots and regions is not None:
                # the CPU after power-on is a function of the fill and the reset vectors: kept
                # for a fill seen before (as its pages are: a campaign's trials reuse them)
                cpu_key = (self._fill_offset(), vectors)
                cpu = self._cpu_at_power_on.get(cpu_key)
                if cpu is not None:
                    engine.load_cpu(cpu)
                    self._powered_on()
                    return
            engine.reset_cpu()
            names = _GENERAL_REGISTERS[board.arch]
            registers = dict(zip(names, struct.unpack_from(f"<{len(names)}I", fill)))
            fill = fill[4 * len(names) :]
        else:
            registers = {}
        if board.arch == "msp430":
            if self.volatile_init != "keep":  # SP is not set by the MSP430's reset
                registers["sp"] = int.from_bytes(fill[:2], "little") & ~1
            registers.update(sr=0, r3=0)  # r3: the constant generator: no storage, reads as 0
        else:
            if self.volatile_init == "keep":  # reset_cpu was skipped: CONTROL first,
                for name in ("control", "primask", "basepri", "faultmask"):  # else "sp" is PSP
                    engine.write_register(name, 0)
            registers.update(sp=int.from_bytes(vectors[:4], "little") & ~3, lr=0xFFFF_FFFF,
                             xpsr=0x0100_0000, pc=int.from_bytes(vectors[4:], "little") & ~1)
        engine.write_registers(registers)
        if board.arch == "msp430":
            engine.pc = int.from_bytes(vectors, "little")
        if cpu_key is not None:
            if len(self._cpu_at_power_on) >= 8:
                self._cpu_at_power_on.clear()
            self._cpu_at_power_on[cpu_key] = engine.save_cpu()
        self._powered_on()

    def _powered_on(self) -> None:
        self._boots += 1
        self._tx_at_boot = len(self.link.tx)
        self._irq_delay = False
        self._powered = True
        self._period_start = self.engine.instructions

    def _volatile_fill(self) -> memoryview:
        """Bytes for volatile memory and registers at this boot.

        `random`: a window of a per-seed pseudo-random pool, at an offset that changes
        with every boot (cheap enough to do at every power-on); `zero`: zeros."""
        size = self._fill_size
        if self.volatile_init == "zero":
            return memoryview(bytes(size))
        if self._pool is None:
            self._pool = np.random.default_rng(self.seed).bytes(size + _POOL_SLACK)
        offset = self._fill_offset()
        return memoryview(self._pool)[offset : offset + size]

    def _fill_offset(self) -> int:
        """Where this boot's fill starts in the pool (-1: zeros)."""
        return -1 if self.volatile_init == "zero" else (self._boots * 0x9E3779B1) % _POOL_SLACK

    def _fill_pages(self, fill: memoryview) -> list[list[bytes]] | None:
        """The volatile regions' part of `fill` as 1 KiB pages, the same objects for the
        same fill (engines then share them between snapshots: see Engine.write_pages);
        None at a fill's first use (most runs never see a fill twice)."""
        key = self._fill_offset()  # the fill is a function of it (the pool is the seed's)
        cached = self._fills.get(key, False)
        if cached is False:
            if len(self._fills) >= 8:
                self._fills.clear()
            self._fills[key] = None
            return None
        if cached is not None:
            return cached
        regions, rest = [], fill
        for r in self._volatile:
            data = bytes(rest[: r.size])
            regions.append([data[i : i + 1024] for i in range(0, len(data), 1024)])
            rest = rest[r.size :]
        if len(self._fills) >= 8:
            self._fills.clear()
        self._fills[key] = regions
        return regions

    def power_fail(self) -> None:
        """Cut power now: the current period ends, volatile state is lost at next power-on."""
        if not self._powered:
            return
        self._cycles.append(self.period_instructions)
        self._powered = False
        self.bus.power_off()

    def step(self, count: int) -> EngineStop:
        """Run up to `count` instructions in the current power-on period (powering on
        first if needed); stops early at completion or a crash."""
        if not self._powered:
            self.power_on()
        return self._execute(count)

    def _execute(self, budget: int) -> EngineStop:
        """engine.run(budget) with interrupt delivery at exact boundaries (see the module
        docstring); just engine.run when no peripheral can interrupt."""
        engine = self.engine
        if not self._irq_sources:
            return engine.run(budget)
        end = engine.instructions + budget
        # MSP430: the instruction after one that sets GIE runs first (carried over from the
        # previous call, so that where a caller splits a run does not matter)
        delay, self._irq_delay = self._irq_delay, False
        while True:
            now = engine.instructions
            chunk = end - now
            if chunk <= 0:
                self._irq_delay = delay
                return EngineStop(StopKind.LIMIT, engine.pc)
            held = False
            if not delay:  # (else: the instruction after EINT runs first)
                for p in self._irq_sources:
                    if p.irq_pending():
                        if engine.interrupt_masked(p.irq, p.irq_priority):
                            held = True
                        else:
                            sp = engine.read_register("sp")
                            try:
                                engine.interrupt(p.irq)
                            except ValueError as exc:  # e.g. the stack pointer is not in RAM
                                return EngineStop(StopKind.FAULT, engine.pc, f"interrupt entry failed: {exc}")
                            self.interrupts_taken += 1
                            if not self._in_volatile(sp - _EXCEPTION_FRAME[self.board.arch], sp):
                                self.frames_outside_volatile += 1
                        break
            period = now - self._period_start
            for p in self._irq_sources:
                at = p.irq_next()
                if at is not None and at > period:
                    chunk = min(chunk, at - period)
            if held or delay:
                # step until the CPU unmasks it; SLAU367: after EINT (any GIE set but
                # RETI's) one more instruction executes before an interrupt is accepted
                eint = held and self.board.arch == "msp430" and engine.read_memory(engine.pc, 2) != b"\x00\x13"
                stop = engine.run(1)
                if stop.kind != StopKind.LIMIT:
                    return stop
                delay = eint and not engine.interrupt_masked(0)
                continue
            stop = engine.run(chunk)
            if stop.kind != StopKind.LIMIT or engine.instructions >= end:
                return stop

    def _in_volatile(self, start: int, end: int) -> bool:
        """Whether [start, end) lies in one volatile region."""
        return any(r.start <= start and end <= r.end for r in self._volatile)

    # -- running ------------------------------------------------------------------------
    def run(self, fail_after: Iterable[int] | None = None, max_instructions: int | None = None,
            probe: Probe | None = None) -> RunResult:
        """Run to completion, crash or timeout. `fail_after` = [K1, K2, ...]: the current
        (or first) power-on period fails after K1 instructions in it, the next after K2,
        and so on; then power stays on. Continues from the current state: a fresh
        machine starts at power-on, a restored one where its snapshot was taken. With a
        `probe`, ends "stopped" when the probe says so (see `Probe`)."""
        schedule = [int(k) for k in (fail_after or [])]
        if any(k < 0 for k in schedule):
            raise EmuError("fail-after counts must be >= 0")
        limit = self.max_instructions if max_instructions is None else max_instructions
        engine = self.engine
        stop: EngineStop | None = None
        outcome, error = "timeout", None
        probe_at = None  # the period instruction count of the next probe
        while True:
            if not self._powered:
                if probe is not None and not schedule:
                    if probe.check(self):  # (what power-on makes of a state is a function of it)
                        stop, outcome = EngineStop(StopKind.LIMIT, engine.pc), "stopped"
                        break
                    probe_at = probe.first
                self.power_on()
            remaining = limit - engine.instructions
            if remaining <= 0:
                stop = EngineStop(StopKind.LIMIT, engine.pc)
                outcome = "timeout"
                break
            if schedule:
                budget = max(0, schedule[0] - self.period_instructions)
                if budget == 0:
                    schedule.pop(0)
                    self.power_fail()
                    continue
            else:
                budget = remaining
                if probe is not None:
                    at = self.period_instructions
                    if probe_at is None:  # (this run started in its last period)
                        probe_at = probe.at_or_after(max(at, 1))
                    if at == probe_at:
                        if probe.check(self):
                            stop, outcome = EngineStop(StopKind.LIMIT, engine.pc), "stopped"
                            break
                        probe_at = probe.at_or_after(at + 1)
                    budget = min(budget, probe_at - at)
            if engine.pc in self.input_waits and self.link.rx:
                stop = self.step_past_exit()  # the host sent something: go and read it
            else:
                stop = self._execute(min(budget, remaining))
            if stop.kind == StopKind.EXIT:
                if stop.pc in self.input_waits and self.link.rx:
                    continue
                outcome = "completed"
                break
            if stop.kind == StopKind.FAULT:
                outcome, error = "crash", f"{stop.reason} (pc {stop.pc:#x})"
                break
            if schedule and self.period_instructions >= schedule[0]:
                schedule.pop(0)
                self.power_fail()
                continue
            if engine.instructions >= limit:
                break  # timeout
        if outcome == "timeout":
            error = f"no completion within {limit} instructions"
        cycles = self._cycles + [self.period_instructions]
        reads = {} if outcome == "stopped" else {name: engine.read_memory(address, size)
                                                 for name, address, size in self.observe}
        return RunResult(self.board.name, outcome, engine.instructions, cycles, stop.pc,
                         bytes(self.link.tx), reads, error,
                         waiting_for_input=outcome == "completed" and stop.pc in self.input_waits)

    def step_past_exit(self, exits: Iterable[int] | None = None) -> EngineStop:
        """Execute the one instruction at the current PC although it is one of `exits`
        (default: the machine's own), which are in force again afterwards."""
        exits = self.exits if exits is None else frozenset(exits)
        self.engine.set_exits(sorted(exits - {self.engine.pc}))
        try:
            return self.engine.run(1)
        finally:
            self.engine.set_exits(sorted(exits))

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return Snapshot(self.engine.save(), self.bus.save(), self.link.save(), self._powered,
                        tuple(self._cycles), self._period_start, self._boots, self._tx_at_boot, self._irq_delay)

    def state_key(self) -> tuple:
        """What decides the rest of a run from here, as a hashable value: registers, all
        memory, peripherals, pending UART input, power, the interrupt-acceptance delay.
        Left out, because they do not steer execution: the instruction counters, the UART
        bytes already sent, and the boot count (it only picks the volatile fill of later
        power-ons; `uart_since_boot` moves with it). Powered off (and volatile_init not
        "keep"): non-volatile memory, peripherals, pending input and which fill the next
        power-on brings, since that power-on sets everything else. Two machines of the same ELF, board
        and options, without an energy supply (`supply` None: a supply's voltage follows
        the period's instruction count), with equal keys run the same instructions from
        here while power stays on, stop the same way after the same number of them, and
        send the same further UART bytes; only counter-dependent limits
        (max_instructions) can end them differently."""
        engine = self.engine
        if not self._powered and self.volatile_init != "keep":
            # the next power-on overwrites volatile memory and sets the registers from the
            # fill of that boot, so they do not count; the fill's offset does
            return (engine.state_key(None, self._nv_ranges), self.bus.state_key(), bytes(self.link.rx),
                    False, self._fill_offset())
        return (engine.state_key(None), self.bus.state_key(), bytes(self.link.rx), self._powered, self._irq_delay)

    def restore(self, snapshot: Snapshot) -> None:
        self.engine.load(snapshot.engine)
        self.bus.load(snapshot.bus)
        self.link.load(snapshot.link)
        self._powered = snapshot.powered
        self._cycles = list(snapshot.cycles)
        self._period_start = snapshot.period
        self._boots = snapshot.boots
        self._tx_at_boot = snapshot.tx_at_boot
        self._irq_delay = snapshot.irq_delay

    def rebase(self) -> None:
        """Make the current (powered-off) state the one `reset()` returns to: e.g. after
        writing a test vector's input into non-volatile memory, as if it had been flashed
        with the firmware."""
        if self._powered:
            raise EmuError("rebase() needs the machine powered off (call it before running)")
        self._initial = self.snapshot()

    def reset(self, uart_input: bytes | None = None) -> None:
        """Back to the just-flashed state (reusing the engine)."""
        self.restore(self._initial)
        if uart_input is not None:
            self.link.rx = bytearray(uart_input)

    # -- diagnostics ------------------------------------------------------------------------
    def _report_unmodeled(self, address: int) -> None:
        """Called once per unmodeled register (the bus keeps the set: `bus.unmodeled`)."""
        if self.verbose:
            print(f"emu: unmodeled peripheral register {address:#x}: keeps what is written, "
                  "reset at power failure", file=sys.stderr)


_POOL_SLACK = 1 << 16

# the most an interrupt entry pushes below SP: PC and SR on the MSP430; on the Cortex-M
# eight words and an alignment pad (the engine stacks no FP context)
_EXCEPTION_FRAME = {"msp430": 4, "cortex-m": 0x24}

# where power-on reads the reset vectors: (address, bytes)
_RESET_VECTORS = {"msp430": (0xFFFE, 2), "cortex-m": (0x0800_0000, 8)}

_GENERAL_REGISTERS = {
    "msp430": tuple(f"r{i}" for i in range(4, 16)),
    "cortex-m": tuple(f"r{i}" for i in range(13)) + ("lr",),
}


def _self_branches(arch: str, image: ElfImage) -> Iterable[int]:
    """Addresses of unconditional branches to themselves in the flashed code.

    Every even address is checked: a match that is not an instruction start is harmless
    because engines stop only where an instruction starts."""
    for seg in image.segments:
        data, base = seg.data, seg.address
        if arch == "msp430":
            words = np.frombuffer(data[: len(data) & ~1], dtype="<u2")
            for i in np.flatnonzero(words == 0x3FFF):  # jmp $
                yield base + 2 * int(i)
            for i in np.flatnonzero(words[:-1] == 0x4030):  # br #$ (mov #$, pc)
                if int(words[i + 1]) == (base + 2 * int(i)) & 0xFFFF:
                    yield base + 2 * int(i)
        else:
            half = np.frombuffer(data[: len(data) & ~1], dtype="<u2")
            for i in np.flatnonzero(half == 0xE7FE):  # b .
                yield base + 2 * int(i)
            for i in np.flatnonzero((half[:-1] == 0xF7FF) & (half[1:] == 0xBFFE)):  # b.w .
                yield base + 2 * int(i)

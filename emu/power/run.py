"""Energy-driven runs: power fails when the capacitor falls to v_off, returns at v_on.

For each power-on period the crossing time of v_off follows from the circuit alone (the
load is the same for every instruction), so the exact instruction count K of the period
is known before it runs: the machine runs K instructions at native speed, power fails,
the timeline charges the capacitor back to v_on, and so on until the firmware completes.
No per-instruction callback, and the same inputs give the same result bit for bit.

Forward progress. After every failure the non-volatile (writable) memory is compared with
the one at the previous failure. If `stall_cycles` consecutive power cycles change exactly
the same bytes and

* no byte at all: the firmware re-executes the same code from the same non-volatile state
  each time, so it can never finish: outcome `non_termination`;
* only a few bytes (a boot counter, say): those bytes are perturbed (all 0x00, all 0xFF,
  pseudo-random) and the next period is replayed from a snapshot; if no perturbation
  changes anything else (other non-volatile bytes, the failure PC, completion, UART
  output) the changing bytes carry no progress: outcome `non_termination`. A firmware
  that changes behaviour only at one particular value of such a counter would be
  misjudged; the check is skipped when more than 256 bytes change.

The report names the repeated unit: the functions and PC range one power cycle executes
(from a single-stepped replay of one period) and the non-volatile bytes it changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..engines.base import StopKind
from ..errors import EmuError
from ..machine import Machine, RunResult
from .config import PowerConfig
from .models import McuProfile
from .timeline import Circuit, EnergyState, Event
from .warning import PeriodSupply

__all__ = ["run_energy", "EnergyRunResult", "PowerPeriod", "RepeatedUnit", "ENERGY_OUTCOMES"]

ENERGY_OUTCOMES = ("completed", "crash", "timeout", "non_termination", "starved")
MAX_PERTURBED_BYTES = 256
TRACE_STEP_LIMIT = 200_000  # single steps when replaying a repeated unit for its PC range


@dataclass
class PowerPeriod:
    """One power-on period and the recharge after it."""

    start: float  # s, power-on time
    on_time: float  # s
    instructions: int
    energy: float  # J used by the MCU
    v_start: float  # capacitor voltage at power-on
    v_end: float  # at the brown-out (v_off) or at completion
    failure_pc: int | None = None  # None: the run ended in this period
    off_time: float = 0.0  # s, recharge that follows (0 for the last period)
    warning: int | None = None  # instructions into the period when V fell below v_warn (None: it did not)

    def to_json(self) -> dict:
        return {"start_s": self.start, "on_time_s": self.on_time, "off_time_s": self.off_time,
                "instructions": self.instructions, "energy_j": self.energy, "v_start": self.v_start,
                "v_end": self.v_end, "failure_pc": self.failure_pc, "warning_instruction": self.warning}


@dataclass
class RepeatedUnit:
    """What a non-terminating firmware re-executes in every power cycle."""

    instructions: int  # per power cycle
    cycles: int  # consecutive power cycles seen without progress
    entry_pc: int
    failure_pc: int
    pc_min: int
    pc_max: int
    functions: list[str]  # in order of first execution
    changing_nv: list[dict]  # [{"address", "size", "symbol"}], what each cycle still changes
    evidence: str  # "identical" (no NV byte changes) or "perturbation"
    traced: bool = True  # False: the period was too long to single-step, pc_min/pc_max are partial

    def describe(self) -> str:
        where = ", ".join(self.functions[:8]) + (" ..." if len(self.functions) > 8 else "")
        changes = ", ".join(c["symbol"] or f"{c['address']:#x}" for c in self.changing_nv) or "nothing"
        return (f"every power cycle re-executes {self.instructions} instructions from boot "
                f"(pc {self.pc_min:#x}..{self.pc_max:#x}: {where}) and fails at pc {self.failure_pc:#x}; "
                f"non-volatile memory changes: {changes}")

    def to_json(self) -> dict:
        return {"instructions": self.instructions, "cycles": self.cycles, "entry_pc": self.entry_pc,
                "failure_pc": self.failure_pc, "pc_min": self.pc_min, "pc_max": self.pc_max,
                "functions": list(self.functions), "changing_nv": [dict(c) for c in self.changing_nv],
                "evidence": self.evidence, "traced": self.traced}


@dataclass
class EnergyRunResult:
    """The normal `RunResult` (outcome possibly `non_termination` or `starved`) plus the
    energy timeline."""

    result: RunResult
    config: PowerConfig
    mcu: McuProfile
    periods: list[PowerPeriod]
    initial_charge_time: float  # s from t = 0 to the first power-on (or to giving up)
    elapsed: float  # s of device time at the end of the run
    repeated_unit: RepeatedUnit | None = None

    @property
    def outcome(self) -> str:
        return self.result.outcome

    @property
    def latency(self) -> float | None:
        """Seconds from t = 0 (empty capacitor unless v_initial says otherwise) to
        completion, recharges included; None if the run did not complete."""
        return self.elapsed if self.result.outcome == "completed" else None

    @property
    def on_time(self) -> float:
        return math.fsum(p.on_time for p in self.periods)

    @property
    def off_time(self) -> float:
        return math.fsum(p.off_time for p in self.periods)

    @property
    def energy(self) -> float:
        return math.fsum(p.energy for p in self.periods)

    @property
    def failure_voltages(self) -> list[float]:
        return [p.v_end for p in self.periods if p.failure_pc is not None]

    def energy_json(self) -> dict:
        """The `energy` object of `emu run --json`."""
        m = self.mcu
        return {
            "config": self.config.to_json(),
            "mcu": {"board": m.board, "frequency_hz": m.frequency, "cpi": m.cpi, "v_supply": m.v_supply,
                    "instruction_time_s": m.instruction_time, "instruction_energy_j": m.instruction_energy,
                    "active_current_a": m.active_current},
            "latency_s": self.latency,
            "elapsed_s": self.elapsed,
            "initial_charge_s": self.initial_charge_time,
            "on_time_s": self.on_time,
            "off_time_s": self.off_time,
            "energy_j": self.energy,
            "failure_voltages": self.failure_voltages,
            "periods": [p.to_json() for p in self.periods],
            "repeated_unit": None if self.repeated_unit is None else self.repeated_unit.to_json(),
        }

    def to_json(self) -> dict:
        data = self.result.to_json()
        data["energy"] = self.energy_json()
        return data

    def summary(self) -> list[str]:
        """Lines for the human-readable `emu run` output (after the RunResult's)."""
        lines = [f"energy: {len(self.periods)} power-on period(s), on {self.on_time:.6g} s, "
                 f"recharging {self.off_time:.6g} s (initial charge {self.initial_charge_time:.6g} s), "
                 f"MCU energy {self.energy:.6g} J"]
        if self.latency is not None:
            lines.append(f"latency: {self.latency:.6g} s including recharges")
        if self.repeated_unit is not None:
            lines.append("no progress: " + self.repeated_unit.describe())
        return lines


def run_energy(machine: Machine, config: PowerConfig, max_instructions: int | None = None) -> EnergyRunResult:
    """Run `machine` (freshly created or reset, powered off) under `config` until it
    completes, crashes, makes no progress, starves or times out."""
    if machine.powered or machine.instructions:
        raise EmuError("an energy-driven run starts from a powered-off machine that has not run yet; "
                       "create a new one or call reset()")
    circuit = config.circuit(machine.board.name)
    limit = machine.max_instructions if max_instructions is None else max_instructions
    max_time = math.inf if config.max_time is None else config.max_time
    detector = _ProgressDetector(machine, config.stall_cycles)
    try:
        return _run_periods(machine, config, circuit, limit, max_time, detector)
    finally:
        machine.supply = None  # later runs of this machine are not energy-driven


def _run_periods(machine: Machine, config: PowerConfig, circuit: Circuit, limit: int, max_time: float,
                 detector: "_ProgressDetector") -> EnergyRunResult:
    mcu = circuit.mcu
    t_instr = mcu.instruction_time
    periods: list[PowerPeriod] = []
    state = circuit.start()
    initial_charge = 0.0
    stop_pc = machine.engine.pc
    outcome, error = None, None
    last: RunResult | None = None  # the final period's RunResult when it ended the run
    unit: RepeatedUnit | None = None

    while outcome is None:
        charged, event = circuit.evolve(state, running=False, until=max_time)
        if periods:
            periods[-1].off_time = charged.time - state.time
        else:
            initial_charge = charged.time - state.time
        state = charged
        if event == Event.NEVER:
            outcome = "starved"
            error = (f"the harvester cannot charge the capacitor to v_on = {config.supervisor.v_on:g} V: from "
                     f"t = {state.time:.6g} s it settles at {circuit.settling_voltage(state, False):.6g} V "
                     "(harvested power no more than leakage, or the trace ended: loop it?)")
            break
        if event == Event.TIME:
            outcome, error = "timeout", f"no completion within max_time = {max_time:g} s of device time"
            break
        remaining = limit - machine.instructions
        if remaining <= 0:
            outcome, error = "timeout", f"no completion within {limit} instructions"
            break
        # plan no further than the instruction limit (a looping trace may never let V fall)
        horizon = min(max_time, state.time + (remaining + 1) * t_instr)
        budget, crossing = _period_budget(circuit, state, t_instr, horizon)
        machine.supply = supply = PeriodSupply(circuit, state, t_instr, config.v_warn, max_time)
        warning = None if config.v_warn is None else supply.falls_below(config.v_warn)
        start_count = machine.instructions
        run = machine.run(max_instructions=start_count + (remaining if budget is None else min(budget, remaining)))
        done = machine.instructions - start_count
        stop_pc = machine.engine.pc
        energy = done * mcu.instruction_energy
        if run.outcome != "timeout" or machine.instructions >= limit or crossing is None:
            # completed, crashed, out of instructions, or out of device time in this period
            end, _ = circuit.evolve(state, running=True, until=state.time + done * t_instr)
            periods.append(PowerPeriod(state.time, end.time - state.time, done, energy, state.voltage, end.voltage,
                                       warning=warning if warning is not None and warning <= done else None))
            state = end
            if run.outcome == "timeout" and machine.instructions < limit:
                outcome, error = "timeout", f"no completion within max_time = {max_time:g} s of device time"
            else:
                outcome, error, last = run.outcome, run.error, run
            break
        machine.power_fail()
        periods.append(PowerPeriod(state.time, crossing.time - state.time, done, energy, state.voltage,
                                   crossing.voltage, failure_pc=stop_pc,
                                   warning=warning if warning is not None and warning <= done else None))
        state = crossing
        unit = detector.after_failure(stop_pc, done, lambda: _next_budget(circuit, state, t_instr, max_time,
                                                                          machine, config.v_warn))
        if unit is not None:
            outcome = "non_termination"
            error = "no forward progress: " + unit.describe()

    if last is not None:
        result = last
    else:
        cycles = [p.instructions for p in periods] or [0]
        reads = {name: machine.engine.read_memory(address, size) for name, address, size in machine.observe}
        result = RunResult(machine.board.name, outcome, machine.instructions, cycles, stop_pc,
                           bytes(machine.link.tx), reads, error)
    return EnergyRunResult(result, config, mcu, periods, initial_charge, state.time, unit)


def _instructions_within(duration: float, t_instr: float) -> int:
    """Instructions that complete within `duration` seconds (exactly, despite rounding)."""
    k = int(math.floor(duration / t_instr))
    while (k + 1) * t_instr <= duration:
        k += 1
    while k > 0 and k * t_instr > duration:
        k -= 1
    return k


def _period_budget(circuit: Circuit, on: EnergyState, t_instr: float,
                   max_time: float) -> tuple[int | None, EnergyState | None]:
    """(instructions before the brown-out, state at the brown-out); (None, None) if power
    never fails; (K, None) if device time runs out first."""
    crossing, event = circuit.evolve(on, running=True, until=max_time)
    if event == Event.TARGET:
        return _instructions_within(crossing.time - on.time, t_instr), crossing
    if event == Event.TIME:
        return _instructions_within(max_time - on.time, t_instr), None
    return None, None


def _next_budget(circuit: Circuit, failed: EnergyState, t_instr: float, max_time: float,
                 machine: Machine | None = None, v_warn: float | None = None) -> int | None:
    """The next period's instruction budget; with `machine`, also its supply (for the
    replays of the progress check)."""
    charged, event = circuit.evolve(failed, running=False, until=max_time)
    if event != Event.TARGET:
        return None
    if machine is not None:
        machine.supply = PeriodSupply(circuit, charged, t_instr, v_warn, max_time)
    return _period_budget(circuit, charged, t_instr, max_time)[0]


# -- forward progress ----------------------------------------------------------------------------
class _ProgressDetector:
    def __init__(self, machine: Machine, stall_cycles: int):
        self.machine = machine
        self.stall_cycles = stall_cycles
        self.regions = [(r.start, r.size) for r in machine.board.nonvolatile_regions if "w" in r.access.value]
        self.offsets = np.cumsum([0] + [size for _, size in self.regions])
        self.previous: np.ndarray | None = None
        self.previous_diff: np.ndarray | None = None
        self.streak = 0
        self.failures = 0
        self.next_test = 0
        self.backoff = stall_cycles

    def nv(self) -> np.ndarray:
        m = self.machine
        return np.frombuffer(b"".join(m.read_memory(start, size) for start, size in self.regions), dtype=np.uint8)

    def after_failure(self, failure_pc: int, instructions: int, next_budget: Callable[[], int | None]) -> RepeatedUnit | None:
        self.failures += 1
        nv = self.nv()
        if self.previous is None:
            self.previous = nv
            return None
        diff = np.flatnonzero(nv != self.previous)
        same = self.previous_diff is not None and np.array_equal(diff, self.previous_diff)
        self.streak = self.streak + 1 if same else 1
        self.previous, self.previous_diff = nv, diff
        if self.streak < self.stall_cycles:
            return None
        if diff.size == 0:
            return self._describe(failure_pc, instructions, diff, "identical")
        if diff.size > MAX_PERTURBED_BYTES or self.failures < self.next_test:
            return None
        budget = next_budget()
        if budget is not None and self._changes_carry_no_progress(self._widen(diff), budget):
            return self._describe(failure_pc, instructions, diff, "perturbation")
        self.next_test = self.failures + self.backoff
        self.backoff *= 2
        return None

    def _widen(self, diff: np.ndarray) -> np.ndarray:
        """The changing bytes widened to the variables holding them (the data symbols
        covering them, else their aligned word), so that a perturbed counter's carry
        stays inside the perturbed bytes."""
        word = 2 if self.machine.board.arch == "msp430" else 4
        wide: set[int] = set()
        for offset in diff.tolist():
            address = self._address(offset)
            span = _symbol_span(self.machine, address) or (address - address % word, word)
            base = offset - (address - span[0])
            wide.update(o for o in range(base, base + span[1]) if 0 <= o < int(self.offsets[-1]))
        return np.array(sorted(wide), dtype=np.int64)

    def _address(self, offset: int) -> int:
        i = int(np.searchsorted(self.offsets, offset, side="right")) - 1
        return self.regions[i][0] + offset - int(self.offsets[i])

    def _period(self, budget: int) -> tuple[str, int, np.ndarray, bytes]:
        m = self.machine
        start = m.instructions
        r = m.run(max_instructions=start + budget)
        pc = m.engine.pc
        uart = m.uart_since_boot
        if r.outcome == "timeout":
            m.power_fail()
        return r.outcome, pc, self.nv(), uart

    def _changes_carry_no_progress(self, diff: np.ndarray, budget: int) -> bool:
        """Replay the next period with the changing bytes perturbed: True if nothing else
        ever differs from the unperturbed replay."""
        m = self.machine
        snap = m.snapshot()
        try:
            reference = self._period(budget)
            keep = np.ones(reference[2].size, dtype=bool)
            keep[diff] = False
            rng = np.random.default_rng(0x5EED + m.seed)
            patterns = [np.zeros(diff.size, np.uint8), np.full(diff.size, 0xFF, np.uint8)]
            patterns += [rng.integers(0, 256, diff.size, dtype=np.uint8) for _ in range(3)]
            addresses = [self._address(int(o)) for o in diff]
            for pattern in patterns:
                m.restore(snap)
                for address, value in zip(addresses, pattern.tolist()):
                    m.write_memory(address, bytes([value]))
                outcome, pc, nv, uart = self._period(budget)
                if (outcome, pc, uart) != (reference[0], reference[1], reference[3]) or \
                        not np.array_equal(nv[keep], reference[2][keep]):
                    return False
            return True
        finally:
            m.restore(snap)

    def _describe(self, failure_pc: int, instructions: int, diff: np.ndarray, evidence: str) -> RepeatedUnit:
        m = self.machine
        snap = m.snapshot()
        pcs: list[int] = []
        traced = True
        try:
            m.power_on()
            entry = m.engine.pc
            for _ in range(min(instructions, TRACE_STEP_LIMIT)):
                pcs.append(m.engine.pc)
                if m.step(1).kind != StopKind.LIMIT:
                    break
            traced = instructions <= TRACE_STEP_LIMIT
        finally:
            m.restore(snap)
        pcs = pcs or [entry]
        return RepeatedUnit(instructions, self.streak, entry, failure_pc, min(pcs + [failure_pc]),
                            max(pcs + [failure_pc]), _functions(m, pcs), self._changes(diff), evidence, traced)

    def _changes(self, diff: np.ndarray) -> list[dict]:
        runs: list[list[int]] = []
        for offset in diff.tolist():
            address = self._address(offset)
            if runs and address == runs[-1][0] + runs[-1][1]:
                runs[-1][1] += 1
            else:
                runs.append([address, 1])
        return [{"address": a, "size": n, "symbol": _symbol_at(self.machine, a)} for a, n in runs]


def _functions(machine: Machine, pcs: list[int]) -> list[str]:
    seen: dict[str, None] = {}
    for pc in dict.fromkeys(pcs):
        name = next((sym.name for sym in machine.image.symbols_containing(pc, code=True)), None)
        if name:
            seen.setdefault(name, None)
    return list(seen)


def _symbol_span(machine: Machine, address: int) -> tuple[int, int] | None:
    for sym in machine.image.symbols_containing(address):
        if sym.size <= MAX_PERTURBED_BYTES:
            return sym.address, sym.size
    return None


def _symbol_at(machine: Machine, address: int) -> str | None:
    return next((sym.name for sym in machine.image.symbols_containing(address)), None)

"""Where the project runtime commits progress, and when an energy-driven run committed.

The runtime (firmware/runtime/task.c) commits a task with one store: `rt_active =
working;`. `commit_sites` finds that store's source line in the ELF's line table (the
line's address ranges, one per inlined copy of `commit()`); `replay_commits` replays a
run's power schedule on a machine that has not run yet, stops at those ranges, single-steps through them
and records the instruction after which `rt_active` changed: the commit. A run is
deterministic, so the replay commits exactly where the run did. (A fresh machine, because
the MSP430 engine keeps code it has translated, and a breakpoint added later may not stop
it.)

Public names: `CommitSites`, `commit_sites`, `replay_commits`, `commit_times`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..debuginfo import SourceMap
from ..engines.base import StopKind, merge_ranges
from ..errors import EmuError
from ..machine import Machine

__all__ = ["CommitSites", "commit_sites", "replay_commits", "commit_times"]

COMMIT_LINE = "rt_active = working;"  # runtime/task.c, commit(): the committing store
_TASK_C = Path(__file__).resolve().parents[2] / "firmware" / "runtime" / "task.c"


@dataclass(frozen=True)
class CommitSites:
    """The address ranges [start, end) of the committing store's source line."""

    ranges: tuple[tuple[int, int], ...]
    symbol: str  # the non-volatile word that the store toggles
    address: int
    size: int

    @property
    def starts(self) -> list[int]:
        return [start for start, _ in self.ranges]

    def contains(self, pc: int) -> bool:
        return any(start <= pc < end for start, end in self.ranges)


def _commit_line(source: Path) -> int:
    try:
        lines = source.read_text().splitlines()
    except OSError as exc:
        raise EmuError(f"cannot read the runtime source {source} to locate its commit: {exc.strerror}") from None
    for number, text in enumerate(lines, 1):
        if COMMIT_LINE in text:
            return number
    raise EmuError(f"{source} has no line '{COMMIT_LINE}': the runtime's commit moved; update "
                   "emu/power/commits.py")


def commit_sites(machine: Machine, source: str | Path = _TASK_C) -> CommitSites:
    """The committing store of the project runtime in `machine`'s firmware. Raises
    EmuError for firmware without the runtime's task commits or without line tables."""
    if "rt_active" not in machine.image.symbols:
        raise EmuError(f"{machine.image.path.name} does not use the project runtime's tasks (no rt_active): "
                       "it has no commits to mark")
    line = _commit_line(Path(source))
    rows = SourceMap.from_elf(machine.image.path).lines
    ranges = []
    for i, (address, file, number) in enumerate(rows):
        if file and file.endswith("task.c") and number == line:
            end = next((a for a, _, _ in rows[i + 1:] if a > address), address + 4)
            ranges.append((address, end))
    if not ranges:
        raise EmuError(f"{machine.image.path.name}: no line-table rows for task.c:{line} (the runtime's commit); "
                       "build the firmware with debug information (-g)")
    sym = machine.image.symbol("rt_active")
    return CommitSites(tuple(merge_ranges(ranges)), "rt_active", sym.address, max(sym.size, 1))


def replay_commits(machine: Machine, schedule: Sequence[int], last: int | None = None,
                   sites: CommitSites | None = None) -> list[tuple[int, int]]:
    """On `machine` (powered off, not run yet: e.g. just created, a vector loaded), run
    power-on periods of `schedule[i]` instructions (power fails after each) and a last one
    of at most `last` instructions (None: until the firmware stops). Returns (period index,
    instructions into the period) of every commit, counting the committing store. The
    machine is left at the end of the replay."""
    if machine.powered or machine.instructions:
        raise EmuError("replaying commits needs a machine that has not run yet (create a new one)")
    sites = sites or commit_sites(machine)
    exits = sorted(set(machine.exits) | set(sites.starts))
    own_exits = machine.exits
    budgets = list(schedule) + [last]
    commits: list[tuple[int, int]] = []
    machine.engine.set_exits(exits)
    try:
        for index, budget in enumerate(budgets):
            if not machine.powered:
                machine.power_on()
            while budget is None or machine.period_instructions < budget:
                left = machine.max_instructions if budget is None else budget - machine.period_instructions
                stop = machine.engine.run(left)
                if stop.kind == StopKind.EXIT and sites.contains(stop.pc):
                    before = machine.read_memory(sites.address, sites.size)
                    while sites.contains(machine.engine.pc) and (
                            budget is None or machine.period_instructions < budget):
                        step = machine.step_past_exit(exits)
                        if machine.read_memory(sites.address, sites.size) != before:
                            commits.append((index, machine.period_instructions))
                            break
                        if step.kind == StopKind.FAULT:
                            return commits
                    continue
                if stop.kind != StopKind.LIMIT:
                    return commits  # the firmware completed or crashed
            if index < len(schedule):
                machine.power_fail()
    finally:
        machine.engine.set_exits(sorted(own_exits))
    return commits


def commit_times(machine: Machine, run) -> list[tuple[float, float]]:
    """(time s, capacitor voltage) of every commit of the energy-driven `run`
    (`EnergyRunResult`), replayed on `machine`: a new machine for the same firmware and
    options as the run's (same seed, same input), not run yet."""
    periods = run.periods
    if not periods:
        return []
    schedule = [p.instructions for p in periods if p.failure_pc is not None]
    tail = periods[-1].instructions if periods[-1].failure_pc is None else None
    if tail is None:  # every period failed (non_termination, timeout by time): replay them all
        schedule, tail = schedule[:-1], periods[-1].instructions
    commits = replay_commits(machine, schedule, tail)
    circuit = run.config.circuit(run.result.board)
    t_instr = circuit.mcu.instruction_time
    from .timeline import EnergyState

    out = []
    for index, count in commits:
        p = periods[index]
        when = p.start + count * t_instr
        state, _ = circuit.evolve(EnergyState(p.start, p.v_start, 0), running=True, until=when)
        out.append((when, state.voltage))
    return out

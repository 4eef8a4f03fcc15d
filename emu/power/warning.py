"""The supply voltage a power-warning comparator watches, instruction by instruction.

`PeriodSupply` is what an energy-driven run hands the machine (`Machine.supply`) for one
power-on period: voltage monitors (the MSP430's COMP_E, the STM32's PVD) ask it after how
many instructions of the period the capacitor voltage is below a level for the first
time, and the machine stops exactly there to deliver their interrupt.

The instruction is found the way the failure instruction is: the circuit gives the time
t_w at which the voltage, falling from its power-on value under the constant load,
reaches the level; the comparator output changes at t_w, and the CPU sees it at the first
instruction boundary at or after t_w, i.e. after A = ceil((t_w - t_on) / t_instr)
instructions (A = 0 if the voltage is already below at power-on). The interrupt is then
accepted before instruction A + 1. A level the voltage never reaches in the period
(below v_off, or a harvester that keeps it up) gives None.

Only the first falling crossing of a period is modelled: the voltage falls monotonically
under a load larger than the harvest, and once a warning fired the monitor reports
"below" until the period ends even if a strong harvest pulse lifts the voltage again.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .timeline import Circuit, EnergyState, Event

__all__ = ["PeriodSupply", "instructions_until"]


def instructions_until(duration: float, t_instr: float) -> int:
    """The first instruction boundary at or after `duration` seconds: the smallest n
    with n * t_instr >= duration (exactly, despite rounding)."""
    if duration <= 0:
        return 0
    n = int(math.ceil(duration / t_instr))
    while n > 0 and (n - 1) * t_instr >= duration:
        n -= 1
    while n * t_instr < duration:
        n += 1
    return n


@dataclass
class PeriodSupply:
    """The capacitor of one power-on period that starts in state `on`."""

    circuit: Circuit
    on: EnergyState
    t_instr: float  # seconds per instruction
    v_warn: float | None  # the board's power-warning trip level (config v_warn)
    horizon: float = math.inf  # no crossing is looked for after this time
    _cache: dict[float, int | None] = field(default_factory=dict, repr=False)

    def falls_below(self, level: float) -> int | None:
        if level not in self._cache:
            self._cache[level] = self._crossing(level)
        return self._cache[level]

    def _crossing(self, level: float) -> int | None:
        if self.on.voltage < level:
            return 0
        sup = self.circuit.supervisor
        if not level > 0 or level >= sup.v_on:
            return None  # a level at the power-on voltage is not crossed from above: use v_warn < v_on
        # the running circuit with the brown-out level moved to `level`: evolve stops there
        probe = dataclasses.replace(self.circuit, supervisor=dataclasses.replace(sup, v_off=level))
        crossing, event = probe.evolve(self.on, running=True, until=self.horizon)
        if event != Event.TARGET:
            return None
        return instructions_until(crossing.time - self.on.time, self.t_instr)

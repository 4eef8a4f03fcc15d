"""Electrical loads for simulated supplies, and the operating point of a supply driving one.

A load answers "how much current at this voltage?". A supply with set-point V and current
limit I settles in constant-voltage mode (V, load(V)) when the load draws no more than I, and
otherwise in constant-current mode: current I, at the voltage where the load draws I (found by
bisection, the load being monotonic). `operating_point` returns that pair.

Public names: `Load`, `Resistor`, `ConstantCurrent`, `OpenCircuit`, `CallbackLoad`,
`operating_point`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

__all__ = ["Load", "Resistor", "ConstantCurrent", "OpenCircuit", "CallbackLoad", "operating_point"]


class Load(Protocol):
    """Current drawn (A) at a terminal voltage (V)."""

    def current(self, volts: float) -> float: ...


@dataclass(frozen=True)
class Resistor:
    """An ohmic load."""

    ohms: float

    def current(self, volts: float) -> float:
        return volts / self.ohms


@dataclass(frozen=True)
class ConstantCurrent:
    """A load drawing `amps` whenever it sees a voltage."""

    amps: float

    def current(self, volts: float) -> float:
        return self.amps if volts != 0 else 0.0


@dataclass(frozen=True)
class OpenCircuit:
    """Nothing connected."""

    def current(self, volts: float) -> float:
        return 0.0


@dataclass(frozen=True)
class CallbackLoad:
    """Any current-versus-voltage function (e.g. an emulated board's consumption)."""

    fn: Callable[[float], float]

    def current(self, volts: float) -> float:
        return float(self.fn(volts))


def operating_point(setpoint: float, limit: float, load: Load) -> tuple[float, float]:
    """(voltage, current) of a supply at `setpoint` volts with a `limit` ampere current limit."""
    amps = load.current(setpoint)
    if abs(amps) <= limit:
        return setpoint, amps  # constant voltage
    lo, hi = 0.0, 1.0  # fraction of the set-point; the load draws <= limit at lo
    for _ in range(60):
        mid = (lo + hi) / 2
        if abs(load.current(mid * setpoint)) > limit:
            hi = mid
        else:
            lo = mid
    return lo * setpoint, math.copysign(limit, amps)  # constant current

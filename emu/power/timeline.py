"""Wall-clock timeline of the storage capacitor: charge to v_on, discharge to v_off.

`EnergyState` is (time, voltage, harvester segment). `Circuit.evolve` advances it while
the MCU is off (charging) or on (running) until the next event: the voltage reaches the
target level, a time limit passes, or nothing can happen any more. It is a pure function
of its inputs, independent of the firmware: the load is the same for every instruction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .circuit import Dynamics
from .models import Capacitor, Harvester, McuProfile, Regulator, Supervisor

__all__ = ["EnergyState", "Circuit", "Event"]

INF = math.inf


@dataclass(frozen=True)
class EnergyState:
    time: float  # seconds since the start of the run
    voltage: float  # capacitor voltage
    segment: int  # index of the harvester segment containing `time`


class Event:
    TARGET = "target"  # reached the target voltage (v_on when charging, v_off when running)
    TIME = "time"  # reached the time limit
    NEVER = "never"  # the target can never be reached (constant conditions from here on)


@dataclass(frozen=True)
class Circuit:
    harvester: Harvester
    capacitor: Capacitor
    supervisor: Supervisor
    mcu: McuProfile
    regulator: Regulator | None = None

    @property
    def v_max(self) -> float:
        cap = self.capacitor.v_max
        return self.supervisor.v_on if cap is None else max(cap, self.supervisor.v_on)

    @property
    def load_power(self) -> float:
        """Constant power the MCU draws from the capacitor through the regulator (W)."""
        if self.regulator is None:
            return 0.0
        v_out = self.regulator.v_out or self.mcu.v_supply
        return v_out * self.mcu.active_current / self.regulator.efficiency

    @property
    def load_current(self) -> float:
        """Constant current the MCU draws from the capacitor without a regulator (A)."""
        return self.mcu.active_current if self.regulator is None else 0.0

    def dynamics(self, power: float, current: float, running: bool) -> Dynamics:
        cap = self.capacitor
        a = power - (self.load_power if running else 0.0)
        b = current - (self.load_current if running else 0.0) - cap.leakage_current
        c = 0.0 if cap.leakage_resistance is None else 1.0 / cap.leakage_resistance
        return Dynamics(cap.capacitance, a, b, c)

    def settling_voltage(self, state: EnergyState, running: bool) -> float:
        """Where the voltage heads in the current harvester segment (its equilibrium
        towards the next threshold), for messages."""
        seg = self.harvester.segment(state.segment)
        dyn = self.dynamics(seg.power, seg.current, running)
        level = self.supervisor.v_off if running else self.supervisor.v_on
        if dyn.direction(state.voltage) > 0:
            barrier = dyn.barrier(state.voltage, level)
            return state.voltage if barrier is None else barrier
        return state.voltage

    def start(self) -> EnergyState:
        return EnergyState(0.0, self.capacitor.v_initial, 0)

    def evolve(self, state: EnergyState, running: bool, until: float = INF) -> tuple[EnergyState, str]:
        """Advance from `state` with the MCU off (charging to v_on) or running (to v_off),
        at most until time `until`. Returns the new state and what ended it (`Event`)."""
        t, v, k = state.time, state.voltage, state.segment
        target = self.supervisor.v_off if running else self.supervisor.v_on
        ceiling = self.v_max if running else self.supervisor.v_on
        if not running and v >= target:
            return state, Event.TARGET
        loop_check = getattr(self.harvester, "loop", False)
        loop_start_v: float | None = None
        while True:
            if t >= until:
                return EnergyState(t, v, k), Event.TIME
            seg = self.harvester.segment(k)
            if t >= seg.end:
                k += 1
                if loop_check and not running and k % self.harvester.samples == 0:
                    # a periodic input: if a whole period did not raise the voltage, no later one will
                    if loop_start_v is not None and v <= loop_start_v:
                        return EnergyState(t, v, k), Event.NEVER
                    loop_start_v = v
                continue
            end = min(seg.end, until)
            dyn = self.dynamics(seg.power, seg.current, running)
            d = dyn.direction(v)
            if d == 0 or (d > 0 and v >= ceiling) or (d < 0 and v <= 0.0):  # at rest, clamped, or empty
                if end == INF:
                    return EnergyState(t, v, k), Event.NEVER
                t = end
                continue
            level = (target if not running else ceiling) if d > 0 else (target if running else 0.0)
            duration = dyn.time(v, level)
            if t + duration <= end and duration < INF:
                t, v = t + duration, level
                if level == target:
                    return EnergyState(t, v, k), Event.TARGET
                continue  # clamped at v_max or empty at 0 V: stays there while this lasts
            if end == INF:
                return EnergyState(t, v, k), Event.NEVER
            v = dyn.voltage_after(v, end - t, level)
            t = end

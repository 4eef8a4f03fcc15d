"""Energy models: storage capacitor, supply supervisor, regulator, harvesters, MCU load.

Everything is a frozen dataclass in SI units (F, V, A, W, s, Ohm). Harvesters are
piecewise constant: `segment(k)` is the k-th interval [start, end) during which the
harvester delivers a constant power (W) and a constant current (A) into the capacitor;
this is what lets `emu.power.circuit` solve each interval in closed form.

The MCU figures per board (`BOARD_PROFILES`) and where they come from are listed in
docs/energy.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import EmuError

__all__ = ["Capacitor", "Supervisor", "Regulator", "McuProfile", "BOARD_PROFILES", "board_profile",
           "Harvester", "ConstantPower", "ConstantCurrent", "SquareWave", "TraceHarvester", "Segment"]

INF = math.inf


@dataclass(frozen=True)
class Capacitor:
    """The energy store. Leakage is a constant current or a resistance (or both).
    `v_max`: the voltage the capacitor is clamped at (rated voltage, shunt regulator of the
    charger); None: the supervisor's v_on."""

    capacitance: float
    leakage_current: float = 0.0
    leakage_resistance: float | None = None
    v_initial: float = 0.0
    v_max: float | None = None

    def __post_init__(self):
        if not self.capacitance > 0:
            raise EmuError(f"capacitance must be > 0 (got {self.capacitance} F)")
        if self.leakage_current < 0:
            raise EmuError(f"leakage current must be >= 0 (got {self.leakage_current} A)")
        if self.leakage_resistance is not None and not self.leakage_resistance > 0:
            raise EmuError(f"leakage resistance must be > 0 (got {self.leakage_resistance} Ohm)")
        if self.v_initial < 0:
            raise EmuError(f"initial capacitor voltage must be >= 0 (got {self.v_initial} V)")

    def energy(self, voltage: float) -> float:
        """1/2 C V^2."""
        return 0.5 * self.capacitance * voltage * voltage


@dataclass(frozen=True)
class Supervisor:
    """Supply supervisor (voltage monitor with hysteresis): the MCU is powered on when the
    capacitor reaches `v_on` and browns out when it falls to `v_off`."""

    v_on: float
    v_off: float

    def __post_init__(self):
        if not (self.v_on > self.v_off > 0):
            raise EmuError(f"supervisor thresholds need v_on > v_off > 0 (got v_on {self.v_on} V, "
                           f"v_off {self.v_off} V)")


@dataclass(frozen=True)
class Regulator:
    """A switching regulator between capacitor and MCU: the MCU draws constant power
    P = v_out * I_active / efficiency from the capacitor. Without a regulator the MCU draws
    its active current directly from the capacitor (constant current, as with an LDO)."""

    efficiency: float
    v_out: float | None = None  # None: the MCU profile's supply voltage

    def __post_init__(self):
        if not 0 < self.efficiency <= 1:
            raise EmuError(f"regulator efficiency must lie in (0, 1] (got {self.efficiency})")
        if self.v_out is not None and not self.v_out > 0:
            raise EmuError(f"regulator output voltage must be > 0 (got {self.v_out} V)")


@dataclass(frozen=True)
class McuProfile:
    """What one instruction costs on a board: a constant average, the same for every
    instruction (see docs/energy.md for the figures' sources).

    Active current = current_per_hz * frequency, measured by the vendor at `v_supply`;
    time per instruction = cpi / frequency; non-volatile writes add `nv_write_energy` per
    write, `nv_writes_per_instruction` on average."""

    board: str
    frequency: float  # Hz
    current_per_hz: float  # A/Hz (datasheet µA/MHz * 1e-12)
    v_supply: float  # V
    cpi: float  # average clock cycles per instruction
    nv_write_energy: float = 0.0  # J per write to non-volatile memory (beyond the active current)
    nv_writes_per_instruction: float = 0.0
    sources: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self):
        for name in ("frequency", "current_per_hz", "v_supply", "cpi"):
            if not getattr(self, name) > 0:
                raise EmuError(f"MCU {name} must be > 0 (got {getattr(self, name)})")
        if self.nv_write_energy < 0 or self.nv_writes_per_instruction < 0:
            raise EmuError("MCU nv_write_energy and nv_writes_per_instruction must be >= 0")

    @property
    def instruction_time(self) -> float:
        """Seconds per instruction."""
        return self.cpi / self.frequency

    @property
    def instruction_energy(self) -> float:
        """Joules per instruction at the MCU's supply pins."""
        return (self.v_supply * self.current_per_hz * self.frequency * self.instruction_time
                + self.nv_writes_per_instruction * self.nv_write_energy)

    @property
    def active_current(self) -> float:
        """Average supply current while running (A), non-volatile writes included."""
        return self.instruction_energy / (self.v_supply * self.instruction_time)

    @property
    def active_power(self) -> float:
        return self.v_supply * self.active_current

    def with_overrides(self, **overrides) -> "McuProfile":
        unknown = set(overrides) - set(_PROFILE_FIELDS)
        if unknown:
            raise EmuError(f"unknown MCU setting(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(_PROFILE_FIELDS)}")
        return replace(self, **overrides)


_PROFILE_FIELDS = ("frequency", "current_per_hz", "v_supply", "cpi", "nv_write_energy", "nv_writes_per_instruction")

# MR25H40 (Everspin) writes at 27 mA from 3.3 V with a 40 MHz SPI clock: 8 clocks per byte,
# so 27e-3 * 3.3 * 200e-9 = 17.8 nJ per byte; a 32-bit store writes 4 bytes.
_MRAM_BYTE_ENERGY = 27e-3 * 3.3 * 8 / 40e6

BOARD_PROFILES: dict[str, McuProfile] = {
    "msp430fr5994": McuProfile(
        board="msp430fr5994",
        frequency=8e6,  # startup.S sets DCO = MCLK = 8 MHz: no FRAM wait states needed (<= 8 MHz)
        current_per_hz=118e-12,  # 118 µA/MHz active mode (SLASE54 features list)
        v_supply=3.0,
        cpi=1.64,  # median over the example apps' runs, SLAU367 cycle tables (emu.power.cpi, docs/energy.md)
        sources=("TI SLASE54 (MSP430FR599x datasheet): active mode 118 uA/MHz; FRAM wait states only "
                 "for MCLK > 8 MHz",
                 "TI SLAU367 (MSP430FR5xx user's guide), MSP430X instruction cycles: CPI measured on "
                 "the example apps"),
    ),
    "cortex-m4-mram": McuProfile(
        board="cortex-m4-mram",
        frequency=4e6,  # STM32L4 reset clock MSI 4 MHz; startup.c keeps it; flash 0 wait states
        current_per_hz=100e-12,  # 100 µA/MHz run mode, voltage range 2 (ST STM32L4 power training)
        v_supply=3.0,
        cpi=1.63,  # median over the example apps' runs, Cortex-M4 cycle table (emu.power.cpi, docs/energy.md)
        nv_write_energy=4 * _MRAM_BYTE_ENERGY,  # one 32-bit store into MRAM
        nv_writes_per_instruction=0.027,  # median share of MRAM-writing instructions, example apps
        sources=("ST STM32L4 (STM32L47x/48x) power training / AN4621: run mode 100 uA/MHz in range 2",
                 "Everspin MR25H40: 27 mA write current at 40 MHz SPI, 3.3 V (17.8 nJ per byte)",
                 "ARM Cortex-M4 instruction timing (TI SWCU192 table 3-25): CPI measured on the example apps"),
    ),
}


def board_profile(board: str) -> McuProfile:
    try:
        return BOARD_PROFILES[board]
    except KeyError:
        raise EmuError(f"no energy profile for board {board!r}; known: {', '.join(BOARD_PROFILES)}; "
                       "give every [mcu] setting in the power config") from None


# -- harvesters ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    """[start, end): the harvester delivers `power` W plus `current` A into the capacitor."""

    start: float
    end: float
    power: float = 0.0
    current: float = 0.0


class Harvester:
    """Piecewise-constant input. Segments are numbered 0, 1, 2, ...; segment 0 starts at
    t = 0 and each one starts where the previous ends."""

    def segment(self, k: int) -> Segment:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict:
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantPower(Harvester):
    power: float

    def __post_init__(self):
        if self.power < 0:
            raise EmuError(f"harvester power must be >= 0 (got {self.power} W)")

    def segment(self, k: int) -> Segment:
        return Segment(0.0, INF, power=self.power)

    def describe(self) -> str:
        return f"const:{self.power:g}W"

    def to_json(self) -> dict:
        return {"kind": "const", "power_w": self.power}


@dataclass(frozen=True)
class ConstantCurrent(Harvester):
    current: float

    def __post_init__(self):
        if self.current < 0:
            raise EmuError(f"harvester current must be >= 0 (got {self.current} A)")

    def segment(self, k: int) -> Segment:
        return Segment(0.0, INF, current=self.current)

    def describe(self) -> str:
        return f"current:{self.current:g}A"

    def to_json(self) -> dict:
        return {"kind": "current", "current_a": self.current}


@dataclass(frozen=True)
class SquareWave(Harvester):
    """`power` during the first `duty` * `period` of every period, nothing in the rest."""

    period: float
    duty: float
    power: float

    def __post_init__(self):
        if not self.period > 0:
            raise EmuError(f"square-wave period must be > 0 (got {self.period} s)")
        if not 0 <= self.duty <= 1:
            raise EmuError(f"square-wave duty must lie in [0, 1] (got {self.duty})")
        if self.power < 0:
            raise EmuError(f"square-wave power must be >= 0 (got {self.power} W)")

    def segment(self, k: int) -> Segment:
        if self.duty in (0.0, 1.0):
            return Segment(0.0, INF, power=self.power * self.duty)
        n, high = divmod(k, 2)
        start = n * self.period
        if high == 0:
            return Segment(start, start + self.duty * self.period, power=self.power)
        return Segment(start + self.duty * self.period, (n + 1) * self.period, power=0.0)

    def describe(self) -> str:
        return f"square:{self.period:g}s,{self.duty:g},{self.power:g}W"

    def to_json(self) -> dict:
        return {"kind": "square", "period_s": self.period, "duty": self.duty, "power_w": self.power}


@dataclass(frozen=True, eq=False)
class TraceHarvester(Harvester):
    """A recorded power trace: sample i holds `power[i]` from `times[i]` to `times[i+1]`
    (the last sample for as long as the one before it). Time 0 of the run is the first
    sample. After the end: nothing, or the trace again from its start if `loop`."""

    times: np.ndarray  # seconds, strictly increasing
    power: np.ndarray  # W, >= 0
    source: str = ""
    loop: bool = False

    def __post_init__(self):
        times = np.asarray(self.times, dtype=np.float64)
        power = np.asarray(self.power, dtype=np.float64)
        where = f" in {self.source}" if self.source else ""
        if times.ndim != 1 or times.shape != power.shape or times.size < 2:
            raise EmuError(f"a power trace needs at least two samples of (time, power){where}")
        if not np.all(np.isfinite(times)) or not np.all(np.isfinite(power)):
            raise EmuError(f"power trace{where} holds a non-finite value")
        steps = np.diff(times)
        if np.any(steps <= 0):
            i = int(np.flatnonzero(steps <= 0)[0])
            raise EmuError(f"power trace{where}: times must increase strictly (sample {i + 1}: "
                           f"{times[i + 1]!r} s after {times[i]!r} s)")
        if np.any(power < 0):
            i = int(np.flatnonzero(power < 0)[0])
            raise EmuError(f"power trace{where}: negative power {power[i]!r} W at sample {i}")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "power", power)
        starts = (times - times[0]).tolist()
        starts.append(starts[-1] + (starts[-1] - starts[-2]))
        object.__setattr__(self, "_starts", starts)  # len n + 1: sample i covers [starts[i], starts[i+1])
        object.__setattr__(self, "_power_list", power.tolist())

    @property
    def duration(self) -> float:
        return self._starts[-1]

    def segment(self, k: int) -> Segment:
        n = len(self._power_list)
        loops, i = divmod(k, n)
        if loops and not self.loop:
            return Segment(self._starts[-1], INF, power=0.0)
        offset = loops * self._starts[-1]
        return Segment(offset + self._starts[i], offset + self._starts[i + 1], power=self._power_list[i])

    @property
    def samples(self) -> int:
        return len(self._power_list)

    def describe(self) -> str:
        return f"trace:{self.source or '<array>'}" + (",loop" if self.loop else "")

    def to_json(self) -> dict:
        return {"kind": "trace", "file": self.source, "samples": self.samples, "duration_s": self.duration,
                "loop": self.loop}

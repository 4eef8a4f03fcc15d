"""Power configuration: a TOML file and the equivalent command-line strings.

    [harvester]                 # or: harvester = "const:1mW" at the top level
    kind = "const"              # const | current | square | trace
    power = "1mW"

    [capacitor]
    capacitance = "100uF"
    leakage = "1uA"             # a current ("1uA") or a resistance ("10MOhm"); optional
    v_initial = "0V"            # optional, default 0 V: the run starts by charging
    v_max = "3.3V"              # optional clamp while running, default v_on

    [supervisor]
    v_on = "2.8V"
    v_off = "1.8V"
    v_warn = "2.2V"             # optional: power-warning trip level (COMP_E / PVD_IN input)

    [regulator]                 # optional: switching regulator, MCU draws constant power
    efficiency = 0.85           # or "85%"
    v_out = "3.0V"              # optional, default the MCU profile's supply voltage

    [mcu]                       # optional overrides of the board's profile
    frequency = "8MHz"
    current_per_mhz = "118uA"
    cpi = 2.8
    v_supply = "3.0V"
    nv_write_energy = "71nJ"
    nv_writes_per_instruction = 0.014

    [run]                       # optional
    max_time = "3600s"          # wall-clock limit of the emulated device
    stall_cycles = 3            # power cycles without progress before non_termination

Numbers may be plain numbers in SI units or strings with SI prefixes and units. Flag
strings: `parse_harvester("const:1mW")`, `"current:2mA"`, `"square:PERIOD,DUTY,POWER"`
(e.g. "square:100ms,0.25,3mW"), `"trace:FILE"` or `"trace:FILE,loop"`; quantities with
`parse_quantity("100uF", "F")`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import EmuError
from .models import (Capacitor, ConstantCurrent, ConstantPower, Harvester, McuProfile, Regulator, SquareWave,
                     Supervisor, board_profile)
from .timeline import Circuit
from .traces import load_trace
from .units import parse_fraction, parse_quantity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None

__all__ = ["PowerConfig", "load_power_config", "parse_harvester", "parse_leakage", "power_config",
           "HARVESTER_FORMS"]

HARVESTER_FORMS = "const:POWER, current:CURRENT, square:PERIOD,DUTY,POWER or trace:FILE[,loop]"


@dataclass(frozen=True)
class PowerConfig:
    """Everything an energy-driven run needs besides the firmware and the board."""

    harvester: Harvester
    capacitor: Capacitor
    supervisor: Supervisor
    regulator: Regulator | None = None
    mcu: Mapping[str, float] = field(default_factory=dict)  # overrides of the board profile
    max_time: float | None = None  # seconds of device time
    stall_cycles: int = 3
    source: str = ""
    #: trip level of the board's power-warning comparator input (MSP430 COMP_E, STM32
    #: PVD_IN): the firmware's warning interrupt fires when the capacitor falls below it
    v_warn: float | None = None

    def __post_init__(self):
        if self.v_warn is not None and not self.v_warn > 0:
            raise EmuError(f"v_warn must be > 0 (got {self.v_warn} V)")
        if self.stall_cycles < 2:
            raise EmuError(f"stall_cycles must be >= 2 (got {self.stall_cycles})")
        if self.max_time is not None and not self.max_time > 0:
            raise EmuError(f"max_time must be > 0 (got {self.max_time} s)")

    def profile(self, board: str) -> McuProfile:
        return board_profile(board).with_overrides(**dict(self.mcu))

    def circuit(self, board: str) -> Circuit:
        return Circuit(self.harvester, self.capacitor, self.supervisor, self.profile(board), self.regulator)

    def to_json(self) -> dict:
        cap = self.capacitor
        return {
            "harvester": self.harvester.to_json(),
            "capacitance_f": cap.capacitance,
            "leakage_current_a": cap.leakage_current,
            "leakage_resistance_ohm": cap.leakage_resistance,
            "v_initial": cap.v_initial,
            "v_max": cap.v_max,
            "v_on": self.supervisor.v_on,
            "v_off": self.supervisor.v_off,
            "v_warn": self.v_warn,
            "regulator": None if self.regulator is None else
            {"efficiency": self.regulator.efficiency, "v_out": self.regulator.v_out},
            "mcu_overrides": dict(self.mcu),
            "max_time_s": self.max_time,
            "stall_cycles": self.stall_cycles,
        }


# -- flag strings ------------------------------------------------------------------------------
def parse_harvester(text: str, base_dir: str | Path | None = None) -> Harvester:
    """`const:1mW`, `current:2mA`, `square:100ms,0.25,3mW`, `trace:FILE` or
    `trace:FILE,loop` (FILE: .csv or Shepherd .h5; relative to `base_dir` if given)."""
    if not isinstance(text, str) or ":" not in text:
        raise EmuError(f"bad harvester {text!r}: expected {HARVESTER_FORMS}")
    kind, _, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind in ("const", "constant", "power"):
        return ConstantPower(parse_quantity(arg, "W", what=f"harvester power in {text!r}"))
    if kind == "current":
        return ConstantCurrent(parse_quantity(arg, "A", what=f"harvester current in {text!r}"))
    if kind == "square":
        parts = [p.strip() for p in arg.split(",")]
        if len(parts) != 3:
            raise EmuError(f"bad harvester {text!r}: expected square:PERIOD,DUTY,POWER such as square:100ms,0.25,3mW")
        return SquareWave(parse_quantity(parts[0], "s", what=f"square-wave period in {text!r}"),
                          parse_fraction(parts[1], what=f"square-wave duty in {text!r}"),
                          parse_quantity(parts[2], "W", what=f"square-wave power in {text!r}"))
    if kind == "trace":
        name, loop = arg.strip(), False
        if name.lower().endswith(",loop"):
            name, loop = name[: -len(",loop")].strip(), True
        if not name:
            raise EmuError(f"bad harvester {text!r}: expected trace:FILE or trace:FILE,loop")
        return load_trace(_resolve(name, base_dir), loop=loop)
    raise EmuError(f"unknown harvester kind {kind!r} in {text!r}: expected {HARVESTER_FORMS}")


def parse_leakage(text: str | float) -> tuple[float, float | None]:
    """(leakage current A, leakage resistance Ohm or None) from "1uA" or "10MOhm"."""
    if isinstance(text, str):
        s = text.strip()
        if s.endswith("A"):
            return parse_quantity(s, "A", what="leakage current"), None
        if s.endswith(("Ohm", "ohm", "Ω", "R")):
            return 0.0, parse_quantity(s, "Ohm", what="leakage resistance")
    raise EmuError(f"bad leakage {text!r}: give a current such as 1uA or a resistance such as 10MOhm")


def power_config(*, harvester: str | Harvester | None = None, capacitance: str | float | None = None,
                 v_on: str | float | None = None, v_off: str | float | None = None,
                 leakage: str | None = None, efficiency: str | float | None = None,
                 v_initial: str | float | None = None, v_warn: str | float | None = None,
                 base: PowerConfig | None = None,
                 base_dir: str | Path | None = None) -> PowerConfig:
    """A config from command-line strings (`--harvester const:1mW --capacitor 100uF
    --v-on 2.8 --v-off 1.8 [--leakage 1uA] [--efficiency 0.85]`), each overriding `base`
    (a config file) where given."""
    missing = []
    if harvester is None and base is None:
        missing.append("--harvester (e.g. const:1mW)")
    if capacitance is None and base is None:
        missing.append("--capacitor (e.g. 100uF)")
    if v_on is None and base is None:
        missing.append("--v-on (e.g. 2.8)")
    if v_off is None and base is None:
        missing.append("--v-off (e.g. 1.8)")
    if missing:
        raise EmuError("an energy-driven run needs " + ", ".join(missing) + " or a --power CONFIG file")
    h = base.harvester if harvester is None else (
        harvester if isinstance(harvester, Harvester) else parse_harvester(harvester, base_dir))
    cap = base.capacitor if base is not None else None
    leak_i = cap.leakage_current if cap else 0.0
    leak_r = cap.leakage_resistance if cap else None
    if leakage is not None:
        leak_i, leak_r = parse_leakage(leakage)
    capacitor = Capacitor(
        parse_quantity(capacitance, "F", what="capacitance") if capacitance is not None else cap.capacitance,
        leak_i, leak_r,
        parse_quantity(v_initial, "V", what="initial voltage") if v_initial is not None else (cap.v_initial if cap else 0.0),
        cap.v_max if cap else None)
    supervisor = Supervisor(
        parse_quantity(v_on, "V", what="v_on") if v_on is not None else base.supervisor.v_on,
        parse_quantity(v_off, "V", what="v_off") if v_off is not None else base.supervisor.v_off)
    regulator = base.regulator if base is not None else None
    if efficiency is not None:
        regulator = Regulator(parse_fraction(efficiency, what="regulator efficiency"),
                              regulator.v_out if regulator else None)
    warn = parse_quantity(v_warn, "V", what="v_warn") if v_warn is not None else (base.v_warn if base else None)
    return PowerConfig(h, capacitor, supervisor, regulator,
                       dict(base.mcu) if base else {}, base.max_time if base else None,
                       base.stall_cycles if base else 3, base.source if base else "", warn)


# -- TOML -------------------------------------------------------------------------------------
_SECTIONS = {
    "harvester": ("kind", "power", "current", "period", "duty", "file", "loop"),
    "capacitor": ("capacitance", "leakage", "leakage_current", "leakage_resistance", "v_initial", "v_max"),
    "supervisor": ("v_on", "v_off", "v_warn"),
    "regulator": ("efficiency", "v_out"),
    "mcu": ("frequency", "current_per_mhz", "v_supply", "cpi", "nv_write_energy", "nv_writes_per_instruction"),
    "run": ("max_time", "stall_cycles"),
}


def load_power_config(path: str | Path) -> PowerConfig:
    """Read a TOML power configuration (see the module docstring)."""
    path = Path(path)
    if tomllib is None:  # pragma: no cover - Python 3.10 without tomli
        raise EmuError("reading a TOML power config on Python 3.10 needs tomli: pip install tomli")
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise EmuError(f"power config not found: {path}") from None
    except OSError as exc:
        raise EmuError(f"cannot read power config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise EmuError(f"power config {path} is not valid TOML: {exc}") from None
    return power_config_from_dict(doc, base_dir=path.parent, source=str(path))


def power_config_from_dict(doc: Mapping[str, Any], base_dir: str | Path | None = None, source: str = "") -> PowerConfig:
    where = f" in {source}" if source else ""
    unknown = set(doc) - set(_SECTIONS)
    if unknown:
        raise EmuError(f"unknown section(s) {', '.join(sorted(unknown))}{where}; "
                       f"known: {', '.join(_SECTIONS)}")
    sections: dict[str, dict] = {}
    for name, value in doc.items():
        if name == "harvester" and isinstance(value, str):
            sections[name] = {"spec": value}
            continue
        if not isinstance(value, Mapping):
            raise EmuError(f"[{name}]{where} must be a table of settings")
        bad = set(value) - set(_SECTIONS[name])
        if bad:
            raise EmuError(f"unknown setting(s) {', '.join(sorted(bad))} in [{name}]{where}; "
                           f"known: {', '.join(_SECTIONS[name])}")
        sections[name] = dict(value)
    for required in ("harvester", "capacitor", "supervisor"):
        if required not in sections:
            raise EmuError(f"power config{where} lacks the [{required}] section")

    def need(section: str, key: str):
        try:
            return sections[section][key]
        except KeyError:
            raise EmuError(f"power config{where} lacks {key} in [{section}]") from None

    harvester = _harvester_from_table(sections["harvester"], base_dir, where)
    c = sections["capacitor"]
    leak_i, leak_r = 0.0, None
    if "leakage" in c:
        leak_i, leak_r = parse_leakage(c["leakage"])
    if "leakage_current" in c:
        leak_i = parse_quantity(c["leakage_current"], "A", what="leakage_current")
    if "leakage_resistance" in c:
        leak_r = parse_quantity(c["leakage_resistance"], "Ohm", what="leakage_resistance")
    capacitor = Capacitor(
        parse_quantity(need("capacitor", "capacitance"), "F", what="capacitance"), leak_i, leak_r,
        parse_quantity(c.get("v_initial", 0.0), "V", what="v_initial"),
        parse_quantity(c["v_max"], "V", what="v_max") if "v_max" in c else None)
    supervisor = Supervisor(parse_quantity(need("supervisor", "v_on"), "V", what="v_on"),
                            parse_quantity(need("supervisor", "v_off"), "V", what="v_off"))
    s = sections["supervisor"]
    v_warn = parse_quantity(s["v_warn"], "V", what="v_warn") if "v_warn" in s else None
    regulator = None
    if "regulator" in sections:
        r = sections["regulator"]
        regulator = Regulator(parse_fraction(need("regulator", "efficiency"), what="regulator efficiency"),
                              parse_quantity(r["v_out"], "V", what="v_out") if "v_out" in r else None)
    mcu: dict[str, float] = {}
    for key, value in sections.get("mcu", {}).items():
        if key == "frequency":
            mcu["frequency"] = parse_quantity(value, "Hz", what="mcu frequency")
        elif key == "current_per_mhz":
            mcu["current_per_hz"] = parse_quantity(value, "A", what="mcu current_per_mhz") / 1e6
        elif key == "v_supply":
            mcu["v_supply"] = parse_quantity(value, "V", what="mcu v_supply")
        elif key == "nv_write_energy":
            mcu["nv_write_energy"] = parse_quantity(value, "J", what="mcu nv_write_energy")
        else:  # cpi, nv_writes_per_instruction: plain numbers
            mcu[key] = _number(value, f"mcu {key}", where)
    run = sections.get("run", {})
    max_time = parse_quantity(run["max_time"], "s", what="max_time") if "max_time" in run else None
    stall = run.get("stall_cycles", 3)
    if not isinstance(stall, int) or isinstance(stall, bool):
        raise EmuError(f"stall_cycles{where} must be an integer >= 2 (got {stall!r})")
    return PowerConfig(harvester, capacitor, supervisor, regulator, mcu, max_time, stall, source, v_warn)


def _harvester_from_table(table: dict, base_dir, where: str) -> Harvester:
    if "spec" in table:
        return parse_harvester(table["spec"], base_dir)
    kind = str(table.get("kind", "")).lower()
    try:
        if kind in ("const", "constant", "power"):
            return ConstantPower(parse_quantity(table["power"], "W", what="harvester power"))
        if kind == "current":
            return ConstantCurrent(parse_quantity(table["current"], "A", what="harvester current"))
        if kind == "square":
            return SquareWave(parse_quantity(table["period"], "s", what="square-wave period"),
                              parse_fraction(table["duty"], what="square-wave duty"),
                              parse_quantity(table["power"], "W", what="square-wave power"))
        if kind == "trace":
            loop = table.get("loop", False)
            if not isinstance(loop, bool):
                raise EmuError(f"[harvester] loop{where} must be true or false (got {loop!r})")
            return load_trace(_resolve(str(table["file"]), base_dir), loop=loop)
    except KeyError as exc:
        raise EmuError(f"[harvester] of kind {kind!r}{where} lacks {exc.args[0]}") from None
    raise EmuError(f"[harvester] kind{where} must be const, current, square or trace (got {kind!r})")


def _number(value, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise EmuError(f"{what}{where} must be a number (got {value!r})")
    try:
        return float(value)
    except ValueError:
        raise EmuError(f"{what}{where} must be a number (got {value!r})") from None


def _resolve(name: str, base_dir) -> Path:
    p = Path(name).expanduser()
    return p if p.is_absolute() or base_dir is None else Path(base_dir) / p

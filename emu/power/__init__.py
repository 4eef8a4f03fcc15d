"""Power-failure schedules from energy: capacitor, supervisor, regulator, harvester, MCU load.

    >>> import emu
    >>> from emu.power import load_power_config, power_config, run_energy
    >>> config = power_config(harvester="const:1mW", capacitance="100uF", v_on="2.8", v_off="1.8")
    >>> m = emu.Machine.from_elf("build/msp430fr5994/demo.elf")
    >>> r = run_energy(m, config)
    >>> r.outcome, r.latency, [p.instructions for p in r.periods]

See docs/energy.md for the models, the config format and the datasheet figures.
"""

from .circuit import Dynamics
from .config import (HARVESTER_FORMS, PowerConfig, load_power_config, parse_harvester, parse_leakage, power_config,
                     power_config_from_dict)
from .models import (BOARD_PROFILES, Capacitor, ConstantCurrent, ConstantPower, Harvester, McuProfile, Regulator,
                     Segment, SquareWave, Supervisor, TraceHarvester, board_profile)
from .run import ENERGY_OUTCOMES, EnergyRunResult, PowerPeriod, RepeatedUnit, run_energy
from .timeline import Circuit, EnergyState, Event
from .traces import load_trace, read_csv_trace, read_shepherd_trace
from .units import format_quantity, parse_fraction, parse_quantity

__all__ = [
    "run_energy", "EnergyRunResult", "PowerPeriod", "RepeatedUnit", "ENERGY_OUTCOMES",
    "PowerConfig", "load_power_config", "power_config", "power_config_from_dict", "parse_harvester",
    "parse_leakage", "parse_quantity", "parse_fraction", "format_quantity", "HARVESTER_FORMS",
    "Capacitor", "Supervisor", "Regulator", "McuProfile", "BOARD_PROFILES", "board_profile",
    "Harvester", "ConstantPower", "ConstantCurrent", "SquareWave", "TraceHarvester", "Segment",
    "load_trace", "read_csv_trace", "read_shepherd_trace",
    "Circuit", "EnergyState", "Event", "Dynamics",
]

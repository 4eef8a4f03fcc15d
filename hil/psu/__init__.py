"""Programmable power supplies for hardware in the loop: one entry point, six models.

    >>> from hil.psu import open_psu
    >>> with open_psu("rigol-dp832", "TCPIP::192.0.2.5::5555::SOCKET", channel=1) as psu:
    ...     psu.set_current_limit(0.05)
    ...     psu.set_voltage(3.3)
    ...     psu.output(True)
    ...     psu.measure_current()

`open_psu(model, resource, channel=1, **options)` returns a `PowerSupply`: `set_voltage`,
`set_current_limit`, `output`, `measure_voltage`, `measure_current`, `close`, and the
context-manager protocol. `resource` is a serial device path (`/dev/ttyUSB0`) or a VISA
resource string (`ASRL/dev/ttyUSB0::INSTR`, `USB0::…::INSTR`, `TCPIP::192.0.2.5::5025::SOCKET`).
SCPI models go through PyVISA's pyvisa-py backend; the Korad and the PPK2 through pyserial.
docs/hil.md lists the models, their commands and options; `hil.sim` simulates each of them.

Public names: `open_psu`, `MODELS`, `PowerSupply`, `SupplyResource`, `power_cycle`, the
errors (`PsuError`, `InstrumentError`, `InstrumentTimeout`) and the driver classes.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from .base import PowerSupply, SupplyResource, power_cycle
from .errors import InstrumentError, InstrumentTimeout, PsuError
from .keysight import KeysightE3631A, KeysightE36312A
from .korad import KoradKA3005P
from .ppk2 import Ppk2
from .rigol import RigolDP832
from .siglent import SiglentSPD3303X

__all__ = [
    "open_psu", "MODELS", "PowerSupply", "SupplyResource", "power_cycle", "PsuError",
    "InstrumentError", "InstrumentTimeout", "KeysightE36312A", "KeysightE3631A", "RigolDP832",
    "SiglentSPD3303X", "KoradKA3005P", "Ppk2",
]

MODELS = MappingProxyType({cls.model: cls for cls in (
    KeysightE36312A, KeysightE3631A, RigolDP832, SiglentSPD3303X, KoradKA3005P, Ppk2)})


def open_psu(model: str, resource: str, channel: int = 1, **options: Any) -> PowerSupply:
    """Open one channel of a supply. `model` is one of `MODELS`; options are per model
    (docs/hil.md); every driver takes `timeout` (seconds per call)."""
    try:
        cls = MODELS[model.lower()]
    except (KeyError, AttributeError):
        raise PsuError(f"unknown power-supply model {model!r}; known models: "
                       f"{', '.join(MODELS)}") from None
    return cls(resource, channel, **options)

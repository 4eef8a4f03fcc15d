"""Simulated instruments for the virtual rack and for testing the hardware-facing code.

Each simulator follows its real device's documented protocol and serves it over a real OS
channel — a pseudo-terminal, or a loopback TCP socket for instruments with a LAN port — so a
driver under test does real serial or socket I/O and cannot tell it from the instrument:

    >>> from hil.sim import simulate, Resistor
    >>> from hil.psu import open_psu
    >>> with simulate("rigol-dp832", loads={1: Resistor(100)}) as sim, \\
    ...         open_psu("rigol-dp832", sim.resource) as psu:
    ...     psu.set_voltage(3.3); psu.output(True); psu.measure_current()
    0.033

`simulate(model, transport="pty"|"tcp", **options)` returns a `SimulatedInstrument`: its
`resource` is what `hil.psu.open_psu` takes (`ASRL/dev/pts/N::INSTR` for SCPI models over a
pty, `/dev/pts/N` for the Korad and the PPK2, `TCPIP::127.0.0.1::PORT::SOCKET` over TCP),
`device` is the instrument model (its state: `device.channels[1].voltage`, its error queue,
its log), `hang()` / `resume()` make it stop and restart answering.

Options: `loads` ({channel: Load}) for the SCPI models, `load` for the Korad and the PPK2,
and the model's quirk settings (see each simulator class).

`hil.sim.bsl` (imported on its own) simulates an MSP430FR5994's UART bootloader behind an
RFC 2217 port, for the BSL flasher; `hil.sim.ftdi` an FT232H as a pyusb backend, for the
FTDI load switch.

Public names: `simulate`, `SimulatedInstrument`, `SIMULATORS`, the loads (`Resistor`,
`ConstantCurrent`, `OpenCircuit`, `CallbackLoad`) and the simulator classes.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hil.psu.errors import PsuError

from .korad import KoradKA3005PSim
from .load import CallbackLoad, ConstantCurrent, Load, OpenCircuit, Resistor, operating_point
from .ppk2 import Ppk2Sim
from .serve import Endpoint, PtyEndpoint, TcpEndpoint
from .supplies import KeysightE3631ASim, KeysightE36312ASim, RigolDP832Sim, SiglentSPD3303XSim

__all__ = [
    "simulate", "SimulatedInstrument", "SIMULATORS", "Load", "Resistor", "ConstantCurrent",
    "OpenCircuit", "CallbackLoad", "operating_point", "KeysightE36312ASim", "KeysightE3631ASim",
    "RigolDP832Sim", "SiglentSPD3303XSim", "KoradKA3005PSim", "Ppk2Sim", "PtyEndpoint",
    "TcpEndpoint",
]

# model -> (simulator class, speaks SCPI through VISA, has a LAN socket)
SIMULATORS = MappingProxyType({
    "keysight-e36312a": (KeysightE36312ASim, True, True),
    "keysight-e3631a": (KeysightE3631ASim, True, False),
    "rigol-dp832": (RigolDP832Sim, True, True),
    "siglent-spd3303x": (SiglentSPD3303XSim, True, True),
    "korad-ka3005p": (KoradKA3005PSim, False, False),
    "ppk2": (Ppk2Sim, False, False),
})


class SimulatedInstrument:
    """A simulator served on an endpoint; a context manager that closes the endpoint."""

    def __init__(self, model: str, device: Any, endpoint: Endpoint, scpi: bool):
        self.model, self.device, self.endpoint = model, device, endpoint
        if isinstance(endpoint, TcpEndpoint):
            self.resource = f"TCPIP::{endpoint.host}::{endpoint.port}::SOCKET"
        else:
            self.resource = f"ASRL{endpoint.path}::INSTR" if scpi else endpoint.path

    def hang(self) -> None:
        """Stop answering (the instrument seems dead) until `resume()`."""
        self.endpoint.hang()

    def resume(self) -> None:
        self.endpoint.resume()

    def close(self) -> None:
        self.endpoint.close()

    def __enter__(self) -> SimulatedInstrument:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SimulatedInstrument {self.model} at {self.resource}>"


def simulate(model: str, transport: str = "pty", **options: Any) -> SimulatedInstrument:
    """Start the simulator of `model` on a pty (default) or a loopback TCP socket."""
    try:
        cls, scpi, lan = SIMULATORS[model.lower()]
    except (KeyError, AttributeError):
        raise PsuError(f"no simulator for {model!r}; simulated models: "
                       f"{', '.join(SIMULATORS)}") from None
    try:
        device = cls(**options)
    except TypeError as e:
        raise PsuError(f"simulator of {model}: bad option ({e})") from e
    if transport == "pty":
        endpoint: Endpoint = PtyEndpoint(device)
    elif transport == "tcp":
        if not lan:
            raise PsuError(f"the {model} has no LAN socket interface; use transport='pty'")
        endpoint = TcpEndpoint(device)
    else:
        raise PsuError(f"transport must be 'pty' or 'tcp', not {transport!r}")
    return SimulatedInstrument(model.lower(), device, endpoint, scpi)

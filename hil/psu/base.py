"""The power-supply interface every driver (and every simulated or emulated supply) offers,
the static description of a supply channel, and the shared SCPI driver skeleton.

Following labgrid's split, a *resource* (`SupplyResource`) is a static description — which
model, which VISA resource or serial port, which channel, which options — and a *driver*
(an object satisfying `PowerSupply`) implements the small power protocol on it: set voltage,
set current limit, output on/off, measure voltage and current, close. A rack script holds
resources and opens drivers; it never cares whether the supply is real or simulated.

`ScpiSupply` is the part the four SCPI drivers share: open a `VisaLink`, check `*IDN?` names
the expected model, empty the error queue, then for every configuration command send it,
read the error queue (`SYST:ERR?`) and raise `InstrumentError` with the instrument's reply
if it reports anything, optionally read the set-point back. Subclasses only give the
command strings of their programming manual.

Public names: `PowerSupply`, `Supply`, `SupplyResource`, `ScpiSupply`, `power_cycle`,
`scpi_number`.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol, runtime_checkable

from .errors import InstrumentError, PsuError
from .links import SerialSettings, VisaLink, visa_resource

__all__ = ["PowerSupply", "Supply", "SupplyResource", "ScpiSupply", "power_cycle", "scpi_number"]


@runtime_checkable
class PowerSupply(Protocol):
    """One output channel of a programmable supply (or source meter), real or simulated.

    Every call has a timeout; instrument errors raise `InstrumentError` (a `PsuError`, an
    `emu.EmuError`). Usable as a context manager: leaving the block closes the connection
    (the output stays as it is).
    """

    name: str

    def set_voltage(self, volts: float) -> None:
        """Program the output voltage set-point, in volts."""

    def set_current_limit(self, amps: float) -> None:
        """Program the current limit (constant-current set-point), in amperes."""

    def output(self, on: bool) -> None:
        """Switch the output on or off."""

    def measure_voltage(self) -> float:
        """The measured output voltage, in volts."""

    def measure_current(self) -> float:
        """The measured output current, in amperes."""

    def close(self) -> None:
        """Release the connection (idempotent)."""

    def __enter__(self) -> PowerSupply: ...

    def __exit__(self, *exc: object) -> None: ...


def power_cycle(psu: PowerSupply, off_time: float = 0.5) -> None:
    """Switch `psu` off, wait `off_time` seconds, switch it on again."""
    psu.output(False)
    time.sleep(off_time)
    psu.output(True)


def scpi_number(value: float, what: str, name: str) -> str:
    """`value` as an SCPI <NRf> (up to 6 significant digits); `PsuError` if not finite."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise PsuError(f"{name}: {what} must be a finite number of volts/amperes, not {value!r}")
    return f"{value:.6g}"


@dataclass(frozen=True)
class SupplyResource:
    """A static description of one supply channel: enough to open its driver."""

    model: str
    resource: str
    channel: int = 1
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def open(self) -> PowerSupply:
        """Open the driver (`hil.psu.open_psu`)."""
        from . import open_psu

        return open_psu(self.model, self.resource, self.channel, **dict(self.options))


class Supply:
    """Context-manager plumbing shared by the drivers."""

    name: str = "power supply"

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Supply:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


_ERROR_REPLY = re.compile(r"^\s*([+-]?\d+)\s*[, ]?\s*(.*?)\s*$", re.DOTALL)
_ERROR_HINTS = {
    -222: "The value is outside the channel's programming range (docs/hil.md lists the ranges)",
    -113: "This model or firmware does not know the command",
    -102: "The instrument could not parse the command",
    550: "The instrument is in local mode: it needs SYSTem:REMote over RS-232 (option remote=True)",
}


class ScpiSupply(Supply):
    """SCPI driver skeleton; a subclass sets the class attributes and the `_cmd_*` builders.

    Options (keyword arguments of `open_psu`): `timeout` (s, default 2), `command_delay`
    (s between commands, default per model), `check_errors` (read the error queue after each
    configuration command, default True), `verify` (read the set-point back, default per
    model), `check_idn` (default True), and serial settings for ASRL resources (`baud_rate`,
    `data_bits`, `parity`, `stop_bits`, `flow_control`).
    """

    model: ClassVar[str]
    title: ClassVar[str]
    idn_model: ClassVar[str]                # must appear in the *IDN? reply
    channels: ClassVar[tuple[int, ...]]
    serial_defaults: ClassVar[SerialSettings] = SerialSettings()
    command_delay_default: ClassVar[float] = 0.0
    verify_default: ClassVar[bool] = False
    readback_tolerance: ClassVar[float] = 0.0015
    error_query: ClassVar[str] = "SYST:ERR?"
    max_errors: ClassVar[int] = 20          # bound on error-queue draining

    def __init__(self, resource: str, channel: int = 1, *, timeout: float = 2.0,
                 command_delay: float | None = None, check_errors: bool = True,
                 verify: bool | None = None, check_idn: bool = True, **options: Any):
        if channel not in self.channels:
            raise PsuError(f"{self.title} has channels {', '.join(map(str, self.channels))}, "
                           f"not {channel!r}")
        self.channel = channel
        self.resource = visa_resource(resource)
        self.name = f"{self.title} at {self.resource} channel {channel}"
        self.check_errors = check_errors
        self.verify = self.verify_default if verify is None else verify
        serial = self.serial_defaults.with_options(options)
        self._init_options(options)
        if options:
            raise PsuError(f"{self.name}: unknown option(s) {', '.join(sorted(options))}")
        delay = self.command_delay_default if command_delay is None else command_delay
        self.link = VisaLink(self.resource, name=self.name, timeout=timeout, command_delay=delay,
                             serial=serial)
        try:
            self._startup(check_idn)
        except BaseException:
            self.link.close()
            raise

    # -- hooks for subclasses -------------------------------------------------------------

    def _init_options(self, options: dict[str, Any]) -> None:
        """Pop model-specific options from `options` (the rest are reported as unknown)."""

    def _before_idn(self) -> None:
        """Anything the instrument needs before it talks (e.g. SYSTem:REMote)."""

    def _cmd_voltage(self, value: str) -> list[str]:
        raise NotImplementedError

    def _cmd_current(self, value: str) -> list[str]:
        raise NotImplementedError

    def _cmd_output(self, on: bool) -> list[str]:
        raise NotImplementedError

    def _cmd_measure_voltage(self) -> str:
        raise NotImplementedError

    def _cmd_measure_current(self) -> str:
        raise NotImplementedError

    def _cmd_query_voltage(self) -> str:
        raise NotImplementedError

    def _cmd_query_current(self) -> str:
        raise NotImplementedError

    # -- the shared protocol --------------------------------------------------------------

    def _startup(self, check_idn: bool) -> None:
        self._before_idn()
        if check_idn:
            idn = self.link.query("*IDN?")
            if self.idn_model.upper() not in idn.upper():
                raise InstrumentError(self.name, "*IDN?", idn, f"this is not a {self.title}",
                                      "Check the model name given to open_psu and the resource")
        if self.check_errors:
            self._errors()  # stale errors from before we connected are not ours

    def _errors(self) -> list[str]:
        """Drain the error queue; the non-zero entries, oldest first."""
        found = []
        for _ in range(self.max_errors):
            reply = self.link.query(self.error_query)
            m = _ERROR_REPLY.match(reply)
            if not m:
                raise InstrumentError(self.name, self.error_query, reply,
                                      "the error queue answered something that is not an error entry")
            if int(m.group(1)) == 0:
                break
            found.append(reply)
        return found

    def _configure(self, commands: list[str]) -> None:
        for command in commands:
            self.link.write(command)
            if self.check_errors:
                errors = self._errors()
                if errors:
                    code = int(_ERROR_REPLY.match(errors[0]).group(1))
                    raise InstrumentError(self.name, command, " | ".join(errors),
                                          "the instrument reported an error",
                                          _ERROR_HINTS.get(code, ""))

    def _verify(self, query: str, wanted: float, command: str) -> None:
        reply = self.link.query(query)
        got = self._float(query, reply)
        if abs(got - wanted) > self.readback_tolerance + 1e-6 * abs(wanted):
            raise InstrumentError(self.name, command, f"{query} -> {reply}",
                                  f"the set-point reads back as {got:g}, not {wanted:g}",
                                  "The value is probably outside the channel's range")

    def _float(self, command: str, reply: str) -> float:
        try:
            return float(reply.split(",")[0])
        except ValueError:
            raise InstrumentError(self.name, command, reply, "the reply is not a number") from None

    def set_voltage(self, volts: float) -> None:
        value = scpi_number(volts, "the voltage", self.name)
        commands = self._cmd_voltage(value)
        self._configure(commands)
        if self.verify:
            self._verify(self._cmd_query_voltage(), float(value), commands[-1])

    def set_current_limit(self, amps: float) -> None:
        value = scpi_number(amps, "the current limit", self.name)
        commands = self._cmd_current(value)
        self._configure(commands)
        if self.verify:
            self._verify(self._cmd_query_current(), float(value), commands[-1])

    def output(self, on: bool) -> None:
        self._configure(self._cmd_output(bool(on)))

    def measure_voltage(self) -> float:
        command = self._cmd_measure_voltage()
        return self._float(command, self.link.query(command))

    def measure_current(self) -> float:
        command = self._cmd_measure_current()
        return self._float(command, self.link.query(command))

    def close(self) -> None:
        self.link.close()

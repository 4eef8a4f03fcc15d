"""Driver for the Korad KA3005P (also sold as Tenma 72-2540, Velleman PS3005D, RND 320-KA3005P).

Not SCPI: short ASCII commands over a serial line (USB virtual COM port or RS-232), 9600 baud,
8N1, **no terminator** on commands or replies — the supply frames a command by the pause that
follows it, so commands must be spaced (the protocol notes give ~50 ms for set commands;
libsigrok waits 80 ms), and a reply is a fixed number of bytes:

    VSET1:03.30   ISET1:0.100   OUT1 / OUT0         (no reply)
    VSET1? -> 03.30   ISET1? -> 0.100   VOUT1? -> 03.30   IOUT1? -> 0.012   (5 bytes)
    STATUS? -> one byte (bit 6 = output on, bit 0 = CV)   *IDN? -> KORADKA3005PV2.0

The supply has no error queue and silently ignores values it cannot take, so the driver reads
every set-point back (`VSET1?`, `ISET1?`) and the output state (`STATUS?`) and raises
`InstrumentError` naming the command and the read-back when they disagree. Some firmware
sends a sixth byte after the ISET1? reply; input is discarded before every query, so it is
never mistaken for the next reply.

Public name: `KoradKA3005P`.
"""

from __future__ import annotations

import math
from typing import Any

from .base import Supply
from .errors import InstrumentError, PsuError
from .links import SerialLink, SerialSettings, serial_port

__all__ = ["KoradKA3005P"]


class KoradKA3005P(Supply):
    """Korad KA3005P: 0–30 V, 0–5 A, one channel.

    Options: `timeout` (s, default 1), `command_delay` (s between commands, default 0.05),
    `check_idn` (default True), serial settings (`baud_rate`, ...; the supply is fixed at 9600 8N1).
    """

    model = "korad-ka3005p"
    title = "Korad KA3005P"
    idn_models = ("KA3005P", "KD3005P", "72-2540", "PS3005D")

    def __init__(self, resource: str, channel: int = 1, *, timeout: float = 1.0,
                 command_delay: float = 0.05, check_idn: bool = True, **options: Any):
        if channel != 1:
            raise PsuError(f"{self.title} has one channel (1), not {channel!r}")
        self.channel = 1
        self.port = serial_port(resource)
        self.name = f"{self.title} at {self.port}"
        settings = SerialSettings().with_options(options)
        if options:
            raise PsuError(f"{self.name}: unknown option(s) {', '.join(sorted(options))}")
        self.link = SerialLink(self.port, name=self.name, timeout=timeout,
                               command_delay=command_delay, settings=settings)
        try:
            if check_idn:
                idn = self.link.query("*IDN?")
                if not any(m in idn.upper() for m in self.idn_models):
                    raise InstrumentError(self.name, "*IDN?", idn, f"this is not a {self.title}",
                                          "Check the model name given to open_psu and the port")
        except BaseException:
            self.link.close()
            raise

    def _number(self, value: float, what: str) -> float:
        try:
            value = float(value)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise PsuError(f"{self.name}: {what} must be a finite number, not {value!r}")
        return value

    def _read_float(self, query: str) -> tuple[float, str]:
        reply = self.link.query(query, 5)
        try:
            return float(reply), reply
        except ValueError:
            raise InstrumentError(self.name, query, reply, "the reply is not a number") from None

    def _set(self, command: str, query: str, wanted: float, tolerance: float) -> None:
        self.link.write(command)
        got, reply = self._read_float(query)
        if abs(got - wanted) > tolerance:
            raise InstrumentError(self.name, command, f"{query} -> {reply}",
                                  f"the supply did not take the set-point (reads back {got:g})",
                                  "The KA3005P ignores values outside 0-30 V / 0-5 A")

    def set_voltage(self, volts: float) -> None:
        volts = self._number(volts, "the voltage")
        self._set(f"VSET1:{volts:05.2f}", "VSET1?", round(volts, 2), 0.006)

    def set_current_limit(self, amps: float) -> None:
        amps = self._number(amps, "the current limit")
        self._set(f"ISET1:{amps:05.3f}", "ISET1?", round(amps, 3), 0.0006)

    def output(self, on: bool) -> None:
        command = "OUT1" if on else "OUT0"
        self.link.write(command)
        status = self.link.query("STATUS?", 1)
        if bool(ord(status) & 0x40) != bool(on):
            raise InstrumentError(self.name, command, f"STATUS? -> 0x{ord(status):02x}",
                                  f"the output did not switch {'on' if on else 'off'}")

    def measure_voltage(self) -> float:
        return self._read_float("VOUT1?")[0]

    def measure_current(self) -> float:
        return self._read_float("IOUT1?")[0]

    def close(self) -> None:
        self.link.close()

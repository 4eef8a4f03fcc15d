"""Drivers for the Keysight (Agilent) E36312A and E3631A triple-output supplies (SCPI).

E36312A (E36300 Series Programming Guide): channels are addressed with SCPI channel lists,
so every command names its channel and no selection state is kept on the instrument:

    VOLT 3.3,(@1)   CURR 0.1,(@1)   OUTP ON,(@1)   MEAS:VOLT? (@1)   MEAS:CURR? (@1)
    SYST:ERR?  ->  +0,"No error" | -222,"Data out of range"

E3631A (E3631A User's Guide, chapter 4 "Remote Interface Reference"): three outputs named
P6V, P25V and N25V (channels 1, 2, 3) selected with INSTrument:SELect; OUTPut switches *all
three outputs* together; over RS-232 the supply must first be put in remote mode with
SYSTem:REMote, and the line is 9600 baud, 8 data bits, no parity, 2 stop bits, DTR/DSR
handshake (the factory setting):

    SYST:REM   INST:SEL P6V   VOLT 3.3   CURR 0.1   OUTP ON   MEAS:VOLT? P6V   MEAS:CURR? P6V

The -25 V output (N25V, channel 3) is programmed with negative voltages, as on the instrument.

Public names: `KeysightE36312A`, `KeysightE3631A`.
"""

from __future__ import annotations

from typing import Any

from .base import ScpiSupply
from .links import SerialSettings

__all__ = ["KeysightE36312A", "KeysightE3631A"]


class KeysightE36312A(ScpiSupply):
    """Keysight E36312A: CH1 6 V / 5 A, CH2 and CH3 25 V / 1 A. USB, LAN (socket port 5025)."""

    model = "keysight-e36312a"
    title = "Keysight E36312A"
    idn_model = "E36312A"
    channels = (1, 2, 3)

    def _cmd_voltage(self, value: str) -> list[str]:
        return [f"VOLT {value},(@{self.channel})"]

    def _cmd_current(self, value: str) -> list[str]:
        return [f"CURR {value},(@{self.channel})"]

    def _cmd_output(self, on: bool) -> list[str]:
        return [f"OUTP {'ON' if on else 'OFF'},(@{self.channel})"]

    def _cmd_measure_voltage(self) -> str:
        return f"MEAS:VOLT? (@{self.channel})"

    def _cmd_measure_current(self) -> str:
        return f"MEAS:CURR? (@{self.channel})"

    def _cmd_query_voltage(self) -> str:
        return f"VOLT? (@{self.channel})"

    def _cmd_query_current(self) -> str:
        return f"CURR? (@{self.channel})"


class KeysightE3631A(ScpiSupply):
    """Keysight/Agilent E3631A: P6V (6 V / 5 A), P25V (+25 V / 1 A), N25V (-25 V / 1 A).
    GPIB and RS-232. `output()` switches all three outputs (the instrument has one switch).

    Option `remote` (default: True on a serial resource): send SYSTem:REMote on opening.
    """

    model = "keysight-e3631a"
    title = "Keysight E3631A"
    idn_model = "E3631A"
    channels = (1, 2, 3)
    outputs = {1: "P6V", 2: "P25V", 3: "N25V"}
    serial_defaults = SerialSettings(baud_rate=9600, data_bits=8, parity="none", stop_bits=2,
                                     flow_control="dtr_dsr")

    def _init_options(self, options: dict[str, Any]) -> None:
        self.remote = options.pop("remote", None)

    def _before_idn(self) -> None:
        if self.remote or (self.remote is None and self.link.is_serial):
            self.link.write("SYST:REM")

    @property
    def _out(self) -> str:
        return self.outputs[self.channel]

    def _cmd_voltage(self, value: str) -> list[str]:
        return [f"INST:SEL {self._out}", f"VOLT {value}"]

    def _cmd_current(self, value: str) -> list[str]:
        return [f"INST:SEL {self._out}", f"CURR {value}"]

    def _cmd_output(self, on: bool) -> list[str]:
        return [f"OUTP {'ON' if on else 'OFF'}"]

    def _cmd_measure_voltage(self) -> str:
        return f"MEAS:VOLT? {self._out}"

    def _cmd_measure_current(self) -> str:
        return f"MEAS:CURR? {self._out}"

    def _cmd_query_voltage(self) -> str:
        return "VOLT?"  # of the output just selected by _cmd_voltage

    def _cmd_query_current(self) -> str:
        return "CURR?"

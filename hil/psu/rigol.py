"""Driver for the Rigol DP832 / DP832A triple-output supply (SCPI, DP800 Programming Guide).

CH1 and CH2 are 30 V / 3 A, CH3 5 V / 3 A (programmable to 32 V / 3.2 A and 5.3 V / 3.2 A).
Interfaces: USB (USBTMC), LAN (raw socket on port 5555, or VXI-11), RS-232 (default 9600 baud,
8N1). Every command names its channel, so nothing depends on the selected channel:

    :SOUR1:VOLT 3.3   :SOUR1:CURR 0.1   :OUTP CH1,ON   :MEAS:VOLT? CH1   :MEAS:CURR? CH1
    :SYST:ERR?  ->  0,"No error" | -222,"Data out of range"

Public name: `RigolDP832`.
"""

from __future__ import annotations

from .base import ScpiSupply
from .links import SerialSettings

__all__ = ["RigolDP832"]


class RigolDP832(ScpiSupply):
    """Rigol DP832 / DP832A."""

    model = "rigol-dp832"
    title = "Rigol DP832"
    idn_model = "DP832"
    channels = (1, 2, 3)
    serial_defaults = SerialSettings(baud_rate=9600, data_bits=8, parity="none", stop_bits=1)
    error_query = ":SYST:ERR?"

    def _cmd_voltage(self, value: str) -> list[str]:
        return [f":SOUR{self.channel}:VOLT {value}"]

    def _cmd_current(self, value: str) -> list[str]:
        return [f":SOUR{self.channel}:CURR {value}"]

    def _cmd_output(self, on: bool) -> list[str]:
        return [f":OUTP CH{self.channel},{'ON' if on else 'OFF'}"]

    def _cmd_measure_voltage(self) -> str:
        return f":MEAS:VOLT? CH{self.channel}"

    def _cmd_measure_current(self) -> str:
        return f":MEAS:CURR? CH{self.channel}"

    def _cmd_query_voltage(self) -> str:
        return f":SOUR{self.channel}:VOLT?"

    def _cmd_query_current(self) -> str:
        return f":SOUR{self.channel}:CURR?"

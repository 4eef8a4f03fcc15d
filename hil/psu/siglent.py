"""Driver for the Siglent SPD3303X / SPD3303X-E (SCPI, SPD3000X Quick Start / programming guide).

CH1 and CH2 are 32 V / 3.2 A (CH3's voltage is set by a front-panel switch, so it is not
offered here). Interfaces: USB (USBTMC) and LAN (raw socket on port 5025, VXI-11).

    CH1:VOLT 3.3   CH1:CURR 0.1   OUTP CH1,ON   MEAS:VOLT? CH1   MEAS:CURR? CH1
    SYST:ERR?  ->  "0  No Error"   (code, spaces, text: not the usual SCPI comma form)

Quirks handled here:

* The instrument loses commands that follow each other too quickly; users report that a
  20 ms pause plus ~0.17 ms per byte is reliable, so the default `command_delay` is 50 ms
  between any two commands (writes and queries alike).
* Older firmware has no usable SYSTem:ERRor?: with `error_queue=False` the driver does not
  ask it. Because the error queue alone cannot be trusted, every set-point is also read back
  (`CH1:VOLT?`, `CH1:CURR?`) and a mismatch raises `InstrumentError` (option `verify`,
  default True).

Public name: `SiglentSPD3303X`.
"""

from __future__ import annotations

from typing import Any

from .base import ScpiSupply

__all__ = ["SiglentSPD3303X"]


class SiglentSPD3303X(ScpiSupply):
    """Siglent SPD3303X / SPD3303X-E, channels 1 and 2."""

    model = "siglent-spd3303x"
    title = "Siglent SPD3303X"
    idn_model = "SPD3303X"
    channels = (1, 2)
    command_delay_default = 0.05
    verify_default = True
    readback_tolerance = 0.011  # the -E model resolves 10 mV / 10 mA

    def _init_options(self, options: dict[str, Any]) -> None:
        if not options.pop("error_queue", True):
            self.check_errors = False

    def _cmd_voltage(self, value: str) -> list[str]:
        return [f"CH{self.channel}:VOLT {value}"]

    def _cmd_current(self, value: str) -> list[str]:
        return [f"CH{self.channel}:CURR {value}"]

    def _cmd_output(self, on: bool) -> list[str]:
        return [f"OUTP CH{self.channel},{'ON' if on else 'OFF'}"]

    def _cmd_measure_voltage(self) -> str:
        return f"MEAS:VOLT? CH{self.channel}"

    def _cmd_measure_current(self) -> str:
        return f"MEAS:CURR? CH{self.channel}"

    def _cmd_query_voltage(self) -> str:
        return f"CH{self.channel}:VOLT?"

    def _cmd_query_current(self) -> str:
        return f"CH{self.channel}:CURR?"

"""Driver for the Nordic Power Profiler Kit II (PPK2) used as a source meter, via `ppk2-api`.

The PPK2 is a USB CDC serial device with a binary protocol (one opcode byte plus arguments,
no replies except metadata and the sample stream). `ppk2-api` implements it: the driver asks
for the calibration metadata on opening (no metadata within ~0.5 s raises
`InstrumentTimeout`), switches to source-meter mode, and then

* `set_voltage(v)` sends REGULATOR_SET (0.8–5.0 V; anything else raises `PsuError` before
  sending, because ppk2-api would silently clamp it),
* `output(on)` sends DEVICE_RUNNING_SET (DUT power on/off),
* `measure_current()` averages `current_samples(window)`: AVERAGE_START, read the 4-byte
  samples for `window` seconds (default 50 ms), AVERAGE_STOP, convert with the metadata.

The PPK2 has no programmable current limit (it supplies up to 1 A) and does not measure its
own output voltage: `set_current_limit(a)` only checks 0 < a <= 1 A, and `measure_voltage()`
returns the set-point while DUT power is on, 0 while it is off.

`ppk2-api` is an optional dependency, imported when a PPK2 is opened.

Public name: `Ppk2`.
"""

from __future__ import annotations

import math
import time
from typing import Any

from .base import Supply
from .errors import InstrumentTimeout, PsuError
from .links import serial_port

__all__ = ["Ppk2"]


class Ppk2(Supply):
    """Nordic PPK2 in source-meter mode. Options: `timeout` (s, default 2), `window` (s of
    samples per `measure_current`, default 0.05)."""

    model = "ppk2"
    title = "Nordic PPK2"
    min_voltage, max_voltage, max_current = 0.8, 5.0, 1.0

    def __init__(self, resource: str, channel: int = 1, *, timeout: float = 2.0,
                 window: float = 0.05, **options: Any):
        if channel != 1:
            raise PsuError(f"{self.title} has one output (channel 1), not {channel!r}")
        self.channel = 1
        self.port = serial_port(resource)
        self.name = f"{self.title} at {self.port}"
        if options:
            raise PsuError(f"{self.name}: unknown option(s) {', '.join(sorted(options))}")
        self.timeout, self.window = float(timeout), float(window)
        try:
            from ppk2_api.ppk2_api import PPK2_API
        except ImportError as e:
            raise PsuError(f"{self.name}: the PPK2 driver needs the ppk2-api package: "
                           f"pip install ppk2-api ({e})") from e
        import serial

        try:
            self._api = PPK2_API(self.port, timeout=self.timeout, write_timeout=self.timeout)
        except (serial.SerialException, ValueError) as e:
            raise PsuError(f"{self.name}: cannot open serial port {self.port!r}: {e}. Check the "
                           f"device path (e.g. /dev/ttyACM0) and its permissions") from e
        self._volts: float | None = None
        self._on = False
        self.current_limit = self.max_current
        try:
            if not self._api.get_modifiers():
                raise InstrumentTimeout(self.name, "GET_META_DATA (0x19)", 0.5,
                                        fix="check that this port is a PPK2 and nothing else has it open")
            self._api.use_source_meter()
        except BaseException:
            self.close()
            raise

    def set_voltage(self, volts: float) -> None:
        volts = float(volts)
        if not (math.isfinite(volts) and self.min_voltage <= volts <= self.max_voltage):
            raise PsuError(f"{self.name}: REGULATOR_SET {volts!r} V not sent: the PPK2 sources "
                           f"{self.min_voltage:g} to {self.max_voltage:g} V")
        self._api.set_source_voltage(round(volts * 1000))
        self._volts = volts

    def set_current_limit(self, amps: float) -> None:
        amps = float(amps)
        if not (math.isfinite(amps) and 0 < amps <= self.max_current):
            raise PsuError(f"{self.name}: current limit {amps!r} A: the PPK2 supplies up to "
                           f"{self.max_current:g} A and its limit is not programmable")
        self.current_limit = amps

    def output(self, on: bool) -> None:
        if on and self._volts is None:
            raise PsuError(f"{self.name}: set_voltage() before switching DUT power on")
        self._api.toggle_DUT_power("ON" if on else "OFF")
        self._on = bool(on)

    def measure_voltage(self) -> float:
        return self._volts if (self._on and self._volts is not None) else 0.0

    def current_samples(self, duration: float) -> list[float]:
        """Current samples (amperes) streamed for `duration` seconds (at least one chunk)."""
        if self._volts is None:
            raise PsuError(f"{self.name}: set_voltage() before measuring")
        api = self._api
        api.ser.reset_input_buffer()
        # Each measurement starts afresh: no partial sample carried over, and no spike-filter
        # history (ppk2-api would otherwise blend in the previous measurement's range).
        api.remainder = {"sequence": b"", "len": 0}
        api.rolling_avg = api.rolling_avg4 = api.prev_range = None
        api.consecutive_range_samples = api.after_spike = 0
        api.start_measuring()
        data = b""
        start = time.monotonic()
        try:
            while True:
                elapsed = time.monotonic() - start
                if (elapsed >= duration and data) or elapsed >= max(duration, self.timeout):
                    break
                data += api.get_data()
                time.sleep(0.002)
        finally:
            api.stop_measuring()
        if len(data) < 4:
            raise InstrumentTimeout(self.name, "AVERAGE_START (0x06)", max(duration, self.timeout),
                                    reply=data.hex())
        samples, _bits = api.get_samples(data)
        return [s * 1e-6 for s in samples]  # ppk2-api returns microamperes

    def measure_current(self) -> float:
        samples = self.current_samples(self.window)
        return sum(samples) / len(samples)

    def close(self) -> None:
        api = getattr(self, "_api", None)
        if api is not None and api.ser is not None:
            api.ser.close()

"""Simulated Nordic PPK2: its binary serial protocol, as `ppk2-api` drives it.

Commands are one opcode byte followed by a fixed number of argument bytes (opcodes from
Nordic's pc-nrfconnect-ppk, as used by ppk2-api): GET_META_DATA 0x19 (reply: "NAME: VALUE"
lines ending with "END"), SET_POWER_MODE 0x11 m (1 ampere meter, 2 source meter),
REGULATOR_SET 0x0D b1 b2 (millivolts = (b1 - 3) * 256 + b2 + 768), DEVICE_RUNNING_SET
0x0C s (DUT power), AVERAGE_START 0x06 / AVERAGE_STOP 0x07 (stream samples), RESET 0x20.
Anything else is skipped byte by byte. The PPK2 does not answer other commands.

While measuring, the simulator streams 4-byte little-endian samples at `sample_rate`
(default 100 kS/s, the PPK2's): bits 0-13 ADC value, 14-16 measurement range, 18-23 a
counter, 24-31 the logic inputs. The metadata it reports (gains 1, offsets 0, the default
range resistors) makes current = adc * 4 * (1.8 / 163840) / R[range], so the load's current
comes back to within one ADC step; the simulator picks the most sensitive range that fits.
Bytes the host does not read in time are dropped, as a full USB buffer would.

Public name: `Ppk2Sim`.
"""

from __future__ import annotations

import threading

from .load import Load, OpenCircuit

__all__ = ["Ppk2Sim"]

_ARGS = {0x01: 2, 0x02: 1, 0x03: 1, 0x04: 1, 0x05: 0, 0x06: 0, 0x07: 0, 0x08: 1, 0x09: 1, 0x0A: 0,
         0x0C: 1, 0x0D: 2, 0x0E: 1, 0x0F: 1, 0x11: 1, 0x12: 1, 0x15: 0, 0x16: 0, 0x19: 0, 0x20: 0}
ADC_MULT = 1.8 / 163840


class Ppk2Sim:
    """The PPK2's state and protocol; serve it with a `PtyEndpoint`."""

    resistors = (1031.64, 101.65, 10.15, 0.94, 0.043)  # R0..R4, ohms

    def __init__(self, load: Load | None = None, sample_rate: float = 100_000.0):
        self.load = load or OpenCircuit()
        self.sample_rate = sample_rate
        self.lock = threading.RLock()
        self.log: list[tuple[int, bytes]] = []  # (opcode, arguments)
        self.skipped = 0
        self._buffer = b""
        self._power_on_state()

    def _power_on_state(self) -> None:
        self.mode = 0                 # 1 ampere meter, 2 source meter
        self.millivolts = 3700
        self.dut_on = False
        self.measuring = False
        self._next_sample_at = 0.0
        self._counter = 0

    def metadata(self) -> bytes:
        lines = ["Calibrated: 0"]
        for key, values in (("R", self.resistors), ("GS", (0,) * 5), ("GI", (1,) * 5),
                            ("O", (0,) * 5), ("S", (0,) * 5), ("I", (0,) * 5), ("UG", (1,) * 5)):
            lines += [f"{key}{n}: {v}" for n, v in enumerate(values)]
        lines += ["HW: 9173", "IA: 56", f"VDD: {self.millivolts}", "mode: 2", "END", ""]
        return "\n".join(lines).encode()

    def current(self) -> float:
        """The load current (A) the PPK2 sees now."""
        if self.mode != 2 or not self.dut_on:
            return 0.0
        return max(0.0, self.load.current(self.millivolts / 1000))

    def _encode(self, amps: float) -> tuple[int, int]:
        for rng, ohms in enumerate(self.resistors):
            adc = round(amps * ohms / (4 * ADC_MULT))
            if adc <= 0x3FFF:
                return adc, rng
        return 0x3FFF, len(self.resistors) - 1

    def receive(self, data: bytes, now: float) -> bytes:
        with self.lock:
            self._buffer += data
            out = b""
            while self._buffer:
                op = self._buffer[0]
                if op not in _ARGS:
                    self._buffer = self._buffer[1:]
                    self.skipped += 1
                    continue
                n = _ARGS[op]
                if len(self._buffer) < 1 + n:
                    break
                args, self._buffer = self._buffer[1:1 + n], self._buffer[1 + n:]
                self.log.append((op, args))
                out += self._execute(op, args, now)
            return out

    def _execute(self, op: int, args: bytes, now: float) -> bytes:
        if op == 0x19:
            return self.metadata()
        if op == 0x11:
            self.mode = args[0]
        elif op == 0x0D:
            self.millivolts = (args[0] - 3) * 256 + args[1] + 800 - 32
        elif op == 0x0C:
            self.dut_on = bool(args[0])
        elif op == 0x06:
            self.measuring, self._next_sample_at = True, now
        elif op == 0x07:
            self.measuring = False
        elif op == 0x20:
            self._power_on_state()
        return b""

    def tick(self, now: float) -> bytes:
        with self.lock:
            if not self.measuring or now < self._next_sample_at:
                return b""
            count = min(int((now - self._next_sample_at) * self.sample_rate) + 1, 4096)
            self._next_sample_at += count / self.sample_rate
            adc, rng = self._encode(self.current())
            base = adc | (rng << 14)
            out = bytearray()
            for _ in range(count):
                out += (base | (self._counter << 18)).to_bytes(4, "little")
                self._counter = (self._counter + 1) & 0x3F
            return bytes(out)

    def disconnect(self) -> None:
        with self.lock:
            self._buffer = b""

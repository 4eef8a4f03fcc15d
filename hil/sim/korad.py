"""Simulated Korad KA3005P: its terminator-less serial protocol, framed by silence.

The supply has no line terminator: the simulator takes the bytes received so far as one
command once the line has been quiet for `frame_gap` (10 ms), so two commands sent back to
back merge into one unknown command and are ignored, as on the real supply. After a set
command the supply is busy for `busy_time` (30 ms; the protocol notes give ~50 ms per set
command) and bytes arriving meanwhile are lost. Unknown commands and out-of-range values
(above 31 V or 5.1 A; the KA3005P is rated 30 V / 5 A) are silently ignored — the real supply
has no error reporting — so only read-back reveals them.

Replies (no terminator): VSET1?/VOUT1? "%05.2f" (e.g. 03.30), ISET1?/IOUT1? "%05.3f"
(e.g. 0.100), STATUS? one byte (bit 0 CV, bit 4 beep, bit 5 OCP, bit 6 output on),
*IDN? "KORADKA3005PV2.0". `iset_extra_byte` reproduces firmware that sends a sixth byte
after the ISET1? reply.

Public name: `KoradKA3005PSim`.
"""

from __future__ import annotations

import re
import threading

from .load import Load, OpenCircuit
from .scpi import SimChannel

__all__ = ["KoradKA3005PSim"]


class KoradKA3005PSim:
    """The KA3005P's state and protocol; serve it with a `PtyEndpoint`."""

    idn = "KORADKA3005PV2.0"
    v_max, i_max = 31.0, 5.1

    def __init__(self, load: Load | None = None, frame_gap: float = 0.01, busy_time: float = 0.03,
                 iset_extra_byte: bytes = b""):
        self.ch = SimChannel("CH1", (0.0, self.v_max), self.i_max, 0.0, load or OpenCircuit())
        self.frame_gap, self.busy_time, self.iset_extra_byte = frame_gap, busy_time, iset_extra_byte
        self.ocp = self.ovp = False
        self.beep = True
        self.lock = threading.RLock()
        self.log: list[str] = []          # commands as framed (ignored ones too)
        self.ignored: list[str] = []
        self.lost = 0                     # bytes that arrived while busy
        self._buffer = b""
        self._last_byte = 0.0
        self._busy_until = 0.0

    def receive(self, data: bytes, now: float) -> bytes:
        with self.lock:
            if now < self._busy_until:
                self.lost += len(data)
                return b""
            self._buffer += data
            self._last_byte = now
            return b""

    def tick(self, now: float) -> bytes:
        with self.lock:
            if not self._buffer or now - self._last_byte < self.frame_gap:
                return b""
            command, self._buffer = self._buffer.decode("ascii", "replace"), b""
            self.log.append(command)
            reply = self._execute(command, self._last_byte)  # busy from the command's arrival
            if reply is None:
                self.ignored.append(command)
                return b""
            return reply

    def disconnect(self) -> None:
        with self.lock:
            self._buffer = b""

    def _status(self) -> int:
        cv = not self.ch.in_cc
        return (cv << 0) | (self.beep << 4) | (self.ocp << 5) | (self.ch.on << 6)

    def _execute(self, command: str, arrived: float) -> bytes | None:
        ch = self.ch
        m = re.fullmatch(r"([VI])SET1:(\d{1,2}(?:\.\d*)?|\.\d+)", command)
        if m:
            value = float(m.group(2))
            if m.group(1) == "V" and value <= self.v_max:
                ch.voltage = round(value, 2)
            elif m.group(1) == "I" and value <= self.i_max:
                ch.current = round(value, 3)
            self._busy_until = arrived + self.busy_time
            return b""
        flags = {"OUT1": ("on", True), "OUT0": ("on", False), "OCP1": ("ocp", True),
                 "OCP0": ("ocp", False), "OVP1": ("ovp", True), "OVP0": ("ovp", False),
                 "BEEP1": ("beep", True), "BEEP0": ("beep", False)}
        if command in flags:
            name, value = flags[command]
            setattr(ch if name == "on" else self, name, value)
            self._busy_until = arrived + self.busy_time
            return b""
        volts, amps = ch.measure()
        replies = {
            "VSET1?": f"{ch.voltage:05.2f}".encode(),
            "ISET1?": f"{ch.current:05.3f}".encode() + self.iset_extra_byte,
            "VOUT1?": f"{volts:05.2f}".encode(),
            "IOUT1?": f"{amps:05.3f}".encode(),
            "STATUS?": bytes([self._status()]),
            "*IDN?": self.idn.encode(),
        }
        return replies.get(command)

"""Consoles: byte streams to a board's UART, with expect-style matching.

`SerialConsole` is the console of a real board (and of a virtual one, whose UART is bridged
to a pseudo-terminal): pyserial on a port name such as `/dev/serial/by-id/usb-...` or
`/dev/ttyACM0`. A USB serial adapter powered by the board disappears when the board loses
power and comes back (often a little later) when it is powered again; the console then
closes the dead port and reopens it by name, retrying every `retry_interval` seconds for up
to `reopen_timeout` seconds, and raises `ConsoleError` only if it does not come back.

Both consoles here satisfy `hil.board.ConsoleProtocol` (`read`, `write`, `expect`) and
`emu.host.Transport` (`read`, `write`), so `emu.host.Host` drives a board through them.
`TransportConsole` adds `expect` to any transport (e.g. `emu.host.MachineTransport`).

    >>> con = SerialConsole("/dev/ttyACM0", baudrate=115200)
    >>> con.write(b"help\\n")
    >>> con.expect(rb"ready (\\d+)", timeout=2).group(1)

Public names: `SerialConsole`, `TransportConsole`, `compile_pattern`.
"""

from __future__ import annotations

import re
import time
from typing import Protocol

from .errors import ConsoleError, ConsoleTimeout

__all__ = ["SerialConsole", "TransportConsole", "compile_pattern"]

_SHOWN = 200  # bytes of received data quoted in a timeout message

try:  # pyserial lets termios.error (not an OSError) through when a tty vanishes under it
    from termios import error as _TermiosError
except ImportError:  # pragma: no cover - not POSIX
    class _TermiosError(Exception):
        pass

_PORT_GONE = (OSError, _TermiosError)


def compile_pattern(pattern: str | bytes | re.Pattern[bytes]) -> re.Pattern[bytes]:
    """A bytes regex from a bytes/str pattern (str is encoded as Latin-1) or a compiled one."""
    if isinstance(pattern, re.Pattern):
        if isinstance(pattern.pattern, str):
            return re.compile(pattern.pattern.encode("latin-1"), pattern.flags & ~re.UNICODE)
        return pattern
    if isinstance(pattern, str):
        pattern = pattern.encode("latin-1")
    return re.compile(pattern)


class _Reader(Protocol):
    def _read_raw(self, timeout: float) -> bytes: ...


class _Expecting:
    """`read` and `expect` over a subclass's `_read_raw`, sharing one look-ahead buffer."""

    name: str
    _pending: bytearray

    def _read_raw(self, timeout: float) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def read(self, timeout: float = 0.0) -> bytes:
        """Bytes received, waiting up to `timeout` s for the first one; b"" if none came."""
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            return data
        return self._read_raw(timeout)

    def expect(self, pattern: str | bytes | re.Pattern[bytes], timeout: float = 5.0) -> re.Match[bytes]:
        """Wait until the received bytes match `pattern` (a regex); return the match. Bytes up
        to the match's end are consumed, the rest stay for the next read or expect.
        `ConsoleTimeout` after `timeout` seconds, quoting what was received."""
        rx = compile_pattern(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(bytes(self._pending))  # a match on the bytearray would see the del
            if m:
                del self._pending[: m.end()]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                got = bytes(self._pending)
                shown = got[-_SHOWN:]
                raise ConsoleTimeout(
                    f"{self.name}: {rx.pattern!r} not received within {timeout:g} s; received "
                    f"{len(got)} bytes{' (last ' + str(_SHOWN) + ')' if len(got) > _SHOWN else ''}: "
                    f"{shown!r}", got)
            self._pending += self._read_raw(left)


class SerialConsole(_Expecting):
    """A pyserial console that survives its port vanishing and reappearing (see module doc).

    `reopens` counts how often the port was lost and reopened.
    """

    def __init__(self, port: str, baudrate: int = 115200, *, reopen_timeout: float = 5.0,
                 retry_interval: float = 0.05, write_timeout: float = 2.0, name: str | None = None):
        self.port, self.baudrate = port, int(baudrate)
        self.reopen_timeout, self.retry_interval = float(reopen_timeout), float(retry_interval)
        self.write_timeout = float(write_timeout)
        self.name = name or f"console {port}"
        self.reopens = 0
        self._pending = bytearray()
        self._ser = None

    def open(self) -> SerialConsole:
        """Open the port now (waiting up to `reopen_timeout` for it to appear)."""
        self._ensure()
        return self

    def _ensure(self):
        import serial

        if self._ser is not None:
            return self._ser
        deadline = time.monotonic() + self.reopen_timeout
        while True:
            try:
                self._ser = serial.Serial(self.port, self.baudrate, timeout=0,
                                          write_timeout=self.write_timeout)
                return self._ser
            except (serial.SerialException, ValueError, *_PORT_GONE) as e:
                last = e
            if time.monotonic() >= deadline:
                raise ConsoleError(
                    f"{self.name}: serial port {self.port} cannot be opened and did not appear "
                    f"within {self.reopen_timeout:g} s ({last}). Check the cable and the port "
                    f"name (a /dev/serial/by-id/ path stays the same across re-plugging); if "
                    f"the board's USB serial is powered by the board, check its supply")
            time.sleep(self.retry_interval)

    def _lost(self) -> None:
        ser, self._ser = self._ser, None
        self.reopens += 1
        try:
            ser.close()
        except Exception:  # noqa: BLE001 - the port is gone; closing is best effort
            pass

    def _read_raw(self, timeout: float) -> bytes:
        import serial

        deadline = time.monotonic() + timeout
        while True:
            ser = self._ensure()
            try:
                ser.timeout = max(0.0, deadline - time.monotonic())
                first = ser.read(1)
                if not first:
                    return b""
                return first + ser.read(ser.in_waiting)
            except (serial.SerialException, *_PORT_GONE):
                self._lost()  # the port vanished (USB re-enumeration): reopen and go on
                if time.monotonic() >= deadline:
                    self._ensure()
                    return b""

    def write(self, data: bytes) -> None:
        """Send `data`; if the port vanished, reopen it and send again."""
        import serial

        for attempt in (1, 2):
            ser = self._ensure()
            try:
                ser.write(data)
                ser.flush()
                return
            except serial.SerialTimeoutException as e:
                raise ConsoleError(f"{self.name}: writing {len(data)} bytes timed out after "
                                   f"{self.write_timeout:g} s (is flow control on?)") from e
            except (serial.SerialException, *_PORT_GONE) as e:
                self._lost()
                if attempt == 2:
                    raise ConsoleError(f"{self.name}: write failed after reopening "
                                       f"{self.port}: {e}") from e

    def close(self) -> None:
        """Close the port (idempotent)."""
        ser, self._ser = self._ser, None
        if ser is not None:
            ser.close()

    def __enter__(self) -> SerialConsole:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SerialConsole {self.port} {self.baudrate} baud>"


class TransportConsole(_Expecting):
    """Any `emu.host.Transport` as a console (adds `expect`)."""

    def __init__(self, transport, name: str = "console"):
        self.transport, self.name = transport, name
        self._pending = bytearray()

    def _read_raw(self, timeout: float) -> bytes:
        start = time.monotonic()
        data = self.transport.read(timeout)
        if not data and time.monotonic() - start < timeout:
            time.sleep(min(timeout, 0.01))  # a transport that returns at once: do not spin
        return data

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def close(self) -> None:
        pass

"""Serving a simulated instrument over a pseudo-terminal or a loopback TCP socket.

An instrument model (a `Device`) only turns received bytes into reply bytes; an endpoint
moves those bytes over a real OS channel, from a daemon thread, so the driver under test does
real serial (or socket) I/O:

* `PtyEndpoint`: `os.openpty()`; the slave side, put in raw mode, is what a driver opens
  (`/dev/pts/N`, or `ASRL/dev/pts/N::INSTR` through PyVISA). The endpoint keeps its own slave
  descriptor open so that the driver may close and reopen the port.
* `TcpEndpoint`: a listening socket on 127.0.0.1 (port chosen by the OS), one client at a
  time, as an instrument's raw SCPI socket (`TCPIP::127.0.0.1::PORT::SOCKET`).
* `Rfc2217Endpoint`: a loopback serial port served with RFC 2217 (telnet COM-PORT-OPTION,
  pyserial's server side `serial.rfc2217.PortManager`), for devices whose host drives the
  modem-control lines (DTR/RTS) or changes line settings, which a pty cannot carry. The
  client opens `rfc2217://127.0.0.1:PORT` with `serial.serial_for_url`. The device is also
  the port's far side: line settings and `dtr`/`rts` are set on it, in stream order with the
  data bytes.

Every few milliseconds the endpoint also calls `Device.tick(now)`, for devices whose output
depends on time (framing by silence, streamed samples). `hang()` makes the instrument stop
answering — input is swallowed, nothing is sent — until `resume()`.

Public names: `Device`, `Endpoint`, `PtyEndpoint`, `TcpEndpoint`, `Rfc2217Endpoint`.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import tty
from typing import Protocol

__all__ = ["Device", "Endpoint", "PtyEndpoint", "TcpEndpoint", "Rfc2217Endpoint"]


class Device(Protocol):
    """The byte-level behaviour of an instrument. Calls are serialised by the endpoint."""

    def receive(self, data: bytes, now: float) -> bytes:
        """Bytes from the host arrived at monotonic time `now`; return the bytes to send back."""

    def tick(self, now: float) -> bytes:
        """Time passed; return any bytes the instrument sends on its own."""

    def disconnect(self) -> None:
        """The host went away (socket closed): forget partial input."""


class Endpoint:
    """Runs a `Device` on a channel from a daemon thread; a context manager."""

    tick_interval = 0.002

    def __init__(self, device: Device, name: str):
        self.device = device
        self.answering = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"hil.sim {name}", daemon=True)

    def _serve(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def hang(self) -> None:
        """Stop answering (input is swallowed, nothing is sent) until `resume()`."""
        self.answering = False

    def resume(self) -> None:
        """Answer again."""
        self.answering = True

    def _react(self, data: bytes) -> bytes:
        now = time.monotonic()
        if not self.answering:
            return b""
        out = self.device.receive(data, now) if data else b""
        return out + self.device.tick(now)

    def close(self) -> None:
        """Stop the thread and release the channel (idempotent)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_some(fd: int, data: bytes) -> None:
    """Write what the channel takes now; drop the rest (a UART overrun, not a hang)."""
    while data:
        try:
            n = os.write(fd, data)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        data = data[n:]


class PtyEndpoint(Endpoint):
    """A pseudo-terminal whose slave side (`path`) the driver opens."""

    def __init__(self, device: Device):
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        super().__init__(device, self.path)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._master], [], [], self.tick_interval)
                data = b""
                if ready:
                    try:
                        data = os.read(self._master, 65536)
                    except (BlockingIOError, InterruptedError):
                        data = b""
                    except OSError:
                        time.sleep(self.tick_interval)  # no slave open right now
                _write_some(self._master, self._react(data))
        finally:
            os.close(self._master)
            os.close(self._slave)


class _ListeningEndpoint(Endpoint):
    """A TCP listener on loopback serving one client at a time; `port` is the port the OS
    chose (or the one asked for)."""

    def __init__(self, device: Device, host: str, port: int, name: str):
        self._listener = socket.create_server((host, port))
        self._listener.setblocking(False)
        self.host, self.port = host, self._listener.getsockname()[1]
        self._client: socket.socket | None = None
        super().__init__(device, name.format(host=host, port=self.port))
        self._thread.start()

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self.device.disconnect()

    def _wait(self, blocking_client: bool) -> tuple[list, socket.socket | None]:
        """Wait up to a tick for input; a new connection replaces the client (one at a
        time, like most instruments). Returns the ready sockets and the new client."""
        watched = [self._listener] + ([self._client] if self._client else [])
        ready, _, _ = select.select(watched, [], [], self.tick_interval)
        if self._listener not in ready:
            return ready, None
        client, _ = self._listener.accept()
        self._drop_client()
        client.setblocking(blocking_client)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = client
        return ready, client


class TcpEndpoint(_ListeningEndpoint):
    """A raw TCP socket on loopback (a LAN instrument's SCPI port)."""

    def __init__(self, device: Device, host: str = "127.0.0.1", port: int = 0):
        super().__init__(device, host, port, "{host}:{port}")

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _ = self._wait(blocking_client=False)
                data = b""
                if self._client is not None and self._client in ready:
                    try:
                        data = self._client.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        data = b""
                    except OSError:
                        self._drop_client()
                    else:
                        if not data:
                            self._drop_client()
                out = self._react(data)
                if out and self._client is not None:
                    _write_some(self._client.fileno(), out)
        finally:
            self._drop_client()
            self._listener.close()


class Rfc2217Endpoint(_ListeningEndpoint):
    """An RFC 2217 serial port on loopback (see the module docstring); `port` is the TCP
    port. One client at a time. `device` must also offer what `PortManager` sets and reads
    on a serial port: `baudrate`, `bytesize`, `parity`, `stopbits`, `xonxoff`, `rtscts`,
    `break_condition`, `dtr`, `rts`, `cts`, `dsr`, `ri`, `cd`, `reset_input_buffer()`,
    `reset_output_buffer()`."""

    def __init__(self, device: Device, host: str = "127.0.0.1", port: int = 0):
        super().__init__(device, host, port, "rfc2217://{host}:{port}")

    def _serve(self) -> None:
        from serial.rfc2217 import PortManager

        manager = None
        try:
            while not self._stop.is_set():
                ready, client = self._wait(blocking_client=True)  # (sendall below)
                if client is not None:
                    manager = PortManager(self.device, _SocketWriter(client))
                if self._client is None or manager is None:
                    continue
                out = bytearray()
                if self._client in ready:
                    try:
                        data = self._client.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        self._drop_client()
                        continue
                    # byte by byte, so that line changes apply in stream order
                    for byte in manager.filter(data):
                        out += self._react(byte)
                else:
                    out += self._react(b"")
                try:
                    if out:
                        self._client.sendall(b"".join(manager.escape(bytes(out))))
                    manager.check_modem_lines()
                except OSError:
                    self._drop_client()
        finally:
            self._drop_client()
            self._listener.close()


class _SocketWriter:
    """The `connection` PortManager writes its telnet replies to."""

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

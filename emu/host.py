"""The host side of the firmware protocol: a client that drives a board through requests.

`Host` sends INFO, LOAD, RUN, STATUS and RESULT requests (docs/protocol.md) over any
`Transport` and retries a request with the same seq when no reply comes (requests are
idempotent, so a retry after a lost reply is harmless). The same client drives an
emulated board (`MachineTransport`) and, through a serial port, a real one (the HIL rack).

    >>> host = Host(MachineTransport(emu.Machine.from_elf("build/msp430fr5994/checksum.elf")))
    >>> result = host.run_job(b"some input")    # LOAD, RUN, then wait for RESULT
    >>> result.output

Public names: `Transport`, `Host`, `MachineTransport`, `HostError`, `FirmwareError`.
"""

from __future__ import annotations

from typing import Iterable, Protocol

from .errors import EmuError
from .machine import Machine
from .protocol import (PROTOCOL_VERSION, Error, Frame, FrameDecoder, Info, Load, MessageType, Result, Status,
                       encode_frame)

__all__ = ["Transport", "Host", "MachineTransport", "HostError", "FirmwareError"]

# LOAD data per request: fits the firmware's smallest frame buffer (PROTO_MAX_FRAME = 260).
LOAD_CHUNK = 128


class Transport(Protocol):
    """A byte pipe to a board's UART."""

    def write(self, data: bytes) -> None:
        """Send bytes to the board."""

    def read(self, timeout: float) -> bytes:
        """Bytes the board sent, waiting up to `timeout` seconds for the first one;
        b"" when nothing came in time."""


class HostError(EmuError):
    """No valid reply after all retries, or an unexpected reply."""


class FirmwareError(HostError):
    """The firmware answered a request with ERROR."""

    def __init__(self, request: str, error: Error):
        super().__init__(f"firmware refused {request}: {error.text} (error {error.code})")
        self.error = error


class Host:
    """A client for one board. `timeout` is per attempt; `retries` is extra attempts."""

    def __init__(self, transport: Transport, *, timeout: float = 1.0, retries: int = 3):
        self.transport = transport
        self.timeout, self.retries = timeout, retries
        self.decoder = FrameDecoder()
        self.results: dict[int, Result] = {}  # unsolicited RESULTs seen, by the job's seq
        self._seq = 0
        self._job_seq: int | None = None
        #: protocol version RESULTs are decoded with: the project firmware's, until INFO says
        self.version = PROTOCOL_VERSION

    # -- requests -----------------------------------------------------------------------
    def info(self) -> Info:
        """INFO; its protocol version then decodes this host's RESULTs."""
        info = Info.decode(self.request(MessageType.INFO))
        self.version = info.version
        return info

    def load(self, data: bytes, offset: int = 0) -> None:
        """Write `data` into the firmware's input buffer at `offset`, in chunks."""
        for at in range(0, len(data), LOAD_CHUNK):
            chunk = data[at : at + LOAD_CHUNK]
            reply = self.request(MessageType.LOAD, Load(offset + at, chunk).encode())
            if reply != (offset + at).to_bytes(2, "little") + len(chunk).to_bytes(2, "little"):  # offset, length
                raise HostError(f"LOAD at offset {offset + at}: unexpected reply {reply.hex()}")

    def run(self) -> None:
        """Start a job on the loaded input (a retried RUN does not start a second one)."""
        seq = self._next_seq()
        self.request(MessageType.RUN, seq=seq)
        self._job_seq = seq
        self.results.pop(seq, None)

    def status(self) -> Status:
        return Status.decode(self.request(MessageType.STATUS))

    def result(self) -> Result:
        return Result.decode(self.request(MessageType.RESULT), self.version)

    def wait_result(self, polls: int = 100) -> Result:
        """The RESULT of the job started by `run`: the unsolicited one the firmware sends
        when done, or else asked for once STATUS says done (up to `polls` STATUS polls)."""
        for _ in range(polls):
            if self._job_seq in self.results:
                return self.results[self._job_seq]
            self._receive(self.timeout)
            if self._job_seq in self.results:
                return self.results[self._job_seq]
            if self.status().state == Status.DONE:
                return self.result()
        raise HostError(f"no RESULT after {polls} STATUS polls: the job does not finish")

    def run_job(self, data: bytes) -> Result:
        """LOAD `data`, RUN, and wait for the RESULT."""
        self.load(data)
        self.run()
        return self.wait_result()

    # -- mechanics ------------------------------------------------------------------------
    def request(self, type: int, body: bytes = b"", seq: int | None = None) -> bytes:
        """Send one request (retrying) and return the reply's body."""
        seq = self._next_seq() if seq is None else seq
        frame = encode_frame(type, seq, body)
        name = MessageType(type).name if type in MessageType.__members__.values() else f"request {type:#04x}"
        for _ in range(self.retries + 1):
            self.transport.write(frame)
            while True:
                replies = self._receive(self.timeout)
                if replies is None:
                    break  # nothing more came: retry
                for reply in replies:
                    if reply.seq != seq:
                        continue
                    if reply.type == MessageType.ERROR.reply:
                        raise FirmwareError(name, Error.decode(reply.body))
                    if reply.type == type | 0x80:
                        return reply.body
        raise HostError(f"no reply to {name} after {self.retries + 1} attempts")

    def _receive(self, timeout: float) -> list[Frame] | None:
        """Frames from one read (None when nothing came), noting unsolicited RESULTs."""
        data = self.transport.read(timeout)
        if not data:
            return None
        frames = self.decoder.feed(data)
        for f in frames:
            if f.type == MessageType.RESULT.reply:
                self.results[f.seq] = Result.decode(f.body, self.version)
        return frames

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq


class MachineTransport:
    """An emulated board as a `Transport`. Writing queues bytes on its UART; reading runs
    the machine until its firmware waits for input (or ends) and returns what it sent.

    `fail_after` is a power schedule as in `Machine.run`, spread over all reads: the
    current power-on period fails after K1 instructions, the next after K2, ...
    `budget` bounds the instructions of one read; a crash or a firmware that never
    waits for input within it raises `EmuError`."""

    def __init__(self, machine: Machine, fail_after: Iterable[int] = (), budget: int = 50_000_000):
        self.machine = machine
        self.schedule = [int(k) for k in fail_after]
        self.budget = budget
        self._sent = len(machine.link.tx)
        self._settled = False  # ran until waiting, and no input has come since

    def write(self, data: bytes) -> None:
        self.machine.link.rx.extend(data)
        self._settled = False

    def read(self, timeout: float = 0.0) -> bytes:
        m = self.machine
        if not self._settled:
            failures = m.power_failures
            result = m.run(fail_after=self.schedule, max_instructions=m.instructions + self.budget)
            del self.schedule[: m.power_failures - failures]
            if result.outcome == "crash":
                raise EmuError(f"emulated board crashed: {result.error}")
            if result.outcome == "timeout":
                raise EmuError(f"emulated firmware did not wait for input within {self.budget} instructions")
            self._settled = True
        data = bytes(m.link.tx[self._sent :])
        self._sent = len(m.link.tx)
        return data

    def power_fail(self) -> None:
        """Cut power now; the next read powers the board on again."""
        self.machine.power_fail()
        self._settled = False

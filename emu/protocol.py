"""The host protocol over a UART: framing, integrity check and messages (host side).

The same bytes travel to an emulated board (`emu.Machine`'s UART) and to a real board
(a serial port), so this one module serves emulator tests and the hardware rack.
docs/protocol.md is the wire-format reference the firmware side implements.

Frame on the wire::

    COBS( type:u8  seq:u8  body:bytes  crc:u16le )  0x00

* COBS (Consistent Overhead Byte Stuffing) removes every 0x00 from the frame, so 0x00
  only ever delimits frames: a receiver resynchronises at the next 0x00 after noise.
* crc = CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor) over
  type, seq and body.
* A frame that does not decode, is shorter than 4 bytes, longer than `MAX_FRAME`, or
  fails its CRC is dropped and counted, never acted on.

Public names: `encode_frame`, `FrameDecoder`, `Frame`, `crc16`, `cobs_encode`,
`cobs_decode`, the message types (`MessageType`), the message bodies (`Info`, `Load`,
`Status`, `Result`, `Error`) and `ProtocolError`. The client that drives a board with
these messages is `emu.host`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .errors import EmuError

__all__ = [
    "MAX_FRAME", "PROTOCOL_VERSION", "MessageType", "Frame", "FrameDecoder", "ProtocolError", "encode_frame", "crc16",
    "cobs_encode", "cobs_decode", "Info", "Load", "Status", "Result", "Error", "last_result",
]

MAX_FRAME = 1024  # bytes of type + seq + body + crc, before COBS
#: the protocol version the project firmware reports in INFO (2: RESULT carries cycles)
PROTOCOL_VERSION = 2


class ProtocolError(EmuError):
    """A frame that cannot be built (too long, bad field)."""


class MessageType(IntEnum):
    """Requests from the host; a reply carries the request's type with bit 7 set."""

    INFO = 0x01
    LOAD = 0x02
    RUN = 0x03
    STATUS = 0x04
    RESULT = 0x05
    ERROR = 0x7F  # reply only: body = error code u8 + text

    @property
    def reply(self) -> int:
        return self | 0x80


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    body: bytes = b""

    @property
    def is_reply(self) -> bool:
        return bool(self.type & 0x80)


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final xor.
    Check value: crc16(b"123456789") == 0x29B1."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode `data` (the result has no 0x00 byte; the caller appends the delimiter).
    A block of 254 non-zero bytes ends the output without a trailing empty block, as in
    Cheshire and Baker's paper."""
    out = bytearray()
    block = bytearray()
    after_full = False
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            after_full = False
            continue
        block.append(byte)
        if len(block) == 254:
            out.append(0xFF)
            out += block
            block.clear()
            after_full = True
        else:
            after_full = False
    if block or not after_full:
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """Inverse of `cobs_encode`; None if `data` is not valid COBS."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            return None
        block = data[i + 1 : end]
        if 0 in block:
            return None
        out += block
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_frame(type: int, seq: int, body: bytes = b"") -> bytes:
    """The bytes to send for one frame, delimiter included."""
    if not 0 <= type <= 0xFF or not 0 <= seq <= 0xFF:
        raise ProtocolError(f"frame type and seq must be bytes, got {type}, {seq}")
    raw = bytes([type, seq]) + bytes(body)
    if len(raw) + 2 > MAX_FRAME:
        raise ProtocolError(f"frame body of {len(body)} bytes exceeds the {MAX_FRAME - 4}-byte maximum")
    raw += crc16(raw).to_bytes(2, "little")
    return cobs_encode(raw) + b"\x00"


@dataclass
class FrameDecoder:
    """Turns a byte stream into frames. Feed it any chunks; it returns whole, valid frames
    and counts what it dropped (`dropped_crc`, `dropped_malformed`, `dropped_oversize`)."""

    frames: int = 0
    dropped_crc: int = 0
    dropped_malformed: int = 0
    dropped_oversize: int = 0
    _buffer: bytearray = field(default_factory=bytearray, repr=False)
    _overflow: bool = field(default=False, repr=False)

    @property
    def dropped(self) -> int:
        return self.dropped_crc + self.dropped_malformed + self.dropped_oversize

    def feed(self, data: bytes) -> list[Frame]:
        out = []
        for byte in data:
            if byte != 0:
                if len(self._buffer) >= _MAX_ENCODED:
                    self._overflow = True  # keep discarding until the next delimiter
                    self._buffer.clear()
                elif not self._overflow:
                    self._buffer.append(byte)
                continue
            frame = self._finish()
            if frame is not None:
                out.append(frame)
        return out

    def _finish(self) -> Frame | None:
        encoded, overflow = bytes(self._buffer), self._overflow
        self._buffer.clear()
        self._overflow = False
        if overflow:
            self.dropped_oversize += 1
            return None
        if not encoded:
            return None  # back-to-back delimiters: idle line, not a frame
        raw = cobs_decode(encoded)
        if raw is None or len(raw) < 4:
            self.dropped_malformed += 1
            return None
        if len(raw) > MAX_FRAME:
            self.dropped_oversize += 1
            return None
        if crc16(raw[:-2]) != int.from_bytes(raw[-2:], "little"):
            self.dropped_crc += 1
            return None
        self.frames += 1
        return Frame(raw[0], raw[1], raw[2:-2])


# worst-case COBS size of a MAX_FRAME frame: one code byte per 254 data bytes, plus one
_MAX_ENCODED = MAX_FRAME + MAX_FRAME // 254 + 1


# -- message bodies (little-endian; strings are u8 length + ASCII) -----------------------
def _string(text: str) -> bytes:
    data = text.encode("ascii")
    if len(data) > 255:
        raise ProtocolError(f"string of {len(data)} bytes does not fit a u8 length: {text[:20]!r}...")
    return bytes([len(data)]) + data


class _Reader:
    def __init__(self, body: bytes, what: str):
        self.body, self.at, self.what = body, 0, what

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.body):
            raise ProtocolError(f"{self.what} body too short ({len(self.body)} bytes)")
        out = self.body[self.at : self.at + n]
        self.at += n
        return out

    def u(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def string(self) -> str:
        return self.take(self.u(1)).decode("ascii", "replace")

    def rest(self) -> bytes:
        out = self.body[self.at :]
        self.at = len(self.body)
        return out


@dataclass(frozen=True)
class Info:
    """Reply to INFO: what the firmware is and the sizes of its buffers."""

    board: str
    firmware: str
    version: int
    input_size: int
    output_size: int

    def encode(self) -> bytes:
        return (self.version.to_bytes(2, "little") + self.input_size.to_bytes(2, "little")
                + self.output_size.to_bytes(2, "little") + _string(self.board) + _string(self.firmware))

    @classmethod
    def decode(cls, body: bytes) -> "Info":
        r = _Reader(body, "INFO reply")
        version, input_size, output_size = r.u(2), r.u(2), r.u(2)
        return cls(r.string(), r.string(), version, input_size, output_size)


@dataclass(frozen=True)
class Load:
    """LOAD request: write `data` into the non-volatile input buffer at `offset`
    (idempotent: sending it twice leaves the same buffer). The reply echoes offset and
    length of what was written."""

    offset: int
    data: bytes

    def encode(self) -> bytes:
        return self.offset.to_bytes(2, "little") + bytes(self.data)

    @classmethod
    def decode(cls, body: bytes) -> "Load":
        r = _Reader(body, "LOAD request")
        return cls(r.u(2), r.rest())


@dataclass(frozen=True)
class Status:
    """Reply to STATUS."""

    state: int  # 0 idle, 1 running, 2 done
    progress: int  # firmware-defined progress counter (persistent)
    boot_count: int
    dropped: int = 0  # frames the firmware dropped since it booted

    IDLE, RUNNING, DONE = 0, 1, 2

    def encode(self) -> bytes:
        return (bytes([self.state]) + self.progress.to_bytes(4, "little") + self.boot_count.to_bytes(2, "little")
                + self.dropped.to_bytes(2, "little"))

    @classmethod
    def decode(cls, body: bytes) -> "Status":
        r = _Reader(body, "STATUS reply")
        state, progress, boots = r.u(1), r.u(4), r.u(2)
        return cls(state, progress, boots, r.u(2) if len(body) >= 9 else 0)


@dataclass(frozen=True)
class Error:
    """ERROR reply: the firmware refused a request."""

    code: int
    text: str

    UNKNOWN, ARGUMENT, BUSY, NO_RESULT = 1, 2, 3, 4

    def encode(self) -> bytes:
        return bytes([self.code]) + _string(self.text)

    @classmethod
    def decode(cls, body: bytes) -> "Error":
        r = _Reader(body, "ERROR reply")
        return cls(r.u(1), r.string())


@dataclass(frozen=True)
class Result:
    """RESULT: output bytes, the early exit taken (`NO_EXIT` for the final output), boot
    count, work counter (task commits) and the job's CPU cycles up to its last commit
    (`cycles`; None from protocol version 1 firmware, which does not send it). Only
    `output` and `exit` are the result proper; the counters differ from run to run."""

    output: bytes
    exit: int
    boot_count: int
    counter: int
    cycles: int | None = None

    NO_EXIT = 0xFF

    def encode(self, version: int = PROTOCOL_VERSION) -> bytes:
        head = bytes([self.exit]) + self.boot_count.to_bytes(2, "little") + self.counter.to_bytes(4, "little")
        if version >= 2:
            if self.cycles is None:
                raise ProtocolError("a version 2 RESULT needs cycles")
            head += self.cycles.to_bytes(4, "little")
        return head + bytes(self.output)

    @classmethod
    def decode(cls, body: bytes, version: int = PROTOCOL_VERSION) -> "Result":
        """The body as firmware of protocol `version` (INFO) sends it."""
        r = _Reader(body, "RESULT")
        exit_, boots, counter = r.u(1), r.u(2), r.u(4)
        cycles = r.u(4) if version >= 2 else None
        return cls(r.rest(), exit_, boots, counter, cycles)


def last_result(uart: bytes) -> Result | None:
    """The last RESULT frame in a firmware's UART output (what a host would keep)."""
    found = None
    for frame in FrameDecoder().feed(uart):
        if frame.type == MessageType.RESULT.reply:
            found = Result.decode(frame.body)
    return found

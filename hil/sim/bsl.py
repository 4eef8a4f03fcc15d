"""A simulated MSP430FR5994 with its ROM bootloader (BSL), for running real BSL downloaders.

Written from TI's *MSP430 FRAM Devices Bootloader (BSL) User's Guide* (SLAU550; the CRC and
the example frames also match SLAU319's flash-BSL chapter, which shares the UART wrapper):

* **UART**: 9600 baud, 8 data bits, even parity, 1 stop bit until a Change Baud Rate
  command. Bytes sent while the host's line settings differ (the adapter's, as carried by
  RFC 2217) are not understood: they are dropped and counted in `line_errors`.
* **Entry** (hardware invocation): with RST/NMI low, TEST rises at least twice; RST then
  rises while TEST is high → the BSL starts, locked, at 9600 baud. RST rising otherwise is a
  plain reset: the application runs and the BSL does not answer. RST and TEST are driven by
  the adapter's DTR and RTS through `BslWiring`.
* **Packets**: `0x80, NL, NH, core command (NL+NH*256 bytes), CKL, CKH`, the checksum being
  CRC-CCITT (polynomial 0x1021, seed 0xFFFF) of the core command. The BSL answers each
  packet with one byte — 0x00 ACK, or 0x51 header incorrect, 0x52 checksum incorrect, 0x53
  packet size zero, 0x54 packet size exceeds buffer, 0x56 unknown baud rate — and, after an
  ACK, a core response packet for the commands that have one: `0x3A` + data, or `0x3B` +
  message (0x00 success, 0x04 BSL locked, 0x05 password error, 0x07 unknown command).
* **Core commands**: RX Data Block 0x10 (message), RX Data Block Fast 0x1B (none),
  RX Password 0x11 (32 bytes compared with 0xFFE0–0xFFFF; a wrong one answers 0x05 and
  mass-erases the device, as FR5xx/FR6xx do), Mass Erase 0x15 (none on FR5xx/FR6xx; erases
  code FRAM 0x4000–0x43FFF, not information memory), CRC Check 0x16 (`0x3A, CRCL, CRCH`),
  Load PC 0x17 (none; the application runs from there), TX Data Block 0x18 (`0x3A` + data),
  TX BSL Version 0x19 (`0x3A` + 4 bytes), Change Baud Rate 0x52 (D1 = 2..6 → 9600, 19200,
  38400, 57600, 115200 baud; the ACK goes out at the old rate). All but RX Password, Mass
  Erase and Change Baud Rate answer 0x04 while the BSL is locked.

Assumed where the guide is silent: the receive buffer holds 260 bytes of core command (a
256-byte data block and its command and address); a core command too short for its
arguments answers 0x07; writes outside the memory map are ignored (counted in
`ignored_writes`); mass erase does not change the lock; the version bytes are
`00 08 30 A1` (vendor TI, an API in the FRAM range 0x30–0x3F).

`FramBsl` is the device; `simulate_bsl()` serves it behind an RFC 2217 port
(`hil.sim.serve.Rfc2217Endpoint`), so a downloader opening `rfc2217://127.0.0.1:PORT`
(pyserial's `serial_for_url`) does real socket I/O and drives RST/TEST through DTR/RTS —
which a pseudo-terminal cannot carry.

Public names: `FramBsl`, `BslWiring`, `BslCommand`, `SimulatedBsl`, `simulate_bsl`,
`MSP430FR5994_REGIONS` (the checksum is `hil.bsl.bsl_crc`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

import serial

from hil.bsl import BAUD_RATES, bsl_crc

from . import SimulatedInstrument
from .serve import Rfc2217Endpoint

__all__ = ["FramBsl", "BslWiring", "BslCommand", "SimulatedBsl", "simulate_bsl",
           "MSP430FR5994_REGIONS"]

# name -> (start, end exclusive, erased by Mass Erase); SLAU550 / the FR5994 datasheet
MSP430FR5994_REGIONS = MappingProxyType({
    "info": (0x1800, 0x1A00, False),
    "sram": (0x1C00, 0x3C00, False),
    "fram": (0x4000, 0x44000, True),
})
_MEM_SIZE = 0x44000
_PASSWORD = (0xFFE0, 0x10000)   # the interrupt vectors are the password
_ERASED = 0xFF

ACK, HEADER_INCORRECT, CHECKSUM_INCORRECT = 0x00, 0x51, 0x52
SIZE_ZERO, SIZE_TOO_BIG, UNKNOWN_BAUD = 0x53, 0x54, 0x56
MSG_OK, MSG_LOCKED, MSG_PASSWORD_ERROR, MSG_UNKNOWN_COMMAND = 0x00, 0x04, 0x05, 0x07
_NAMES = MappingProxyType({0x10: "RX Data Block", 0x1B: "RX Data Block Fast",
                           0x11: "RX Password", 0x15: "Mass Erase", 0x16: "CRC Check",
                           0x17: "Load PC", 0x18: "TX Data Block", 0x19: "TX BSL Version",
                           0x52: "Change Baud Rate"})
_PROTECTED = frozenset({0x10, 0x1B, 0x16, 0x17, 0x18, 0x19})


def _packet(core: bytes) -> bytes:
    crc = bsl_crc(core)
    return bytes([0x80, len(core) & 0xFF, len(core) >> 8]) + core + bytes([crc & 0xFF, crc >> 8])


@dataclass(frozen=True)
class BslWiring:
    """How the adapter's modem-control lines reach the MCU: which line drives RST and which
    TEST, and whether an asserted line (pyserial `dtr = True`) puts the pin low (`invert_*`).
    The default is the classic BSL adapter that `hil.bsl` and python-msp430-tools assume
    without `--invert-reset/--invert-test/--swap-reset-test`: RST follows DTR, TEST is the
    inverse of RTS (the adapter's TEST driver inverts)."""

    reset: str = "dtr"
    test: str = "rts"
    invert_reset: bool = False
    invert_test: bool = True

    def __post_init__(self) -> None:
        if {self.reset, self.test} != {"dtr", "rts"}:
            raise ValueError("BslWiring: reset and test are 'dtr' and 'rts', one each")

    def pins(self, dtr: bool, rts: bool) -> tuple[bool, bool]:
        """(RST high, TEST high) for the given line states."""
        lines = {"dtr": dtr, "rts": rts}
        return lines[self.reset] != self.invert_reset, lines[self.test] != self.invert_test


@dataclass(frozen=True)
class BslCommand:
    """One core command the BSL executed (for tests and logs)."""

    name: str
    address: int | None
    length: int
    response: str


@dataclass
class FramBsl:
    """An MSP430FR5994's memory, RST/TEST pins and UART BSL (see the module docstring).

    It is also the serial port's far side for `serial.rfc2217.PortManager`: the host's line
    settings (`baudrate`, `parity`, ...) and `dtr`/`rts` are set on it. `memory` is the
    whole address space up to 0x44000; `image` (address → bytes) is written into it first,
    the rest of FRAM and info memory holding `fill`. `corrupt_replies` lists indices (0 = the
    first) of core response packets sent with a wrong checksum, as line noise would.
    """

    image: Mapping[int, bytes] = field(default_factory=dict)
    fill: int = _ERASED
    wiring: BslWiring = field(default_factory=BslWiring)
    version: bytes = bytes([0x00, 0x08, 0x30, 0xA1])
    buffer_size: int = 260
    corrupt_replies: Iterable[int] = ()

    def __post_init__(self) -> None:
        self.memory = bytearray(_MEM_SIZE)
        for start, end, _ in MSP430FR5994_REGIONS.values():
            self.memory[start:end] = bytes([self.fill]) * (end - start)
        for address, data in self.image.items():
            self.memory[address:address + len(data)] = data
        self.corrupt_replies = frozenset(self.corrupt_replies)
        # host side of the line (what the adapter is set to), as RFC 2217 carries it
        self.baudrate, self.bytesize, self.parity, self.stopbits = 9600, 8, serial.PARITY_NONE, 1
        self.xonxoff = self.rtscts = self.break_condition = False
        self._dtr = self._rts = False
        self.rst, self.test = self.wiring.pins(False, False)
        self.mode = "app" if self.rst else "reset"   # "reset" | "app" | "bsl"
        self.uart_baud, self.locked, self.pc = 9600, True, None
        self.log: list[BslCommand] = []
        self.events: list[str] = []
        self.line_errors = self.ignored_writes = 0
        self._test_rises = self._replies = 0
        self._rx = bytearray()

    # -- the pins, through the adapter's DTR/RTS -------------------------------------------
    @property
    def dtr(self) -> bool:
        return self._dtr

    @dtr.setter
    def dtr(self, value: bool) -> None:
        self._dtr = bool(value)
        self._pins_changed()

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        self._rts = bool(value)
        self._pins_changed()

    # modem-status inputs of the adapter: nothing is wired to them
    cts = dsr = ri = cd = False

    def reset_input_buffer(self) -> None:
        """A purge empties the adapter's buffers; the MCU's state is not touched."""

    def reset_output_buffer(self) -> None:
        """See `reset_input_buffer`."""

    def _pins_changed(self) -> None:
        rst, test = self.wiring.pins(self._dtr, self._rts)
        if self.rst and not rst:                 # RST falls: the device is held in reset
            self.mode, self._test_rises = "reset", 0
        if not self.rst and test and not self.test:
            self._test_rises += 1                 # TEST edges count only while in reset
        if not self.rst and rst:                 # RST rises: BSL or application
            if test and self._test_rises >= 2:
                self.mode, self.locked, self.uart_baud = "bsl", True, 9600
                self._rx.clear()
                self.events.append("bsl entry")
            else:
                self.mode, self.pc = "app", None
                self.events.append("reset")
        self.rst, self.test = rst, test

    # -- the UART ------------------------------------------------------------------------------
    def _line_ok(self) -> bool:
        return (self.baudrate, self.bytesize, self.parity, self.stopbits) == (
            self.uart_baud, 8, serial.PARITY_EVEN, 1)

    def receive(self, data: bytes, now: float) -> bytes:
        """Bytes from the host; the bytes the BSL sends back."""
        if self.mode != "bsl":
            return b""                           # in reset or running the application
        if not self._line_ok():
            self.line_errors += len(data)        # framing/parity errors: nothing understood
            return b""
        self._rx += data
        out = bytearray()
        while self._rx:
            if self._rx[0] != 0x80:
                del self._rx[0]
                out.append(HEADER_INCORRECT)
                continue
            if len(self._rx) < 3:
                break
            n = self._rx[1] | self._rx[2] << 8
            if n == 0 or n > self.buffer_size:
                del self._rx[:3]
                out.append(SIZE_ZERO if n == 0 else SIZE_TOO_BIG)
                continue
            if len(self._rx) < n + 5:
                break
            core, check = bytes(self._rx[3:3 + n]), self._rx[3 + n] | self._rx[4 + n] << 8
            del self._rx[:n + 5]
            if bsl_crc(core) != check:
                out.append(CHECKSUM_INCORRECT)
                continue
            if core[0] == 0x52:                  # answered by the PI layer, then switched
                rate = BAUD_RATES.get(core[1]) if len(core) == 2 else None
                out.append(ACK if rate else UNKNOWN_BAUD)
                self.log.append(BslCommand(_NAMES[0x52], None, len(core) - 1,
                                           f"baud {rate}" if rate else "unknown baud rate"))
                if rate:
                    self.uart_baud = rate
                continue
            out.append(ACK)
            reply = self._execute(core)
            if reply:
                packet = bytearray(_packet(reply))
                if self._replies in self.corrupt_replies:
                    packet[-1] ^= 0x5A
                self._replies += 1
                out += packet
            if self.mode != "bsl":               # Load PC: the application has the UART now
                self._rx.clear()
                break
        return bytes(out)

    def tick(self, now: float) -> bytes:
        return b""

    def disconnect(self) -> None:
        self._rx.clear()

    # -- the BSL core ------------------------------------------------------------------------
    def _execute(self, core: bytes) -> bytes:
        cmd = core[0]
        name = _NAMES.get(cmd, f"command 0x{cmd:02X}")
        address = core[1] | core[2] << 8 | core[3] << 16 if len(core) >= 4 else None
        needs = {0x10: 4, 0x1B: 4, 0x16: 6, 0x17: 4, 0x18: 6}.get(cmd, 1)

        def done(reply: bytes, what: str, addr: int | None = None, length: int = 0) -> bytes:
            self.log.append(BslCommand(name, addr, length, what))
            return reply

        if cmd not in _NAMES or len(core) < needs:
            return done(bytes([0x3B, MSG_UNKNOWN_COMMAND]), "unknown command")
        if cmd in _PROTECTED and self.locked:
            return done(bytes([0x3B, MSG_LOCKED]), "locked", address)
        if cmd in (0x10, 0x1B):
            self._write(address, core[4:])
            return done(bytes([0x3B, MSG_OK]) if cmd == 0x10 else b"", "ok", address,
                        len(core) - 4)
        if cmd == 0x11:
            if core[1:] == self.memory[_PASSWORD[0]:_PASSWORD[1]]:
                self.locked = False
                return done(bytes([0x3B, MSG_OK]), "unlocked", None, len(core) - 1)
            self._mass_erase()                   # FR5xx/FR6xx: a wrong password erases
            self.locked = True
            return done(bytes([0x3B, MSG_PASSWORD_ERROR]), "password error, mass erased",
                        None, len(core) - 1)
        if cmd == 0x15:
            self._mass_erase()
            return done(b"", "erased")
        if cmd == 0x19:
            return done(b"\x3a" + self.version, "version")
        if cmd == 0x17:
            self.mode, self.pc = "app", address
            self.events.append(f"load pc 0x{address:05X}")
            return done(b"", "running", address)
        length = core[4] | core[5] << 8
        data = bytes(self.memory[address:address + length]).ljust(length, b"\xff")
        if cmd == 0x16:
            crc = bsl_crc(data)
            return done(bytes([0x3A, crc & 0xFF, crc >> 8]), f"crc 0x{crc:04X}", address,
                        length)
        return done(b"\x3a" + data, "data", address, length)      # 0x18 TX Data Block

    def _write(self, address: int, data: bytes) -> None:
        for i, byte in enumerate(data):
            a = address + i
            if any(start <= a < end for start, end, _ in MSP430FR5994_REGIONS.values()):
                self.memory[a] = byte
            else:
                self.ignored_writes += 1

    def _mass_erase(self) -> None:
        for start, end, erased in MSP430FR5994_REGIONS.values():
            if erased:
                self.memory[start:end] = bytes([_ERASED]) * (end - start)
        self.events.append("mass erase")

    def read(self, address: int, length: int) -> bytes:
        """Memory contents (for checks after flashing)."""
        return bytes(self.memory[address:address + length])


class SimulatedBsl(SimulatedInstrument):
    """A `FramBsl` served over RFC 2217; `url` (also `resource`) is what a downloader opens
    (`rfc2217://127.0.0.1:PORT`). A context manager that closes the port; `hang()` makes
    the MCU stop answering while the RFC 2217 port itself still works."""

    def __init__(self, device: FramBsl, endpoint: Rfc2217Endpoint):
        self.model, self.device, self.endpoint = "msp430fr5994-bsl", device, endpoint
        self.url = self.resource = f"rfc2217://{endpoint.host}:{endpoint.port}"


def simulate_bsl(**options) -> SimulatedBsl:
    """Start a simulated MSP430FR5994 BSL (`FramBsl(**options)`) on a loopback RFC 2217 port."""
    device = FramBsl(**options)
    return SimulatedBsl(device, Rfc2217Endpoint(device))

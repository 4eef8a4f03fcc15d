"""Flashing an MSP430 FRAM device through its ROM bootloader (BSL) over a UART.

The host side of TI's *MSP430 FRAM Devices Bootloader (BSL) User's Guide* (SLAU550), used by
`hil.flash.BslFlasher` as `python -m hil.bsl`:

    python -m hil.bsl -p PORT [-e] [-P] [-r] [--invert-reset] [--invert-test]
                      [--swap-reset-test] [-s BAUD] [--password HEX] [--timeout S] ELF

1. the entry sequence on RST/TEST through the adapter's DTR/RTS (RST follows DTR, TEST is
   the inverse of RTS unless `--invert-*` / `--swap-reset-test` say otherwise): RST low,
   two rising edges on TEST, RST high while TEST is high, TEST low;
2. `-e`: Mass Erase (FR5xx/FR6xx answer it with the ACK only), then RX Password with the
   erased vectors (32 × 0xFF); without `-e`: RX Password with `--password` (64 hex digits,
   the contents of 0xFFE0–0xFFFF; default the erased vectors) — on FR5xx a wrong password
   mass-erases the device and the BSL answers "password error";
3. `-s BAUD`: Change Baud Rate (9600 ... 115200), then the port follows;
4. `-P`: every PT_LOAD segment of the ELF (`emu.elf.ElfImage`: what the emulator loads) in
   RX Data Block commands of up to 256 bytes, each answered "operation successful"; then
   each segment checked with CRC Check against the CRC computed here;
5. `-r`: a reset (RST low, then high with TEST low): the application starts.

Every step is printed; a failure prints `error: COMMAND: what happened` and exits 1 (2 for
bad arguments). The port is anything pyserial's `serial_for_url` opens: `/dev/ttyUSB0`,
or `rfc2217://HOST:PORT` (the simulated BSL of `hil.sim.bsl`).

Why not python-msp430-tools' `msp430.bsl5.uart`, which this module replaces: its 0.10
release (the newest on PyPI) cannot send a frame on Python 3 (`ord()` of the ints that
iterating `bytes` yields, str passwords), compares the reply header with a str, and — on
any Python — computes the frame checksum over the 0x80 header and length bytes too
(SLAU550: over the core command only; TI's example `80 01 00 19 E8 62` has CRC 0x62E8 of
the single byte 0x19) and compares a tuple with an int when checking replies.

Public names: `BslDownloader`, `BslError`, `main`, `bsl_crc`, `BAUD_RATES`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from types import MappingProxyType

import serial

from emu.elf import ElfImage
from emu.errors import EmuError
from emu.protocol import crc16

__all__ = ["BslDownloader", "BslError", "main", "bsl_crc", "BAUD_RATES"]

# Change Baud Rate's D1 -> baud (SLAU550)
BAUD_RATES = MappingProxyType({0x02: 9600, 0x03: 19200, 0x04: 38400, 0x05: 57600,
                               0x06: 115200})

BLOCK = 256                      # data bytes per RX Data Block (the BSL buffer holds 260)
_ACK_ERRORS = {0x51: "header incorrect", 0x52: "checksum incorrect", 0x53: "packet size zero",
               0x54: "packet size exceeds buffer", 0x55: "unknown error",
               0x56: "unknown baud rate"}
_MESSAGES = {0x00: "operation successful", 0x01: "memory write check failed",
             0x04: "BSL locked", 0x05: "BSL password error", 0x07: "unknown command"}
_BAUD_CODES = {rate: code for code, rate in BAUD_RATES.items()}


def bsl_crc(data: bytes) -> int:
    """The packet checksum: CRC-CCITT (poly 0x1021, seed 0xFFFF) of the core command, the
    host protocol's CRC."""
    return crc16(data)


class BslError(EmuError):
    """A BSL command failed: the message names the command and what the BSL answered."""


class BslDownloader:
    """The host side of the UART BSL on an open pyserial port (see the module docstring)."""

    def __init__(self, port: serial.SerialBase, invert_reset: bool = False,
                 invert_test: bool = False, swap_reset_test: bool = False,
                 line_delay: float = 0.01, say: Callable[[str], None] = print):
        self.port, self.line_delay, self.say = port, line_delay, say
        self.invert_reset, self.invert_test = invert_reset, invert_test
        self.swap = swap_reset_test

    # -- pins -------------------------------------------------------------------------------
    def _set(self, pin: str, high: bool) -> None:
        if pin == "rst":   # RST follows DTR; TEST is the inverse of RTS (adapter convention)
            level, line = high != self.invert_reset, "rts" if self.swap else "dtr"
        else:
            level, line = (not high) != self.invert_test, "dtr" if self.swap else "rts"
        setattr(self.port, line, level)
        time.sleep(self.line_delay)

    def enter(self) -> None:
        """The hardware entry sequence (SLAU550, hardware BSL invocation)."""
        self._set("rst", True)
        self._set("test", False)
        self._set("rst", False)
        for _ in range(2):
            self._set("test", True)
            self._set("test", False)
        self._set("test", True)
        self._set("rst", True)
        self._set("test", False)
        time.sleep(0.05)
        self.port.reset_input_buffer()
        self.say("BSL entry sequence sent")

    def reset(self) -> None:
        """A plain reset: RST low, then high with TEST low; the application starts."""
        self._set("test", False)
        self._set("rst", False)
        self._set("rst", True)
        self.say("reset: application started")

    # -- packets ------------------------------------------------------------------------------
    def command(self, what: str, core: bytes, reply: bool = True) -> bytes:
        """Send one core command; its core response (b"" if `reply` is False)."""
        crc = bsl_crc(core)
        self.port.write(bytes([0x80, len(core) & 0xFF, len(core) >> 8]) + core
                        + bytes([crc & 0xFF, crc >> 8]))
        ack = self.port.read(1)
        if not ack:
            raise BslError(f"{what}: no answer within {self.port.timeout:g} s. Is the BSL "
                           f"running? Check the wiring of RST and TEST (--invert-reset, "
                           f"--invert-test, --swap-reset-test), the port and the power")
        if ack[0] != 0x00:
            raise BslError(f"{what}: the BSL answered 0x{ack[0]:02X} "
                           f"({_ACK_ERRORS.get(ack[0], 'not an acknowledgment')})")
        if not reply:
            return b""
        head = self.port.read(3)
        if len(head) < 3 or head[0] != 0x80:
            raise BslError(f"{what}: bad or missing response header {head.hex(' ') or '(none)'}")
        n = head[1] | head[2] << 8
        body = self.port.read(n + 2)
        if len(body) < n + 2:
            raise BslError(f"{what}: response cut short ({len(body)} of {n + 2} bytes)")
        data, check = body[:n], body[n] | body[n + 1] << 8
        if bsl_crc(data) != check:
            raise BslError(f"{what}: CRC error in the response (received 0x{check:04X}, "
                           f"computed 0x{bsl_crc(data):04X}; response {data.hex(' ')})")
        if data[:1] == b"\x3b" and len(data) == 2 and data[1] != 0x00:
            raise BslError(f"{what}: {_MESSAGES.get(data[1], 'error')} "
                           f"(message 0x{data[1]:02X})")
        return data

    def _expect_ok(self, what: str, core: bytes) -> None:
        data = self.command(what, core)
        if data != b"\x3b\x00":
            raise BslError(f"{what}: unexpected response {data.hex(' ')}")

    def mass_erase(self) -> None:
        self.command("Mass Erase", b"\x15", reply=False)   # FR5xx: ACK, no core response
        self.say("mass erase")

    def password(self, password: bytes = b"\xff" * 32) -> None:
        self._expect_ok("RX Password", b"\x11" + password)
        self.say("BSL unlocked")

    def change_baud(self, baud: int) -> None:
        if baud not in _BAUD_CODES:
            raise BslError(f"Change Baud Rate: {baud} is not one of "
                           f"{', '.join(map(str, _BAUD_CODES))}")
        self.command("Change Baud Rate", bytes([0x52, _BAUD_CODES[baud]]), reply=False)
        self.port.baudrate = baud
        self.say(f"baud rate {baud}")

    def version(self) -> bytes:
        data = self.command("TX BSL Version", b"\x19")
        self.say(f"BSL version {data[1:].hex(' ')}")
        return data[1:]

    def write(self, address: int, data: bytes) -> None:
        for off in range(0, len(data), BLOCK):
            a = address + off
            self._expect_ok(f"RX Data Block at 0x{a:05X}",
                            b"\x10" + a.to_bytes(3, "little") + data[off:off + BLOCK])

    def crc_check(self, address: int, length: int) -> int:
        data = self.command(f"CRC Check at 0x{address:05X}+{length}",
                            b"\x16" + address.to_bytes(3, "little") + length.to_bytes(2, "little"))
        return data[1] | data[2] << 8

    def program(self, image: ElfImage, verify: bool = True) -> int:
        """Write every loadable segment; check each by CRC. The number of bytes written."""
        total = 0
        for seg in image.segments:
            self.write(seg.address, seg.data)
            total += len(seg.data)
            self.say(f"wrote {len(seg.data)} bytes at 0x{seg.address:05X}")
            if verify:
                for off in range(0, len(seg.data), 0xFFFF):
                    part = seg.data[off:off + 0xFFFF]
                    got, want = self.crc_check(seg.address + off, len(part)), bsl_crc(part)
                    if got != want:
                        raise BslError(f"CRC Check at 0x{seg.address + off:05X}+{len(part)}: "
                                       f"the device has CRC 0x{got:04X}, the file 0x{want:04X}")
        self.say(f"programmed {total} bytes in {len(image.segments)} segments"
                 + (", verified by CRC Check" if verify else ""))
        return total


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m hil.bsl` (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m hil.bsl",
                                 description="Flash an MSP430 FRAM device through its UART BSL")
    ap.add_argument("elf", type=Path)
    ap.add_argument("-p", "--port", required=True, help="serial port or pyserial URL")
    ap.add_argument("-e", "--mass-erase", action="store_true")
    ap.add_argument("-P", "--program", action="store_true")
    ap.add_argument("-r", "--reset", action="store_true")
    ap.add_argument("--no-verify", action="store_true", help="skip the CRC Check")
    ap.add_argument("--invert-reset", action="store_true")
    ap.add_argument("--invert-test", action="store_true")
    ap.add_argument("--swap-reset-test", action="store_true")
    ap.add_argument("-s", "--speed", type=int)
    ap.add_argument("--password", help="64 hex digits: the contents of 0xFFE0-0xFFFF")
    ap.add_argument("--timeout", type=float, default=1.0, help="reply timeout, seconds")
    args = ap.parse_args(argv)
    try:
        password = bytes.fromhex(args.password) if args.password else b"\xff" * 32
        if len(password) != 32:
            raise ValueError
    except ValueError:
        ap.error("--password takes 64 hex digits (32 bytes)")
    try:
        image = ElfImage.read(args.elf)
        with serial.serial_for_url(args.port, baudrate=9600, bytesize=8,
                                   parity=serial.PARITY_EVEN, stopbits=1,
                                   timeout=args.timeout) as port:
            bsl = BslDownloader(port, args.invert_reset, args.invert_test, args.swap_reset_test)
            bsl.enter()
            if args.mass_erase:
                bsl.mass_erase()
            bsl.password(password)
            if args.speed:
                bsl.change_baud(args.speed)
            bsl.version()
            if args.program:
                bsl.program(image, verify=not args.no_verify)
            if args.reset:
                bsl.reset()
    except (EmuError, serial.SerialException, OSError) as e:
        print(f"error: {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

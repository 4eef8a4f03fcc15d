"""Flashers: write an ELF into a board (`hil.board.FlashProtocol`: `flash(elf)`).

* `PyocdFlasher` — Cortex-M through a CMSIS-DAP or ST-Link probe with pyocd's Python API
  (`ConnectHelper.session_with_chosen_probe`, `FileProgrammer`), then a reset. pyocd is an
  optional extra (`pip install pyocd`), imported only when flashing: without it, a clear
  `FlashError`.
* `MspdebugFlasher` — MSP430 through mspdebug, run as a subprocess:
  `mspdebug -n [-d DEVICE] [ARGS...] DRIVER "prog ELF" "verify ELF"` with the `tilib`
  (MSP-FET, eZ-FET with TI's libmsp430.so), `ezfet` or `sim` driver (mspdebug's simulated
  MSP430, no hardware: a dry run of a rack's flashing step); `command` replaces the whole
  command line (`{elf}` and `{device}` are substituted).
* `BslFlasher` — MSP430 FRAM devices through their ROM bootstrap loader over a UART, with
  the project's own SLAU550 downloader run as a subprocess (`hil.bsl`; python-msp430-tools
  0.10's `msp430.bsl5.uart` cannot send a frame on Python 3 and checksums the wrong bytes):
  `PYTHON -m hil.bsl -p PORT -e -P -r [ARGS...] ELF` (mass erase, program, check each
  segment by CRC, reset; the RST/TEST entry sequence comes from DTR/RTS). PORT may be any
  pyserial URL. `command` replaces the whole command line (`{elf}`, `{port}`), for another
  BSL tool.

`flash()` returns the tool's output. A failing tool raises `FlashError` with the command
line, its exit status and the end of its output. `hil.virtual.VirtualFlasher` flashes a
virtual board.

Public names: `PyocdFlasher`, `MspdebugFlasher`, `BslFlasher`, `run_tool`.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from .errors import FlashError

__all__ = ["PyocdFlasher", "MspdebugFlasher", "BslFlasher", "run_tool"]

_TAIL = 1500  # characters of a failing tool's output quoted in the error
# characters mspdebug's command parser treats specially (see MspdebugFlasher)
_MSPDEBUG_SPECIAL = re.compile(r'[\s"\'\\#]')


def _elf(elf: str | Path) -> Path:
    path = Path(elf)
    if not path.is_file():
        raise FlashError(f"cannot flash {path}: no such file (build the firmware: make firmware)")
    return path


def run_tool(argv: Sequence[str], what: str, timeout: float, fix: str) -> str:
    """Run a flashing tool; its combined output, or `FlashError` naming the command."""
    shown = shlex.join(argv)
    try:
        done = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", timeout=timeout)
    except FileNotFoundError:
        raise FlashError(f"{what}: {argv[0]} not found. {fix}") from None
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or "")[-_TAIL:] if isinstance(e.stdout, str) else ""
        raise FlashError(f"{what}: `{shown}` did not finish within {timeout:g} s; output: "
                         f"{out.strip() or '(none)'}") from None
    if done.returncode != 0:
        raise FlashError(f"{what}: `{shown}` failed with exit status {done.returncode}; output: "
                         f"{done.stdout[-_TAIL:].strip() or '(none)'}")
    return done.stdout


class MspdebugFlasher:
    """mspdebug as a subprocess (see the module docstring).

    After `prog` the flasher runs mspdebug's `verify` on the same file (`verify=False`
    leaves it out): `prog` writes the image but does not read it back, so a write that did not
    take — a segment outside the device's memory, a part mspdebug's driver cannot program, a
    flaky probe — would otherwise pass silently. `verify FILE` (in mspdebug since 0.2x and
    in today's manual) reads every section back and compares; on the first differing byte it
    prints `ERROR: mismatch at ADDR (read XX, expected YY)` and mspdebug exits non-zero,
    which becomes a `FlashError` with that line. It costs one read of the image.

    mspdebug parses its command strings itself, and versions differ in how `prog` takes its
    argument (0.22 the rest of the line; later ones one shell-like word), so a path with
    whitespace, quotes or backslashes is passed through a symbolic link with a plain name.
    `-n` skips the user's `~/.mspdebug` startup file, so what runs is what `argv()` says.
    """

    DRIVERS = ("tilib", "ezfet", "sim")

    def __init__(self, driver: str = "tilib", device: str | None = None, args: Sequence[str] = (),
                 command: Sequence[str] | None = None, executable: str = "mspdebug",
                 timeout: float = 120.0, verify: bool = True):
        if command is None and driver not in self.DRIVERS:
            raise FlashError(f"mspdebug driver {driver!r} is not supported here; use one of "
                             f"{', '.join(self.DRIVERS)} or give the whole `command`")
        self.driver, self.device, self.args = driver, device, tuple(args)
        self.command = tuple(command) if command is not None else None
        self.executable, self.timeout, self.verify = executable, float(timeout), bool(verify)

    def argv(self, elf: str | Path) -> list[str]:
        """The command line that flashes (and verifies) `elf`."""
        if self.command is not None:
            return [part.format(elf=str(elf), device=self.device or "") for part in self.command]
        argv = [self.executable, "-n"]
        if self.device:
            argv += ["-d", self.device]
        argv += [*self.args, self.driver, f"prog {elf}"]
        return argv + ([f"verify {elf}"] if self.verify else [])

    def flash(self, elf: str | Path) -> str:
        """Program and verify `elf`; mspdebug's output, or `FlashError`."""
        path = _elf(elf)
        fix = ("Install it (apt-get install mspdebug); the tilib driver also needs TI's "
               "libmsp430.so on the library path")
        if self.command is not None or not _MSPDEBUG_SPECIAL.search(str(path)):
            return run_tool(self.argv(path), f"mspdebug ({self.driver})", self.timeout, fix)
        with tempfile.TemporaryDirectory(prefix="hil-mspdebug-") as tmp:
            link = Path(tmp) / "firmware.elf"
            link.symlink_to(path.resolve())
            return run_tool(self.argv(link), f"mspdebug ({self.driver}) flashing {path}",
                            self.timeout, fix)


class BslFlasher:
    """`python -m hil.bsl` as a subprocess (see the module docstring). `erase=False` leaves
    out the mass erase: the BSL is then unlocked with the password in `args`
    (`--password HEX`) or the erased vectors, and a wrong one makes an FR5xx erase itself."""

    def __init__(self, port: str, args: Sequence[str] = (), command: Sequence[str] | None = None,
                 python: str | None = None, timeout: float = 300.0, erase: bool = True):
        self.port, self.args, self.erase = port, tuple(args), bool(erase)
        self.command = tuple(command) if command is not None else None
        self.python, self.timeout = python or sys.executable, float(timeout)

    def argv(self, elf: str | Path) -> list[str]:
        if self.command is not None:
            return [part.format(elf=str(elf), port=self.port) for part in self.command]
        return [self.python, "-m", "hil.bsl", "-p", self.port, *(["-e"] if self.erase else []),
                "-P", "-r", *self.args, str(elf)]

    def flash(self, elf: str | Path) -> str:
        """Erase, program, check by CRC and reset; the downloader's output."""
        path = _elf(elf)
        return run_tool(self.argv(path), f"MSP430 BSL on {self.port}", self.timeout,
                        "Check the python interpreter (`python` option)")


class PyocdFlasher:
    """pyocd's Python API (see the module docstring). `target` is a pyocd target name
    (`stm32l476rg`, ...), `probe` a probe's unique ID (None: the only one connected)."""

    def __init__(self, target: str, probe: str | None = None, frequency: int | None = None,
                 options: dict | None = None):
        self.target, self.probe, self.frequency = target, probe, frequency
        self.options = dict(options or {})

    def flash(self, elf: str | Path) -> str:
        """Program `elf` through pyocd and reset; an empty string (pyocd logs through
        `logging`, not to an output this flasher could return)."""
        path = _elf(elf)
        try:
            from pyocd.core.helpers import ConnectHelper
            from pyocd.flash.file_programmer import FileProgrammer
        except ImportError as e:
            raise FlashError(f"the pyocd flasher needs pyocd: pip install pyocd (or the "
                             f"project's extra: pip install -e '.[hil]') ({e})") from e
        options = dict(self.options)
        if self.frequency:
            options["frequency"] = int(self.frequency)
        try:
            session = ConnectHelper.session_with_chosen_probe(
                blocking=False, unique_id=self.probe, target_override=self.target, options=options)
        except Exception as e:  # noqa: BLE001 - pyocd raises its own and USB errors
            raise FlashError(f"pyocd: cannot connect to probe {self.probe or '(any)'}: {e}") from e
        if session is None:
            raise FlashError(f"pyocd: no debug probe {'with ID ' + self.probe if self.probe else ''}"
                             f" found. Check the USB cable and udev rules; `pyocd list` shows "
                             f"the probes")
        try:
            with session:
                FileProgrammer(session).program(str(path), file_format="elf")
                session.target.reset()
        except Exception as e:  # noqa: BLE001
            raise FlashError(f"pyocd: flashing {path.name} onto {self.target} failed: {e}") from e
        return ""

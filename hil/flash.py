"""Flashers: write an ELF into a board (`hil.board.FlashProtocol`: `flash(elf)`).

* `PyocdFlasher` — Cortex-M through a CMSIS-DAP or ST-Link probe (or a pyocd probe server:
  `remote:HOST:PORT`) with pyocd's Python API: the ELF's PT_LOAD segments inside the target's
  flash go through pyocd's flash loader (its flash algorithm), the others (e.g. external
  MRAM at 0x60000000: initial values of non-volatile variables, which pyocd's own ELF loader
  skips with a warning) are written with memory writes after a reset and halt; everything is
  read back and compared, then a reset lets the firmware run. A segment that is neither in
  flash nor in memory the debugger can write is refused before anything is erased. On a real
  STM32L4 the external memory controller (FMC) must be set up before the MRAM writes, in a
  pyocd user script (see `PyocdFlasher`). pyocd is an optional extra (`pip install pyocd`),
  imported only when flashing: without it, a clear `FlashError`.
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

`flash()` returns the tool's output (`PyocdFlasher`: what it wrote). A failing tool raises
`FlashError` with the command line, its exit status and the end of its output.
`hil.virtual.VirtualFlasher` flashes a virtual board.

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
    """pyocd's Python API. `target` is a pyocd target name (`stm32l475xg`, ...), `probe` a
    probe's unique ID (None: the only one connected; `remote:HOST:PORT` for a pyocd probe
    server, such as `hil.sim.debug_probe`), `frequency` the SWD/JTAG clock in Hz, `options`
    more pyocd session options (e.g. `user_script`, `connect_mode`).

    `flash(elf)`, in this order:

    1. Reads the ELF's PT_LOAD segments with pyelftools: the file bytes of each (not a
       zero-filled tail), at its physical address; empty ones are left out.
    2. Connects (pyocd halts the core) and sorts the segments by the target's memory map:
       inside flash regions, or elsewhere. A segment partly in flash is refused. Every other
       segment must be memory the debugger can write: its first and last bytes are read and
       written back unchanged, and a transfer fault refuses the ELF, naming the segment's
       range and the fix — all before anything is erased.
    3. Programs the flash segments with pyocd's `FlashLoader` (sector erase, smart flash,
       the target's flash algorithm run on the core).
    4. Resets and halts, then writes the other segments with memory writes
       (`write_memory_block8`).
    5. Reads every segment back (pyocd's memory cache off) and compares: the first differing
       byte is a `FlashError`.
    6. Resets, and the firmware runs.

    External memory on a real board: the cortex-m4-mram board's MRAM sits behind the
    STM32L4's FMC (bank 1, 0x60000000), which is off after a reset, so the debugger's
    accesses there fault (step 2 then refuses the ELF). A pyocd user script must set up the
    FMC, its clock and its pins — in `did_connect` (for the check of step 2) and in
    `did_reset` (for the writes of step 4) — and is passed as `options={"user_script":
    "fmc.py"}`. `hil.sim.debug_probe` has no FMC: its MRAM answers from the start."""

    def __init__(self, target: str, probe: str | None = None, frequency: int | None = None,
                 options: dict | None = None):
        self.target, self.probe, self.frequency = target, probe, frequency
        self.options = dict(options or {})

    def flash(self, elf: str | Path) -> str:
        """Program and verify `elf` as above and reset; a line per segment written."""
        path = _elf(elf)
        segments = _load_segments(path)
        try:
            from pyocd.core import exceptions as pyocd_errors
            from pyocd.core.helpers import ConnectHelper
            from pyocd.flash.loader import FlashLoader
        except ImportError as e:
            raise FlashError(f"the pyocd flasher needs pyocd: pip install pyocd (or the "
                             f"project's extra: pip install -e '.[hil]') ({e})") from e
        options = dict(self.options)
        if self.frequency:
            options["frequency"] = int(self.frequency)
        options.setdefault("cache.enable_memory", False)  # step 5 must read the target itself
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
            session.open()
        except Exception as e:  # noqa: BLE001 - a probe server that is not there, USB errors
            _close_quietly(session)
            raise FlashError(f"pyocd: cannot connect to probe {self.probe or '(any)'}: {e}") from e
        try:
            return self._program(session, path, segments, FlashLoader, pyocd_errors)
        except FlashError:
            raise
        except Exception as e:  # noqa: BLE001
            raise FlashError(f"pyocd: flashing {path.name} onto {self.target} failed: {e}") from e
        finally:
            _close_quietly(session)

    def _program(self, session, path: Path, segments, FlashLoader, pyocd_errors) -> str:
        target = session.target
        in_flash, elsewhere = _sort_segments(path, segments, target.memory_map, self.target)
        for address, data in elsewhere:  # before anything is erased
            for probe_at in sorted({address, address + len(data) - 1}):
                try:
                    target.write_memory_block8(probe_at, target.read_memory_block8(probe_at, 1))
                except pyocd_errors.TransferError as e:
                    raise FlashError(
                        f"pyocd: {path.name}: segment {_span(address, data)} is neither in "
                        f"{self.target}'s flash nor in memory the debugger can write (access at "
                        f"{probe_at:#010x} failed: {e}); nothing was erased. Link it into flash "
                        f"or RAM, or make that memory accessible first (external memory: set up "
                        f"its controller in a pyocd user script)") from e
        if in_flash:
            loader = FlashLoader(session, progress=lambda fraction: None)
            for address, data in in_flash:
                loader.add_data(address, data)
            loader.commit()
        target.reset_and_halt()
        for address, data in elsewhere:
            target.write_memory_block8(address, list(data))
        for address, data in in_flash + elsewhere:
            back = bytes(target.read_memory_block8(address, len(data)))
            if back != data:
                at = next(i for i, (a, b) in enumerate(zip(back, data)) if a != b)
                raise FlashError(f"pyocd: {path.name}: verification failed at {address + at:#010x} "
                                 f"(read {back[at]:#04x}, expected {data[at]:#04x}) in segment "
                                 f"{_span(address, data)}")
        target.reset()
        return "".join(f"{'flash' if (a, d) in in_flash else 'memory'} {_span(a, d)}: "
                       f"written and verified\n" for a, d in sorted(in_flash + elsewhere))


def _load_segments(path: Path) -> list[tuple[int, bytes]]:
    """(physical address, file bytes) of the ELF's non-empty PT_LOAD segments."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with path.open("rb") as f:
            segments = [(seg["p_paddr"], seg.data()) for seg in ELFFile(f).iter_segments()
                        if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0]
    except (ELFError, OSError, ValueError) as e:
        raise FlashError(f"cannot flash {path}: not a readable ELF file ({e})") from None
    if not segments:
        raise FlashError(f"cannot flash {path}: it has no loadable (PT_LOAD) segment with contents")
    return segments


def _sort_segments(path: Path, segments, memory_map, target: str):
    """(segments inside flash regions, the others); FlashError for one partly in flash."""
    in_flash, elsewhere = [], []
    for address, data in segments:
        end = address + len(data)
        flash = [r for r in memory_map.get_intersecting_regions(address, length=len(data)) if r.is_flash]
        covered, a = True, address
        while a < end:  # contiguous flash regions from the first byte to the last?
            region = memory_map.get_region_for_address(a)
            if region is None or not region.is_flash:
                covered = False
                break
            a = region.end + 1
        if flash and not covered:
            regions = ", ".join(f"{r.name} {r.start:#010x}-{r.end:#010x}" for r in flash)
            raise FlashError(f"pyocd: {path.name}: segment {_span(address, data)} lies partly in "
                             f"{target}'s flash ({regions}) and partly outside it; link it wholly "
                             f"inside or outside flash")
        (in_flash if flash else elsewhere).append((address, data))
    return in_flash, elsewhere


def _span(address: int, data: bytes) -> str:
    return f"{address:#010x}-{address + len(data) - 1:#010x} ({len(data)} bytes)"


def _close_quietly(session) -> None:
    try:
        session.close()
    except Exception:  # noqa: BLE001 - closing is best effort; the first error wins
        pass

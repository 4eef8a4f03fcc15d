"""The three small protocols of a rack (labgrid's split) and the board made of them.

* `PowerProtocol` — `on()`, `off()`, `cycle(off_time)`, `set_voltage(V)`,
  `set_current_limit(A)`, `measure() -> (V, A)` (`hil.power.SupplyPower`, ...).
* `ConsoleProtocol` — `read(timeout)`, `write(bytes)`, `expect(pattern, timeout)`
  returning the `re.Match` (`hil.console.SerialConsole`, ...).
* `FlashProtocol` — `flash(elf)` (`hil.flash.*`, `hil.virtual.VirtualFlasher`).

A `Board` is a flasher + a console + a power driver, plus what the rack knows of it (its
emulator board type and clock). `board.host()` is an `emu.host.Host` on its console: the
same client the emulator tests use, so jobs run on a real or virtual board exactly as on
`emu`. A virtual board (`hil.virtual`) is a `Board` built from the same drivers, so a rack
script cannot tell which it drives.

Public names: `PowerProtocol`, `ConsoleProtocol`, `FlashProtocol`, `Board`, `RackHost`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from emu.host import Host

__all__ = ["PowerProtocol", "ConsoleProtocol", "FlashProtocol", "Board", "RackHost"]


@runtime_checkable
class PowerProtocol(Protocol):
    """Power for one board."""

    def on(self) -> None: ...

    def off(self) -> None: ...

    def cycle(self, off_time: float = 0.5) -> None: ...

    def set_voltage(self, volts: float) -> None: ...

    def set_current_limit(self, amps: float) -> None: ...

    def measure(self) -> tuple[float, float]: ...


@runtime_checkable
class ConsoleProtocol(Protocol):
    """A byte stream to the board's UART."""

    def read(self, timeout: float = 0.0) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def expect(self, pattern: str | bytes | re.Pattern[bytes], timeout: float = 5.0) -> re.Match[bytes]: ...


@runtime_checkable
class FlashProtocol(Protocol):
    """Writes an ELF into the board's non-volatile memory; returns the flasher's output
    (a tool's log, or an empty string)."""

    def flash(self, elf: str | Path) -> str: ...


class RackHost(Host):
    """`emu.host.Host` that never starts a job with a seq the firmware would take for a retry
    of its last job (the previous RUN's seq, or 0, the seq of the job a freshly flashed
    firmware runs at its first boot): seq numbers wrap at 256 and a board outlives hosts."""

    def __init__(self, transport, *, last_job_seq: int | None = None, **options: Any):
        super().__init__(transport, **options)
        self.last_job_seq = last_job_seq

    def run(self) -> None:
        while (self._seq + 1) & 0xFF in (0, self.last_job_seq):
            self._next_seq()
        super().run()
        self.last_job_seq = self._job_seq

    @property
    def job_seq(self) -> int | None:
        """The seq of the job started by the last `run()`."""
        return self._job_seq


@dataclass
class Board:
    """One board of a rack. `board_type` is the emulator's board name (`msp430fr5994`,
    `cortex-m4-mram`), `clock_hz` its CPU clock (instruction counts become milliseconds
    through it), `elf_for(firmware)` where the ELF of a vector's firmware is."""

    name: str
    board_type: str
    clock_hz: int
    console: ConsoleProtocol
    power: PowerProtocol
    flasher: FlashProtocol
    build: Path = Path("build")
    host_timeout: float = 0.5
    host_retries: int = 2
    off_time: float = 0.1           # seconds between a scheduled power-off and power-on
    result_timeout: float = 60.0    # seconds a vector may take
    virtual: bool = False
    closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _host: RackHost | None = field(default=None, repr=False)

    def elf_for(self, firmware: str) -> Path:
        return self.build / self.board_type / f"{firmware}.elf"

    def host(self) -> RackHost:
        """The board's host-protocol client (one per board: seq numbers continue across
        jobs, see `RackHost`)."""
        if self._host is None:
            self._host = RackHost(self.console, timeout=self.host_timeout, retries=self.host_retries)
        return self._host

    def flash(self, elf: str | Path) -> str:
        """Flash `elf` (returns the flasher's output); the next job starts from a fresh
        host state (the flashed firmware starts its seq history anew)."""
        output = self.flasher.flash(elf)
        if self._host is not None:
            self._host.decoder = type(self._host.decoder)()
            self._host.results.clear()
            self._host.last_job_seq = None
        return output

    def close(self) -> None:
        """Release the console, the supply and anything else the board opened."""
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # noqa: BLE001 - closing is best effort; the first error wins elsewhere
                pass
        self.closers.clear()

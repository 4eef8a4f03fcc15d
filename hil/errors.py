"""Exceptions of the hardware-in-the-loop layer (boards, consoles, flashers, racks).

All derive from `emu.EmuError` (via `HilError`), the project's one exception type for
problems a user can cause and fix: the `hil` command prints them without a traceback and
exits 2 (or, inside `hil run`, reports the board's vector as an error and goes on).
The power-supply errors (`hil.psu.PsuError` ...) are `EmuError`s too.

Public names: `HilError`, `ConsoleError`, `ConsoleTimeout`, `FlashError`, `RackError`.
"""

from __future__ import annotations

from emu.errors import EmuError

__all__ = ["HilError", "ConsoleError", "ConsoleTimeout", "FlashError", "RackError"]


class HilError(EmuError):
    """A hardware-in-the-loop problem: the message names it and the fix."""


class ConsoleError(HilError):
    """A serial console that cannot be opened, or vanished and did not come back."""


class ConsoleTimeout(ConsoleError):
    """`expect` did not see its pattern in time; `received` holds what came meanwhile."""

    def __init__(self, message: str, received: bytes = b""):
        super().__init__(message)
        self.received = received


class FlashError(HilError):
    """Flashing failed: a missing tool or package, a probe not found, the tool's error."""


class RackError(HilError):
    """A rack configuration error; the message names the file, the key path and the fix."""

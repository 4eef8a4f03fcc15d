"""Exceptions of the power-supply drivers: what went wrong, on which instrument, and why.

All of them derive from `emu.EmuError`, the project's one exception type for problems a user
can cause and fix (DESIGN.md, "Conventions"), so the command line prints them without a
traceback. An instrument's refusal names the instrument, the command and the instrument's
reply; a timeout names the instrument and the command that went unanswered.

Public names: `PsuError`, `InstrumentError`, `InstrumentTimeout`.
"""

from __future__ import annotations

from emu.errors import EmuError

__all__ = ["PsuError", "InstrumentError", "InstrumentTimeout"]


class PsuError(EmuError):
    """A power-supply problem found before or without talking to the instrument: an unknown
    model, a bad option, a resource that cannot be opened, a missing optional package."""


class InstrumentError(PsuError):
    """The instrument refused a command, reported an error, or answered something that is not
    what its programming manual says it answers.

    `instrument` names it (model, resource, channel), `command` is what was sent, `reply` is
    what came back (the error-queue entry, a read-back value, or the unexpected answer).
    """

    def __init__(self, instrument: str, command: str, reply: str, problem: str, fix: str = ""):
        self.instrument, self.command, self.reply = instrument, command, reply
        message = f"{instrument}: {problem}; command {command!r}, reply {reply!r}"
        if fix:
            message += f". {fix}"
        super().__init__(message)


class InstrumentTimeout(InstrumentError):
    """No (complete) reply came within the timeout."""

    def __init__(self, instrument: str, command: str, timeout: float, reply: str = "",
                 fix: str = "Check that the instrument is on and connected, the resource string "
                            "and, on a serial line, the baud rate, parity and stop bits"):
        self.timeout = timeout
        super().__init__(instrument, command, reply, f"no reply within {timeout:g} s", fix)

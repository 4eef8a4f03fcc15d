"""Emulate batteryless-device firmware with exact, instruction-granular power failures.

    >>> import emu
    >>> m = emu.Machine.from_elf("build/msp430fr5994/demo.elf")
    >>> result = m.run(fail_after=[5000, 5000])
    >>> result.outcome, result.power_cycles

See README.md and docs/ for the semantics.
"""

from .boards import BOARDS, Board, Region
from .errors import EmuError
from .machine import Machine, RunResult, Snapshot

__all__ = ["BOARDS", "Board", "Region", "EmuError", "Machine", "RunResult", "Snapshot"]
__version__ = "0.1.0"

"""Memory-access traces of a run, in source terms: what `emu war` and `emu explain` read.

    >>> m = emu.Machine.from_elf("build/cortex-m4-mram/checksum_broken.elf")
    >>> with record_accesses(m, nv_ranges(m.board)) as trace:
    ...     m.run()
    >>> trace[0]            # MemoryAccess(kind='r', address=..., pc=..., index=..., boot=1)

The engine reports each data access into the watched ranges (`Engine.watch_memory`):
Unicorn through memory hooks limited to those ranges, icicle by single-stepping with the
exact MSP430 instruction model saying what each instruction accesses (slow: tens of
thousands of instructions per second). `Locator` turns addresses into symbol + offset and
code addresses into function, file and line.

Public names: `MemoryAccess`, `record_accesses`, `nv_ranges`, `static_volatile_ranges`,
`Locator`, `CodeLocation`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

from .boards import Board
from .debuginfo import SourceMap
from .elf import ElfImage
from .engines.base import merge_ranges
from .machine import Machine

__all__ = ["MemoryAccess", "record_accesses", "nv_ranges", "static_volatile_ranges", "Locator",
           "CodeLocation"]


@dataclass(frozen=True)
class MemoryAccess:
    """One data access by the CPU. `index`: instructions retired before the accessing one,
    all power-on periods together (so `emu run --fail-after` of the first period is
    `index` for a failure right before it); `boot`: the power-on period (1 = first)."""

    kind: str  # "r" | "w"
    address: int
    size: int
    value: int | None  # written value (little-endian), None for reads
    pc: int
    index: int
    boot: int

    def bytes(self) -> range:
        return range(self.address, self.address + self.size)


@contextlib.contextmanager
def record_accesses(machine: Machine, ranges: Sequence[tuple[int, int]]) -> Iterator[list[MemoryAccess]]:
    """Record every data access into `ranges` while the block runs the machine."""
    trace: list[MemoryAccess] = []
    append = trace.append

    def note(kind: str, address: int, size: int, value: int | None, pc: int, index: int) -> None:
        append(MemoryAccess(kind, address, size, value, pc, index, machine.boots))

    machine.engine.watch_memory(ranges, note)
    try:
        yield trace
    finally:
        machine.engine.watch_memory(None, None)


def nv_ranges(board: Board) -> list[tuple[int, int]]:
    """[start, end) of the board's writable non-volatile memory (not aliases, not MMIO)."""
    return [(r.start, r.end) for r in board.regions
            if not r.volatile and not r.mmio and r.alias_of is None and "w" in str(r.access.value).lower()]


def static_volatile_ranges(image: ElfImage, board: Board) -> list[tuple[int, int]]:
    """[start, end) of the statically allocated variables in volatile memory (.data and
    .bss, from the ELF's sized data symbols), merged; the stack and heap are not in it."""
    return merge_ranges((s.address, s.address + s.size) for s in image.symbols.values()
                        if s.size > 0 and any(r.volatile and r.contains(s.address, s.size) for r in board.regions))


@dataclass(frozen=True)
class CodeLocation:
    pc: int
    function: str | None
    file: str | None
    line: int | None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file else "?"
        return f"{self.pc:#x} {self.function or '?'} ({where})"

    def to_json(self) -> dict:
        return {"pc": self.pc, "function": self.function, "file": self.file, "line": self.line}


class Locator:
    """Addresses in source terms for one ELF: data as symbol + offset, code as function
    and line (cached: traces repeat the same few PCs)."""

    def __init__(self, image: ElfImage):
        self.image = image
        self.source = SourceMap.from_elf(image.path)
        self.functions = self.source.functions  # name -> [start, end)
        self._code: dict[int, CodeLocation] = {}

    def code(self, pc: int) -> CodeLocation:
        loc = self._code.get(pc)
        if loc is None:
            p = self.source.lookup(pc)
            loc = self._code[pc] = CodeLocation(pc, p.function, p.file, p.line)
        return loc

    def data(self, address: int) -> tuple[str, int]:
        """(symbol, offset) of a data address; ("?", address) outside every symbol."""
        sym = next(self.image.symbols_containing(address), None)
        return (sym.name, address - sym.address) if sym else ("?", address)

    def describe(self, address: int) -> str:
        name, offset = self.data(address)
        return f"{address:#x}" if name == "?" else (f"{name}+{offset}" if offset else name)

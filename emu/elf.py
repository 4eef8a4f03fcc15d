"""Reading firmware images: loadable segments and symbols (via pyelftools)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .errors import EmuError

__all__ = ["Segment", "Symbol", "ElfImage"]


@dataclass(frozen=True)
class Segment:
    """The file contents of a PT_LOAD segment, written at its physical (load) address
    when flashing."""

    address: int
    data: bytes
    executable: bool


@dataclass(frozen=True)
class Symbol:
    name: str
    address: int
    size: int


@dataclass(frozen=True)
class ElfImage:
    path: Path
    machine: str  # e.g. "EM_MSP430", "EM_ARM"
    entry: int
    segments: tuple[Segment, ...]
    symbols: dict[str, Symbol]

    @classmethod
    def read(cls, path: str | Path) -> "ElfImage":
        path = Path(path)
        if not path.exists():
            raise EmuError(f"firmware file not found: {path}")
        if not path.is_file():
            raise EmuError(f"firmware path is not a file: {path}")
        try:
            with path.open("rb") as f:
                elf = ELFFile(f)
                machine = elf["e_machine"]
                segments = []
                for seg in elf.iter_segments():
                    # as a flasher does: only file contents are programmed; a zero-fill
                    # tail (p_memsz > p_filesz, e.g. .bss) is the startup code's business
                    if seg["p_type"] != "PT_LOAD" or seg["p_filesz"] == 0:
                        continue
                    data = seg.data()
                    segments.append(Segment(seg["p_paddr"], data, bool(seg["p_flags"] & 1)))
                symbols: dict[str, Symbol] = {}
                symtab = elf.get_section_by_name(".symtab")
                if symtab is not None:
                    for sym in symtab.iter_symbols():
                        if not sym.name or sym["st_info"]["type"] in ("STT_FILE", "STT_SECTION"):
                            continue
                        if sym["st_shndx"] == "SHN_UNDEF":
                            continue
                        # globals win over locals of the same name
                        if sym.name in symbols and sym["st_info"]["bind"] == "STB_LOCAL":
                            continue
                        symbols[sym.name] = Symbol(sym.name, sym["st_value"], sym["st_size"])
                entry = elf["e_entry"]
        except (ELFError, ValueError, OSError) as exc:
            raise EmuError(f"{path}: not a valid ELF file ({exc})") from None
        if not segments:
            raise EmuError(f"{path}: ELF has no loadable segments")
        return cls(path, machine, entry, tuple(segments), symbols)

    def symbol(self, name: str) -> Symbol:
        try:
            return self.symbols[name]
        except KeyError:
            raise EmuError(f"unknown symbol {name!r} in {self.path.name}") from None

    def flashed_bytes(self, name: str) -> bytes:
        """The bytes a symbol holds as flashed (for non-volatile data: its initial value)."""
        sym = self.symbol(name)
        data = self.flashed(sym.address, sym.size)
        if data is None:
            raise EmuError(f"symbol {name!r} in {self.path.name} is not flashed (it is volatile or zero-filled)")
        return data

    def flashed(self, address: int, size: int = 1) -> bytes | None:
        """The `size` bytes at `address` as flashed, or None where no segment holds them all."""
        for seg in self.segments:
            if seg.address <= address and address + size <= seg.address + len(seg.data):
                return seg.data[address - seg.address : address - seg.address + size]
        return None

    def symbols_containing(self, address: int, code: bool = False) -> Iterator[Symbol]:
        """Sized symbols whose bytes include `address`, the nearest start first (symbols
        may nest or overlap; a few candidates before the nearest start are looked at).
        `code`: only symbols in executable segments, at their code address (Thumb bit 0
        cleared)."""
        starts, entries = self._code_symbols if code else self._sized_symbols
        i = bisect.bisect_right(starts, address) - 1
        for j in range(i, max(i - _NESTED_SYMBOLS, -1), -1):
            sym = entries[j]
            if sym.address <= address < sym.address + sym.size:
                yield sym

    @cached_property
    def _sized_symbols(self) -> tuple[list[int], list[Symbol]]:
        return _by_address(s for s in self.symbols.values() if s.size > 0)

    @cached_property
    def _code_symbols(self) -> tuple[list[int], list[Symbol]]:
        mask = ~1 if self.machine == "EM_ARM" else ~0
        code = [(seg.address, seg.address + len(seg.data)) for seg in self.segments if seg.executable]
        return _by_address(Symbol(s.name, s.address & mask, s.size) for s in self.symbols.values()
                           if s.size > 0 and any(lo <= (s.address & mask) < hi for lo, hi in code))


_NESTED_SYMBOLS = 8


def _by_address(symbols) -> tuple[list[int], list[Symbol]]:
    entries = sorted(symbols, key=lambda s: (s.address, s.size, s.name))
    return [s.address for s in entries], entries

"""Source positions of code addresses: function (symbol table) and file:line (DWARF line
programs), read with pyelftools. Missing debug info gives None, never an error.

Known gap: pyelftools cannot parse DWARF with 2-byte addresses (clang's MSP430 output), so
MSP430 positions have the function but no file:line yet."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

__all__ = ["SourcePosition", "SourceMap"]


@dataclass(frozen=True)
class SourcePosition:
    function: str | None
    file: str | None
    line: int | None


class SourceMap:
    """`lookup(address)` -> SourcePosition. Thumb bit 0 of function symbols is ignored."""

    def __init__(self, functions: list[tuple[int, int, str]], lines: list[tuple[int, str, int]]):
        self._functions = sorted(functions)
        self._fstarts = [f[0] for f in self._functions]
        self._lines = sorted(lines)
        self._lstarts = [entry[0] for entry in self._lines]

    @classmethod
    def from_elf(cls, path: str | Path) -> "SourceMap":
        functions: list[tuple[int, int, str]] = []
        lines: list[tuple[int, str, int]] = []
        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                thumb = elf["e_machine"] == "EM_ARM"
                symtab = elf.get_section_by_name(".symtab")
                if symtab is not None:
                    for sym in symtab.iter_symbols():
                        if sym["st_info"]["type"] == "STT_FUNC" and sym.name and sym["st_shndx"] != "SHN_UNDEF":
                            start = sym["st_value"] & ~1 if thumb else sym["st_value"]
                            functions.append((start, max(sym["st_size"], 1), sym.name))
                if elf.has_dwarf_info():
                    dwarf = elf.get_dwarf_info()
                    for cu in dwarf.iter_CUs():
                        program = dwarf.line_program_for_CU(cu)
                        if program is None:
                            continue
                        header = program.header
                        names = _file_names(header, program)
                        for entry in program.get_entries():
                            state = entry.state
                            if state is None or state.end_sequence:
                                continue
                            lines.append((state.address, names.get(state.file, "?"), state.line))
        except (ELFError, OSError, ValueError, AssertionError):
            # AssertionError: pyelftools 0.3x rejects DWARF with 2-byte addresses, which
            # is what clang emits for MSP430; functions still resolve from the symbols
            pass
        return cls(functions, lines)

    def lookup(self, address: int) -> SourcePosition:
        function = None
        i = bisect.bisect_right(self._fstarts, address) - 1
        if i >= 0:
            start, size, name = self._functions[i]
            if address < start + size:
                function = name
        file = line = None
        j = bisect.bisect_right(self._lstarts, address) - 1
        if j >= 0:
            _, file, line = self._lines[j]
            # a row covers up to the next row's address; beyond the function it is stale
            if function is None:
                file = line = None
        return SourcePosition(function, file, line)


def _file_names(header, program) -> dict[int, str]:
    """DWARF file index -> path (DWARF 4 indexes from 1, DWARF 5 from 0)."""
    entries = header["file_entry"]
    dirs = header["include_directory"]
    base = 0 if program.header["version"] >= 5 else 1
    names = {}
    for index, entry in enumerate(entries):
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        dir_index = entry.dir_index
        if dir_index and (dir_index - (0 if base == 0 else 1)) < len(dirs):
            d = dirs[dir_index - (0 if base == 0 else 1)]
            d = d.decode() if isinstance(d, bytes) else d
            name = f"{d}/{name}"
        names[index + base] = name
    return names

"""Source positions of code addresses: function (symbol table) and file:line (DWARF line
programs), read with pyelftools. Missing debug info gives None, never an error.

pyelftools cannot parse DWARF with 2-byte addresses (clang's MSP430 output); for those the
`.debug_line` tables (DWARF 2-4) are read by `_line_rows`, a small line-program
interpreter checked against llvm-dwarfdump in the tests."""

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
        except AssertionError:
            # pyelftools rejects DWARF with 2-byte addresses, which is what clang emits
            # for MSP430: read the line tables ourselves
            lines = _line_rows_from_elf(path)
        except (ELFError, OSError, ValueError):
            pass
        return cls(functions, lines)

    @property
    def lines(self) -> list[tuple[int, str, int]]:
        """The line table: (address, file, line) rows sorted by address."""
        return self._lines

    @property
    def functions(self) -> dict[str, tuple[int, int]]:
        """Function name -> [start, end) of its code (from the ELF's function symbols)."""
        return {name: (start, start + size) for start, size, name in self._functions}

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


# -- a minimal DWARF 2-4 line-table reader (for what pyelftools cannot parse) -------------
def _line_rows_from_elf(path) -> list[tuple[int, str, int]]:
    try:
        with open(path, "rb") as f:
            section = ELFFile(f).get_section_by_name(".debug_line")
            return _line_rows(section.data()) if section is not None else []
    except (ELFError, OSError, ValueError, IndexError):
        return []


def _leb(data: bytes, p: int, signed: bool = False) -> tuple[int, int]:
    """A (U|S)LEB128 number at data[p]: (value, position after it)."""
    value = shift = 0
    while True:
        byte = data[p]
        p += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if signed and byte & 0x40:
                value -= 1 << shift
            return value, p


def _cstring(data: bytes, p: int) -> tuple[str, int]:
    end = data.index(b"\0", p)
    return data[p:end].decode("utf-8", "replace"), end + 1


def _line_rows(data: bytes) -> list[tuple[int, str, int]]:
    """(address, file, line) rows of every little-endian, 32-bit-format DWARF 2-4 line
    table in `data` (end-of-sequence rows left out); other units are skipped."""
    rows: list[tuple[int, str, int]] = []
    u16 = lambda p: int.from_bytes(data[p : p + 2], "little")  # noqa: E731
    u32 = lambda p: int.from_bytes(data[p : p + 4], "little")  # noqa: E731
    off = 0
    while off + 4 <= len(data):
        unit_length = u32(off)
        if unit_length >= 0xFFFF_FFF0:
            break  # 64-bit DWARF: not used by these toolchains
        end = off + 4 + unit_length
        version = u16(off + 4)
        if not 2 <= version <= 4:
            off = end
            continue
        p = off + 10
        program = p + u32(off + 6)
        min_inst = data[p]
        p += 2 if version >= 4 else 1  # maximum_operations_per_instruction (v4)
        p += 1  # default_is_stmt
        line_base = data[p] - 256 if data[p] & 0x80 else data[p]
        line_range, opcode_base = data[p + 1], data[p + 2]
        lengths = data[p + 3 : p + 3 + opcode_base - 1]
        p += 3 + opcode_base - 1
        dirs = [""]
        while data[p]:
            d, p = _cstring(data, p)
            dirs.append(d)
        p += 1
        files = [""]
        while data[p]:
            name, p = _cstring(data, p)
            d, p = _leb(data, p)
            _, p = _leb(data, p)
            _, p = _leb(data, p)
            files.append(f"{dirs[d]}/{name}" if 0 < d < len(dirs) else name)
        p = program
        address, file, line = 0, 1, 1

        def emit():
            rows.append((address, files[file] if 0 <= file < len(files) else "?", line))

        while p < end:
            op = data[p]
            p += 1
            if op >= opcode_base:
                adjusted = op - opcode_base
                address += (adjusted // line_range) * min_inst
                line += line_base + adjusted % line_range
                emit()
            elif op == 0:  # extended opcode
                size, p = _leb(data, p)
                sub = data[p]
                if sub == 1:  # end_sequence
                    address, file, line = 0, 1, 1
                elif sub == 2:  # set_address
                    address = int.from_bytes(data[p + 1 : p + size], "little")
                elif sub == 3:  # define_file
                    files.append(_cstring(data, p + 1)[0])
                p += size
            elif op == 1:  # copy
                emit()
            elif op == 2:  # advance_pc
                n, p = _leb(data, p)
                address += n * min_inst
            elif op == 3:  # advance_line
                n, p = _leb(data, p, signed=True)
                line += n
            elif op == 4:  # set_file
                file, p = _leb(data, p)
            elif op == 8:  # const_add_pc
                address += ((255 - opcode_base) // line_range) * min_inst
            elif op == 9:  # fixed_advance_pc
                address += u16(p)
                p += 2
            else:  # column, flags, isa, ...: skip their ULEB operands
                for _ in range(lengths[op - 1]):
                    _, p = _leb(data, p)
        off = end
    return rows

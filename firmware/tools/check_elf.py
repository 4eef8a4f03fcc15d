#!/usr/bin/env python3
"""Check that every PT_LOAD segment of an ELF32 file lies inside a board's memory map.

usage: check_elf.py FILE START-END [START-END ...]   (END exclusive, hex or decimal)

Both the virtual range [p_vaddr, p_vaddr + p_memsz) and the load range
[p_paddr, p_paddr + p_filesz) of each PT_LOAD segment must fit in a single
region. Empty PT_LOAD segments and segments that would also hold the ELF
header (file offset 0 with file bytes) are refused. Exits 1 with a message naming the segment otherwise.
Standard library only.
"""

from __future__ import annotations

import struct
import sys

PT_LOAD = 1


def parse_regions(args: list[str]) -> list[tuple[int, int]]:
    regions = []
    for arg in args:
        start, end = arg.split("-")
        regions.append((int(start, 0), int(end, 0)))
    return regions


def load_segments(path: str) -> list[tuple[int, int, int, int, int]]:
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 1:
        raise SystemExit(f"{path}: not an ELF32 file")
    endian = "<" if data[5] == 1 else ">"
    (e_phoff,) = struct.unpack_from(endian + "I", data, 0x1C)
    e_phentsize, e_phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    segments = []
    for i in range(e_phnum):
        p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz = struct.unpack_from(
            endian + "IIIIII", data, e_phoff + i * e_phentsize
        )
        if p_type == PT_LOAD:
            segments.append((p_offset, p_vaddr, p_paddr, p_filesz, p_memsz))
    return segments


def inside(start: int, size: int, regions: list[tuple[int, int]]) -> bool:
    return any(lo <= start and start + size <= hi for lo, hi in regions)


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, regions = argv[1], parse_regions(argv[2:])
    errors = []
    for offset, vaddr, paddr, filesz, memsz in load_segments(path):
        where = f"PT_LOAD vaddr={vaddr:#x} paddr={paddr:#x} filesz={filesz:#x} memsz={memsz:#x}"
        if memsz == 0:
            errors.append(f"{where}: empty segment")
            continue
        if filesz and offset == 0:
            errors.append(f"{where}: contains the ELF header")
        if not inside(vaddr, memsz, regions):
            errors.append(f"{where}: virtual range outside the memory map")
        if filesz and not inside(paddr, filesz, regions):
            errors.append(f"{where}: load range outside the memory map")
    for error in errors:
        print(f"{path}: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

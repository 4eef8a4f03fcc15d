"""Board descriptions: memory map, reset rule, peripherals, clock. Data only.

Adding a board adds a `Board` value here (and, if it has new peripheral parts, their models
in `emu.peripherals`); no other code path changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .engines.base import Access

__all__ = ["Region", "Board", "BOARDS", "get_board", "board_for_elf_machine"]


@dataclass(frozen=True)
class Region:
    """A range of the address space.

    `volatile` regions lose their contents at a power failure; non-volatile ones keep
    exactly what was written. `mmio` regions hold peripheral registers.
    """

    name: str
    start: int
    size: int
    access: Access
    volatile: bool = False
    mmio: bool = False
    alias_of: int | None = None  # start of the region this one mirrors

    @property
    def end(self) -> int:
        return self.start + self.size

    def contains(self, address: int, size: int = 1) -> bool:
        return self.start <= address and address + size <= self.end


@dataclass(frozen=True)
class Board:
    name: str
    arch: str  # "msp430" or "cortex-m"
    elf_machine: str  # pyelftools e_machine value
    regions: tuple[Region, ...]
    clock_hz: int
    peripherals: tuple[str, ...]  # names understood by emu.peripherals.build_bus
    description: str = ""

    def region_at(self, address: int, size: int = 1) -> Region | None:
        for r in self.regions:
            if r.contains(address, size):
                return r
        return None

    @property
    def volatile_regions(self) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if r.volatile)

    @property
    def nonvolatile_regions(self) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if not r.volatile and not r.mmio and r.alias_of is None)


MSP430FR5994 = Board(
    name="msp430fr5994",
    arch="msp430",
    elf_machine="EM_MSP430",
    description="TI MSP430FR5994: MSP430X CPU, 256 KiB FRAM, 8 KiB SRAM",
    clock_hz=8_000_000,
    regions=(
        Region("peripherals", 0x0000, 0x1000, Access.RW, mmio=True),
        Region("info-fram", 0x1800, 0x200, Access.RWX),
        Region("sram", 0x1C00, 0x2000, Access.RWX, volatile=True),
        Region("fram", 0x4000, 0xC000, Access.RWX),
        Region("fram-high", 0x10000, 0x34000, Access.RWX),
    ),
    peripherals=("msp430-eusci-a0", "msp430-mpy32", "msp430-system", "msp430-comp-e", "msp430-timer-a0"),
)

CORTEX_M4_MRAM = Board(
    name="cortex-m4-mram",
    arch="cortex-m",
    elf_machine="EM_ARM",
    description="STM32L4-class Cortex-M4 with 512 KiB MRAM on its external memory bus",
    clock_hz=80_000_000,
    regions=(
        Region("flash-alias", 0x0000_0000, 0x10_0000, Access.RX, alias_of=0x0800_0000),
        Region("flash", 0x0800_0000, 0x10_0000, Access.RX),
        Region("sram", 0x2000_0000, 0x2_0000, Access.RWX, volatile=True),
        Region("peripherals", 0x4000_0000, 0x2000_0000, Access.RW, mmio=True),
        Region("mram", 0x6000_0000, 0x8_0000, Access.RW),
        Region("dwt", 0xE000_1000, 0x1000, Access.RW, mmio=True),
        Region("system", 0xE000_E000, 0x1000, Access.RW, mmio=True),
    ),
    peripherals=("stm32-usart1", "cortex-m-systick", "cortex-m-scb", "stm32-pvd", "cortex-m-dwt"),
)

BOARDS: dict[str, Board] = {b.name: b for b in (MSP430FR5994, CORTEX_M4_MRAM)}

_BY_MACHINE = {"EM_MSP430": "msp430fr5994", "EM_ARM": "cortex-m4-mram"}


def get_board(name: str) -> Board:
    from .errors import EmuError

    try:
        return BOARDS[name]
    except KeyError:
        raise EmuError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None


def board_for_elf_machine(machine: str) -> Board | None:
    name = _BY_MACHINE.get(machine)
    return BOARDS[name] if name else None

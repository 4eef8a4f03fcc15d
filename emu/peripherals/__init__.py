"""Peripheral models and the bus that routes MMIO accesses to them.

Models are register-compatible with the real parts (addresses, flag bits, side effects),
independent of the CPU engine. A register without a model keeps what was written and
reads it back; all peripheral state resets at a power failure.
"""

from __future__ import annotations

from typing import Callable, Iterable

from .base import Link, Peripheral, PowerView, Supply
from .cortex_m import STM32USART, SysTick, SystemControlBlock, dwt, stm32_pvd
from .msp430 import COMP_E, CS, EUSCIA, MPY32, PMM, WDT_A, TimerA

__all__ = ["Link", "Peripheral", "PeripheralBus", "build_bus", "PowerView", "Supply"]

_FACTORIES: dict[str, Callable[[Link], list[Peripheral]]] = {
    "msp430-eusci-a0": lambda link: [EUSCIA(0x05C0, "eusci_a0", link)],
    "msp430-mpy32": lambda link: [MPY32(0x04C0)],
    "msp430-system": lambda link: [WDT_A(), PMM(), CS()],
    "msp430-comp-e": lambda link: [COMP_E(0x08C0)],
    "msp430-timer-a0": lambda link: [TimerA(0x0340, "timer_a0")],
    "stm32-usart1": lambda link: [STM32USART(0x4001_3800, "usart1", link)],
    "cortex-m-systick": lambda link: [SysTick(0xE000_E010)],
    "cortex-m-scb": lambda link: [SystemControlBlock(0xE000_ED00)],
    "cortex-m-dwt": lambda link: dwt(),  # DWT (CYCCNT) and DEMCR, which gates it
    "stm32-pvd": lambda link: stm32_pvd(),  # PWR (PVD), EXTI line 16, NVIC
}


class PeripheralBus:
    """Routes MMIO accesses by address; keeps unmodeled registers as plain storage."""

    def __init__(self, peripherals: Iterable[Peripheral], on_unmodeled: Callable[[int], None] | None = None):
        self.peripherals = tuple(peripherals)
        self._index: dict[int, int] = {}  # address -> peripheral index, -1 none (see _find)
        self._storage: dict[int, int] = {}  # unmodeled bytes
        self._on_unmodeled = on_unmodeled
        self.unmodeled: set[int] = set()
        self._touched: set[int] = set()  # peripherals accessed since the last reset
        #: called after an access to a peripheral that `affects_irq` (set by the machine)
        self.irq_changed: Callable[[], None] | None = None

    def _find(self, address: int) -> Peripheral | None:
        i = self._index.get(address)
        if i is None:  # firmware touches few distinct registers: remember where each lives
            i = self._index[address] = next(
                (j for j, p in enumerate(self.peripherals) if p.base <= address < p.base + p.size), -1)
        if i < 0:
            return None
        self._touched.add(i)
        return self.peripherals[i]

    def by_name(self, name: str) -> Peripheral | None:
        return next((p for p in self.peripherals if p.name == name), None)

    def add(self, peripherals: Iterable[Peripheral]) -> None:
        """Put more peripherals on the bus, ahead of the others: an address goes to the
        first peripheral that covers it, so these may take over registers of one that
        is already there (a debug model over the SCB's debug registers, say)."""
        self.peripherals = (*peripherals, *self.peripherals)
        self._index.clear()
        self._touched.clear()

    def _note(self, address: int) -> None:
        if address not in self.unmodeled:
            self.unmodeled.add(address)
            if self._on_unmodeled:
                self._on_unmodeled(address)

    def read(self, address: int, size: int) -> int:
        p = self._find(address)
        if p is not None:
            value = p.read(address - p.base, size)
            if p.affects_irq and self.irq_changed is not None:
                # reads clear flags too (TAxIV, CEIV): a source whose flag was pending may
                # announce its next request only now (irq_next)
                self.irq_changed()
            return value
        self._note(address)
        return int.from_bytes(bytes(self._storage.get(address + i, 0) for i in range(size)), "little")

    def write(self, address: int, size: int, value: int) -> None:
        p = self._find(address)
        if p is not None:
            p.write(address - p.base, size, value)
            if p.affects_irq and self.irq_changed is not None:
                self.irq_changed()
            return
        self._note(address)
        for i, b in enumerate(value.to_bytes(size, "little")):
            self._storage[address + i] = b

    def power_off(self) -> None:
        """Everything a power failure erases."""
        self._storage.clear()
        for i in self._touched:  # untouched ones are still in their reset state
            self.peripherals[i].reset()
        self._touched.clear()

    def save(self) -> object:
        return (dict(self._storage), [p.save() for p in self.peripherals], frozenset(self._touched))

    def state_key(self) -> "ByValue":
        """Everything `save` holds (see `Peripheral.state_key`), as a hashable value."""
        return ByValue((dict(self._storage), [p.state_key() for p in self.peripherals], frozenset(self._touched)))

    def load(self, state: object) -> None:
        storage, states, touched = state  # type: ignore[misc]
        self._storage = dict(storage)
        for p, s in zip(self.peripherals, states):
            p.load(dict(s))
        self._touched = set(touched)


class ByValue:
    """A value compared with ==, hashed as a constant: for a part of a state key whose
    other parts (memory, registers) already tell states apart, so that it need not be
    converted to something hashable every time."""

    __slots__ = ("value",)

    def __init__(self, value: object):
        self.value = value

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ByValue) and self.value == other.value


def build_bus(names: Iterable[str], link: Link,
              on_unmodeled: Callable[[int], None] | None = None) -> PeripheralBus:
    """The bus for a board's peripheral list, with UARTs connected to `link`."""
    return PeripheralBus([p for n in names for p in _FACTORIES[n](link)], on_unmodeled)

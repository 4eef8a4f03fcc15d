"""What a peripheral model is, and the small interfaces peripherals use to request
interrupts (`Peripheral.irq`, `irq_pending`, `irq_next`) and to watch the supply voltage
(`PowerView`, `Supply`)."""

from __future__ import annotations

from typing import Callable, Protocol

__all__ = ["Peripheral", "Link", "PowerView", "Supply"]


class Supply(Protocol):
    """The supply (capacitor) voltage of the current power-on period, as a voltage
    monitor sees it. Set by an energy-driven run (`emu.power`); None otherwise."""

    #: the trip level of the board's power-warning input in volts (`v_warn` of the power
    #: config: the board's divider on the comparator input), None if not wired
    v_warn: float | None

    def falls_below(self, level: float) -> int | None:
        """Instructions into the period at whose boundary the voltage is below `level`
        for the first time (0: from power-on); None: not in this period."""


class PowerView(Protocol):
    """What the machine shows a peripheral of the power state."""

    supply: Supply | None  # None: continuous power, the voltage never falls

    @property
    def period_instructions(self) -> int: ...


class Link:
    """The outside world a UART talks to: input waiting to arrive and output sent.

    It belongs to the machine, not to the peripheral: bytes already sent stay sent and
    unread input stays queued when power fails.
    """

    def __init__(self) -> None:
        self.rx = bytearray()  # waiting to be received by the device
        self.tx = bytearray()  # sent by the device

    def save(self) -> tuple[bytes, bytes]:
        return bytes(self.rx), bytes(self.tx)

    def load(self, state: tuple[bytes, bytes]) -> None:
        self.rx, self.tx = bytearray(state[0]), bytearray(state[1])


class Peripheral:
    """A block of registers at `base`. Offsets passed to read/write are from `base`.

    Subclasses keep their state in plain attributes holding immutable values (ints,
    bytes, tuples) so that `save`/`load` are shallow copies.
    """

    name: str = "peripheral"
    base: int = 0
    size: int = 0
    #: called with the machine's clock in instructions (for timers); set by the machine
    clock: Callable[[], int] | None = None
    #: the machine's power state (for voltage monitors); set by the machine
    power: PowerView | None = None
    #: the interrupt this peripheral requests: an MSP430 vector address or a Cortex-M
    #: exception number; None for peripherals that never interrupt
    irq: int | None = None
    #: its priority where the CPU has configurable ones (Cortex-M NVIC value, 0 highest)
    irq_priority: int = 0
    #: accesses to it (writes, and reads that clear flags) may make an interrupt pending
    #: or move `irq_next` of some source (the machine then re-plans its run at once)
    affects_irq: bool = False

    def _now(self) -> int:
        """The time in instructions: the machine's clock, 0 until the machine sets it
        (voltage monitors override it with the power-on period's count)."""
        return self.clock() if self.clock else 0

    def irq_pending(self) -> bool:
        """Whether the interrupt is requested now (flag and enable set)."""
        return False

    def irq_next(self) -> int | None:
        """Instructions into the current power-on period at which `irq_pending` may
        become true by itself (an edge of a monitored voltage); None if not known to
        happen. The machine stops its run there to check."""
        return None

    def reset(self) -> None:
        raise NotImplementedError

    def read(self, offset: int, size: int) -> int:
        raise NotImplementedError

    def write(self, offset: int, size: int, value: int) -> None:
        raise NotImplementedError

    def save(self) -> dict:
        return dict(self.__dict__)

    def load(self, state: dict) -> None:
        self.__dict__.clear()
        self.__dict__.update(state)

    def state_key(self) -> object:
        """The state, compared by value (==), for comparing two machines' states (campaign
        convergence pruning): every attribute (the machine hooks `clock` and `power` by
        identity). A peripheral whose behaviour depends on the clock must override it so
        that the key holds what is relative to the clock, not absolute instruction counts."""
        return dict(self.__dict__)


def part(value: int, offset: int, size: int, width: int) -> int:
    """What a `size`-byte read at byte `offset` sees of a `width`-byte register holding
    `value` (little-endian; `offset` is taken within the register)."""
    return (value >> 8 * (offset % width)) & ((1 << 8 * size) - 1)


def with_part(old: int, offset: int, size: int, value: int, width: int) -> int:
    """A `width`-byte register holding `old` after a `size`-byte write of `value` at byte
    `offset`: the other bytes are kept."""
    shift, mask = 8 * (offset % width), (1 << 8 * size) - 1
    return (old & ~(mask << shift)) | ((value & mask) << shift)


class RegisterFile:
    """Byte-addressed storage for plain registers (kept as written)."""

    @staticmethod
    def get(regs: dict, offset: int, size: int) -> int:
        return int.from_bytes(bytes(regs.get(offset + i, 0) for i in range(size)), "little")

    @staticmethod
    def put(regs: dict, offset: int, size: int, value: int) -> dict:
        regs = dict(regs)
        for i, b in enumerate(value.to_bytes(size, "little")):
            regs[offset + i] = b
        return regs

"""The interface every CPU engine implements.

An engine is a CPU plus memory: it maps regions, runs until an exact retired-instruction
count, an exit address or a fault, forwards accesses to peripheral registers (MMIO) to a
`MmioBus`, and saves/restores its whole state. Nothing above this layer imports an
emulator library; everything above talks to `Engine`.

Counting rule shared by all engines: `instructions` is the number of instructions that
retired since it was last set. An instruction that faults, or that sits at an exit
address, does not retire and is not counted. Accepting an interrupt (`interrupt`) is not
an instruction and is not counted; the handler's return (RETI, an EXC_RETURN branch) is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterable, Protocol, Sequence


class Access(str, Enum):
    """What a memory region allows."""

    R = "r"
    RW = "rw"
    RX = "rx"
    RWX = "rwx"


@dataclass(frozen=True)
class Mapping:
    """One contiguous range the engine must map.

    `mmio` ranges are peripheral registers: every access goes through the MMIO bus.
    """

    start: int
    size: int
    access: Access
    mmio: bool = False

    @property
    def end(self) -> int:
        return self.start + self.size


class MmioBus(Protocol):
    """Where an engine sends peripheral-register accesses."""

    def read(self, address: int, size: int) -> int:
        """Value the CPU reads; may have side effects (e.g. clearing a flag)."""

    def write(self, address: int, size: int, value: int) -> None:
        """Apply a CPU write."""


class StopKind(str, Enum):
    LIMIT = "limit"  # the instruction budget ran out
    EXIT = "exit"  # PC reached an exit address (not executed)
    FAULT = "fault"  # invalid instruction or bad memory access (not executed)


@dataclass(frozen=True)
class EngineStop:
    kind: StopKind
    pc: int
    reason: str | None = None  # human description for FAULT


class Engine(ABC):
    """A CPU with memory. See the module docstring for the counting rule."""

    #: register names in a fixed order (used by snapshots and the CLI)
    register_names: Sequence[str]
    #: rough seconds per instruction of a run under `watch_memory` reporting few
    #: accesses, for callers deciding whether a watched run pays for itself
    watch_cost: float = 1e-5

    @abstractmethod
    def map(self, mappings: Sequence[Mapping], bus: MmioBus) -> None:
        """Map memory once, before anything else. Non-MMIO memory starts as zeros."""

    @abstractmethod
    def set_exits(self, addresses: Sequence[int]) -> None:
        """Addresses at which `run` stops before executing the instruction there."""

    def scan_code(self, address: int, code: bytes) -> None:
        """Called with each flashed segment. Engines that repair mis-executed
        instructions place their breakpoints here; the default does nothing."""

    @abstractmethod
    def run(self, budget: int) -> EngineStop:
        """Run from the current PC until `budget` more instructions retire, an exit
        address is reached, or a fault. Updates `instructions`."""

    @property
    @abstractmethod
    def instructions(self) -> int:
        """Instructions retired since the counter was last reset."""

    @abstractmethod
    def reset_counter(self) -> None: ...

    @property
    @abstractmethod
    def pc(self) -> int: ...

    @pc.setter
    @abstractmethod
    def pc(self, value: int) -> None: ...

    @abstractmethod
    def read_register(self, name: str) -> int: ...

    @abstractmethod
    def write_register(self, name: str, value: int) -> None: ...

    def write_registers(self, values: dict[str, int]) -> None:
        """Several register writes; engines may batch them."""
        for name, value in values.items():
            self.write_register(name, value)

    #: whether save_cpu/load_cpu work (else save_cpu returns None)
    cpu_snapshots: bool = False

    def save_cpu(self) -> object | None:
        """Opaque copy of the CPU's registers and execution state, not memory (None:
        this engine cannot)."""
        return None

    def load_cpu(self, cpu: object) -> None:
        """Return the CPU (not memory) to a state from `save_cpu` on this engine."""
        raise NotImplementedError(f"{type(self).__name__} cannot restore a CPU state alone")

    def reset_cpu(self) -> None:
        """Every CPU register to its architectural reset value (before the board's reset
        rule sets SP, PC, ...). The default does nothing: the caller writes them all."""

    def interrupt_masked(self, number: int, priority: int = 0) -> bool:
        """Whether the CPU, in its current state, would hold back interrupt `number`
        (MSP430: GIE clear; Cortex-M: PRIMASK/FAULTMASK/BASEPRI, or a handler active)."""
        raise NotImplementedError(f"{type(self).__name__} does not deliver interrupts")

    def stop_soon(self) -> None:
        """Called during `run` (from an MMIO access): make `run` return, as LIMIT, once
        the instruction being executed has retired, so that the caller can look at the
        peripherals again (e.g. an interrupt that was just enabled)."""
        raise NotImplementedError(f"{type(self).__name__} cannot stop on request")

    def interrupt(self, number: int) -> None:
        """Accept interrupt `number` now, at the instruction boundary where the CPU is,
        exactly as the real CPU does (context saved on the stack, interrupts masked, PC
        from the vector). The caller checks `interrupt_masked` first. MSP430: `number` is
        the vector address (0xFF80-0xFFFC); Cortex-M: the exception number (16 + IRQ)."""
        raise NotImplementedError(f"{type(self).__name__} does not deliver interrupts")

    @abstractmethod
    def read_memory(self, address: int, size: int) -> bytes:
        """Raw memory (MMIO ranges return their backing bytes, no side effects)."""

    @abstractmethod
    def write_memory(self, address: int, data: bytes) -> None:
        """Raw write, also to read-only memory (this is how flashing works)."""

    def write_pages(self, address: int, pages: Sequence[bytes]) -> None:
        """`write_memory(address, b"".join(pages))`; engines that keep snapshots as pages
        may keep these objects as they are (callers pass the same objects for the same
        bytes, e.g. a volatile fill, to make saving and comparing states cheaper)."""
        self.write_memory(address, b"".join(pages))

    def watch_memory(self, ranges: Sequence[tuple[int, int]] | None,
                     callback: "Callable[[str, int, int, int | None, int, int], None] | None",
                     kinds: str = "rw") -> None:
        """Report every CPU data access into these [start, end) ranges (None: stop):
        `callback(kind, address, size, value, pc, index)` with kind "r" or "w", the value
        written (None for reads), the accessing instruction's address and `index`, the
        number of instructions retired before it (the `instructions` counter). Called in
        program order, once per access even where ranges overlap. `kinds`: "rw", or "w"
        for writes only (cheaper where reads are many). Instruction fetches are not
        reported. Slow (a Python call per access; icicle single-steps): for analyses and
        one-off scans of a golden run, never per trial."""
        raise NotImplementedError(f"{type(self).__name__} cannot watch memory accesses")

    def record_pcs(self, count: int) -> "Sequence[int] | None":
        """Record the address of each of the next `count` instructions to retire: the
        returned buffer's [i] is the PC after i of them retired, filled as they run
        (0xFFFFFFFF where the engine did not record one; the caller steps there
        instead). `record_pcs(0)` stops. None: this engine cannot (the default)."""
        return None

    @abstractmethod
    def save(self) -> object:
        """Opaque copy of registers and all memory."""

    @abstractmethod
    def load(self, state: object) -> None:
        """Return to a state returned by `save` on this engine."""

    def state_key(self, state: object | None, ranges: Sequence[tuple[int, int]] | None = None) -> "StateKey":
        """A hashable, exactly comparable view of a state from `save`, its instruction
        counter left out: two states with equal keys are the same registers, memory and
        engine-internal execution state, so they run identically from there on (campaign
        convergence pruning, docs/campaigns.md). With `ranges` ([start, end) each): only
        the memory there and the engine-internal state, no registers (for a powered-off
        machine, whose registers the next power-on sets); then `state` may be None, for
        the current state (cheaper than a save)."""
        raise NotImplementedError(f"{type(self).__name__} cannot compare states")


class StateKey:
    """`digest` (cheap, a hash) plus `parts` (compared exactly when digests match)."""

    __slots__ = ("digest", "parts")

    def __init__(self, digest: int, parts: tuple):
        self.digest, self.parts = digest, parts

    def __hash__(self) -> int:
        return self.digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StateKey) and self.digest == other.digest and self.parts == other.parts


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """[start, end) ranges sorted, with overlapping and touching ones joined."""
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]

"""What a peripheral model is."""

from __future__ import annotations

from typing import Callable

__all__ = ["Peripheral", "Link"]


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

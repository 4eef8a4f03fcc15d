"""Cortex-M4 board peripherals: STM32L4 USART, SysTick and the System Control Block.

USART register layout and flags follow ST RM0351 (STM32L4x5/L4x6 reference manual);
SysTick and SCB follow the ARMv7-M Architecture Reference Manual."""

from __future__ import annotations

from .base import Link, Peripheral, RegisterFile

__all__ = ["STM32USART", "SysTick", "SystemControlBlock"]

CR1, BRR, ISR, ICR, RQR, RDR, TDR = 0x00, 0x0C, 0x1C, 0x20, 0x18, 0x24, 0x28
UE, RE, TE = 1 << 0, 1 << 2, 1 << 3
RXNE, TC, TXE = 1 << 5, 1 << 6, 1 << 7


class STM32USART(Peripheral):
    """USART with instantaneous transmission (TXE and TC stay set)."""

    size = 0x400

    def __init__(self, base: int, name: str, link: Link | None = None):
        self.base, self.name, self.link = base, name, link or Link()
        self.reset()

    def reset(self) -> None:
        self.regs = {}
        self.cr1 = 0
        self.rdr = 0
        self.rx_full = False

    def _pull(self) -> None:
        if not self.rx_full and self.cr1 & UE and self.cr1 & RE and self.link.rx:
            self.rdr = self.link.rx.pop(0)
            self.rx_full = True

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        if word in (ISR, RDR):  # a byte arrives when the firmware looks for one
            self._pull()
        if word == CR1:
            value = self.cr1
        elif word == ISR:
            value = TXE | TC | (RXNE if self.rx_full else 0)
        elif word == RDR:
            value = self.rdr
            self.rx_full = False  # reading RDR clears RXNE
            self._pull()
        else:
            return RegisterFile.get(self.regs, offset, size)
        return (value >> 8 * (offset & 3)) & ((1 << 8 * size) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == CR1:
            self.cr1 = value
        elif offset == TDR:
            if self.cr1 & UE and self.cr1 & TE:
                self.link.tx.append(value & 0xFF)
        elif offset == RQR and value & (1 << 3):  # RXFRQ: flush receive data
            self.rx_full = False
        elif offset in (ISR, RDR):
            pass  # read-only
        else:
            self.regs = RegisterFile.put(self.regs, offset, size, value)


class SysTick(Peripheral):
    """SysTick counting one tick per retired instruction (the processor clock at one cycle
    per instruction). COUNTFLAG is set when the counter reaches 0 and clears when CSR is
    read (ARMv7-M B3.3). The exception itself is not delivered."""

    name = "systick"
    size = 0x10

    def __init__(self, base: int):
        self.base = base
        self.reset()

    def reset(self) -> None:
        self.csr = 0
        self.rvr = 0
        self.start = 0  # clock when the counter last held `start_value`
        self.start_value = 0
        self.zeros_read = 0  # times it had reached 0 when COUNTFLAG was last cleared

    def _now(self) -> int:
        return self.clock() if self.clock else 0

    def _state(self) -> tuple[int, int]:
        """(current value, times the counter reached 0 since `start`)."""
        if not self.csr & 1:
            return self.start_value, 0
        e = self._now() - self.start
        zeros = 0
        if self.start_value:
            if e < self.start_value:
                return self.start_value - e, 0
            e -= self.start_value  # now at 0
            zeros = 1
        if e == 0 or self.rvr == 0:
            return 0, zeros
        period = self.rvr + 1  # 0 -> RVR (reload) -> ... -> 1 -> 0
        value = self.rvr - (e - 1) % period
        # it reaches 0 again at e = period, 2 * period, ...
        return value, zeros + e // period

    def _restart(self, value: int) -> None:
        self.start, self.start_value, self.zeros_read = self._now(), value, 0

    def read(self, offset: int, size: int) -> int:
        if offset == 0:
            _, zeros = self._state()
            flag = zeros > self.zeros_read
            self.zeros_read = zeros  # COUNTFLAG clears on read
            return self.csr | (1 << 16 if flag else 0)
        if offset == 4:
            return self.rvr
        if offset == 8:
            return self._state()[0]
        if offset == 0xC:
            return 0x4000_0000  # CALIB: NOREF, no TENMS
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == 0:
            current, zeros = self._state()
            flag_pending = zeros > self.zeros_read
            self.csr = value & 0x7
            self._restart(current)
            self.zeros_read = -1 if flag_pending else 0  # keep an unread COUNTFLAG
        elif offset == 4:
            self.rvr = value & 0xFF_FFFF
        elif offset == 8:  # any write clears the counter and COUNTFLAG
            self._restart(0)


class SystemControlBlock(Peripheral):
    """SCB registers startup code touches: CPUID, VTOR, AIRCR, CCR, CPACR (FPU enable)."""

    name = "scb"
    size = 0x100

    def __init__(self, base: int):
        self.base = base
        self.reset()

    def reset(self) -> None:
        self.regs = RegisterFile.put({}, 0x14, 4, 0x0000_0200)  # CCR: STKALIGN

    def read(self, offset: int, size: int) -> int:
        if offset == 0x00:
            return 0x410F_C241  # Cortex-M4 r0p1
        if offset == 0x0C:
            return 0xFA05_0000 | (RegisterFile.get(self.regs, 0x0C, 4) & 0x700)
        return RegisterFile.get(self.regs, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == 0x00:
            return
        if offset == 0x0C and (value >> 16) != 0x05FA:
            return  # AIRCR writes without VECTKEY are ignored
        self.regs = RegisterFile.put(self.regs, offset, size, value)

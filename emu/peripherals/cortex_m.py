"""Cortex-M4 board peripherals: STM32L4 USART, SysTick, the System Control Block, the
cycle counter (DWT CYCCNT, enabled through DEMCR.TRCENA), and the power-warning path:
PWR's programmable voltage detector (PVD) through EXTI line 16 to the PVD_PVM interrupt
(IRQ 1) of the NVIC.

USART, PWR and EXTI register layouts and flags follow ST RM0351 (STM32L4x5/L4x6 reference
manual); SysTick, SCB, NVIC, DWT and the debug control block (DEMCR) follow the ARMv7-M
Architecture Reference Manual (DWT: C1.8; DEMCR: C1.6.5)."""

from __future__ import annotations

from .base import Link, Peripheral, RegisterFile, part, with_part

__all__ = ["STM32USART", "SysTick", "SystemControlBlock", "NVIC", "DWT", "DebugControl", "dwt", "STM32PWR",
           "STM32EXTI", "stm32_pvd", "PVD_PVM_EXCEPTION"]

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
        return part(value, offset, size, 4)

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

    def state_key(self) -> object:
        # counting, it depends on the time since `start`, not on `start` itself
        elapsed = self._now() - self.start if self.csr & 1 else None
        return (self.csr, self.rvr, self.start_value, self.zeros_read, elapsed)

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
    size = 0xF0  # 0xE000ED00-0xE000EDEF; the debug registers follow (`DebugControl`)

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


# DEMCR (0xE000EDFC) bit 24: global enable of the DWT and ITM; DWT_CTRL bit 0 enables CYCCNT.
TRCENA, CYCCNTENA = 1 << 24, 1 << 0
DWT_CTRL, DWT_CYCCNT = 0x000, 0x004
DWT_NUMCOMP = 4 << 28  # DWT_CTRL[31:28]: the Cortex-M4 has four comparators (reset 0x40000000)


class DWT(Peripheral):
    """The Data Watchpoint and Trace unit's cycle counter: CYCCNT counts one processor
    cycle per retired instruction (the time base SysTick uses) while DWT_CTRL.CYCCNTENA
    and DEMCR.TRCENA are both set, holds its value otherwise, wraps at 32 bits and is
    writable. The other DWT registers (profiling counters, comparators) keep what is
    written; the profiling counters do not count."""

    name = "dwt"
    size = 0x1000  # 0xE0001000-0xE0001FFF

    def __init__(self, base: int, debug: "DebugControl"):
        self.base, self.debug = base, debug
        debug.dwt = self
        self.reset()

    def reset(self) -> None:
        self.ctrl = 0
        self.value = 0  # CYCCNT when it last started or stopped counting
        self.since = 0  # the clock then
        self.counting = False
        self.regs = {}

    def cyccnt(self) -> int:
        elapsed = self._now() - self.since if self.counting else 0
        return (self.value + elapsed) & 0xFFFF_FFFF

    def gate(self) -> None:
        """Take a change of CYCCNTENA or TRCENA into account (the count so far is kept)."""
        self.value, self.since = self.cyccnt(), self._now()
        self.counting = bool(self.ctrl & CYCCNTENA and self.debug.demcr & TRCENA)

    def state_key(self) -> object:
        # counting, the value depends on the time since `since`, not on `since` itself
        return (self.ctrl, self.cyccnt(), self.counting, self.regs)

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        if word == DWT_CTRL:
            value = self.ctrl | DWT_NUMCOMP
        elif word == DWT_CYCCNT:
            value = self.cyccnt()
        else:
            return RegisterFile.get(self.regs, offset, size)
        return part(value, offset, size, 4)

    def write(self, offset: int, size: int, value: int) -> None:
        word = offset & ~3
        if word in (DWT_CTRL, DWT_CYCCNT):
            value = with_part(self.ctrl if word == DWT_CTRL else self.cyccnt(), offset, size, value, 4)
            if word == DWT_CTRL:
                self.gate()
                self.ctrl = value & 0x0FFF_FFFF  # NUMCOMP and the NO* bits are read-only
                self.gate()
            else:
                self.value, self.since = value & 0xFFFF_FFFF, self._now()
        else:
            self.regs = RegisterFile.put(self.regs, offset, size, value)


class DebugControl(Peripheral):
    """The debug control block at 0xE000EDF0: DHCSR, DCRSR, DCRDR kept as written, and
    DEMCR, whose TRCENA gates the DWT (its cycle counter counts only while it is set)."""

    name = "debug"
    size = 0x10
    dwt: DWT | None = None  # set by the DWT it gates

    def __init__(self, base: int = 0xE000_EDF0):
        self.base = base
        self.reset()

    def reset(self) -> None:
        self.demcr = 0
        self.regs = {}

    def state_key(self) -> object:
        return (self.demcr, self.regs)

    def read(self, offset: int, size: int) -> int:
        if offset & ~3 == 0xC:
            return part(self.demcr, offset, size, 4)
        return RegisterFile.get(self.regs, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset & ~3 == 0xC:
            self.demcr = with_part(self.demcr, offset, size, value, 4) & 0x010F_07F1  # VC_* (0, 4-10), MON_* (16-19), TRCENA (24)
            if self.dwt is not None:
                self.dwt.gate()
        else:
            self.regs = RegisterFile.put(self.regs, offset, size, value)


def dwt() -> list[Peripheral]:
    """The DWT at 0xE0001000 and the debug control block (DEMCR) that gates it."""
    debug = DebugControl()
    return [DWT(0xE000_1000, debug), debug]


class NVIC(Peripheral):
    """Interrupt set/clear-enable (ISER/ICER) and priority (IPR) registers, the part the
    firmware's interrupt set-up writes. Pending and active state live with the sources
    (a level request is pending while its flag is set); ISPR/ICPR/IABR keep what is
    written."""

    name = "nvic"
    size = 0x400  # 0xE000E100-0xE000E4FF
    affects_irq = True

    def __init__(self, base: int = 0xE000_E100):
        self.base = base
        self.reset()

    def reset(self) -> None:
        self.enabled = 0  # bit n: IRQ n enabled
        self.priorities = b"\0" * 240
        self.regs = {}

    def is_enabled(self, irq: int) -> bool:
        return bool(self.enabled >> irq & 1)

    def priority(self, irq: int) -> int:
        return self.priorities[irq]

    def read(self, offset: int, size: int) -> int:
        if offset < 0x100:  # ISER0-7 (0x000) and ICER0-7 (0x080) read the enable bits
            shift = 32 * ((offset & 0x7F) // 4) + 8 * (offset & 3)
            return (self.enabled >> shift) & ((1 << 8 * size) - 1)
        if 0x300 <= offset < 0x300 + len(self.priorities):
            n = offset - 0x300
            return int.from_bytes(self.priorities[n : n + size], "little")
        return RegisterFile.get(self.regs, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset < 0x100:
            bits = (value & ((1 << 8 * size) - 1)) << 32 * ((offset & 0x7F) // 4) + 8 * (offset & 3)
            self.enabled = self.enabled | bits if offset < 0x80 else self.enabled & ~bits
        elif 0x300 <= offset < 0x300 + len(self.priorities):
            n = offset - 0x300
            data = bytearray(self.priorities)
            # the Cortex-M4 in STM32L4 implements the top 4 priority bits
            data[n : n + size] = bytes(b & 0xF0 for b in value.to_bytes(size, "little"))
            self.priorities = bytes(data[: len(self.priorities)])
        else:
            self.regs = RegisterFile.put(self.regs, offset, size, value)


# PWR (RM0351 5.4): CR2 PVDE (bit 0) and PLS (bits 3:1); SR2 PVDO (bit 11) is set while
# VDD is below the selected level.
PWR_CR1, PWR_CR2, PWR_SR2 = 0x00, 0x04, 0x14
PVDE, PVDO = 0x1, 1 << 11
#: PVD falling thresholds per PLS (RM0351 PWR_CR2; STM32L4 datasheet "PVD" levels);
#: PLS = 7 compares the PVD_IN pin with VREFINT: the board's divider, i.e. `v_warn`.
PVD_LEVELS = (2.0, 2.2, 2.4, 2.5, 2.6, 2.8, 2.9)


class STM32PWR(Peripheral):
    """The power controller's programmable voltage detector. PVDO rises when the supply
    falls below the level PLS selects (PLS = 7: the PVD_IN pin, wired on this board to a
    divider of the capacitor voltage, trips at the power config's `v_warn`)."""

    name = "pwr"
    size = 0x400
    affects_irq = True

    def __init__(self, base: int = 0x4000_7000):
        self.base = base
        self.reset()

    def reset(self) -> None:
        self.cr2 = 0
        self.on_at = 0  # period instructions when PVDE was set
        self.regs = RegisterFile.put({}, PWR_CR1, 4, 0x0000_0200)  # VOS = range 1

    def _now(self) -> int:
        return self.power.period_instructions if self.power is not None else 0

    def crossing(self) -> int | None:
        """Period instruction count at which PVDO rises (None: never in this period)."""
        supply = self.power.supply if self.power is not None else None
        if not self.cr2 & PVDE or supply is None:
            return None
        pls = self.cr2 >> 1 & 7
        level = supply.v_warn if pls == 7 else PVD_LEVELS[pls]
        return None if level is None else supply.falls_below(level)

    def pvdo(self) -> bool:
        at = self.crossing()
        return at is not None and self._now() >= at

    def read(self, offset: int, size: int) -> int:
        if offset & ~3 == PWR_CR2:
            value = self.cr2
        elif offset & ~3 == PWR_SR2:
            value = PVDO if self.pvdo() else 0
        else:
            return RegisterFile.get(self.regs, offset, size)
        return part(value, offset, size, 4)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == PWR_CR2:
            if value & PVDE and not self.cr2 & PVDE:
                self.on_at = self._now()
            self.cr2 = value & 0x7FF
        elif offset & ~3 == PWR_SR2:
            pass  # read-only
        else:
            self.regs = RegisterFile.put(self.regs, offset, size, value)


# EXTI (RM0351 14.5): line 16 is the PVD output; a rising edge is VDD falling below the
# threshold. PR1 is write-1-to-clear.
EXTI_IMR1, EXTI_EMR1, EXTI_RTSR1, EXTI_FTSR1, EXTI_SWIER1, EXTI_PR1 = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14
PVD_LINE = 1 << 16
PVD_PVM_IRQ = 1  # STM32L4 vector table position of PVD_PVM
PVD_PVM_EXCEPTION = 16 + PVD_PVM_IRQ


class STM32EXTI(Peripheral):
    """EXTI line 16 (PVD): PR1 bit 16 is set on the PVD output's rising edge when RTSR1
    selects it (or by SWIER1); the PVD_PVM interrupt is requested while PR1 and IMR1 have
    bit 16 and the NVIC enables IRQ 1. Other lines keep what is written."""

    name = "exti"
    size = 0x400
    irq = PVD_PVM_EXCEPTION
    affects_irq = True

    def __init__(self, pwr: STM32PWR, nvic: NVIC, base: int = 0x4001_0400):
        self.base, self.pwr, self.nvic = base, pwr, nvic
        self.reset()

    def reset(self) -> None:
        self.imr1 = 0xFF82_0000  # reset value: the direct (non-configurable) lines unmasked
        self.rtsr1 = 0
        self.pr1 = 0
        self.edge_done = False
        self.regs = {}

    def _edge(self) -> int | None:
        if self.edge_done or not self.rtsr1 & PVD_LINE:
            return None
        at = self.pwr.crossing()
        return at if at is not None and at > self.pwr.on_at else None

    def _sync(self) -> None:
        at = self._edge()
        if at is not None and self.pwr._now() >= at:
            self.edge_done = True
            self.pr1 |= PVD_LINE

    def irq_pending(self) -> bool:
        self._sync()
        return bool(self.pr1 & self.imr1 & PVD_LINE) and self.nvic.is_enabled(PVD_PVM_IRQ)

    def irq_next(self) -> int | None:
        return self._edge()

    @property
    def irq_priority(self) -> int:  # type: ignore[override]
        return self.nvic.priority(PVD_PVM_IRQ)

    def read(self, offset: int, size: int) -> int:
        self._sync()
        word = offset & ~3
        if word == EXTI_IMR1:
            value = self.imr1
        elif word == EXTI_RTSR1:
            value = self.rtsr1
        elif word == EXTI_PR1:
            value = self.pr1
        else:
            return RegisterFile.get(self.regs, offset, size)
        return part(value, offset, size, 4)

    def write(self, offset: int, size: int, value: int) -> None:
        self._sync()
        if offset == EXTI_IMR1:
            self.imr1 = value
        elif offset == EXTI_RTSR1:
            self.rtsr1 = value & 0x007F_FFFF
        elif offset == EXTI_SWIER1:
            self.pr1 |= value & self.imr1 & 0x007F_FFFF  # software trigger of unmasked lines
        elif offset == EXTI_PR1:
            self.pr1 &= ~value  # write 1 to clear
        else:
            self.regs = RegisterFile.put(self.regs, offset, size, value)


def stm32_pvd() -> list[Peripheral]:
    """PWR, EXTI and NVIC wired together (the PVD interrupt path)."""
    pwr, nvic = STM32PWR(), NVIC()
    return [pwr, STM32EXTI(pwr, nvic), nvic]


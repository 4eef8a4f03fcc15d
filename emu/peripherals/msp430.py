"""MSP430FR5994 peripherals: eUSCI_A UART, MPY32 multiplier, password-protected system
registers (watchdog, PMM, clock system), Comparator_E (the power-warning interrupt), Timer_A
(TA0: the firmware's cycle counter). Register maps follow TI's MSP430FR58xx/59xx/
68xx/69xx Family User's Guide (SLAU367) and the MSP430FR5994 datasheet (SLASE54)."""

from __future__ import annotations

from .base import Link, Peripheral, RegisterFile, part, with_part

__all__ = ["EUSCIA", "MPY32", "PasswordBlock", "WDT_A", "PMM", "CS", "COMP_E", "COMP_E_VECTOR", "TimerA",
           "TIMER0_A1_VECTOR"]

# eUSCI_A register offsets
CTLW0, CTLW1, BRW, MCTLW, STATW, RXBUF, TXBUF, ABCTL, IRCTL, IE, IFG, IV = (
    0x00, 0x02, 0x06, 0x08, 0x0A, 0x0C, 0x0E, 0x10, 0x12, 0x1A, 0x1C, 0x1E)
UCSWRST = 0x0001
UCRXIFG, UCTXIFG, UCTXCPTIFG = 0x01, 0x02, 0x08


class EUSCIA(Peripheral):
    """eUSCI_A in UART mode. Transmission is instantaneous: TXIFG is set again as soon as
    TXBUF is written. Received bytes come from the machine's `Link`; the next byte moves
    into RXBUF when RXBUF has been read."""

    size = 0x20

    def __init__(self, base: int, name: str, link: Link | None = None):
        self.base, self.name, self.link = base, name, link or Link()
        self.reset()

    def reset(self) -> None:
        self.regs = {}
        self.ctlw0 = 0x01C1  # reset value per SLAU367: UCSSEL=UCLK, UCSWRST set
        self.ifg = UCTXIFG
        self.rxbuf = 0
        self.rx_full = False

    def _pull(self) -> None:
        """Move the next waiting input byte into RXBUF if it is free."""
        if not self.rx_full and not (self.ctlw0 & UCSWRST) and self.link.rx:
            self.rxbuf = self.link.rx.pop(0)
            self.rx_full = True
        self.ifg = (self.ifg | UCRXIFG) if self.rx_full else (self.ifg & ~UCRXIFG)

    def read(self, offset: int, size: int) -> int:
        if offset in (RXBUF, IFG, IV):  # a byte arrives when the firmware looks for one
            self._pull()
        if offset == CTLW0:
            value = self.ctlw0
        elif offset == RXBUF:
            value = self.rxbuf
            self.rx_full = False  # reading RXBUF clears UCRXIFG
            self._pull()
        elif offset == IFG:
            value = self.ifg
        elif offset == IV:
            value = 0x02 if self.ifg & UCRXIFG else (0x04 if self.ifg & UCTXIFG else 0)
        elif offset == TXBUF:
            value = RegisterFile.get(self.regs, TXBUF, 2)
        else:
            return RegisterFile.get(self.regs, offset, size)
        return part(value, offset, size, 2)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset in (CTLW0, CTLW0 + 1) and size == 1:
            value = with_part(self.ctlw0, offset - CTLW0, 1, value, 2)
            offset, size = CTLW0, 2
        if offset == CTLW0:
            self.ctlw0 = value & 0xFFFF
            if self.ctlw0 & UCSWRST:  # software reset: flags to their reset state
                self.ifg = UCTXIFG
                self.rx_full = False
        elif offset == TXBUF:
            self.regs = RegisterFile.put(self.regs, TXBUF, 2, value & 0xFF)
            if not self.ctlw0 & UCSWRST:
                self.link.tx.append(value & 0xFF)
                self.ifg |= UCTXIFG | UCTXCPTIFG
        elif offset == IFG:
            self.ifg = value & 0xFF
        elif offset == RXBUF:
            pass  # read-only
        else:
            self.regs = RegisterFile.put(self.regs, offset, size, value)


# MPY32 register offsets (SLAU367 "32-Bit Hardware Multiplier")
_OP1_16 = {0x00: "MPY", 0x02: "MPYS", 0x04: "MAC", 0x06: "MACS"}
_OP1_32 = {0x10: "MPY", 0x14: "MPYS", 0x18: "MAC", 0x1C: "MACS"}  # low words; +2 = high
OP2, RESLO, RESHI, SUMEXT, OP2L, OP2H, RES0, CTL0 = 0x08, 0x0A, 0x0C, 0x0E, 0x20, 0x22, 0x24, 0x2C
MPYC, MPYOP1_32, MPYOP2_32 = 0x0001, 0x0040, 0x0080
_MODE_BITS = {"MPY": 0, "MPYS": 1, "MAC": 2, "MACS": 3}


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


class MPY32(Peripheral):
    """32-bit hardware multiplier: 8/16/24/32-bit operands, signed and unsigned multiply
    and multiply-accumulate. Writing the second operand starts the operation; the result
    is available immediately (the real part needs a few cycles; compiled code waits)."""

    size = 0x30
    name = "mpy32"

    def __init__(self, base: int):
        self.base = base
        self.reset()

    def reset(self) -> None:
        self.mode = "MPY"
        self.op1 = 0
        self.op1_bits = 16
        self.op2_low = 0
        self.op2_bits = 16
        self.res = 0  # 64-bit RES3..RES0
        self.sumext = 0
        self.ctl0 = 0
        self.regs = {}

    def read(self, offset: int, size: int) -> int:
        word = offset & ~1
        if word in (RESLO, RES0):
            value = self.res & 0xFFFF
        elif word in (RESHI, RES0 + 2):
            value = (self.res >> 16) & 0xFFFF
        elif word == RES0 + 4:
            value = (self.res >> 32) & 0xFFFF
        elif word == RES0 + 6:
            value = (self.res >> 48) & 0xFFFF
        elif word == SUMEXT:
            value = self.sumext
        elif word == CTL0:
            value = self.ctl0
        else:
            return RegisterFile.get(self.regs, offset, size)
        return part(value, offset, size, 2)

    def write(self, offset: int, size: int, value: int) -> None:
        self.regs = RegisterFile.put(self.regs, offset, size, value)
        bits = 8 if size == 1 else 16
        value &= (1 << bits) - 1
        if offset in _OP1_16:
            self._set_op1(_OP1_16[offset], value, bits, high=None)
        elif offset in _OP1_32:
            self._set_op1(_OP1_32[offset], value, bits, high=False)
        elif offset - 2 in _OP1_32:
            self._set_op1(_OP1_32[offset - 2], value, bits, high=True)
        elif offset == OP2:
            self._multiply(value, bits)
        elif offset == OP2L:
            self.op2_low = value
        elif offset == OP2H:
            self._multiply(self.op2_low | (value << 16), 16 + bits)
        elif offset in (RESLO, RES0):
            self.res = (self.res & ~0xFFFF) | value  # preloading the accumulator
        elif offset in (RESHI, RES0 + 2):
            self.res = (self.res & ~0xFFFF0000) | (value << 16)
        elif offset == RES0 + 4:
            self.res = (self.res & ~(0xFFFF << 32)) | (value << 32)
        elif offset == RES0 + 6:
            self.res = (self.res & ~(0xFFFF << 48)) | (value << 48)
        elif offset == CTL0:
            self.ctl0 = value

    def _set_op1(self, mode: str, value: int, bits: int, high: bool | None) -> None:
        self.mode = mode
        if high is None:
            self.op1, self.op1_bits = value, bits
            self.ctl0 &= ~MPYOP1_32
        elif not high:
            self.op1, self.op1_bits = value, bits
        else:
            self.op1 = (self.op1 & 0xFFFF) | (value << 16)
            self.op1_bits = 16 + bits
            self.ctl0 |= MPYOP1_32
        self.ctl0 = (self.ctl0 & ~0x30) | (_MODE_BITS[mode] << 4)

    def _multiply(self, op2: int, op2_bits: int) -> None:
        signed = self.mode in ("MPYS", "MACS")
        a, b = self.op1, op2
        if signed:
            a, b = _signed(a, self.op1_bits), _signed(b, op2_bits)
        if op2_bits > 16:
            self.ctl0 |= MPYOP2_32
        else:
            self.ctl0 &= ~MPYOP2_32
        product = a * b
        wide = self.op1_bits > 16 or op2_bits > 16
        width = 64 if wide else 32
        mask = (1 << width) - 1
        if self.mode in ("MAC", "MACS"):
            acc = self.res & mask
            total = acc + (product & mask)
            carry = total >> width & 1
            result = total & mask
            if self.mode == "MAC":
                self.sumext = carry
            else:
                self.sumext = 0xFFFF if result >> (width - 1) & 1 else 0
        else:
            result = product & mask
            carry = 0
            if self.mode == "MPYS":
                self.sumext = 0xFFFF if product < 0 else 0
            else:
                self.sumext = 0
        if wide:
            self.res = result
        else:
            ext = 0xFFFFFFFF if (signed and result >> 31 & 1) else 0
            self.res = result | (ext << 32)
        self.ctl0 = (self.ctl0 & ~MPYC) | (carry & 1)


class PasswordBlock(Peripheral):
    """System registers whose writes need a password in the high byte (watchdog, PMM,
    clock system). The password byte reads back as the part's fixed read value; a write
    with a wrong watchdog password would reset the real part (PUC), reported here as
    `violation`."""

    def __init__(self, name: str, base: int, size: int, password: int, readback: int,
                 protected_offset: int, reset_values: dict[int, int]):
        self.name, self.base, self.size = name, base, size
        self.password, self.readback = password, readback
        self.protected_offset = protected_offset
        regs: dict = {}
        for off, v in reset_values.items():
            regs = RegisterFile.put(regs, off, 2, v)
        self.reset_regs = regs
        self.reset()

    def reset(self) -> None:
        self.regs = self.reset_regs  # never mutated: writes build a new dict
        self.violation = None

    def read(self, offset: int, size: int) -> int:
        value = RegisterFile.get(self.regs, offset & ~1, 2)
        if offset & ~1 == self.protected_offset:
            value = (value & 0xFF) | (self.readback << 8)
        return part(value, offset, size, 2)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset & ~1 == self.protected_offset:
            if size == 2 or offset & 1:
                pw = (value >> 8) & 0xFF if size == 2 else value & 0xFF
                if pw != self.password:
                    self.violation = f"{self.name}: write without password at {self.base + offset:#x}"
                    return
            self.regs = RegisterFile.put(self.regs, offset, size, value)
            return
        self.regs = RegisterFile.put(self.regs, offset, size, value)


def WDT_A(base: int = 0x015C) -> PasswordBlock:
    # WDTCTL reset value 0x6904 (active, SMCLK/32768); reads 0x69 as password
    return PasswordBlock("wdt_a", base, 2, 0x5A, 0x69, 0, {0: 0x0004})


def PMM(base: int = 0x0120) -> PasswordBlock:
    # PMMCTL0 0x0120 (password 0xA5, reads 0x96); PM5CTL0 at +0x10 resets to LOCKLPM5
    return PasswordBlock("pmm", base, 0x20, 0xA5, 0x96, 0, {0: 0x0040, 0x10: 0x0001})


def CS(base: int = 0x0160) -> PasswordBlock:
    # CSCTL0 0x0160 (password 0xA5, reads 0x96); DCO 1 MHz default
    return PasswordBlock("cs", base, 0x10, 0xA5, 0x96, 0, {2: 0x0006, 4: 0x0033, 6: 0x0033, 8: 0x00C0})


# Comparator_E (SLAU367 chapter "Comparator_E"; base 0x08C0 and vector 0xFFF8, priority
# 60, from the MSP430FR5994 datasheet SLASE54, peripheral file map and interrupt vector
# table)
COMP_E_VECTOR = 0xFFF8
CECTL0, CECTL1, CECTL2, CECTL3, CEINT, CEIV = 0x00, 0x02, 0x04, 0x06, 0x0C, 0x0E
CEOUT, CEOUTPOL, CEIES, CEON = 0x0001, 0x0002, 0x0008, 0x0400
CERSEL = 0x0020  # CECTL2: the reference goes to the V- terminal (the input to V+)
CEIFG, CEIIFG, CERDYIFG, CEIE, CEIIE, CERDYIE = 0x0001, 0x0002, 0x0010, 0x0100, 0x0200, 0x1000


class COMP_E(Peripheral):
    """Comparator_E watching the supply: the board wires the capacitor voltage (through
    a divider) to a comparator input and the firmware compares it with the reference
    (CERSEL = 1: reference on V-, so the output is high while the supply is above the
    trip level). The trip level is the power config's `v_warn` (on the real board: the
    divider and the reference ladder the firmware selects; which CEx channel is used is not
    modelled). The comparator output edge when the supply falls below it sets CEIFG or
    CEIIFG per CEIES and CEOUTPOL, as on the part; CEIV reads and clears the highest
    flag; CERDYIFG is set when the comparator is switched on (reference ready at once).
    Without an energy-driven supply the voltage never falls, so no edge ever happens."""

    name = "comp_e"
    size = 0x10
    irq = COMP_E_VECTOR
    affects_irq = True

    def __init__(self, base: int = 0x08C0):
        self.base = base
        self.reset()

    def reset(self) -> None:
        self.ctl1 = 0
        self.ctl2 = 0
        self.flags = 0  # CEINT
        self.on_at = 0  # period instructions when CEON was set
        self.edge_done = False  # the supply's falling crossing has been seen (or cannot be)
        self.regs = {}

    # the supply
    def _now(self) -> int:
        return self.power.period_instructions if self.power is not None else 0

    def _crossing(self) -> int | None:
        supply = self.power.supply if self.power is not None else None
        if supply is None or supply.v_warn is None:
            return None
        return supply.falls_below(supply.v_warn)

    def _edge(self) -> int | None:
        """Period instruction count of the output edge still to come, if any."""
        if not self.ctl1 & CEON or self.edge_done:
            return None
        at = self._crossing()
        return at if at is not None and at > self.on_at else None

    def _sync(self) -> None:
        at = self._edge()
        if at is not None and self._now() >= at:
            self.edge_done = True
            out_falls = bool(self.ctl2 & CERSEL) != bool(self.ctl1 & CEOUTPOL)
            self.flags |= CEIFG if out_falls == bool(self.ctl1 & CEIES) else CEIIFG

    def _out(self) -> int:
        if not self.ctl1 & CEON:
            return 0
        at = self._crossing()
        above = at is None or self._now() < at
        high = above if self.ctl2 & CERSEL else not above
        return int(high) ^ (1 if self.ctl1 & CEOUTPOL else 0)

    # the interrupt
    def irq_pending(self) -> bool:
        self._sync()
        f = self.flags
        return bool(f & CEIFG and f & CEIE or f & CEIIFG and f & CEIIE or f & CERDYIFG and f & CERDYIE)

    def irq_next(self) -> int | None:
        return self._edge()

    # registers
    def read(self, offset: int, size: int) -> int:
        self._sync()
        word = offset & ~1
        if word == CECTL1:
            value = (self.ctl1 & ~CEOUT) | self._out()
        elif word == CECTL2:
            value = self.ctl2
        elif word == CEINT:
            value = self.flags
        elif word == CEIV:
            value = 0
            for flag, iv in ((CEIFG, 0x02), (CEIIFG, 0x04), (CERDYIFG, 0x0A)):
                if self.flags & flag:
                    value = iv
                    self.flags &= ~flag  # reading CEIV clears the highest pending flag
                    break
        else:
            return RegisterFile.get(self.regs, offset, size)
        return part(value, offset, size, 2)

    def write(self, offset: int, size: int, value: int) -> None:
        self._sync()
        word = offset & ~1
        if size == 1:  # byte access to one half of a word register
            old = {CECTL1: self.ctl1, CECTL2: self.ctl2, CEINT: self.flags}.get(word)
            if old is not None:
                value = with_part(old, offset, 1, value, 2)
        if word == CECTL1:
            was_on = self.ctl1 & CEON
            self.ctl1 = value & 0x1FFE  # CEOUT is read-only
            if self.ctl1 & CEON and not was_on:
                self.on_at, self.edge_done = self._now(), False
                self.flags |= CERDYIFG
        elif word == CECTL2:
            self.ctl2 = value & 0xFFFF
        elif word == CEINT:
            self.flags = value & (CEIFG | CEIIFG | CERDYIFG | CEIE | CEIIE | CERDYIE)
        elif word == CEIV:
            pass  # read-only
        else:
            self.regs = RegisterFile.put(self.regs, offset, size, value)


# Timer_A (SLAU367 chapter "Timer_A"; TA0 = Timer0_A3 at 0x0340 with three capture/compare
# blocks; its CCR1-2 and TAIFG interrupt TIMER0_A1 has vector 0xFFE8 (SLASE54 interrupt
# vector table: TIMER0_A1_VECTOR = 52, the word at 0xFF80 + 2 * 52)
TIMER0_A1_VECTOR = 0xFFE8
TACTL, TACCTL0, TAR, TACCR0, TAEX0, TAIV = 0x00, 0x02, 0x10, 0x12, 0x20, 0x2E
TAIFG, TAIE, TACLR = 0x0001, 0x0002, 0x0004
TASSEL_SMCLK = 2  # TASSEL (bits 9-8) = 10b
MC_STOP, MC_UP, MC_CONTINUOUS, MC_UPDOWN = 0, 1, 2, 3  # MC (bits 5-4)
CCIFG, CCIE, CAP = 0x0001, 0x0010, 0x0100


class TimerA(Peripheral):
    """Timer_A clocked from SMCLK, one SMCLK cycle per retired instruction (the project's
    firmware runs SMCLK = MCLK = DCO / 1, firmware/boards/msp430fr5994/startup.S), through
    the ID (/1, /2, /4, /8) and TAIDEX (/1 ... /8) dividers. Stop, up and continuous
    modes; TACLR clears TAR and the dividers; TAIFG is set when TAR counts from its top
    (0xFFFF, or TACCR0 in up mode) to 0; a compare block's CCIFG is set when TAR counts to
    its TACCRn. TAIV reads (and any access clears) the highest pending enabled flag:
    CCR1 0x02, CCR2 0x04, TAIFG 0x0E. The TIMER0_A1 interrupt (CCR1, CCR2, TAIFG) is
    requested while a flag and its enable are set. Not modelled: other clock sources
    (TAR holds), up/down mode (TAR holds), capture mode, outputs, and the CCR0 interrupt
    (vector TIMER0_A0; CCR0's CCIFG is set, but not delivered)."""

    irq = TIMER0_A1_VECTOR
    affects_irq = True

    def __init__(self, base: int, name: str, blocks: int = 3):
        self.base, self.name, self.blocks = base, name, blocks
        self.size = 0x30
        self.reset()

    def reset(self) -> None:
        self.ctl = 0  # TAxCTL including TAIFG; TACLR is never stored (it reads 0)
        self.cctl = (0,) * self.blocks
        self.ccr = (0,) * self.blocks
        self.ex0 = 0
        self.tar = 0
        self.phase = 0  # SMCLK cycles into the current timer tick (the dividers' state)
        self.synced = self._now()  # clock up to which tar, phase and the flags are current
        self.regs = {}

    # counting
    def _divider(self) -> int:
        return (1 << (self.ctl >> 6 & 3)) * ((self.ex0 & 7) + 1)

    def _top(self) -> int | None:
        """The count TAR turns to 0 after; None while it does not count."""
        mode = self.ctl >> 4 & 3
        if self.ctl >> 8 & 3 != TASSEL_SMCLK or mode not in (MC_UP, MC_CONTINUOUS):
            return None
        if mode == MC_UP:
            return self.ccr[0] if self.ccr[0] else None  # TACCR0 = 0 stops the timer
        return 0xFFFF

    def _ticks_to(self, value: int, top: int) -> int | None:
        """Ticks from now until TAR next counts to `value` (None: never)."""
        # from a count above the top (TACCR0 lowered below TAR) the timer rolls to 0
        to_zero = top - self.tar + 1 if self.tar <= top else 1
        if self.tar < value <= top:
            return value - self.tar
        return to_zero + value if value <= top else None

    def _sync(self) -> None:
        now = self._now()
        elapsed, self.synced = now - self.synced, now
        top = self._top()
        if top is None or elapsed <= 0:
            return
        ticks, self.phase = divmod(self.phase + elapsed, self._divider())
        if not ticks:
            return
        for n in range(self.blocks):  # compare events on the way
            if not self.cctl[n] & CAP:
                at = self._ticks_to(self.ccr[n], top)
                if at is not None and at <= ticks:
                    self.cctl = self.cctl[:n] + (self.cctl[n] | CCIFG,) + self.cctl[n + 1 :]
        to_zero = self._ticks_to(0, top)
        if ticks >= to_zero:
            self.ctl |= TAIFG
            self.tar = (ticks - to_zero) % (top + 1)
        else:
            self.tar += ticks

    def state_key(self) -> object:
        self._sync()  # relative to the clock: everything but `synced`
        return (self.ctl, self.cctl, self.ccr, self.ex0, self.tar, self.phase, self.regs)

    # the interrupt
    def _pending_flags(self) -> list[tuple[int, int]]:
        """(TAIV value, flag owner) of the flags set with their enable, highest first:
        owner n >= 1 is compare block n, -1 is TAIFG."""
        found = [(2 * n, n) for n in range(1, self.blocks) if self.cctl[n] & CCIFG and self.cctl[n] & CCIE]
        if self.ctl & TAIFG and self.ctl & TAIE:
            found.append((0x0E, -1))
        return found

    def irq_pending(self) -> bool:
        self._sync()
        return bool(self._pending_flags())

    def irq_next(self) -> int | None:
        self._sync()
        top = self._top()
        if top is None or self.power is None:
            return None
        ticks = []
        if self.ctl & TAIE and not self.ctl & TAIFG:
            ticks.append(self._ticks_to(0, top))
        for n in range(1, self.blocks):
            c = self.cctl[n]
            if c & CCIE and not c & CCIFG and not c & CAP:
                ticks.append(self._ticks_to(self.ccr[n], top))
        ticks = [t for t in ticks if t is not None]
        if not ticks:
            return None
        return self.power.period_instructions + min(ticks) * self._divider() - self.phase

    # registers
    def _clear_highest(self) -> int:
        flags = self._pending_flags()
        if not flags:
            return 0
        iv, owner = flags[0]
        if owner < 0:
            self.ctl &= ~TAIFG
        else:
            self.cctl = self.cctl[:owner] + (self.cctl[owner] & ~CCIFG,) + self.cctl[owner + 1 :]
        return iv

    def read(self, offset: int, size: int) -> int:
        self._sync()
        word = offset & ~1
        if word == TACTL:
            value = self.ctl
        elif TACCTL0 <= word < TACCTL0 + 2 * self.blocks:
            value = self.cctl[(word - TACCTL0) // 2]
        elif word == TAR:
            value = self.tar
        elif TACCR0 <= word < TACCR0 + 2 * self.blocks:
            value = self.ccr[(word - TACCR0) // 2]
        elif word == TAEX0:
            value = self.ex0
        elif word == TAIV:
            value = self._clear_highest()
        else:
            return RegisterFile.get(self.regs, offset, size)
        return part(value, offset, size, 2)

    def write(self, offset: int, size: int, value: int) -> None:
        self._sync()  # what happened up to now, under the old settings
        word = offset & ~1
        if size == 1:  # byte access to one half of a word register
            value = with_part(self.read(word, 2) if word != TAIV else 0, offset, 1, value, 2)
        value &= 0xFFFF
        if word == TACTL:
            if value & TACLR:  # clears TAR, the divider logic and the count direction
                self.tar = self.phase = 0
            self.ctl = value & ~TACLR
        elif TACCTL0 <= word < TACCTL0 + 2 * self.blocks:
            n = (word - TACCTL0) // 2
            self.cctl = self.cctl[:n] + (value,) + self.cctl[n + 1 :]
        elif word == TAR:
            self.tar = value
        elif TACCR0 <= word < TACCR0 + 2 * self.blocks:
            n = (word - TACCR0) // 2
            self.ccr = self.ccr[:n] + (value,) + self.ccr[n + 1 :]
        elif word == TAEX0:
            self.ex0 = value & 7
        elif word == TAIV:
            self._clear_highest()  # a write clears the highest pending flag too
        else:
            self.regs = RegisterFile.put(self.regs, offset, size, value)


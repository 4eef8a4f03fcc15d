"""MSP430FR5994 peripherals: eUSCI_A UART, MPY32 multiplier, password-protected system
registers (watchdog, PMM, clock system). Register maps follow TI's MSP430FR58xx/59xx/
68xx/69xx Family User's Guide (SLAU367) and the MSP430FR5994 datasheet (SLASE54)."""

from __future__ import annotations

from .base import Link, Peripheral, RegisterFile

__all__ = ["EUSCIA", "MPY32", "PasswordBlock", "WDT_A", "PMM", "CS"]

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
        return value >> (8 * (offset & 1)) & ((1 << 8 * size) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset in (CTLW0, CTLW0 + 1) and size == 1:
            shift = 8 * (offset - CTLW0)
            value = (self.ctlw0 & ~(0xFF << shift)) | (value << shift)
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
        return (value >> (8 * (offset & 1))) & ((1 << 8 * size) - 1)

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
        return (value >> 8 * (offset & 1)) & ((1 << 8 * size) - 1)

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

"""Peripheral models against the parts' documented behaviour (register-level, no CPU):
ARMv7-M SysTick and SCB, STM32L4 USART (RM0351), MSP430 eUSCI_A and password-protected
system registers (SLAU367)."""

from __future__ import annotations

from emu.peripherals import Link, build_bus
from emu.peripherals.cortex_m import SysTick

CSR, RVR, CVR = 0xE000_E010, 0xE000_E014, 0xE000_E018


class Clock:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


def systick():
    bus = build_bus(["cortex-m-systick"], Link())
    clock = Clock()
    for p in bus.peripherals:
        p.clock = clock
    return bus, clock


def test_systick_counts_down_reloads_and_flags_reaching_zero():
    bus, clock = systick()
    bus.write(RVR, 4, 4)
    bus.write(CVR, 4, 0)
    bus.write(CSR, 4, 0b101)  # ENABLE, processor clock
    seen = []
    for t in range(12):
        clock.now = t
        seen.append(bus.read(CVR, 4))
    # from 0 it reloads RVR on the next tick, then counts 4 3 2 1 0, reloading every 5 ticks
    assert seen == [0, 4, 3, 2, 1, 0, 4, 3, 2, 1, 0, 4]
    clock.now = 4
    assert not bus.read(CSR, 4) & (1 << 16)  # has not reached 0 yet (only started there)
    clock.now = 5
    assert bus.read(CSR, 4) & (1 << 16)  # reached 0 at tick 5
    assert not bus.read(CSR, 4) & (1 << 16)  # COUNTFLAG clears on read
    clock.now = 15
    assert bus.read(CSR, 4) & (1 << 16)


def test_systick_cvr_write_clears_counter_and_flag_and_disabled_counter_holds():
    bus, clock = systick()
    bus.write(RVR, 4, 9)
    bus.write(CSR, 4, 0b101)
    clock.now = 30  # reached 0 several times
    bus.write(CVR, 4, 1234)  # any write clears to 0 and clears COUNTFLAG
    assert bus.read(CVR, 4) == 0 and not bus.read(CSR, 4) & (1 << 16)
    clock.now = 33
    assert bus.read(CVR, 4) == 7
    bus.write(CSR, 4, 0b100)  # disable: the counter holds its value
    clock.now = 100
    assert bus.read(CVR, 4) == 7


def test_systick_is_clocked_by_the_machine(probe):
    import emu

    m = emu.Machine.from_elf(probe("cortex-m4-mram", "spin"))
    tick = next(p for p in m.bus.peripherals if isinstance(p, SysTick))
    m.bus.write(RVR, 4, 999)
    m.bus.write(CSR, 4, 0b101)
    m.step(10)
    assert m.bus.read(CVR, 4) == 999 - 9  # reload at the first tick, then one per instruction
    assert tick.clock() == m.instructions


def test_scb_cpuid_and_aircr_key():
    bus = build_bus(["cortex-m-scb"], Link())
    assert bus.read(0xE000_ED00, 4) == 0x410F_C241  # Cortex-M4 r0p1
    bus.write(0xE000_ED0C, 4, 0x0000_0300)  # no VECTKEY: ignored
    assert bus.read(0xE000_ED0C, 4) == 0xFA05_0000
    bus.write(0xE000_ED0C, 4, 0x05FA_0300)  # PRIGROUP = 3 with the key
    assert bus.read(0xE000_ED0C, 4) == 0xFA05_0300


def test_usart_sends_only_when_enabled_and_receives_one_byte_at_a_time():
    link = Link()
    bus = build_bus(["stm32-usart1"], link)
    base = 0x4001_3800
    bus.write(base + 0x28, 4, ord("x"))  # UE/TE clear: nothing is sent
    assert link.tx == b""
    bus.write(base, 4, 0b1101)
    bus.write(base + 0x28, 4, ord("y"))
    assert link.tx == b"y"
    link.rx.extend(b"ab")
    assert bus.read(base + 0x1C, 4) & (1 << 5)  # RXNE
    assert bus.read(base + 0x24, 4) == ord("a")
    assert bus.read(base + 0x24, 4) == ord("b")
    assert not bus.read(base + 0x1C, 4) & (1 << 5)


def test_eusci_software_reset_and_flags():
    link = Link()
    bus = build_bus(["msp430-eusci-a0"], link)
    assert bus.read(0x05C0, 2) & 1  # UCSWRST set after reset
    assert bus.read(0x05DC, 2) == 0x02  # UCTXIFG set, UCRXIFG clear
    bus.write(0x05CE, 2, ord("x"))  # held in reset: not sent
    assert link.tx == b""
    bus.write(0x05C0, 2, 0x0080)  # release (UCSSEL = SMCLK)
    bus.write(0x05CE, 2, ord("y"))
    assert link.tx == b"y"
    link.rx.append(0x41)
    assert bus.read(0x05DC, 2) & 0x01  # UCRXIFG
    assert bus.read(0x05CC, 2) == 0x41
    assert not bus.read(0x05DC, 2) & 0x01  # reading RXBUF clears it


def test_msp430_password_registers():
    bus = build_bus(["msp430-system"], Link())
    assert bus.read(0x015C, 2) >> 8 == 0x69  # WDTCTL reads 69h as its password byte
    bus.write(0x015C, 2, 0x0080)  # no password: ignored, recorded as a violation
    wdt = bus.by_name("wdt_a")
    assert wdt.violation and bus.read(0x015C, 2) & 0xFF == 0x04
    bus.write(0x015C, 2, 0x5A80)  # WDTPW | WDTHOLD
    assert bus.read(0x015C, 2) == 0x6980
    assert bus.read(0x0130, 2) & 1  # PM5CTL0.LOCKLPM5 set after reset
    bus.write(0x0161, 1, 0xA5)  # CSCTL0_H: unlock the clock system (byte write)
    assert bus.read(0x0160, 2) >> 8 == 0x96  # reads 96h
    assert bus.by_name("cs").violation is None
    bus.power_off()
    assert bus.read(0x015C, 2) == 0x6904  # back to the reset value


# -- cycle counters: DWT (ARMv7-M C1.8, DEMCR C1.6.5) and Timer_A (SLAU367 "Timer_A") -------
DEMCR, DWT_CTRL, DWT_CYCCNT = 0xE000_EDFC, 0xE000_1000, 0xE000_1004


def clocked(names):
    bus, clock = build_bus(names, Link()), Clock()
    for p in bus.peripherals:
        p.clock = clock
    return bus, clock


def test_dwt_cyccnt_needs_trcena_and_cyccntena_wraps_and_is_writable():
    bus, clock = clocked(["cortex-m-scb", "cortex-m-dwt"])
    assert bus.read(DWT_CTRL, 4) == 0x4000_0000  # reset value: NUMCOMP = 4
    bus.write(DWT_CTRL, 4, 1)
    clock.now = 10
    assert bus.read(DWT_CYCCNT, 4) == 0  # CYCCNTENA without TRCENA: no count
    bus.write(DEMCR, 4, 1 << 24)
    assert bus.read(DEMCR, 4) == 1 << 24  # DEMCR is the debug block's, not stored by the SCB
    clock.now = 25
    assert bus.read(DWT_CYCCNT, 4) == 15
    bus.write(DWT_CTRL, 4, 0)
    clock.now = 40
    assert bus.read(DWT_CYCCNT, 4) == 15  # stopped: holds
    bus.write(DWT_CYCCNT, 4, 0xFFFF_FFF0)
    bus.write(DWT_CTRL, 4, 1)
    clock.now = 40 + 0x20
    assert bus.read(DWT_CYCCNT, 4) == 0x10  # wrapped at 32 bits
    assert bus.read(DWT_CYCCNT + 2, 2) == 0  # halfword access to the high half


TA0CTL, TA0CCTL1, TA0R, TA0CCR0, TA0CCR1, TA0EX0, TA0IV = 0x0340, 0x0344, 0x0350, 0x0352, 0x0354, 0x0360, 0x036E
SMCLK, UP, CONT, TACLR, TAIE, TAIFG, CCIE, CCIFG = 0x0200, 0x0010, 0x0020, 0x0004, 0x0002, 0x0001, 0x0010, 0x0001


def test_timer_a_up_mode_sets_ccifg0_at_ccr0_and_taifg_at_the_turn_to_zero():
    bus, clock = clocked(["msp430-timer-a0"])
    bus.write(TA0CCR0, 2, 9)  # period 10 ticks: 0..9
    bus.write(TA0CTL, 2, SMCLK | UP | TACLR)
    clock.now = 9
    assert bus.read(TA0R, 2) == 9 and bus.read(0x0342, 2) & CCIFG and not bus.read(TA0CTL, 2) & TAIFG
    clock.now = 10
    assert bus.read(TA0R, 2) == 0 and bus.read(TA0CTL, 2) & TAIFG
    clock.now = 10 + 10 * 7 + 3
    assert bus.read(TA0R, 2) == 3
    assert bus.read(TA0CTL, 2) & (TACLR | 0x00C0) == 0  # TACLR reads 0


def test_timer_a_continuous_compare_flags_and_ta0iv_priorities():
    bus, clock = clocked(["msp430-timer-a0"])
    timer = bus.peripherals[0]
    bus.write(TA0CCR1, 2, 100)
    bus.write(TA0CCTL1, 2, CCIE)
    bus.write(TA0EX0, 2, 1)  # /2
    bus.write(TA0CTL, 2, SMCLK | CONT | TACLR | TAIE)
    clock.now = 199
    assert bus.read(TA0R, 2) == 99 and not timer.irq_pending()
    clock.now = 200  # TAR reaches TACCR1 = 100
    assert timer.irq_pending() and bus.read(TA0CCTL1, 2) & CCIFG
    clock.now = 2 * 0x10000  # and wraps to 0: TAIFG as well
    assert bus.read(TA0R, 2) == 0 and bus.read(TA0CTL, 2) & TAIFG
    assert bus.read(TA0IV, 2) == 0x02  # CCR1 first; the read clears it
    assert bus.read(TA0IV, 2) == 0x0E  # then TAIFG
    assert bus.read(TA0IV, 2) == 0 and not timer.irq_pending()
    bus.write(TA0CTL, 2, SMCLK | CONT)  # TAIE off: a TAIFG does not show in TA0IV
    clock.now = 4 * 0x10000
    assert bus.read(TA0CTL, 2) & TAIFG and bus.read(TA0IV, 2) == 0x02 and bus.read(TA0IV, 2) == 0
    assert bus.read(TA0CTL, 2) & TAIFG  # still set: TA0IV did not clear a disabled flag

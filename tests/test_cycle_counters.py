"""The cycle counters firmware can read on the real parts, at register level: Cortex-M DWT
CYCCNT gated by DEMCR.TRCENA and DWT_CTRL.CYCCNTENA (ARMv7-M ARM C1.8, C1.6.5), and the
MSP430FR5994's Timer_A0 counting SMCLK (SLAU367 chapter 25) with its overflow interrupt
TIMER0_A1 through TA0IV. The models are driven through a peripheral bus with a hand-set
clock (the emulator's time base: one cycle per retired instruction); tests/test_cycles.py
runs them through the machine with probes, and RESULT's cycle count on both boards."""

from __future__ import annotations

import pytest

from emu.peripherals import Link, build_bus

DWT_CTRL, CYCCNT, DEMCR = 0xE000_1000, 0xE000_1004, 0xE000_EDFC
TRCENA = 1 << 24
TA0CTL, TA0R, TA0CCR0, TA0EX0, TA0IV = 0x0340, 0x0350, 0x0352, 0x0360, 0x036E
# TA0CTL values: TASSEL = SMCLK (0x0200), ID (bits 7:6), MC (bits 5:4), TACLR 0x4, TAIE 0x2
SMCLK, CONTINUOUS, UP, TACLR, TAIE = 0x0200, 0x0020, 0x0010, 0x0004, 0x0002


class Clock:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


def _bus(name):
    bus, clock = build_bus([name], Link()), Clock()
    for p in bus.peripherals:
        p.clock = clock
    return bus, clock


# -- DWT, register level -----------------------------------------------------------------
def test_cyccnt_counts_only_with_trcena_and_cyccntena():
    bus, clock = _bus("cortex-m-dwt")
    assert bus.read(DWT_CTRL, 4) == 0x4000_0000  # NUMCOMP = 4, NOCYCCNT clear, CYCCNTENA clear
    bus.write(DWT_CTRL, 4, 1)  # CYCCNTENA without TRCENA: the DWT is disabled
    clock.now = 50
    assert bus.read(CYCCNT, 4) == 0
    bus.write(DEMCR, 4, TRCENA)
    assert bus.read(DEMCR, 4) == TRCENA
    clock.now = 80
    assert bus.read(CYCCNT, 4) == 30
    bus.write(DWT_CTRL, 4, 0)  # the counter stops and holds
    clock.now = 500
    assert bus.read(CYCCNT, 4) == 30 and bus.read(DWT_CTRL, 4) == 0x4000_0000
    bus.write(DWT_CTRL, 4, 1)
    clock.now = 510
    assert bus.read(CYCCNT, 4) == 40
    bus.write(DEMCR, 4, 0)  # TRCENA off stops it too
    clock.now = 600
    assert bus.read(CYCCNT, 4) == 40


def test_cyccnt_is_writable_and_wraps_at_32_bits():
    bus, clock = _bus("cortex-m-dwt")
    bus.write(DEMCR, 4, TRCENA)
    bus.write(DWT_CTRL, 4, 1)
    bus.write(CYCCNT, 4, 0xFFFF_FFFD)
    clock.now = 2
    assert bus.read(CYCCNT, 4) == 0xFFFF_FFFF
    clock.now = 5
    assert bus.read(CYCCNT, 4) == 2
    assert bus.read(CYCCNT + 2, 2) == 0  # halfword access to the upper half
    bus.write(CYCCNT + 2, 2, 0x1234)  # writing the upper half keeps the lower one
    assert bus.read(CYCCNT, 4) == 0x1234_0002


def test_dwt_state_key_depends_on_the_count_not_on_when_it_started():
    (a, ca), (b, cb) = _bus("cortex-m-dwt"), _bus("cortex-m-dwt")
    for bus, clock, start in ((a, ca, 100), (b, cb, 7)):
        clock.now = start
        bus.write(DEMCR, 4, TRCENA)
        bus.write(DWT_CTRL, 4, 1)
        clock.now = start + 25
    key = lambda bus: [p.state_key() for p in bus.peripherals]  # noqa: E731
    assert key(a) == key(b)
    cb.now += 1
    assert key(a) != key(b)


# -- Timer_A0, register level -------------------------------------------------------------
def test_timer_a_continuous_mode_counts_smclk_and_sets_taifg_on_overflow():
    bus, clock = _bus("msp430-timer-a0")
    timer = bus.peripherals[0]
    bus.write(TA0CTL, 2, SMCLK | CONTINUOUS | TACLR | TAIE)
    assert bus.read(TA0CTL, 2) == SMCLK | CONTINUOUS | TAIE  # TACLR reads 0
    clock.now = 0xFFFF
    assert bus.read(TA0R, 2) == 0xFFFF and not bus.read(TA0CTL, 2) & 1
    assert not timer.irq_pending()
    clock.now = 0x1_0000
    assert bus.read(TA0R, 2) == 0 and bus.read(TA0CTL, 2) & 1  # TAIFG: counted 0xFFFF -> 0
    assert timer.irq_pending()
    assert bus.read(TA0IV, 2) == 0x0E  # TAIFG, and reading TA0IV clears it
    assert bus.read(TA0IV, 2) == 0 and not timer.irq_pending()
    clock.now = 3 * 0x1_0000 + 5  # two more overflows: one flag (it is a flag, not a count)
    assert bus.read(TA0R, 2) == 5 and bus.read(TA0IV, 2) == 0x0E and bus.read(TA0IV, 2) == 0


def test_timer_a_dividers_tar_writes_and_taclr():
    bus, clock = _bus("msp430-timer-a0")
    bus.write(TA0EX0, 2, 2)  # IDEX: /3
    bus.write(TA0CTL, 2, SMCLK | CONTINUOUS | TACLR | 0x00C0)  # ID: /8, so one count per 24 cycles
    clock.now = 23
    assert bus.read(TA0R, 2) == 0
    clock.now = 24 * 10
    assert bus.read(TA0R, 2) == 10
    bus.write(TA0R, 2, 0xFFFF)  # written at 240: the divider keeps its phase
    clock.now = 24 * 11 - 1
    assert bus.read(TA0R, 2) == 0xFFFF and not bus.read(TA0CTL, 2) & 1
    clock.now = 24 * 11
    assert bus.read(TA0R, 2) == 0 and bus.read(TA0CTL, 2) & 1
    bus.write(TA0CTL, 2, SMCLK | CONTINUOUS | TACLR | 0x00C0)  # TAIFG written 0, TAR and divider cleared
    clock.now += 24 * 3 + 23
    assert bus.read(TA0R, 2) == 3 and not bus.read(TA0CTL, 2) & 1


def test_timer_a_stop_and_up_modes():
    bus, clock = _bus("msp430-timer-a0")
    bus.write(TA0CCR0, 2, 4)
    bus.write(TA0CTL, 2, SMCLK | UP | TACLR)
    seen = []
    for t in range(11):
        clock.now = t
        seen.append(bus.read(TA0R, 2))
    assert seen == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0] and bus.read(TA0CTL, 2) & 1  # TAIFG at CCR0 -> 0
    bus.write(TA0CTL, 2, SMCLK | TACLR)  # stop mode: holds
    clock.now = 100
    assert bus.read(TA0R, 2) == 0
    bus.write(TA0CTL, 2, 0x0100 | CONTINUOUS | TACLR)  # ACLK: not modelled, does not count
    clock.now = 1000
    assert bus.read(TA0R, 2) == 0


def test_timer_a_announces_its_overflow_to_the_machine():
    bus, clock = _bus("msp430-timer-a0")
    timer = bus.peripherals[0]

    class Power:
        supply = None
        period_instructions = 0

    timer.power = Power()
    clock.now = Power.period_instructions = 1000  # the period started at clock 0
    bus.write(TA0CTL, 2, SMCLK | CONTINUOUS | TACLR)
    assert timer.irq_next() is None  # TAIE clear: no request
    bus.write(TA0CTL, 2, SMCLK | CONTINUOUS | TAIE)
    assert timer.irq_next() == 1000 + 0x1_0000
    bus.write(TA0R, 2, 0xFFF0)
    assert timer.irq_next() == 1000 + 0x10


# -- through the machine: tests/test_cycles.py (probes on both boards, RESULT's cycles) --------


@pytest.mark.parametrize("board, names", [("msp430fr5994", {"timer_a0"}), ("cortex-m4-mram", {"dwt", "debug"})])
def test_boards_have_their_cycle_counter(board, names):
    from emu.boards import get_board

    assert names <= {p.name for p in build_bus(get_board(board).peripherals, Link()).peripherals}

"""The cycle counters firmware can read on the real parts, modelled on the emulator's time
base of one cycle per retired instruction: Cortex-M DWT CYCCNT gated by DEMCR.TRCENA and
DWT_CTRL.CYCCNTENA (ARMv7-M ARM C1.8, C1.6.5), and the MSP430FR5994's Timer_A0 counting
SMCLK (SLAU367 chapter 25) with its overflow interrupt TIMER0_A1 through TA0IV.

Expected values come from counting the probes' instructions by hand: a register read
during instruction i (0-based in the power-on period) sees the clock at i, the number of
instructions retired before it, so a counter started by a store in instruction s reads
i - s (one count per instruction from the store on)."""

from __future__ import annotations

import pytest

import emu
from emu.peripherals import Link, build_bus
from emu.peripherals.cortex_m import DWT
from emu.peripherals.msp430 import TIMER0_A1_VECTOR, TimerA
from tests import asm

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


# -- through the machine ----------------------------------------------------------------------
CORTEX_READS = r"""
#include <stdint.h>
__attribute__((naked)) void reset(void)
{
    __asm__ volatile(
        "ldr r0, =0xE000EDFC\n ldr r1, =0x01000000\n str r1, [r0]\n"   /* 0-2: DEMCR.TRCENA */
        "ldr r0, =0xE0001000\n movs r1, #1\n str r1, [r0]\n"          /* 3-5: CYCCNTENA */
        "ldr r2, [r0, #4]\n"                                          /* 6: CYCCNT */
        "nop\n nop\n nop\n nop\n nop\n nop\n nop\n"                  /* 7-13 */
        "ldr r3, [r0, #4]\n"                                          /* 14: CYCCNT */
        "movs r1, #0\n str r1, [r0]\n"                                /* 15-16: stop */
        "nop\n nop\n"
        "ldr r4, [r0, #4]\n"                                          /* 19: held */
        "1: b 1b\n .ltorg\n");
}
__attribute__((section(".isr"), used)) void (*const vt[2])(void) = {(void (*)(void))0x20001000, reset};
"""


def test_cortex_cyccnt_through_the_machine(tmp_path):
    m = emu.Machine.from_elf(asm.cortex_c(tmp_path, CORTEX_READS), volatile_init="zero")
    assert m.run().outcome == "completed"
    r2, r3, r4 = (m.engine.read_register(n) for n in ("r2", "r3", "r4"))
    assert (r2, r3) == (6 - 5, 14 - 5)  # counting from the enabling store (instruction 5)
    assert r3 - r2 == 8  # 7 nops and the first read between the two reads
    assert r4 == 16 - 5  # stopped by the store in instruction 16
    dwt = next(p for p in m.bus.peripherals if isinstance(p, DWT))
    m.power_fail()  # peripheral state is volatile: the counter resets with power
    m.power_on()
    assert m.bus.read(CYCCNT, 4) == 0 and m.bus.read(DEMCR, 4) == 0 and not dwt.counting


MSP430_LD = asm.msp430_script(0xFFE8)  # TIMER0_A1 .. reset

MSP430_TIMER = """
    .text
start:
    mov.w   #0x3c00, r1             ; 0
    mov.w   #0x0226, &0x0340        ; 1: TA0CTL = SMCLK | continuous | TACLR | TAIE
    mov.w   &0x0350, r8             ; 2: TA0R
    nop                             ; 3-5
    nop
    nop
    mov.w   &0x0350, r9             ; 6: TA0R
    mov.w   #0xfff0, &0x0350        ; 7: TA0R = 0xFFF0: overflow 16 counts on, at clock 23
    eint                            ; 8
    mov.w   #0, r10                 ; 9
loop:
    inc.w   r10                     ; 10, 12, ..., 22
    jmp     loop                    ; 11, 13, ...
isr:
    mov.w   &0x036e, &iv            ; TA0IV: 0x0E (TAIFG), and clears it
    mov.w   r10, &seen
    inc.w   &overflows
    reti
    .section .nv,"aw"
iv:        .word 0xffff
seen:      .word 0xffff
overflows: .word 0
    .section .vectors,"a"
    .word isr                       ; 0xFFE8 TIMER0_A1
    .word 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    .word start                     ; 0xFFFE reset
"""


def test_msp430_timer_a0_through_the_machine_and_its_overflow_interrupt(tmp_path):
    elf = asm.msp430(tmp_path, MSP430_TIMER, script=MSP430_LD)
    m = emu.Machine.from_elf(elf, volatile_init="zero")
    assert m.step(23).kind.name == "LIMIT" and m.interrupts_taken == 0
    assert (m.engine.read_register("r8"), m.engine.read_register("r9")) == (2 - 1, 6 - 1)
    m.step(1)  # the interrupt is accepted at the boundary before instruction 23
    assert m.interrupts_taken == 1 and m.engine.pc == m.resolve_address("isr") + 6
    # instructions 10..22: seven incs before the overflow; the ISR is 4 instructions
    m.step(3)
    assert m.read_symbol("iv", 2) == (0x0E).to_bytes(2, "little") and m.read_symbol("seen", 2) == (7).to_bytes(2, "little")
    # further overflows every 0x10000 cycles, ISR instructions included (the timer counts
    # them), each taken on time: the handler's TA0IV read clears TAIFG, and only then can
    # the timer announce its next overflow (the bus makes the machine re-plan after reads
    # of interrupting peripherals too; without that the next ones came late and merged)
    m.step(3 * 0x1_0000 - 27 + 23 + 4)
    assert m.interrupts_taken == 4 and m.read_symbol("overflows", 2) == (4).to_bytes(2, "little")
    timer = next(p for p in m.bus.peripherals if isinstance(p, TimerA))
    assert timer.irq == TIMER0_A1_VECTOR == 0xFFE8
    m.power_fail()
    m.power_on()
    assert m.bus.read(TA0CTL, 2) == 0 and m.bus.read(TA0R, 2) == 0  # reset with power


@pytest.mark.parametrize("board, names", [("msp430fr5994", {"timer_a0"}), ("cortex-m4-mram", {"dwt", "debug"})])
def test_boards_have_their_cycle_counter(board, names):
    from emu.boards import get_board

    assert names <= {p.name for p in build_bus(get_board(board).peripherals, Link()).peripherals}

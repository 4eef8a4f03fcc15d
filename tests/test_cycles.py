"""Cycle counters: the emulated DWT CYCCNT (Cortex-M4) and Timer_A0 (MSP430FR5994) through
the machine with small probes, and the runtime's job cycle count in RESULT on both boards.

Time base: one cycle per retired instruction. A counter register accessed by the
instruction with index i (i instructions retired before it, as `Engine.watch_memory`
reports it) reads the value written or started at index w plus i - w: every instruction
from the writing one to the one before the reading one counts (measured with dividers:
one timer tick per D instructions).

RESULT's `cycles` (firmware/runtime/README.md, "Cycle count"): in every power-on period the
counter starts at 0 in rt_boot; a task commit adds the counter's value at its read minus
the value at the period's previous commit (0 before the first); the commit that starts the
job sets the count to 0. The expected values below come from the instruction indices of
the counter's start, the counter reads and the commit stores (`rt_active`), watched with
`Engine.watch_memory`: never from the counter model's values or from the firmware's count.
"""

from __future__ import annotations

import pytest

import emu
from emu.protocol import last_result
from tests import asm

# -- MSP430: Timer_A0 ------------------------------------------------------------------------
TA0_LD = asm.msp430_script(0xFFE8)
# vectors from 0xFFE8: TIMER0_A1 (SLASE54), ten unused, reset at 0xFFFE
TA0_VECTORS = """
    .section .vectors,"a"
    .word isr
    .fill 10, 2, 0
    .word _start
"""

# instruction index in the comment; TA0EX0 = /2, ID = /4: one tick per 8 instructions
TA0_DIVIDERS = """
    .text
    .globl _start
_start:
    mov #0x3C00, r1             ; 0
    mov #1, &0x0360             ; 1  TA0EX0: TAIDEX = /2
    mov #0x02A4, &0x0340        ; 2  TA0CTL: SMCLK, ID /4, continuous, TACLR
    mov &0x0350, r4             ; 3  (3 - 2) // 8 = 0
    .rept 20
    nop                         ; 4..23
    .endr
    mov &0x0350, r5             ; 24 (24 - 2) // 8 = 2
    .rept 9
    nop                         ; 25..33
    .endr
    mov &0x0350, r6             ; 34 32 // 8 = 4 (the dividers are 0 ticks into the next)
    mov #0x02A4, &0x0340        ; 35 TACLR: TAR and the dividers cleared
    .rept 6
    nop                         ; 36..41
    .endr
    mov &0x0350, r7             ; 42 7 // 8 = 0 (without clearing the dividers: 1)
    mov &0x0350, r8             ; 43 8 // 8 = 1
    mov #0x0004, &0x0340        ; 44 MC = stop, TACLR
    .rept 20
    nop
    .endr
    mov &0x0350, r9             ; 65 0: stopped
    jmp .
isr:
    reti
""" + TA0_VECTORS

TA0_OVERFLOW = """
    .text
    .globl _start
_start:
    mov #0x3C00, r1             ; 0
    clr r6                      ; 1
    clr r8                      ; 2
    mov #0xFFF0, &0x0350        ; 3  TA0R = 0xFFF0 (stopped)
    mov #0x0222, &0x0340        ; 4  SMCLK, continuous, TAIE: TAR keeps 0xFFF0
    mov &0x0350, r4             ; 5  0xFFF0 + 1
    nop                         ; 6
    nop                         ; 7
    nop                         ; 8
    mov &0x0350, r5             ; 9  0xFFF0 + 5
    nop                         ; 10
    eint                        ; 11
    nop                         ; 12
loop:
    inc r6                      ; 13, 15, 17, 19, then after the interrupt
    jmp loop                    ; 14, 16, 18, ...
isr:
    mov &0x036E, r7             ; TA0IV: 0x0E (TAIFG), clears it
    mov &0x036E, r9             ; nothing left: 0
    inc r8
    reti
""" + TA0_VECTORS


def _regs(m: emu.Machine, *names: str) -> list[int]:
    return [m.engine.read_register(n) for n in names]


def test_timer_a0_counts_one_tick_per_divided_instruction_and_taclr_clears_the_dividers(tmp_path):
    m = emu.Machine.from_elf(asm.msp430(tmp_path, TA0_DIVIDERS, script=TA0_LD), volatile_init="zero")
    m.power_on()
    m.step(67)
    assert _regs(m, "r4", "r5", "r6", "r7", "r8", "r9") == [0, 2, 4, 0, 1, 0]


def test_timer_a0_overflow_interrupts_through_ta0iv_at_the_exact_boundary(tmp_path):
    m = emu.Machine.from_elf(asm.msp430(tmp_path, TA0_OVERFLOW, script=TA0_LD), volatile_init="zero")
    m.power_on()
    isr = m.resolve_address("isr")
    # started at index 4 with TAR = 0xFFF0: it counts to 0 (TAIFG) 16 instructions later,
    # so the interrupt is accepted after 4 + 16 = 20 instructions
    m.step(20)
    assert _regs(m, "r4", "r5", "r6", "r8") == [0xFFF1, 0xFFF5, 4, 0] and m.engine.pc != isr
    m.step(1)  # accepted, then the handler's first instruction
    assert m.engine.pc == isr + 4 and _regs(m, "r7") == [0x0E] and m.interrupts_taken == 1
    m.step(3)  # the second TA0IV read finds nothing; RETI back to the loop
    assert _regs(m, "r9", "r8") == [0, 1]
    # the next overflow: 65536 ticks after the first, at instruction 20 + 65536
    m.step(20 + 65536 - m.instructions)
    assert m.interrupts_taken == 1
    m.step(1)
    assert m.interrupts_taken == 2 and m.engine.pc == isr + 4


def test_timer_a0_is_lost_at_a_power_failure(tmp_path):
    m = emu.Machine.from_elf(asm.msp430(tmp_path, TA0_OVERFLOW, script=TA0_LD), volatile_init="zero")
    m.run(fail_after=[30], max_instructions=30)
    assert m.bus.read(0x0340, 2) == 0 and m.bus.read(0x0350, 2) == 0  # reset: stopped at 0


# -- Cortex-M4: DWT CYCCNT ---------------------------------------------------------------------
DWT_SOURCE = r"""
void reset(void);
__attribute__((naked)) void reset(void)
{
    __asm__ volatile(
        "ldr r2, =0xE0001004\n"      /* 0  CYCCNT */
        "ldr r3, =0xE000EDFC\n"      /* 1  DEMCR */
        "mov.w r0, #0x01000000\n"    /* 2 */
        "str r0, [r3]\n"             /* 3  TRCENA */
        "movs r0, #1\n"              /* 4 */
        "str r0, [r2, #-4]\n"        /* 5  DWT_CTRL = CYCCNTENA: counts from 0 */
        "ldr r4, [r2]\n"             /* 6  1 */
        "nop\n nop\n nop\n"          /* 7-9 */
        "ldr r5, [r2]\n"             /* 10 5 */
        "movs r0, #0\n"              /* 11 */
        "str r0, [r2, #-4]\n"        /* 12 CYCCNTENA = 0: holds 7 */
        "nop\n nop\n"                /* 13-14 */
        "ldr r6, [r2]\n"             /* 15 7 */
        "movs r0, #1\n"              /* 16 */
        "str r0, [r2, #-4]\n"        /* 17 counts again from 7 */
        "movs r0, #0\n"              /* 18 */
        "str r0, [r3]\n"             /* 19 TRCENA = 0: holds 7 + 2 */
        "nop\n"                      /* 20 */
        "ldr r7, [r2]\n"             /* 21 9 */
        "mvn r0, #1\n"               /* 22 */
        "str r0, [r2]\n"             /* 23 CYCCNT = 0xFFFFFFFE (writable) */
        "mov.w r0, #0x01000000\n"    /* 24 */
        "str r0, [r3]\n"             /* 25 TRCENA: counts from 0xFFFFFFFE */
        "nop\n nop\n nop\n"          /* 26-28 */
        "ldr r8, [r2]\n"             /* 29 0xFFFFFFFE + 4 wraps to 2 */
        "ldr r9, [r2, #-4]\n"        /* 30 DWT_CTRL: NUMCOMP = 4, CYCCNTENA */
        "b .\n"
        ".ltorg\n");
}
__attribute__((section(".isr"), used)) void (*const vt[2])(void) = {(void (*)(void))0x20001000, reset};
"""


@pytest.fixture(scope="module")
def dwt_elf(tmp_path_factory):
    return asm.cortex_c(tmp_path_factory.mktemp("dwt"), DWT_SOURCE)


def test_dwt_cyccnt_counts_retired_instructions_gated_by_cyccntena_and_trcena(dwt_elf):
    m = emu.Machine.from_elf(dwt_elf, volatile_init="zero")
    assert m.run(max_instructions=100).outcome == "completed"
    assert _regs(m, "r4", "r5", "r6", "r7", "r8", "r9") == [1, 5, 7, 9, 2, 0x4000_0001]


def test_dwt_is_lost_at_a_power_failure(dwt_elf):
    m = emu.Machine.from_elf(dwt_elf, volatile_init="zero")
    m.run(fail_after=[11], max_instructions=11)  # counting when power fails
    m.power_on()
    assert [m.bus.read(a, 4) for a in (0xE000_EDFC, 0xE000_1000, 0xE000_1004)] == [0, 0x4000_0000, 0]
    m.engine.pc = m.resolve_address("reset") + 0x40  # anywhere harmless: nothing counts
    assert m.bus.read(0xE000_1004, 4) == 0


# -- the runtime's job cycles in RESULT ---------------------------------------------------------
# per board: counter start (register, is this write the start), counter read register
_COUNTER = {
    "msp430fr5994": ((0x0340, lambda v: v >> 4 & 3 == 2), 0x0350),  # TA0CTL MC = continuous; TA0R
    "cortex-m4-mram": ((0xE000_1000, lambda v: v & 1), 0xE000_1004),  # DWT_CTRL CYCCNTENA; CYCCNT
}


def _expected_cycles(m: emu.Machine, fail_after: list[int] | None) -> tuple[int, int, list[int]]:
    """Run the firmware watching the counter's start, its reads and the commit stores;
    returns (the job's cycles by the rule in the module docstring, RESULT's cycles, the
    instructions from the counter's start to the last commit of each period)."""
    (start_reg, is_start), read_reg = _COUNTER[m.board.name]
    active = m.resolve_address("rt_active")
    header = m.image.symbol("rt_header")
    stride = header.size // 2
    events: list[tuple[str, int, int | None]] = []

    def seen(kind, address, size, value, pc, index):
        if address == active and kind == "w":  # which commit: the job's start commit has seq == base
            at = header.address + value * stride
            seq, base = (int.from_bytes(m.engine.read_memory(at + o, 4), "little") for o in (0, 4))
            events.append(("commit", index, int(seq == base)))
        elif address == start_reg and kind == "w" and is_start(value):
            events.append(("start", index, None))
        elif address == read_reg and kind == "r":
            events.append(("read", index, None))

    m.engine.watch_memory([(start_reg, start_reg + 2), (read_reg, read_reg + 2), (active, active + 2)], seen)
    result = m.run(fail_after=fail_after)
    m.engine.watch_memory(None, None)
    assert result.outcome == "completed", result
    job = start = mark = value = 0
    spans: list[int] = []
    for what, index, is_job_start in events:
        if what == "start":
            start, mark = index, 0
            spans.append(0)
        elif what == "read":
            value = index - start  # the counter's value at this read
        else:
            job = 0 if is_job_start else job + value - mark
            mark = value
            spans[-1] = value
    found = last_result(bytes(m.link.tx))
    assert found is not None and found.cycles is not None
    return job, found.cycles, spans


@pytest.mark.parametrize("board, app", [("msp430fr5994", "checksum"), ("cortex-m4-mram", "checksum"),
                                        ("msp430fr5994", "dnn_digits"), ("cortex-m4-mram", "dnn_digits")])
def test_continuous_power_result_cycles_are_the_instructions_from_start_to_last_commit(build_dir, board, app):
    m = emu.Machine.from_elf(build_dir / board / f"{app}.elf")
    expected, reported, _ = _expected_cycles(m, None)
    assert reported == expected > 0
    if board == "msp430fr5994" and app == "dnn_digits":
        # longer than 65536 cycles: TA0 overflowed and the high half came from its interrupt
        assert expected > 0x10000 and m.interrupts_taken >= 1


@pytest.mark.parametrize("board, app, schedule", [
    ("msp430fr5994", "checksum", [15000, 20000, 4000, 9000]),
    ("cortex-m4-mram", "checksum", [5000, 6000, 1500, 4000]),
    ("msp430fr5994", "dnn_digits", [15000]),  # the last period counts past 65536: TA0 overflows
    ("cortex-m4-mram", "dnn_digits", [20000, 30000, 800]),
])
def test_result_cycles_across_power_failures(build_dir, board, app, schedule):
    m = emu.Machine.from_elf(build_dir / board / f"{app}.elf")
    expected, reported, spans = _expected_cycles(m, schedule)
    assert reported == expected
    # Each period adds at most the instructions from its counter start to its last commit
    # (the job's first period: from the start commit), a period without a commit adds
    # nothing, and work after a period's last commit is lost: so the count is at most the
    # sum of those spans, which is at most the instructions all periods ran.
    assert m.power_failures == len(schedule)
    assert 0 < reported <= sum(spans) <= m.instructions
    assert sum(1 for s in spans if s) >= 2  # commits in more than one period: the sum is tested
    if board == "msp430fr5994" and app == "dnn_digits":
        assert max(spans) > 0x10000 and m.interrupts_taken >= 1

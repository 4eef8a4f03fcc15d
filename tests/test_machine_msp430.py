"""Power-failure semantics on the MSP430FR5994, on hand-written programs whose expected
results follow from reading the instruction sequence. Real toolchain, real engine."""

from __future__ import annotations

import shutil

import pytest

import emu
from tests import asm

pytestmark = pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")

# Instruction numbers in comments: a failure "after K" lets instructions 1..K retire.
NVSTORE = """
    .section .text,"ax"
    .globl _start
_start:
    mov #0x3BF0, r1           ; 1
    mov #0x1111, r4           ; 2
    mov &nv_value, r5         ; 3  (reads the NV word: boot-to-boot memory)
    add #1, r5                ; 4
    mov r5, &nv_value         ; 5  NV store: nv_value += 1
    mov #0xABCD, &sram_value  ; 6  volatile store
    mov #0x5555, &nv_second   ; 7  NV store
1:  jmp 1b                    ; completion
    .section .nv,"aw"
    .globl nv_value, nv_second
nv_value:  .word 0
nv_second: .word 0
    .section .vectors,"ax"
    .word _start
    .globl sram_value
    .set sram_value, 0x2000
"""


@pytest.fixture(scope="module")
def nvstore(tmp_path_factory):
    return asm.msp430(tmp_path_factory.mktemp("nv"), NVSTORE, "nvstore")


def word(machine, name):
    return int.from_bytes(machine.read_memory(machine.image.symbol(name).address, 2), "little")


def test_continuous_power(nvstore):
    m = emu.Machine.from_elf(nvstore)
    r = m.run()
    assert (r.outcome, r.instructions, r.power_cycles, r.power_failures) == ("completed", 7, [7], 0)
    assert word(m, "nv_value") == 1 and word(m, "nv_second") == 0x5555
    assert m.read_memory(0x2000, 2) == (0xABCD).to_bytes(2, "little")


@pytest.mark.parametrize("k, nv_value", [
    (0, 1),  # failure before the first instruction: the second period does everything once
    (3, 1),  # before the first NV write: nothing survives, rerun increments once
    (4, 1),  # K-1 around the store at 5: still not written
    (5, 2),  # exactly after the store: it survives, the rerun increments again
    (6, 2),  # K+1
])
def test_failure_around_the_nv_store(nvstore, k, nv_value):
    m = emu.Machine.from_elf(nvstore)
    r = m.run(fail_after=[k])
    assert r.outcome == "completed"
    assert r.power_cycles == [k, 7] and r.power_failures == 1 and r.instructions == k + 7
    assert word(m, "nv_value") == nv_value


def test_completion_wins_over_a_failure_at_the_same_count(nvstore):
    # after 7 instructions the CPU is about to execute the self-branch: the run is complete
    r = emu.Machine.from_elf(nvstore).run(fail_after=[7, 3])
    assert r.outcome == "completed" and r.power_cycles == [7] and r.power_failures == 0


def test_nonvolatile_survives_volatile_does_not(nvstore):
    m = emu.Machine.from_elf(nvstore, volatile_init="zero")
    m.step(7)  # everything retired, power still on
    assert m.read_memory(0x2000, 2) == (0xABCD).to_bytes(2, "little")
    m.power_fail()
    m.power_on()
    assert m.read_memory(0x2000, 2) == b"\0\0"  # SRAM lost (zero policy)
    assert word(m, "nv_second") == 0x5555  # FRAM kept
    assert m.engine.read_register("r4") == 0  # registers lost
    assert m.engine.pc == 0x4400  # reset vector


def test_keep_policy_keeps_sram(nvstore):
    m = emu.Machine.from_elf(nvstore, volatile_init="keep")
    m.step(7)
    m.power_fail()
    m.power_on()
    assert m.read_memory(0x2000, 2) == (0xABCD).to_bytes(2, "little")


def test_random_policy_depends_on_seed_and_boot(nvstore):
    def sram_after_boots(seed, boots):
        m = emu.Machine.from_elf(nvstore, seed=seed)
        out = []
        for _ in range(boots):
            m.power_on()
            out.append(m.read_memory(0x1C00, 0x2000))
            m.power_fail()
        return out

    a, b, c = sram_after_boots(0, 2), sram_after_boots(0, 2), sram_after_boots(1, 1)
    assert a == b  # deterministic
    assert a[0] != a[1]  # each boot sees other garbage
    assert a[0] != c[0]  # the seed matters
    assert len(set(a[0])) > 200  # looks random, not a constant fill


COUNTER = """
    .section .text,"ax"
    .globl _start
_start:
    add #1, &boots            ; 1  boot count
    mov &progress, r5         ; 2
loop:
    cmp #10, r5               ; 3 + 4i
    jhs done                  ; 4 + 4i
    add #1, r5                ; 5 + 4i
    mov r5, &progress         ; 6 + 4i   NV commit of one step
    jmp loop                  ; 7 + 4i
done:
1:  jmp 1b
    .section .nv,"aw"
    .globl boots, progress
boots:    .word 0
progress: .word 0
    .section .vectors,"ax"
    .word _start
"""


def test_several_failures_in_a_row(tmp_path):
    elf = asm.msp430(tmp_path, COUNTER, "counter")
    m = emu.Machine.from_elf(elf)
    full = m.run()
    # 2 + 10 iterations of 5 + the final cmp and jhs = 54
    assert full.instructions == 2 + 10 * 5 + 2
    m2 = emu.Machine.from_elf(elf)
    # period 1: 2 + 2 iterations (progress=2) + 1 = 13 -> progress 2
    # period 2: 2 + 1 iteration + 3 (cmp, jhs, add; store not done) = 10 -> progress 3
    # period 3: 1 (boot count only); period 4 runs to the end from progress 3:
    #           2 + 7*5 + 2 = 39
    r = m2.run(fail_after=[13, 10, 1])
    assert r.power_cycles == [13, 10, 1, 39]
    assert r.power_failures == 3 and r.instructions == 63
    assert word(m2, "boots") == 4 and word(m2, "progress") == 10


def test_determinism(nvstore):
    a = emu.Machine.from_elf(nvstore, seed=5).run(fail_after=[4, 2, 6])
    b = emu.Machine.from_elf(nvstore, seed=5).run(fail_after=[4, 2, 6])
    assert a.to_json() == b.to_json()


def test_snapshot_restore_equivalence(tmp_path):
    elf = asm.msp430(tmp_path, COUNTER, "counter")
    m = emu.Machine.from_elf(elf)

    def state():
        e = m.engine
        return ([e.read_register(r) for r in e.register_names], m.read_memory(0x1C00, 0x2000),
                m.read_memory(0x4000, 0xC000), m.instructions, m.period_instructions, m.boots)

    m.step(17)
    snap = m.snapshot()
    m.step(11)
    first = state()
    m.restore(snap)
    m.step(11)
    assert state() == first
    # and across power failures: run() after restore continues from the restored state
    m.restore(snap)
    r1 = m.run(fail_after=[20, 3])
    m.restore(snap)
    r2 = m.run(fail_after=[20, 3])
    assert r1.to_json() == r2.to_json()
    assert r1.power_cycles[0] == 20  # the restored period already had 17 instructions


def test_until_symbol_stops_before_it(tmp_path):
    elf = asm.msp430(tmp_path, COUNTER, "counter")
    m = emu.Machine.from_elf(elf, until="loop")
    r = m.run()
    assert r.outcome == "completed" and r.stop_pc == m.image.symbol("loop").address
    assert r.instructions == 2  # the instruction at `loop` is neither executed nor counted


def test_crash_on_unmapped_access_is_not_counted(tmp_path):
    elf = asm.msp430(tmp_path, """
    .section .text,"ax"
_start:
    mov #1, r4                ; 1
    mov #2, r5                ; 2
    mov r4, &0x3C00           ; 3: just past SRAM: unmapped
1:  jmp 1b
    .section .vectors,"ax"
    .word _start
""")
    r = emu.Machine.from_elf(elf).run()
    # #1 and #2 come from the constant generator: one word each
    assert r.outcome == "crash" and r.instructions == 2 and r.stop_pc == 0x4404
    assert "0x3c00" in r.error


UART_ECHO = """
    .section .text,"ax"
_start:
    bic #1, &0x05C0           ; UCA0CTLW0: clear UCSWRST
    mov #4, r6
loop:
    bit.b #1, &0x05DC         ; UCA0IFG.UCRXIFG
    jz loop
    mov.b &0x05CC, r5         ; UCA0RXBUF (clears UCRXIFG)
    inc.b r5
2:  bit.b #2, &0x05DC         ; UCA0IFG.UCTXIFG
    jz 2b
    mov.b r5, &0x05CE         ; UCA0TXBUF
    dec r6
    jnz loop
1:  jmp 1b
    .section .vectors,"ax"
    .word _start
"""


def test_uart_round_trip(tmp_path):
    m = emu.Machine.from_elf(asm.msp430(tmp_path, UART_ECHO), uart_input=b"abcd")
    r = m.run()
    assert r.outcome == "completed" and r.uart == b"bcde"


def test_uart_waits_for_input(tmp_path):
    m = emu.Machine.from_elf(asm.msp430(tmp_path, UART_ECHO), uart_input=b"ab", max_instructions=10_000)
    r = m.run()
    assert r.outcome == "timeout" and r.uart == b"bc"  # polls RXIFG forever for the third byte


MPY32 = """
    .section .text,"ax"
_start:
    mov #0xFFFF, &0x04C0      ; MPY  (unsigned OP1)
    mov #0xFFFF, &0x04C8      ; OP2 -> 0xFFFE0001
    mov &0x04CA, &u_lo
    mov &0x04CC, &u_hi
    mov &0x04CE, &u_ext
    mov #0xFFFF, &0x04C2      ; MPYS (-1)
    mov #2, &0x04C8           ; -> -2 = 0xFFFFFFFE, SUMEXT 0xFFFF
    mov &0x04CA, &s_lo
    mov &0x04CC, &s_hi
    mov &0x04CE, &s_ext
    mov #0x1234, &0x04C0      ; MPY 0x1234 * 2 = 0x2468
    mov #2, &0x04C8
    mov #0x0010, &0x04C4      ; MAC 0x10 * 0x10 + 0x2468 = 0x2568
    mov #0x0010, &0x04C8
    mov &0x04CA, &m_lo
    mov &0x04CC, &m_hi
    mov &0x04CE, &m_ext
    mov #0xFFFF, &0x04D0      ; MPY32L
    mov #0xFFFF, &0x04D2      ; MPY32H: OP1 = 0xFFFFFFFF
    mov #2, &0x04E0           ; OP2L
    mov #0, &0x04E2           ; OP2H -> 0x1_FFFF_FFFE
    mov &0x04E4, &w0
    mov &0x04E6, &w1
    mov &0x04E8, &w2
    mov &0x04EA, &w3
1:  jmp 1b
    .section .nv,"aw"
    .globl u_lo, u_hi, u_ext, s_lo, s_hi, s_ext, m_lo, m_hi, m_ext, w0, w1, w2, w3
u_lo: .word 0
u_hi: .word 0
u_ext: .word 0
s_lo: .word 0
s_hi: .word 0
s_ext: .word 0
m_lo: .word 0
m_hi: .word 0
m_ext: .word 0
w0: .word 0
w1: .word 0
w2: .word 0
w3: .word 0
    .section .vectors,"ax"
    .word _start
"""


def test_mpy32(tmp_path):
    m = emu.Machine.from_elf(asm.msp430(tmp_path, MPY32))
    assert m.run().outcome == "completed"
    got = {n: word(m, n) for n in ("u_lo", "u_hi", "u_ext", "s_lo", "s_hi", "s_ext", "m_lo", "m_hi", "m_ext",
                                   "w0", "w1", "w2", "w3")}
    assert got == {
        "u_lo": 0x0001, "u_hi": 0xFFFE, "u_ext": 0,  # 0xFFFF * 0xFFFF unsigned
        "s_lo": 0xFFFE, "s_hi": 0xFFFF, "s_ext": 0xFFFF,  # -1 * 2 signed
        "m_lo": 0x2568, "m_hi": 0, "m_ext": 0,  # 0x2468 + 0x10 * 0x10, no carry
        "w0": 0xFFFE, "w1": 0xFFFF, "w2": 0x0001, "w3": 0,  # 0xFFFFFFFF * 2, 32x32
    }


def test_peripheral_state_is_lost_at_power_failure(tmp_path):
    m = emu.Machine.from_elf(asm.msp430(tmp_path, UART_ECHO), uart_input=b"abcd")
    m.step(1)  # UCSWRST cleared
    assert m.bus.read(0x05C0, 2) & 1 == 0
    m.power_fail()
    m.power_on()
    assert m.bus.read(0x05C0, 2) & 1 == 1  # back in software reset
    r = m.run()  # sent bytes stay sent, input not yet received stays queued
    assert r.uart == b"bcde" and r.outcome == "completed"


PATCHABLE = """
    .section .text,"ax"
    .globl _start
_start:
    mov #0x1234, &nv_word     ; the immediate is the word at _start + 2
1:  jmp 1b
    .section .nv,"aw"
    .globl nv_word
nv_word: .word 0
    .section .vectors,"ax"
    .word _start
"""


def test_code_written_from_python_after_a_run_is_executed(tmp_path):
    # icicle keeps translated code forever; the engine must notice and start afresh
    m = emu.Machine.from_elf(asm.msp430(tmp_path, PATCHABLE))
    m.run()
    assert word(m, "nv_word") == 0x1234
    start = m.image.symbol("_start").address
    m.write_memory(start + 2, (0x5678).to_bytes(2, "little"))
    m.power_fail()
    r = m.run()
    assert r.outcome == "completed" and word(m, "nv_word") == 0x5678
    assert r.power_cycles == [1, 1]


def test_self_modifying_code_is_a_clear_crash(tmp_path):
    elf = asm.msp430(tmp_path, """
    .section .text,"ax"
_start:
    mov #0x1111, r4
    mov #0x2222, &(_start + 2)  ; overwrite the immediate of the instruction just run
    jmp _start
    .section .vectors,"ax"
    .word _start
""")
    r = emu.Machine.from_elf(elf).run(max_instructions=100)
    assert r.outcome == "crash" and "self-modifying code" in r.error


def test_an_exit_added_inside_code_that_already_ran_is_hit(build_dir):
    """icicle checks breakpoints when it translates a block: an exit added later in the
    middle of a translated block must still stop the run (emu gdb's `break FILE:LINE`)."""
    from emu.campaign import golden_trace

    elf = build_dir / "msp430fr5994" / "checksum.elf"
    start = emu.Machine.from_elf(elf).resolve_address("task_chunk")
    trace = golden_trace(emu.Machine.from_elf(elf))
    inside = sorted({pc for pc in trace if start < pc < start + 40})[2]  # not a block start
    m = emu.Machine.from_elf(elf)
    m.power_on()
    m.step(5000)  # task_chunk has run (and been translated) by now
    assert inside in trace[:5000]
    m.engine.set_exits(sorted(m.exits | {inside}))
    stop = m.step(10**6)
    assert stop.pc == inside and m.instructions == trace.index(inside, 5000)

"""Convergence pruning never changes a campaign's results: pruned and unpruned campaigns
(exhaustive on small apps and their broken twins, --double, schedules, tight timeouts)
give the same trials on both boards, and `pruned` counts exactly the trials that stopped
early. Real firmware, real engines."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import emu
from emu.campaign import Campaign, double, exhaustive, golden_epochs, golden_trace, read_schedules, sample
from emu.peripherals.cortex_m import SysTick
from emu.results import trial_from_json, trial_to_json
from tests import asm

pytestmark = pytest.mark.skipif(shutil.which("clang") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="toolchains missing")

BOARDS = ("msp430fr5994", "cortex-m4-mram")


def campaigns(elf, **options) -> tuple[Campaign, Campaign]:
    """The same campaign twice, unpruned and pruned, each on its own machine; the pruned
    one counts its machine's runs and how they ended (a spy on the real Machine.run): a
    trial either runs once or, taking an earlier trial's ending in its failure epoch,
    not at all."""
    plain = Campaign(emu.Machine.from_elf(elf), prune=False, **options)
    pruned = Campaign(emu.Machine.from_elf(elf), prune=True, **options)
    machine, run = pruned.machine, pruned.machine.run
    pruned.stopped = pruned.runs = 0

    def counting_run(*args, **kwargs):
        result = run(*args, **kwargs)
        pruned.stopped += result.outcome == "stopped"
        pruned.runs += 1
        return result

    machine.run = counting_run
    return plain, pruned


def agree(plain: Campaign, pruned: Campaign, points) -> tuple:
    a, b = plain.run(points), pruned.run(points)
    assert a.pruned == 0
    assert len(b.trials) == len(a.trials) == len(points)
    for x, y in zip(a.trials, b.trials):  # outcome, failure pc, observed bytes, error text
        assert (x.at, x.outcome, x.pc, x.observed, x.error) == (y.at, y.outcome, y.pc, y.observed, y.error)
    assert a.to_json()["failures"] == b.to_json()["failures"]
    # honest: exactly the trials whose run stopped early or that ran nothing
    assert b.pruned == pruned.stopped + len(points) - pruned.runs
    return a, b


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("app", ["demo", "demo_broken", "logger_broken"])
def test_exhaustive_campaigns_agree_with_and_without_pruning(build_dir, board, app):
    plain, pruned = campaigns(build_dir / board / f"{app}.elf", observe=["result"] if "demo" in app else [])
    a, b = agree(plain, pruned, exhaustive(plain.golden_instructions))
    # most trials converge (with an earlier one's state after the reboot), not all
    assert len(b.trials) // 2 < b.pruned < len(b.trials)
    if app.endswith("_broken"):
        assert not a.all_correct  # the bug is still found
    else:
        assert a.all_correct


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("app", ["demo", "demo_broken"])
def test_double_failure_campaigns_agree(build_dir, board, app):
    plain, pruned = campaigns(build_dir / board / f"{app}.elf", observe=["result"])
    points = double(plain.golden_instructions, 400, seed=5, window=plain.boot_instructions + 300)
    _, b = agree(plain, pruned, points)
    assert b.pruned > 100


@pytest.mark.parametrize("board", BOARDS)
def test_a_tight_limit_gives_the_same_timeouts(build_dir, board):
    """With max_factor 1.1 late failures run out of instructions: an earlier trial's
    ending may not be taken where the limit falls before it (the arithmetic of shifted
    instruction counts), and must be taken where it does not."""
    plain, pruned = campaigns(build_dir / board / "demo.elf", observe=["result"], max_factor=1.1)
    a, b = agree(plain, pruned, exhaustive(plain.golden_instructions))
    assert 0 < a.outcomes["timeout"] < a.outcomes["correct"]
    assert b.pruned > len(b.trials) // 2


# After a failure between setting and clearing `busy`, every reboot spins forever (a
# timeout). The last boot's state before power-on depends only on non-volatile memory and
# the fill of that boot: equal for every schedule (k1, k2) with k1 in 4..8. A timeout can
# be taken from an earlier trial only at the same instruction count (k1 + k2).
SPINNER = """
    .section .text,"ax"
    .globl _start
_start:
    mov &busy, r5           ; 1
    tst r5                  ; 2
    jnz spin                ; 3
    mov #1, &busy           ; 4  busy from k = 4 on
    nop                     ; 5
    nop                     ; 6
    nop                     ; 7
    mov #0, &busy           ; 8
    mov #1, &result         ; 9
1:  jmp 1b
spin:
    nop
    jmp spin
    .section .nv,"aw"
    .globl busy, result
    .type busy, @object
    .size busy, 2
busy:   .word 0
    .type result, @object
    .size result, 2
result: .word 0
    .section .vectors,"ax"
    .word _start
"""


def test_timeouts_are_taken_only_at_the_same_instruction_count(tmp_path):
    elf = asm.msp430(tmp_path, SPINNER, "spinner")
    schedules = tmp_path / "schedules.txt"
    schedules.write_text("4,6\n5,5\n6,4\n4,7\n7,4\n2,3\n")
    plain, pruned = campaigns(elf, observe=["busy", "result"], max_factor=5)
    points = read_schedules(schedules)
    a, b = agree(plain, pruned, points)
    assert [t.outcome for t in a.trials] == ["timeout"] * 5 + ["correct"]
    # (5,5) and (6,4) reach the last power-on at 10 like (4,6); (7,4) at 11 like (4,7)
    assert [t.pruned for t in b.trials] == [False, True, True, False, True, False]


def test_cli_no_prune_gives_the_same_json(build_dir, tmp_path):
    elf = build_dir / "cortex-m4-mram" / "demo_broken.elf"
    out = {}
    for flag in ("", "--no-prune"):
        cmd = [sys.executable, "-m", "emu", "campaign", str(elf), "--exhaustive", "--observe", "result",
               "--workers", "1", "--json", "--results", str(tmp_path / f"r{flag}.jsonl")] + ([flag] if flag else [])
        run = subprocess.run(cmd, capture_output=True, text=True)
        assert run.returncode == 1, run.stderr  # the broken twin fails
        out[flag] = json.loads(run.stdout)
    assert out["--no-prune"]["pruned"] == 0
    assert 0 < out[""]["pruned"] < out[""]["trials"]
    for key in ("golden_instructions", "trials", "outcomes", "failures"):
        assert out[""][key] == out["--no-prune"][key]
    # the result file keeps which trials were pruned
    stored = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()[1:]]
    assert sum(trial_from_json(t).pruned for t in stored if "outcome" in t) == out[""]["pruned"]


def test_pruned_flag_survives_the_result_store():
    from emu.campaign import Trial

    t = Trial(7, "correct", 0x4400, {"result": b"\x01"}, pruned=True)
    assert trial_from_json(trial_to_json(t)).pruned is True
    assert trial_from_json(trial_to_json(Trial(7, "correct", 0, {}))).pruned is False


def test_systick_state_key_is_relative_to_the_clock():
    now = [1000]
    a, b = SysTick(0xE000_E010), SysTick(0xE000_E010)
    a.clock = b.clock = lambda: now[0]
    a.write(4, 4, 500)
    b.write(4, 4, 500)
    a.write(0, 4, 1)  # enabled at 1000
    now[0] = 1300
    b.write(0, 4, 1)  # enabled at 1300
    now[0] = 1600
    assert a.state_key() != b.state_key()  # 600 vs 300 ticks since: different counter values
    b.start -= 300  # as if b had been enabled at 1000 too
    assert a.state_key() == b.state_key()
    a.write(0, 4, 0)
    b.write(0, 4, 0)
    assert a.state_key() == b.state_key()  # stopped: `start` no longer matters


# -- failure epochs: trials that take an earlier trial's ending without running ----------
@pytest.mark.parametrize("board,app", [("cortex-m4-mram", "demo_broken"), ("cortex-m4-mram", "logger_broken"),
                                       ("cortex-m4-mram", "dnn_digits"), ("msp430fr5994", "demo_broken"),
                                       ("msp430fr5994", "logger_broken"), ("msp430fr5994", "dnn_digits")])
def test_failures_between_the_same_kept_writes_leave_the_same_state(build_dir, board, app):
    """What the epochs rely on, checked with the machine's own state keys before the
    reboot: failures with no write to non-volatile memory or a peripheral between them
    leave equal states, and the writes do change it (else the check proves nothing)."""
    m = emu.Machine.from_elf(build_dir / board / f"{app}.elf")
    n = m.run().instructions
    writes, pcs = golden_epochs(m, n)
    if board == "msp430fr5994":
        assert pcs is None  # (icicle records no trace: the campaign steps to the PCs)
    elif app != "dnn_digits":  # (single-stepping 55k instructions: the engine tests cover the trace)
        assert list(pcs[:n]) == golden_trace(m)  # the recorded PCs are the single-stepped ones
    points = sorted(set(sample(n, 300, seed=2)) | {w for w in writes[:40]} | {w + 1 for w in writes[:40]})

    def key(k):
        m.reset()
        m.step(k)
        m.power_fail()
        return m.state_key()

    keys = {k: key(k) for k in points if 0 < k < n}
    epoch = {k: sum(w < k for w in writes) for k in keys}
    ks = sorted(keys)
    same = [(a, b) for a, b in zip(ks, ks[1:]) if epoch[a] == epoch[b]]
    assert len(same) > 50
    assert all(keys[a] == keys[b] for a, b in same)
    assert any(keys[w] != keys[w + 1] for w in writes[:40] if w in keys and w + 1 in keys)


def test_no_failure_epochs_where_a_failure_keeps_more(build_dir):
    cortex = build_dir / "cortex-m4-mram" / "demo.elf"
    assert golden_epochs(emu.Machine.from_elf(cortex), 10) is not None
    assert golden_epochs(emu.Machine.from_elf(cortex, volatile_init="keep")) is None  # registers kept
    assert golden_epochs(emu.Machine.from_elf(cortex, uart_input=b"x")) is None  # a read may take input
    # power-on sets every MSP430 register, R3 included; dnn_digits takes a timer interrupt,
    # stacked in SRAM (see the next test)
    assert golden_epochs(emu.Machine.from_elf(build_dir / "msp430fr5994" / "demo.elf")) is not None
    m = emu.Machine.from_elf(build_dir / "msp430fr5994" / "dnn_digits.elf")
    assert golden_epochs(m) is not None and m.interrupts_taken > 0


# Timer_A0 overflows 16 instructions after it starts; its interrupt is stacked where SP points
TIMER_INTERRUPT = """
    .text
    .globl _start
_start:
    mov #{sp}, r1
    mov #0xFFF0, &0x0350        ; TA0R
    mov #0x0222, &0x0340        ; TA0CTL: SMCLK, continuous, TAIE
    eint
    clr r6
loop:
    inc r6
    cmp #40, r6
    jne loop
    dint
    nop
done:
    jmp done
isr:
    mov &0x036E, r7             ; TA0IV: clears TAIFG
    reti
    .section .vectors,"a"
    .word isr                   ; 0xFFE8 TIMER0_A1
    .fill 10, 2, 0
    .word _start
"""


@pytest.mark.parametrize("stack, epochs", [(0x3C00, True), (0xF000, False)])  # SRAM top; FRAM
def test_no_failure_epochs_where_an_interrupt_is_stacked_in_non_volatile_memory(tmp_path, stack, epochs):
    """An interrupt's exception frame is written by the engine, not by a CPU store the
    epochs' watch sees: in FRAM it changes what a failure keeps, in SRAM nothing."""
    elf = asm.msp430(tmp_path, TIMER_INTERRUPT.format(sp=stack), script=asm.msp430_script(0xFFE8))
    m = emu.Machine.from_elf(elf)
    assert (golden_epochs(m) is not None) == epochs
    assert m.interrupts_taken == 1 and m.frames_outside_volatile == (0 if epochs else 1)


# a sample on the Cortex-M; on the MSP430, whose DNN keeps its activations in FRAM (a write
# every ~11 instructions, so sampled failures rarely share an epoch), every failure point
# of a window in mid-inference
@pytest.mark.parametrize("board", BOARDS)
def test_a_dnn_sample_agrees_and_many_trials_run_nothing(build_dir, board):
    plain, pruned = campaigns(build_dir / board / "dnn_digits.elf")
    n = plain.golden_instructions
    points = sample(n, 300, seed=3) if board == "cortex-m4-mram" else list(range(n // 2, n // 2 + 150))
    pruned._epochs_after = 1  # (icicle's watched golden run pays for itself only after ~30k trials)
    _, b = agree(plain, pruned, points)
    assert len(points) - pruned.runs > len(points) // 4 and b.pruned > len(points) // 2

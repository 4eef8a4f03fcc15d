"""The just-in-time checkpoint (rt_checkpoint / rt_restore) on both boards: a computation
whose progress lives only in registers, stack and volatile data gives the continuous-power
result under single and double power failures (the second inside rt_restore), and does
not when the restore is skipped."""

from __future__ import annotations

import pytest

import emu
from emu.campaign import Campaign, double, sample

BOARDS = ["msp430fr5994", "cortex-m4-mram"]


@pytest.mark.parametrize("board", BOARDS)
def test_checkpointed_computation_survives_failures(build_dir, board):
    elf = build_dir / "test-apps" / board / "jit_counter.elf"
    c = Campaign(emu.Machine.from_elf(elf), observe=["result"])
    assert c.expected["result"] != bytes(4)
    singles = c.run(sample(c.golden_instructions, 250, seed=2))
    assert singles.all_correct, singles.summary()
    # the second failure lands in the reboot's first instructions: startup and rt_restore
    doubles = c.run(double(c.golden_instructions, 150, seed=3, window=c.boot_instructions + 300))
    assert doubles.all_correct, doubles.summary()


@pytest.mark.parametrize("board", BOARDS)
def test_without_restore_failures_break_the_result(build_dir, board):
    """The same program with rt_restore skipped (the reset vector's C code runs main from
    the start at each boot) gets wrong results: the test above can fail."""
    elf = build_dir / "test-apps" / board / "jit_counter.elf"
    m = emu.Machine.from_elf(elf, observe=["result"])
    golden = m.run()
    restore = m.resolve_address("rt_restore")
    ret = bytes.fromhex("3041") if board == "msp430fr5994" else bytes.fromhex("7047")  # ret / bx lr
    broken = 0
    for k in range(3000, golden.instructions, golden.instructions // 12):
        m.reset()
        m.write_memory(restore, ret)  # flash a firmware whose rt_restore returns at once
        r = m.run(fail_after=[k])
        broken += r.outcome != "completed" or r.reads != golden.reads
    assert broken >= 6

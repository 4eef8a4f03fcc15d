"""The hand-written assembly probes (tests/probes/<board>/*.S, built by `make firmware`)
on both boards. Expected values come from each probe's header, where they are derived
instruction by instruction."""

from __future__ import annotations

import pytest

import emu
from tests.conftest import BOARDS

MSP, ARM = BOARDS
# per board: (instructions of nvstore, its NV stores at [k], nv_value, nv_second, word size)
NVSTORE = {
    MSP: dict(n=7, first_store=5, second_store=7, nv_value=0xBEEF, nv_second=0x1245, size=2),
    ARM: dict(n=11, first_store=6, second_store=11, nv_value=0xDEADBEEF, nv_second=0x1245, size=4),
}


def value(m, name):
    return int.from_bytes(m.read_symbol(name), "little")


@pytest.mark.parametrize("board", BOARDS)
def test_nvstore_continuous(probe, board):
    p = NVSTORE[board]
    m = emu.Machine.from_elf(probe(board, "nvstore"))
    r = m.run()
    assert (r.outcome, r.instructions, r.power_cycles) == ("completed", p["n"], [p["n"]])
    assert r.stop_pc == m.resolve_address("done")
    assert value(m, "nv_value") == p["nv_value"] and value(m, "nv_second") == p["nv_second"]


@pytest.mark.parametrize("board", BOARDS)
def test_nvstore_failure_at_k_and_neighbours(probe, board):
    p = NVSTORE[board]
    for store, name in ((p["first_store"], "nv_value"), (p["second_store"], "nv_second")):
        for k in (store - 1, store, store + 1):
            if k >= p["n"]:
                continue  # at n the program has completed
            m = emu.Machine.from_elf(probe(board, "nvstore"), until="done")
            m.step(k)  # exactly k instructions retire
            m.power_fail()
            survived = value(m, name) == p[name]
            assert survived == (k >= store), (name, k)
            r = m.run()  # the next period redoes everything
            assert r.power_cycles == [k, p["n"]]
            assert value(m, name) == p[name]


@pytest.mark.parametrize("board", BOARDS)
def test_failure_before_first_nv_write_leaves_nv_untouched(probe, board):
    p = NVSTORE[board]
    m = emu.Machine.from_elf(probe(board, "nvstore"), volatile_init="zero")
    m.step(p["first_store"] - 1)
    m.power_fail()
    assert value(m, "nv_value") == 0 and value(m, "nv_second") == 0


@pytest.mark.parametrize("board", BOARDS)
def test_sram_is_lost_nv_is_kept(probe, board):
    p = NVSTORE[board]
    m = emu.Machine.from_elf(probe(board, "nvstore"), volatile_init="zero")
    m.run()
    assert value(m, "sram_value") != 0
    m.power_fail()
    m.power_on()
    assert value(m, "sram_value") == 0
    assert value(m, "nv_value") == p["nv_value"]


# counter: a boot that starts with progress p retires a + b * (10 - p) instructions
COUNTER = {MSP: (4, 4), ARM: (8, 6)}  # (a, b): 44 - 4p on MSP430, 68 - 6p on Cortex-M
BOOT_INCREMENT = {MSP: 2, ARM: 4}  # the instruction that stores boots + 1


@pytest.mark.parametrize("board", BOARDS)
def test_counter_several_failures_in_a_row(probe, board):
    a, b = COUNTER[board]
    m = emu.Machine.from_elf(probe(board, "counter"))
    full = m.run()
    assert full.instructions == a + 10 * b
    m = emu.Machine.from_elf(probe(board, "counter"))
    # a + b instructions: the boot prologue and exactly one loop step with its store
    r = m.run(fail_after=[a + b, a + b, a + b, 2])
    assert r.outcome == "completed" and r.power_failures == 4
    # three boots made one step each; the 2-instruction boot none; the last starts at 3
    assert r.power_cycles == [a + b] * 3 + [2, a + b * 7]
    assert value(m, "progress") == 10
    # every boot counts itself, the 2-instruction one only if it reached the store
    assert value(m, "boots") == 3 + (2 >= BOOT_INCREMENT[board]) + 1


@pytest.mark.parametrize("board", BOARDS)
def test_uart_echo_round_trip(probe, board):
    m = emu.Machine.from_elf(probe(board, "uart_echo"), uart_input=b"ab\xffd")
    r = m.run()
    assert r.outcome == "completed" and r.uart == b"bc\x00e"


def test_mpy32_probe(probe):
    m = emu.Machine.from_elf(probe(MSP, "mpy32"))
    r = m.run()
    assert r.outcome == "completed" and r.instructions == 29
    got = [value(m, n) for n in ("mpy_u16_lo", "mpy_u16_hi", "mpy_s16_lo", "mpy_s16_hi", "mpy_s16_sumext",
                                 "mac_lo", "mac_hi", "mac_sumext",
                                 "mpy32_res0", "mpy32_res1", "mpy32_res2", "mpy32_res3")]
    product = 0x12345678 * 0x9ABCDEF0
    assert got == [0x0060, 0x0626, 0xFA24, 0xFFFF, 0xFFFF, 0x22E1, 0x0000, 0x0001,
                   product & 0xFFFF, product >> 16 & 0xFFFF, product >> 32 & 0xFFFF, product >> 48]


@pytest.mark.parametrize("board, name, label, words", [
    (MSP, "crash_unmapped", "bad_load", ["0x1000"]),
    (MSP, "crash_invalid", "bad_insn", ["invalid instruction"]),
    (ARM, "crash_unmapped", "bad_load", ["0x30000000"]),
    (ARM, "crash_write_flash", "bad_store", ["write", "0x8000000"]),
    (ARM, "crash_invalid", "bad_insn", ["invalid instruction"]),
])
def test_crashes(probe, board, name, label, words):
    m = emu.Machine.from_elf(probe(board, name))
    r = m.run()
    assert r.outcome == "crash" and r.instructions == 2
    assert r.stop_pc == m.resolve_address(label)
    for w in words:
        assert w in r.error.lower()
    if name == "crash_write_flash":
        assert m.read_memory(0x0800_0000, 4) == (0x2002_0000).to_bytes(4, "little")


@pytest.mark.parametrize("board", BOARDS)
def test_spin_times_out_at_exactly_max_instructions(probe, board):
    m = emu.Machine.from_elf(probe(board, "spin"), max_instructions=100_001)
    r = m.run(fail_after=[30_000])
    assert r.outcome == "timeout" and r.instructions == 100_001 and r.power_cycles == [30_000, 70_001]


@pytest.mark.parametrize("board", BOARDS)
def test_determinism_bit_for_bit(probe, board):
    runs = [emu.Machine.from_elf(probe(board, "counter"), seed=3).run(fail_after=[9, 1, 17]).to_json()
            for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("board", BOARDS)
def test_snapshot_restore_equivalence(probe, board):
    m = emu.Machine.from_elf(probe(board, "counter"))
    names = m.engine.register_names

    def state():
        regs = [m.engine.read_register(r) for r in names]
        mem = [m.read_memory(r.start, r.size) for r in m.board.regions if not r.mmio and r.alias_of is None]
        return regs, mem, m.instructions, m.period_instructions, m.boots, bytes(m.link.tx)

    m.run(fail_after=[15, 4], max_instructions=15 + 4 + 7)  # mid-period, after two failures
    snap = m.snapshot()
    m.step(9)
    after = state()
    m.restore(snap)
    m.step(9)
    assert state() == after
    m.restore(snap)
    first = m.run(fail_after=[20])
    m.restore(snap)
    assert m.run(fail_after=[20]).to_json() == first.to_json()


def test_flash_alias_reads_the_same_bytes(probe):
    m = emu.Machine.from_elf(probe(ARM, "nvstore"))
    assert m.read_memory(0x0, 64) == m.read_memory(0x0800_0000, 64)

"""UnicornEngine: exact counting, exits, faults, aliasing, MMIO, snapshots.

Programs are tiny Thumb sources assembled with arm-none-eabi-as/ld into flash at
0x08000000. Expected values come from reading the instruction sequences (each
comment numbers the instructions as they retire), never from running the engine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from emu.engines.base import Access, EngineStop, Mapping, StopKind

unicorn_engine = pytest.importorskip("emu.engines.unicorn_engine")
UnicornEngine = unicorn_engine.UnicornEngine

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-as") is None, reason="needs arm-none-eabi binutils")

FLASH, SRAM, MRAM = 0x0800_0000, 0x2000_0000, 0x6000_0000
# the cortex-m4-mram board's map: flash aliased at 0, 512 MiB peripheral window, SCS
BOARD_MAP = [
    Mapping(0x0000_0000, 0x10_0000, Access.RX),
    Mapping(FLASH, 0x10_0000, Access.RX),
    Mapping(SRAM, 0x2_0000, Access.RWX),
    Mapping(0x4000_0000, 0x2000_0000, Access.RW, mmio=True),
    Mapping(MRAM, 0x8_0000, Access.RW),
    Mapping(0xE000_E000, 0x1000, Access.RW, mmio=True),
]


class FakeBus:
    """Records accesses; reads return `values[address]` (default 0)."""

    def __init__(self, values=None, engine=None):
        self.values = dict(values or {})
        self.log: list[tuple] = []
        self.engine = engine
        self.seen_instructions: list[int] = []
        self.fail_on_read = False

    def read(self, address, size):
        self.log.append(("r", address, size))
        if self.engine is not None:
            self.seen_instructions.append(self.engine.instructions)
        if self.fail_on_read:
            raise RuntimeError("bus read failed")
        return self.values.get(address, 0)

    def write(self, address, size, value):
        self.log.append(("w", address, size, value))
        if self.engine is not None:
            self.seen_instructions.append(self.engine.instructions)


def assemble(tmp: Path, body: str, base: int = FLASH) -> tuple[bytes, dict[str, int]]:
    """Assemble Thumb `body` at `base`; returns the image and the label addresses."""
    src, obj, elf, binf = (tmp / f"prog{ext}" for ext in (".s", ".o", ".elf", ".bin"))
    src.write_text(".syntax unified\n.cpu cortex-m4\n.thumb\n.text\n.global _start\n_start:\n" + body + "\n.ltorg\n")
    subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m4", "-mthumb", "-o", str(obj), str(src)], check=True)
    subprocess.run(["arm-none-eabi-ld", f"-Ttext={base:#x}", "-e", "_start", "-o", str(elf), str(obj)], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(binf)], check=True)
    labels = {}
    for line in subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        addr, _, name = line.split()
        labels[name] = int(addr, 16) & ~1
    return binf.read_bytes(), labels


def make(tmp: Path, body: str, bus=None, base: int = FLASH):
    code, labels = assemble(tmp, body, base)
    e = UnicornEngine()
    bus = bus if bus is not None else FakeBus()
    if isinstance(bus, FakeBus) and bus.engine is None:
        bus.engine = e  # lets the bus record `instructions` at each access
    e.map(BOARD_MAP, bus)
    e.write_memory(base, code)
    e.pc = labels["_start"]
    e.write_register("sp", SRAM + 0x2_0000)
    return e, labels, bus


def word(e, address: int) -> int:
    return int.from_bytes(e.read_memory(address, 4), "little")


STORE = """
    movs r0, #0           @ 1
    ldr  r1, =0x20000100  @ 2
    movs r2, #42          @ 3
store:
    str  r2, [r1]         @ 4: the store
after:
    movs r3, #7           @ 5
end:
    b end                 @ 6, 7, ...
"""


# -- exact counting ---------------------------------------------------------------------
def test_limit_stops_right_before_the_store(tmp_path):
    e, lab, _ = make(tmp_path, STORE)
    stop = e.run(3)
    assert (stop.kind, stop.pc) == (StopKind.LIMIT, lab["store"])
    assert e.instructions == 3
    assert word(e, SRAM + 0x100) == 0  # instruction 4 did not execute
    stop = e.run(1)
    assert (stop.kind, stop.pc) == (StopKind.LIMIT, lab["after"])
    assert e.instructions == 4
    assert word(e, SRAM + 0x100) == 42
    assert e.read_register("r3") == 0


def test_limit_k_and_k_plus_one_from_fresh_engines(tmp_path):
    e3, lab, _ = make(tmp_path, STORE)
    e4, _, _ = make(tmp_path, STORE)
    assert e3.run(3).pc == lab["store"] and word(e3, SRAM + 0x100) == 0
    assert e4.run(4).pc == lab["after"] and word(e4, SRAM + 0x100) == 42
    assert (e3.instructions, e4.instructions) == (3, 4)


def test_budget_zero_executes_nothing(tmp_path):
    e, lab, _ = make(tmp_path, STORE)
    assert e.run(0) == EngineStop(StopKind.LIMIT, lab["_start"])
    assert e.instructions == 0


LOOP = """
    movs r0, #0           @ 1
loop:
    adds r0, #1           @ 3 per iteration: adds, cmp, bne
    cmp  r0, #100
    bne  loop
done:
    b done
"""
LOOP_TOTAL = 1 + 3 * 100  # instructions retired when pc first reaches `done`


def test_counting_stays_exact_when_blocks_were_translated_by_a_big_run(tmp_path):
    e, lab, _ = make(tmp_path, LOOP)
    e.set_exits([lab["done"]])
    stop = e.run(10**9)  # translates every block of the loop with one huge budget
    assert (stop.kind, stop.pc) == (StopKind.EXIT, lab["done"])
    assert e.instructions == LOOP_TOTAL and e.read_register("r0") == 100
    # same code again, now through the already translated blocks, in tiny budgets
    e.pc = lab["_start"]
    e.write_register("r0", 0)
    e.reset_counter()
    stop = e.run(7)  # movs + 2 iterations
    assert (stop.kind, stop.pc, e.instructions, e.read_register("r0")) == (StopKind.LIMIT, lab["loop"], 7, 2)
    stop = e.run(2)  # adds, cmp of the third iteration
    assert (stop.pc, e.instructions, e.read_register("r0")) == (lab["loop"] + 4, 9, 3)
    steps = 0
    while (stop := e.run(1)).kind == StopKind.LIMIT:
        steps += 1
    # the run that retires the last bne ends on the exit: EXIT wins over LIMIT
    assert (stop.kind, stop.pc) == (StopKind.EXIT, lab["done"])
    assert steps + 1 == LOOP_TOTAL - 9 and e.instructions == LOOP_TOTAL


def test_chunked_and_single_runs_agree(tmp_path):
    whole, lab, _ = make(tmp_path, LOOP)
    chunked, _, _ = make(tmp_path, LOOP)
    assert whole.run(250).kind == StopKind.LIMIT
    for budget in (1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 11):  # sums to 250
        assert chunked.run(budget).kind == StopKind.LIMIT
    assert chunked.instructions == whole.instructions == 250
    assert chunked.pc == whole.pc and chunked.read_register("r0") == whole.read_register("r0")
    # 250 = 1 + 3*83 + 0: pc is back at `loop` with r0 == 83
    assert (whole.pc, whole.read_register("r0")) == (lab["loop"], 83)


def test_it_blocks_with_32_bit_instructions_stop_between_each(tmp_path):
    e, lab, _ = make(tmp_path, """
    movs r0, #1           @ 1
    cmp  r0, #1           @ 2
it1:
    ite  eq               @ 3
a1: moveq r1, #5          @ 4: taken
b1: movne r1, #6          @ 5: skipped
it2:
    itt  eq               @ 6
a2: addeq.w r1, r1, #0x100  @ 7: taken (32-bit)
b2: moveq r2, #9          @ 8: taken
after2:
    movs r3, #3           @ 9
end:
    b end
""")
    assert e.run(2).pc == lab["it1"]
    steps = [(e.run(1).pc, e.read_register("r1"), e.read_register("r2")) for _ in range(7)]
    assert steps == [(lab["a1"], 0, 0), (lab["b1"], 5, 0), (lab["it2"], 5, 0), (lab["a2"], 5, 0),
                     (lab["b2"], 0x105, 0), (lab["after2"], 0x105, 9), (lab["end"], 0x105, 9)]
    assert e.instructions == 9


def test_sleep_hints_retire_and_do_not_stop(tmp_path):
    e, lab, _ = make(tmp_path, """
    wfi                   @ 1
    wfe                   @ 2
    yield                 @ 3
    sev                   @ 4
    movs r0, #1           @ 5
end:
    b end
""")
    stop = e.run(5)
    assert (stop.kind, stop.pc, e.instructions, e.read_register("r0")) == (StopKind.LIMIT, lab["end"], 5, 1)


# -- exits --------------------------------------------------------------------------------
def test_exit_is_not_executed_nor_counted(tmp_path):
    e, lab, _ = make(tmp_path, """
    movs r0, #1           @ 1
    movs r1, #2           @ 2
stop_here:
    movs r0, #5           @ exit: never executed
end:
    b end
""")
    e.set_exits([lab["stop_here"], lab["end"]])
    stop = e.run(100)
    assert (stop.kind, stop.pc) == (StopKind.EXIT, lab["stop_here"])
    assert e.instructions == 2 and e.read_register("r0") == 1
    # running again at an exit stops at once
    assert e.run(100) == EngineStop(StopKind.EXIT, lab["stop_here"])
    assert e.instructions == 2
    # without that exit the instruction runs and the next exit stops
    e.set_exits([lab["end"]])
    stop = e.run(100)
    assert (stop.kind, stop.pc, e.instructions, e.read_register("r0")) == (StopKind.EXIT, lab["end"], 3, 5)


def test_exit_added_after_blocks_were_translated(tmp_path):
    e, lab, _ = make(tmp_path, LOOP)
    assert e.run(50).kind == StopKind.LIMIT  # the loop block is translated without exits
    # 50 = 1 + 3*16 + 1: stopped before the cmp of iteration 17 (r0 == 17)
    e.set_exits([lab["loop"]])  # start of the already translated loop block
    stop = e.run(1000)
    # cmp, bne retire; the adds at `loop` is the exit
    assert (stop.kind, stop.pc, e.instructions, e.read_register("r0")) == (StopKind.EXIT, lab["loop"], 52, 17)


# -- faults -------------------------------------------------------------------------------
def test_write_to_flash_faults_uncounted(tmp_path):
    e, lab, _ = make(tmp_path, """
    ldr  r1, =0x08000100  @ 1
    movs r2, #42          @ 2
bad:
    str  r2, [r1]         @ faults
    b .
""")
    before = e.read_memory(0x0800_0100, 4)
    stop = e.run(100)
    assert (stop.kind, stop.pc) == (StopKind.FAULT, lab["bad"])
    assert "0x8000100" in stop.reason and "read-only" in stop.reason
    assert e.instructions == 2 and e.pc == lab["bad"]
    assert e.read_memory(0x0800_0100, 4) == before


@pytest.mark.parametrize("insn, word_kind", [("ldr r2, [r1]", "read"), ("str r2, [r1]", "write")])
def test_unmapped_access_faults_uncounted(tmp_path, insn, word_kind):
    e, lab, _ = make(tmp_path, f"""
    ldr  r1, =0x30000010  @ 1
bad:
    {insn}                @ faults
    b .
""")
    stop = e.run(100)
    assert (stop.kind, stop.pc, e.instructions) == (StopKind.FAULT, lab["bad"], 1)
    assert "0x30000010" in stop.reason and "unmapped" in stop.reason and word_kind in stop.reason


def test_fetch_from_unmapped_faults_at_target(tmp_path):
    e, lab, _ = make(tmp_path, """
    ldr  r1, =0x30000001  @ 1
    bx   r1               @ 2: retires, the fetch at 0x30000000 faults
""")
    stop = e.run(100)
    assert (stop.kind, stop.pc, e.instructions) == (StopKind.FAULT, 0x3000_0000, 2)
    assert "fetch" in stop.reason


def test_undefined_instruction_faults_uncounted(tmp_path):
    e, lab, _ = make(tmp_path, """
    movs r0, #1           @ 1
bad:
    udf  #7               @ permanently undefined
    b .
""")
    stop = e.run(100)
    assert (stop.kind, stop.pc, e.instructions) == (StopKind.FAULT, lab["bad"], 1)
    assert "invalid instruction" in stop.reason and "de07" in stop.reason


def test_fault_inside_an_it_block_reports_the_faulting_instruction(tmp_path):
    e, lab, _ = make(tmp_path, """
    movs r0, #1           @ 1
    cmp  r0, #1           @ 2
    ldr  r1, =0x08000100  @ 3
    itt  eq               @ 4: the IT retires...
bad:
    streq r2, [r1]        @ ...but this store to flash faults (not counted)
    moveq r3, #5
    b .
""")
    stop = e.run(100)
    assert (stop.kind, stop.pc, e.pc, e.instructions) == (StopKind.FAULT, lab["bad"], lab["bad"], 4)
    assert "read-only" in stop.reason


# -- IT blocks: every instruction counts, stops inside a block are exact -------------------
IT_BLOCK = """
    movs r0, #1           @ 1
    ldr  r2, =0x60000000  @ 2
    movs r1, #7           @ 3
    cmp  r0, #1           @ 4: Z = 1
it: itete eq              @ 5
i1: moveq r1, #1          @ 6: taken
i2: movne r1, #2          @ 7: skipped (a no-op, still retires)
i3: streq r1, [r2]        @ 8: taken: MRAM word 0 = 1
i4: strne r1, [r2, #4]    @ 9: skipped
end:
    b end
"""


def test_every_instruction_of_an_it_block_counts_and_stops_are_exact(tmp_path):
    _, lab, _ = make(tmp_path, IT_BLOCK)
    # (pc, r1, MRAM word 0, MRAM word 1) after exactly k instructions, read off the listing
    expected = {4: ("it", 7, 0, 0), 5: ("i1", 7, 0, 0), 6: ("i2", 1, 0, 0), 7: ("i3", 1, 0, 0),
                8: ("i4", 1, 1, 0), 9: ("end", 1, 1, 0)}
    for k, (where, r1, w0, w1) in expected.items():
        e, lab, _ = make(tmp_path, IT_BLOCK)
        stop = e.run(k)
        assert stop.kind == StopKind.LIMIT and e.instructions == k and stop.pc == e.pc == lab[where], k
        assert (e.read_register("r1"), word(e, MRAM), word(e, MRAM + 4)) == (r1, w0, w1), k
        # resuming inside the block finishes it as if never stopped
        assert e.run(100).kind == StopKind.LIMIT and e.instructions == k + 100
        assert (e.read_register("r1"), word(e, MRAM), word(e, MRAM + 4), e.pc) == (1, 1, 0, lab["end"]), k


def test_single_steps_walk_an_it_block_one_instruction_at_a_time(tmp_path):
    e, lab, _ = make(tmp_path, IT_BLOCK)
    assert e.run(4).kind == StopKind.LIMIT
    pcs = []
    for _ in range(5):
        assert e.run(1).kind == StopKind.LIMIT
        pcs.append(e.pc)
    assert pcs == [lab["i1"], lab["i2"], lab["i3"], lab["i4"], lab["end"]]
    assert e.instructions == 9


def test_recorded_pcs_are_the_pcs_between_instructions_it_blocks_included(tmp_path):
    e, lab, _ = make(tmp_path, IT_BLOCK)
    trace = e.record_pcs(12)
    assert e.run(11).kind == StopKind.LIMIT  # the listing's 9, then `b end` twice
    e.record_pcs(0)
    # [i]: the pc after i instructions retired, read off the listing (the skipped
    # conditional ones included); [11] did not run yet
    expected = [lab["_start"], lab["_start"] + 2, None, None] + \
        [lab[n] for n in ("it", "i1", "i2", "i3", "i4", "end", "end")] + [0xFFFF_FFFF]
    assert [t if x is None else x for t, x in zip(trace, expected)] == list(trace)
    e2, _, _ = make(tmp_path, IT_BLOCK)  # and all are what single steps see
    steps = [e2.pc]
    for _ in range(10):
        e2.run(1)
        steps.append(e2.pc)
    assert steps == list(trace[:11])
    assert e.run(1).kind == StopKind.LIMIT and list(trace[11:]) == [0xFFFF_FFFF]  # recording stopped


def test_flags_set_inside_an_it_block_survive_a_stop_there(tmp_path):
    # cmpeq changes Z inside the block; the later condition must see the new flags
    # whether or not the run stops between them.
    body = """
    movs r0, #1           @ 1
    movs r1, #0           @ 2
    cmp  r0, #1           @ 3: Z = 1
    itt  eq               @ 4
    cmpeq r0, #2          @ 5: taken: Z = 0
    moveq r1, #9          @ 6: skipped now
end:
    b end
"""
    for k in range(1, 7):
        e, lab, _ = make(tmp_path, body)
        e.run(k)
        assert e.run(1000).kind == StopKind.LIMIT and e.instructions == k + 1000
        assert e.read_register("r1") == 0 and e.pc == lab["end"], k


def test_save_load_inside_an_it_block(tmp_path):
    e, lab, _ = make(tmp_path, IT_BLOCK)
    e.run(6)  # inside the block, before i2
    snap = e.save()
    e.run(3)
    end_state = state_of(e)
    e.reset_cpu()
    e.load(snap)
    assert e.pc == lab["i2"] and e.instructions == 6
    e.run(2)
    assert e.pc == lab["i4"] and word(e, MRAM) == 1  # i3 ran with its condition (EQ)
    e.run(1)
    assert state_of(e) == end_state


def test_svc_is_reported_at_its_address(tmp_path):
    e, lab, _ = make(tmp_path, """
    movs r0, #1           @ 1
bad:
    svc  #3
    b .
""")
    stop = e.run(100)
    assert (stop.kind, stop.pc, e.instructions, e.pc) == (StopKind.FAULT, lab["bad"], 1, lab["bad"])
    assert "SVC" in stop.reason


# -- memory -------------------------------------------------------------------------------
def test_memory_starts_zeroed(tmp_path):
    e, _, _ = make(tmp_path, "b .")
    assert e.read_memory(SRAM, 0x2_0000) == bytes(0x2_0000)
    assert e.read_memory(MRAM, 0x8_0000) == bytes(0x8_0000)


def test_flash_alias_shares_bytes_both_ways(tmp_path):
    e, _, _ = make(tmp_path, "b .")
    e.write_memory(FLASH + 0x1000, b"abcd")
    assert e.read_memory(0x1000, 4) == b"abcd"
    e.write_memory(0x2000, b"wxyz")
    assert e.read_memory(FLASH + 0x2000, 4) == b"wxyz"


def test_cpu_reads_flash_through_alias_and_code_runs_from_alias(tmp_path):
    e, lab, _ = make(tmp_path, """
    ldr  r1, =0x00000100  @ 1: alias address of data at 0x08000100
    ldr  r0, [r1]         @ 2
end:
    b end
""")
    e.write_memory(FLASH + 0x100, (0x1234_5678).to_bytes(4, "little"))
    e.pc = lab["_start"] - FLASH  # execute through the alias
    stop = e.run(2)
    assert (stop.pc, e.read_register("r0")) == (lab["end"] - FLASH, 0x1234_5678)


def test_flashing_after_running_drops_stale_translations(tmp_path):
    e, lab, _ = make(tmp_path, """
patch:
    movs r0, #1           @ 1 (patched below to movs r0, #2)
end:
    b end
""")
    assert e.run(1).pc == lab["end"] and e.read_register("r0") == 1
    e.write_memory(lab["patch"] - FLASH, bytes([0x02, 0x20]))  # movs r0, #2, via the alias
    e.pc = lab["patch"]
    assert e.run(1).pc == lab["end"] and e.read_register("r0") == 2


# -- MMIO ---------------------------------------------------------------------------------
def test_mmio_reaches_the_bus(tmp_path):
    bus = FakeBus({0x4000_1008: 0x1234, 0xE000_E018: 0xABCDEF})
    e, lab, bus = make(tmp_path, """
    ldr  r1, =0x40001000  @ 1
    movs r2, #0xAB        @ 2
    str  r2, [r1, #4]     @ 3: write 4 bytes
    ldrh r3, [r1, #8]     @ 4: read 2 bytes
    strb r2, [r1]         @ 5: write 1 byte
    ldr  r4, =0xE000E018  @ 6
    ldr  r5, [r4]         @ 7: SysTick current value
end:
    b end
""", bus=bus)
    stop = e.run(7)
    assert stop.pc == lab["end"]
    assert bus.log == [("w", 0x4000_1004, 4, 0xAB), ("r", 0x4000_1008, 2), ("w", 0x4000_1000, 1, 0xAB),
                       ("r", 0xE000_E018, 4)]
    assert (e.read_register("r3"), e.read_register("r5")) == (0x1234, 0xABCDEF)
    # during each access, the accessing instruction has not retired yet
    assert bus.seen_instructions == [2, 3, 4, 6]


def test_raw_access_to_mmio_has_no_side_effects(tmp_path):
    e, _, bus = make(tmp_path, "b .")
    assert e.read_memory(0x4000_0000, 4) == bytes(4)
    e.write_memory(0x4000_0000, b"\x01\x02")
    assert e.read_memory(0x4000_0000, 4) == b"\x01\x02\x00\x00"
    assert bus.log == []


def test_bus_exception_propagates_and_the_access_is_retried(tmp_path):
    bus = FakeBus({0x4000_0000: 77})
    bus.fail_on_read = True
    e, lab, _ = make(tmp_path, """
    ldr  r1, =0x40000000  @ 1
bad:
    ldr  r2, [r1]         @ the bus raises: abandoned, not retired
next:
    movs r3, #1
    b .
""", bus=bus)
    e.write_register("r2", 0xDEAD)
    with pytest.raises(RuntimeError, match="bus read failed"):
        e.run(100)
    assert (e.instructions, e.pc, e.read_register("r2")) == (1, lab["bad"], 0xDEAD)
    bus.fail_on_read = False
    assert e.run(1).pc == lab["next"]
    assert (e.instructions, e.read_register("r2")) == (2, 77)
    assert bus.log == [("r", 0x4000_0000, 4)] * 2


# -- registers ----------------------------------------------------------------------------
def test_registers_round_trip(tmp_path):
    e, _, _ = make(tmp_path, "b .")
    for i, name in enumerate(f"r{i}" for i in range(13)):
        e.write_register(name, 0x1111_0000 + i)
    e.write_register("lr", 0xFFFF_FFFF)
    e.write_register("sp", 0x2000_1000)
    for i in range(13):
        assert e.read_register(f"r{i}") == 0x1111_0000 + i
    assert e.read_register("lr") == 0xFFFF_FFFF
    assert e.read_register("sp") == e.read_register("msp") == 0x2000_1000  # thread mode on MSP
    e.write_register("xpsr", 0xF100_0000)  # NZCV set, Thumb bit
    assert e.read_register("xpsr") == 0xF100_0000
    e.write_register("pc", 0x0800_0041)
    assert e.pc == e.read_register("pc") == 0x0800_0040
    assert {"control", "primask", "psp"} <= set(e.register_names)
    with pytest.raises(KeyError):
        e.read_register("r99")


def test_system_registers_stay_accessible_when_firmware_drops_privilege(tmp_path):
    e, lab, _ = make(tmp_path, """
    ldr  r1, =0x20001000  @ 1
    msr  psp, r1          @ 2
    movs r2, #3           @ 3
    msr  control, r2      @ 4: unprivileged, thread mode on PSP
    isb                   @ 5
    movs r0, #1           @ 6
    msr  primask, r0      @ 7: ignored, unprivileged
end:
    b end
""")
    e.write_register("sp", 0x2000_8000)  # MSP (SPSEL is 0 at this point)
    assert e.run(7).pc == lab["end"]
    assert (e.read_register("control"), e.read_register("primask")) == (3, 0)
    assert (e.read_register("sp"), e.read_register("psp"), e.read_register("msp")) == (0x2000_1000, 0x2000_1000,
                                                                                       0x2000_8000)
    e.write_register("primask", 1)
    e.write_register("msp", 0x2000_7000)
    assert (e.read_register("primask"), e.read_register("msp"), e.read_register("control")) == (1, 0x2000_7000, 3)
    e.write_register("control", 0)  # what a reset does: privileged, back on MSP
    assert (e.read_register("control"), e.read_register("sp"), e.read_register("psp")) == (0, 0x2000_7000,
                                                                                           0x2000_1000)
    assert e.run(1).pc == lab["end"] and e.instructions == 8


# -- snapshots ----------------------------------------------------------------------------
WORK = """
    ldr  r4, =0x20000000  @ SRAM cursor
    ldr  r5, =0x60000000  @ MRAM cursor
    movs r0, #0
loop:
    adds r0, #3
    str  r0, [r4], #4     @ one word per iteration in SRAM
    strh r0, [r5], #2     @ one halfword in MRAM
    lsls r1, r0, #7
    eors r0, r1
    ands r0, r0, #0xFF
    b loop
"""


def state_of(e):
    regs = {n: e.read_register(n) for n in e.register_names}
    return regs, e.read_memory(SRAM, 0x2_0000), e.read_memory(MRAM, 0x8_0000), e.instructions


def test_save_load_continues_exactly(tmp_path):
    e, _, _ = make(tmp_path, WORK)
    e.run(5000)
    snap = e.save()
    e.run(7000)
    expected = state_of(e)
    e.load(snap)
    assert e.instructions == 5000
    e.run(7000)
    assert state_of(e) == expected
    # a state can be loaded again, also after a newer one
    later = e.save()
    e.run(123)
    e.load(snap)
    e.run(3000)
    e.run(4000)
    assert state_of(e) == expected
    e.load(later)
    assert state_of(e) == expected


def test_load_restores_flash_and_its_translations(tmp_path):
    e, lab, _ = make(tmp_path, """
patch:
    movs r0, #1
end:
    b end
""")
    snap = e.save()
    e.write_memory(lab["patch"], bytes([0x02, 0x20]))  # movs r0, #2
    e.run(1)
    assert e.read_register("r0") == 2
    e.load(snap)
    assert e.read_memory(lab["patch"], 2) == bytes([0x01, 0x20]) and e.pc == lab["patch"]
    e.run(1)
    assert e.read_register("r0") == 1 and e.instructions == 1


def test_load_restores_memory_written_by_host_and_cpu(tmp_path):
    e, _, _ = make(tmp_path, WORK)
    snap = e.save()
    zero_state = state_of(e)
    e.run(1000)
    e.write_memory(MRAM + 0x7_0000, b"host")
    e.load(snap)
    assert state_of(e) == zero_state


def test_determinism(tmp_path):
    a, _, _ = make(tmp_path, WORK)
    b, _, _ = make(tmp_path, WORK)
    for budget in (1, 10, 100, 1000, 10_000):
        a.run(budget)
    b.run(11_111)
    assert state_of(a) == state_of(b)


# A compiled program with IT blocks (min/max/abs select), stores to MRAM, calls.
C_PROGRAM = r"""
#include <stdint.h>
uint32_t data[64] __attribute__((section(".mram")));
uint32_t out[4] __attribute__((section(".mram")));
static uint32_t lcg(uint32_t *s) { *s = *s * 1664525u + 1013904223u; return *s >> 8; }
void _start(void) __attribute__((naked, noreturn, section(".text.start")));
void _start(void) { __asm__ volatile("ldr sp, =0x20020000\n bl main\n .global done\n done: b done\n"); }
int main(void) {
    uint32_t seed = 1, lo = ~0u, hi = 0, acc = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < 64; i++) data[i] = lcg(&seed) % 1000;
        for (int i = 0; i < 64; i++) {
            uint32_t v = data[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            acc += (v & 1) ? v : -v;
        }
        out[0] = lo; out[1] = hi; out[2] = acc; out[3] = round;
    }
    return 0;
}
"""


def expected_c_program(rounds: int) -> list[int]:
    seed, lo, hi, acc = 1, 0xFFFF_FFFF, 0, 0
    for _ in range(rounds):
        data = []
        for _ in range(64):
            seed = (seed * 1664525 + 1013904223) & 0xFFFF_FFFF
            data.append((seed >> 8) % 1000)
        for v in data:
            lo, hi = min(v, lo), max(v, hi)
            acc = (acc + (v if v & 1 else -v)) & 0xFFFF_FFFF
    return [lo, hi, acc, rounds - 1]


def compile_c_program(tmp: Path, rounds: int):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs arm-none-eabi-gcc")
    src, elf, binf = tmp / "prog.c", tmp / "prog.elf", tmp / "prog.bin"
    src.write_text(C_PROGRAM)
    subprocess.run(["arm-none-eabi-gcc", "-O2", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-ffreestanding",
                    f"-DROUNDS={rounds}", "-Wl,--section-start=.text=0x08000000",
                    "-Wl,--section-start=.mram=0x60000000", str(src), "-o", str(elf)], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".text", str(elf), str(binf)], check=True)
    syms = {}
    for line in subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True,
                               text=True).stdout.splitlines():
        addr, _, name = line.split()
        syms[name] = int(addr, 16) & ~1
    disasm = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], check=True, capture_output=True,
                            text=True).stdout
    assert "\tit" in disasm  # the point of this program: IT blocks
    return binf.read_bytes(), syms


def c_engine(code: bytes, syms: dict[str, int]):
    e = UnicornEngine()
    e.map(BOARD_MAP, FakeBus())
    e.write_memory(FLASH, code)
    e.pc = syms["_start"]
    e.set_exits([syms["done"]])
    return e


def test_compiled_program_result_and_chunking_invariance(tmp_path):
    import random

    code, syms = compile_c_program(tmp_path, rounds=100)
    whole = c_engine(code, syms)
    stop = whole.run(10**9)
    assert (stop.kind, stop.pc) == (StopKind.EXIT, syms["done"])
    out = [word(whole, syms["out"] + 4 * i) for i in range(4)]
    assert out == expected_c_program(100)
    total = whole.instructions

    rng = random.Random(1)
    chunked = c_engine(code, syms)
    snaps, stops = [], 0
    while (stop := chunked.run(rng.choice([1, 2, 3, 7, 50, 333, 4096]))).kind == StopKind.LIMIT:
        stops += 1
        if stops % 5 == 0:
            snaps.append((chunked.save(), chunked.instructions, state_of(chunked)))
    assert (stop.kind, chunked.instructions) == (StopKind.EXIT, total)
    assert state_of(chunked) == state_of(whole)
    # every snapshot, loaded in a shuffled order, resumes to the same end
    assert len(snaps) > 3
    rng.shuffle(snaps)
    for snap, count, state in snaps:
        chunked.load(snap)
        assert chunked.instructions == count and state_of(chunked) == state
        assert chunked.run(10**9).kind == StopKind.EXIT
        assert state_of(chunked) == state_of(whole)


def test_foreign_state_is_rejected(tmp_path):
    a, _, _ = make(tmp_path, "b .")
    b, _, _ = make(tmp_path, "b .")
    with pytest.raises(ValueError):
        b.load(a.save())


def test_power_on_from_the_cpu_cache_is_the_computed_one(build_dir):
    """Machine.power_on keeps the CPU it computes per (fill, reset vectors) for a fill it
    sees a second time and loads it (Engine.load_cpu) when that fill comes again: every
    register as computed."""
    import emu

    elf = build_dir / "cortex-m4-mram" / "demo.elf"
    cached, fresh = emu.Machine.from_elf(elf), emu.Machine.from_elf(elf)
    fresh.engine.cpu_snapshots = False  # (an instance attribute: every power-on computed)
    names = cached.engine.register_names

    def after_power_on(m):
        m.reset()
        m.step(500)  # some other CPU state first: what the cache replaces
        m.power_fail()
        m.power_on()
        return {n: m.engine.read_register(n) for n in names}

    first = after_power_on(cached)
    assert not cached._cpu_at_power_on  # (each fill seen once)
    assert after_power_on(cached) == first and len(cached._cpu_at_power_on) == 2  # (boots 1 and 2)
    assert after_power_on(cached) == first == after_power_on(fresh)  # loaded; computed
    runs = [m.run(fail_after=[300, 50, 700]) for m in (cached, fresh) for _ in range(2) if m.reset() is None]
    assert all(r.to_json() == runs[0].to_json() for r in runs) and runs[0].outcome == "completed"

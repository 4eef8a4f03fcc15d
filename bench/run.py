"""Emulator-core benchmark (`make bench`): prints a table, writes bench/results.json.

For each board, on the project's compute-heavy firmware (build/bench/<board>/matvec.elf, a 64x64
int16 matrix-vector product repeated to >= 50 million instructions):

Every speed is the best of two runs after one untimed run that warms the JIT.

* raw engine MIPS: the emulator library driven directly (icicle with `icount_limit`,
  Unicorn with `emu_start(count=...)`), no project code in the loop; for Unicorn also
  without any counting hook (it then cannot stop at an instruction count: shown for
  reference only);
* `emu run` MIPS under continuous power (`Machine.run()`);
* MIPS with a power failure every 100,000 instructions;
* snapshot and restore time (µs, mean over many);
* MMIO cost: µs per peripheral-register access, from a two-instruction loop that writes the
  UART transmit register.

Target: >= 80 % of the raw engine's MIPS with failures every 100,000 instructions.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import emu  # noqa: E402
from emu.elf import ElfImage  # noqa: E402

BUILD = ROOT / "build"
BOARDS = ("msp430fr5994", "cortex-m4-mram")
FAIL_EVERY = 100_000


def raw_msp430(image: ElfImage) -> tuple[int, float]:
    import icicle

    vm = icicle.Icicle("msp430")
    P = icicle.MemoryProtection
    vm.mem_map(0x0000, 0x1000, P.ReadWrite)  # peripherals as plain memory
    vm.mem_map(0x1800, 0x200, P.ExecuteReadWrite)
    vm.mem_map(0x1C00, 0x2000, P.ExecuteReadWrite)
    vm.mem_map(0x4000, 0x40000, P.ExecuteReadWrite)
    def run(n: int) -> int:  # from reset, freshly flashed (the JIT stays warm)
        for seg in image.segments:
            vm.mem_write(seg.address, seg.data)
        vm.pc = int.from_bytes(vm.mem_read(0xFFFE, 2), "little")
        start = vm.icount
        vm.icount_limit = start + n
        vm.run()
        return vm.icount - start

    return _time_raw(run)


def raw_cortex(image: ElfImage, counted: bool = True) -> tuple[int, float]:
    """Unicorn driven directly. counted: `emu_start(count=50M)` (Unicorn's own counting
    hook, what exact stops need); otherwise no hook at all, run to the final self-branch
    (returns 0 instructions: the caller knows the count)."""
    import unicorn as U

    uc = U.Uc(U.UC_ARCH_ARM, U.UC_MODE_THUMB | U.UC_MODE_MCLASS)
    uc.mem_map(0x0800_0000, 0x10_0000, U.UC_PROT_READ | U.UC_PROT_EXEC)
    uc.mem_map(0x2000_0000, 0x2_0000, U.UC_PROT_ALL)
    uc.mem_map(0x4000_0000, 0x10_0000, U.UC_PROT_READ | U.UC_PROT_WRITE)  # USART as plain memory
    uc.mem_map(0x6000_0000, 0x8_0000, U.UC_PROT_READ | U.UC_PROT_WRITE)
    uc.mem_map(0xE000_E000, 0x1000, U.UC_PROT_READ | U.UC_PROT_WRITE)
    for seg in image.segments:
        uc.mem_write(seg.address, seg.data)
    from unicorn.arm_const import UC_ARM_REG_SP

    vectors = uc.mem_read(0x0800_0000, 8)
    uc.reg_write(UC_ARM_REG_SP, int.from_bytes(vectors[:4], "little"))
    pc = int.from_bytes(vectors[4:], "little")
    reset = uc.context_save()

    if not counted:
        done = image.symbols["__program_done"].address & ~1
        uc.context_restore(reset)
        uc.emu_start(pc | 1, done)  # warms the JIT (see _time_raw)
        best = None
        for _ in range(2):
            uc.context_restore(reset)
            t = time.perf_counter()
            uc.emu_start(pc | 1, done)
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        return 0, best

    def run(n: int) -> int:  # from reset each time (memory: the program rewrites what it uses)
        uc.context_restore(reset)
        uc.emu_start(pc | 1, 0xFFFF_FFFF, count=n)
        return n

    return _time_raw(run)


def _time_raw(run) -> tuple[int, float]:
    """Best of two runs of the first 50 M instructions of the program, each from reset,
    after one untimed run that warms the JIT, as for every other speed (the program is
    longer, so it never idles at its end). The warm-up is not a candidate: a process's
    first long run is measurably faster than its later ones (Unicorn 178-179 against 169
    MIPS on this workload), and the project's runs are all measured after one."""
    run(50_000_000)
    best = None
    for _ in range(2):
        t = time.perf_counter()
        done = run(50_000_000)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return done, best


def measure(kind: str, board: str) -> dict:
    """One measurement, in this process. Speeds are in MIPS."""
    elf = BUILD / "bench" / board / "matvec.elf"
    image = ElfImage.read(elf)
    if kind == "raw":
        n, t = (raw_msp430 if board == "msp430fr5994" else raw_cortex)(image)
        return {"raw_mips": n / t / 1e6}
    if kind == "raw_uncounted":
        n = emu.Machine.from_elf(elf, board).run().instructions
        return {"raw_uncounted_mips": n / raw_cortex(image, counted=False)[1] / 1e6}
    if kind == "mmio":
        return {"mmio_us_per_access": mmio_cost(board)}
    machine = emu.Machine.from_elf(elf, board)
    start = machine.snapshot()
    if kind in ("run", "fail"):
        n = machine.run().instructions  # also warms the JIT, as for the raw engine
        schedule = [FAIL_EVERY] * (n // FAIL_EVERY + 10) if kind == "fail" else None
        best = None
        for _ in range(2):
            machine.restore(start)
            t = time.perf_counter()
            result = machine.run(fail_after=schedule)
            dt = time.perf_counter() - t
            assert result.outcome == "completed", result.error
            best = dt if best is None else min(best, dt)
        key = "run_mips" if kind == "run" else "fail_every_100k_mips"
        return {key: result.instructions / best / 1e6, "instructions": n,
                **({"power_failures": result.power_failures} if kind == "fail" else {})}
    assert kind == "snapshot", kind
    machine.step(1_000_000)
    reps = 2000
    t = time.perf_counter()
    for _ in range(reps):
        machine.snapshot()
    snap_us = (time.perf_counter() - t) / reps * 1e6
    a = machine.snapshot()
    machine.step(10_000)
    b = machine.snapshot()
    t = time.perf_counter()
    for i in range(reps):
        machine.restore(a if i % 2 else b)
    restore_us = (time.perf_counter() - t) / reps * 1e6
    # restore after running 10k instructions (what a campaign does per trial): the pages
    # the run dirtied must be written back
    spent = 0.0
    for _ in range(500):
        machine.step(10_000)
        t = time.perf_counter()
        machine.restore(a)
        spent += time.perf_counter() - t
    return {"snapshot_us": snap_us, "restore_us": restore_us, "restore_after_10k_us": spent / 500 * 1e6}


def measure_board(board: str, repeats: int = 3) -> dict:
    """Every measurement in fresh processes (a process's first JIT run is measurably
    faster than later ones, so sharing one process would bias whatever runs first);
    the best of `repeats` processes for speeds."""
    row: dict = {"board": board, "raw_uncounted_mips": None}
    kinds = ["raw", "run", "fail", "snapshot", "mmio"] + (["raw_uncounted"] if board == "cortex-m4-mram" else [])
    for kind in kinds:
        for _ in range(repeats if kind != "snapshot" else 1):
            out = subprocess.run([sys.executable, __file__, "--measure", kind, board], check=True,
                                 capture_output=True, text=True).stdout
            for key, value in json.loads(out).items():
                better = min if key.endswith("_us") or key.endswith("_access") else max
                row[key] = value if row.get(key) is None else better(row[key], value)
    return row


def mmio_cost(board: str) -> float:
    """µs per UART-register write in a tight two-instruction loop, engine + bus."""
    from emu.engines import Mapping, create_engine
    from emu.boards import get_board
    from emu.peripherals import Link, build_bus

    b = get_board(board)
    engine = create_engine(b.arch)
    link = Link()
    bus = build_bus(b.peripherals, link)
    engine.map([Mapping(r.start, r.size, r.access, r.mmio) for r in b.regions], bus)
    if b.arch == "msp430":
        bus.write(0x05C0, 2, 0)  # UART out of reset
        code = bytes.fromhex("8245ce05" "fd3f")  # loop: mov r5, &UCA0TXBUF ; jmp loop
        engine.write_memory(0x4000, code)
        engine.pc = 0x4000
    else:
        bus.write(0x4001_3800, 4, 0b1101)  # UE | TE | RE
        engine.write_memory(0x0800_0000, bytes.fromhex("0160" "fde7"))  # str r1,[r0] ; b loop
        engine.write_register("r0", 0x4001_3828)
        engine.write_register("xpsr", 0x0100_0000)
        engine.pc = 0x0800_0000
    accesses = 20_000
    t = time.perf_counter()
    stop = engine.run(2 * accesses)
    dt = time.perf_counter() - t
    assert stop.kind == "limit" and len(link.tx) == accesses, (stop, len(link.tx), accesses)
    return dt / accesses * 1e6


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
        return 0
    rows = [measure_board(b) for b in BOARDS]
    header = ("board", "instr", "raw MIPS", "raw uncounted", "run MIPS", "fail/100k MIPS", "% of raw",
              "snapshot µs", "restore µs", "restore+dirty µs", "MMIO µs")
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for r in rows:
        r["fail_vs_raw"] = r["fail_every_100k_mips"] / r["raw_mips"]
        lines.append(" | ".join([
            r["board"], f"{r['instructions']:,}", f"{r['raw_mips']:.1f}",
            "-" if r["raw_uncounted_mips"] is None else f"{r['raw_uncounted_mips']:.1f}", f"{r['run_mips']:.1f}",
            f"{r['fail_every_100k_mips']:.1f}", f"{100 * r['fail_vs_raw']:.0f} %",
            f"{r['snapshot_us']:.1f}", f"{r['restore_us']:.1f}", f"{r['restore_after_10k_us']:.1f}",
            f"{r['mmio_us_per_access']:.2f}"]))
    table = "\n".join("| " + line + " |" for line in lines)
    print(table)
    out = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
           "results": rows, "target_fail_vs_raw": 0.8,
           "targets_met": all(r["fail_vs_raw"] >= 0.8 for r in rows)}
    print("\ncampaigns (bench/campaigns.py):")
    from campaigns import measure as measure_campaigns, table as campaign_table, targets as campaign_targets

    out["campaigns"] = [row for b in BOARDS for row in measure_campaigns(BUILD, b)]
    print(campaign_table(out["campaigns"]))
    out["campaign_targets"] = campaign_targets(out["campaigns"])
    for name, met in out["campaign_targets"].items():
        print(f"  {'met' if met else 'NOT met'}: {name}")
    (ROOT / "bench" / "results.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwritten bench/results.json; 80% target met: {out['targets_met']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Campaign benchmark (part of `make bench`): trials per second.

For each board, on a small app (`demo`, `--exhaustive`) and on a DNN model (`dnn_digits`,
`--sample 2000`):

* naive: the deliberately simple loop of the tests' reference (a new machine per trial,
  run from reset with `fail_after=[k]`), timed on a few trials;
* project, one process: `Campaign` (snapshots along the golden run, one reused machine);
* project, all cores: `execute(..., workers=os.cpu_count(), pool_after=0)` (worker processes
  forced on, their start-up and golden runs included).

Convergence pruning is not implemented yet, so there is no "with pruning" column.
Targets (the campaign issue): >= 50x naive on the small app, >= 200x on the DNN model,
>= 5,000 trials/s per core on the small app.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import emu
from emu.campaign import Campaign, CampaignSpec, execute, exhaustive, sample

WORKLOADS = (("demo", "exhaustive", ["result"], 60), ("dnn_digits", "sample", [], 6))


def naive_rate(elf: Path, observe: list[str], points: list[int]) -> float:
    start = time.perf_counter()
    golden = emu.Machine.from_elf(elf, observe=observe).run()
    for k in points:
        r = emu.Machine.from_elf(elf, observe=observe, max_instructions=10 * golden.instructions).run(fail_after=[k])
        _ = r.outcome == "completed" and (r.reads if observe else r.uart) == (golden.reads if observe else golden.uart)
    return len(points) / (time.perf_counter() - start)


def measure(build: Path, board: str) -> list[dict]:
    rows = []
    for app, strategy, observe, naive_trials in WORKLOADS:
        elf = build / board / f"{app}.elf"
        spec = CampaignSpec(elf, observe=tuple(observe))
        t = time.perf_counter()
        campaign = spec.campaign()
        golden_s = time.perf_counter() - t
        n = campaign.golden_instructions
        points = exhaustive(n) if strategy == "exhaustive" else sample(n, 2000, seed=1)
        naive = naive_rate(elf, observe, points[:: max(1, len(points) // naive_trials)][:naive_trials])
        t = time.perf_counter()
        one = execute(campaign, spec, points, workers=1, progress=False)
        one_rate = len(points) / (time.perf_counter() - t)
        cores = os.cpu_count() or 1
        t = time.perf_counter()
        pooled = execute(campaign, spec, points, workers=cores, progress=False, pool_after=0)
        pool_rate = len(points) / (time.perf_counter() - t)
        assert pooled.trials == one.trials
        rows.append({"board": board, "workload": f"{app} --{strategy}", "golden_instructions": n,
                     "trials": len(points), "golden_and_snapshots_s": golden_s, "naive_trials_per_s": naive,
                     "one_process_trials_per_s": one_rate, "workers": cores, "all_cores_trials_per_s": pool_rate,
                     "speedup_one_process": one_rate / naive, "outcomes": one.outcomes})
    return rows


def table(rows: list[dict]) -> str:
    header = ("board", "workload", "golden instr", "trials", "naive trials/s", "1 process trials/s",
              "x naive", "all cores trials/s")
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for r in rows:
        lines.append(" | ".join([r["board"], r["workload"], f"{r['golden_instructions']:,}", f"{r['trials']:,}",
                                 f"{r['naive_trials_per_s']:.1f}", f"{r['one_process_trials_per_s']:,.0f}",
                                 f"{r['speedup_one_process']:.0f}x",
                                 f"{r['all_cores_trials_per_s']:,.0f} ({r['workers']})"]))
    return "\n".join("| " + line + " |" for line in lines)

"""Campaign benchmark (part of `make bench`): trials per second.

For each board, on a small app (`demo`, `--exhaustive`) and on a DNN model (`dnn_digits`,
`--sample 2000`):

* naive: the deliberately simple loop of the tests' reference (a new machine per trial,
  run from reset with `fail_after=[k]`), timed on a few trials spread over the points;
* without pruning, one process: `Campaign(prune=False)` (snapshots along the golden run,
  one reused machine, every trial run to its end); where all points would take over a
  minute, timed on every tenth point (`unpruned_timed_on`);
* with pruning, one process: `Campaign` (the default: trials stop once they converge with
  an earlier trial, docs/campaigns.md), memo empty at the start of each run;
* with pruning, all cores: `execute(..., workers=os.cpu_count(), pool_after=0)` (worker
  processes forced on, their start-up, golden runs and empty memos included).

Speeds are wall-clock, best of up to three runs (fewer when a run takes over 10 s): the
machine is shared, and the slowest runs measure the other jobs. Every pruned run's trials
are checked against the unpruned run's.

Targets (the campaign issue): >= 50x naive on the small app, >= 200x on the DNN model,
>= 5,000 trials/s per core on the small app (one process, with pruning).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import emu
from emu.campaign import Campaign, CampaignSpec, execute, exhaustive, sample

WORKLOADS = (("demo", "exhaustive", ["result"], 60), ("dnn_digits", "sample", [], 6))
TARGETS = {"exhaustive": 50, "sample": 200}  # x naive
PER_CORE_TARGET = 5000  # trials/s, small app


def naive_rate(elf: Path, observe: list[str], points: list[int]) -> float:
    start = time.perf_counter()
    golden = emu.Machine.from_elf(elf, observe=observe).run()
    for k in points:
        r = emu.Machine.from_elf(elf, observe=observe, max_instructions=10 * golden.instructions).run(fail_after=[k])
        _ = r.outcome == "completed" and (r.reads if observe else r.uart) == (golden.reads if observe else golden.uart)
    return len(points) / (time.perf_counter() - start)


def best_rate(run, count: int, budget_s: float = 10.0, tries: int = 3):
    """(best trials/s over up to `tries` runs, the last run's result)."""
    best, result, spent = 0.0, None, 0.0
    for _ in range(tries):
        t = time.perf_counter()
        result = run()
        dt = time.perf_counter() - t
        best, spent = max(best, count / dt), spent + dt
        if spent > budget_s:
            break
    return best, result


def measure(build: Path, board: str) -> list[dict]:
    rows = []
    for app, strategy, observe, naive_trials in WORKLOADS:
        elf = build / board / f"{app}.elf"
        spec = CampaignSpec(elf, observe=tuple(observe))
        t = time.perf_counter()
        machine = emu.Machine.from_elf(elf)
        plain = Campaign(machine, observe=observe, prune=False)
        golden_s = time.perf_counter() - t
        n = plain.golden_instructions
        points = exhaustive(n) if strategy == "exhaustive" else sample(n, 2000, seed=1)
        naive = naive_rate(elf, observe, points[:: max(1, len(points) // naive_trials)][:naive_trials])
        # without pruning every trial runs to its end: where that would take minutes, time an
        # evenly spread tenth of the points (the rate of the whole, without its minutes)
        t = time.perf_counter()
        plain.run(points[:: max(1, len(points) // 20)])
        estimate = (time.perf_counter() - t) * len(points) / len(points[:: max(1, len(points) // 20)])
        subset = points if estimate < 60 else points[::10]
        unpruned_rate, unpruned = best_rate(lambda: plain.run(subset), len(subset))
        campaign = Campaign(machine, observe=observe)

        def pruned_run():
            campaign.forget()  # every run starts with nothing remembered
            return campaign.run(points)

        pruned_rate, pruned = best_rate(pruned_run, len(points))
        by_point = {t.at: t for t in pruned.trials}
        assert [by_point[t.at] for t in unpruned.trials] == unpruned.trials
        cores = os.cpu_count() or 1

        def pooled_run():
            campaign.forget()
            return execute(campaign, spec, points, workers=cores, progress=False, pool_after=0)

        pool_rate, pooled = best_rate(pooled_run, len(points), tries=2)
        assert pooled.trials == pruned.trials
        rows.append({"board": board, "workload": f"{app} --{strategy}", "golden_instructions": n,
                     "trials": len(points), "unpruned_timed_on": len(subset),
                     "golden_and_snapshots_s": golden_s, "naive_trials_per_s": naive,
                     "unpruned_trials_per_s": unpruned_rate, "pruned_trials_per_s": pruned_rate,
                     "pruned": pruned.pruned, "workers": cores, "all_cores_pruned_trials_per_s": pool_rate,
                     "all_cores_pruned": pooled.pruned,
                     "speedup_unpruned": unpruned_rate / naive, "speedup_pruned": pruned_rate / naive,
                     "target_speedup": TARGETS[strategy],
                     "outcomes": pruned.outcomes})
    return rows


def targets(rows: list[dict]) -> dict[str, bool]:
    """Which of the campaign issue's targets these rows meet."""
    out = {}
    for r in rows:
        name = f"{r['board']} {r['workload']}"
        out[f"{name}: >= {r['target_speedup']}x naive"] = r["speedup_pruned"] >= r["target_speedup"]
        if r["workload"].endswith("--exhaustive"):
            out[f"{name}: >= {PER_CORE_TARGET:,} trials/s per core"] = r["pruned_trials_per_s"] >= PER_CORE_TARGET
    return out


def table(rows: list[dict]) -> str:
    header = ("board", "workload", "golden instr", "trials", "naive trials/s", "no pruning trials/s", "x naive",
              "pruning trials/s", "x naive", "pruned", "all cores, pruning")
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for r in rows:
        lines.append(" | ".join([r["board"], r["workload"], f"{r['golden_instructions']:,}", f"{r['trials']:,}",
                                 f"{r['naive_trials_per_s']:.1f}", f"{r['unpruned_trials_per_s']:,.0f}",
                                 f"{r['speedup_unpruned']:.0f}x", f"{r['pruned_trials_per_s']:,.0f}",
                                 f"{r['speedup_pruned']:.0f}x", f"{r['pruned']:,}",
                                 f"{r['all_cores_pruned_trials_per_s']:,.0f} ({r['workers']})"]))
    return "\n".join("| " + line + " |" for line in lines)

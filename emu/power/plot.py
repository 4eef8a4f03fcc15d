"""A picture of an energy-driven run: capacitor voltage against time (PNG, matplotlib).

The voltage is drawn through its exact values at the events of the run (power-on,
brown-out or completion, end of each recharge), joined by straight lines: the curve
between events is not sampled. Power-on periods are shaded, each power failure is marked
at the voltage it happened at, the supervisor's thresholds are dashed, and the runtime's
commits (`emu.power.commits.commit_times`: the store to rt_active), when given, are
marked at their exact time and voltage.

Public name: `plot_energy_run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .run import EnergyRunResult

__all__ = ["plot_energy_run"]


def plot_energy_run(run: EnergyRunResult, path: str | Path,
                    commits: Sequence[tuple[float, float]] = ()) -> Path:
    """Write the picture of `run` to `path` (PNG); returns the path. `commits`: (time s,
    voltage) of each progress commit, marked on the curve."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    config = run.config
    v_on, v_off = config.supervisor.v_on, config.supervisor.v_off
    times, volts = [0.0], [config.capacitor.v_initial]
    for period in run.periods:
        times += [period.start, period.start + period.on_time]
        volts += [period.v_start, period.v_end]
        if period.off_time:
            times.append(period.start + period.on_time + period.off_time)
            volts.append(v_on)
    scale, unit = _time_unit(max(times[-1], run.elapsed, 1e-9))
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.plot([t * scale for t in times], volts, color="#1f77b4", linewidth=1.2, label="capacitor voltage")
    for i, period in enumerate(run.periods):
        ax.axvspan(period.start * scale, (period.start + period.on_time) * scale, color="#2ca02c", alpha=0.15,
                   linewidth=0, label="MCU on" if i == 0 else None)
    failures = [p for p in run.periods if p.failure_pc is not None]
    ax.scatter([(p.start + p.on_time) * scale for p in failures], [p.v_end for p in failures], marker="x",
               color="#d62728", zorder=3, label=f"power failure ({len(failures)})")
    if commits:
        ax.scatter([t * scale for t, _ in commits], [v for _, v in commits], marker="|", s=60, linewidths=1.0,
                   color="#9467bd", zorder=4, label=f"commit ({len(commits)})")
    ax.axhline(v_on, color="#555555", linestyle="--", linewidth=0.8)
    ax.axhline(v_off, color="#555555", linestyle=":", linewidth=0.8)
    ax.text(0, v_on, f" v_on {v_on:g} V", va="bottom", fontsize=7, color="#555555")
    ax.text(0, v_off, f" v_off {v_off:g} V", va="top", fontsize=7, color="#555555")
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("V")
    ax.set_title(f"{run.result.board}: {run.result.outcome}, {len(run.periods)} power-on period(s), "
                 f"{run.result.instructions:,} instructions", fontsize=9)
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _time_unit(span: float) -> tuple[float, str]:
    for scale, unit in ((1.0, "s"), (1e3, "ms"), (1e6, "µs")):
        if span * scale >= 1:
            return scale, unit
    return 1e9, "ns"

"""A campaign's HTML report: one self-contained page a developer can act on.

The page holds the outcome counts; a plot of every trial's outcome against its injection
point along the golden run, with the functions the failures fell in marked; a table by
function and one by source line; and, for each failure class (same outcome and same
observed output), how often it happened and an `emu run` command that replays one trial.
The plot is an inline SVG drawn by matplotlib, so the page needs nothing else. An
energy-driven campaign (a sweep of power configurations) adds an energy section: each
trial's parameters, outcome, latency, MCU energy and power cycles, and latency and energy
against the trials.

Public name: `write_report`.
"""

from __future__ import annotations

import html
import io
from collections import Counter, defaultdict
from pathlib import Path

from .campaign import OUTCOMES, CampaignResult, Trial, _schedule

__all__ = ["write_report"]

COLOURS = {"correct": "#4c9a2a", "wrong_output": "#d62728", "crash": "#9467bd", "timeout": "#ff7f0e",
           "non_termination": "#8c564b", "starved": "#7f7f7f"}


def write_report(result: CampaignResult, directory: str | Path) -> Path:
    """Write `directory`/index.html for `result`; returns its path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    where = {t.pc: _position(result, t.pc) for t in result.trials}
    page = _PAGE.format(
        title=html.escape(f"{result.firmware.name} on {result.board}"),
        firmware=html.escape(str(result.firmware)), board=html.escape(result.board),
        golden=f"{result.golden_instructions:,}", trials=f"{len(result.trials):,}",
        counts=_counts_table(result), plot=_plot(result, where),
        classes=_classes_table(result), functions=_by_function(result, where), lines=_by_line(result, where),
        energy=_energy_section(result))
    path = out / "index.html"
    path.write_text(page)
    return path


def _position(result: CampaignResult, pc: int) -> tuple[str, str]:
    pos = result.source.lookup(pc) if result.source else None
    function = (pos.function if pos and pos.function else "?")
    line = f"{pos.file}:{pos.line}" if pos and pos.file else "?"
    return function, line


def _counts_table(result: CampaignResult) -> str:
    cells = "".join(f'<tr><td class="{k}">{k}</td><td>{n:,}</td></tr>' for k, n in result.outcomes.items())
    return f'<table id="outcomes"><tr><th>outcome</th><th>trials</th></tr>{cells}</table>'


def _plot(result: CampaignResult, where: dict[int, tuple[str, str]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    trials = sorted(result.trials, key=lambda t: _schedule(t.at))
    fig, ax = plt.subplots(figsize=(11, 3.2))
    rows = {name: i for i, name in enumerate(OUTCOMES)}
    for name in OUTCOMES:
        ks = [_schedule(t.at)[0] for t in trials if t.outcome == name]
        ax.scatter(ks, [rows[name]] * len(ks), s=6, marker="|", color=COLOURS[name], label=f"{name} ({len(ks)})")
    # function boundaries along the golden run, from the trials' PCs (k increasing)
    previous = None
    for t in trials:
        function = where[t.pc][0]
        if function != previous:
            k = _schedule(t.at)[0]
            ax.axvline(k, color="#bbbbbb", linewidth=0.5, zorder=0)
            if any(x.outcome != "correct" and where[x.pc][0] == function for x in trials):
                ax.text(k, len(OUTCOMES) - 0.45, function, rotation=90, fontsize=6, va="top", color="#555555")
            previous = function
    ax.set_yticks(range(len(OUTCOMES)), OUTCOMES)
    ax.set_ylim(-0.6, len(OUTCOMES) - 0.4)
    ax.set_xlim(0, max(result.golden_instructions, 1))
    ax.set_xlabel("power failure after instruction k of the golden run")
    ax.legend(loc="upper right", fontsize=7, ncol=4, frameon=False, bbox_to_anchor=(1, 1.18))
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def _energy_section(result: CampaignResult) -> str:
    """Energy-driven campaigns: a table of the sweep's trials and a plot of their latency
    and energy (empty for instruction-count campaigns)."""
    if result.sweep is None:
        return ""
    trials = sorted(result.trials, key=lambda t: _schedule(t.at))
    names = [name for name, _ in result.sweep.axes]

    def number(value, unit):
        return "-" if value is None else f"{value:.4g} {unit}"

    rows = []
    for t in trials:
        e, params = t.energy or {}, result.sweep.combination(t.at)
        rows.append(f"<tr><td>{t.at}</td>" + "".join(f"<td>{html.escape(params[n])}</td>" for n in names)
                    + f'<td class="{t.outcome}">{t.outcome}</td><td>{number(e.get("latency_s"), "s")}</td>'
                    f'<td>{number(e.get("energy_j"), "J")}</td><td>{e.get("power_cycles", "-")}</td>'
                    f"<td><code>{html.escape(result.reproduce(t))}</code></td></tr>")
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    table = (f'<table id="energy"><tr><th>trial</th>{head}<th>outcome</th><th>latency</th><th>MCU energy</th>'
             f"<th>power cycles</th><th>replay</th></tr>" + "".join(rows) + "</table>")
    return ("<h2>Energy</h2><p>Each trial is one energy-driven run under one combination of the sweep "
            "(docs/energy.md); latency includes recharges.</p>" + _energy_plot(trials) + table)


def _energy_plot(trials: list[Trial]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 2.8))
    for ax, key, label in ((axes[0], "latency_s", "latency (s)"), (axes[1], "energy_j", "MCU energy (J)")):
        xs = [t.at for t in trials]
        ys = [(t.energy or {}).get(key) or 0.0 for t in trials]
        ax.bar(xs, ys, color=[COLOURS.get(t.outcome, "#333333") for t in trials])
        ax.set_xlabel("trial (combination of the sweep)")
        ax.set_ylabel(label)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    svg = buffer.getvalue()
    return '<div id="energy-plot">' + svg[svg.index("<svg"):] + "</div>"


def _classes_table(result: CampaignResult) -> str:
    classes: dict[tuple, list[Trial]] = defaultdict(list)
    for t in result.failures:
        classes[(t.outcome, tuple(sorted(t.observed.items())), t.error)].append(t)
    if not classes:
        return "<p>Every trial was correct.</p>"
    rows = []
    for (outcome, observed, error), trials in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(f"{k} = {v.hex()}" for k, v in observed) or html.escape(error or "")
        first = trials[0]
        rows.append(f'<tr><td class="{outcome}">{outcome}</td><td>{len(trials):,}</td>'
                    f"<td><code>{html.escape(shown[:200])}</code></td>"
                    f"<td><code>{html.escape(result.reproduce(first))}</code></td></tr>")
    expected = ", ".join(f"{k} = {v.hex()}" for k, v in result.expected.items())
    return (f"<p>Expected (golden run): <code>{html.escape(expected[:300])}</code></p>"
            '<table id="classes"><tr><th>outcome</th><th>trials</th><th>observed</th><th>replay one</th></tr>'
            + "".join(rows) + "</table>")


def _by_function(result: CampaignResult, where: dict[int, tuple[str, str]]) -> str:
    counts: dict[str, Counter] = defaultdict(Counter)
    for t in result.trials:
        counts[where[t.pc][0]][t.outcome] += 1
    rows = sorted(counts.items(), key=lambda kv: (-(sum(kv[1].values()) - kv[1]["correct"]), kv[0]))
    body = "".join(f"<tr><td>{html.escape(fn)}</td>" + "".join(f"<td>{c[o]:,}</td>" for o in OUTCOMES) + "</tr>"
                   for fn, c in rows)
    head = "".join(f"<th>{o}</th>" for o in OUTCOMES)
    return f'<table id="functions"><tr><th>function</th>{head}</tr>{body}</table>'


def _by_line(result: CampaignResult, where: dict[int, tuple[str, str]]) -> str:
    failing: dict[tuple[str, str], list[Trial]] = defaultdict(list)
    for t in result.failures:
        failing[where[t.pc]].append(t)
    if not failing:
        return "<p>No failing source line.</p>"
    rows = []
    for (function, line), trials in sorted(failing.items(), key=lambda kv: -len(kv[1])):
        kinds = ", ".join(f"{n} {o}" for o, n in Counter(t.outcome for t in trials).items())
        rows.append(f"<tr><td>{html.escape(line)}</td><td>{html.escape(function)}</td><td>{len(trials):,}</td>"
                    f"<td>{kinds}</td><td><code>{html.escape(result.reproduce(trials[0]))}</code></td></tr>")
    return ('<table id="lines"><tr><th>source line (next instruction)</th><th>function</th><th>failing trials</th>'
            "<th>outcomes</th><th>replay one</th></tr>" + "".join(rows) + "</table>")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Campaign: {title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 2px 8px; text-align: left; font-size: 90%; }}
td.correct {{ color: #4c9a2a; }} td.wrong_output {{ color: #d62728; }}
td.crash {{ color: #9467bd; }} td.timeout {{ color: #ff7f0e; }}
td.non_termination {{ color: #8c564b; }} td.starved {{ color: #7f7f7f; }}
code {{ font-size: 85%; }}
</style></head><body>
<h1>Campaign: {title}</h1>
<p>Firmware <code>{firmware}</code>, board {board}, golden run {golden} instructions, {trials} trials.
A trial at k fails power after exactly k instructions, then runs to the end with power on.</p>
{counts}
{energy}
<h2>Outcome along the golden run</h2>
<div id="plot">{plot}</div>
<h2>Failure classes</h2>
{classes}
<h2>By function (of the instruction that did not run)</h2>
{functions}
<h2>Failing source lines</h2>
{lines}
</body></html>
"""

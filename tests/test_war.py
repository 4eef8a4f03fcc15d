"""emu war and emu explain on the example apps and their broken twins.

Expected hazards come from the apps' sources: each broken twin's comment says which
variables it updates in place (checksum: position and crc; logger: head and total; sort:
the array through memcpy; demo: accumulator and progress) or keeps in SRAM (activity:
histogram). The cross-check runs a campaign and asks `war` to explain every failing point.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import emu
from emu.campaign import Campaign, exhaustive, sample
from emu.cli import main
from emu.explain import explain
from emu.war import DEFAULT_IGNORED, find_hazards

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ("msp430fr5994", "cortex-m4-mram")

# app -> (options, symbols of its injected hazards)
BROKEN = {
    "checksum": ({}, {"crc", "position"}),
    "logger": ({}, {"head", "total"}),
    "sort": ({}, {"app_output"}),
    "activity": ({}, {"histogram"}),
    "demo": ({"commits": ["progress"], "ignore": ["boot_count"], "observe": ["result"]}, {"accumulator"}),
}
CORRECT_OPTIONS = {"demo": {"commits": ["commit_pending"], "ignore": ["boot_count"]}}


def hazards(build_dir, board, name, **options):
    return find_hazards(emu.Machine.from_elf(build_dir / board / f"{name}.elf"), **options)


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("app", sorted(BROKEN))
def test_war_finds_the_injected_hazard_and_nothing_in_the_correct_app(build_dir, board, app):
    options, expected = BROKEN[app]
    broken = hazards(build_dir, board, f"{app}_broken", **options)
    assert broken.outcome == "completed"
    assert {h.symbol for h in broken.hazards} == expected
    for h in broken.hazards:
        assert h.read.file.endswith(f"apps/{app}/main.c") or h.write.file.endswith(f"apps/{app}/main.c")
        assert h.windows and all(a <= b for a, b in h.windows)
    kinds = {h.kind for h in broken.hazards}
    assert kinds == ({"volatile"} if app == "activity" else {"war"})

    correct = hazards(build_dir, board, app, **CORRECT_OPTIONS.get(app, {}))
    assert correct.outcome == "completed"
    assert correct.hazards == [], correct.format_text()
    assert correct.instructions_per_second > 0 and correct.unwatched_instructions == 0


def test_undo_logged_swaps_are_guarded_not_hazards(build_dir):
    report = hazards(build_dir, "cortex-m4-mram", "sort")
    assert "app_output" in {h.symbol for h in report.guarded}
    assert all(h.write.function.startswith("rt_undo_write") for h in report.guarded if h.symbol == "app_output")
    # without trusting the undo log, the in-place writes are hazards again
    bare = hazards(build_dir, "cortex-m4-mram", "sort", trusted=[])
    assert "app_output" in {h.symbol for h in bare.hazards}


def test_the_msp430_cycle_counter_is_not_a_volatile_hazard(build_dir):
    """The timer's overflow count lives in SRAM and restarts with the timer at every boot:
    by design, so not reported (DEFAULT_IGNORED); asked to analyse it, war finds it."""
    report = hazards(build_dir, "msp430fr5994", "dnn_digits")
    assert report.outcome == "completed" and report.hazards == [], report.format_text()
    ignore = [n for n in DEFAULT_IGNORED if n != "board_cycles_high"]
    bare = hazards(build_dir, "msp430fr5994", "dnn_digits", ignore=ignore)
    assert {(h.kind, h.symbol) for h in bare.hazards} == {("volatile", "board_cycles_high")}


# Cortex-M: exhaustive where the golden run is short; MSP430 campaigns are slower: samples.
CROSS_CHECK = [("cortex-m4-mram", "activity", 2000), ("cortex-m4-mram", "demo", None),
               ("cortex-m4-mram", "checksum", 1500), ("cortex-m4-mram", "logger", 1500),
               ("cortex-m4-mram", "sort", 800), ("msp430fr5994", "checksum", 400),
               ("msp430fr5994", "logger", 400), ("msp430fr5994", "activity", 400), ("msp430fr5994", "sort", 300)]


@pytest.mark.parametrize("board,app,samples", CROSS_CHECK)
def test_every_failing_point_lies_in_a_reported_hazard_window(build_dir, board, app, samples):
    elf = build_dir / board / f"{app}_broken.elf"
    campaign = Campaign(emu.Machine.from_elf(elf))
    n = campaign.golden_instructions
    points = exhaustive(n) if samples is None else sample(n, samples, seed=7)
    failing = [t.at for t in campaign.run(points).failures]
    assert failing, "the broken app must fail somewhere"
    report = hazards(build_dir, board, f"{app}_broken", **BROKEN[app][0])
    unexplained = [k for k in failing if not report.explains(k)]
    assert unexplained == []
    # and the windows are not the whole run: some correct points lie outside every window
    assert any(not report.explains(k) for k in points if k not in set(failing))


def broken_only(source: Path) -> tuple[set[int], set[str]]:
    """Line numbers compiled only with -DAPP_BROKEN, and the names declared there."""
    lines, names, state = set(), set(), []
    for number, text in enumerate(source.read_text().splitlines(), 1):
        stripped = text.strip()
        if stripped.startswith("#ifdef APP_BROKEN"):
            state.append(True)
        elif stripped.startswith("#ifndef APP_BROKEN"):
            state.append(False)
        elif stripped.startswith("#if"):
            state.append(None)
        elif stripped.startswith("#else") and state:
            state[-1] = None if state[-1] is None else not state[-1]
        elif stripped.startswith("#endif") and state:
            state.pop()
        elif True in state:
            lines.add(number)
            m = re.match(r"(?:NV\s+)?(?:static\s+)?(?:volatile\s+)?\w+\s+\*?(\w+)\s*[\[;=]", stripped)
            if m:
                names.add(m.group(1))
    return lines, names


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("app", sorted(BROKEN))
def test_explain_names_the_buggy_code(build_dir, board, app):
    options, _ = BROKEN[app]
    elf = build_dir / board / f"{app}_broken.elf"
    campaign = Campaign(emu.Machine.from_elf(elf))
    failing = [t.at for t in campaign.run(sample(campaign.golden_instructions, 200, seed=3)).failures]
    assert failing
    k = failing[len(failing) // 2]
    result = explain(elf, [k], **options)
    assert result.golden_outcome == "completed"
    assert result.differences and result.differences[0].watched  # the output differs, listed first
    lines, names = broken_only(ROOT / "firmware" / "apps" / app / "main.c")
    named_lines = {loc.line for loc in result.locations() if loc.file and loc.file.endswith(f"apps/{app}/main.c")}
    named_symbols = {h.symbol for h in result.hazards}
    assert named_lines & lines or named_symbols & names, result.format_text()
    text = result.format_text()
    assert f"power lost after {k} instructions" in text
    if app != "activity":  # the broken twins that update non-volatile state in place diverge there
        assert result.divergence is not None and result.divergence.boot == 2


def test_explain_of_a_harmless_failure_finds_no_divergence(build_dir):
    elf = build_dir / "cortex-m4-mram" / "checksum.elf"
    result = explain(elf, [3000])
    assert result.outcome == "completed"
    assert [d for d in result.differences if d.watched] == []
    assert result.divergence is None and result.hazards == []


def test_cli_war_and_explain(build_dir, capsys):
    broken = str(build_dir / "cortex-m4-mram" / "checksum_broken.elf")
    assert main(["war", broken, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {h["symbol"] for h in report["hazards"]} == {"crc", "position"}
    assert report["instructions_per_second"] > 0
    assert main(["war", str(build_dir / "cortex-m4-mram" / "checksum.elf")]) == 0
    assert "no write-after-read hazards" in capsys.readouterr().out
    assert main(["war", broken, "--commit", "no_such_symbol"]) == 2
    assert "no_such_symbol" in capsys.readouterr().err

    campaign = Campaign(emu.Machine.from_elf(broken))
    k = campaign.run(sample(campaign.golden_instructions, 100, seed=1)).failures[0].at
    assert main(["explain", broken, "--fail-after", str(k), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fail_after"] == [k] and out["divergence"]["symbol"] == "crc"
    assert main(["explain", broken, "--fail-after", str(k)]) == 0
    assert "first divergence of non-volatile state" in capsys.readouterr().out

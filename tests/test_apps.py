"""Every example app on both boards: its output equals its reference implementation under
continuous power and under power failures at chosen points (first boot, inside a task
commit, inside an undo-logged write, inside recovery after a failure), while its broken
twin gives a wrong result for at least one failure point of a small sweep."""

from __future__ import annotations

import importlib.util
import random
import re
from functools import lru_cache
from pathlib import Path

import pytest

import emu
from emu.campaign import Campaign, golden_trace
from emu.debuginfo import SourceMap
from emu.protocol import last_result

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
APPS = sorted(p.parent.name for p in (FIRMWARE / "apps").glob("*/reference.py"))
BOARDS = ["msp430fr5994", "cortex-m4-mram"]


def reference(app: str):
    spec = importlib.util.spec_from_file_location(f"reference_{app}", FIRMWARE / "apps" / app / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run


def function_lines(path: Path, name: str) -> range:
    """Source lines of C function `name` (its signature to its closing brace)."""
    lines = path.read_text().splitlines()
    start = next(i for i, text in enumerate(lines, 1) if re.match(rf"\w.*\b{name}\(", text) and not text.endswith(";"))
    end = next(i for i, text in enumerate(lines[start:], start + 1) if text == "}")
    return range(start, end + 1)


@lru_cache(maxsize=None)
def chosen_points(elf: Path) -> dict[str, list[int]]:
    """Failure points by kind, from the golden run's PC trace and the line table."""
    m = emu.Machine.from_elf(elf)
    trace = golden_trace(m)
    source = SourceMap.from_elf(elf)
    commit_lines = function_lines(FIRMWARE / "runtime" / "task.c", "commit")
    main = m.resolve_address("main")
    first_main = trace.index(main)
    kinds: dict[str, list[int]] = {"first boot": list(range(1, first_main + 12)), "commit": [], "undo write": []}
    positions = {}
    for k, pc in enumerate(trace[1:], 1):
        if pc not in positions:
            positions[pc] = source.lookup(pc)
        pos = positions[pc]
        if pos.file and pos.file.endswith("runtime/task.c") and pos.line in commit_lines:
            kinds["commit"].append(k)
        elif pos.function == "rt_undo_write":
            kinds["undo write"].append(k)
    return {kind: thin(points, 40) for kind, points in kinds.items()}


def thin(points: list[int], most: int) -> list[int]:
    step = max(1, len(points) // most)
    return points[::step]


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("app", APPS)
def test_continuous_power_matches_reference(build_dir, app, board):
    m = emu.Machine.from_elf(build_dir / board / f"{app}.elf")
    expected = reference(app)(m.image.flashed_bytes("app_input"))
    r = m.run()
    assert r.outcome == "completed" and r.waiting_for_input
    assert m.read_symbol("app_output") == expected
    assert last_result(r.uart).output == expected  # the same bytes through RESULT


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("app", APPS)
def test_failures_at_chosen_points_keep_the_result(build_dir, app, board):
    elf = build_dir / board / f"{app}.elf"
    m = emu.Machine.from_elf(elf)
    expected = reference(app)(m.image.flashed_bytes("app_input"))
    campaign = Campaign(m, observe=["app_output"])
    assert campaign.expected == {"app_output": expected}
    points = chosen_points(elf)
    assert points["commit"], "no task commit found in the golden run"
    for kind, ks in points.items():
        result = campaign.run(ks)
        assert result.all_correct, f"{kind}: {result.summary()}"


@pytest.mark.parametrize("board", BOARDS)
def test_failure_inside_recovery_of_an_undo_log(build_dir, board):
    """Fail inside an undo-logged write (a log is in force), then again inside the
    rollback at the next boot: the result is still right."""
    elf = build_dir / board / "sort.elf"
    m = emu.Machine.from_elf(elf)
    expected = reference("sort")(m.image.flashed_bytes("app_input"))
    recover = m.resolve_address("rt_undo_recover")
    recover_end = recover + m.image.symbol("rt_undo_recover").size
    tried = 0
    for k1 in chosen_points(elf)["undo write"][5:40:7]:
        m.reset()
        m.step(k1)
        m.power_fail()
        m.power_on()
        boot = [m.engine.pc]
        for _ in range(3000):  # the next boot up to the end of the rollback
            m.step(1)
            boot.append(m.engine.pc)
        in_recovery = [k for k, pc in enumerate(boot) if recover <= pc < recover_end]
        for k2 in in_recovery[::3]:
            m.reset()
            r = m.run(fail_after=[k1, k2])
            assert r.outcome == "completed", (k1, k2, r.error)
            assert m.read_symbol("app_output") == expected, (k1, k2)
            tried += 1
    assert tried >= 20


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("app", APPS)
def test_broken_twin_fails_somewhere_in_a_small_sweep(build_dir, app, board):
    """A sweep over failure points in the app's own code (where its bug is) finds a
    wrong result."""
    elf = build_dir / board / f"{app}_broken.elf"
    m = emu.Machine.from_elf(elf)
    expected = reference(app)(m.image.flashed_bytes("app_input"))
    campaign = Campaign(m, observe=["app_output"])
    assert campaign.expected == {"app_output": expected}  # right without failures
    source = SourceMap.from_elf(elf)
    trace = golden_trace(m)
    in_app = {pc for pc in set(trace) if (source.lookup(pc).file or "").endswith(f"apps/{app}/main.c")}
    points = [k for k, pc in enumerate(trace) if k and pc in in_app]
    result = campaign.run(random.Random(1).sample(points, min(1000, len(points))))
    assert result.outcomes["wrong_output"] + result.outcomes["timeout"] + result.outcomes["crash"] > 0


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("app", APPS + ["demo"])
def test_correct_app_passes_exhaustive_and_double_campaigns(build_dir, app, board):
    """Every single failure point, and failures inside the recovery after a first one."""
    from emu.campaign import CampaignSpec, Strategy, execute, exhaustive

    spec = CampaignSpec(build_dir / board / f"{app}.elf")
    campaign = spec.campaign()
    n = campaign.golden_instructions
    single = execute(campaign, spec, exhaustive(n), workers=2, progress=False)
    assert len(single.trials) == n - 1
    single.assert_all_correct()
    twice = execute(campaign, spec, Strategy.parse("double:300").points(campaign, seed=5), workers=2,
                    progress=False)  # as emu campaign --double 300
    assert len(twice.trials) == 300
    twice.assert_all_correct()

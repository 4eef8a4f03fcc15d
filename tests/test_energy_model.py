"""The intermittent-aware performance model (emu/power/model.py) against energy-driven
emulation (the independent reference), the runtime's commits on energy runs
(emu/power/commits.py) and energy-driven campaigns (sweeps, emu/campaign.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import emu
from emu.campaign import Sweep, _shifted
from emu.cli import main
from emu.errors import EmuError
from emu.power import TraceHarvester, power_config, run_energy
from emu.power.commits import commit_times, replay_commits
from emu.power.model import (CALIBRATION_MODELS, calibrate_task_costs, compare, load_costs, load_task_costs,
                             predict, profile_from_costs)

ROOT = Path(__file__).resolve().parent.parent
BOARDS = ("msp430fr5994", "cortex-m4-mram")
MODELS = ("digits", "digits_exits", "allops")
# per board, three power configurations under which every shipped model completes, over
# several power cycles where the jobs allow (docs/energy.md has the table)
CONFIGS = {
    "msp430fr5994": {
        "1mW, 4.7uF, 2.8/1.9 V": dict(harvester="const:1mW", capacitance="4.7uF", v_on="2.8", v_off="1.9"),
        "square 20ms 50% 2mW, 2.2uF, 3.0/1.8 V": dict(harvester="square:20ms,0.5,2mW", capacitance="2.2uF",
                                                     v_on="3.0", v_off="1.8"),
        "0.5mW, 3.3uF, 3.0/1.8 V": dict(harvester="const:0.5mW", capacitance="3.3uF", v_on="3.0", v_off="1.8"),
    },
    "cortex-m4-mram": {
        "1mW, 47uF, 2.8/1.9 V": dict(harvester="const:1mW", capacitance="47uF", v_on="2.8", v_off="1.9"),
        "square 20ms 50% 2mW, 22uF, 2.8/2.0 V": dict(harvester="square:20ms,0.5,2mW", capacitance="22uF",
                                                    v_on="2.8", v_off="2.0"),
        "0.5mW, 22uF, 3.0/1.8 V": dict(harvester="const:0.5mW", capacitance="22uF", v_on="3.0", v_off="1.8"),
    },
}


def elf(build_dir, board, model):
    path = build_dir / board / f"dnn_{model}.elf"
    if not path.exists():
        pytest.skip(f"{path} not built")
    return path


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("model", MODELS)
def test_prediction_matches_emulation(build_dir, board, model):
    """The prediction from the cost report's per-task operation counts and the board's
    calibrated costs (no emulation of this firmware): latency and energy within 10 % of
    the energy-driven emulation (the target; the independent reference), same outcome
    and number of power cycles within one, for three power configurations per board."""
    path = elf(build_dir, board, model)
    costs = load_costs(path)
    profile = profile_from_costs(costs, load_task_costs(board), str(path))
    assert len(profile.units) == costs["paths"]["final"]["commits"]
    assert sum(u.preserved_bytes for u in profile.units) == costs["paths"]["final"]["nv_write_bytes"]
    for name, options in CONFIGS[board].items():
        c = compare(lambda: emu.Machine.from_elf(path), power_config(**options), profile)
        p, e = c.prediction, c.emulation
        assert e.outcome == "completed" and p.outcome == "completed", name
        assert p.fits
        assert abs(c.errors()["latency"]) < 0.10, (name, c.table())
        assert abs(c.errors()["energy"]) < 0.10, (name, c.table())
        assert abs(p.power_cycles - len(e.periods)) <= 1, (name, c.table())


@pytest.mark.parametrize("board", BOARDS)
def test_task_costs_are_the_calibration_models(build_dir, board):
    """The stored per-operation costs (emu/power/task_costs.json) are what the calibration
    models built now give (rerun `python -m emu.power.model calibrate build` when the
    firmware changes), and they explain their own tasks closely (root mean square of the
    tasks' relative errors under 3 %, none over 20 %)."""
    paths = [build_dir / board / f"dnn_{name}.elf" for name in CALIBRATION_MODELS]
    fresh, stored = calibrate_task_costs(paths), load_task_costs(board)
    assert (fresh.start, fresh.finish, fresh.recovery) == (stored.start, stored.finish, stored.recovery)
    assert fresh.per_op == pytest.approx(stored.per_op, abs=1e-3)
    assert fresh.calibration == stored.calibration
    assert fresh.calibration["rms_task_error"] < 0.03 and fresh.calibration["max_task_error"] < 0.2
    assert not set(fresh.calibration["models"]) & set(MODELS)  # fitted apart from the models it predicts
    with pytest.raises(EmuError, match="not a calibration model"):
        calibrate_task_costs([build_dir / board / "dnn_digits.elf"])


def test_task_operation_counts(build_dir):
    """The generator's counts for the first task of digits' conv stage, by hand: 16 output
    elements of an 8 x 6 x 6 map from one input channel, 3 x 3 kernels: 48 kernel rows, 144
    products, after elements 5 and 11 the window moves to the next row (2), no channel
    change; shift 7: 112 shift steps. Its dense stage: one task of 10 x 72 products."""
    stages = load_costs(elf(build_dir, "msp430fr5994", "digits"))["stages"]
    assert stages[0]["shift"] == 7
    assert stages[0]["tasks"][0] == {"conv.tasks": 1, "conv.elements": 16, "conv.rows": 48, "conv.macs": 144,
                                     "conv.row_wraps": 2, "conv.channel_wraps": 0, "shift_steps": 112}
    assert stages[2]["tasks"] == [{"dense.tasks": 1, "dense.elements": 10, "dense.macs": 720,
                                   "shift_steps": 70, "stage_ends": 1}]
    assert sum(t["maxpool2.elements"] for t in stages[1]["tasks"]) == 72


def test_cost_model_refuses_what_it_does_not_cover():
    """A stage under a non-default design has no operation counts, and a kernel the
    calibration models do not run (the exit pooling) has no cost: clear errors that point
    to --profile, rather than a guess."""
    from firmware.dnn import Design, costs, load_quantized, plan

    _, qm = load_quantized(ROOT / "firmware" / "models" / "digits")
    stages = plan(qm)
    report = costs(qm, stages, 16, [Design("spatial", (0, 2, 2), stage_input=True), Design(), Design()])
    assert report["stages"][0]["tasks"] is None and report["stages"][1]["tasks"] is not None
    task_costs = load_task_costs("msp430fr5994")
    with pytest.raises(EmuError, match="non-default design.*--profile"):
        profile_from_costs(report, task_costs)
    with pytest.raises(EmuError, match="exitpool.adds.*--profile"):
        task_costs.unit({"exitpool.tasks": 1, "exitpool.adds": 16})
    with pytest.raises(EmuError, match="no task costs for board"):
        load_task_costs("pdp11")


def test_unit_that_does_not_fit_is_predicted(build_dir):
    """MSP430 digits: the dense layer is one unit of about 7,800 instructions (720 MACs on
    the MPY32); 0.68 uF between 3.3 and 1.8 V hold fewer (about 5,800 with the
    harvester's help, see below) but a conv task (about 4,200) fits, so the model says
    non_termination at that last unit, as the emulation finds."""
    path = elf(build_dir, "msp430fr5994", "digits")
    config = power_config(harvester="const:200uW", capacitance="0.68uF", v_on="3.3", v_off="1.8")
    profile = profile_from_costs(load_costs(path), load_task_costs("msp430fr5994"), str(path))
    p = predict(profile, config)
    assert p.outcome == "non_termination" and not p.fits
    assert p.failing_unit == len(profile.units)  # work index: the job's start, then the units
    assert p.budget < p.largest_unit
    mcu = config.profile("msp430fr5994")
    # C dV/dt = P / V - I (harvested power in, constant active current out): the time from
    # v_on to v_off is C/I [(v_on - v_off) + P/I ln((I v_on - P) / (I v_off - P))]
    c, i, power = 0.68e-6, mcu.active_current, 200e-6
    t = c / i * ((3.3 - 1.8) + power / i * math.log((i * 3.3 - power) / (i * 1.8 - power)))
    assert p.budget == math.floor(t / mcu.instruction_time)
    assert run_energy(emu.Machine.from_elf(path), config).outcome == "non_termination"


@pytest.mark.parametrize("board", BOARDS)
def test_commit_times_on_an_energy_run(build_dir, board):
    """The replay finds one commit per task of the cost report plus the job's start, each
    inside a power-on period, with the capacitor between v_off and v_on, in time order;
    the replay retires as many instructions as the run."""
    path = elf(build_dir, board, "digits")
    config = power_config(harvester="const:1mW", capacitance="4.7uF", v_on="2.8", v_off="1.9")
    run = run_energy(emu.Machine.from_elf(path), config)
    assert run.outcome == "completed" and len(run.periods) > 2
    machine = emu.Machine.from_elf(path)
    commits = commit_times(machine, run)
    assert machine.instructions == run.result.instructions
    assert len(commits) == load_costs(path)["total"]["commits"] + 1
    times = [t for t, _ in commits]
    assert times == sorted(times)
    for t, v in commits:
        assert any(p.start <= t <= p.start + p.on_time for p in run.periods)
        assert 1.9 - 1e-9 <= v <= 2.8 + 1e-9


def test_replay_needs_a_fresh_machine(build_dir):
    path = elf(build_dir, "cortex-m4-mram", "digits")
    m = emu.Machine.from_elf(path)
    m.run()
    with pytest.raises(EmuError, match="not run yet"):
        replay_commits(m, [])


def test_sweep_parsing():
    base = power_config(harvester="const:1mW", capacitance="10uF", v_on="2.8", v_off="1.9")
    s = Sweep.parse(base, ["capacitance=1uF,10uF,47uF", "harvester=square:20ms,0.5,2mW;const:1mW"],
                    (("--harvester", "const:1mW"), ("--capacitor", "10uF")))
    assert len(s) == 6 and s.points() == list(range(6))
    assert s.combination(0) == {"capacitance": "1uF", "harvester": "square:20ms,0.5,2mW"}
    assert s.combination(3) == {"capacitance": "10uF", "harvester": "const:1mW"}
    assert s.config(5).capacitor.capacitance == pytest.approx(47e-6)
    assert s.config(2).harvester.power == pytest.approx(2e-3) and s.config(2).supervisor.v_off == 1.9
    assert s.flags(0) == "--harvester 'square:20ms,0.5,2mW' --capacitor 1uF"
    for bad, message in (("volume=1,2", "NAME="), ("capacitance=1uF,,2uF", "empty"),
                         ("capacitance=1uW", "capacitance")):
        with pytest.raises(EmuError, match=message):
            Sweep.parse(base, [bad])
    with pytest.raises(EmuError, match="twice"):
        Sweep.parse(base, ["v_on=3", "v-on=3.1"])
    with pytest.raises(EmuError, match="trace harvester"):
        Sweep.parse(base, ["offset=1s"])


def test_trace_offset():
    """A trace of 1 s samples 0, 1, 2, 3 mW started 1.5 s in: 1 mW for 0.5 s, then 2 and
    3 mW; looping, then 0 and 1 mW (the first 1.5 s) follow."""
    trace = TraceHarvester(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1e-3, 2e-3, 3e-3]), "t.csv")
    def pieces(h, n):  # (start, end, power), adjacent segments of equal power merged
        out = []
        for g in map(h.segment, range(n)):
            if out and out[-1][2] == g.power:
                out[-1] = (out[-1][0], g.end, g.power)
            else:
                out.append((g.start, g.end, g.power))
        return out

    s = _shifted(trace, 1.5)
    assert pieces(s, 5) == [(0.0, 0.5, 1e-3), (0.5, 1.5, 2e-3), (1.5, 2.5, 3e-3), (2.5, math.inf, 0.0)]
    looped = _shifted(TraceHarvester(trace.times, trace.power, "t.csv", loop=True), 1.5)
    assert pieces(looped, 7) == [(0.0, 0.5, 1e-3), (0.5, 1.5, 2e-3), (1.5, 2.5, 3e-3), (2.5, 3.5, 0.0),
                                 (3.5, 4.5, 1e-3)]  # 1 mW again from 4.0: the next loop's start
    assert looped.duration == pytest.approx(4.0)
    with pytest.raises(EmuError, match="outside"):
        _shifted(trace, 4.0)


def test_energy_campaign_cli(build_dir, tmp_path, capsys):
    """Six energy-driven trials: the 1 uF capacitor cannot hold a conv task of the
    Cortex-M4 (about 2,500 instructions, 1 uF * 0.9 V * 3 V / 0.49 nJ + MRAM... fewer than
    that), so non_termination; 10 and 47 uF complete with the golden run's RESULT. JSON,
    result store and the report's energy section."""
    path = elf(build_dir, "cortex-m4-mram", "digits")
    store, report = tmp_path / "r.jsonl", tmp_path / "report"
    code = main([
        "campaign", str(path), "--harvester", "const:1mW", "--capacitor", "10uF", "--v-on", "2.8", "--v-off", "1.9",
        "--sweep", "capacitance=1uF,10uF,47uF", "--sweep", "harvester=const:0.5mW;square:20ms,0.5,2mW",
        "--results", str(store), "--report", str(report), "--workers", "1", "--json"])
    data = json.loads(capsys.readouterr().out.splitlines()[0])
    assert code == 1
    assert data["trials"] == 6
    assert data["outcomes"]["correct"] == 4 and data["outcomes"]["non_termination"] == 2
    trials = data["sweep"]["trials"]
    assert [t["outcome"] for t in trials] == ["non_termination"] * 2 + ["correct"] * 4
    assert all(t["latency_s"] > 0 for t in trials[2:]) and all(t["latency_s"] is None for t in trials[:2])
    assert trials[2]["power_cycles"] > trials[4]["power_cycles"]  # a larger capacitor: fewer cycles
    assert "--capacitor 1uF" in data["failures"][0]["reproduce"]
    lines = store.read_text().splitlines()
    assert len(lines) == 7 and json.loads(lines[1])["energy"]["power_cycles"] >= 1
    page = (report / "index.html").read_text()
    assert '<table id="energy">' in page and "non_termination" in page


def test_energy_campaign_rejects_power_without_sweep(build_dir, capsys):
    path = elf(build_dir, "cortex-m4-mram", "digits")
    assert main(["campaign", str(path), "--sample", "3", "--harvester", "const:1mW", "--capacitor", "1uF",
                 "--v-on", "2.8", "--v-off", "1.9"]) == 2
    assert "add --sweep" in capsys.readouterr().err
    assert main(["campaign", str(path), "--sweep", "capacitance=1uF"]) == 2
    assert "power configuration" in capsys.readouterr().err


def test_model_cli(build_dir, capsys):
    board = "cortex-m4-mram"
    path = elf(build_dir, board, "digits")
    args = ["model", str(path), "--harvester", "const:1mW", "--capacitor", "10uF", "--v-on", "2.8", "--v-off", "1.9"]
    assert main(args + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prediction"]["outcome"] == data["emulation"]["outcome"] == "completed"
    assert abs(data["relative_error"]["latency"]) < 0.10
    assert main(args) == 0
    assert "prediction" in capsys.readouterr().out
    assert main(args + ["--profile", "--json"]) == 0  # unit costs from an emulation of this firmware
    data = json.loads(capsys.readouterr().out)
    assert data["profile"]["units"] == load_costs(path)["paths"]["final"]["commits"]
    assert abs(data["relative_error"]["latency"]) < 0.10
    assert main(["model", str(path)]) == 2
    assert main(["model", str(build_dir / board / "sort.elf")] + args[2:]) == 2  # no cost report
    assert "--profile" in capsys.readouterr().err

"""The intermittent-aware performance model (emu/power/model.py) against energy-driven
emulation (the independent reference), the runtime's commits on energy runs
(emu/power/commits.py) and energy-driven campaigns (sweeps, emu/campaign.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import emu
from emu.campaign import EnergyCampaign, Sweep, _shifted
from emu.cli import main
from emu.errors import EmuError
from emu.power import TraceHarvester, power_config, run_energy
from emu.power.commits import commit_times, replay_commits
from emu.power.model import compare, load_costs, predict, profile_firmware

BOARDS = ("msp430fr5994", "cortex-m4-mram")
MODELS = ("digits", "digits_exits", "allops")
# three power configurations under which every shipped model completes on both boards
CONFIGS = {
    "1mW, 47uF, 2.8/1.9 V": dict(harvester="const:1mW", capacitance="47uF", v_on="2.8", v_off="1.9"),
    "square 20ms 50% 2mW, 22uF, 2.8/2.0 V": dict(harvester="square:20ms,0.5,2mW", capacitance="22uF",
                                                v_on="2.8", v_off="2.0"),
    "0.5mW, 22uF, 3.0/1.8 V": dict(harvester="const:0.5mW", capacitance="22uF", v_on="3.0", v_off="1.8"),
}


def elf(build_dir, board, model):
    path = build_dir / board / f"dnn_{model}.elf"
    if not path.exists():
        pytest.skip(f"{path} not built")
    return path


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("model", MODELS)
def test_prediction_matches_emulation(build_dir, board, model):
    """Latency and energy within 10 % of the emulation (the target), same outcome and
    number of power cycles within one, for three power configurations; the profile's
    units are the cost report's commits (plus the job's start)."""
    path = elf(build_dir, board, model)
    costs = load_costs(path)
    profile = profile_firmware(lambda: emu.Machine.from_elf(path), costs, str(path))
    assert len(profile.units) == costs["paths"]["final"]["commits"]
    assert sum(u.preserved_bytes for u in profile.units) == costs["paths"]["final"]["nv_write_bytes"]
    for name, options in CONFIGS.items():
        c = compare(lambda: emu.Machine.from_elf(path), power_config(**options), profile)
        p, e = c.prediction, c.emulation
        assert e.outcome == "completed" and p.outcome == "completed", name
        assert p.fits
        assert abs(c.errors()["latency"]) < 0.10, (name, c.table())
        assert abs(c.errors()["energy"]) < 0.10, (name, c.table())
        assert abs(p.power_cycles - len(e.periods)) <= 1, (name, c.table())


def test_unit_that_does_not_fit_is_predicted(build_dir):
    """MSP430 digits: the dense layer is one unit of about 83,000 instructions (720 MACs
    through the software multiply); 2 uF between 3.3 and 1.8 V hold far fewer
    (about C (3.3 - 1.8) V * 3 V / 0.58 nJ ~ 15,500 from the capacitor alone, about 17,000
    with the harvester's help), so the model says non_termination at that unit, as the
    emulation finds."""
    path = elf(build_dir, "msp430fr5994", "digits")
    config = power_config(harvester="const:200uW", capacitance="2uF", v_on="3.3", v_off="1.8")
    profile = profile_firmware(lambda: emu.Machine.from_elf(path), load_costs(path), str(path))
    p = predict(profile, config)
    assert p.outcome == "non_termination" and not p.fits
    assert p.budget < p.largest_unit
    mcu = config.profile("msp430fr5994")
    # C dV/dt = P / V - I (harvested power in, constant active current out): the time from
    # v_on to v_off is C/I [(v_on - v_off) + P/I ln((I v_on - P) / (I v_off - P))]
    c, i, power = 2e-6, mcu.active_current, 200e-6
    t = c / i * ((3.3 - 1.8) + power / i * math.log((i * 3.3 - power) / (i * 1.8 - power)))
    assert p.budget == math.floor(t / mcu.instruction_time)
    assert run_energy(emu.Machine.from_elf(path), config).outcome == "non_termination"


@pytest.mark.parametrize("board", BOARDS)
def test_commit_times_on_an_energy_run(build_dir, board):
    """The replay finds one commit per task of the cost report plus the job's start, each
    inside a power-on period, with the capacitor between v_off and v_on, in time order;
    the replay retires as many instructions as the run."""
    path = elf(build_dir, board, "digits")
    config = power_config(harvester="const:1mW", capacitance="10uF", v_on="2.8", v_off="1.9")
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
    path = elf(build_dir, "cortex-m4-mram", "digits")
    args = ["model", str(path), "--harvester", "const:1mW", "--capacitor", "10uF", "--v-on", "2.8", "--v-off", "1.9"]
    assert main(args + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prediction"]["outcome"] == data["emulation"]["outcome"] == "completed"
    assert abs(data["relative_error"]["latency"]) < 0.10
    assert main(args) == 0
    assert "prediction" in capsys.readouterr().out
    assert main(["model", str(path)]) == 2

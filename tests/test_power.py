"""Energy-driven runs (emu.power): models, config format, exact failure points, forward
progress. Expected values are computed by hand in the tests from 1/2 C V^2 and the
instruction time, never taken from the code under test."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

import emu
from emu.errors import EmuError
from emu.power import (ConstantPower, Dynamics, SquareWave, TraceHarvester, load_power_config, parse_harvester,
                       parse_quantity, power_config, power_config_from_dict, run_energy)
from emu.power.cpi import estimate_cpi
from emu.protocol import last_result

BOARDS = ("msp430fr5994", "cortex-m4-mram")


@pytest.fixture(scope="module")
def elf(request):
    """Path of an example app: elf(board, app). EMU_POWER_BUILD=DIR uses an existing build."""
    build = os.environ.get("EMU_POWER_BUILD")
    root = Path(build) if build else request.getfixturevalue("build_dir")

    def path(board: str, app: str) -> Path:
        p = root / board / f"{app}.elf"
        assert p.exists(), f"{p} was not built"
        return p

    return path


# -- quantities and config -----------------------------------------------------------------------
@pytest.mark.parametrize("text, unit, value", [
    ("100uF", "F", 100e-6), ("100u", "F", 100e-6), ("2.8", "V", 2.8), ("2.8V", "V", 2.8), ("1mW", "W", 1e-3),
    ("10ms", "s", 0.01), ("10MOhm", "Ohm", 10e6), ("4.7nF", "F", 4.7e-9), ("1e-3", "W", 1e-3), (3, "V", 3.0),
    ("8MHz", "Hz", 8e6), ("70nJ", "J", 70e-9), ("2 mA", "A", 2e-3), ("1µF", "F", 1e-6),
])
def test_parse_quantity(text, unit, value):
    assert parse_quantity(text, unit) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text, unit", [("100uW", "F"), ("abc", "V"), ("1mF2", "F"), ("", "W"), ("1xF", "F")])
def test_parse_quantity_errors_name_value_and_form(text, unit):
    with pytest.raises(EmuError) as exc:
        parse_quantity(text, unit)
    assert repr(text) in str(exc.value) and "such as" in str(exc.value)


def test_parse_harvester_forms(tmp_path):
    assert parse_harvester("const:1mW") == ConstantPower(1e-3)
    assert parse_harvester("current:2mA").current == pytest.approx(2e-3)
    assert parse_harvester("square:100ms,25%,3mW") == SquareWave(0.1, 0.25, 3e-3)
    (tmp_path / "t.csv").write_text("time,power\n0,1e-3\n0.5,0\n")
    h = parse_harvester("trace:t.csv,loop", base_dir=tmp_path)
    assert isinstance(h, TraceHarvester) and h.loop and h.samples == 2 and h.duration == 1.0
    for bad, needle in [("1mW", "const:POWER"), ("wind:3W", "unknown harvester kind"),
                        ("square:1s,0.5", "square:PERIOD,DUTY,POWER"), ("const:1mA", "'1mA'"),
                        ("square:1s,1.5,1mW", "between 0 and 1"), ("trace:/nonexistent.csv", "not found")]:
        with pytest.raises(EmuError) as exc:
            parse_harvester(bad)
        assert needle in str(exc.value)


def test_toml_config(tmp_path):
    (tmp_path / "sun.csv").write_text("# time [s], voltage [V], current [A]\n0,2.0,1e-3\n1,2.0,0\n2,2.0,5e-4\n")
    path = tmp_path / "power.toml"
    path.write_text('''
[harvester]
kind = "trace"
file = "sun.csv"
loop = true

[capacitor]
capacitance = "47uF"
leakage = "10MOhm"
v_initial = 1.0

[supervisor]
v_on = "2.8V"
v_off = 1.8

[regulator]
efficiency = "85%"

[mcu]
current_per_mhz = "100uA"
cpi = 2

[run]
max_time = "10s"
stall_cycles = 4
''')
    c = load_power_config(path)
    assert c.capacitor.capacitance == pytest.approx(47e-6) and c.capacitor.leakage_resistance == pytest.approx(10e6)
    assert c.capacitor.leakage_current == 0 and c.capacitor.v_initial == 1.0
    assert (c.supervisor.v_on, c.supervisor.v_off) == (2.8, 1.8)
    assert c.regulator.efficiency == pytest.approx(0.85) and c.max_time == 10.0 and c.stall_cycles == 4
    assert c.harvester.loop and list(c.harvester.power) == [2e-3, 0.0, 1e-3]
    profile = c.profile("msp430fr5994")
    assert profile.current_per_hz == pytest.approx(100e-12) and profile.cpi == 2
    # the flag strings override the file
    c2 = power_config(harvester="const:1mW", v_off="2.0", base=c)
    assert c2.harvester == ConstantPower(1e-3) and c2.supervisor.v_off == 2.0 and c2.capacitor == c.capacitor
    json.dumps(c.to_json())


@pytest.mark.parametrize("doc, needle", [
    ({"harvester": "const:1mW", "capacitor": {"capacitance": "1uF", "colour": 1}, "supervisor": {"v_on": 3, "v_off": 2}},
     "unknown setting(s) colour in [capacitor]"),
    ({"harvester": "const:1mW", "capacitor": {"capacitance": "1uF"}}, "lacks the [supervisor] section"),
    ({"harvester": "const:1mW", "capacitor": {}, "supervisor": {"v_on": 3, "v_off": 2}}, "lacks capacitance"),
    ({"harvester": "const:1mW", "capacitor": {"capacitance": "1uF"}, "supervisor": {"v_on": 2, "v_off": 3}},
     "v_on > v_off"),
    ({"harvester": {"kind": "square", "period": "1s"}, "capacitor": {"capacitance": "1uF"},
      "supervisor": {"v_on": 3, "v_off": 2}}, "lacks duty"),
    ({"harvester": "const:1mW", "capacitor": {"capacitance": "1uF", "leakage": "5"},
      "supervisor": {"v_on": 3, "v_off": 2}}, "1uA"),
    ({"weather": {}}, "unknown section(s) weather"),
])
def test_config_errors(doc, needle):
    with pytest.raises(EmuError) as exc:
        power_config_from_dict(doc, source="p.toml")
    assert needle in str(exc.value)


def test_missing_settings_name_the_flags():
    with pytest.raises(EmuError) as exc:
        power_config(harvester="const:1mW")
    assert "--capacitor" in str(exc.value) and "--v-on" in str(exc.value) and "--power CONFIG" in str(exc.value)


# -- the circuit ---------------------------------------------------------------------------------
def test_dynamics_closed_forms_by_hand():
    C = 100e-6
    # constant net power: T = 1/2 C (V1^2 - V0^2) / P
    assert Dynamics(C, 1e-3, 0.0).time(0.0, 2.8) == pytest.approx(0.5 * C * 2.8 ** 2 / 1e-3, rel=1e-14)
    assert Dynamics(C, -2e-3, 0.0).time(2.8, 1.8) == pytest.approx(0.5 * C * (2.8 ** 2 - 1.8 ** 2) / 2e-3, rel=1e-14)
    # constant current: T = C dV / I
    assert Dynamics(C, 0.0, -1e-3).time(2.8, 1.8) == pytest.approx(C * 1.0 / 1e-3, rel=1e-14)
    # power in, current out: equilibrium at V = P / I = 2 V: 2.8 -> 1.8 impossible, 2.8 -> 2.1 possible
    d = Dynamics(C, 2e-3, -1e-3)
    assert d.equilibria() == [2.0] and d.time(2.8, 1.8) == math.inf
    t = d.time(2.8, 2.1)
    exact = C * ((2.1 - 2.8) / -1e-3 - 2e-3 / 1e-6 * math.log((2e-3 - 1e-3 * 2.1) / (2e-3 - 1e-3 * 2.8)))
    assert t == pytest.approx(exact, rel=1e-12)
    assert d.voltage_after(2.8, t, 2.0) == pytest.approx(2.1, rel=1e-12)
    # a tiny resistive leakage (quadrature) agrees with the closed form without it
    for a, b in [(1e-3, -1e-7), (1e-3, -2e-4), (-3e-3, 0.0), (0.0, -1e-3)]:
        v0, v1 = (0.5, 2.8) if a > 0 else (2.8, 1.8)
        closed, quad = Dynamics(C, a, b).time(v0, v1), Dynamics(C, a, b, 1e-15).time(v0, v1)
        assert quad == pytest.approx(closed, rel=1e-9)


def custom_config(harvester: str, capacitance: float, *, efficiency=0.8, **mcu) -> "emu.power.PowerConfig":
    """A config whose MCU figures the test states itself (no default profile involved)."""
    mcu = {"frequency": 8e6, "current_per_mhz": 100e-6, "cpi": 2.0, "v_supply": 3.0, "nv_write_energy": 0.0,
           **mcu}
    doc = {"harvester": harvester, "capacitor": {"capacitance": capacitance},
           "supervisor": {"v_on": 2.8, "v_off": 1.8}, "mcu": mcu}
    if efficiency is not None:
        doc["regulator"] = {"efficiency": efficiency, "v_out": 3.0}
    return power_config_from_dict(doc)


@pytest.mark.parametrize("board", BOARDS)
def test_constant_power_periods_to_the_instruction(elf, board):
    C, P_h = (0.173e-6 if board == "msp430fr5994" else 0.123e-6), 1e-3
    config = custom_config("const:1mW", C)
    t_i = 2.0 / 8e6  # cpi / f
    P_load = 3.0 * (100e-6 * 8) / 0.8  # v_out * I_active / efficiency = 3 mW
    window = 0.5 * C * (2.8 ** 2 - 1.8 ** 2)  # energy between v_on and v_off
    t_on = window / (P_load - P_h)
    t_off = window / P_h
    t_first = 0.5 * C * 2.8 ** 2 / P_h  # charging from 0 V
    k = math.floor(t_on / t_i)
    m = emu.Machine.from_elf(elf(board, "demo"))
    golden = m.run()
    m.reset()
    r = run_energy(m, config)
    assert r.outcome == "completed"
    assert r.result.power_cycles[:-1] == [k] * (len(r.periods) - 1) and len(r.periods) >= 3
    assert r.initial_charge_time == pytest.approx(t_first, rel=1e-12)
    for i, p in enumerate(r.periods[:-1]):
        assert p.start == pytest.approx(t_first + i * (t_on + t_off), rel=1e-12)
        assert p.on_time == pytest.approx(t_on, rel=1e-12) and p.off_time == pytest.approx(t_off, rel=1e-12)
        assert p.v_end == pytest.approx(1.8, rel=1e-12) and p.v_start == 2.8
        assert p.energy == pytest.approx(k * t_i * 3.0 * 800e-6, rel=1e-12)
    last = r.periods[-1]
    assert last.on_time == pytest.approx(last.instructions * t_i, rel=1e-12)
    assert r.latency == pytest.approx(last.start + last.on_time, rel=1e-12)
    # the last period's final voltage, from energy conservation
    assert 0.5 * C * last.v_end ** 2 == pytest.approx(0.5 * C * 2.8 ** 2 - (P_load - P_h) * last.on_time, rel=1e-9)
    assert m.read_symbol("result") == (5050).to_bytes(4, "little") == golden.reads.get("result", b"\xba\x13\x00\x00")
    assert r.result.uart.endswith(b"sum=5050\n")


def square_trace_rows(period: float, duty: float, power: float, count: int) -> list[tuple[float, float]]:
    rows = []
    for n in range(count):
        rows.append((n * period, power))
        rows.append((n * period + duty * period, 0.0))
    return rows


def test_square_wave_failures_at_known_times(elf, tmp_path):
    # 4 mW for 2 ms of every 5 ms; the MCU needs 3 mW: it runs while the sun shines and
    # for a known time after, then waits for the next high phase
    C, T, duty, P_h = 0.5e-6, 2e-3, 0.4, 4e-3
    config = custom_config(f"square:{T}s,{duty},{P_h}W", C, frequency=4e6, cpi=1.0)
    t_i = 1.0 / 4e6
    P_load = 3.0 * (100e-6 * 4) / 0.8  # 1.5 mW
    window = 0.5 * C * (2.8 ** 2 - 1.8 ** 2)
    t_first = 0.5 * C * 2.8 ** 2 / P_h
    t_charge = window / P_h  # from v_off at the start of a high phase
    t_drain = window / P_load  # from v_on (clamped there while the sun shines) in the dark
    assert t_first < duty * T and t_charge < duty * T and t_drain < (1 - duty) * T
    m = emu.Machine.from_elf(elf("cortex-m4-mram", "checksum"))
    r = run_energy(m, config)
    assert r.outcome == "completed" and len(r.periods) >= 3
    for n, p in enumerate(r.periods[:-1]):
        start = t_first if n == 0 else n * T + t_charge
        failure = n * T + duty * T + t_drain
        assert p.start == pytest.approx(start, rel=1e-12, abs=1e-15)
        assert p.start + p.on_time == pytest.approx(failure, rel=1e-12)
        assert p.instructions == math.floor((failure - start) / t_i)
    # the same shape as a CSV trace gives the same run
    rows = square_trace_rows(T, duty, P_h, 40)
    (tmp_path / "square.csv").write_text("time,power\n" + "".join(f"{t!r},{p!r}\n" for t, p in rows))
    m.reset()
    r2 = run_energy(m, custom_config(f"trace:{tmp_path / 'square.csv'}", C, frequency=4e6, cpi=1.0))
    assert [p.to_json() for p in r2.periods] == [p.to_json() for p in r.periods]
    assert r2.result.to_json() == r.result.to_json()


def shepherd_data(samples: int = 400):
    """Raw Shepherd-style samples: 10 us steps, a solar-like ramp with a cloud."""
    time_ns = (np.arange(samples, dtype=np.uint64) * np.uint64(10_000))
    v_raw = (2000 + (np.arange(samples) % 50) * 20).astype(np.uint32)
    i_raw = np.where((np.arange(samples) // 100) % 2 == 0, 4000, 300).astype(np.uint32)
    gains = {"voltage": (1e-3, 0.0), "current": (1e-7, 1e-6)}
    return time_ns, v_raw, i_raw, gains


def test_csv_and_shepherd_hdf5_traces_give_identical_runs(elf, tmp_path):
    h5py = pytest.importorskip("h5py")
    time_ns, v_raw, i_raw, gains = shepherd_data()
    with h5py.File(tmp_path / "rec.h5", "w") as f:
        f.attrs["mode"] = "harvester"
        data = f.create_group("data")
        data.create_dataset("time", data=time_ns)
        for name, raw in (("voltage", v_raw), ("current", i_raw)):
            ds = data.create_dataset(name, data=raw)
            ds.attrs["gain"], ds.attrs["offset"] = gains[name]
    seconds = time_ns.astype(np.float64) / 1e9
    volts = v_raw.astype(np.float64) * gains["voltage"][0] + gains["voltage"][1]
    amps = i_raw.astype(np.float64) * gains["current"][0] + gains["current"][1]
    (tmp_path / "rec.csv").write_text("time,voltage,current\n" + "".join(
        f"{t!r},{v!r},{i!r}\n" for t, v, i in zip(seconds.tolist(), volts.tolist(), amps.tolist())))
    runs = []
    for name in ("rec.h5", "rec.csv"):
        config = custom_config(f"trace:{tmp_path / name},loop", 0.15e-6, frequency=4e6, cpi=1.0)
        m = emu.Machine.from_elf(elf("cortex-m4-mram", "checksum"))
        runs.append(run_energy(m, config).to_json())
    assert runs[0]["outcome"] == "completed" and len(runs[0]["energy"]["periods"]) > 2
    runs[0]["energy"]["config"]["harvester"].pop("file")
    runs[1]["energy"]["config"]["harvester"].pop("file")
    assert runs[0] == runs[1]


def test_trace_end_without_loop_starves(elf, tmp_path):
    (tmp_path / "short.csv").write_text("0,1e-3\n0.0005,1e-3\n")
    config = custom_config(f"trace:{tmp_path / 'short.csv'}", 1e-6)
    r = run_energy(emu.Machine.from_elf(elf("cortex-m4-mram", "checksum")), config)
    assert r.outcome == "starved" and "v_on" in r.result.error and r.latency is None


def test_weak_harvester_with_leakage_starves(elf):
    # 1 uW into a capacitor leaking 1 uA: the voltage settles at P / I = 1 V < v_on
    config = power_config(harvester="const:1uW", capacitance="10uF", v_on="2.8", v_off="1.8", leakage="1uA")
    r = run_energy(emu.Machine.from_elf(elf("msp430fr5994", "demo")), config)
    assert r.outcome == "starved" and r.periods == [] and r.result.instructions == 0
    assert "settles at 1 V" in r.result.error


def test_deterministic(elf):
    config = power_config(harvester="square:3ms,0.3,2mW", capacitance="0.3uF", v_on="2.8", v_off="1.8",
                          leakage="1uA")
    outs = []
    for _ in range(2):
        m = emu.Machine.from_elf(elf("msp430fr5994", "checksum"), seed=7)
        outs.append(json.dumps(run_energy(m, config).to_json(), sort_keys=True))
    assert outs[0] == outs[1]


# -- real firmware ---------------------------------------------------------------------------------
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("app", ["demo", "checksum"])
def test_firmware_result_equals_continuous_power(elf, board, app):
    m = emu.Machine.from_elf(elf(board, app))
    golden = m.run()
    expected = m.read_symbol("result" if app == "demo" else "app_output")
    m.reset()
    capacitance = {"demo": {"msp430fr5994": "60nF", "cortex-m4-mram": "0.5uF"},
                   "checksum": {"msp430fr5994": "1.2uF", "cortex-m4-mram": "1.8uF"}}[app][board]
    config = power_config(harvester="const:1mW", capacitance=capacitance, v_on="2.8", v_off="1.8", leakage="0.5uA")
    r = run_energy(m, config)
    assert r.outcome == "completed" and r.result.power_failures >= 2
    assert m.read_symbol("result" if app == "demo" else "app_output") == expected
    if app == "checksum":
        got, want = last_result(r.result.uart), last_result(golden.uart)
        assert (got.output, got.exit) == (want.output, want.exit)
    else:
        assert r.result.uart.endswith(golden.uart)
    assert r.result.instructions > golden.instructions
    assert r.latency > r.on_time > golden.instructions * r.mcu.instruction_time * 0.999
    assert r.failure_voltages == [pytest.approx(1.8, rel=1e-12)] * r.result.power_failures


@pytest.mark.parametrize("board", BOARDS)
def test_non_termination_identical_state(elf, board):
    # 1 nF: a power cycle ends inside the startup code: nothing non-volatile ever changes
    config = power_config(harvester="const:1mW", capacitance="1nF", v_on="2.8", v_off="1.8")
    r = run_energy(emu.Machine.from_elf(elf(board, "demo")), config)
    assert r.outcome == "non_termination" and "no forward progress" in r.result.error
    unit = r.repeated_unit
    assert unit.evidence == "identical" and unit.changing_nv == []
    assert r.result.power_cycles == [unit.instructions] * len(r.periods) and len(r.periods) == 4
    assert unit.pc_min <= unit.entry_pc <= unit.pc_max and unit.pc_min <= unit.failure_pc <= unit.pc_max
    assert r.to_json()["energy"]["repeated_unit"]["instructions"] == unit.instructions


@pytest.mark.parametrize("board", BOARDS)
def test_non_termination_with_a_boot_counter(elf, board):
    # each cycle gets past `boot_count++` but never to the commit of a step: only the boot
    # counter changes, and perturbing it changes nothing else
    config = power_config(harvester="const:1mW", capacitance="3nF" if board == "msp430fr5994" else "15nF",
                          v_on="2.8", v_off="1.8")
    m = emu.Machine.from_elf(elf(board, "demo"))
    r = run_energy(m, config)
    assert r.outcome == "non_termination"
    unit = r.repeated_unit
    assert unit.evidence == "perturbation" and [c["symbol"] for c in unit.changing_nv] == ["boot_count"]
    assert "main" in unit.functions and m.read_symbol("progress") == bytes(2)


@pytest.mark.parametrize("board, capacitance", [("msp430fr5994", "30nF"), ("cortex-m4-mram", "60nF")])
def test_progress_then_stuck_printing(elf, board, capacitance):
    # every short cycle commits a step of demo (the same bytes change each time: boot_count,
    # progress, accumulator, the redo log) - that is progress, not a livelock; after the
    # 100 steps, printing "sum=5050" takes more than one cycle's energy: a livelock
    config = power_config(harvester="const:1mW", capacitance=capacitance, v_on="2.8", v_off="1.8")
    m = emu.Machine.from_elf(elf(board, "demo"))
    r = run_energy(m, config)
    assert r.outcome == "non_termination" and r.result.power_failures > 10
    assert m.read_symbol("progress") == (100).to_bytes(2, "little")
    assert m.read_symbol("result") == (5050).to_bytes(4, "little")
    unit = r.repeated_unit
    assert "main" in unit.functions and any(f.startswith("uart_") for f in unit.functions)
    assert unit.evidence == "perturbation"
    assert not r.result.uart.endswith(b"sum=5050\n")


def test_cpi_estimate_counts_cycles(elf):
    m = emu.Machine.from_elf(elf("msp430fr5994", "demo"))
    golden = m.run()
    m.reset()
    e = estimate_cpi(m)
    assert e.instructions == golden.instructions and 1.0 < e.cpi < 6.0 and e.nv_writes > 100


def test_plot_draws_the_run(build_dir, tmp_path):
    """`emu run ... --plot FILE` writes a PNG with one red failure mark per power failure."""
    import json
    import subprocess
    import sys

    import matplotlib.image

    png = tmp_path / "run.png"
    out = subprocess.run([sys.executable, "-m", "emu", "run", str(build_dir / "cortex-m4-mram" / "checksum.elf"),
                          "--harvester", "const:300uW", "--capacitor", "2.2uF", "--v-on", "2.8", "--v-off", "1.9",
                          "--plot", str(png), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    failures = json.loads(out.stdout)["power_failures"]
    assert failures >= 3
    pixels = matplotlib.image.imread(png)
    red = (pixels[..., 0] > 0.75) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)
    assert red.sum() > 10 * failures
    bad = subprocess.run([sys.executable, "-m", "emu", "run", str(build_dir / "cortex-m4-mram" / "checksum.elf"),
                          "--plot", str(png)], capture_output=True, text=True)
    assert bad.returncode == 2 and "--plot draws an energy-driven run" in bad.stderr

"""The virtual rack end to end: `hil run` on examples/rack-virtual.yaml (emulated boards on
pseudo-terminals, powered by simulated Rigol DP832 and Korad KA3005P supplies through the
real supply drivers), power schedules and traces, a board whose port vanishes, an
interrupted run, the host protocol under line noise, and rack-file validation.

Expected outputs are the vectors' own (from each app's independent reference) and, as a
second reference, what the emulator gives for the same vectors (`emu.vectors.run_vector`).
"""

from __future__ import annotations

import gc
import json
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emu.host import Host
from emu.protocol import FrameDecoder
from emu.vectors import Vector, find_vectors, run_vector
from hil.console import SerialConsole
from hil.errors import RackError
from hil.rack import load_rack, parse_rack
from hil.runner import PowerPlan, Reporter, run_rack
from hil.sim import simulate
from hil.virtual import LineNoise, VirtualBoard, couple

ROOT = Path(__file__).resolve().parents[2]
RACK = ROOT / "examples" / "rack-virtual.yaml"


def hil(*args, **kw):
    return subprocess.run([sys.executable, "-m", "hil", *args], capture_output=True, text=True,
                          cwd=ROOT, **kw)


def virtual_rack(tmp_path, build_dir, *boards, **top):
    data = {"build": str(build_dir), "defaults": {"off_time_ms": 20, "host_timeout_s": 0.3,
                                                  "result_timeout_s": 20}, "boards": list(boards),
            **top}
    return parse_rack(data, tmp_path / "rack.yaml")


def vboard(name, type_="msp430fr5994", model="rigol-dp832", **extra):
    return {"name": name, "type": type_, "clock_hz": 100_000, "virtual": extra.pop("virtual", True),
            "power": {"supply": {"model": model, "simulated": True}, "voltage": 3.3,
                      "current_limit": 0.1}, **extra}


def test_hil_run_on_the_virtual_rack_gives_the_emulators_outputs(build_dir, tmp_path):
    m4 = build_dir / "vectors" / "cortex-m4-mram" / "checksum"
    dirs = [build_dir / "vectors" / "msp430fr5994" / "checksum", m4 / "default-failures",
            m4 / "random-1"]
    junit = tmp_path / "junit.xml"
    done = hil("run", "--rack", str(RACK), *map(str, dirs), "--json", "--junit", str(junit))
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    vectors = {str(v.path): v for d in dirs for v in find_vectors(d)}
    assert sorted(r["vector"] for r in records) == sorted(vectors)
    for r in records:
        v = vectors[r["vector"]]
        emu_run = run_vector(v, v.elf(build_dir), via="uart")
        assert r["outcome"] == "passed", r
        assert bytes.fromhex(r["output"]) == emu_run.output == v.expected_output
        assert r["exit"] == emu_run.exit == v.exit
        # the rack board for each type, and the schedule applied as power cycles
        assert r["board"] == {"msp430fr5994": "fr5994-rigol", "cortex-m4-mram": "m4-korad"}[v.board]
        failures = len(v.schedule or ())
        assert r["power_cycles"] == failures and r["boots"] == failures, r
        # the job's cycles: without failures on the Cortex-M (no interrupts) exactly the
        # emulator's. (The rack fails power by the clock, not at the vector's instruction
        # counts, and MSP430 Timer_A0 overflows fall where the host's pace puts them.)
        assert r["cycles"] > 0, r
        if not failures and v.board == "cortex-m4-mram":
            assert r["cycles"] == emu_run.cycles, r
    suites = ET.parse(junit).getroot()
    assert suites.get("tests") == "7" and suites.get("failures") == "0" and suites.get("errors") == "0"
    assert {s.get("name") for s in suites} == {"fr5994-rigol", "m4-korad"}
    assert "hil: 7 passed, 0 failed, 0 errors" in done.stderr
    # emu.Machine holds reference cycles and icicle VMs must be freed by the thread that made
    # them: collect this thread's machines here, not in a later test's board thread.
    gc.collect()


def test_wrong_firmware_output_is_a_failure_exit_1(build_dir, tmp_path):
    v = Vector.read(build_dir / "vectors" / "msp430fr5994" / "sort" / "random-1")
    wrong = Vector(v.name, v.firmware, v.board, v.input, bytes(len(v.expected_output)), v.exit,
                   None).write(tmp_path / "vectors")
    done = hil("run", "--rack", str(RACK), str(wrong), "--boards", "fr5994-rigol")
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("FAILED fr5994-rigol: sort/random-1")
    assert f"expected {bytes(len(v.expected_output)).hex()} exit 255" in done.stdout


def with_power(vector: Vector, directory: Path, power: dict) -> Vector:
    path = vector.write(directory)
    meta = json.loads((path / "vector.json").read_text())
    (path / "vector.json").write_text(json.dumps({**meta, "power": power}))
    return Vector.read(path)


def test_power_plans_in_milliseconds_and_as_a_supply_trace(build_dir, tmp_path):
    # checksum on the MSP430 takes ~50,000 instructions: 0.5 s at the rack's 100 kHz.
    v = Vector.read(build_dir / "vectors" / "msp430fr5994" / "checksum" / "random-2")
    on_off = with_power(v, tmp_path / "a", {"on_ms": [40, 60], "off_ms": [10, 30]})
    # The supply drops to 1.2 V (below the MSP430's 1.8 V minimum) and back: one reboot;
    # a dip to 2.5 V is no failure.
    trace = with_power(v, tmp_path / "b", {"trace": [[50, 1.2], [80, 3.3], [150, 2.5], [180, 3.3]]})
    assert PowerPlan.for_vector(on_off, 100_000, 0.02).cycles == ((0.04, 0.01), (0.06, 0.03))
    assert PowerPlan.for_vector(v, 8_000_000, 0.1) == PowerPlan()
    config = virtual_rack(tmp_path, build_dir, vboard("a"))
    outcomes = run_rack(config, [on_off, trace], reporter=Reporter())
    by_dir = {Path(o.vector).parent.name: o for o in outcomes}
    assert by_dir["a"].passed and by_dir["a"].power_cycles == 2 and by_dir["a"].boots == 2
    assert by_dir["b"].passed and by_dir["b"].power_cycles == 0 and by_dir["b"].boots == 1


def test_a_board_whose_port_vanishes_is_reported_and_the_others_go_on(build_dir, tmp_path):
    config = virtual_rack(tmp_path, build_dir, vboard("lost", console={"reopen_timeout_s": 0.5}),
                          vboard("fine", model="korad-ka3005p"))
    vectors = list(find_vectors(build_dir / "vectors" / "msp430fr5994" / "sort"))

    class PullCable(Reporter):
        def add(self, outcome):
            super().add(outcome)
            if outcome.board == "lost" and len([o for o in self.outcomes if o.board == "lost"]) == 1:
                session.virtual["lost"].unplug()

    with config.session() as session:
        outcomes = run_rack(config, vectors, reporter=PullCable(), session=session)
    lost = [o for o in outcomes if o.board == "lost"]
    fine = [o for o in outcomes if o.board == "fine"]
    assert [o.outcome for o in fine] == ["passed"] * 5, [o.error for o in fine]
    assert lost[0].outcome == "passed" and len(lost) == 5
    assert all(o.outcome == "error" and "console failed" in o.error and "lost" in o.error
               and "did not appear within 0.5 s" in o.error for o in lost[1:])


def test_an_interrupted_run_keeps_the_finished_results(build_dir, tmp_path):
    junit, out = tmp_path / "junit.xml", tmp_path / "out.jsonl"
    with out.open("w") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "hil", "run", "--rack", str(RACK),
                                 str(build_dir / "vectors" / "msp430fr5994" / "sort"), "--json",
                                 "--junit", str(junit), "--repeat", "10"],
                                stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        deadline = time.monotonic() + 30
        while out.read_text().count("\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted; the finished vectors are reported" in err and "Traceback" not in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert 2 <= len(records) < 50 and all(r["outcome"] == "passed" for r in records)
    cases = ET.parse(junit).getroot().findall("./testsuite/testcase")
    assert len(cases) == len(records)


def test_the_host_protocol_never_accepts_a_corrupt_frame_on_a_noisy_line(build_dir, tmp_path):
    noise = LineNoise(corrupt=0.002, drop=0.001, duplicate=0.001, seed=7)
    board = VirtualBoard("noisy", "cortex-m4-mram", tmp_path, noise=noise, record=True)
    sim = simulate("rigol-dp832")
    try:
        couple(board, sim, 1)
        board.flash(build_dir / "cortex-m4-mram" / "checksum.elf")
        sim.device.channels[1].voltage = 3.3
        sim.device.channels[1].on = True
        accepted = []
        with SerialConsole(board.port) as console:
            host = Host(console, timeout=0.2, retries=20)
            feed = host.decoder.feed
            host.decoder.feed = lambda data: _record(feed, data, accepted)
            vectors = list(find_vectors(build_dir / "vectors" / "cortex-m4-mram" / "checksum"))
            for v in vectors * 3:
                assert host.run_job(v.input).output == v.expected_output
            status = host.status()
        sent = {(f.type, f.seq, f.body) for f in FrameDecoder().feed(bytes(board.sent))}
        assert accepted and all((f.type, f.seq, f.body) in sent for f in accepted)
        assert host.decoder.dropped > 0 and status.dropped > 0
    finally:
        board.close()
        sim.close()


def _record(feed, data, accepted):
    frames = feed(data)
    accepted.extend(frames)
    return frames


BAD_RACKS = [
    ({}, "boards: missing", "list the boards"),
    ({"boards": [{"name": "a", "type": "msp430"}]}, "boards[0].type: unknown board type 'msp430'",
     "use one of msp430fr5994, cortex-m4-mram"),
    ({"boards": [vboard("a"), vboard("a")]}, "boards[1].name: 'a' is used twice", "unique"),
    ({"boards": [{**vboard("a"), "power": {"supply": {"model": "rigol"}, "voltage": 3.3}}]},
     "boards[0].power.supply.model: unknown supply model 'rigol'", "use one of keysight-e36312a"),
    ({"boards": [{**vboard("a"), "virtual": None,
                  "power": {"supply": {"model": "rigol-dp832"}, "voltage": 3.3}}]},
     "boards[0].power.supply.resource: missing", "VISA resource string"),
    ({"boards": [{**vboard("a"), "colck_hz": 5}]}, "boards[0]: unknown key(s) colck_hz",
     "known keys here:"),
    ({"boards": [{**vboard("a"), "clock_hz": -5}]}, "boards[0].clock_hz: must be > 0", ""),
    ({"boards": [{**vboard("a"), "power": {"supply": {"model": "rigol-dp832", "simulated": True},
                                           "voltage": "3.3V"}}]},
     "boards[0].power.voltage: must be a number, not '3.3V'", "e.g. 3.3"),
    ({"boards": [{"name": "r", "type": "cortex-m4-mram", "console": {"port": "/dev/ttyACM0"},
                  "power": {"supply": {"model": "ppk2", "resource": "/dev/ttyACM1"}, "voltage": 3.3},
                  "flasher": {"kind": "pyocd"}}]},
     "boards[0].flasher.target: missing", ""),
    ({"boards": [{**vboard("a"), "flasher": {"kind": "mspdebug"}}]},
     "boards[0].flasher: a virtual board is flashed by loading the ELF", "remove the flasher"),
    ({"boards": [{**vboard("a"), "virtual": {"noise": {"drop": 2}}}]},
     "boards[0].virtual.noise.drop: must be a probability between 0 and 1", ""),
]


@pytest.mark.parametrize("data,where,fix", BAD_RACKS)
def test_rack_validation_names_the_key_and_the_fix(tmp_path, data, where, fix):
    with pytest.raises(RackError) as e:
        parse_rack(data, tmp_path / "rack.yaml")
    message = str(e.value)
    assert message.startswith(f"{tmp_path / 'rack.yaml'}: {where}"), message
    assert fix in message


def test_examples_are_valid_and_bad_input_exits_2(tmp_path):
    real = load_rack(ROOT / "examples" / "rack-real.yaml")
    assert [b.power.supply.model for b in real.boards] == [
        "keysight-e36312a", "rigol-dp832", "korad-ka3005p", "siglent-spd3303x", "ppk2",
        "keysight-e3631a"]
    assert {b.flasher.kind for b in real.boards} == {"mspdebug", "bsl", "pyocd"}
    virtual = load_rack(RACK)
    assert all(b.virtual is not None and b.build == ROOT / "build" for b in virtual.boards)
    bad = tmp_path / "rack.yaml"
    bad.write_text("boards:\n  - name: a\n    type: msp430fr5994\n    virtual: yes\n")
    done = hil("run", "--rack", str(bad), str(ROOT / "build" / "vectors"))
    assert done.returncode == 2
    assert done.stderr == (f"hil: error: {bad}: boards[0].power: missing. say which supply "
                           f"channel powers the board: power: {{supply: {{model: ..., resource: "
                           f"...}}, voltage: 3.3}}\n")
    bad.write_text("boards: [\n")
    assert "not valid YAML" in hil("run", "--rack", str(bad), str(tmp_path)).stderr
    done = hil("run", "--rack", str(RACK), str(tmp_path))
    assert done.returncode == 2 and "no test vectors" in done.stderr
    done = hil("run", "--rack", str(RACK), "--boards", "nope", str(ROOT / "build" / "vectors"))
    assert done.returncode == 2 and "no board named 'nope'" in done.stderr

"""Test vectors: every generated vector passes on the emulator both through the UART
protocol and by writing the input into non-volatile memory, and the two agree."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import emu
from emu.errors import EmuError
from emu.protocol import last_result
from emu.vectors import Vector, find_vectors, run_vector


def test_every_vector_passes_both_ways(build_dir):
    vectors = list(find_vectors(build_dir / "vectors"))
    apps = {(v.board, v.firmware) for v in vectors}
    assert len(apps) >= 8 and len(vectors) == 5 * len(apps)
    machines = {}
    for v in vectors:
        m = machines.setdefault((v.board, v.firmware), emu.Machine.from_elf(v.elf(build_dir), v.board))
        by_memory = run_vector(v, v.elf(build_dir), via="memory", machine=m)
        by_uart = run_vector(v, v.elf(build_dir), via="uart", machine=m)
        assert by_memory.passed and by_uart.passed, (v.board, v.firmware, v.name)
        assert by_memory.output == by_uart.output and by_memory.exit == by_uart.exit
        if v.schedule:
            assert by_memory.run.power_failures >= 2  # the schedule may outlast a short run


def test_a_broken_twin_fails_the_vector_under_some_power_schedule(build_dir):
    v = Vector.read(build_dir / "vectors" / "msp430fr5994" / "checksum" / "default")
    broken = build_dir / "msp430fr5994" / "checksum_broken.elf"
    m = emu.Machine.from_elf(broken)
    assert run_vector(v, broken, machine=m).passed  # no failures: right
    for k in range(500, 20000, 97):  # a small sweep of single failures
        failing = Vector(v.name, v.firmware, v.board, v.input, v.expected_output, schedule=(k,))
        if not run_vector(failing, broken, machine=m).passed:
            break
    else:
        pytest.fail("the broken twin passed every schedule of the sweep")
    assert run_vector(failing, v.elf(build_dir)).passed  # the correct app does not fail there


def test_round_trip_and_clear_errors(tmp_path):
    v = Vector("x", "checksum", "msp430fr5994", b"\x01\x02", b"\x03", schedule=(5, 6))
    assert Vector.read(v.write(tmp_path)) == v
    (tmp_path / "x" / "input.bin").unlink()
    with pytest.raises(EmuError, match="input.bin is missing"):
        Vector.read(tmp_path / "x")
    v.write(tmp_path)
    meta = json.loads((tmp_path / "x" / "vector.json").read_text())
    meta["schedule"] = [-1]
    (tmp_path / "x" / "vector.json").write_text(json.dumps(meta))
    with pytest.raises(EmuError, match="schedule must be a list of instruction counts"):
        Vector.read(tmp_path / "x")


def test_campaign_on_a_vector_and_its_reproducer(build_dir, tmp_path):
    vector = build_dir / "vectors" / "cortex-m4-mram" / "logger" / "random-2"
    base = [sys.executable, "-m", "emu", "campaign", "--vector", str(vector), "--sample", "300", "--seed", "5",
            "--results", str(tmp_path / "r.jsonl"), "--json"]
    good = subprocess.run(base[:4] + [str(build_dir / "cortex-m4-mram" / "logger.elf")] + base[4:],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
    bad = subprocess.run(base[:4] + [str(build_dir / "cortex-m4-mram" / "logger_broken.elf")] + base[4:],
                         capture_output=True, text=True)
    assert bad.returncode == 1, bad.stderr
    first = json.loads(bad.stdout)["failures"][0]
    expected = Vector.read(vector).expected_output
    assert first["expected"]["result"] == expected.hex() != first["observed"]["result"]
    assert f"--vector {vector}" in first["reproduce"]
    replay = subprocess.run([sys.executable, "-m", "emu", *first["reproduce"].split()[1:], "--json"],
                            capture_output=True, text=True)
    assert last_result(bytes.fromhex(json.loads(replay.stdout)["uart"])).output.hex() == first["observed"]["result"]
    # a vector whose expectation the firmware does not meet under continuous power
    wrong = Vector.read(vector)
    wrong = Vector("wrong", wrong.firmware, wrong.board, wrong.input, bytes(len(wrong.expected_output)))
    out = subprocess.run(base[:4] + [str(build_dir / "cortex-m4-mram" / "logger.elf"), "--vector",
                                     str(wrong.write(tmp_path)), "--sample", "5"], capture_output=True, text=True)
    assert out.returncode == 2 and "does not give vector wrong's expected output" in out.stderr

"""`emu run` front end: exit codes, one-line errors, JSON shape. Runs the real emulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests import asm

pytestmark = pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")

PROGRAM = """
    .section .text,"ax"
    .globl _start
_start:
    mov #7, &nv_word          ; 1
    mov #0xBEEF, r5           ; 2
1:  jmp 1b                    ; completion: not executed, not counted
    .section .nv,"aw"
    .globl nv_word
    .type nv_word, @object
    .size nv_word, 2
nv_word: .word 0
    .section .vectors,"ax"
    .word _start
"""


def emu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True, text=True)


@pytest.fixture
def program(tmp_path):
    return asm.msp430(tmp_path, PROGRAM)


def test_json_has_exactly_the_documented_keys(program):
    r = emu("run", str(program), "--json", "--read", "nv_word")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"board", "outcome", "instructions", "power_cycles", "power_failures", "stop_pc",
                        "uart", "reads", "error", "waiting_for_input"}
    assert out["board"] == "msp430fr5994"  # from the ELF machine
    assert out["outcome"] == "completed"
    assert out["instructions"] == 2
    assert out["power_cycles"] == [2]
    assert out["reads"] == {"nv_word": "0700"}
    assert out["error"] is None


def test_human_summary(program):
    r = emu("run", str(program), "--fail-after", "1", "--read", "nv_word:2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("completed: 3 instructions on msp430fr5994, 1 power failure(s)")
    assert "nv_word = 0700" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/fw.elf"], "firmware file not found"),
    (["--read", "no_such_symbol"], "unknown symbol 'no_such_symbol'"),
    (["--until", "no_such_symbol"], "unknown symbol 'no_such_symbol'"),
    (["--board", "cortex-m4-mram"], "does not match board cortex-m4-mram"),
    (["--volatile-init", "bogus"], "invalid choice"),
    (["--fail-after", "3,-1"], "expected K1,K2"),
])
def test_input_errors_exit_2_with_one_line(program, args, message):
    argv = ["run"] + ([] if args[0].startswith("/") else [str(program)]) + args
    r = emu(*argv)
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2  # argparse adds a usage line; ours is one line
    assert "Traceback" not in r.stderr


def test_not_an_elf(tmp_path):
    f = tmp_path / "fw.elf"
    f.write_text("hello")
    r = emu("run", str(f))
    assert r.returncode == 2 and "not a valid ELF" in r.stderr and "Traceback" not in r.stderr


def test_unsupported_machine():
    r = emu("run", os.path.realpath(sys.executable))  # an x86/ARM host ELF
    assert r.returncode == 2 and "not supported" in r.stderr


def test_segment_outside_board_memory(tmp_path):
    script = asm.MSP430_LD.replace("ORIGIN = 0x4400", "ORIGIN = 0x1000")  # 0x1000 is unmapped
    elf = asm.msp430(tmp_path, PROGRAM, script=script)
    r = emu("run", str(elf))
    assert r.returncode == 2
    assert "outside the board's memory at 0x1000" in r.stderr


def test_crash_and_timeout_exit_1(tmp_path):
    crash = asm.msp430(tmp_path, """
    .section .text,"ax"
_start:
    mov &0x1000, r5           ; unmapped: crash on the first instruction
1:  jmp 1b
    .section .vectors,"ax"
    .word _start
""", name="crash")
    r = emu("run", str(crash), "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 1
    assert out["outcome"] == "crash" and out["instructions"] == 0 and out["stop_pc"] == 0x4400
    assert "0x1000" in out["error"]
    spin = asm.msp430(tmp_path, """
    .section .text,"ax"
_start:
1:  nop
    jmp 1b
    .section .vectors,"ax"
    .word _start
""", name="spin")
    r = emu("run", str(spin), "--json", "--max-instructions", "1001")
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["outcome"] == "timeout" and out["instructions"] == 1001

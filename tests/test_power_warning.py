"""The power-warning interrupt under energy-driven runs, and the just-in-time checkpoint
it drives (tests/firmware/jit_warn: MSP430 Comparator_E, STM32 PVD via EXTI line 16).

Expected instruction counts come from the circuit solved by hand: with a constant-current
harvester I_h and the MCU's constant current I (no regulator) the capacitor falls
linearly, C dV/dt = I_h - I, so it passes v_warn after t_w = C (v_on - v_warn) / (I - I_h)
and the CPU sees the comparator edge at the first instruction boundary at or after t_w:
A = ceil(t_w / t_instr); the brown-out comes after K = floor(C (v_on - v_off) / (I - I_h) /
t_instr) instructions. The correct result of the computation is its continuous-power run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

import emu
from emu.power import ConstantCurrent, board_profile, power_config, run_energy
from emu.power.warning import PeriodSupply

BOARDS = ["msp430fr5994", "cortex-m4-mram"]
CONST = dict(harvester="const:100uW", capacitance="10uF", v_on="2.8", v_off="1.9")


def _elf(build_dir, board):
    return build_dir / "test-apps" / board / "jit_warn.elf"


@pytest.fixture(scope="module")
def golden(build_dir):
    out = {}
    for board in BOARDS:
        r = emu.Machine.from_elf(_elf(build_dir, board), observe=["result"]).run()
        assert r.outcome == "completed"
        out[board] = r
    return out


@pytest.mark.parametrize("board", BOARDS)
def test_warning_fires_at_the_hand_computed_instruction(build_dir, board):
    mcu = board_profile(board)
    i_load, t = mcu.active_current, mcu.instruction_time
    i_h = i_load / 4
    cap, v_on, v_off, v_warn = 10e-6, 2.8, 1.9, 2.3
    config = power_config(harvester=ConstantCurrent(i_h), capacitance=cap, v_on=v_on, v_off=v_off, v_warn=v_warn)
    a = math.ceil(cap * (v_on - v_warn) / (i_load - i_h) / t)
    k = math.floor(cap * (v_on - v_off) / (i_load - i_h) / t)
    assert 1000 < a < k

    r = run_energy(emu.Machine.from_elf(_elf(build_dir, board)), config, max_instructions=20 * k)
    first = r.periods[0]
    assert abs(first.warning - a) <= 1 and first.instructions in (k, k - 1)  # float rounding at most
    a, k = first.warning, first.instructions

    # the interrupt is accepted exactly at boundary A: not before, and before instruction A + 1
    m = emu.Machine.from_elf(_elf(build_dir, board))
    circuit = config.circuit(board)
    on, _ = circuit.evolve(circuit.start(), running=False)
    m.supply = PeriodSupply(circuit, on, t, v_warn)
    assert m.supply.falls_below(v_warn) == a
    m.step(a)
    assert m.interrupts_taken == 0 and m.period_instructions == a
    handler = m.resolve_address("comp_e_isr" if board == "msp430fr5994" else "PVD_PVM_IRQHandler")
    m.step(1)
    assert m.interrupts_taken == 1 and m.period_instructions == a + 1
    assert handler <= m.engine.pc < handler + 16  # the handler's first instruction has run


@pytest.mark.parametrize("board", BOARDS)
def test_jit_checkpoint_from_the_warning_completes_under_energy_failures(build_dir, golden, board):
    m = emu.Machine.from_elf(_elf(build_dir, board), observe=["result", "warnings"])
    r = run_energy(m, power_config(v_warn="2.2", **CONST), max_instructions=20 * golden[board].instructions)
    assert r.outcome == "completed", r.result.error
    assert r.result.reads["result"] == golden[board].reads["result"]
    failures = r.result.power_failures
    assert failures >= 20  # the computation needs many power cycles
    warnings = int.from_bytes(r.result.reads["warnings"], "little")
    assert warnings >= failures and m.interrupts_taken == warnings  # one checkpoint per period
    assert all(p.warning is not None for p in r.periods if p.failure_pc is not None)


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("v_warn", [None, "1.5"], ids=["no-warning", "below-v-off"])
def test_without_a_usable_warning_the_computation_makes_no_progress(build_dir, board, v_warn):
    m = emu.Machine.from_elf(_elf(build_dir, board), observe=["result", "warnings"])
    r = run_energy(m, power_config(v_warn=v_warn, **CONST), max_instructions=5_000_000)
    assert r.outcome == "non_termination"
    assert r.result.reads["result"] == bytes(4) and r.result.reads["warnings"] == bytes(2)
    assert m.interrupts_taken == 0


def test_energy_run_with_warning_is_deterministic(build_dir):
    runs = [run_energy(emu.Machine.from_elf(_elf(build_dir, "msp430fr5994"), observe=["result"]),
                       power_config(v_warn="2.2", **CONST)).to_json() for _ in range(2)]
    assert runs[0] == runs[1]


def test_cli_v_warn_flag_and_toml_key(build_dir, golden, tmp_path):
    elf = _elf(build_dir, "cortex-m4-mram")
    cmd = [sys.executable, "-m", "emu", "run", str(elf), "--read", "result", "--json"]
    flags = ["--harvester", "const:100uW", "--capacitor", "10uF", "--v-on", "2.8", "--v-off", "1.9"]
    p = subprocess.run(cmd + flags + ["--v-warn", "2.2"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["outcome"] == "completed" and out["energy"]["config"]["v_warn"] == 2.2
    assert out["reads"]["result"] == golden["cortex-m4-mram"].reads["result"].hex()
    assert out["energy"]["periods"][0]["warning_instruction"] > 0

    toml = tmp_path / "power.toml"
    toml.write_text('harvester = "const:100uW"\n[capacitor]\ncapacitance = "10uF"\n'
                    '[supervisor]\nv_on = 2.8\nv_off = 1.9\nv_warn = "2.2V"\n')
    q = subprocess.run(cmd + ["--power", str(toml)], capture_output=True, text=True)
    assert q.returncode == 0, q.stderr
    from_toml = json.loads(q.stdout)
    assert from_toml["energy"]["config"]["v_warn"] == 2.2
    assert from_toml["energy"]["periods"] == out["energy"]["periods"] and from_toml["reads"] == out["reads"]

    bad = subprocess.run(cmd + flags + ["--v-warn", "-1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "v_warn" in bad.stderr and "Traceback" not in bad.stderr


LOOP = """
    .text
start:
    mov.w   #0x3c00, r1
loop:
    inc.w   r4
    jmp     loop
    .section .vectors,"a"
    .word start
"""


@pytest.mark.parametrize("cersel, outpol, cies, flag", [
    # SLAU367 Comparator_E: CERSEL = 1 puts the reference on V- (the supply divider on V+),
    # so CEOUT falls with the supply unless CEOUTPOL inverts it; CEIES = 1 makes a falling
    # CEOUT set CEIFG, CEIES = 0 a rising one (the other edge sets CEIIFG).
    (1, 0, 1, "CEIFG"), (1, 0, 0, "CEIIFG"), (1, 1, 0, "CEIFG"), (1, 1, 1, "CEIIFG"),
    (0, 0, 0, "CEIFG"), (0, 0, 1, "CEIIFG"),
])
def test_comp_e_edge_and_flags(tmp_path, cersel, outpol, cies, flag):
    from tests import asm

    m = emu.Machine.from_elf(asm.msp430(tmp_path, LOOP))
    config = power_config(v_warn="2.4", **CONST)
    circuit = config.circuit(m.board.name)
    on, _ = circuit.evolve(circuit.start(), running=False)
    m.supply = PeriodSupply(circuit, on, circuit.mcu.instruction_time, 2.4)
    a = m.supply.falls_below(2.4)
    m.power_on()
    bus = m.bus
    bus.write(0x08C4, 2, 0x20 * cersel)  # CECTL2
    bus.write(0x08C2, 2, 0x0400 | 0x0002 * outpol | 0x0008 * cies)  # CECTL1: CEON
    bus.write(0x08CC, 2, 0)  # CEINT: clear CERDYIFG, no enables
    out_above = int(bool(cersel) != bool(outpol))  # CEOUT while the supply is above v_warn
    assert bus.read(0x08C2, 2) & 1 == out_above
    m.step(a - 1)
    assert bus.read(0x08CC, 2) == 0 and bus.read(0x08C2, 2) & 1 == out_above
    m.step(1)  # boundary A: the supply is below v_warn
    assert bus.read(0x08C2, 2) & 1 == 1 - out_above
    assert bus.read(0x08CC, 2) == {"CEIFG": 1, "CEIIFG": 2}[flag]
    assert bus.read(0x08CE, 2) == {"CEIFG": 2, "CEIIFG": 4}[flag] and bus.read(0x08CC, 2) == 0  # CEIV clears
    assert m.interrupts_taken == 0  # no enable bit: no interrupt


CORTEX_LOOP = r"""
void reset(void);
__attribute__((naked)) void reset(void) { __asm__ volatile("1: adds r4, #1\n b 1b"); }
__attribute__((section(".isr"), used)) void (*const vt[2])(void) = {(void (*)(void))0x20001000, reset};
"""


@pytest.mark.parametrize("pls, level", [(2, 2.4), (4, 2.6), (7, 2.3)])
def test_pvd_level_from_pls_and_pvd_in(tmp_path, pls, level):
    """RM0351 PWR_CR2.PLS selects the PVD level (010: 2.4 V, 100: 2.6 V); PLS = 7 takes
    the PVD_IN pin, on this board the divider that trips at v_warn (2.3 V here)."""
    from tests import asm

    m = emu.Machine.from_elf(asm.cortex_c(tmp_path, CORTEX_LOOP))
    config = power_config(v_warn="2.3", **CONST)
    circuit = config.circuit(m.board.name)
    on, _ = circuit.evolve(circuit.start(), running=False)
    m.supply = PeriodSupply(circuit, on, circuit.mcu.instruction_time, 2.3)
    a = m.supply.falls_below(level)
    m.power_on()
    bus = m.bus
    bus.write(0x4000_7004, 4, pls << 1 | 1)  # PWR_CR2: PLS, PVDE
    bus.write(0x4001_0408, 4, 1 << 16)  # EXTI_RTSR1: line 16 rising
    m.step(a - 1)
    assert not bus.read(0x4000_7014, 4) & (1 << 11) and not bus.read(0x4001_0414, 4)
    m.step(1)
    assert bus.read(0x4000_7014, 4) & (1 << 11)  # PWR_SR2.PVDO: below the level
    assert bus.read(0x4001_0414, 4) == 1 << 16  # EXTI_PR1 pending (IMR1 off: no interrupt)
    bus.write(0x4001_0414, 4, 1 << 16)
    assert bus.read(0x4001_0414, 4) == 0 and m.interrupts_taken == 0

"""`emu run` on ELFs the project did not build: a freestanding C program with its own
vector table and linker script, compiled by arm-none-eabi-gcc, and the `emu` script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import emu
from tests import asm

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc missing")

PROGRAM = r"""
#include <stdint.h>
#define USART1_ISR (*(volatile uint32_t *)0x4001381C)
#define USART1_TDR (*(volatile uint32_t *)0x40013828)
#define USART1_CR1 (*(volatile uint32_t *)0x40013800)

__attribute__((section(".mram"))) volatile uint32_t fib_nv[12];   /* survives */
uint32_t scratch[12];                                              /* .bss: SRAM */

void reset(void);
__attribute__((section(".isr"))) const void *vectors[] = {(void *)0x20020000, (void *)reset};

static void put(char c) { while (!(USART1_ISR & (1u << 7))) {} USART1_TDR = (uint8_t)c; }

void reset(void)
{
    USART1_CR1 = 0x0D;                      /* UE | RE | TE */
    scratch[0] = 0; scratch[1] = 1;
    for (int i = 2; i < 12; i++)
        scratch[i] = scratch[i - 1] + scratch[i - 2];
    for (int i = 0; i < 12; i++)
        fib_nv[i] = scratch[i];
    put('o'); put('k'); put('\n');
    for (;;) {}                              /* b . */
}
"""


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    return asm.cortex_c(tmp_path_factory.mktemp("foreign"), PROGRAM)


def test_foreign_c_program_runs_to_completion(foreign):
    m = emu.Machine.from_elf(foreign)
    r = m.run()
    assert r.board == "cortex-m4-mram" and r.outcome == "completed" and r.uart == b"ok\n"
    fib = [int.from_bytes(m.read_symbol("fib_nv")[4 * i : 4 * i + 4], "little") for i in range(12)]
    assert fib == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]


def test_foreign_program_under_every_early_failure_point(foreign):
    total = emu.Machine.from_elf(foreign).run().instructions
    m = emu.Machine.from_elf(foreign)
    start = m.snapshot()
    for k in range(0, total, 7):
        m.restore(start)
        r = m.run(fail_after=[k])
        # the program recomputes from scratch: same final state whatever k
        assert r.outcome == "completed" and r.power_cycles == [k, total], k
        assert m.read_symbol("fib_nv", 48)[-4:] == (89).to_bytes(4, "little")


def test_console_script(foreign):
    script = Path(sys.executable).with_name("emu")
    if not script.exists():
        pytest.skip("the emu console script is not installed next to this Python (not a venv install)")
    out = subprocess.run([str(script), "run", str(foreign), "--json"], capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["uart"] == b"ok\n".hex()

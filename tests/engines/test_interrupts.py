"""Interrupt delivery on both engines and through the machine.

Engine level: the stacked frame byte for byte, the vector taken, the state after
acceptance, masking, and the return (RETI; a branch to EXC_RETURN) to the exact
interrupted instruction with every register intact. Expected values come from the
architecture manuals (SLAU367 4.3.4 "Interrupt Processing"; ARMv7-M ARM B1.5.6-B1.5.8
"ExceptionEntry", "PushStack", "ExceptionReturn") applied by hand to the programs below.

Machine level: an interrupt that firmware makes pending while interrupts are masked
(MSP430 COMP_E's CERDYIFG at switch-on; STM32 EXTI software trigger) is taken at the
exact boundary the architecture says: on the MSP430 after the instruction that follows
EINT (SLAU367 EINT note), on Cortex-M right after CPSIE.
"""

from __future__ import annotations

import pytest

import emu
from emu.engines import Access, Mapping
from emu.engines.base import StopKind
from emu.engines.icicle_engine import IcicleEngine
from tests import asm


class _NoBus:
    def read(self, address, size):
        raise AssertionError("no MMIO expected")

    def write(self, address, size, value):
        raise AssertionError("no MMIO expected")


def _w(*words: int) -> bytes:
    return b"".join(w.to_bytes(2, "little") for w in words)


# -- MSP430X -----------------------------------------------------------------------------
ISR = 0x4000  # push r4; mov #0xBEEF,r4; mov r4,&0x1C00; pop r4; reti
UPPER = 0x10000  # inc r4; inc r5; jmp $  (code above 64 KiB: PC[19:16] = 1)
GIE, SCG0, SCG1, N, C = 0x8, 0x40, 0x80, 0x4, 0x1


def _msp430_engine() -> IcicleEngine:
    e = IcicleEngine()
    e.map([Mapping(0x1C00, 0x2000, Access.RWX), Mapping(0x4000, 0xC000, Access.RWX),
           Mapping(0x10000, 0x1000, Access.RWX)], _NoBus())
    isr = _w(0x1204, 0x4034, 0xBEEF, 0x4482, 0x1C00, 0x4134, 0x1300)
    upper = _w(0x5314, 0x5315, 0x3FFF)
    for address, code in ((ISR, isr), (UPPER, upper)):
        e.write_memory(address, code)
        e.scan_code(address, code)
    e.write_memory(0xFFF8, _w(ISR))  # Comparator_E vector
    e.set_exits([UPPER + 4])
    return e


def test_msp430_acceptance_frame_vector_and_reti_to_a_20_bit_pc():
    e = _msp430_engine()
    regs = {f"r{i}": 0x1000 * (i - 3) + i for i in range(4, 16)}
    e.write_registers(regs)
    e.write_register("sp", 0x2000)
    sr = GIE | SCG0 | SCG1 | N | C
    e.write_register("sr", sr)
    e.pc = UPPER
    assert e.run(1).kind == StopKind.LIMIT  # inc r4: interrupted before inc r5 at 0x10002
    regs["r4"] += 1
    sr_before = e.read_register("sr")
    assert sr_before & GIE and not e.interrupt_masked(0xFFF8)
    e.interrupt(0xFFF8)
    # PC[15:0] pushed first (0x1FFE), then SR[11:0] with PC[19:16] = 1 in bits 15:12
    assert e.read_register("sp") == 0x1FFC
    assert e.read_memory(0x1FFC, 4) == _w(0x1000 | (sr_before & 0x0FFF), 0x0002)
    assert e.read_register("sr") == SCG0  # cleared but SCG0: GIE, SCG1, flags gone
    assert e.pc == ISR and e.instructions == 1  # acceptance retires no instruction
    assert e.run(5).kind == StopKind.LIMIT  # the ISR's five instructions, RETI last
    assert e.pc == UPPER + 2  # the interrupted instruction, 20-bit PC restored
    assert e.read_register("sr") == sr_before and e.read_register("sp") == 0x2000
    assert {r: e.read_register(r) for r in regs} == regs
    assert e.read_memory(0x1C00, 2) == _w(0xBEEF)  # the handler ran
    stop = e.run(10)
    assert stop.kind == StopKind.EXIT and e.instructions == 7 and e.read_register("r5") == regs["r5"] + 1


def test_msp430_gie_clear_masks():
    e = _msp430_engine()
    e.write_register("sr", SCG0 | C)
    assert e.interrupt_masked(0xFFF8)
    e.write_register("sr", GIE)
    assert not e.interrupt_masked(0xFFF8)


# -- Cortex-M4 -----------------------------------------------------------------------------
CORTEX_SOURCE = r"""
void reset(void), handler(void), done(void);
__attribute__((naked)) void reset(void)
{
    __asm__ volatile(
        "movs r0, #10\n movs r1, #11\n movs r2, #12\n movs r3, #13\n movs r4, #14\n"
        "mov r12, r4\n movs r5, #0\n cmp r5, #1\n"          /* N set, C clear */
        "add.w r0, r0, #1\n add.w r1, r1, #1\n b done\n");
}
__attribute__((naked)) void done(void) { __asm__ volatile("b ."); }
/* clobbers everything the frame saves */
__attribute__((naked)) void handler(void)
{
    __asm__ volatile("movs r0, #0\n movs r1, #0\n movs r2, #0\n movs r3, #0\n mov r12, r0\n"
                     "cmp r0, #0\n bx lr\n");
}
__attribute__((section(".isr"), used)) void (*const vt[18])(void) = {
    (void (*)(void))0x20001000, reset, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, handler};
"""


@pytest.fixture(scope="module")
def cortex_elf(tmp_path_factory):
    return asm.cortex_c(tmp_path_factory.mktemp("irq"), CORTEX_SOURCE)


@pytest.mark.parametrize("sp, pad", [(0x2000_1000, 0), (0x2000_0FFC, 1)])
def test_cortex_exception_entry_frame_and_return(cortex_elf, sp, pad):
    m = emu.Machine.from_elf(cortex_elf, volatile_init="zero")
    m.power_on()
    e = m.engine
    e.write_register("sp", sp)
    assert e.run(9).kind == StopKind.LIMIT  # interrupted before `add.w r1, r1, #1`
    regs = {r: e.read_register(r) for r in ("r0", "r1", "r2", "r3", "r4", "r5", "r12", "lr")}
    assert regs["r0"] == 11 and regs["r12"] == 14
    pc, xpsr = e.pc, e.read_register("xpsr")
    assert xpsr >> 31 == 1 and not xpsr >> 29 & 1  # N, not C (cmp 0, 1)
    assert not e.interrupt_masked(17)
    e.interrupt(17)
    frame = (sp - 32) & ~7
    assert e.read_register("sp") == frame == (sp - 32 - 4 * pad)
    words = [int.from_bytes(e.read_memory(frame + 4 * i, 4), "little") for i in range(8)]
    assert words == [11, 11, 12, 13, 14, regs["lr"], pc, xpsr | pad << 9]
    assert e.read_register("lr") == 0xFFFF_FFF9  # thread mode, main stack
    assert e.read_register("xpsr") & 0x1FF == 17  # IPSR
    assert e.pc == m.resolve_address("handler") and e.instructions == 9
    assert e.interrupt_masked(17)  # a handler is active: no nesting
    assert e.run(7).kind == StopKind.LIMIT  # the handler, `bx lr` (EXC_RETURN) last
    assert e.pc == pc and e.read_register("sp") == sp and e.instructions == 16
    assert {r: e.read_register(r) for r in regs} == regs
    assert e.read_register("xpsr") == xpsr  # flags back, IPSR 0
    stop = e.run(10)
    assert stop.kind == StopKind.EXIT and e.read_register("r1") == 12


IT_SOURCE = r"""
void reset(void), handler(void), done(void);
__attribute__((naked)) void reset(void)
{
    __asm__ volatile(
        "movs r0, #1\n cmp r0, #1\n"                      /* 1, 2: Z = 1, C = 1 */
        "itete eq\n moveq r1, #1\n movne r2, #2\n"        /* 3, 4 (taken), 5 (skipped) */
        "moveq r3, #3\n movne r4, #4\n b done\n");        /* 6 (taken), 7 (skipped), 8 */
}
__attribute__((naked)) void done(void) { __asm__ volatile("b ."); }
/* Z = 0 and an IT block of its own: neither may leak into the interrupted block */
__attribute__((naked)) void handler(void)
{
    __asm__ volatile("movs r0, #5\n cmp r0, #0\n it ne\n movne r0, #6\n bx lr\n");
}
__attribute__((section(".isr"), used)) void (*const vt[18])(void) = {
    (void (*)(void))0x20001000, reset, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, handler};
"""


def test_cortex_interrupt_between_instructions_of_an_it_block(tmp_path):
    m = emu.Machine.from_elf(asm.cortex_c(tmp_path, IT_SOURCE), volatile_init="zero")
    m.power_on()
    e = m.engine
    assert e.run(4).kind == StopKind.LIMIT  # itete eq + moveq r1: inside the block
    xpsr = e.read_register("xpsr")
    # ITETE EQ is ITSTATE 0x0B (firstcond 0000, mask 1011); one instruction later it is
    # 0x16 (ITAdvance: bits 4:0 shifted left): IT[1:0] in xPSR 26:25, IT[7:2] in 15:10
    assert (xpsr >> 25 & 3 | xpsr >> 8 & 0xFC) == 0x16
    e.interrupt(17)
    assert e.read_register("xpsr") >> 25 & 3 == 0 and e.read_register("xpsr") >> 10 & 0x3F == 0
    frame = e.read_register("sp")
    assert int.from_bytes(e.read_memory(frame + 28, 4), "little") == xpsr  # ITSTATE stacked
    assert e.run(5).kind == StopKind.LIMIT  # the handler, `bx lr` last
    assert e.read_register("xpsr") == xpsr and e.instructions == 9
    stop = e.run(100)
    assert stop.kind == StopKind.EXIT and e.instructions == 9 + 4
    regs = [e.read_register(r) for r in ("r0", "r1", "r2", "r3", "r4")]
    assert regs == [1, 1, 0, 3, 0]  # the block's last two went by EQ, as before the interrupt


def test_cortex_primask_and_faultmask_mask(cortex_elf):
    m = emu.Machine.from_elf(cortex_elf, volatile_init="zero")
    m.power_on()
    e = m.engine
    e.write_register("primask", 1)
    assert e.interrupt_masked(17)
    e.write_register("primask", 0)
    e.write_register("faultmask", 1)
    assert e.interrupt_masked(17)
    e.write_register("faultmask", 0)
    e.write_register("basepri", 0x40)
    assert e.interrupt_masked(17, priority=0x40) and not e.interrupt_masked(17, priority=0x30)


# -- through the machine: firmware makes the interrupt pending while masked ----------------
MSP430_LD = asm.msp430_script(0xFFF8)  # Comparator_E .. reset

MSP430_PENDING = """
    .text
start:
    mov.w   #0x3c00, r1
    mov.w   #0x1000, &0x08cc    ; CEINT = CERDYIE
    mov.w   #0x0400, &0x08c2    ; CECTL1 = CEON: CERDYIFG set, pending, GIE clear
    mov.w   #1, r10
    eint                        ; GIE
    mov.w   #2, r11             ; still executes (SLAU367: the instruction after EINT)
    mov.w   #3, r12             ; the interrupt is accepted before this one
done:
    jmp     done
isr:
    mov.w   r10, &seen10
    mov.w   r11, &seen11
    mov.w   r12, &seen12
    mov.w   &0x08ce, &seen_iv   ; CEIV: 0x0A (CERDYIFG), and clears it
    reti
    .section .nv,"aw"
seen10: .word 0xffff
seen11: .word 0xffff
seen12: .word 0xffff
seen_iv: .word 0xffff
    .section .vectors,"a"
    .word isr, 0, 0, start      ; 0xFFF8 COMP_E ... 0xFFFE reset
"""


def test_msp430_pending_while_masked_is_taken_after_the_instruction_after_eint(tmp_path):
    elf = asm.msp430(tmp_path, MSP430_PENDING, script=MSP430_LD)
    m = emu.Machine.from_elf(elf, volatile_init="zero", observe=["seen10:2", "seen11:2", "seen12:2", "seen_iv:2"])
    r = m.run()
    assert r.outcome == "completed" and m.interrupts_taken == 1
    assert r.reads == {"seen10": _w(1), "seen11": _w(2), "seen12": _w(0), "seen_iv": _w(0x0A)}
    assert r.instructions == 6 + 5 + 1  # before, the ISR (RETI included), `mov #3`
    assert m.engine.read_register("r12") == 3 and m.engine.read_register("sr") & GIE



@pytest.mark.parametrize("sr_write", [(0xD232,), (0xC232,), (0x4E02,), (0xD032, 0x0010)],
                         ids=["eint", "dint", "mov-r14-sr", "bis-cpuoff"])
def test_msp430_instruction_limits_hold_around_sr_mode_writes(sr_write):
    """Divergence L1: once icicle has compiled a block, an instruction in it that changes
    SR bits 7:3 makes it run past its instruction limit to the block's end. The engine
    executes such instructions itself, so every budget retires exactly that many."""
    nop = 0x4303
    code = _w(nop, nop, nop, *sr_write, *([nop] * 8), 0x3FFF)  # ... jmp $
    count = 3 + 1 + 8
    end = 0x4400 + len(code) - 2
    e = IcicleEngine()
    e.map([Mapping(0x1C00, 0x2000, Access.RWX), Mapping(0x4400, 0x400, Access.RWX)], _NoBus())
    e.write_memory(0x4400, code)
    e.scan_code(0x4400, code)
    e.set_exits([end])

    def start():
        e.write_register("sp", 0x3000)
        e.write_register("sr", GIE if sr_write == (0xC232,) else 0)
        e.write_register("r14", GIE)
        e.pc = 0x4400

    for _ in range(2000):  # hot enough for icicle to compile the block
        start()
        assert e.run(100).kind == StopKind.EXIT
    for budget in range(1, count + 1):
        start()
        before = e.instructions
        stop = e.run(budget)
        assert e.instructions - before == budget, budget
        assert stop.kind == (StopKind.EXIT if budget == count else StopKind.LIMIT)

CORTEX_PENDING = r"""
#include <stdint.h>
#define REG(a) (*(volatile uint32_t *)(a))
__attribute__((section(".mram"))) volatile uint32_t seen5 = 0xFFFFFFFF, seen6 = 0xFFFFFFFF;
void reset(void), handler(void);
__attribute__((naked)) void reset(void)
{
    __asm__ volatile(
        "cpsid i\n"
        "ldr r0, =0x40010400\n ldr r1, =0x10000\n str r1, [r0]\n"   /* EXTI_IMR1: line 16 */
        "ldr r2, =0xE000E100\n movs r3, #2\n str r3, [r2]\n"        /* NVIC_ISER0: IRQ 1 */
        "str r1, [r0, #0x10]\n"                                     /* EXTI_SWIER1: pending */
        "movs r5, #1\n"
        "cpsie i\n"                                                 /* taken right after */
        "movs r6, #2\n"
        "1: b 1b\n .ltorg\n");
}
void handler(void)
{
    uint32_t r5, r6;
    __asm__ volatile("mov %0, r5\n mov %1, r6" : "=r"(r5), "=r"(r6));
    seen5 = r5;
    seen6 = r6;
    REG(0x40010414) = 1u << 16; /* EXTI_PR1: clear */
}
__attribute__((section(".isr"), used)) void (*const vt[18])(void) = {
    (void (*)(void))0x20001000, reset, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, handler};
"""


def test_cortex_pending_while_primask_is_taken_after_cpsie(tmp_path):
    elf = asm.cortex_c(tmp_path, CORTEX_PENDING)
    m = emu.Machine.from_elf(elf, volatile_init="zero", observe=["seen5", "seen6"])
    r = m.run()
    assert r.outcome == "completed" and m.interrupts_taken == 1
    assert r.reads == {"seen5": (1).to_bytes(4, "little"), "seen6": (0).to_bytes(4, "little")}
    assert m.engine.read_register("r6") == 2 and m.engine.read_register("xpsr") & 0x1FF == 0

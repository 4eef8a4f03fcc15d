/*
 * crash_invalid (cortex-m4-mram) - a permanently undefined instruction.
 *
 * `udf #0` (Thumb encoding 0xDE00) is architecturally UNDEFINED: on real
 * hardware a UsageFault (escalated to HardFault); in the emulator it must
 * stop the run with a FAULT (invalid instruction).
 *
 * No C runtime.  Vector table at 0x08000000: [0] initial SP = 0x20020000,
 * [1] Reset_Handler | 1, [2] NMI and [3] HardFault -> fault_loop.
 *
 * Instructions (Thumb, [n] = n-th instruction executed):
 *   [1] movs r4, #0x12               r4 = 0x12
 *   [2] movs r5, #0x34               r5 = 0x34
 *   [3] udf  #0 (0xDE00)             FAULT: undefined instruction
 *   done: b . (0xE7FE)               only reached if [3] does not fault
 *
 * Expected outcome: a FAULT at PC = `bad_insn` (the address of [3]) with
 * exactly 2 instructions retired; r4 = 0x12, r5 = 0x34.
 *
 * Symbols: Reset_Handler, fault_loop (Thumb functions: bit 0 set in the
 * symbol value); bad_insn, done (plain labels, even addresses).
 */
#include "probe.inc"

    .text
    .globl  Reset_Handler
    .type   Reset_Handler,%function
    .thumb_func
Reset_Handler:
    movs    r4, #0x12               @ [1]
    movs    r5, #0x34               @ [2]
    .globl  bad_insn
bad_insn:
    udf     #0                      @ [3] 0xDE00 -> FAULT
    .globl  done
done:
    b       .
    .size   Reset_Handler, .-Reset_Handler


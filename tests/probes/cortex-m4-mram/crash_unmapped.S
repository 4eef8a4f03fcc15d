/*
 * crash_unmapped (cortex-m4-mram) - a load from an address in no region.
 *
 * 0x30000000 is outside flash, SRAM, peripherals (0x40000000-0x5FFFFFFF) and
 * MRAM: on real hardware a BusFault (escalated to HardFault); in the emulator
 * the load must stop the run with a FAULT.
 *
 * No C runtime.  Vector table at 0x08000000: [0] initial SP = 0x20020000,
 * [1] Reset_Handler | 1, [2] NMI and [3] HardFault -> fault_loop.
 *
 * `ldr rX, =value` is one instruction: gas emits a mov.w when the value fits,
 * otherwise a PC-relative load from the literal pool.
 *
 * Instructions (Thumb, [n] = n-th instruction executed):
 *   [1] movs r4, #0x12               r4 = 0x12
 *   [2] ldr  r0, =0x30000000
 *   [3] ldr  r1, [r0]                FAULT: read of unmapped 0x30000000
 *   done: b . (0xE7FE)               only reached if [3] does not fault
 *
 * Expected outcome: a FAULT at PC = `bad_load` (the address of [3]) with
 * exactly 2 instructions retired; r4 = 0x12, r0 = 0x30000000.
 *
 * Symbols: Reset_Handler, fault_loop (Thumb functions: bit 0 set in the
 * symbol value); bad_load, done (plain labels, even addresses).
 */
#include "probe.inc"

    .text
    .globl  Reset_Handler
    .type   Reset_Handler,%function
    .thumb_func
Reset_Handler:
    movs    r4, #0x12               @ [1]
    ldr     r0, =0x30000000         @ [2]
    .globl  bad_load
bad_load:
    ldr     r1, [r0]                @ [3] unmapped read -> FAULT
    .globl  done
done:
    b       .
    .size   Reset_Handler, .-Reset_Handler

    .ltorg

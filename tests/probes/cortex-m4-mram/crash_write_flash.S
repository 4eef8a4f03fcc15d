/*
 * crash_write_flash (cortex-m4-mram) - a store into flash (read/execute only).
 *
 * No C runtime.  Vector table at 0x08000000: [0] initial SP = 0x20020000,
 * [1] Reset_Handler | 1, [2] NMI and [3] HardFault -> fault_loop.
 *
 * `ldr rX, =value` is one instruction: gas emits a mov.w when the value fits,
 * otherwise a PC-relative load from the literal pool.
 *
 * Instructions (Thumb, [n] = n-th instruction executed):
 *   [1] ldr  r0, =0x08000000         start of flash (the vector table)
 *   [2] movs r1, #0x42
 *   [3] str  r1, [r0]                FAULT: write to read/execute-only flash
 *   done: b . (0xE7FE)               only reached if [3] does not fault
 *
 * Expected outcome: a FAULT (write permission) at PC = `bad_store` (the
 * address of [3]) with exactly 2 instructions retired; flash unchanged
 * (word 0 still 0x20020000).  (A real STM32L4 ignores the write and flags a
 * programming error in FLASH_SR; the emulator's map makes flash read/execute
 * only, so the store must stop the run with a FAULT.)
 *
 * Symbols: Reset_Handler, fault_loop (Thumb functions: bit 0 set in the
 * symbol value); bad_store, done (plain labels, even addresses).
 */
#include "probe.inc"

    .text
    .globl  Reset_Handler
    .type   Reset_Handler,%function
    .thumb_func
Reset_Handler:
    ldr     r0, =0x08000000         @ [1]
    movs    r1, #0x42               @ [2]
    .globl  bad_store
bad_store:
    str     r1, [r0]                @ [3] write to flash -> FAULT
    .globl  done
done:
    b       .
    .size   Reset_Handler, .-Reset_Handler

    .ltorg

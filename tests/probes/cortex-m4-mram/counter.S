/*
 * counter (cortex-m4-mram) - boot counter plus a resumable NV loop.
 *
 * No C runtime.  Vector table at 0x08000000: [0] initial SP = 0x20020000,
 * [1] Reset_Handler | 1, [2] NMI and [3] HardFault -> fault_loop (a
 * two-instruction loop, deliberately not a self-branch).
 *
 * `ldr rX, =value` is one instruction: gas emits a mov.w when the value fits,
 * otherwise a PC-relative load from the literal pool.
 *
 * Instructions (Thumb, [n] = instruction number in the listing):
 *   [1]  ldr  r0, =boots
 *   [2]  ldr  r1, [r0]
 *   [3]  adds r1, #1
 *   [4]  str  r1, [r0]               boots += 1
 *   [5]  ldr  r0, =progress
 *   loop:
 *   [6]  ldr  r1, [r0]
 *   [7]  cmp  r1, #10
 *   [8]  bhs  done                   leave when progress >= 10 (unsigned)
 *   [9]  adds r1, #1
 *   [10] str  r1, [r0]               progress += 1
 *   [11] b    loop
 *   done: b . (0xE7FE)               self-branch = completed
 *
 * Both NV words (MRAM, 32-bit) are 0 at flashing time.  A boot that starts
 * with progress = p (0 <= p <= 10) retires 5 + 6 * (10 - p) + 3 = 68 - 6p
 * instructions before PC reaches `done`: 68 on the first, uninterrupted run.
 * Each boot increments `boots` once (if it gets past [4]), even after
 * progress reached 10.  Power failures at any point: progress never goes back
 * and never exceeds 10; a failure between [2] and [4] loses that boot's
 * increment of `boots` (a failure between [6] and [10] likewise only repeats
 * the step).
 *
 * Symbols: Reset_Handler, fault_loop (Thumb functions: bit 0 set in the
 * symbol value); loop, done (plain labels, even addresses); boots, progress
 * (32-bit objects in .nv, MRAM).
 */
#include "probe.inc"

    .text
    .globl  Reset_Handler
    .type   Reset_Handler,%function
    .thumb_func
Reset_Handler:
    ldr     r0, =boots              @ [1]
    ldr     r1, [r0]                @ [2]
    adds    r1, #1                  @ [3]
    str     r1, [r0]                @ [4] boots += 1
    ldr     r0, =progress           @ [5]
    .globl  loop
loop:
    ldr     r1, [r0]                @ [6]
    cmp     r1, #10                 @ [7]
    bhs.n   done                    @ [8]
    adds    r1, #1                  @ [9]
    str     r1, [r0]                @ [10] progress += 1
    b.n       loop                    @ [11]
    .globl  done
done:
    b       .                       @ self-branch (0xE7FE)
    .size   Reset_Handler, .-Reset_Handler

    .ltorg

    .section .nv,"aw",%progbits
    .p2align 2
    .globl  boots
    .type   boots,%object
    .size   boots, 4
boots:
    .word   0
    .globl  progress
    .type   progress,%object
    .size   progress, 4
progress:
    .word   0

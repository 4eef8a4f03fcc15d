/*
 * nvstore (cortex-m4-mram) - register operations, then NV / SRAM / NV stores.
 *
 * No C runtime.  Vector table at 0x08000000: [0] initial SP = 0x20020000,
 * [1] Reset_Handler | 1, [2] NMI and [3] HardFault -> fault_loop (a
 * two-instruction loop, deliberately not a self-branch).
 *
 * `ldr rX, =value` is one instruction: gas emits a mov.w when the value fits,
 * otherwise a PC-relative load from the literal pool.
 *
 * Instructions (Thumb, [n] = n-th instruction executed):
 *   [1]  movs r4, #0x12              r4 = 0x12
 *   [2]  lsls r4, r4, #8             r4 = 0x1200
 *   [3]  adds r4, #0x45              r4 = 0x1245
 *   [4]  ldr  r0, =nv_value
 *   [5]  ldr  r1, =0xDEADBEEF
 *   [6]  str  r1, [r0]               NV store (MRAM):    nv_value   = 0xDEADBEEF
 *   [7]  ldr  r2, =sram_value
 *   [8]  ldr  r3, =0xCAFEF00D
 *   [9]  str  r3, [r2]               SRAM store (volatile): sram_value = 0xCAFEF00D
 *   [10] ldr  r0, =nv_second
 *   [11] str  r4, [r0]               NV store (MRAM):    nv_second  = 0x00001245
 *   done: b . (0xE7FE)               self-branch = completed
 *
 * Expected outcome: exactly 11 instructions retire before PC reaches `done`;
 * then r4 = 0x1245, nv_value = 0xDEADBEEF, sram_value = 0xCAFEF00D,
 * nv_second = 0x00001245.  At flashing time nv_value = nv_second = 0
 * (sram_value is in .bss: not loaded, its power-up content is undefined).
 * A power failure after [k] instructions keeps nv_value = 0xDEADBEEF iff
 * k >= 6 and nv_second = 0x1245 iff k >= 11; sram_value is lost in every case.
 *
 * Symbols: Reset_Handler, fault_loop (Thumb functions: bit 0 set in the
 * symbol value); done (plain label, even address); nv_value, nv_second
 * (32-bit objects in .nv, MRAM at 0x60000000); sram_value (32-bit object in
 * .bss, SRAM).
 */
#include "probe.inc"

    .text
    .globl  Reset_Handler
    .type   Reset_Handler,%function
    .thumb_func
Reset_Handler:
    movs    r4, #0x12               @ [1]
    lsls    r4, r4, #8              @ [2]
    adds    r4, #0x45               @ [3] r4 = 0x1245
    ldr     r0, =nv_value           @ [4]
    ldr     r1, =0xdeadbeef         @ [5]
    str     r1, [r0]                @ [6] NV store
    ldr     r2, =sram_value         @ [7]
    ldr     r3, =0xcafef00d         @ [8]
    str     r3, [r2]                @ [9] SRAM store
    ldr     r0, =nv_second          @ [10]
    str     r4, [r0]                @ [11] NV store
    .globl  done
done:
    b       .                       @ self-branch (0xE7FE)
    .size   Reset_Handler, .-Reset_Handler

    .ltorg

    .section .nv,"aw",%progbits
    .p2align 2
    .globl  nv_value
    .type   nv_value,%object
    .size   nv_value, 4
nv_value:
    .word   0
    .globl  nv_second
    .type   nv_second,%object
    .size   nv_second, 4
nv_second:
    .word   0

    .section .bss,"aw",%nobits
    .p2align 2
    .globl  sram_value
    .type   sram_value,%object
    .size   sram_value, 4
sram_value:
    .space  4

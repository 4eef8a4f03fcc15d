/*
 * nvstore (msp430fr5994) - register operations, then NV / SRAM / NV stores.
 *
 * No C runtime: the reset vector (0xFFFE) points to _start.  SR = 0 at reset,
 * the stack is not used.
 *
 * Instructions, in execution order ([n] = n-th instruction executed):
 *   [1] mov.w #0x5A80, &0x015C     WDTCTL = WDTPW | WDTHOLD (stop the watchdog)
 *   [2] mov.w #0x1234, r4          r4 = 0x1234
 *   [3] mov.w #0x0011, r5          r5 = 0x0011
 *   [4] add.w r4, r5               r5 = 0x1245
 *   [5] mov.w #0xBEEF, &nv_value   NV store    (FRAM): nv_value   = 0xBEEF
 *   [6] mov.w #0xCAFE, &sram_value SRAM store (volatile): sram_value = 0xCAFE
 *   [7] mov.w r5, &nv_second       NV store    (FRAM): nv_second  = 0x1245
 *   done: jmp $ (0x3FFF)           self-branch = completed
 *
 * Expected outcome: exactly 7 instructions retire before PC reaches `done`;
 * then r4 = 0x1234, r5 = 0x1245, nv_value = 0xBEEF, sram_value = 0xCAFE,
 * nv_second = 0x1245.  At flashing time nv_value = nv_second = 0x0000
 * (sram_value is in .bss: not loaded, its power-up content is undefined).
 * A power failure after [k] instructions keeps nv_value = 0xBEEF iff k >= 5 and
 * nv_second = 0x1245 iff k >= 7; sram_value is lost in every case.
 *
 * Symbols: _start, done (functions); nv_value, nv_second (16-bit objects in
 * .nv, FRAM), sram_value (16-bit object in .bss, SRAM).
 */
    .section .text._start,"ax",@progbits
    .globl  _start
    .type   _start,@function
_start:
    mov.w   #0x5a80, &0x015c        ; [1] stop the watchdog
    mov.w   #0x1234, r4             ; [2]
    mov.w   #0x0011, r5             ; [3]
    add.w   r4, r5                  ; [4] r5 = 0x1245
    mov.w   #0xbeef, &nv_value      ; [5] NV store
    mov.w   #0xcafe, &sram_value    ; [6] SRAM store
    mov.w   r5, &nv_second          ; [7] NV store
    .globl  done
    .type   done,@function
done:
    jmp     .                       ; self-branch (0x3FFF)
    .size   done, .-done
    .size   _start, .-_start

    .section .nv,"aw",@progbits
    .p2align 1
    .globl  nv_value
    .type   nv_value,@object
    .size   nv_value, 2
nv_value:
    .word   0x0000
    .globl  nv_second
    .type   nv_second,@object
    .size   nv_second, 2
nv_second:
    .word   0x0000

    .section .bss,"aw",@nobits
    .p2align 1
    .globl  sram_value
    .type   sram_value,@object
    .size   sram_value, 2
sram_value:
    .zero   2

    .section .resetvec,"a",@progbits
    .word   _start

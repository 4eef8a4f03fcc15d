/*
 * mspabi.S - MSP430 EABI run-time helpers (there is no libgcc for this
 * toolchain).  Software implementations for the plain MSP430 CPU: they do not
 * use the MPY32 peripheral, so their results and instruction counts do not
 * depend on it.
 *
 * Calling convention (MSP430 EABI): arguments in R12, R13, R14, R15
 * (32-bit values in pairs, low word first: R12:R13 and R14:R15); results in
 * R12 (16-bit) or R12:R13 (32-bit); R11-R15 may be clobbered, R4-R10 are
 * preserved.
 *
 * Emitted by clang 14 (no -mmcu, so no hardware multiplier) for:
 *   16-bit *   __mspabi_mpyi                32-bit *   __mspabi_mpyl
 *   16-bit /%  __mspabi_divi  __mspabi_divu  __mspabi_remi  __mspabi_remu
 *   32-bit /%  __mspabi_divli __mspabi_divul __mspabi_remli __mspabi_remul
 *   32-bit variable shifts  __mspabi_slll  __mspabi_srll  __mspabi_sral
 * Also provided (used by other MSP430 compilers, e.g. msp430-elf-gcc):
 *   16-bit variable shifts  __mspabi_slli  __mspabi_srli  __mspabi_srai
 *   constant shifts         __mspabi_{slli,srli,srai,slll,srll,sral}_{1..15}
 * The division helpers also return the remainder: R13 (16-bit) or
 * R14:R15 (32-bit), as TI's run-time library does.
 * 64-bit helpers (__mspabi_mpyll, __mspabi_divlli, ...) are not provided.
 */

    .macro FUNC name
    .section .text.\name,"ax",@progbits
    .globl  \name
    .type   \name,@function
    .p2align 1
\name:
    .endm

/* ---- 16 x 16 -> 16 multiply: R12 = R12 * R13 (shift and add) ---- */
    FUNC __mspabi_mpyi
    mov.w   r12, r14                ; multiplier
    clr.w   r12                     ; product
1:  tst.w   r14
    jz      3f
    clrc
    rrc.w   r14                     ; C = next multiplier bit
    jnc     2f
    add.w   r13, r12
2:  rla.w   r13
    jmp     1b
3:  ret
    .size   __mspabi_mpyi, .-__mspabi_mpyi

/* ---- 32 x 32 -> 32 multiply: R12:R13 = R12:R13 * R14:R15 ---- */
    FUNC __mspabi_mpyl
    push.w  r10
    mov.w   r12, r10                ; multiplier in R10:R11
    mov.w   r13, r11
    clr.w   r12                     ; product in R12:R13
    clr.w   r13
1:  tst.w   r10
    jnz     2f
    tst.w   r11
    jz      4f
2:  clrc
    rrc.w   r11
    rrc.w   r10                     ; C = next multiplier bit
    jnc     3f
    add.w   r14, r12
    addc.w  r15, r13
3:  rla.w   r14                     ; multiplicand <<= 1
    rlc.w   r15
    jmp     1b
4:  pop.w   r10
    ret
    .size   __mspabi_mpyl, .-__mspabi_mpyl

/* ---- 16-bit unsigned divide: R12 = R12 / R13, R13 = R12 % R13 ---- */
    FUNC __mspabi_divu
    mov.w   r12, r14                ; dividend, becomes the quotient
    clr.w   r15                     ; partial remainder
    mov.w   #16, r11
1:  rla.w   r14
    rlc.w   r15
    jc      2f                      ; 17-bit remainder: >= divisor
    cmp.w   r13, r15
    jlo     3f
2:  sub.w   r13, r15
    bis.w   #1, r14
3:  dec.w   r11
    jnz     1b
    mov.w   r14, r12
    mov.w   r15, r13
    ret
    .size   __mspabi_divu, .-__mspabi_divu

    FUNC __mspabi_remu
    call    #__mspabi_divu
    mov.w   r13, r12
    ret
    .size   __mspabi_remu, .-__mspabi_remu

/* ---- 16-bit signed divide (C semantics: truncate toward zero) ---- */
    FUNC __mspabi_divi
    push.w  r10
    clr.w   r10                     ; bit 0: negate quotient, bit 1: negate remainder
    tst.w   r12
    jge     1f
    inv.w   r12
    inc.w   r12
    mov.w   #3, r10
1:  tst.w   r13
    jge     2f
    inv.w   r13
    inc.w   r13
    xor.w   #1, r10
2:  call    #__mspabi_divu
    bit.w   #1, r10
    jz      3f
    inv.w   r12
    inc.w   r12
3:  bit.w   #2, r10
    jz      4f
    inv.w   r13
    inc.w   r13
4:  pop.w   r10
    ret
    .size   __mspabi_divi, .-__mspabi_divi

    FUNC __mspabi_remi
    call    #__mspabi_divi
    mov.w   r13, r12
    ret
    .size   __mspabi_remi, .-__mspabi_remi

/* ---- 32-bit unsigned divide: R12:R13 = R12:R13 / R14:R15,
 *      R14:R15 = remainder ---- */
    FUNC __mspabi_divul
    push.w  r10
    push.w  r9
    clr.w   r10                     ; partial remainder in R10:R11
    clr.w   r11
    mov.w   #32, r9
1:  rla.w   r12                     ; dividend/quotient R12:R13 <<= 1
    rlc.w   r13
    rlc.w   r10
    rlc.w   r11
    jc      2f                      ; 33-bit remainder: >= divisor
    cmp.w   r15, r11
    jlo     3f
    jne     2f
    cmp.w   r14, r10
    jlo     3f
2:  sub.w   r14, r10
    subc.w  r15, r11
    bis.w   #1, r12
3:  dec.w   r9
    jnz     1b
    mov.w   r10, r14
    mov.w   r11, r15
    pop.w   r9
    pop.w   r10
    ret
    .size   __mspabi_divul, .-__mspabi_divul

    FUNC __mspabi_remul
    call    #__mspabi_divul
    mov.w   r14, r12
    mov.w   r15, r13
    ret
    .size   __mspabi_remul, .-__mspabi_remul

/* ---- 32-bit signed divide ---- */
    FUNC __mspabi_divli
    push.w  r10
    clr.w   r10                     ; bit 0: negate quotient, bit 1: negate remainder
    tst.w   r13
    jge     1f
    inv.w   r12
    inv.w   r13
    inc.w   r12
    addc.w  #0, r13
    mov.w   #3, r10
1:  tst.w   r15
    jge     2f
    inv.w   r14
    inv.w   r15
    inc.w   r14
    addc.w  #0, r15
    xor.w   #1, r10
2:  call    #__mspabi_divul
    bit.w   #1, r10
    jz      3f
    inv.w   r12
    inv.w   r13
    inc.w   r12
    addc.w  #0, r13
3:  bit.w   #2, r10
    jz      4f
    inv.w   r14
    inv.w   r15
    inc.w   r14
    addc.w  #0, r15
4:  pop.w   r10
    ret
    .size   __mspabi_divli, .-__mspabi_divli

    FUNC __mspabi_remli
    call    #__mspabi_divli
    mov.w   r14, r12
    mov.w   r15, r13
    ret
    .size   __mspabi_remli, .-__mspabi_remli

/* ---- variable shifts: value in R12 (16-bit) or R12:R13 (32-bit),
 *      count in R13 (16-bit) or R14 (32-bit); only the low 4/5 bits count ---- */
    FUNC __mspabi_slli
    and.w   #15, r13
    jz      2f
1:  rla.w   r12
    dec.w   r13
    jnz     1b
2:  ret
    .size   __mspabi_slli, .-__mspabi_slli

    FUNC __mspabi_srli
    and.w   #15, r13
    jz      2f
1:  clrc
    rrc.w   r12
    dec.w   r13
    jnz     1b
2:  ret
    .size   __mspabi_srli, .-__mspabi_srli

    FUNC __mspabi_srai
    and.w   #15, r13
    jz      2f
1:  rra.w   r12
    dec.w   r13
    jnz     1b
2:  ret
    .size   __mspabi_srai, .-__mspabi_srai

    FUNC __mspabi_slll
    and.w   #31, r14
    jz      2f
1:  rla.w   r12
    rlc.w   r13
    dec.w   r14
    jnz     1b
2:  ret
    .size   __mspabi_slll, .-__mspabi_slll

    FUNC __mspabi_srll
    and.w   #31, r14
    jz      2f
1:  clrc
    rrc.w   r13
    rrc.w   r12
    dec.w   r14
    jnz     1b
2:  ret
    .size   __mspabi_srll, .-__mspabi_srll

    FUNC __mspabi_sral
    and.w   #31, r14
    jz      2f
1:  rra.w   r13
    rrc.w   r12
    dec.w   r14
    jnz     1b
2:  ret
    .size   __mspabi_sral, .-__mspabi_sral

/* ---- constant shifts: __mspabi_<op>_N shifts R12 (or R12:R13) by N.
 *      Entry N falls through N single-bit steps, then returns. ---- */
    .macro SHIFT_CHAIN name, step1, step2, step3
    .section .text.\name\()_n,"ax",@progbits
    .p2align 1
    .irp n, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1
    .globl  \name\()_\n
    .type   \name\()_\n,@function
\name\()_\n:
    \step1
    \step2
    \step3
    .endr
    ret
    .endm

    SHIFT_CHAIN __mspabi_slli, "rla.w r12"
    SHIFT_CHAIN __mspabi_srli, "clrc", "rrc.w r12"
    SHIFT_CHAIN __mspabi_srai, "rra.w r12"
    SHIFT_CHAIN __mspabi_slll, "rla.w r12", "rlc.w r13"
    SHIFT_CHAIN __mspabi_srll, "clrc", "rrc.w r13", "rrc.w r12"
    SHIFT_CHAIN __mspabi_sral, "rra.w r13", "rrc.w r12"

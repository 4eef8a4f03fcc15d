/*
 * startup.S - msp430fr5994 reset code for C programs.
 *
 * Reset vector (0xFFFE) -> _start, which, in this order:
 *   1. stops the watchdog:        WDTCTL (0x015C)    = 0x5A80 (WDTPW | WDTHOLD)
 *   2. sets the stack pointer:    SP = __stack_top   = 0x3C00
 *   3. unlocks the GPIOs:         PM5CTL0 (0x0130)  &= ~LOCKLPM5 (bit 0)
 *   4. sets the clocks (TI example code, DCO 8 MHz, MCLK = SMCLK = DCO / 1):
 *        CSCTL0_H (0x0161) = 0xA5      unlock CS registers (CSKEY)
 *        CSCTL1   (0x0162) = 0x0046    DCORSEL | DCOFSEL_3 -> 8 MHz
 *        CSCTL2   (0x0164) = 0x0133    SELA = VLOCLK, SELS = SELM = DCOCLK
 *        CSCTL3   (0x0166) = 0x0000    all dividers /1
 *        CSCTL0_H (0x0161) = 0x00      lock CS registers
 *   5. copies .data (LMA __data_load in FRAM -> __data_start..__data_end in SRAM)
 *   6. zeroes .bss (__bss_start..__bss_end in SRAM)
 *   7. calls main
 *   8. then loops on `jmp $` (encoding 0x3FFF) at symbol __program_done:
 *      the self-branch that marks "program completed".
 * The .nv section (non-volatile variables) is never touched.
 */
    .section .text._start,"ax",@progbits
    .globl  _start
    .type   _start,@function
_start:
    mov.w   #0x5a80, &0x015c        ; WDTCTL = WDTPW | WDTHOLD
    mov.w   #__stack_top, r1        ; SP
    bic.w   #0x0001, &0x0130        ; PM5CTL0 &= ~LOCKLPM5
    mov.b   #0xa5, &0x0161          ; CSCTL0_H = CSKEY_H
    mov.w   #0x0046, &0x0162        ; CSCTL1 = DCORSEL | DCOFSEL_3
    mov.w   #0x0133, &0x0164        ; CSCTL2 = SELA__VLOCLK | SELS__DCOCLK | SELM__DCOCLK
    mov.w   #0x0000, &0x0166        ; CSCTL3 = DIVA__1 | DIVS__1 | DIVM__1
    mov.b   #0x00, &0x0161          ; CSCTL0_H = 0 (lock)

    mov.w   #__data_load, r12       ; copy .data, one word at a time
    mov.w   #__data_start, r13
1:  cmp.w   #__data_end, r13
    jhs     2f
    mov.w   @r12+, r14
    mov.w   r14, 0(r13)
    incd.w  r13
    jmp     1b

2:  mov.w   #__bss_start, r13       ; zero .bss
3:  cmp.w   #__bss_end, r13
    jhs     4f
    mov.w   #0, 0(r13)
    incd.w  r13
    jmp     3b

4:  call    #main
    .globl  __program_done
    .type   __program_done,@function
__program_done:
    jmp     .                       ; 0x3FFF: self-branch = program completed
    .size   __program_done, .-__program_done
    .size   _start, .-_start

    .section .resetvec,"a",@progbits
    .word   _start

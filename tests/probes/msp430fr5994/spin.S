/*
 * spin (msp430fr5994) - an endless loop that is NOT a branch to itself.
 *
 * Two jumps that jump to each other: the program never reaches a self-branch,
 * so it never "completes"; use it for timeout / instruction-budget tests.
 *
 * No C runtime: the reset vector (0xFFFE) points to _start.
 *
 * Instructions ([n] = n-th instruction executed):
 *   [1] mov.w #0x5A80, &0x015C     stop the watchdog
 *   ping:
 *   [2] jmp pong                   (encoding 0x3C00: to the next word)
 *   pong:
 *   [3] jmp ping                   (encoding 0x3FFE: back one word)
 *   then [2], [3], [2], ... forever
 *
 * Expected outcome: never completes.  After n >= 1 retired instructions
 * PC = ping if n is odd, pong if n is even.  No memory is written
 * except WDTCTL.
 *
 * Symbols: _start, ping, pong.
 */
    .section .text._start,"ax",@progbits
    .globl  _start
    .type   _start,@function
_start:
    mov.w   #0x5a80, &0x015c        ; [1] stop the watchdog
    .globl  ping
ping:
    jmp     pong                    ; [2]
    .globl  pong
pong:
    jmp     ping                    ; [3]
    .size   _start, .-_start

    .section .resetvec,"a",@progbits
    .word   _start

/*
 * spin (cortex-m4-mram) - an endless loop that is NOT a branch to itself.
 *
 * Two branches that branch to each other: the program never reaches a
 * self-branch, so it never "completes"; use it for timeout / budget tests.
 *
 * No C runtime.  Vector table at 0x08000000: [0] initial SP = 0x20020000,
 * [1] Reset_Handler | 1 (= ping), [2] NMI and [3] HardFault -> fault_loop.
 *
 * Instructions (Thumb, [n] = n-th instruction executed):
 *   ping:
 *   [1] b.n pong                     (0xE7FF: to the next halfword)
 *   pong:
 *   [2] b.n ping                     (0xE7FD: back one halfword)
 *   then [1], [2], [1], ... forever
 *
 * Expected outcome: never completes.  After n retired instructions
 * PC = ping if n is even, pong if n is odd.  No memory is written.
 *
 * Symbols: Reset_Handler, fault_loop (Thumb functions: bit 0 set in the
 * symbol value); ping (= Reset_Handler & ~1), pong (plain labels, even
 * addresses).
 */
#include "probe.inc"

    .text
    .globl  Reset_Handler
    .type   Reset_Handler,%function
    .thumb_func
Reset_Handler:
    .globl  ping
ping:
    b.n     pong                    @ [1]
    .globl  pong
pong:
    b.n     ping                    @ [2]
    .size   Reset_Handler, .-Reset_Handler


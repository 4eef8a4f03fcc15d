/*
 * uart_echo (cortex-m4-mram) - read 4 bytes from USART1, send each back + 1.
 *
 * No C runtime.  Vector table at 0x08000000: [0] initial SP = 0x20020000,
 * [1] Reset_Handler | 1, [2] NMI and [3] HardFault -> fault_loop.
 * Sets up USART1 like firmware/boards/cortex-m4-mram (clock enables, PA9/PA10
 * AF7, 115200 8N1 from the 4 MHz MSI reset clock) and polls the real flags in
 * USART1_ISR (0x4001381C): RXNE = bit 5, TXE = bit 7.  32-bit accesses.
 *
 * `ldr rX, =value` is one instruction: gas emits a mov.w when the value fits,
 * otherwise a PC-relative load from the literal pool.
 *
 * Instructions (Thumb, [n] = instruction number in the listing):
 *   [1]  ldr  r0, =0x40021000        RCC
 *   [2]  movs r1, #1
 *   [3]  str  r1, [r0, #0x4C]        RCC_AHB2ENR = GPIOAEN
 *   [4]  ldr  r1, =0x00004000
 *   [5]  str  r1, [r0, #0x60]        RCC_APB2ENR = USART1EN
 *   [6]  ldr  r0, =0x48000000        GPIOA
 *   [7]  ldr  r1, =0xABEBFFFF
 *   [8]  str  r1, [r0, #0x00]        GPIOA_MODER: PA9, PA10 alternate (rest: reset value)
 *   [9]  ldr  r1, =0x00000770
 *   [10] str  r1, [r0, #0x24]        GPIOA_AFRH: PA9, PA10 = AF7
 *   [11] ldr  r0, =0x40013800        USART1
 *   [12] movs r1, #35
 *   [13] str  r1, [r0, #0x0C]        USART1_BRR = 35 (4 MHz / 115200)
 *   [14] movs r1, #0x0D
 *   [15] str  r1, [r0, #0x00]        USART1_CR1 = UE | RE | TE
 *   [16] movs r5, #4                 bytes left
 *   rx_wait:
 *   [17] ldr  r1, [r0, #0x1C]        USART1_ISR
 *   [18] tst  r1, #0x20              RXNE?
 *   [19] beq  rx_wait
 *   [20] ldr  r4, [r0, #0x24]        r4 = USART1_RDR (the read clears RXNE)
 *   [21] adds r4, #1
 *   [22] uxtb r4, r4                 r4 = (byte + 1) & 0xFF
 *   tx_wait:
 *   [23] ldr  r1, [r0, #0x1C]        USART1_ISR
 *   [24] tst  r1, #0x80              TXE?
 *   [25] beq  tx_wait
 *   [26] str  r4, [r0, #0x28]        USART1_TDR = r4
 *   [27] subs r5, #1
 *   [28] bne  rx_wait
 *   done: b . (0xE7FE)               self-branch = completed
 *
 * Expected outcome: input bytes b0..b3 are echoed as (b0+1)&0xFF ..
 * (b3+1)&0xFF, e.g. "abcd" -> "bcde".  If every poll finds its flag already
 * set, 16 + 4 * 12 = 64 instructions retire before PC reaches `done`; each
 * extra RX or TX poll that finds the flag clear adds 3.  No NV memory is used.
 *
 * Symbols: Reset_Handler, fault_loop (Thumb functions: bit 0 set in the
 * symbol value); rx_wait, tx_wait, done (plain labels, even addresses).
 */
#include "probe.inc"

    .text
    .globl  Reset_Handler
    .type   Reset_Handler,%function
    .thumb_func
Reset_Handler:
    ldr     r0, =0x40021000         @ [1]  RCC
    movs    r1, #1                  @ [2]
    str     r1, [r0, #0x4c]         @ [3]  AHB2ENR: GPIOA clock
    ldr     r1, =0x00004000         @ [4]
    str     r1, [r0, #0x60]         @ [5]  APB2ENR: USART1 clock
    ldr     r0, =0x48000000         @ [6]  GPIOA
    ldr     r1, =0xabebffff         @ [7]
    str     r1, [r0, #0x00]         @ [8]  MODER
    ldr     r1, =0x00000770         @ [9]
    str     r1, [r0, #0x24]         @ [10] AFRH
    ldr     r0, =0x40013800         @ [11] USART1
    movs    r1, #35                 @ [12]
    str     r1, [r0, #0x0c]         @ [13] BRR
    movs    r1, #0x0d               @ [14]
    str     r1, [r0, #0x00]         @ [15] CR1 = UE | RE | TE
    movs    r5, #4                  @ [16]
    .globl  rx_wait
rx_wait:
    ldr     r1, [r0, #0x1c]         @ [17] ISR
    tst     r1, #0x20               @ [18] RXNE
    beq.n   rx_wait                 @ [19]
    ldr     r4, [r0, #0x24]         @ [20] RDR
    adds    r4, #1                  @ [21]
    uxtb    r4, r4                  @ [22]
    .globl  tx_wait
tx_wait:
    ldr     r1, [r0, #0x1c]         @ [23] ISR
    tst     r1, #0x80               @ [24] TXE
    beq.n   tx_wait                 @ [25]
    str     r4, [r0, #0x28]         @ [26] TDR
    subs    r5, #1                  @ [27]
    bne.n   rx_wait                 @ [28]
    .globl  done
done:
    b       .                       @ self-branch (0xE7FE)
    .size   Reset_Handler, .-Reset_Handler

    .ltorg

/*
 * uart_echo (msp430fr5994) - read 4 bytes from eUSCI_A0, send each back + 1.
 *
 * No C runtime: the reset vector (0xFFFE) points to _start.  Sets the clocks
 * and the UART like firmware/boards/msp430fr5994 (DCO 8 MHz, SMCLK = 8 MHz,
 * 115200 8N1), polling the real flags in UCA0IFG (0x05DC): UCRXIFG = bit 0,
 * UCTXIFG = bit 1.  All UART registers are accessed as 16-bit words.
 *
 * Instructions ([n] = instruction number in the listing):
 *   [1]  mov.w #0x5A80, &0x015C    WDTCTL = WDTPW | WDTHOLD
 *   [2]  mov.b #0xA5, &0x0161      CSCTL0_H = CSKEY_H (unlock CS)
 *   [3]  mov.w #0x0046, &0x0162    CSCTL1 = DCORSEL | DCOFSEL_3 (8 MHz)
 *   [4]  mov.w #0x0133, &0x0164    CSCTL2 = SELA__VLOCLK | SELS/SELM = DCOCLK
 *   [5]  mov.w #0x0000, &0x0166    CSCTL3 = all dividers /1
 *   [6]  mov.b #0x00, &0x0161      CSCTL0_H = 0 (lock CS)
 *   [7]  bis.b #0x03, &0x020D      P2SEL1 |= BIT0 | BIT1 (P2.0 TXD, P2.1 RXD)
 *   [8]  bic.w #0x0001, &0x0130    PM5CTL0 &= ~LOCKLPM5
 *   [9]  mov.w #0x0081, &0x05C0    UCA0CTLW0 = UCSSEL__SMCLK | UCSWRST
 *   [10] mov.w #0x0004, &0x05C6    UCA0BRW = 4
 *   [11] mov.w #0x5551, &0x05C8    UCA0MCTLW = UCBRSx 0x55 | UCBRFx 5 | UCOS16
 *   [12] bic.w #0x0001, &0x05C0    UCA0CTLW0 &= ~UCSWRST (UCTXIFG becomes 1)
 *   [13] mov.w #4, r5              bytes left
 *   rx_wait:
 *   [14] bit.w #0x0001, &0x05DC    UCRXIFG?
 *   [15] jz rx_wait
 *   [16] mov.w &0x05CC, r4         r4 = UCA0RXBUF (the read clears UCRXIFG)
 *   [17] inc.b r4                  r4 = (r4 + 1) & 0xFF
 *   tx_wait:
 *   [18] bit.w #0x0002, &0x05DC    UCTXIFG?
 *   [19] jz tx_wait
 *   [20] mov.w r4, &0x05CE         UCA0TXBUF = r4
 *   [21] dec.w r5
 *   [22] jnz rx_wait
 *   done: jmp $ (0x3FFF)           self-branch = completed
 *
 * Expected outcome: input bytes b0..b3 are echoed as (b0+1)&0xFF ..
 * (b3+1)&0xFF, e.g. "abcd" -> "bcde", "\xff" -> "\x00".  If every poll finds
 * its flag already set, 13 + 4 * 9 = 49 instructions retire before PC
 * reaches `done`; each extra RX or TX poll that finds the flag clear adds 2.
 * No NV memory is used.
 *
 * Symbols: _start, rx_wait, tx_wait, done.
 */
    .section .text._start,"ax",@progbits
    .globl  _start
    .type   _start,@function
_start:
    mov.w   #0x5a80, &0x015c        ; [1]  stop the watchdog
    mov.b   #0xa5, &0x0161          ; [2]  unlock CS
    mov.w   #0x0046, &0x0162        ; [3]  DCO 8 MHz
    mov.w   #0x0133, &0x0164        ; [4]  ACLK = VLO, SMCLK = MCLK = DCO
    mov.w   #0x0000, &0x0166        ; [5]  dividers /1
    mov.b   #0x00, &0x0161          ; [6]  lock CS
    bis.b   #0x03, &0x020d          ; [7]  P2SEL1: P2.0/P2.1 = UCA0TXD/RXD
    bic.w   #0x0001, &0x0130        ; [8]  unlock GPIOs
    mov.w   #0x0081, &0x05c0        ; [9]  eUSCI in reset, clock = SMCLK
    mov.w   #0x0004, &0x05c6        ; [10] UCA0BRW
    mov.w   #0x5551, &0x05c8        ; [11] UCA0MCTLW
    bic.w   #0x0001, &0x05c0        ; [12] release eUSCI
    mov.w   #4, r5                  ; [13] 4 bytes
    .globl  rx_wait
rx_wait:
    bit.w   #0x0001, &0x05dc        ; [14] UCRXIFG?
    jz      rx_wait                 ; [15]
    mov.w   &0x05cc, r4             ; [16] read UCA0RXBUF
    inc.b   r4                      ; [17] +1, byte
    .globl  tx_wait
tx_wait:
    bit.w   #0x0002, &0x05dc        ; [18] UCTXIFG?
    jz      tx_wait                 ; [19]
    mov.w   r4, &0x05ce             ; [20] write UCA0TXBUF
    dec.w   r5                      ; [21]
    jnz     rx_wait                 ; [22]
    .globl  done
    .type   done,@function
done:
    jmp     .                       ; self-branch (0x3FFF)
    .size   done, .-done
    .size   _start, .-_start

    .section .resetvec,"a",@progbits
    .word   _start

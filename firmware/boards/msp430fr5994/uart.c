/*
 * uart.c - msp430fr5994 eUSCI_A0 UART, 115200 8N1 from SMCLK = 8 MHz
 * (settings from TI's msp430fr599x_euscia0_uart examples / user's guide
 * baud-rate table: UCOS16 = 1, UCBRx = 4, UCBRFx = 5, UCBRSx = 0x55).
 * All eUSCI registers are accessed as 16-bit words, port registers as bytes.
 */
#include "uart.h"

#define REG8(a)  (*(volatile uint8_t *)(a))
#define REG16(a) (*(volatile uint16_t *)(a))

#define P2SEL0    REG8(0x020B)
#define P2SEL1    REG8(0x020D)

#define UCA0CTLW0 REG16(0x05C0)
#define UCA0BRW   REG16(0x05C6)
#define UCA0MCTLW REG16(0x05C8)
#define UCA0STATW REG16(0x05CA)
#define UCA0RXBUF REG16(0x05CC)
#define UCA0TXBUF REG16(0x05CE)
#define UCA0IE    REG16(0x05DA)
#define UCA0IFG   REG16(0x05DC)

#define UCSWRST       0x0001u
#define UCSSEL__SMCLK 0x0080u
#define UCRXIFG       0x0001u
#define UCTXIFG       0x0002u

void uart_init(void)
{
    P2SEL0 &= (uint8_t)~0x03u;      /* P2.0 = UCA0TXD, P2.1 = UCA0RXD */
    P2SEL1 |= 0x03u;
    UCA0CTLW0 = UCSWRST;            /* hold eUSCI in reset */
    UCA0CTLW0 |= UCSSEL__SMCLK;
    UCA0BRW = 4;
    UCA0MCTLW = 0x5551u;            /* UCBRSx = 0x55, UCBRFx = 5, UCOS16 */
    UCA0CTLW0 &= (uint16_t)~UCSWRST; /* release: UCTXIFG becomes 1 */
}

void uart_putc(char c)
{
    while (!(UCA0IFG & UCTXIFG))
        ;
    UCA0TXBUF = (uint8_t)c;
}

int uart_rx_ready(void)
{
    return (UCA0IFG & UCRXIFG) != 0;
}

char uart_getc(void)
{
    while (!(UCA0IFG & UCRXIFG))
        ;
    return (char)UCA0RXBUF;         /* reading RXBUF clears UCRXIFG */
}

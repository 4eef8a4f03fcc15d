/*
 * uart.h - minimal polled UART driver (one implementation per board).
 *
 * msp430fr5994:   eUSCI_A0 (base 0x05C0), 115200 8N1 from SMCLK = 8 MHz,
 *                 pins P2.0 (TXD) / P2.1 (RXD).
 * cortex-m4-mram: USART1 (base 0x40013800), 115200 8N1 from PCLK2 = 4 MHz
 *                 (MSI reset clock), pins PA9 (TX) / PA10 (RX).
 *
 * uart_putc waits until the transmit buffer is empty, then writes the byte;
 * uart_getc waits until a byte was received, then reads it; uart_rx_ready says
 * whether one is waiting (non-zero) without reading it.
 */
#ifndef FIRMWARE_UART_H
#define FIRMWARE_UART_H

#include <stdint.h>

void uart_init(void);
void uart_putc(char c);
char uart_getc(void);
int uart_rx_ready(void);

/* board-independent helpers (lib/uart_print.c) */
void uart_puts(const char *s);
void uart_put_u32(uint32_t value); /* decimal, no padding */

#endif /* FIRMWARE_UART_H */

/* uart_print.c - board-independent text output on top of uart_putc. */
#include "uart.h"

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

/* Decimal by repeated subtraction of powers of ten: no division, so it stays
 * short on the MSP430, where division is a software routine. */
void uart_put_u32(uint32_t value)
{
    static const uint32_t pow10[10] = {
        1000000000u, 100000000u, 10000000u, 1000000u, 100000u,
        10000u, 1000u, 100u, 10u, 1u,
    };
    int started = 0;
    for (unsigned i = 0; i < 10; i++) {
        char digit = '0';
        while (value >= pow10[i]) {
            value -= pow10[i];
            digit++;
        }
        if (digit != '0' || started || i == 9) {
            uart_putc(digit);
            started = 1;
        }
    }
}

/* uart_print.c - board-independent text output on top of uart_putc. */
#include "uart.h"

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

void uart_put_u32(uint32_t value)
{
    char digits[10];
    unsigned n = 0;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value);
    while (n)
        uart_putc(digits[--n]);
}

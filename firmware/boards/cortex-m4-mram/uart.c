/*
 * uart.c - cortex-m4-mram USART1 (STM32L4 register layout), 115200 8N1 from
 * PCLK2 = 4 MHz (MSI reset clock): BRR = 35.  Pins PA9 (TX) / PA10 (RX), AF7.
 * All registers are accessed as 32-bit words.
 */
#include "uart.h"

#define REG32(a) (*(volatile uint32_t *)(a))

#define RCC_AHB2ENR  REG32(0x4002104C)  /* bit 0: GPIOAEN */
#define RCC_APB2ENR  REG32(0x40021060)  /* bit 14: USART1EN */
#define GPIOA_MODER  REG32(0x48000000)
#define GPIOA_AFRH   REG32(0x48000024)

#define USART1_BASE  0x40013800u
#define USART1_CR1   REG32(USART1_BASE + 0x00)
#define USART1_CR2   REG32(USART1_BASE + 0x04)
#define USART1_CR3   REG32(USART1_BASE + 0x08)
#define USART1_BRR   REG32(USART1_BASE + 0x0C)
#define USART1_ISR   REG32(USART1_BASE + 0x1C)
#define USART1_ICR   REG32(USART1_BASE + 0x20)
#define USART1_RDR   REG32(USART1_BASE + 0x24)
#define USART1_TDR   REG32(USART1_BASE + 0x28)

#define CR1_UE   (1u << 0)
#define CR1_RE   (1u << 2)
#define CR1_TE   (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TC   (1u << 6)
#define ISR_TXE  (1u << 7)

void uart_init(void)
{
    RCC_AHB2ENR |= 1u << 0;         /* GPIOA clock */
    RCC_APB2ENR |= 1u << 14;        /* USART1 clock */
    /* PA9, PA10: alternate function 7 (USART1_TX, USART1_RX) */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);
    USART1_CR1 = 0;                 /* disabled while configuring */
    USART1_BRR = 35;                /* 4 MHz / 115200 = 34.7 */
    USART1_CR1 = CR1_UE | CR1_RE | CR1_TE;
}

void uart_putc(char c)
{
    while (!(USART1_ISR & ISR_TXE))
        ;
    USART1_TDR = (uint8_t)c;
}

int uart_rx_ready(void)
{
    return (USART1_ISR & ISR_RXNE) != 0;
}

char uart_getc(void)
{
    while (!(USART1_ISR & ISR_RXNE))
        ;
    return (char)(USART1_RDR & 0xFFu);  /* reading RDR clears RXNE */
}

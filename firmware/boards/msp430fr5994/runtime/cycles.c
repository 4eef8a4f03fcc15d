/*
 * Cycle counter (cycles.h): Timer_A0 (SLAU367 "Timer_A") counting SMCLK, which startup.S
 * makes the CPU clock (SMCLK = MCLK = DCO / 1), in continuous mode with ID = /1 and
 * TAIDEX = /1: TA0R is the low 16 bits of the count. Each overflow (TA0R from 0xFFFF to
 * 0) sets TAIFG; the TIMER0_A1 handler (vector 52, 0xFFE8; TA0IV 0x0E = TAIFG, read to
 * clear it) counts it in `board_cycles_high`, the high 16 bits.
 *
 * Reading both halves: with interrupts off, `board_cycles_high` cannot change. If TAIFG is set at
 * the check, one overflow happened that the handler has not counted yet (one, because
 * interrupts are off for a few cycles only, far fewer than 65536): TA0R is read again,
 * after the overflow for sure, and the high half is board_cycles_high + 1. If it is clear, no
 * overflow happened before the check, so the TA0R read before it belongs to `board_cycles_high`.
 */
#include "cycles.h"

#define REG16(a)     (*(volatile uint16_t *)(a))
#define TA0CTL       REG16(0x0340)
#define TA0R         REG16(0x0350)
#define TA0EX0       REG16(0x0360)
#define TA0IV        REG16(0x036E)
#define TASSEL_SMCLK (2u << 8)
#define MC_CONT      (2u << 4)
#define TACLR        0x0004u
#define TAIE         0x0002u
#define TAIFG        0x0001u
#define TA0IV_TAIFG  0x000Eu
#define GIE          0x0008u

/* In SRAM on purpose: like the timer, it restarts at every power-on (emu war knows). */
static volatile uint16_t board_cycles_high;

void board_cycles_start(void)
{
    TA0CTL = TACLR;          /* stopped, TAR and the dividers cleared */
    TA0EX0 = 0;              /* TAIDEX = /1 */
    board_cycles_high = 0;
    TA0CTL = TASSEL_SMCLK | MC_CONT | TACLR | TAIE; /* ID = /1 */
    __asm__ volatile("nop\n\teint\n\tnop" ::: "memory");
}

__attribute__((interrupt(52))) void timer0_a1_isr(void) /* vector 0xFFE8 */
{
    if (TA0IV == TA0IV_TAIFG) /* the read clears TAIFG; no other source is enabled */
        board_cycles_high++;
}

uint32_t board_cycles(void)
{
    uint16_t sr;
    __asm__ volatile("mov r2, %0\n\tdint\n\tnop" : "=r"(sr) :: "memory");
    uint16_t high = board_cycles_high;
    uint16_t low = TA0R;
    if (TA0CTL & TAIFG) { /* an overflow the handler has not counted yet */
        low = TA0R;
        high++;
    }
    if (sr & GIE)
        __asm__ volatile("nop\n\teint\n\tnop" ::: "memory");
    return (uint32_t)high << 16 | low;
}

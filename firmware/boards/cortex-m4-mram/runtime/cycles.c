/*
 * Cycle counter (cycles.h): the DWT's CYCCNT (ARMv7-M ARM C1.8.8), enabled by DEMCR.TRCENA
 * (C1.6.5, the global enable of the DWT) and DWT_CTRL.CYCCNTENA. It counts processor
 * cycles, 32 bits, wrapping.
 */
#include "cycles.h"

#define REG32(a)   (*(volatile uint32_t *)(a))
#define DEMCR      REG32(0xE000EDFCu)
#define DWT_CTRL   REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define TRCENA     (1u << 24)
#define CYCCNTENA  (1u << 0)

void board_cycles_start(void)
{
    DEMCR |= TRCENA;
    DWT_CYCCNT = 0;
    DWT_CTRL |= CYCCNTENA;
}

uint32_t board_cycles(void)
{
    return DWT_CYCCNT;
}

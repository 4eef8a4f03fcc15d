/*
 * cycles.h - the board's CPU cycle counter (one driver per board, in the runtime archive:
 * boards/<board>/runtime/cycles.c).
 *
 * cortex-m4-mram: the DWT cycle counter CYCCNT (DEMCR.TRCENA and DWT_CTRL.CYCCNTENA set;
 *                 ARMv7-M ARM C1.8), 32 bits in hardware.
 * msp430fr5994:   Timer_A0 in continuous mode from SMCLK (= MCLK, the CPU clock: see
 *                 startup.S) without dividers, extended to 32 bits by counting its
 *                 overflows in the TIMER0_A1 interrupt (TAIFG through TA0IV); starting it
 *                 enables interrupts (GIE).
 *
 * board_cycles_start() starts the count at 0; board_cycles() returns the CPU cycles since
 * then, modulo 2^32. The count is peripheral state: a power failure loses it, and it
 * starts again at the next board_cycles_start().
 */
#ifndef FIRMWARE_CYCLES_H
#define FIRMWARE_CYCLES_H

#include <stdint.h>

void board_cycles_start(void);
uint32_t board_cycles(void);

#endif /* FIRMWARE_CYCLES_H */

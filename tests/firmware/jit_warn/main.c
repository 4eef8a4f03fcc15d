/*
 * Test program (not an app) for the power-warning interrupt driving the just-in-time
 * checkpoint: a long computation (WARN_N rounds of a hash over a .bss table, with state
 * in registers, on the stack and in .data) that needs many power-on periods and takes no
 * checkpoint of its own. The board's power-warning interrupt - MSP430FR5994 Comparator_E,
 * STM32L4 PVD through EXTI line 16 - calls rt_checkpoint when the capacitor falls below
 * the warning level; the next boot's rt_restore resumes inside the interrupt handler,
 * which sets the comparator up again (peripherals are lost with power) and returns to the
 * interrupted instruction. At the end `result` (non-volatile) gets the hash and the
 * program stops on the self-branch. Without the warning (no v_warn, or one below the
 * brown-out level) every boot starts over and the program never finishes.
 *
 * Register set-up as on the real parts: SLAU367 "Comparator_E" (the board wires a
 * divider of the capacitor voltage to CE13 and the firmware compares it with the 1.2 V
 * reference ladder on V-), RM0351 "PWR" and "EXTI" (PVD level 7: the PVD_IN pin with the
 * board's divider; EXTI line 16 rising edge = VDD falling below the level; PVD_PVM is
 * IRQ 1). Built by `make firmware` into build/test-apps/<board>/jit_warn.elf.
 */
#include <stdint.h>

#include "nv.h"
#include "rt.h"

#ifndef WARN_N
#define WARN_N 400
#endif
#define TABLE 64

NV volatile uint32_t result;
NV volatile uint16_t warnings; /* power-warning interrupts taken (one checkpoint each) */

static uint32_t salt = 0x9E3779B9u; /* .data */
static uint16_t table[TABLE];       /* .bss */

#define REG16(a) (*(volatile uint16_t *)(a))
#define REG32(a) (*(volatile uint32_t *)(a))

#if defined(__MSP430__)
/* Comparator_E at 0x08C0 (SLASE54) */
#define CECTL0 REG16(0x08C0)
#define CECTL1 REG16(0x08C2)
#define CECTL2 REG16(0x08C4)
#define CECTL3 REG16(0x08C6)
#define CEINT  REG16(0x08CC)
#define CEIPEN     0x0080u
#define CEIPSEL_13 0x000Du
#define CEIES      0x0008u /* CEIFG on the falling edge of CEOUT */
#define CEPWRMD_1  0x0100u
#define CEON       0x0400u
#define CERSEL     0x0020u /* reference on V-, CE13 on V+ */
#define CERS_2     0x0080u /* shared reference on the resistor ladder */
#define CEREFL_1   0x2000u /* 1.2 V */
#define CEPD13     0x2000u
#define CEIFG      0x0001u
#define CEIE       0x0100u

static void warning_setup(void)
{
    CECTL0 = CEIPEN | CEIPSEL_13;
    CECTL2 = CEREFL_1 | CERS_2 | CERSEL | (23u << 8) | 23u; /* tap 24/32 of 1.2 V */
    CECTL3 = CEPD13;
    CECTL1 = CEPWRMD_1 | CEIES | CEON;
    for (volatile uint16_t i = 0; i < 20; i++) /* reference settling (SLAU367: ~1 us) */
        ;
    CEINT = CEIE; /* clears CEIFG, CEIIFG, CERDYIFG */
}

__attribute__((interrupt(60))) void comp_e_isr(void) /* vector 0xFFF8 */
{
    CEINT &= ~CEIFG;
    warnings++;
    if (rt_checkpoint())
        warning_setup(); /* resumed after a power failure: the comparator was reset */
}

static void interrupts_on(void)
{
    __asm__ volatile("nop\n\teint\n\tnop");
}
#else
#define RCC_APB1ENR1 REG32(0x40021058)
#define RCC_PWREN    (1u << 28)
#define PWR_CR2      REG32(0x40007004)
#define PWR_PVDE     (1u << 0)
#define PWR_PLS_IN   (7u << 1) /* PVD_IN pin */
#define EXTI_IMR1    REG32(0x40010400)
#define EXTI_RTSR1   REG32(0x40010408)
#define EXTI_PR1     REG32(0x40010414)
#define EXTI_PVD     (1u << 16)
#define NVIC_ISER0   REG32(0xE000E100)
#define PVD_PVM_IRQ  1

static void warning_setup(void)
{
    RCC_APB1ENR1 |= RCC_PWREN;
    PWR_CR2 = PWR_PLS_IN | PWR_PVDE;
    EXTI_RTSR1 |= EXTI_PVD;
    EXTI_PR1 = EXTI_PVD;
    EXTI_IMR1 |= EXTI_PVD;
    NVIC_ISER0 = 1u << PVD_PVM_IRQ;
}

void PVD_PVM_IRQHandler(void)
{
    EXTI_PR1 = EXTI_PVD;
    warnings++;
    if (rt_checkpoint())
        warning_setup();
}

static void interrupts_on(void)
{
    __asm__ volatile("cpsie i" ::: "memory");
}
#endif

static uint32_t rotl(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

__attribute__((noinline)) static uint32_t round_hash(uint32_t h, uint16_t *window, uint16_t r)
{
    for (uint16_t i = 0; i < TABLE; i++) {
        uint16_t w = window[i & 7];
        h = rotl(h ^ (uint32_t)(i + r), 7) + salt + table[i] + w;
        table[i] = (uint16_t)(table[i] ^ (h >> 11));
        window[i & 7] = (uint16_t)(w + (uint16_t)h);
    }
    salt ^= h;
    return h;
}

int main(void)
{
    rt_restore(); /* resumes in the warning handler if a checkpoint exists */
    warning_setup();
    interrupts_on();

    uint16_t window[8];
    for (uint16_t j = 0; j < 8; j++)
        window[j] = (uint16_t)(j * 0x1111u);
    for (uint16_t i = 0; i < TABLE; i++)
        table[i] = (uint16_t)(i * 0x0101u);
    uint32_t h = 0x811C9DC5u, sum = 0;
    for (uint16_t r = 0; r < WARN_N; r++) {
        h = round_hash(h, window, r);
        sum += h;
    }
    for (uint16_t j = 0; j < 8; j++)
        h = rotl(h, 3) ^ window[j];
    result = h ^ sum ^ salt;
    return 0;
}

/*
 * startup.c - cortex-m4-mram reset code for C programs.
 *
 * The vector table (section .vectors, at 0x08000000) holds the initial SP
 * (__stack_top = 0x20020000) and Reset_Handler | 1; the core loads both.
 * Reset_Handler then:
 *   1. copies .data (LMA __data_load in flash -> __data_start..__data_end in SRAM)
 *   2. zeroes .bss (__bss_start..__bss_end in SRAM)
 *   3. calls main
 *   4. loops on `b .` (Thumb encoding 0xE7FE) at symbol __program_done:
 *      the self-branch that marks "program completed".
 * Clocks: the core runs from the STM32L4 reset clock (MSI 4 MHz); nothing to
 * set up.  The .nv section (MRAM) is never touched.
 * Every other exception goes to Default_Handler, a two-instruction loop that
 * is deliberately NOT a self-branch, so a fault never looks like completion.
 * Handlers a program (or the runtime) defines replace the weak names below:
 * SVC_Handler (the runtime's jit.S uses it), WWDG_IRQHandler and
 * PVD_PVM_IRQHandler (STM32L4 IRQ 0 and 1: the PVD power warning, EXTI line 16).
 * The table stops after IRQ 1: no other interrupt is ever enabled.
 */
#include <stdint.h>

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_top[];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void SVC_Handler(void) __attribute__((weak, noreturn, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, noreturn, alias("Default_Handler")));
void WWDG_IRQHandler(void) __attribute__((weak, noreturn, alias("Default_Handler")));
void PVD_PVM_IRQHandler(void) __attribute__((weak, noreturn, alias("Default_Handler")));

__attribute__((naked, noreturn)) void __program_done(void)
{
    __asm__ volatile("b .");        /* 0xE7FE */
    __builtin_unreachable();
}

void Reset_Handler(void)
{
    uint32_t *src = __data_load;
    uint32_t *dst = __data_start;
    while (dst < __data_end)
        *dst++ = *src++;
    for (dst = __bss_start; dst < __bss_end;)
        *dst++ = 0;
    main();
    __program_done();
}

__attribute__((naked, noreturn)) void Default_Handler(void)
{
    __asm__ volatile("1: nop\n\tb 1b");
    __builtin_unreachable();
}

/* Cortex-M4 system exceptions (16 entries), then STM32L4 IRQ 0 and 1. */
__attribute__((section(".vectors"), used))
void (*const vector_table[18])(void) = {
    (void (*)(void))__stack_top,    /* 0: initial SP */
    Reset_Handler,                  /* 1: reset */
    Default_Handler,                /* 2: NMI */
    Default_Handler,                /* 3: HardFault */
    Default_Handler,                /* 4: MemManage */
    Default_Handler,                /* 5: BusFault */
    Default_Handler,                /* 6: UsageFault */
    0, 0, 0, 0,                     /* 7-10: reserved */
    SVC_Handler,                    /* 11: SVCall */
    Default_Handler,                /* 12: DebugMonitor */
    0,                              /* 13: reserved */
    PendSV_Handler,                 /* 14: PendSV */
    Default_Handler,                /* 15: SysTick */
    WWDG_IRQHandler,                /* 16: IRQ 0 WWDG */
    PVD_PVM_IRQHandler,             /* 17: IRQ 1 PVD_PVM (EXTI line 16) */
};

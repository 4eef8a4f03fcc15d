/*
 * nv.h - placement of non-volatile variables.
 *
 * A variable marked NV or NV_INIT lives in the board's non-volatile memory
 * (FRAM on msp430fr5994, external MRAM at 0x60000000 on cortex-m4-mram) in the
 * output section ".nv".  Its value is part of the ELF's PT_LOAD segments, so it
 * is written once when the ELF is flashed (zero for NV, the initialiser for
 * NV_INIT) and is never copied or zeroed by the startup code: it keeps its value
 * across resets and power failures.
 *
 *     NV      uint16_t boot_count;          // 0 at flashing time
 *     NV_INIT uint16_t threshold = 42;      // 42 at flashing time
 *
 * Both macros use the same section; the two names only document intent.
 * Declare NV variables `volatile` when the order of the stores matters
 * (commit protocols), and use NV_BARRIER() between dependent commits.
 */
#ifndef FIRMWARE_NV_H
#define FIRMWARE_NV_H

#define NV      __attribute__((section(".nv"), used))
#define NV_INIT __attribute__((section(".nv"), used))

/* Volatile (SRAM) scratch with no initial value: not zeroed by the startup code, so a
 * large buffer does not cost boot time; it holds garbage until written. */
#define NOINIT  __attribute__((section(".noinit")))

/* Orders NV stores: a compiler barrier, plus a data synchronisation barrier
 * on Cortex-M so that the store has left the write buffer. */
#if defined(__ARM_ARCH)
#define NV_BARRIER() __asm__ volatile("dsb" ::: "memory")
#else
#define NV_BARRIER() __asm__ volatile("" ::: "memory")
#endif

#endif /* FIRMWARE_NV_H */

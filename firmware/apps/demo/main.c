/*
 * demo - a small intermittent program.
 *
 * Computes sum(1..DEMO_N) one term per step, keeping its progress in
 * non-volatile memory so that a power failure at any instruction loses at
 * most the step in flight; prints "sum=<value>\n" on the UART, stores the
 * value in the non-volatile `result` and returns.  With DEMO_N = 100 the
 * output is "sum=5050\n" and result = 5050, however many power failures
 * happen (the line may be printed partly or more than once).
 *
 * Non-volatile state (all in .nv, zero at flashing time):
 *   boot_count   incremented at each boot (first statement of main)
 *   progress     terms added so far (0..DEMO_N)
 *   accumulator  sum(1..progress)
 *   pending_progress, pending_accumulator, commit_pending: redo log
 *   result       final value (0 until the first completed run)
 *
 * Commit protocol (redo log), one step:
 *   1. pending_accumulator = accumulator + progress + 1
 *      pending_progress    = progress + 1
 *   2. commit_pending = 1                  <- the step is now decided
 *   3. accumulator = pending_accumulator;  progress = pending_progress
 *   4. commit_pending = 0
 * At boot, if commit_pending is 1, step 3 (idempotent) is redone and the flag
 * cleared.  A failure before 2 discards the step, after 2 completes it: the
 * pair (progress, accumulator) is never seen half-updated.
 *
 * Broken twin (APP_BROKEN): updates accumulator and progress in place, one after
 * the other, without the log: a failure between the two stores adds a term twice.
 */
#include <stdint.h>

#include "nv.h"
#include "uart.h"

#ifndef DEMO_N
#define DEMO_N 100
#endif

NV volatile uint16_t boot_count;
NV volatile uint16_t progress;
NV volatile uint32_t accumulator;
NV volatile uint16_t pending_progress;
NV volatile uint32_t pending_accumulator;
NV volatile uint16_t commit_pending;
NV volatile uint32_t result;

static void redo_commit(void)
{
    accumulator = pending_accumulator;
    progress = pending_progress;
    NV_BARRIER();
    commit_pending = 0;
    NV_BARRIER();
}

int main(void)
{
    boot_count = (uint16_t)(boot_count + 1);
    NV_BARRIER();

    if (commit_pending)
        redo_commit();

    while (progress < DEMO_N) {
        uint16_t next = (uint16_t)(progress + 1);
#ifdef APP_BROKEN
        accumulator = accumulator + next; /* bug: not atomic with progress */
        NV_BARRIER();
        progress = next;
        NV_BARRIER();
        continue;
#endif
        pending_accumulator = accumulator + next;
        pending_progress = next;
        NV_BARRIER();
        commit_pending = 1;
        NV_BARRIER();
        redo_commit();
    }

    uint32_t sum = accumulator;
    result = sum;
    NV_BARRIER();

    uart_init();
    uart_puts("sum=");
    uart_put_u32(sum);
    uart_putc('\n');
    return 0;
}

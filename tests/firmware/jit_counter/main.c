/*
 * Test program (not an app) for the just-in-time checkpoint (rt_checkpoint/rt_restore):
 * a hash over i = 0..JIT_N-1 whose whole progress is volatile - the locals of main (in
 * callee-saved registers and a stack array), the frame of the nested call that takes the
 * checkpoints, a .data and two .bss globals. A checkpoint every JIT_EVERY iterations;
 * at the end `result` (non-volatile) gets the hash, then the program stops on a
 * self-branch. Under any power failures the result must equal the continuous-power one.
 *
 * Why the test can fail: `run` is read from the non-volatile word `fresh_starts` before
 * the first checkpoint and written back incremented after it, and it seeds the hash. A
 * resumed run recovers the old `run` from the checkpoint; a run that starts over after
 * that store (no rt_restore, or a checkpoint that does not restore) sees a new value and
 * computes a different hash. Built by `make firmware` into
 * build/test-apps/<board>/jit_counter.elf.
 */
#include <stdint.h>

#include "nv.h"
#include "rt.h"

#ifndef JIT_N
#define JIT_N 160
#endif
#ifndef JIT_EVERY
#define JIT_EVERY 8
#endif

NV volatile uint32_t result;
NV volatile uint16_t fresh_starts; /* runs that started from the beginning */

static uint32_t salt = 0x9E3779B9u; /* .data */
static uint16_t ring[8];            /* .bss */
static uint16_t steps;              /* .bss */

static uint32_t rotl(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

/* One step; the nested call that takes the checkpoints (its frame is in the image). */
__attribute__((noinline)) static uint32_t step(uint32_t h, uint16_t *window, uint16_t i)
{
    uint16_t w = window[i & 7];
    h = rotl(h ^ i, 5) + salt + w;
    salt ^= h >> 7;
    window[i & 7] = (uint16_t)(w + (uint16_t)h + ring[(i + 3) & 7]);
    ring[i & 7] ^= (uint16_t)(h >> 16);
    steps++;
    if (i % JIT_EVERY == JIT_EVERY - 1)
        rt_checkpoint();
    return h ^ window[(i + 1) & 7];
}

int main(void)
{
    rt_restore(); /* resumes inside rt_checkpoint if a checkpoint exists */

    uint16_t run = fresh_starts;
    rt_checkpoint();
    fresh_starts = (uint16_t)(run + 1);

    uint16_t window[8];
    for (uint16_t j = 0; j < 8; j++)
        window[j] = (uint16_t)(j * 0x1111u + run);
    uint32_t h = 0x811C9DC5u ^ run;
    uint32_t sum = 0;
    for (uint16_t i = 0; i < JIT_N; i++) {
        h = step(h, window, i);
        sum += h;
    }
    for (uint16_t j = 0; j < 8; j++)
        h = rotl(h, 3) ^ window[j] ^ ((uint32_t)ring[j] << 16);
    result = h ^ sum ^ salt ^ steps;
    for (;;)
        ;
}

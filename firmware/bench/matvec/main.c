/*
 * matvec - benchmark workload.
 *
 * y = M x with a constant 64x64 int16 matrix M (in flash/FRAM), an int16
 * vector x and int32 accumulation, repeated MATVEC_REPS times.  Each
 * repetition derives the next x from the previous y, so no repetition can be
 * skipped or hoisted by the compiler.  At the end a checksum of all y vectors
 * is stored in the non-volatile variable `result` and main returns.
 * No UART output.  Volatile state only: after a power failure the whole
 * computation restarts (it is a throughput benchmark, not an intermittent one).
 *
 * MATVEC_REPS (per board, at least 50 million instructions each):
 *   msp430fr5994:   software 32-bit multiply (__mspabi_mpyl) per element
 *   cortex-m4-mram: hardware multiply-accumulate
 */
#include <stdint.h>

#include "nv.h"

#define N 64

#ifndef MATVEC_REPS
#if defined(BOARD_MSP430FR5994)
#define MATVEC_REPS 50
#else
#define MATVEC_REPS 2400
#endif
#endif

/* M[i][j] = ((i * 7919 + j * 104729 + i * j * 31) mod 2001) - 1000, in [-1000, 1000],
 * computed by the compiler. */
#define E(i, j) (int16_t)((((i) * 7919L + (j) * 104729L + (i) * (j) * 31L) % 2001L) - 1000)
#define R8(i, j) E(i, j), E(i, j + 1), E(i, j + 2), E(i, j + 3), \
                 E(i, j + 4), E(i, j + 5), E(i, j + 6), E(i, j + 7)
#define ROW(i) { R8(i, 0), R8(i, 8), R8(i, 16), R8(i, 24), \
                 R8(i, 32), R8(i, 40), R8(i, 48), R8(i, 56) }
#define ROWS8(i) ROW(i), ROW(i + 1), ROW(i + 2), ROW(i + 3), \
                 ROW(i + 4), ROW(i + 5), ROW(i + 6), ROW(i + 7)

const int16_t matrix[N][N] = {
    ROWS8(0), ROWS8(8), ROWS8(16), ROWS8(24), ROWS8(32), ROWS8(40), ROWS8(48), ROWS8(56),
};

int16_t vector_x[N];
int32_t vector_y[N];

/* Checksum of the run, written once at the end. */
NV volatile uint32_t result;

__attribute__((noinline)) static void matvec(const int16_t m[N][N], const int16_t *x, int32_t *y)
{
    for (unsigned i = 0; i < N; i++) {
        int32_t acc = 0;
        for (unsigned j = 0; j < N; j++)
            acc += (int32_t)m[i][j] * x[j];
        y[i] = acc;
    }
}

int main(void)
{
    uint32_t checksum = 0;

    for (unsigned j = 0; j < N; j++)
        vector_x[j] = (int16_t)(j * 13u % 64u) - 32;

    for (uint32_t rep = 0; rep < MATVEC_REPS; rep++) {
        matvec(matrix, vector_x, vector_y);
        for (unsigned j = 0; j < N; j++) {
            uint32_t u = (uint32_t)vector_y[j];
            checksum = (checksum ^ u) + (checksum << 5) + (checksum >> 2);
            /* next x in [-1024, 1023]: |y| <= 64 * 1000 * 1024 fits int32 */
            vector_x[j] = (int16_t)((u ^ (u >> 11) ^ rep) & 0x7FFu) - 1024;
        }
    }

    result = checksum;
    return 0;
}

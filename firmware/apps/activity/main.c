/*
 * activity - activity-recognition features of 3-axis accelerometer data.
 *
 * Input:  app_input, SAMPLES samples of int8 x, y, z interleaved (LOAD, or the built-in
 *         recording as flashed: still, walking, running, still).
 * Output: app_output (also in RESULT): for each window of WINDOW samples, 7 bytes:
 *         mean u16, variance u32, class u8, where m = |x|+|y|+|z| per sample,
 *         mean = floor(sum m / WINDOW), variance = floor(sum (m - mean)^2 / WINDOW),
 *         class 0 (still) if variance < 16, 1 (walk) if < 256, else 2 (run);
 *         then a histogram: windows per class, 3 x u8.
 *
 * Correct: a task per window over double-buffered state {window, histogram}; the task
 * writes its window's 7 output bytes (a function of the input and the window index, so
 * a re-run rewrites the same bytes); a power failure re-runs at most one window.
 * Broken (APP_BROKEN): the histogram is a plain static in SRAM - it relies on volatile
 * memory surviving a power failure. It does not (the startup code zeroes .bss at every
 * boot), so the counts of the windows committed before a failure are lost.
 */
#include <stdint.h>

#include "rt.h"

#define SAMPLES 64
#define WINDOW 16
#define WINDOW_SHIFT 4 /* divide by WINDOW with a shift */
#define WINDOWS (SAMPLES / WINDOW)
#define CLASSES 3
#define INPUT_SIZE (3 * SAMPLES)

_Static_assert(WINDOW == 1 << WINDOW_SHIFT, "WINDOW must be 1 << WINDOW_SHIFT");

/* One sample: int8 x, y, z as bytes. */
#define S(x, y, z) (uint8_t)(x), (uint8_t)(y), (uint8_t)(z)

NV_INIT uint8_t app_input[INPUT_SIZE] = {
    /* window 0 */
    S(0, 1, 63), S(-1, -1, 63), S(0, 0, 64), S(-1, -1, 63),
    S(1, 0, 64), S(-1, -1, 63), S(1, 0, 63), S(0, 0, 63),
    S(-1, -1, 64), S(1, -1, 65), S(-1, 0, 65), S(1, -1, 65),
    S(0, -1, 65), S(1, 1, 64), S(1, 0, 63), S(1, 0, 64),
    /* window 1 */
    S(6, -5, 62), S(8, -5, 66), S(11, -1, 71), S(9, -2, 64),
    S(3, -1, 62), S(-1, -4, 52), S(1, -5, 50), S(-1, -4, 53),
    S(4, -3, 62), S(7, -2, 68), S(11, -2, 70), S(6, -4, 64),
    S(4, -5, 59), S(3, -2, 53), S(-3, -1, 49), S(-1, -1, 56),
    /* window 2 */
    S(-4, 42, 67), S(37, 26, 127), S(76, 5, 127), S(37, -24, 127),
    S(-4, -34, 63), S(-34, -25, -12), S(-66, 0, -81), S(-39, 20, -21),
    S(1, 35, 72), S(37, 17, 127), S(68, 2, 127), S(44, -26, 127),
    S(-1, -40, 65), S(-40, -23, -21), S(-75, -7, -128), S(-38, 14, -22),
    /* window 3 */
    S(-65, 1, 1), S(-63, 1, 2), S(-64, 0, 1), S(-65, 0, 1),
    S(-65, 1, 3), S(-64, -1, 1), S(-65, 1, 3), S(-65, 1, 3),
    S(-64, 0, 1), S(-63, 1, 1), S(-64, 1, 3), S(-65, -1, 3),
    S(-64, 1, 1), S(-63, 1, 1), S(-64, -1, 1), S(-63, 1, 3),
};
NV uint8_t app_output[7 * WINDOWS + CLASSES];

static uint16_t abs8(uint8_t byte)
{
    int16_t v = (int8_t)byte;
    return (uint16_t)(v < 0 ? -v : v);
}

/* Computes window w's features, writes its 7 output bytes and returns its class. */
static uint8_t window_features(uint16_t w)
{
    const uint8_t *s = &app_input[w * (3 * WINDOW)];
    uint16_t m[WINDOW], sum = 0;
    for (uint16_t k = 0; k < WINDOW; k++, s += 3) {
        m[k] = (uint16_t)(abs8(s[0]) + abs8(s[1]) + abs8(s[2])); /* at most 3 * 128 */
        sum = (uint16_t)(sum + m[k]);
    }
    uint16_t mean = sum >> WINDOW_SHIFT;
    uint32_t squares = 0;
    for (uint16_t k = 0; k < WINDOW; k++) {
        uint16_t d = m[k] >= mean ? (uint16_t)(m[k] - mean) : (uint16_t)(mean - m[k]);
        squares += (uint32_t)d * d;
    }
    uint32_t var = squares >> WINDOW_SHIFT;
    uint8_t cls = var < 16u ? 0 : var < 256u ? 1 : 2;

    uint8_t *out = &app_output[w * 7];
    out[0] = (uint8_t)mean;
    out[1] = (uint8_t)(mean >> 8);
    for (uint16_t i = 0; i < 4; i++)
        out[2 + i] = (uint8_t)(var >> (8 * i));
    out[6] = cls;
    return cls;
}

typedef struct {
    uint16_t window;
#ifndef APP_BROKEN
    uint8_t histogram[CLASSES];
#endif
} state_t;

RT_TASK_STATE(state_t, state);

#ifndef APP_BROKEN
static uint8_t *histogram_of(state_t *s)
{
    return s->histogram;
}
#else
static uint8_t histogram[CLASSES]; /* bug: in SRAM, outside the task state */

static uint8_t *histogram_of(state_t *s)
{
    (void)s;
    return histogram;
}
#endif

static uint16_t task_window(void *p)
{
    state_t *s = p;
    histogram_of(s)[window_features(s->window)]++;
    s->window = (uint16_t)(s->window + 1);
    return s->window < WINDOWS ? 0 : 1;
}

static uint16_t task_finish(void *p)
{
    const uint8_t *h = histogram_of(p);
    for (uint16_t c = 0; c < CLASSES; c++)
        app_output[7 * WINDOWS + c] = h[c];
    return RT_TASK_DONE;
}

static const rt_task_fn tasks[] = {task_window, task_finish};
static const rt_taskset_t taskset = {{&state[0], &state[1]}, sizeof(state_t), tasks, 2};

static void start(void)
{
#ifdef APP_BROKEN
    for (uint16_t c = 0; c < CLASSES; c++)
        histogram[c] = 0;
#endif
    const state_t initial = {0};
    rt_tasks_start(&taskset, &initial);
}

static uint8_t resume(void)
{
    rt_tasks_run(&taskset);
    return RT_EXIT_FINAL;
}

static const rt_app_t app = {
    .name = "activity", .version = 1,
    .input = app_input, .input_size = INPUT_SIZE,
    .output = app_output, .output_size = sizeof app_output,
    .start = start, .resume = resume,
};

int main(void)
{
    rt_main(&app);
}

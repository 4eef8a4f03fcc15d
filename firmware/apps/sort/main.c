/*
 * sort - in-place selection sort of N signed 16-bit values in non-volatile memory.
 *
 * Input:  app_input, N int16 little-endian (LOAD, or the built-in values as flashed).
 * Output: app_output, the same N int16 little-endian in ascending order (also in RESULT).
 *
 * start() copies the input into app_output (idempotent: the input does not change), which
 * is then sorted in place.
 * Correct: a task per outer index i over double-buffered state {i}: find the minimum of
 * a[i..N-1], swap it into a[i] with two rt_undo_write16 stores; a power failure rolls a
 * half-done swap back and re-runs only that task.
 * Broken (APP_BROKEN): the swap stores the two elements directly, without the undo log - a
 * torn swap: a failure part-way leaves one value in both places (or a value mixing the
 * bytes of both), and the re-run task cannot bring the lost value back.
 */
#include <stddef.h>
#include <stdint.h>

#include "rt.h"

void *memcpy(void *dst, const void *src, size_t n); /* firmware/lib/string.c */

#define N 48
#define INPUT_SIZE (2 * N)

/* One int16 as its two little-endian bytes. */
#define V(x) (uint8_t)(uint16_t)(x), (uint8_t)((uint16_t)(x) >> 8)

NV_INIT uint8_t app_input[INPUT_SIZE] = {
    V(980),  V(-916), V(543),  V(-643), V(918),    V(796),  V(660),  V(945),
    V(386),  V(-935), V(-296), V(998),  V(917),    V(993),  V(-12),  V(32767),
    V(927),  V(-369), V(-552), V(67),   V(-535),   V(155),  V(-182), V(386),
    V(11),   V(-7),   V(113),  V(-871), V(-32768), V(-992), V(-700), V(-472),
    V(-65),  V(-16),  V(-16),  V(37),   V(532),    V(-687), V(584),  V(-539),
    V(-876), V(155),  V(-705), V(841),  V(-537),   V(-7),   V(991),  V(-848),
};
NV int16_t app_output[N];

static void swap(uint16_t i, uint16_t j)
{
#ifndef APP_BROKEN
    int16_t a = app_output[i], b = app_output[j];
    rt_undo_write16((volatile uint16_t *)&app_output[i], (uint16_t)b);
    rt_undo_write16((volatile uint16_t *)&app_output[j], (uint16_t)a);
#else
    /* bug: in place without the undo log (a generic swap through a temporary, as a
     * qsort-style sort over any element size does); a failure before the last byte of the
     * last copy leaves the pair torn */
    int16_t t;
    memcpy(&t, &app_output[i], sizeof t);
    memcpy(&app_output[i], &app_output[j], sizeof t);
    memcpy(&app_output[j], &t, sizeof t);
#endif
}

typedef struct {
    uint16_t i;
} state_t;

RT_TASK_STATE(state_t, state);

static uint16_t task_select(void *p)
{
    state_t *s = p;
    uint16_t min = s->i;
    for (uint16_t j = (uint16_t)(s->i + 1); j < N; j++)
        if (app_output[j] < app_output[min])
            min = j;
    if (min != s->i)
        swap(s->i, min);
    s->i = (uint16_t)(s->i + 1);
    return s->i < N - 1 ? 0 : RT_TASK_DONE;
}

static const rt_task_fn tasks[] = {task_select};
static const rt_taskset_t taskset = {{&state[0], &state[1]}, sizeof(state_t), tasks, 1};

static void start(void)
{
    for (uint16_t k = 0; k < N; k++)
        app_output[k] = (int16_t)(app_input[2 * k] | (uint16_t)app_input[2 * k + 1] << 8);
    NV_BARRIER(); /* the copy is complete before the job can commit its first task */
    const state_t initial = {0};
    rt_tasks_start(&taskset, &initial);
}

static uint8_t resume(void)
{
    rt_tasks_run(&taskset);
    return RT_EXIT_FINAL;
}

static const rt_app_t app = {
    .name = "sort", .version = 1,
    .input = app_input, .input_size = INPUT_SIZE,
    .output = (const uint8_t *)app_output, .output_size = sizeof app_output,
    .start = start, .resume = resume,
};

int main(void)
{
    rt_main(&app);
}

/*
 * logger - a sensor logger that keeps the newest readings in a non-volatile ring buffer.
 *
 * Input:  app_input, READINGS sensor readings u16 (LOAD, or the built-in temperatures in
 *         hundredths of a degree as flashed), logged in order.
 * Output: app_output (also in RESULT): total u16 (readings logged), then the RING ring
 *         entries from oldest to newest, each {sequence number u16 (the reading's index in
 *         the input), reading u16}, then the minimum and maximum reading in the ring, u16
 *         each.
 *
 * Correct: a task per reading over double-buffered state {head, total}: the task writes
 * ring[head] = {total, reading} (a function of the committed state and the input, so a
 * re-run rewrites the same bytes), then advances head and total together in the working
 * copy; a final task writes the output. A power failure re-runs at most one reading.
 * Broken (APP_BROKEN): head and total are two non-volatile variables updated in place one
 * after the other (claim the slot, fill it, count it), and the loop resumes from total - a
 * torn multi-word commit: a failure between the two stores logs the reading again one slot
 * further on, so the ring holds it twice (or a stale entry, if the fill was cut short) and
 * has lost an older reading.
 */
#include <stdint.h>

#include "rt.h"

#define READINGS 40
#define RING 12
#define INPUT_SIZE (2 * READINGS)

_Static_assert(READINGS >= RING, "the ring is full at the end of a job");

/* One u16 reading as its two little-endian bytes. */
#define R(x) (uint8_t)(x), (uint8_t)((x) >> 8)

NV_INIT uint8_t app_input[INPUT_SIZE] = {
    R(2064), R(2085), R(2094), R(2076), R(2102), R(2118), R(2155), R(2076), R(2091), R(2075),
    R(2083), R(2136), R(2123), R(2131), R(2084), R(2078), R(2064), R(2109), R(2136), R(2110),
    R(2118), R(2079), R(2063), R(2103), R(2122), R(2119), R(2106), R(2127), R(2089), R(2090),
    R(2085), R(2085), R(2107), R(1875), R(2126), R(2090), R(2390), R(2109), R(2112), R(2098),
};
NV uint8_t app_output[2 + 4 * RING + 4];

typedef struct {
    uint16_t seq;
    uint16_t reading;
} entry_t;

NV static entry_t ring[RING];

static uint16_t reading(uint16_t t)
{
    return (uint16_t)(app_input[2 * t] | (uint16_t)app_input[2 * t + 1] << 8);
}

static uint16_t next(uint16_t slot)
{
    return slot + 1 == RING ? 0 : (uint16_t)(slot + 1);
}

static void log_reading(uint16_t slot, uint16_t t)
{
    ring[slot].seq = t;
    ring[slot].reading = reading(t);
}

static uint16_t put16(uint16_t at, uint16_t v)
{
    app_output[at] = (uint8_t)v;
    app_output[at + 1] = (uint8_t)(v >> 8);
    return (uint16_t)(at + 2);
}

/* The output for a full ring whose oldest entry is at head. */
static void store_output(uint16_t head, uint16_t total)
{
    uint16_t at = put16(0, total);
    uint16_t min = 0xFFFFu, max = 0;
    for (uint16_t k = 0; k < RING; k++) {
        const entry_t *e = &ring[head];
        at = put16(at, e->seq);
        at = put16(at, e->reading);
        min = e->reading < min ? e->reading : min;
        max = e->reading > max ? e->reading : max;
        head = next(head);
    }
    at = put16(at, min);
    put16(at, max);
}

#ifndef APP_BROKEN

typedef struct {
    uint16_t head;
    uint16_t total;
} state_t;

RT_TASK_STATE(state_t, state);

static uint16_t task_log(void *p)
{
    state_t *s = p;
    log_reading(s->head, s->total);
    s->head = next(s->head);
    s->total = (uint16_t)(s->total + 1);
    return s->total < READINGS ? 0 : 1;
}

static uint16_t task_finish(void *p)
{
    const state_t *s = p;
    store_output(s->head, s->total); /* a function of the committed state: re-runnable */
    return RT_TASK_DONE;
}

static const rt_task_fn tasks[] = {task_log, task_finish};
static const rt_taskset_t taskset = {{&state[0], &state[1]}, sizeof(state_t), tasks, 2};

static void start(void)
{
    const state_t initial = {0, 0};
    rt_tasks_start(&taskset, &initial);
}

static uint8_t resume(void)
{
    rt_tasks_run(&taskset);
    return RT_EXIT_FINAL;
}

#else /* APP_BROKEN */

NV static volatile uint16_t head;
NV static volatile uint16_t total;

static void start(void)
{
    head = 0;
    total = 0;
}

static uint8_t resume(void)
{
    while (total < READINGS) {
        uint16_t slot = head, t = total;
        head = next(slot); /* claim the slot, */
        NV_BARRIER();
        log_reading(slot, t); /* fill it, */
        NV_BARRIER();
        total = (uint16_t)(t + 1); /* count it. bug: not committed together with head */
    }
    store_output(head, total);
    return RT_EXIT_FINAL;
}

#endif

static const rt_app_t app = {
    .name = "logger", .version = 1,
    .input = app_input, .input_size = INPUT_SIZE,
    .output = app_output, .output_size = sizeof app_output,
    .start = start, .resume = resume,
};

int main(void)
{
    rt_main(&app);
}

/*
 * checksum - CRC-32 (IEEE 802.3, as zlib.crc32) of a non-volatile input buffer.
 *
 * Input:  app_input, INPUT_SIZE bytes (LOAD, or the built-in text as flashed).
 * Output: app_output, the CRC-32 as u32 little-endian (also in RESULT).
 *
 * Correct: a task per CHUNK bytes over double-buffered state {position, crc}; a power
 * failure re-runs at most one chunk.
 * Broken (APP_BROKEN): position and crc are plain non-volatile variables updated in
 * place, one after the other - a write-after-read hazard: a failure between the two
 * stores feeds a byte into the CRC twice.
 */
#include <stdint.h>

#include "rt.h"

#define INPUT_SIZE 256
#define CHUNK 32

NV_INIT uint8_t app_input[INPUT_SIZE] =
    "Batteryless sensors run on harvested energy; their power fails many times a second. "
    "Firmware must keep its progress in non-volatile memory so that work finishes correctly.";
NV uint8_t app_output[4];

static uint32_t crc32_byte(uint32_t crc, uint8_t byte)
{
    crc ^= byte;
    for (int i = 0; i < 8; i++)
        crc = (crc & 1u) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    return crc;
}

static void store_output(uint32_t crc)
{
    for (int i = 0; i < 4; i++)
        app_output[i] = (uint8_t)(crc >> (8 * i));
}

#ifndef APP_BROKEN

typedef struct {
    uint16_t position;
    uint32_t crc;
} state_t;

RT_TASK_STATE(state_t, state);

static uint16_t task_chunk(void *p)
{
    state_t *s = p;
    uint32_t crc = s->crc;
    for (uint16_t i = 0; i < CHUNK && s->position + i < INPUT_SIZE; i++)
        crc = crc32_byte(crc, app_input[s->position + i]);
    s->crc = crc;
    s->position = (uint16_t)(s->position + CHUNK);
    return s->position < INPUT_SIZE ? 0 : 1;
}

static uint16_t task_finish(void *p)
{
    store_output(~((state_t *)p)->crc); /* a function of the committed state: re-runnable */
    return RT_TASK_DONE;
}

static const rt_task_fn tasks[] = {task_chunk, task_finish};
static const rt_taskset_t taskset = {{&state[0], &state[1]}, sizeof(state_t), tasks, 2};

static void start(void)
{
    const state_t initial = {0, 0xFFFFFFFFu};
    rt_tasks_start(&taskset, &initial);
}

static uint8_t resume(void)
{
    rt_tasks_run(&taskset);
    return RT_EXIT_FINAL;
}

#else /* APP_BROKEN */

NV static volatile uint16_t position;
NV static volatile uint32_t crc;

static void start(void)
{
    position = 0;
    crc = 0xFFFFFFFFu;
}

static uint8_t resume(void)
{
    while (position < INPUT_SIZE) {
        crc = crc32_byte(crc, app_input[position]); /* bug: not committed with position */
        position = (uint16_t)(position + 1);
    }
    store_output(~crc);
    return RT_EXIT_FINAL;
}

#endif

static const rt_app_t app = {
    .name = "checksum", .version = 1,
    .input = app_input, .input_size = INPUT_SIZE,
    .output = app_output, .output_size = sizeof app_output,
    .start = start, .resume = resume,
};

int main(void)
{
    rt_main(&app);
}

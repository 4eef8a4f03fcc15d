/*
 * dnn_app.c - a generated model (model.h) as an intermittent app (docs/models.md).
 *
 * Input:  app_input, the int8 input tensor (LOAD, or the model's default input as flashed).
 * Output: app_output, the int8 outputs of the last layer (also in RESULT, exit RT_EXIT_FINAL).
 *
 * Progress: one task over the double-buffered state {stage, pos}. A run of the task
 * computes the next dnn_commit_every[stage] output elements of the stage (all the rest
 * when 0) into the stage's non-volatile output buffer, then the runtime commits the
 * advanced {stage, pos}. The writes are idempotent: they depend only on the stage's input
 * buffer, which no task writes while the stage runs (stage i writes dnn_buffer[i % 2] and
 * reads the other one, or app_input), so a power failure anywhere re-runs at most one
 * chunk and the output is that of an uninterrupted run, bit for bit.
 *
 * Early exits (later): a stage flagged as an exit would end the job with its exit index
 * when rt_energy_low(); the state and the task loop already allow it.
 */
#include <stdint.h>

#include "dnn.h"
#include "rt.h"

#include "model.h" /* generated: DNN_* sizes, app_input, app_output, buffers, dnn_stages */

typedef struct {
    uint16_t stage; /* stage being computed; DNN_STAGES when done */
    uint16_t pos;   /* its first output element not yet committed */
} state_t;

RT_TASK_STATE(state_t, state);

static uint16_t task_chunk(void *p)
{
    state_t *st = p;
    const dnn_stage_t *s = &dnn_stages[st->stage];
    uint16_t size = s->outputs, n = dnn_commit_every[st->stage];
    uint16_t end = (n == 0 || n >= size - st->pos) ? size : (uint16_t)(st->pos + n);
    dnn_stage_run(s, st->pos, end);
    if (end < size) {
        st->pos = end;
    } else {
        st->stage++;
        st->pos = 0;
    }
    return st->stage < DNN_STAGES ? 0 : RT_TASK_DONE;
}

static const rt_task_fn tasks[] = {task_chunk};
static const rt_taskset_t taskset = {{&state[0], &state[1]}, sizeof(state_t), tasks, 1};

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

static const rt_app_t app = {
    .name = DNN_NAME, .version = 1,
    .input = app_input, .input_size = DNN_INPUT_SIZE,
    .output = app_output, .output_size = DNN_OUTPUT_SIZE,
    .start = start, .resume = resume,
};

int main(void)
{
    rt_main(&app);
}

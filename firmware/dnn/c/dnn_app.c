/*
 * dnn_app.c - a generated model (model.h) as an intermittent app (docs/models.md).
 *
 * Input:  app_input, the int8 input tensor (LOAD, or the model's default input as flashed).
 * Output: app_output, the int8 outputs of the last layer (RESULT exit RT_EXIT_FINAL), or
 *         of the shared exit classifier at exit point e (RESULT exit e).
 *
 * Progress: one task over the double-buffered state {stage, exit, pos}. A run of the task
 * computes the next dnn_commit_every[stage] output elements of the stage (all the rest
 * when 0) into the stage's non-volatile output buffer, then the runtime commits the
 * advanced state. The writes are idempotent: they depend only on the stage's input
 * buffer, which no task writes while the stage runs (stage i writes dnn_buffer[i % 2] and
 * reads the other one, or app_input), so a power failure anywhere re-runs at most one
 * chunk and the output is that of an uninterrupted run, bit for bit.
 *
 * Designs (dnn.h): a weighted stage whose dnn_design[stage] is not the default counts pos
 * in the design's steps (tiles, and passes of the input-stationary order) and commits
 * every dnn_commit_every[stage] steps, never across a pass boundary. Its tasks write the
 * output buffer or one half of the double-buffered accumulator dnn_acc while reading the
 * input buffer and the other half, which nothing writes during the pass: idempotent too.
 * The staging buffer is volatile and filled again by every run of a task.
 *
 * Early exits: the run of the task that completes a backbone stage ending at exit point e
 * reads rt_energy_low(). Low: the next stage becomes exit e's pooling stage (which reads
 * the buffer the backbone stage just finished) and the state's exit becomes e; then exit
 * e's classifier stage (the shared weights, e's bias and shift) writes app_output and the
 * job ends. Otherwise the backbone goes on. The decision is part of the state that the
 * runtime commits with that chunk, in one store: a failure before the commit re-runs the
 * chunk, which reads the flag again (nothing was decided); after the commit the decision
 * stands, whatever the flag says at the next boot (the committed decision wins), and no
 * later task reads the flag for that exit point. The exit path and the final path never
 * both write app_output in one job: which one runs is fixed by the committed state, and
 * each writes all of app_output.
 */
#include <stdint.h>

#include "dnn.h"
#include "rt.h"

#include "model.h" /* generated: DNN_* sizes, app_input, app_output, buffers, dnn_stages */

typedef struct {
    uint8_t stage; /* stage being computed; DNN_ALL_STAGES when done */
    uint8_t exit;  /* the exit taken (committed decision), RT_EXIT_FINAL while none */
    uint16_t pos;  /* the stage's first output element (a design: step) not yet committed */
} state_t;

RT_TASK_STATE(state_t, state);

static int32_t *const accumulators[2] = {dnn_acc[0], dnn_acc[1]};
static dnn_plan_t plan;    /* volatile: the plan of stage plan_stage - 1 (0: none), made again */
static uint8_t plan_stage; /* after every boot (.bss is zeroed) */

/* A stage under a design (dnn.h): runs the task's steps and advances pos; 0 when they were
 * the stage's last ones. Out of line, so that the default path keeps its small frame. */
static __attribute__((noinline)) int design_chunk(state_t *st, const dnn_stage_t *s, const dnn_design_t *d,
                                                  uint16_t n)
{
    if (plan_stage != st->stage + 1u) {
        if (!dnn_plan(s, d, &plan))
            rt_fatal("dnn: a design of more than 65535 steps");
        plan_stage = (uint8_t)(st->stage + 1u);
    }
    uint16_t stop = (uint16_t)((st->pos / plan.tiles + 1u) * plan.tiles); /* a task ends with its pass */
    uint16_t end = (n == 0 || n >= stop - st->pos) ? stop : (uint16_t)(st->pos + n);
    dnn_design_run(s, d, &plan, st->pos, end, accumulators, dnn_staged);
    st->pos = end;
    return end < plan.steps;
}

static uint16_t task_chunk(void *p)
{
    state_t *st = p;
    const dnn_stage_t *s = &dnn_stages[st->stage];
    const dnn_design_t *d = &dnn_design[st->stage];
    uint16_t n = dnn_commit_every[st->stage];
    if (dnn_design_is_default(s, d)) { /* output elements in channel-major order */
        uint16_t size = s->outputs;
        uint16_t end = (n == 0 || n >= size - st->pos) ? size : (uint16_t)(st->pos + n);
        dnn_stage_run(s, st->pos, end);
        if (end < size) {
            st->pos = end;
            return 0;
        }
    } else if (design_chunk(st, s, d, n)) { /* steps of the design */
        return 0;
    }
    st->pos = 0;
    if (st->stage == DNN_STAGES - 1 || st->stage >= DNN_STAGES + DNN_EXITS) { /* app_output written */
        st->stage = DNN_ALL_STAGES;
        return RT_TASK_DONE;
    }
    if (st->stage >= DNN_STAGES) { /* exit e's pooling: on to the classifier with e's bias */
        st->stage = (uint8_t)(st->stage + DNN_EXITS);
    } else if (s->exit != DNN_NO_EXIT && rt_energy_low()) { /* the exit decision */
        st->exit = s->exit;
        st->stage = (uint8_t)(DNN_STAGES + s->exit);
    } else {
        st->stage++;
    }
    return 0;
}

static const rt_task_fn tasks[] = {task_chunk};
static const rt_taskset_t taskset = {{&state[0], &state[1]}, sizeof(state_t), tasks, 1};

static void start(void)
{
    const state_t initial = {0, RT_EXIT_FINAL, 0};
    rt_tasks_start(&taskset, &initial);
}

static uint8_t resume(void)
{
    rt_tasks_run(&taskset);
    return ((const state_t *)rt_tasks_state(&taskset))->exit;
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

/*
 * rt.h - the intermittent runtime: progress preservation that is correct for a power
 * failure after any instruction, including during a commit and during recovery.
 * The invariants behind each part are in firmware/runtime/README.md.
 *
 *   tasks   A job is a sequence of tasks over an application state kept twice in
 *           non-volatile memory. A task reads the committed copy, writes the working
 *           copy, and one single-word store (rt_active) commits both the new state
 *           and the next task. A failure re-runs only the task in flight.
 *   undo    In-place updates of larger non-volatile structures: rt_undo_write logs the
 *           old bytes before it writes. Until the next task commit, a failure rolls
 *           every logged write back at boot; the commit makes the log obsolete.
 *   boot    rt_boot_count (boots since flashing), rt_progress() (commits in this job),
 *           rt_cycles() (CPU cycles the job's committed work took, on the board's counter).
 *   host    rt_main runs an app under the host protocol (docs/protocol.md): INFO,
 *           LOAD, RUN, STATUS, RESULT; a job resumes by itself after power failures
 *           and sends RESULT when done.
 *   jit     rt_checkpoint / rt_restore: registers, stack and volatile data saved to
 *           non-volatile memory (e.g. from a power-warning interrupt), restored at boot.
 */
#ifndef FIRMWARE_RT_H
#define FIRMWARE_RT_H

#include <stdint.h>

#include "nv.h"

/* ---- tasks -------------------------------------------------------------------------- */

/* A task gets the working copy of the state and returns the index of the next task,
 * or RT_TASK_DONE. It may write only the working copy, volatile memory, non-volatile
 * memory through rt_undo_write, and non-volatile bytes whose values depend only on the
 * committed state and the job's input (rewriting them is harmless). */
typedef uint16_t (*rt_task_fn)(void *state);
#define RT_TASK_DONE 0xFFFFu

typedef struct {
    void *copies[2];         /* two non-volatile buffers of `size` bytes each */
    uint16_t size;
    const rt_task_fn *tasks; /* tasks[i] is task i; a job starts at task 0 */
    uint16_t count;
} rt_taskset_t;

/* Declares the two non-volatile copies of a task state of type `type`. */
#define RT_TASK_STATE(type, name) NV static type name[2]

/* Start a new job: the state becomes `initial` (size bytes), the next task 0.
 * Re-running it after a failure is harmless. */
void rt_tasks_start(const rt_taskset_t *set, const void *initial);

/* Run tasks until one returns RT_TASK_DONE (at once if the job is already done). */
void rt_tasks_run(const rt_taskset_t *set);

/* The committed state (read-only for the caller). */
const void *rt_tasks_state(const rt_taskset_t *set);

/* Tasks committed since rt_tasks_start. */
uint32_t rt_progress(void);

/* CPU cycles (modulo 2^32) of the job up to its last commit: in each power-on period,
 * from the start of the board's counter (rt_boot; in the job's first period: from
 * rt_tasks_start's commit) to the period's last commit (README.md, "Cycle count"). */
uint32_t rt_cycles(void);

/* ---- undo log ----------------------------------------------------------------------- */

#ifndef RT_UNDO_ENTRIES
#define RT_UNDO_ENTRIES 16
#endif
#ifndef RT_UNDO_BYTES
#define RT_UNDO_BYTES 128
#endif

/* Copy len bytes from src to the non-volatile dst, logging dst's old bytes first. The
 * write is undone by a failure before the next commit. A log too small for one task's
 * writes stops the firmware in rt_fatal. */
void rt_undo_write(void *dst, const void *src, uint16_t len);

/* Convenience forms for one word. */
void rt_undo_write16(volatile uint16_t *dst, uint16_t value);
void rt_undo_write32(volatile uint32_t *dst, uint32_t value);

/* ---- boot ---------------------------------------------------------------------------- */

/* Boots since flashing (one increment per boot; see README for the Cortex-M caveat). */
extern volatile uint16_t rt_boot_count;

/* First call after reset: starts the cycle counter, counts the boot and rolls back an
 * unfinished undo log. */
void rt_boot(void);

/* A broken invariant (e.g. undo log full): the firmware stops here for good. */
void rt_fatal(const char *why) __attribute__((noreturn));

/* ---- host: an app under the protocol ---------------------------------------------------- */

#define RT_EXIT_FINAL 0xFFu

typedef struct {
    const char *name;          /* reported by INFO */
    uint16_t version;
    uint8_t *input;            /* non-volatile input buffer (written by LOAD) */
    uint16_t input_size;
    const uint8_t *output;     /* non-volatile output, valid once the job is done */
    uint16_t output_size;
    void (*start)(void);       /* a new job: set the state up from the input */
    uint8_t (*resume)(void);   /* run or resume the job to its end; the exit taken */
} rt_app_t;

/* Job state word (one atomic store): bits 0-1 the state, bit 2 set when the host
 * started the job (RUN), bits 8-15 the RUN request's seq. */
#define RT_JOB_IDLE    0u
#define RT_JOB_START   1u
#define RT_JOB_RUNNING 2u
#define RT_JOB_DONE    3u
#define RT_JOB_STATE(w) ((uint16_t)(w) & 3u)
#define RT_JOB_HOST    4u
/* rt_job as flashed: a job on the app's built-in input starts at the first boot,
 * without a host (a freshly flashed board computes once, then waits for the host). */
#define RT_JOB_FACTORY RT_JOB_START

extern volatile uint16_t rt_job;

/* Set by the host or an energy monitor: stop at the next early exit (apps that have
 * exits check it through rt_energy_low()). */
extern volatile uint16_t rt_low_energy;
static inline int rt_energy_low(void) { return rt_low_energy != 0; }

/* Never returns: boot, resume any unfinished job, serve host commands. */
void rt_main(const rt_app_t *app) __attribute__((noreturn));

/* ---- just-in-time checkpoint --------------------------------------------------------------- */

/* Save registers, the used stack and volatile data (.data, .bss) to non-volatile memory.
 * Returns 0 after saving and 1 when execution resumes from this checkpoint after a
 * reboot (like setjmp). Call it at chosen points or from a power-warning interrupt
 * handler (MSP430 Comparator_E, STM32 PVD): resumed there, it returns 1 in the handler,
 * which must set its peripheral up again; the handler's return then resumes the
 * interrupted code (README.md, "Just-in-time checkpoint"). */
int rt_checkpoint(void);

/* At boot: if a checkpoint exists, resume it (rt_checkpoint returns 1); else return. */
void rt_restore(void);

/* Forget the checkpoint (e.g. when the work it protects is done). */
void rt_checkpoint_clear(void);

#endif /* FIRMWARE_RT_H */

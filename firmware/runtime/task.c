/*
 * Task-based execution over double-buffered non-volatile state (README.md, "Tasks").
 *
 * rt_active (one word) says which copy is committed. Each copy carries a header: the
 * commit sequence number (never decreases, also the undo log's epoch), the sequence
 * number at which the job started (so progress = seq - base) and the next task. A task
 * runs on the other copy, which becomes committed by the single store to rt_active.
 *
 * With each header goes the job's cycle count up to that commit (rt_cycle_count; README.md,
 * "Cycle count"): the committed count plus the board cycles since the last commit of this
 * power-on period (or since rt_boot started the counter). What "the last commit of this
 * period" read from the counter is committed too (`mark`, with the boot it was taken in):
 * no volatile variable carries anything from one commit to the next. It is all written
 * with the rest of the working header, so the one store that commits the state commits
 * the count.
 */
#include "rt.h"

#include "cycles.h"
#include "rt_internal.h"

typedef struct {
    uint32_t seq;
    uint32_t base;
    uint16_t next;
} header_t;

/* Each header's cycle count, committed with it by the same store. Kept apart from the
 * header because it is the one committed value that depends on where power failed: tools
 * that compare non-volatile state with a continuous-power run skip it (emu war/explain). */
typedef struct {
    uint32_t cycles; /* the job's cycles up to this commit */
    uint32_t mark;   /* board_cycles() read for this commit ... */
    uint16_t boot;   /* ... in this boot (rt_boot_count) */
} cycle_count_t;

NV static volatile uint16_t rt_active;
NV static volatile header_t rt_header[2];
NV static volatile cycle_count_t rt_cycle_count[2];

uint32_t rt_commit_seq(void)
{
    return rt_header[rt_active].seq;
}

uint32_t rt_progress(void)
{
    uint16_t a = rt_active;
    return rt_header[a].seq - rt_header[a].base;
}

uint32_t rt_cycles(void)
{
    return rt_cycle_count[rt_active].cycles;
}

const void *rt_tasks_state(const rt_taskset_t *set)
{
    return set->copies[rt_active];
}

static void copy_bytes(void *dst, const void *src, uint16_t len)
{
    volatile uint8_t *d = dst;
    const volatile uint8_t *s = src;
    while (len--)
        *d++ = *s++;
}

/* Write the working copy's header, then commit it with one store. `cycles`: the job's
 * count up to `now` (the counter's value read for this commit). */
static void commit(uint16_t working, uint32_t seq, uint32_t base, uint32_t cycles, uint32_t now, uint16_t next)
{
    rt_header[working].seq = seq;
    rt_header[working].base = base;
    rt_cycle_count[working].cycles = cycles;
    rt_cycle_count[working].mark = now;
    rt_cycle_count[working].boot = rt_boot_count;
    rt_header[working].next = next;
    NV_BARRIER();
    rt_active = working; /* the commit */
    NV_BARRIER();
}

/* The committed count plus the cycles since the committed header's counter read if it
 * was taken in this boot, else since the counter started at this boot (0). */
static uint32_t cycles_at(uint16_t committed, uint32_t now)
{
    uint32_t since = rt_cycle_count[committed].boot == rt_boot_count ? rt_cycle_count[committed].mark : 0;
    return rt_cycle_count[committed].cycles + (now - since); /* modulo 2^32 */
}

void rt_cycles_boot(void)
{
    board_cycles_start();
}

void rt_tasks_start(const rt_taskset_t *set, const void *initial)
{
    uint16_t a = rt_active, w = (uint16_t)(a ^ 1u);
    uint32_t seq = rt_header[a].seq + 1;
    copy_bytes(set->copies[w], initial, set->size);
    commit(w, seq, seq, 0, board_cycles(), 0); /* the job's count starts here, at 0 */
}

void rt_tasks_run(const rt_taskset_t *set)
{
    for (;;) {
        uint16_t a = rt_active, w = (uint16_t)(a ^ 1u);
        uint16_t task = rt_header[a].next;
        if (task == RT_TASK_DONE)
            return;
        if (task >= set->count)
            rt_fatal("task index out of range");
        copy_bytes(set->copies[w], set->copies[a], set->size);
        uint16_t next = set->tasks[task](set->copies[w]);
        uint32_t now = board_cycles();
        commit(w, rt_header[a].seq + 1, rt_header[a].base, cycles_at(a, now), now, next);
    }
}

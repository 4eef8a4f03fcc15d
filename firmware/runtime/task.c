/*
 * Task-based execution over double-buffered non-volatile state (README.md, "Tasks").
 *
 * rt_active (one word) says which copy is committed. Each copy carries a header: the
 * commit sequence number (never decreases, also the undo log's epoch), the sequence
 * number at which the job started (so progress = seq - base) and the next task. A task
 * runs on the other copy, which becomes committed by the single store to rt_active.
 */
#include "rt.h"

#include "rt_internal.h"

typedef struct {
    uint32_t seq;
    uint32_t base;
    uint16_t next;
} header_t;

NV static volatile uint16_t rt_active;
NV static volatile header_t rt_header[2];

uint32_t rt_commit_seq(void)
{
    return rt_header[rt_active].seq;
}

uint32_t rt_progress(void)
{
    uint16_t a = rt_active;
    return rt_header[a].seq - rt_header[a].base;
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

/* Write the working copy's header, then commit it with one store. */
static void commit(uint16_t working, uint32_t seq, uint32_t base, uint16_t next)
{
    rt_header[working].seq = seq;
    rt_header[working].base = base;
    rt_header[working].next = next;
    NV_BARRIER();
    rt_active = working; /* the commit */
    NV_BARRIER();
}

void rt_tasks_start(const rt_taskset_t *set, const void *initial)
{
    uint16_t a = rt_active, w = (uint16_t)(a ^ 1u);
    uint32_t seq = rt_header[a].seq + 1;
    copy_bytes(set->copies[w], initial, set->size);
    commit(w, seq, seq, 0);
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
        commit(w, rt_header[a].seq + 1, rt_header[a].base, next);
    }
}

/*
 * Undo log for in-place updates of non-volatile data (README.md, "Undo log").
 *
 * Entries (address, length, offset of the saved bytes) and the saved bytes are written
 * before `count` grows by one (a single store), and the in-place write comes after. The
 * log belongs to the task state committed when it was written (`epoch` = that commit's
 * sequence number): once the next commit happens the log is obsolete, so the commit
 * itself is what makes the writes permanent.
 */
#include "rt.h"

#include "rt_internal.h"

typedef struct {
    uint8_t *address;
    uint16_t length;
    uint16_t offset; /* into rt_undo_bytes */
} entry_t;

NV static volatile uint32_t rt_undo_epoch;
NV static volatile uint16_t rt_undo_count;
NV static volatile entry_t rt_undo_entries[RT_UNDO_ENTRIES];
NV static volatile uint8_t rt_undo_bytes[RT_UNDO_BYTES];

void rt_undo_recover(void)
{
    uint16_t n = rt_undo_count;
    if (n == 0 || rt_undo_epoch != rt_commit_seq())
        return;
    /* newest first, so the oldest saved bytes of an address win; idempotent */
    while (n--) {
        volatile uint8_t *dst = rt_undo_entries[n].address;
        const volatile uint8_t *src = &rt_undo_bytes[rt_undo_entries[n].offset];
        for (uint16_t i = 0; i < rt_undo_entries[n].length; i++)
            dst[i] = src[i];
    }
    NV_BARRIER();
    rt_undo_count = 0;
    NV_BARRIER();
}

void rt_undo_write(void *dst, const void *src, uint16_t len)
{
    uint32_t epoch = rt_commit_seq();
    if (rt_undo_epoch != epoch) { /* first write since the last commit: a new log */
        rt_undo_count = 0;
        NV_BARRIER();
        rt_undo_epoch = epoch;
        NV_BARRIER();
    }
    uint16_t n = rt_undo_count;
    uint16_t offset = n ? (uint16_t)(rt_undo_entries[n - 1].offset + rt_undo_entries[n - 1].length) : 0;
    if (n >= RT_UNDO_ENTRIES || len > RT_UNDO_BYTES - offset)
        rt_fatal("undo log full: raise RT_UNDO_ENTRIES / RT_UNDO_BYTES or commit more often");
    volatile uint8_t *d = dst;
    const volatile uint8_t *s = src;
    for (uint16_t i = 0; i < len; i++)
        rt_undo_bytes[offset + i] = d[i];
    rt_undo_entries[n].address = dst;
    rt_undo_entries[n].length = len;
    rt_undo_entries[n].offset = offset;
    NV_BARRIER();
    rt_undo_count = (uint16_t)(n + 1); /* the entry is now in force */
    NV_BARRIER();
    for (uint16_t i = 0; i < len; i++)
        d[i] = s[i];
    NV_BARRIER();
}

void rt_undo_write16(volatile uint16_t *dst, uint16_t value)
{
    rt_undo_write((void *)dst, &value, sizeof value);
}

void rt_undo_write32(volatile uint32_t *dst, uint32_t value)
{
    rt_undo_write((void *)dst, &value, sizeof value);
}

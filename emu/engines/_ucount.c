/*
 * _ucount: native helpers for emu.engines.unicorn_engine.
 *
 * Why native: the engine must count retired instructions exactly and stop at an
 * exact count without a Python call per instruction. Unicorn's own `count=` of
 * uc_emu_start is compiled into translated blocks (blocks translated while it
 * was off never count) and reports nothing when emulation stops early, so the
 * engine registers ONE UC_HOOK_CODE hook, implemented here, before any code is
 * translated. Every translated block therefore calls it. It
 *   - counts one per instruction. Instructions inside an IT block are counted
 *     when the IT instruction is (1 + the block's length): Unicorn does not call
 *     the hook for a conditional instruction that is skipped, and cannot stop
 *     inside a block. When the limit falls inside a block, the hook stops before
 *     the IT instruction and sets `it_split`; the engine then executes the IT
 *     itself and runs the first instructions of the block with a shortened
 *     ITSTATE (see unicorn_engine.run),
 *   - calls uc_emu_stop() when the limit is reached; the stop takes effect
 *     before the hooked instruction executes, so that instruction is neither
 *     executed nor counted,
 *   - optionally records each counted instruction's address (a PC trace, for
 *     campaigns that need the golden run's PC at many counts).
 *
 * The other helpers are also hot or fiddly enough to want C:
 *   - a UC_HOOK_TLB_FILL hook (virtual-TLB mode) that identity-maps pages and
 *     records which pages received a write since the TLB was last flushed:
 *     that is the dirty-page tracking save()/load() rely on; it costs nothing
 *     per store (stores keep QEMU's inline fast path),
 *   - hooks that record the details of invalid memory accesses, CPU exceptions
 *     (SVC, BKPT, ...) and treat WFE/YIELD as no-ops,
 *   - page helpers for snapshots (copy-on-save page lists).
 *
 * The hooks receive a pointer to a `ucount_t` owned by Python (a ctypes
 * structure mirrored in unicorn_engine.py; `layout()` lets it check offsets).
 * This module does not link against libunicorn: uc_emu_stop and uc_ctl are
 * called through function pointers that Python stores in the structure.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define UCOUNT_MAX_REGIONS 16

/* Values from unicorn.h (copied so we need no unicorn headers; exported so
 * that unicorn_engine.py can check them against unicorn_const). */
#define UC_MEM_WRITE 17
#define UC_PROT_READ 1
#define UC_PROT_WRITE 2
#define UC_PROT_EXEC 4
#define UC_CTL_TB_REMOVE_CACHE 9
#define UC_CTL_TLB_FLUSH 11
#define UC_CTL_IO_WRITE 1
#define UC_CTL(type, nr, rw) ((type) | ((nr) << 26) | ((rw) << 30))

typedef struct {
    uint64_t paddr;
    uint32_t perms;
} uc_tlb_entry;

typedef int (*uc_emu_stop_fn)(void *uc);
typedef int (*uc_ctl_fn)(void *uc, int control, ...);

/* One guest range backed by host memory (flash, its alias, RAMs). */
typedef struct {
    uint64_t start;     /* guest address */
    uint64_t size;      /* bytes */
    uint8_t *host;      /* host address of guest `start` */
    uint64_t page0;     /* snapshot-page index of `start` */
    uint32_t exec;      /* translated code may live here (invalidate on restore) */
    uint32_t pad;
} ucount_region_t;

typedef struct {
    /* counting */
    uint64_t count;          /* units retired (cumulative) */
    uint64_t limit;          /* stop before counting past this */
    uint64_t last_addr;      /* address of the last hooked instruction */
    uint64_t it_lo, it_hi;   /* [lo, hi): the instructions of the last IT block entered */
    uint64_t it_base;        /* count before the block's first instruction */
    uint32_t it_open;        /* executing inside [it_lo, it_hi) (already counted) */
    uint32_t it_split;       /* stopped before an IT instruction whose block the limit splits */
    uint32_t last_counted;   /* the last hook call incremented count */
    uint32_t stop_pending;   /* a stop was requested (limit reached, or bus error) */
    /* diagnostics */
    uint32_t intr_seen, intno;
    uint32_t mem_type, mem_size;
    uint64_t mem_addr;
    int64_t mem_value;
    uint64_t mem_pc;         /* last hooked instruction when the access failed */
    /* dirty tracking */
    uint8_t *dirty_map;      /* one byte per snapshot page */
    uint32_t *dirty_list;    /* pages in order of first write */
    uint64_t ndirty;
    uint64_t npages;
    uint32_t page_shift;     /* log2(snapshot page size) == Unicorn page size */
    uint32_t nregions;
    uint32_t hot;            /* region of the last code read (lookup cache) */
    uint32_t pad;
    /* Unicorn entry points and handle */
    void *uc;
    void *emu_stop;
    void *ctl;
    /* IT sites of the main code window (flash, not its alias): one bit per halfword,
     * set where the halfword is an IT encoding. Saves reading code in the hook. */
    uint8_t *code_bits;
    uint64_t code_lo;
    uint64_t code_size;
    ucount_region_t regions[UCOUNT_MAX_REGIONS];
    /* PC trace, written by code_hook_traced: trace[i - trace_base] = address of the
     * instruction that runs after i have retired, for i in [trace_base, +trace_len) */
    uint32_t *trace;
    uint64_t trace_base;
    uint64_t trace_len;
} ucount_t;

static inline void trace_pc(ucount_t *c, uint64_t index, uint64_t address)
{
    uint64_t i = index - c->trace_base;
    if (i < c->trace_len) {
        c->trace[i] = (uint32_t)address;
    }
}

static inline ucount_region_t *find_region(ucount_t *c, uint64_t addr)
{
    for (uint32_t i = 0; i < c->nregions; i++) {
        ucount_region_t *r = &c->regions[i];
        if (addr - r->start < r->size) {
            return r;
        }
    }
    return NULL;
}

/* Read a halfword of guest code; 0 if not host-backed (never an IT encoding). */
static inline uint32_t read16(ucount_t *c, uint64_t addr)
{
    ucount_region_t *r = &c->regions[c->hot];
    if (__builtin_expect(addr - r->start >= r->size - 1 || c->hot >= c->nregions, 0)) {
        r = find_region(c, addr);
        if (r == NULL || addr + 2 > r->start + r->size) {
            return 0;
        }
        c->hot = (uint32_t)(r - c->regions);
    }
    const uint8_t *p = r->host + (addr - r->start);
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

/* Length (1-4) of the IT block that the halfword at `address` opens, or 0 if it is
 * not an IT instruction. */
static inline int it_length(ucount_t *c, uint64_t address)
{
    uint64_t off = address - c->code_lo;
    if (__builtin_expect(off < c->code_size, 1)
        && !((c->code_bits[off >> 4] >> ((off >> 1) & 7)) & 1)) {
        return 0; /* the common case: the bitmap says no */
    }
    uint32_t hw = read16(c, address);
    /* IT: 1011 1111 cond mask, mask != 0 (mask == 0 are hints: NOP, WFI...) */
    if ((hw & 0xFF00) != 0xBF00 || (hw & 0xF) == 0) {
        return 0;
    }
    return 4 - __builtin_ctz(hw & 0xF);
}

/* The counting hook's body. `tracing` is a constant in each of the two hooks below, so
 * the untraced one carries no trace test at all (a branch per instruction costs ~5 %). */
static inline __attribute__((always_inline)) void count_insn(void *uc, uint64_t address, uint32_t size,
                                                             ucount_t *c, const int tracing)
{

    c->last_addr = address;
    if (__builtin_expect(c->it_open, 0)) {
        if (address - c->it_lo < c->it_hi - c->it_lo) {
            /* Inside an IT block: counted with its IT instruction. Unicorn
             * reverts stop requests here; if one is pending, ask again (harmless)
             * so that it takes effect right after the block. */
            c->last_counted = 0;
            if (c->stop_pending) {
                ((uc_emu_stop_fn)c->emu_stop)(uc);
            }
            return;
        }
        c->it_open = 0;
    }
    if (__builtin_expect(c->stop_pending || c->count >= c->limit, 0)) {
        /* Stop before this instruction: it is not executed, so not counted. */
        c->last_counted = 0;
        c->stop_pending = 1;
        ((uc_emu_stop_fn)c->emu_stop)(uc);
        return;
    }
    int n = size == 2 ? it_length(c, address) : 0;
    if (__builtin_expect(n != 0, 0)) {
        if (c->count + 1 + n > c->limit) {
            /* The limit falls inside this block: stop before the IT instruction
             * (not counted) and let the engine split the block. */
            c->last_counted = 0;
            c->stop_pending = 1;
            c->it_split = 1;
            ((uc_emu_stop_fn)c->emu_stop)(uc);
            return;
        }
        uint64_t a = address + 2;
        if (tracing) {
            trace_pc(c, c->count, address);
        }
        for (int i = 0; i < n; i++) {
            if (tracing) {
                trace_pc(c, c->count + 1 + i, a);
            }
            uint32_t h = read16(c, a);
            a += ((h >> 11) >= 0x1D) ? 4 : 2; /* 32-bit Thumb-2 prefix */
        }
        c->it_lo = address + 2;
        c->it_hi = a;
        c->it_base = c->count + 1;
        c->it_open = 1;
        c->count += 1 + n;
        c->last_counted = 1;
        return;
    }
    if (tracing) {
        trace_pc(c, c->count, address);
    }
    c->count++;
    c->last_counted = 1;
}

static void code_hook(void *uc, uint64_t address, uint32_t size, void *user)
{
    count_insn(uc, address, size, (ucount_t *)user, 0);
}

/* The same, also writing the PC trace (the engine swaps it in while recording). */
static void code_hook_traced(void *uc, uint64_t address, uint32_t size, void *user)
{
    count_insn(uc, address, size, (ucount_t *)user, 1);
}

/* dirty_map values: a page is clean, was written by the host (write_memory: reported
 * once), or holds a write-enabled TLB entry since the last flush (reported until the
 * next flush, as the CPU may write it again without a fill). */
enum { DIRTY_CLEAN = 0, DIRTY_ARMED = 1, DIRTY_HOST = 2 };

/* Virtual-TLB fill: identity mapping; writes are granted only on a write
 * fill, which marks the page dirty. A page can only be written through a TLB
 * entry created by such a fill, so after a TLB flush every written page shows
 * up here. Region permissions are still enforced by Unicorn (slow path). */
static bool tlb_fill_hook(void *uc, uint64_t vaddr, int type, uc_tlb_entry *e,
                         void *user)
{
    ucount_t *c = (ucount_t *)user;
    e->paddr = vaddr;
    if (type == UC_MEM_WRITE) {
        e->perms = UC_PROT_READ | UC_PROT_WRITE | UC_PROT_EXEC;
        ucount_region_t *r = find_region(c, vaddr);
        if (r != NULL) {
            uint64_t page = r->page0 + ((vaddr - r->start) >> c->page_shift);
            if (page < c->npages && c->dirty_map[page] != DIRTY_ARMED) {
                if (c->dirty_map[page] == DIRTY_CLEAN) {
                    c->dirty_list[c->ndirty++] = (uint32_t)page;
                }
                c->dirty_map[page] = DIRTY_ARMED;
            }
        }
    } else {
        e->perms = UC_PROT_READ | UC_PROT_EXEC;
    }
    return true;
}

/* UC_HOOK_MEM_INVALID: remember what failed, let Unicorn report the fault. */
static bool mem_invalid_hook(void *uc, int type, uint64_t address, int size,
                            int64_t value, void *user)
{
    ucount_t *c = (ucount_t *)user;
    if (c->mem_type == 0) {
        c->mem_type = (uint32_t)type;
        c->mem_addr = address;
        c->mem_size = (uint32_t)size;
        c->mem_value = value;
        c->mem_pc = c->last_addr;
    }
    return false;
}

/* UC_HOOK_INTR: Unicorn does not model Cortex-M exception entry; stop. */
static void intr_hook(void *uc, uint32_t intno, void *user)
{
    ucount_t *c = (ucount_t *)user;
    c->intr_seen = 1;
    c->intno = intno;
    ((uc_emu_stop_fn)c->emu_stop)(uc);
}

/* UC_HOOK_INSN_INVALID: QEMU raises EXCP_YIELD for WFE/YIELD, which Unicorn
 * reports as an invalid instruction. They are hints: treat them as retired
 * no-ops. Anything else is a real invalid instruction (return 0). */
static bool insn_invalid_hook(void *uc, void *user)
{
    ucount_t *c = (ucount_t *)user;
    uint32_t hw = read16(c, c->last_addr);
    if (hw == 0xBF10 || hw == 0xBF20) {
        return true;
    }
    if (hw == 0xF3AF) {
        uint32_t hw2 = read16(c, c->last_addr + 2);
        if (hw2 == 0x8001 || hw2 == 0x8002) {
            return true;
        }
    }
    return false;
}

/* ---- Python-callable helpers ------------------------------------------------ */

static ucount_t *arg_state(PyObject *o)
{
    void *p = PyLong_AsVoidPtr(o);
    if (p == NULL && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "null ucount_t pointer");
    }
    return (ucount_t *)p;
}

/* take_dirty(state) -> list of page indices that may have been written since the
 * last call: pages the host wrote since then, and every page granted CPU write access
 * since the last TLB flush (a superset of what the CPU wrote). Flushing Unicorn's TLB
 * costs about a millisecond, so it is done only when more than DIRTY_REARM_LIMIT pages
 * hold write entries; until then those pages are simply reported again (a page compare
 * or copy each). */
#define DIRTY_REARM_LIMIT 96
static PyObject *py_take_dirty(PyObject *self, PyObject *arg)
{
    ucount_t *c = arg_state(arg);
    if (c == NULL) {
        return NULL;
    }
    PyObject *out = PyList_New((Py_ssize_t)c->ndirty);
    if (out == NULL) {
        return NULL;
    }
    uint64_t armed = 0;
    for (uint64_t i = 0; i < c->ndirty; i++) {
        uint32_t page = c->dirty_list[i];
        PyList_SET_ITEM(out, (Py_ssize_t)i, PyLong_FromUnsignedLong(page));
        if (c->dirty_map[page] == DIRTY_ARMED) {
            c->dirty_list[armed++] = page;
        } else {
            c->dirty_map[page] = DIRTY_CLEAN;
        }
    }
    c->ndirty = armed;
    if (armed > DIRTY_REARM_LIMIT) {
        for (uint64_t i = 0; i < armed; i++) {
            c->dirty_map[c->dirty_list[i]] = DIRTY_CLEAN;
        }
        c->ndirty = 0;
        ((uc_ctl_fn)c->ctl)(c->uc, UC_CTL(UC_CTL_TLB_FLUSH, 0, UC_CTL_IO_WRITE));
    }
    return out;
}

/* mark_dirty(state, first_page, count): pages written by the host (flashing). */
static PyObject *py_mark_dirty(PyObject *self, PyObject *args)
{
    PyObject *st;
    unsigned long long first, n;
    if (!PyArg_ParseTuple(args, "OKK", &st, &first, &n)) {
        return NULL;
    }
    ucount_t *c = arg_state(st);
    if (c == NULL) {
        return NULL;
    }
    for (uint64_t p = first; p < first + n && p < c->npages; p++) {
        if (c->dirty_map[p] == DIRTY_CLEAN) {
            c->dirty_map[p] = DIRTY_HOST;
            c->dirty_list[c->ndirty++] = (uint32_t)p;
        }
    }
    Py_RETURN_NONE;
}

/* ident_diff(a, b) -> indices i where a[i] is not b[i] (same-length lists). */
static PyObject *py_ident_diff(PyObject *self, PyObject *args)
{
    PyObject *a, *b;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &a, &PyList_Type, &b)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(a);
    if (PyList_GET_SIZE(b) != n) {
        PyErr_SetString(PyExc_ValueError, "page lists differ in length");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_GET_ITEM(a, i) != PyList_GET_ITEM(b, i)) {
            PyObject *v = PyLong_FromSsize_t(i);
            if (v == NULL || PyList_Append(out, v) < 0) {
                Py_XDECREF(v);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(v);
        }
    }
    return out;
}

/* snap_pages(host_base, page_size, base, indices) -> copy of `base` where the
 * listed pages are replaced by fresh bytes copied from host memory. */
static PyObject *py_snap_pages(PyObject *self, PyObject *args)
{
    PyObject *basep, *base, *idx;
    Py_ssize_t psize;
    if (!PyArg_ParseTuple(args, "OnO!O!", &basep, &psize, &PyList_Type, &base,
                          &PyList_Type, &idx)) {
        return NULL;
    }
    const uint8_t *host = (const uint8_t *)PyLong_AsVoidPtr(basep);
    if (host == NULL) {
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "null");
    }
    PyObject *out = PyList_GetSlice(base, 0, PyList_GET_SIZE(base));
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(out);
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(idx); k++) {
        Py_ssize_t i = PyLong_AsSsize_t(PyList_GET_ITEM(idx, k));
        if (i < 0 || i >= n) {
            Py_DECREF(out);
            return PyErr_Occurred() ? NULL
                                    : PyErr_Format(PyExc_IndexError, "page %zd", i);
        }
        PyObject *old = PyList_GET_ITEM(out, i);
        if (PyBytes_Check(old) && PyBytes_GET_SIZE(old) == psize &&
            memcmp(PyBytes_AS_STRING(old), host + i * psize, (size_t)psize) == 0) {
            continue; /* unchanged (reported as possibly written): keep sharing it */
        }
        PyObject *page = PyBytes_FromStringAndSize((const char *)host + i * psize, psize);
        if (page == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, page);
        Py_DECREF(old);
    }
    return out;
}

/* Drop translated blocks over snapshot pages [first, first+n) in every
 * executable region that maps them (flash and its alias, RWX RAM). */
static void drop_code(ucount_t *c, uint64_t first, uint64_t n)
{
    for (uint32_t r = 0; r < c->nregions; r++) {
        ucount_region_t *reg = &c->regions[r];
        uint64_t lo = first, hi = first + n, rlo = reg->page0;
        uint64_t rhi = reg->page0 + (reg->size >> c->page_shift);
        lo = lo > rlo ? lo : rlo;
        hi = hi < rhi ? hi : rhi;
        if (reg->exec && lo < hi) {
            uint64_t a = reg->start + ((lo - rlo) << c->page_shift);
            uint64_t b = reg->start + ((hi - rlo) << c->page_shift);
            ((uc_ctl_fn)c->ctl)(c->uc, UC_CTL(UC_CTL_TB_REMOVE_CACHE, 2, UC_CTL_IO_WRITE), a, b);
        }
    }
}

/* restore_pages(state, host_base, page_size, pages, indices): copy the listed
 * pages (sorted ascending) back into host memory and drop translated blocks
 * that may cover them: Unicorn does not see host-side writes. */
static PyObject *py_restore_pages(PyObject *self, PyObject *args)
{
    PyObject *st, *basep, *pages, *idx;
    Py_ssize_t psize;
    if (!PyArg_ParseTuple(args, "OOnO!O!", &st, &basep, &psize, &PyList_Type,
                          &pages, &PyList_Type, &idx)) {
        return NULL;
    }
    ucount_t *c = arg_state(st);
    if (c == NULL) {
        return NULL;
    }
    uint8_t *host = (uint8_t *)PyLong_AsVoidPtr(basep);
    if (host == NULL) {
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "null");
    }
    if (psize != ((Py_ssize_t)1 << c->page_shift)) {
        return PyErr_Format(PyExc_ValueError, "page size %zd does not match", psize);
    }
    Py_ssize_t n = PyList_GET_SIZE(pages);
    uint64_t run_first = 0, run_len = 0; /* consecutive pages: one invalidation */
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(idx); k++) {
        Py_ssize_t i = PyLong_AsSsize_t(PyList_GET_ITEM(idx, k));
        if (i < 0 || i >= n) {
            return PyErr_Occurred() ? NULL
                                    : PyErr_Format(PyExc_IndexError, "page %zd", i);
        }
        PyObject *page = PyList_GET_ITEM(pages, i);
        if (!PyBytes_Check(page) || PyBytes_GET_SIZE(page) != psize) {
            return PyErr_Format(PyExc_TypeError, "page %zd is not %zd bytes", i, psize);
        }
        memcpy(host + i * psize, PyBytes_AS_STRING(page), (size_t)psize);
        if (run_len && (uint64_t)i == run_first + run_len) {
            run_len++;
        } else {
            if (run_len) {
                drop_code(c, run_first, run_len);
            }
            run_first = (uint64_t)i;
            run_len = 1;
        }
    }
    if (run_len) {
        drop_code(c, run_first, run_len);
    }
    Py_RETURN_NONE;
}

static PyObject *py_layout(PyObject *self, PyObject *unused)
{
    static const struct { const char *name; size_t value; } items[] = {
#define F(name) {#name, offsetof(ucount_t, name)}
        {"sizeof", sizeof(ucount_t)}, {"region_sizeof", sizeof(ucount_region_t)},
        F(count), F(limit), F(last_addr), F(it_lo), F(it_hi), F(it_base), F(it_open), F(it_split),
        F(last_counted),
        F(stop_pending), F(intr_seen), F(intno), F(mem_type), F(mem_size), F(mem_addr),
        F(mem_value), F(mem_pc), F(dirty_map), F(dirty_list), F(ndirty), F(npages), F(page_shift),
        F(nregions), F(hot), F(uc), F(emu_stop), F(ctl), F(code_bits), F(code_lo), F(code_size),
        F(regions), F(trace), F(trace_base), F(trace_len),
#undef F
    };
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        PyObject *v = PyLong_FromSize_t(items[i].value);
        if (v == NULL || PyDict_SetItemString(d, items[i].name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static PyMethodDef methods[] = {
    {"take_dirty", py_take_dirty, METH_O, "pages written since last call (clears, flushes TLB)"},
    {"mark_dirty", py_mark_dirty, METH_VARARGS, "mark host-written pages dirty"},
    {"ident_diff", py_ident_diff, METH_VARARGS, "indices where two lists hold different objects"},
    {"snap_pages", py_snap_pages, METH_VARARGS, "copy of a page list with pages refreshed from host memory"},
    {"restore_pages", py_restore_pages, METH_VARARGS, "copy pages into host memory, drop stale translations"},
    {"layout", py_layout, METH_NOARGS, "struct offsets, to check the ctypes mirror"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_ucount",
    "Native hooks and page helpers for the Unicorn engine (see _ucount.c).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__ucount(void)
{
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObject(m, "CODE_HOOK", PyLong_FromVoidPtr((void *)code_hook)) < 0 ||
        PyModule_AddObject(m, "CODE_HOOK_TRACED", PyLong_FromVoidPtr((void *)code_hook_traced)) < 0 ||
        PyModule_AddObject(m, "TLB_FILL_HOOK", PyLong_FromVoidPtr((void *)tlb_fill_hook)) < 0 ||
        PyModule_AddObject(m, "MEM_INVALID_HOOK", PyLong_FromVoidPtr((void *)mem_invalid_hook)) < 0 ||
        PyModule_AddObject(m, "INTR_HOOK", PyLong_FromVoidPtr((void *)intr_hook)) < 0 ||
        PyModule_AddObject(m, "INSN_INVALID_HOOK", PyLong_FromVoidPtr((void *)insn_invalid_hook)) < 0 ||
        PyModule_AddIntConstant(m, "MAX_REGIONS", UCOUNT_MAX_REGIONS) < 0 ||
        PyModule_AddIntConstant(m, "UC_MEM_WRITE", UC_MEM_WRITE) < 0 ||
        PyModule_AddIntConstant(m, "UC_PROT_READ", UC_PROT_READ) < 0 ||
        PyModule_AddIntConstant(m, "UC_PROT_WRITE", UC_PROT_WRITE) < 0 ||
        PyModule_AddIntConstant(m, "UC_PROT_EXEC", UC_PROT_EXEC) < 0 ||
        PyModule_AddIntConstant(m, "UC_CTL_TB_REMOVE_CACHE", UC_CTL_TB_REMOVE_CACHE) < 0 ||
        PyModule_AddIntConstant(m, "UC_CTL_TLB_FLUSH", UC_CTL_TLB_FLUSH) < 0 ||
        PyModule_AddIntConstant(m, "UC_CTL_IO_WRITE", UC_CTL_IO_WRITE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/*
 * dnn_design.c - a weighted stage (conv2d, dwconv2d, dense) computed by an intermittent
 * execution design (dnn.h, docs/models.md): output tiles in a loop order, optionally
 * input-stationary passes over int32 partial sums in a double-buffered non-volatile
 * accumulator, optionally with each tile's input region staged in SRAM.
 *
 * Everything is derived from the stage table and the design at run time (dnn_plan), so a
 * design is a flash-time table that a tool may rewrite without rebuilding. The default
 * design never comes here: dnn_app.c runs it with dnn_stage_run (dnn_kernels.c).
 *
 * Arithmetic: the same products and int32 sums as dnn_kernels.c, in another order. Integer
 * addition is associative and the generator bounds the sum of the absolute values of the
 * bias, the rounding term and every product by INT32_MAX, so every partial sum is exact
 * and the output bytes are those of the reference.
 */
#include "dnn.h"

static uint16_t clip(uint16_t v, uint16_t dim)
{
    return (v == 0 || v > dim) ? dim : v;
}

static uint16_t ceil_div(uint16_t a, uint16_t b) /* a >= 1 */
{
    return (uint16_t)((a - 1u) / b + 1u);
}

static uint16_t min16(uint16_t a, uint16_t b)
{
    return a < b ? a : b;
}

int dnn_plan(const dnn_stage_t *s, const dnn_design_t *d, dnn_plan_t *g)
{
    g->tc = clip(d->tile_c, s->out_c);
    g->th = clip(d->tile_h, s->out_h);
    g->tw = clip(d->tile_w, s->out_w);
    g->nc = ceil_div(s->out_c, g->tc);
    g->nh = ceil_div(s->out_h, g->th);
    g->nw = ceil_div(s->out_w, g->tw);
    g->tiles = (uint16_t)(g->nc * g->nh * g->nw); /* at most the outputs */
    g->slices = s->op == DNN_CONV2D ? s->in_c : s->op == DNN_DWCONV2D ? s->kernel : s->fan_in;
    g->per_pass = d->order == DNN_ORDER_INPUT ? clip(d->in_tile, g->slices) : g->slices;
    g->passes = ceil_div(g->slices, g->per_pass);
    uint32_t steps = (uint32_t)g->passes * g->tiles;
    if (steps > 0xFFFFu)
        return 0;
    g->steps = (uint16_t)steps;
    const uint16_t channel_in = s->op == DNN_DWCONV2D ? s->in_plane : 0, channel_w = s->rows ? 0 : s->fan_in;
    g->oc_step = (uint16_t)(g->tc * s->out_plane);
    g->ac_step = (uint16_t)(g->tc * channel_in);
    g->fc_step = (uint16_t)(g->tc * channel_w);
    g->oy_step = (uint16_t)(g->th * s->out_w);
    g->ay_step = (uint16_t)(g->th * s->in_w);
    g->next = 0xFFFFu;
    return 1;
}

/* One pass of a stage: where its products come from and where its sums go. */
typedef struct {
    const dnn_stage_t *s;
    const int8_t *in;       /* s->in, or the staging buffer laid out like it */
    const int32_t *acc_in;  /* the partial sums of the previous passes (pass > 0) */
    int32_t *acc_out;       /* the partial sums after this pass (not the last pass) */
    int32_t half;           /* the rounding term, added with the bias in pass 0 */
    uint16_t a, b, j;       /* dense weights: the slice loops (input planes, rows, values per row) */
    uint16_t count;         /* slices in the pass */
    uint16_t in_off, w_off; /* dense weights: the slice's first input (from the anchor) and weight */
    uint16_t lo, hi;        /* sparse weights: input offsets (from the anchor) of the slice */
    uint16_t out_w, out_plane, in_w;
    uint16_t a_channel, f_channel; /* input and weight offsets of the next channel */
    uint8_t first, last;
} pass_t;

/* A tile: channels [c0, c1) of rows x cols output elements, and where its first element
 * (c0, y0, x0) is: output index, input window (dense weights: at the slice), weights. */
typedef struct {
    uint16_t c0, c1, rows, cols;
    uint16_t o0;
    const int8_t *a0, *f0;
} tile_t;

/* acc plus the products of one output element's weights from w on with the inputs from
 * plane on: a planes of b rows of j values (dnn_kernels.c's conv loop, for one slice). */
static int32_t dot(int32_t acc, const pass_t *p, const int8_t *plane, const int8_t *w)
{
    const uint16_t in_plane = p->s->in_plane, in_w = p->s->in_w;
    DNN_MAC_BEGIN(acc);
    for (uint16_t a = 0; a < p->a; a++, plane += in_plane) {
        const int8_t *row = plane;
        for (uint16_t b = 0; b < p->b; b++, row += in_w)
            for (uint16_t j = 0; j < p->j; j++)
                DNN_MAC(acc, row[j], *w++);
    }
    DNN_MAC_END(acc);
    return acc;
}

/* acc plus the products of the sparse entries [e, stop) whose input offset (from anchor)
 * falls in [lo, hi): the entries are in address order, so the walk stops at the first one
 * past the slice. */
static int32_t sparse_slice(int32_t acc, const int8_t *anchor, const uint8_t *e, const uint8_t *stop, uint16_t lo,
                            uint16_t hi)
{
    uint16_t off = 0;
    DNN_MAC_BEGIN(acc);
    for (; e != stop; e += 2) {
        off = (uint16_t)(off + e[0]);
        if (off >= hi)
            break;
        if (off >= lo)
            DNN_MAC(acc, anchor[off], (int8_t)e[1]);
    }
    DNN_MAC_END(acc);
    return acc;
}

/* Output element o (channel c) for this pass; anchor: its window in the pass's input
 * (dense weights: already at the slice); filter: its channel's weights at the slice. */
static void element(const pass_t *p, uint16_t c, uint16_t o, const int8_t *anchor, const int8_t *filter)
{
    const dnn_stage_t *s = p->s;
    int32_t acc = p->first ? s->bias[c] + p->half : p->acc_in[o];
    if (s->rows) {
        const uint8_t *pairs = (const uint8_t *)s->weight;
        acc = sparse_slice(acc, anchor, pairs + 2u * s->rows[c], pairs + 2u * s->rows[c + 1], p->lo, p->hi);
    } else {
        acc = dot(acc, p, anchor, filter);
    }
    if (p->last)
        s->out[o] = dnn_saturate(acc, s->shift, s->relu);
    else
        p->acc_out[o] = acc;
}

/* Copy `planes` planes of `rows` rows of `width` values from s->in + at on into the staging
 * buffer, at the same offsets. */
static void stage_copy(const dnn_stage_t *s, int8_t *dst, uint16_t at, uint16_t planes, uint16_t rows,
                       uint16_t width)
{
    const uint16_t in_w = s->in_w, in_plane = s->in_plane;
    const int8_t *src = s->in; /* (a byte store may alias s: keep the pointer in a register) */
    for (uint16_t c = 0; c < planes; c++, at += in_plane) {
        int8_t *d = dst + at;
        const int8_t *from = src + at;
        for (uint16_t r = 0; r < rows; r++, d += in_w, from += in_w)
            for (uint16_t x = 0; x < width; x++)
                d[x] = from[x];
    }
}

/* Put d at tile `tile` of `count`, of `side` indices each. */
static void dim_start(dnn_dim_t *d, uint16_t tile, uint16_t count, uint16_t side, uint16_t out_step, uint16_t in_step,
                      uint16_t w_step)
{
    d->tile = tile, d->count = count;
    d->first = (uint16_t)(tile * side);
    d->out = (uint16_t)(tile * out_step), d->in = (uint16_t)(tile * in_step), d->w = (uint16_t)(tile * w_step);
}

/* The next tile along d: returns 1 when it wrapped around to tile 0. */
static int dim_next(dnn_dim_t *d, uint16_t side, uint16_t out_step, uint16_t in_step, uint16_t w_step)
{
    if (++d->tile == d->count) {
        d->tile = d->first = d->out = d->in = d->w = 0;
        return 1;
    }
    d->first = (uint16_t)(d->first + side);
    d->out = (uint16_t)(d->out + out_step), d->in = (uint16_t)(d->in + in_step), d->w = (uint16_t)(d->w + w_step);
    return 0;
}

/* A tile in channel, row, column order. */
static void tile_channel_major(const pass_t *p, const tile_t *t)
{
    uint16_t o_channel = t->o0;
    const int8_t *a_chan = t->a0, *f = t->f0;
    for (uint16_t c = t->c0; c < t->c1; c++, o_channel += p->out_plane, a_chan += p->a_channel, f += p->f_channel) {
        uint16_t o_row = o_channel;
        const int8_t *a_row = a_chan;
        for (uint16_t y = 0; y < t->rows; y++, o_row += p->out_w, a_row += p->in_w)
            for (uint16_t x = 0; x < t->cols; x++)
                element(p, c, (uint16_t)(o_row + x), a_row + x, f);
    }
}

/* A tile in row, column, channel order. */
static void tile_spatial(const pass_t *p, const tile_t *t)
{
    uint16_t o_row = t->o0;
    const int8_t *a_row = t->a0;
    for (uint16_t y = 0; y < t->rows; y++, o_row += p->out_w, a_row += p->in_w) {
        for (uint16_t x = 0; x < t->cols; x++) {
            uint16_t o = (uint16_t)(o_row + x);
            const int8_t *a = a_row + x, *f = t->f0;
            for (uint16_t c = t->c0; c < t->c1; c++, o += p->out_plane, a += p->a_channel, f += p->f_channel)
                element(p, c, o, a, f);
        }
    }
}

/* Set up pass t of stage s under plan g. */
static void pass_start(pass_t *p, const dnn_stage_t *s, const dnn_design_t *d, const dnn_plan_t *g, uint16_t t,
                       int32_t *const acc[2], int8_t *stage)
{
    const uint16_t k = s->kernel;
    const uint16_t s0 = (uint16_t)(t * g->per_pass), s1 = min16((uint16_t)(s0 + g->per_pass), g->slices);
    p->s = s;
    p->count = (uint16_t)(s1 - s0);
    p->first = t == 0;
    p->last = t == g->passes - 1;
    p->acc_in = acc[t & 1];
    p->acc_out = acc[(t + 1) & 1];
    p->half = dnn_rounding(s->shift);
    p->out_w = s->out_w, p->out_plane = s->out_plane, p->in_w = s->in_w;
    p->a_channel = s->op == DNN_DWCONV2D ? s->in_plane : 0;
    p->f_channel = s->rows ? 0 : s->fan_in;
    /* the slice [s0, s1): conv2d input channels, dwconv2d kernel rows, dense inputs */
    uint16_t stride; /* input offset of one slice */
    if (s->op == DNN_CONV2D) {
        p->a = (uint16_t)(s1 - s0), p->b = k, p->j = k, stride = s->in_plane, p->w_off = (uint16_t)(s0 * k * k);
    } else if (s->op == DNN_DWCONV2D) {
        p->a = 1, p->b = (uint16_t)(s1 - s0), p->j = k, stride = s->in_w, p->w_off = (uint16_t)(s0 * k);
    } else {
        p->a = 1, p->b = 1, p->j = (uint16_t)(s1 - s0), stride = 1, p->w_off = s0;
    }
    p->lo = (uint16_t)(s0 * stride);
    p->hi = (uint16_t)(s1 * stride);
    p->in_off = s->rows ? 0 : p->lo; /* sparse entries are offsets from the window's anchor */
    p->in = d->stage_input ? stage : s->in;
}

void dnn_design_run(const dnn_stage_t *s, const dnn_design_t *d, dnn_plan_t *g, uint16_t begin, uint16_t end,
                    int32_t *const acc[2], int8_t *stage)
{
    const int spatial = d->order == DNN_ORDER_SPATIAL;
    const uint16_t tc = g->tc, th = g->th, tw = g->tw;
    if (g->next != begin) { /* the cursor is elsewhere (a boot, a new stage): place it, dividing */
        uint16_t t = begin / g->tiles, u = (uint16_t)(begin - t * g->tiles), ct, yt, xt;
        if (spatial) {
            ct = u % g->nc, u /= g->nc;
            xt = u % g->nw, yt = u / g->nw;
        } else {
            xt = u % g->nw, u /= g->nw;
            yt = u % g->nh, ct = u / g->nh;
        }
        g->pass = t;
        dim_start(&g->c, ct, g->nc, tc, g->oc_step, g->ac_step, g->fc_step);
        dim_start(&g->y, yt, g->nh, th, g->oy_step, g->ay_step, 0);
        dim_start(&g->x, xt, g->nw, tw, tw, tw, 0);
    }
    pass_t p;
    pass_start(&p, s, d, g, g->pass, acc, stage);
    const uint16_t k = s->op == DNN_DENSE ? 1 : s->kernel;
    /* the staged region: planes of rows x width values from offset `at` (0xFFFF: none yet) */
    uint16_t staged_at = 0xFFFFu, staged_planes = 0, staged_rows = 0, staged_width = 0;
    tile_t tile;
    for (uint16_t step = begin; step < end; step++) {
        tile.c0 = g->c.first, tile.c1 = min16((uint16_t)(tile.c0 + tc), s->out_c);
        tile.rows = (uint16_t)(min16((uint16_t)(g->y.first + th), s->out_h) - g->y.first);
        tile.cols = (uint16_t)(min16((uint16_t)(g->x.first + tw), s->out_w) - g->x.first);
        const uint16_t at = (uint16_t)(g->c.in + g->y.in + g->x.first); /* the window of the first element */
        if (d->stage_input) { /* every input value the tile reads in this pass */
            uint16_t planes, rows, width = (uint16_t)(tile.cols + k - 1), from = (uint16_t)(at + p.lo);
            if (s->op == DNN_DWCONV2D)
                planes = (uint16_t)(tile.c1 - tile.c0), rows = (uint16_t)(tile.rows + p.count - 1);
            else
                planes = p.count, rows = (uint16_t)(tile.rows + k - 1);
            if (from != staged_at || planes != staged_planes || rows != staged_rows || width != staged_width) {
                stage_copy(s, stage, from, planes, rows, width);
                staged_at = from, staged_planes = planes, staged_rows = rows, staged_width = width;
            }
        }
        tile.o0 = (uint16_t)(g->c.out + g->y.out + g->x.first);
        tile.a0 = p.in + at + p.in_off;
        tile.f0 = s->weight + (s->rows ? 0 : (uint16_t)(g->c.w + p.w_off));
        if (spatial) {
            tile_spatial(&p, &tile);
            if (dim_next(&g->c, tc, g->oc_step, g->ac_step, g->fc_step) && dim_next(&g->x, tw, tw, tw, 0))
                dim_next(&g->y, th, g->oy_step, g->ay_step, 0);
        } else {
            tile_channel_major(&p, &tile);
            if (dim_next(&g->x, tw, tw, tw, 0) && dim_next(&g->y, th, g->oy_step, g->ay_step, 0))
                dim_next(&g->c, tc, g->oc_step, g->ac_step, g->fc_step);
        }
    }
    /* the cursor: at tile 0 again after the pass's last tile (a task ends there at the latest) */
    g->next = end;
    if (g->c.tile == 0 && g->y.tile == 0 && g->x.tile == 0)
        g->pass = (uint16_t)(g->pass + 1);
}

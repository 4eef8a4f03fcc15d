/*
 * dnn_kernels.c - the stage kernels of the int8 engine (dnn.h).
 *
 * Each kernel computes output elements [begin, end) of its stage in channel-major order.
 * The position (channel, row, column) is found once per call, then advanced element by
 * element; input pointers are advanced the same way, so the inner loops do no index
 * multiplications (the MSP430 has no multiply instruction in the code built here: an index
 * product is a call to __mspabi_mpyi). The products of the weights go through DNN_MAC
 * (dnn.h: the MPY32 on the MSP430).
 */
#include "dnn.h"

/* acc plus the products of a sparse row's entries [e, stop) with the inputs they select
 * from p on (dnn.h). */
static int32_t sparse_dot(int32_t acc, const int8_t *p, const uint8_t *e, const uint8_t *stop)
{
    DNN_MAC_BEGIN(acc);
    for (; e != stop; e += 2) {
        p += e[0];
        DNN_MAC(acc, *p, (int8_t)e[1]);
    }
    DNN_MAC_END(acc);
    return acc;
}

/* The entries of output channel c of a sparse stage: returns the first, sets *stop to the end. */
static const uint8_t *sparse_row(const dnn_stage_t *s, uint16_t c, const uint8_t **stop)
{
    const uint8_t *pairs = (const uint8_t *)s->weight;
    *stop = pairs + 2u * s->rows[c + 1];
    return pairs + 2u * s->rows[c];
}

/* conv2d (depthwise = 0) and depthwise conv2d (depthwise = 1), dense weights. */
static void conv(const dnn_stage_t *s, uint16_t begin, uint16_t end, int depthwise)
{
    const uint16_t k = s->kernel, in_w = s->in_w, out_w = s->out_w, out_h = s->out_h;
    const uint16_t in_plane = s->in_plane, per_filter = s->fan_in;
    const uint16_t channels = depthwise ? 1 : s->in_c; /* input channels per output */
    const int32_t half = dnn_rounding(s->shift);
    uint16_t c = begin / s->out_plane, r = begin % s->out_plane, y = r / out_w, x = r % out_w;
    const int8_t *filter = s->weight + (uint16_t)(c * per_filter);
    const int8_t *anchor = s->in + (depthwise ? (uint16_t)(c * in_plane) : 0) + (uint16_t)(y * in_w) + x;
    for (uint16_t o = begin; o < end; o++) {
        int32_t acc = s->bias[c] + half;
        const int8_t *w = filter, *plane = anchor;
        DNN_MAC_BEGIN(acc);
        for (uint16_t ic = 0; ic < channels; ic++, plane += in_plane) {
            const int8_t *row = plane;
            for (uint16_t i = 0; i < k; i++, row += in_w)
                for (uint16_t j = 0; j < k; j++)
                    DNN_MAC(acc, row[j], *w++);
        }
        DNN_MAC_END(acc);
        s->out[o] = dnn_saturate(acc, s->shift, s->relu);
        anchor++;
        if (++x == out_w) { /* next row: skip the k - 1 columns the window cannot start at */
            x = 0;
            anchor += k - 1;
            if (++y == out_h) { /* next output channel */
                y = 0;
                c++;
                filter += per_filter;
                anchor = depthwise ? anchor + (uint16_t)((k - 1) * in_w) : s->in;
            }
        }
    }
}

/* The same with sparse weights: the entries' deltas walk the window (dnn.h). */
static void conv_sparse(const dnn_stage_t *s, uint16_t begin, uint16_t end, int depthwise)
{
    const uint16_t k = s->kernel, in_w = s->in_w, out_w = s->out_w, out_h = s->out_h;
    const uint16_t in_plane = s->in_plane;
    const int32_t half = dnn_rounding(s->shift);
    uint16_t c = begin / s->out_plane, r = begin % s->out_plane, y = r / out_w, x = r % out_w;
    const int8_t *anchor = s->in + (depthwise ? (uint16_t)(c * in_plane) : 0) + (uint16_t)(y * in_w) + x;
    const uint8_t *row_end, *row_begin = sparse_row(s, c, &row_end);
    for (uint16_t o = begin; o < end; o++) {
        s->out[o] = dnn_saturate(sparse_dot(s->bias[c] + half, anchor, row_begin, row_end), s->shift, s->relu);
        anchor++;
        if (++x == out_w) {
            x = 0;
            anchor += k - 1;
            if (++y == out_h) {
                y = 0;
                c++;
                if (o + 1 < end) /* rows[c + 1] exists only for a channel that has outputs */
                    row_begin = sparse_row(s, c, &row_end);
                anchor = depthwise ? anchor + (uint16_t)((k - 1) * in_w) : s->in;
            }
        }
    }
}

static void dense_sparse(const dnn_stage_t *s, uint16_t begin, uint16_t end)
{
    const int32_t half = dnn_rounding(s->shift);
    for (uint16_t o = begin; o < end; o++) {
        const uint8_t *stop, *e = sparse_row(s, o, &stop);
        s->out[o] = dnn_saturate(sparse_dot(s->bias[o] + half, s->in, e, stop), s->shift, s->relu);
    }
}

static void dense(const dnn_stage_t *s, uint16_t begin, uint16_t end)
{
    const uint16_t n = s->fan_in;
    const int32_t half = dnn_rounding(s->shift);
    const int8_t *w = s->weight + (uint32_t)begin * n;
    const int8_t *const in = s->in; /* a local: the MPY32's volatile stores would make s->in a reload */
    for (uint16_t o = begin; o < end; o++) {
        int32_t acc = s->bias[o] + half;
        DNN_MAC_BEGIN(acc);
        for (uint16_t i = 0; i < n; i++)
            DNN_MAC(acc, in[i], *w++);
        DNN_MAC_END(acc);
        s->out[o] = dnn_saturate(acc, s->shift, s->relu);
    }
}

/* The pooling of an exit point (DNN_EXITPOOL, dnn.h): per channel, a g x g grid of region
 * sums, shifted; the padding outputs are 0. */
static void exitpool(const dnn_stage_t *s, uint16_t begin, uint16_t end)
{
    const uint16_t g = s->out_w, in_w = s->in_w, rh = s->in_h / g, rw = in_w / g;
    const uint16_t real = (uint16_t)(s->out_c * s->out_plane);
    const uint16_t row_step = (uint16_t)(rh * in_w - g * rw);          /* next grid row */
    const uint16_t chan_step = (uint16_t)(s->in_plane - g * rh * in_w); /* next channel */
    const int32_t half = dnn_rounding(s->shift);
    uint16_t c = 0, gy = 0, gx = 0;
    const int8_t *anchor = s->in;
    if (begin < real) {
        uint16_t r = begin % s->out_plane;
        c = begin / s->out_plane;
        gy = r / g;
        gx = r % g;
        anchor += (uint16_t)(c * s->in_plane) + (uint16_t)(gy * rh * in_w) + (uint16_t)(gx * rw);
    }
    for (uint16_t o = begin; o < end; o++) {
        if (o >= real) {
            s->out[o] = 0;
            continue;
        }
        int32_t acc = half;
        const int8_t *row = anchor;
        for (uint16_t i = 0; i < rh; i++, row += in_w)
            for (uint16_t j = 0; j < rw; j++)
                acc += row[j];
        s->out[o] = dnn_saturate(acc, s->shift, s->relu);
        anchor += rw;
        if (++gx == g) {
            gx = 0;
            anchor += row_step;
            if (++gy == g) {
                gy = 0;
                anchor += chan_step;
            }
        }
    }
}

/* 2x2 windows of stride 2: max (average = 0) or rounded average (average = 1). */
static void pool(const dnn_stage_t *s, uint16_t begin, uint16_t end, int average)
{
    const uint16_t in_w = s->in_w, out_w = s->out_w, out_h = s->out_h, in_plane = s->in_plane;
    uint16_t c = begin / s->out_plane, r = begin % s->out_plane, y = r / out_w, x = r % out_w;
    const int8_t *p = s->in + (uint16_t)(c * in_plane) + (uint16_t)(2 * y * in_w) + 2 * x;
    for (uint16_t o = begin; o < end; o++) {
        int8_t a = p[0], b = p[1], d = p[in_w], e = p[in_w + 1];
        int8_t v;
        if (average) {
            v = dnn_saturate((int32_t)((int16_t)a + b + d + e + 2), 2, s->relu);
        } else {
            v = a > b ? a : b;
            v = v > d ? v : d;
            v = v > e ? v : e;
            if (s->relu && v < 0)
                v = 0;
        }
        s->out[o] = v;
        p += 2;
        if (++x == out_w) { /* next pair of rows (an odd last column is skipped) */
            x = 0;
            p += 2 * in_w - 2 * out_w;
            if (++y == out_h) { /* next channel (an odd last row is skipped) */
                y = 0;
                c++;
                p = s->in + (uint16_t)(c * in_plane);
            }
        }
    }
}

void dnn_stage_run(const dnn_stage_t *s, uint16_t begin, uint16_t end)
{
    switch (s->op) {
    case DNN_CONV2D:
        if (s->rows)
            conv_sparse(s, begin, end, 0);
        else
            conv(s, begin, end, 0);
        break;
    case DNN_DWCONV2D:
        if (s->rows)
            conv_sparse(s, begin, end, 1);
        else
            conv(s, begin, end, 1);
        break;
    case DNN_DENSE:
        if (s->rows)
            dense_sparse(s, begin, end);
        else
            dense(s, begin, end);
        break;
    case DNN_MAXPOOL2:
        pool(s, begin, end, 0);
        break;
    case DNN_AVGPOOL2:
        pool(s, begin, end, 1);
        break;
    case DNN_EXITPOOL:
        exitpool(s, begin, end);
        break;
    case DNN_RELU:
        for (uint16_t o = begin; o < end; o++)
            s->out[o] = s->in[o] < 0 ? 0 : s->in[o];
        break;
    default:
        break;
    }
}

/*
 * dnn.h - the int8 inference engine that runs a generated model (docs/models.md).
 *
 * A model is a list of stages (conv2d, depthwise conv2d, dense, 2x2 max/avg pool, relu),
 * each reading one int8 activation buffer and writing another; activations are stored
 * channel-major (C x H x W), a vector as (n x 1 x 1). The generator (firmware/dnn, Python)
 * writes the stage table and the constants into model.h.
 *
 * Arithmetic (bit-exact with firmware/dnn/quant.py): int8 x int8 products (16 bits)
 * accumulate in int32 starting from the int32 bias; the output is
 *     saturate8((acc + 2^(shift-1)) >> shift)   (shift > 0; acc itself when shift = 0)
 * with an arithmetic right shift (what GCC and clang do for signed >>), i.e. rounding to
 * nearest, ties towards +infinity. avgpool2 is the same with acc = the sum of 4 and
 * shift = 2. A fused ReLU clamps the result at 0. The generator proves that no
 * accumulator can overflow int32.
 *
 * Sparse weights (pruned layers, when smaller than dense): `rows` is set and `weight`
 * points at (delta u8, weight i8) pairs; output channel c's entries are pairs
 * [rows[c], rows[c + 1]). Per entry the input pointer, starting at the output element's
 * anchor (conv2d: the window's top-left value in input channel 0; dwconv2d: in the
 * element's own channel; dense: the vector's start), advances by delta and the product
 * with the weight is accumulated. Zero weights cost nothing; the generator bridges gaps of
 * more than 255 with (255, 0) entries.
 */
#ifndef FIRMWARE_DNN_H
#define FIRMWARE_DNN_H

#include <stdint.h>

enum dnn_op {
    DNN_CONV2D = 1,   /* out[f][y][x] = b[f] + sum_{c,i,j} in[c][y+i][x+j] * w[f][c][i][j] */
    DNN_DWCONV2D = 2, /* out[c][y][x] = b[c] + sum_{i,j}   in[c][y+i][x+j] * w[c][i][j]    */
    DNN_DENSE = 3,    /* out[u] = b[u] + sum_n in[n] * w[u][n]                              */
    DNN_MAXPOOL2 = 4, /* 2x2 windows, stride 2 */
    DNN_AVGPOOL2 = 5,
    DNN_RELU = 6,
    DNN_EXITPOOL = 7, /* out[c][gy][gx] = sum of region (gy, gx) of in[c], shifted; regions of
                         (in_h / g) x (in_w / g) on a g x g grid, g = out_h = out_w; out_c = in_c;
                         outputs beyond out_c * g * g (the classifier's padding) are 0 */
};

#define DNN_NO_EXIT 0xFFu

typedef struct {
    uint8_t op;     /* enum dnn_op */
    uint8_t relu;   /* fused ReLU on the output */
    uint8_t shift;  /* requantization shift */
    uint8_t kernel; /* conv kernel side (valid padding, stride 1) */
    uint8_t exit;   /* backbone stage ending at an exit point: its index; else DNN_NO_EXIT */
    uint16_t in_c, in_h, in_w;
    uint16_t out_c, out_h, out_w;
    /* derived by the generator (no multiplications at run time): */
    uint16_t outputs;   /* out_c * out_h * out_w */
    uint16_t in_plane;  /* in_h * in_w */
    uint16_t out_plane; /* out_h * out_w */
    uint16_t fan_in;    /* weights per output channel: in_c * k * k (conv2d), k * k (dwconv2d), in_c (dense) */
    const int8_t *in;
    int8_t *out;
    const int8_t *weight; /* conv2d [out_c][in_c][k][k], dwconv2d [c][k][k], dense [out_c][in_c];
                             sparse: the (delta, weight) pairs */
    const uint16_t *rows; /* sparse: [out_c + 1] entry indices of each output channel; 0: dense */
    const int32_t *bias;  /* [out_c] */
} dnn_stage_t;

/* saturate8(v >> shift), ReLU'd when relu; v already holds the rounding term. */
static inline int8_t dnn_saturate(int32_t v, uint8_t shift, uint8_t relu)
{
    v >>= shift; /* arithmetic on GCC and clang */
    if (v > 127)
        return 127;
    if (v < 0 && relu)
        return 0;
    if (v < -128)
        return -128;
    return (int8_t)v;
}

/* Multiply-accumulate of int8 x int8 products into an int32 accumulator:
 *     DNN_MAC_BEGIN(acc); ... DNN_MAC(acc, a, b) ...; DNN_MAC_END(acc);
 * MSP430FR5994: the MPY32 hardware multiplier (SLAU367, "32-Bit Hardware Multiplier"),
 * 16 x 16 signed multiply-accumulate (MACS): the accumulator is preloaded into RESHI:RESLO,
 * each product is a byte write of a to MACS and of b to OP2 (signed modes sign-extend
 * 8-bit operands; writing OP2 starts the operation), and the 32-bit sum is read back. A
 * product costs the same whatever the data (the software multiply __mspabi_mpyi does not),
 * which is what lets a cost model predict a task's instructions (docs/energy.md). Between
 * BEGIN and END nothing else may use the multiplier: the engine's loops call no function
 * there, and the runtime's interrupt handlers are compiled without it (clang emits no MPY32
 * accesses); a power failure loses the accumulator with the task, which runs again (a
 * just-in-time checkpoint, runtime/jit.c, would not save it: the engine runs under tasks).
 * The sum is read with absolute-mode loads, which the part allows right after the last OP2
 * write (only an indirect read needs a NOP first). Other boards: plain C (MUL/MLA). */
#if defined(BOARD_MSP430FR5994)
#define DNN_MPY32_MACS  (*(volatile int8_t *)0x04C6u)
#define DNN_MPY32_OP2   (*(volatile int8_t *)0x04C8u)
#define DNN_MPY32_RESLO (*(volatile uint16_t *)0x04CAu)
#define DNN_MPY32_RESHI (*(volatile uint16_t *)0x04CCu)
#define DNN_MAC_BEGIN(acc) \
    (DNN_MPY32_RESLO = (uint16_t)(acc), DNN_MPY32_RESHI = (uint16_t)((uint32_t)(acc) >> 16))
#define DNN_MAC(acc, a, b) (DNN_MPY32_MACS = (int8_t)(a), DNN_MPY32_OP2 = (int8_t)(b))
#define DNN_MAC_END(acc) ((acc) = (int32_t)(((uint32_t)DNN_MPY32_RESHI << 16) | DNN_MPY32_RESLO))
#else
#define DNN_MAC_BEGIN(acc) ((void)0)
#define DNN_MAC(acc, a, b) ((acc) += (int16_t)((a) * (b)))
#define DNN_MAC_END(acc) ((void)0)
#endif

/* The rounding term 2^(shift - 1) (0 for shift 0). */
static inline int32_t dnn_rounding(uint8_t shift)
{
    return shift ? (int32_t)1 << (shift - 1) : 0;
}

/* Compute output elements [begin, end) of stage s, in channel-major order. Reads only
 * s->in and the constants, writes only s->out[begin .. end): running it again gives the
 * same bytes (an idempotent write, as long as s->in does not change). */
void dnn_stage_run(const dnn_stage_t *s, uint16_t begin, uint16_t end);

/* ---- intermittent execution designs (conv2d, dwconv2d, dense) ----------------------------
 *
 * A design computes a weighted stage as `steps` = passes x tiles steps; the task state's
 * pos counts steps and a task runs up to dnn_commit_every[stage] of them (never across a
 * pass boundary). Output tiles are tile_c x tile_h x tile_w output elements (channels,
 * rows, columns; 0: the whole dimension; larger than the dimension: clipped; a vector is
 * units x 1 x 1), edge tiles smaller.
 *
 *   DNN_ORDER_CHANNEL  output-stationary, tiles (and elements inside a tile) channel-outer:
 *                      channel, row, column. Tiles of 1 x 1 x 1 are today's element order.
 *   DNN_ORDER_SPATIAL  output-stationary, row, column, then channel: all channels of a
 *                      pixel (tile) before the next one, so a pixel's input window is used
 *                      by every filter in a row (staged once when stage_input is set).
 *   DNN_ORDER_INPUT    input-stationary: the reduction is split into passes of in_tile
 *                      slices (conv2d: input channels; dwconv2d: kernel rows; dense: input
 *                      values; in_tile 0: one pass); in pass t every tile adds its slices to
 *                      int32 partial sums. Pass 0 starts from the bias, pass t > 0 reads the
 *                      sums acc[t % 2] and writes acc[(t + 1) % 2], the last pass writes
 *                      the int8 output instead. Nothing a pass reads is written in that
 *                      pass and a task stays inside one pass, so re-running a task after a
 *                      failure rewrites the same bytes: no partial sum is added twice.
 *
 * stage_input: before each tile (or tile and pass), copy the tile's input region (every
 * input value its outputs read in this pass) from non-volatile memory into the volatile
 * buffer `stage` (laid out like s->in) and compute from there; a tile with the same region
 * as the previous one of the task copies nothing. A re-run after a failure stages again. */
enum dnn_order {
    DNN_ORDER_CHANNEL = 0,
    DNN_ORDER_SPATIAL = 1,
    DNN_ORDER_INPUT = 2,
};

typedef struct { /* 8 bytes: an index is a shift */
    uint8_t order;       /* enum dnn_order */
    uint8_t stage_input; /* 1: stage each tile's input region in SRAM */
    uint16_t tile_c;     /* output channels (dense: units) per tile */
    uint8_t tile_h, tile_w;
    uint16_t in_tile;    /* DNN_ORDER_INPUT: reduction slices per pass (0: all) */
} dnn_design_t;

/* One dimension of the tile grid (channels, rows or columns) at the cursor: the tile, and
 * the first index it covers with that index's offsets in the output, the input and the
 * weights. */
typedef struct {
    uint16_t tile, count;
    uint16_t first;
    uint16_t out, in, w;
} dnn_dim_t;

/* A design applied to a stage (dnn_plan), and a cursor: where the last dnn_design_run left
 * off, so that the next task of the same boot starts there without a division. Volatile
 * (the caller keeps it in SRAM): a boot makes it again. */
typedef struct {
    uint16_t tc, th, tw;
    uint16_t nc, nh, nw;
    uint16_t tiles;     /* nc * nh * nw */
    uint16_t slices;    /* reduction slices of one output element */
    uint16_t per_pass;  /* slices per pass */
    uint16_t passes;
    uint16_t steps;     /* passes * tiles */
    /* offsets of one tile along channels (output, input, weights) and rows (output, input) */
    uint16_t oc_step, ac_step, fc_step, oy_step, ay_step;
    /* the cursor: the step it is at (0xFFFF: none), its pass and tile */
    uint16_t next, pass;
    dnn_dim_t c, y, x;
} dnn_plan_t;

/* 1 when the stage runs element by element in channel-major order (dnn_stage_run): the
 * default design (channel order, tiles of 1 x 1 x 1, no staging), or a stage that is not
 * conv2d/dwconv2d/dense (whatever its design says). */
static inline int dnn_design_is_default(const dnn_stage_t *s, const dnn_design_t *d)
{
    if (d->order == DNN_ORDER_CHANNEL && !d->stage_input && d->tile_c == 1 && d->tile_h == 1 && d->tile_w == 1)
        return 1;
    return s->op != DNN_CONV2D && s->op != DNN_DWCONV2D && s->op != DNN_DENSE;
}

/* Apply design d to stage s (no cursor yet); 0 when it would take more than 65535 steps. */
int dnn_plan(const dnn_stage_t *s, const dnn_design_t *d, dnn_plan_t *g);

/* Steps [begin, end) of stage s under design d (all in one pass): writes s->out (last
 * pass) or acc[(t + 1) % 2] (pass t), reads s->in, the constants, acc[t % 2] (t > 0);
 * stage: a volatile buffer of the stage's input size (stage_input). Moves g's cursor. */
void dnn_design_run(const dnn_stage_t *s, const dnn_design_t *d, dnn_plan_t *g, uint16_t begin, uint16_t end,
                    int32_t *const acc[2], int8_t *stage);

#endif /* FIRMWARE_DNN_H */

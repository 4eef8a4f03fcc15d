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

/* Compute output elements [begin, end) of stage s, in channel-major order. Reads only
 * s->in and the constants, writes only s->out[begin .. end): running it again gives the
 * same bytes (an idempotent write, as long as s->in does not change). */
void dnn_stage_run(const dnn_stage_t *s, uint16_t begin, uint16_t end);

#endif /* FIRMWARE_DNN_H */

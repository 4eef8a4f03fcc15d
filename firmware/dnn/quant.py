"""int8 quantization with power-of-two scales, and the bit-exact integer reference.

Every activation tensor t has a number of fractional bits f_t: its int8 value q stands for
q * 2^-f_t. A weighted layer (conv2d, dwconv2d, dense) has int8 weights with f_w fractional
bits and int32 biases with f_in + f_w, so that the int32 accumulator

    acc = bias + sum(x_i * w_i)              (exact: each product fits 16 bits)

has f_in + f_w fractional bits. Its output with f_out fractional bits is

    requantize(acc, s) = saturate8(round_shift(acc, s)),   s = f_in + f_w - f_out >= 0
    round_shift(acc, s) = (acc + 2^(s-1)) >> s    for s > 0     (>> arithmetic: floor)
                        = acc                     for s = 0
    saturate8(v)        = min(max(v, -128), 127)

i.e. rounding to nearest with ties towards +infinity, then saturation. avgpool2 is
requantize(sum of the 4 values, 2) (f unchanged); maxpool2, relu and flatten are exact and
keep f. A ReLU folded into the layer before it (as the firmware does) gives the same
values: relu(saturate8(v)) == saturate8(relu(v)).

Constants are quantized the same way from the float weights, round half up:
quantize(v, f) = saturate(floor(v * 2^f + 0.5)) (int8 for weights and inputs, int32 for
biases). The multiplications by 2^f are exact in float64, so the int8 model is a
deterministic function of the checked-in float weights and frac bits.

`check_ranges` proves for every layer that no accumulator can leave int32, whatever the
int8 input, so the firmware's int32 arithmetic is exact and equals this reference.

Early exits (model.py): the int8 activation at exit point e (f_e fractional bits) is
pooled per channel and grid region as

    pooled = requantize(sum of the region's R_h*R_w int8 values, s_e),  s_e = k_e + f_e - p_e >= 0

(k_e = ceil(log2(R_h*R_w)); p_e = the exit classifier's pool_frac_bits[e]), zero-padded to
F values; then the shared classifier is a dense layer F -> classes with ONE int8 weight
matrix (f_w) for all exits, and per exit an int32 bias (p_e + f_w fractional bits) and a
shift p_e + f_w - o_e (o_e = output_frac_bits[e]). The pooled features of different exits
have different ranges (exit 0 of digits_exits: up to 4.4, exit 1: up to 21), so one scale
for all would cost the early exit its precision; a per-exit scale costs one int32 bias
vector. `QuantModel.forward(x, exit=e)` is the firmware's output when the job exits at e.
Pruning changes no arithmetic: a pruned weight is an int8 0, which the firmware skips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .model import (WEIGHTED, Model, ModelError, forward_layer, im2col, pool_features, pool_grid, pool_shift,
                    pool_sums, pool_windows)

__all__ = ["QLayer", "QExitClassifier", "QuantModel", "quantize", "calibrate", "round_shift", "requantize",
           "quantize_value"]

INT32_MAX = 2**31 - 1


def round_shift(acc: np.ndarray, shift: int) -> np.ndarray:
    """Arithmetic shift right by `shift` with rounding half up (see the module docstring)."""
    acc = np.asarray(acc, np.int64)
    if shift == 0:
        return acc
    return (acc + (1 << (shift - 1))) >> shift


def requantize(acc: np.ndarray, shift: int) -> np.ndarray:
    return np.clip(round_shift(acc, shift), -128, 127).astype(np.int8)


def quantize_value(v: np.ndarray, frac_bits: int, bits: int = 8) -> np.ndarray:
    """saturate(floor(v * 2^frac_bits + 0.5)) as a signed `bits`-bit integer (int64 array)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    q = np.floor(np.asarray(v, np.float64) * 2.0**frac_bits + 0.5)
    return np.clip(q, lo, hi).astype(np.int64)


@dataclass
class QLayer:
    """One quantized layer. `shift` is the requantization shift (weighted layers: f_in + f_w
    - f_out; avgpool2: 2; others 0)."""

    op: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_frac: int
    out_frac: int
    kernel: int = 0
    weight: np.ndarray | None = None  # int8
    bias: np.ndarray | None = None  # int32 values (int64 array)
    shift: int = 0
    exit: bool = False
    sparsity: float = 0.0  # the model's pruning target (the weights hold the zeros)

    @property
    def macs(self) -> int:
        n = int(np.prod(self.out_shape))
        if self.op == "conv2d":
            return n * self.in_shape[0] * self.kernel**2
        if self.op == "dwconv2d":
            return n * self.kernel**2
        if self.op == "dense":
            return n * self.in_shape[0]
        return 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        """int8 batch (B, *in_shape) -> int8 batch (B, *out_shape), bit-exact with the firmware."""
        op = self.op
        x64 = x.astype(np.int64)
        if op == "conv2d":
            acc = np.einsum("bhwcij,fcij->bfhw", im2col(x64, self.kernel), self.weight.astype(np.int64))
            return requantize(acc + self.bias[None, :, None, None], self.shift)
        if op == "dwconv2d":
            acc = np.einsum("bhwcij,cij->bchw", im2col(x64, self.kernel), self.weight.astype(np.int64))
            return requantize(acc + self.bias[None, :, None, None], self.shift)
        if op == "dense":
            return requantize(x64 @ self.weight.astype(np.int64).T + self.bias, self.shift)
        if op == "relu":
            return np.maximum(x, 0).astype(np.int8)
        if op == "maxpool2":
            return pool_windows(x).max(axis=-1).astype(np.int8)
        if op == "avgpool2":
            return requantize(pool_windows(x64).sum(axis=-1), 2)
        return x.reshape(x.shape[0], -1)  # flatten

    def accumulator_bound(self) -> int:
        """The largest |accumulator| + rounding term any int8 input can produce."""
        if self.op in WEIGHTED:
            w = np.abs(self.weight.astype(np.int64)).reshape(self.weight.shape[0], -1).sum(axis=1)
            worst = int((128 * w + np.abs(self.bias)).max())
        elif self.op == "avgpool2":
            worst = 4 * 128
        else:
            return 0
        return worst + ((1 << (self.shift - 1)) if self.shift else 0)


@dataclass
class QExitClassifier:
    """The int8 shared exit classifier. points[e]: the layer after which exit e branches off;
    pool_shifts[e]: s_e; weight int8 (units, features), shared; biases[e] (int32 values)
    and shifts[e]: exit e's bias and requantization shift."""

    points: list[int]
    point_shapes: list[tuple[int, ...]]
    pool_shifts: list[int]
    grid: int
    features: int
    pool_fracs: list[int]
    out_fracs: list[int]
    weight: np.ndarray
    biases: list[np.ndarray]
    shifts: list[int]

    @property
    def units(self) -> int:
        return self.weight.shape[0]

    def pool(self, a: np.ndarray, e: int) -> np.ndarray:
        """int8 activations at exit point e (B, *shape) -> int8 pooled features (B, features)."""
        acc = pool_sums(np.asarray(a, np.int64), self.grid)
        out = np.zeros((a.shape[0], self.features), np.int8)
        out[:, : acc.shape[1]] = requantize(acc, self.pool_shifts[e])
        return out

    def classify(self, pooled: np.ndarray, e: int) -> np.ndarray:
        acc = pooled.astype(np.int64) @ self.weight.astype(np.int64).T + self.biases[e]
        return requantize(acc, self.shifts[e])

    def accumulator_bounds(self) -> list[int]:
        """Largest |accumulator| + rounding of each exit's pooling, then of each exit's classifier."""
        def half(s):
            return (1 << (s - 1)) if s else 0
        bounds = []
        for shape, s in zip(self.point_shapes, self.pool_shifts):
            _, _, rh, rw = pool_grid(shape, self.grid)
            bounds.append(128 * rh * rw + half(s))
        w = np.abs(self.weight.astype(np.int64)).sum(axis=1)
        return bounds + [int((128 * w + np.abs(b)).max()) + half(s) for b, s in zip(self.biases, self.shifts)]


@dataclass
class QuantModel:
    name: str
    input_shape: tuple[int, int, int]
    input_frac: int
    layers: list[QLayer]
    exit_classifier: QExitClassifier | None = None

    @property
    def exits(self) -> int:
        """Number of exit points."""
        return len(self.exit_classifier.points) if self.exit_classifier else 0

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape if self.layers else self.input_shape

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float inputs (B, C, H, W) -> int8 inputs."""
        return quantize_value(x, self.input_frac).astype(np.int8)

    def forward(self, x: np.ndarray, exit: int | None = None) -> np.ndarray:
        """int8 inputs (B, C, H, W) -> int8 outputs (B, outputs): the final output, or with
        `exit` = e what the firmware writes when the job takes exit e."""
        x = np.asarray(x)
        if x.dtype != np.int8:
            raise TypeError("QuantModel.forward takes int8 inputs (see quantize_input)")
        if exit is not None and not 0 <= exit < self.exits:
            raise ValueError(f"model {self.name} has {self.exits} exit points, no exit {exit}")
        head = self.exit_classifier
        stop = len(self.layers) if exit is None else head.points[exit] + 1
        for layer in self.layers[:stop]:
            x = layer.forward(x)
        if exit is not None:
            return head.classify(head.pool(x, exit), exit)
        return x.reshape(x.shape[0], -1)

    def forward_all(self, x: np.ndarray) -> list[np.ndarray]:
        """[exit 0 output, exit 1 output, ..., final output] in one pass."""
        outs, head = [], self.exit_classifier
        if np.asarray(x).dtype != np.int8:
            raise TypeError("QuantModel.forward_all takes int8 inputs (see quantize_input)")
        for i, layer in enumerate(self.layers):
            x = layer.forward(x)
            if head is not None and i in head.points:
                e = head.points.index(i)
                outs.append(head.classify(head.pool(x, e), e))
        return outs + [x.reshape(x.shape[0], -1)]

    def run(self, data: bytes, exit: int | None = None) -> bytes:
        """One inference on raw bytes (the firmware's app_input) -> output bytes (app_output),
        for the final output or exit `exit`."""
        x = np.frombuffer(bytes(data), np.int8).reshape((1, *self.input_shape))
        return self.forward(x, exit).tobytes()

    def output_scale(self) -> float:
        """Float value of one output LSB."""
        return 2.0 ** -(self.layers[-1].out_frac if self.layers else self.input_frac)

    def check_ranges(self) -> None:
        for i, layer in enumerate(self.layers):
            bound = layer.accumulator_bound()
            if bound > INT32_MAX:
                raise ModelError(f"model {self.name}, layer {i} ({layer.op}): an accumulator could reach "
                                 f"{bound}, beyond int32; lower its weight_frac_bits")
        if self.exit_classifier is not None and max(self.exit_classifier.accumulator_bounds()) > INT32_MAX:
            raise ModelError(f"model {self.name}: an exit classifier accumulator could leave int32; lower its "
                             "weight_frac_bits")


def quantize(model: Model) -> QuantModel:
    """The int8 model given by the float weights and the frac bits in `model`."""
    model.check_weights()
    shapes = model.shapes()
    f = model.input_frac_bits
    layers = []
    for i, layer in enumerate(model.layers):
        q = QLayer(layer.op, shapes[i], shapes[i + 1], f, f, kernel=layer.kernel, exit=layer.exit,
                   sparsity=layer.sparsity)
        if layer.op in WEIGHTED:
            if layer.weight_frac_bits is None or layer.output_frac_bits is None:
                raise ModelError(f"model {model.name}, layer {i} ({layer.op}): no weight_frac_bits/"
                                 "output_frac_bits; run calibrate() first")
            wf, of = int(layer.weight_frac_bits), int(layer.output_frac_bits)
            q.shift = f + wf - of
            if not 0 <= q.shift <= 30:
                raise ModelError(f"model {model.name}, layer {i} ({layer.op}): requantization shift "
                                 f"{q.shift} (= {f} + {wf} - {of}) is outside 0..30")
            q.weight = quantize_value(layer.weight, wf).astype(np.int8)
            q.bias = quantize_value(layer.bias, f + wf, bits=32)
            q.out_frac = f = of
        elif layer.op == "avgpool2":
            q.shift = 2
        layers.append(q)
    qm = QuantModel(model.name, tuple(model.input_shape), model.input_frac_bits, layers,
                    _quantize_exits(model, layers))
    qm.check_ranges()
    return qm


def _quantize_exits(model: Model, layers: list[QLayer]) -> QExitClassifier | None:
    points, head = model.exit_points, model.exit_classifier
    if not points:
        return None
    if None in (head.pool_frac_bits, head.weight_frac_bits, head.output_frac_bits):
        raise ModelError(f"model {model.name}: the exit classifier has no pool_frac_bits/weight_frac_bits/"
                         "output_frac_bits; run calibrate() first")
    fps, wf, ofs = [int(f) for f in head.pool_frac_bits], int(head.weight_frac_bits), \
        [int(f) for f in head.output_frac_bits]
    if len(fps) != len(points) or len(ofs) != len(points):
        raise ModelError(f"model {model.name}: the exit classifier needs one pool_frac_bits and one "
                         f"output_frac_bits per exit ({len(points)})")
    shapes = [layers[i].out_shape for i in points]
    pool_shifts = [pool_shift(shape, head.grid) + layers[i].out_frac - fp for i, shape, fp in zip(points, shapes, fps)]
    shifts = [fp + wf - of for fp, of in zip(fps, ofs)]
    for e, (ps, s) in enumerate(zip(pool_shifts, shifts)):
        if not 0 <= ps <= 30:
            raise ModelError(f"model {model.name}, exit {e}: pooling shift {ps} (= k + f_e - pool_frac_bits) is "
                             "outside 0..30; lower its pool_frac_bits")
        if not 0 <= s <= 30:
            raise ModelError(f"model {model.name}, exit {e}: classifier shift {s} (= pool_frac_bits + "
                             "weight_frac_bits - output_frac_bits) is outside 0..30")
    return QExitClassifier(points, shapes, pool_shifts, head.grid, head.features, fps, ofs,
                           quantize_value(head.weight, wf).astype(np.int8),
                           [quantize_value(head.bias, fp + wf, bits=32) for fp in fps], shifts)


def calibrate(model: Model, x: np.ndarray, max_frac_bits: int = 14) -> None:
    """Choose every weighted layer's frac bits from its float weights and from the float
    activations on the calibration inputs x (B, C, H, W): the most fractional bits with
    which the largest |weight| (largest activation) still fits int8. A layer followed by
    a ReLU is sized by its largest positive output (negatives become 0 anyway)."""
    f = model.input_frac_bits
    acts = np.asarray(x, np.float64)
    for i, layer in enumerate(model.layers):
        y = forward_layer(layer, acts)
        if layer.op in WEIGHTED:
            wf = _frac_bits_for(float(np.abs(layer.weight).max()), max_frac_bits)
            followed_by_relu = i + 1 < len(model.layers) and model.layers[i + 1].op == "relu"
            amax = float(np.maximum(y, 0).max() if followed_by_relu else np.abs(y).max())
            of = min(_frac_bits_for(amax, max_frac_bits), f + wf)
            layer.weight_frac_bits, layer.output_frac_bits = wf, of
            f = of
        acts = y
    _calibrate_exits(model, x, max_frac_bits)


def _calibrate_exits(model: Model, x: np.ndarray, max_frac_bits: int) -> None:
    """The exit classifier's frac bits: each exit's pooled features sized by their largest
    value (but at most k_e + f_e, so that no pooling shift is negative), the shared weights
    by their largest |weight|, each exit's logits by their largest."""
    points, head = model.exit_points, model.exit_classifier
    if not points:
        return
    fracs, shapes, f = {}, model.shapes(), model.input_frac_bits
    for i, layer in enumerate(model.layers):
        if layer.op in WEIGHTED:
            f = layer.output_frac_bits
        fracs[i] = f
    acts = np.asarray(x, np.float64)
    pooled = []
    for i, layer in enumerate(model.layers):
        acts = forward_layer(layer, acts)
        if layer.exit:
            pooled.append(pool_features(acts, head.features, head.grid))
    fps = [min(_frac_bits_for(float(np.abs(p).max()), max_frac_bits), pool_shift(shapes[i + 1], head.grid) + fracs[i])
           for p, i in zip(pooled, points)]
    wf = _frac_bits_for(float(np.abs(head.weight).max()), max_frac_bits)
    head.pool_frac_bits, head.weight_frac_bits = fps, wf
    head.output_frac_bits = [min(_frac_bits_for(float(np.abs(head.forward(p)).max()), max_frac_bits), fp + wf)
                             for p, fp in zip(pooled, fps)]


def _frac_bits_for(vmax: float, max_frac_bits: int) -> int:
    """Largest f <= max_frac_bits with floor(vmax * 2^f + 0.5) <= 127."""
    if vmax <= 0:
        return max_frac_bits
    f = math.floor(math.log2(127.5 / vmax))
    while vmax * 2.0**f >= 127.5:  # guards against log2 rounding up
        f -= 1
    return min(f, max_frac_bits)

"""Model description: a list of layers over CHW activations, float forward pass, files.

A model is an input shape (C, H, W) and a list of `Layer`s. Activations are channel-major
(C, H, W); `flatten` turns them into a vector in that order (numpy's C order), which is
also the order in which the firmware stores every activation buffer.

Layer ops (`OPS`):

    conv2d     filters x (C, k, k) kernels, valid padding, stride 1   weight (F, C, k, k), bias (F,)
    dwconv2d   one (k, k) kernel per channel, valid, stride 1        weight (C, k, k),    bias (C,)
    dense      units x N, on a vector                                weight (U, N),       bias (U,)
    relu       max(x, 0)
    maxpool2   2x2 window, stride 2 (odd rows/columns dropped)
    avgpool2   2x2 window, stride 2 (odd rows/columns dropped)
    flatten    (C, H, W) -> (C*H*W,)

Quantization parameters live next to the weights (`weight_frac_bits`, `output_frac_bits`,
see quant.py). `sparsity` (weighted layers) is a magnitude-pruning target: at least that
fraction of the layer's float weights must be exactly 0 (`magnitude_mask` prunes; the
generator then encodes the layer sparse, codegen.py). `design` (weighted layers, and the
exit classifier) is the layer's intermittent execution design: loop order, tile sizes,
commit granularity (design.py); it changes no output byte.

Early exits (FreeML style): `exit` marks a layer after which the job may stop when energy
is low. All exit points share ONE classifier (`ExitClassifier`): the activation at exit
point e, (C_e, H, W), is average-pooled per channel over a `grid` x `grid` of regions of
R_h x R_w = (H // grid) x (W // grid) values (a last odd row/column is dropped, as in the
2x2 pools), in channel-major order,

    pooled[c][gy][gx] = (sum of the region's R_h x R_w values) / 2^k_e,
    k_e = ceil(log2(R_h * R_w))

(the mean when R_h * R_w is a power of two; otherwise a power-of-two "average" that the
int8 engine computes with one rounding shift, and that training uses as it is). grid = 1
is global average pooling; a vector exit point (n values) is taken as it is. The C_e * grid^2
values are zero-padded to the classifier's `features` F (at least every exit's count) and
fed to one dense layer F -> classes. An exit layer must end its firmware stage: it may not
be followed by a ReLU (mark the ReLU instead).

On disk a model is a directory: `model.json` (input, layers, the exit classifier's sizes
and frac bits, code generation parameters) and `weights.npz` (float32 `layer<i>.weight`,
`layer<i>.bias`, `exit.weight`, `exit.bias`), optionally `testset.npz` (`x`: float inputs
(N, C, H, W) as uint8 raw values times `input.scale`, `y`: labels).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .design import Design

__all__ = ["OPS", "WEIGHTED", "Layer", "ExitClassifier", "Model", "conv2d", "dwconv2d", "dense", "relu",
           "maxpool2", "avgpool2", "flatten", "im2col", "pool_grid", "exit_features", "pool_shift", "pool_sums",
           "pool_features", "pool_backward", "magnitude_mask", "load", "save", "dump_json", "load_testset",
           "ModelError"]

OPS = ("conv2d", "dwconv2d", "dense", "relu", "maxpool2", "avgpool2", "flatten")
WEIGHTED = ("conv2d", "dwconv2d", "dense")


class ModelError(ValueError):
    """A model that cannot be built, quantized or generated; the message says why."""


@dataclass
class Layer:
    op: str
    units: int = 0  # conv2d: filters; dense: units
    kernel: int = 0  # conv2d, dwconv2d
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    weight_frac_bits: int | None = None  # quantized weight = round(weight * 2^weight_frac_bits)
    output_frac_bits: int | None = None  # quantized output = round(output * 2^output_frac_bits)
    exit: bool = False  # an early-exit point after this layer (see the module docstring)
    sparsity: float = 0.0  # weighted layers: fraction of weights that must be 0 (magnitude pruning)
    design: Design | None = None  # weighted layers: intermittent execution design (design.py)

    def __post_init__(self):
        if self.op not in OPS:
            raise ModelError(f"unknown layer op {self.op!r}; use one of {', '.join(OPS)}")

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        op = self.op
        if op in ("conv2d", "dwconv2d", "maxpool2", "avgpool2") and len(shape) != 3:
            raise ModelError(f"{op} needs a (C, H, W) input, got shape {shape}; put it before flatten")
        if op == "dense" and len(shape) != 1:
            raise ModelError(f"dense needs a vector input, got shape {shape}; add a flatten layer before it")
        if op in ("conv2d", "dwconv2d"):
            c, h, w = shape
            k = self.kernel
            if k < 1 or k > h or k > w:
                raise ModelError(f"{op}: kernel {k} does not fit a {h}x{w} input")
            return (self.units if op == "conv2d" else c, h - k + 1, w - k + 1)
        if op in ("maxpool2", "avgpool2"):
            c, h, w = shape
            if h < 2 or w < 2:
                raise ModelError(f"{op}: a {h}x{w} input is smaller than the 2x2 window")
            return (c, h // 2, w // 2)
        if op == "dense":
            return (self.units,)
        if op == "flatten":
            return (int(np.prod(shape)),)
        return shape

    def weight_shape(self, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        if self.op == "conv2d":
            return (self.units, shape[0], self.kernel, self.kernel)
        if self.op == "dwconv2d":
            return (shape[0], self.kernel, self.kernel)
        if self.op == "dense":
            return (self.units, shape[0])
        return None

    def to_json(self) -> dict:
        d: dict = {"op": self.op}
        if self.op in ("conv2d", "dense"):
            d["filters" if self.op == "conv2d" else "units"] = self.units
        if self.op in ("conv2d", "dwconv2d"):
            d["kernel"] = self.kernel
        if self.weight_frac_bits is not None:
            d["weight_frac_bits"] = self.weight_frac_bits
        if self.output_frac_bits is not None:
            d["output_frac_bits"] = self.output_frac_bits
        if self.sparsity:
            d["sparsity"] = self.sparsity
        if self.exit:
            d["exit"] = True
        if self.design is not None:
            d["design"] = self.design.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> Layer:
        op = d.get("op")
        return cls(op, units=int(d.get("filters", d.get("units", 0))), kernel=int(d.get("kernel", 0)),
                   weight_frac_bits=d.get("weight_frac_bits"), output_frac_bits=d.get("output_frac_bits"),
                   exit=bool(d.get("exit", False)), sparsity=float(d.get("sparsity", 0.0)),
                   design=_design(d, f"layer {op}"))


def _design(d: dict, where: str):
    from .design import Design

    return Design.from_json(d["design"], where) if "design" in d else None


def conv2d(filters: int, kernel: int = 3) -> Layer:
    return Layer("conv2d", units=filters, kernel=kernel)


def dwconv2d(kernel: int = 3) -> Layer:
    return Layer("dwconv2d", kernel=kernel)


def dense(units: int) -> Layer:
    return Layer("dense", units=units)


def relu() -> Layer:
    return Layer("relu")


def maxpool2() -> Layer:
    return Layer("maxpool2")


def avgpool2() -> Layer:
    return Layer("avgpool2")


def flatten() -> Layer:
    return Layer("flatten")


@dataclass
class ExitClassifier:
    """The classifier shared by all exit points: pooled features (zero-padded to `features`)
    -> dense -> `units` logits. One weight matrix for all exits; in int8 (quant.py) each
    exit e has its own scales: `pool_frac_bits[e]` for its pooled features and
    `output_frac_bits[e]` for its logits (so its own int32 bias and shift)."""

    features: int
    units: int
    grid: int = 1  # pooling regions per side (1: global average pooling)
    weight: np.ndarray | None = None  # (units, features)
    bias: np.ndarray | None = None  # (units,)
    pool_frac_bits: list[int] | None = None  # per exit
    weight_frac_bits: int | None = None
    output_frac_bits: list[int] | None = None  # per exit
    sparsity: float = 0.0
    design: Design | None = None  # the classifier stages' intermittent execution design (design.py)

    def to_json(self) -> dict:
        d: dict = {"features": self.features, "units": self.units, "grid": self.grid}
        for key in ("pool_frac_bits", "weight_frac_bits", "output_frac_bits"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.sparsity:
            d["sparsity"] = self.sparsity
        if self.design is not None:
            d["design"] = self.design.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> ExitClassifier:
        return cls(int(d["features"]), int(d["units"]), int(d.get("grid", 1)), pool_frac_bits=d.get("pool_frac_bits"),
                   weight_frac_bits=d.get("weight_frac_bits"), output_frac_bits=d.get("output_frac_bits"),
                   sparsity=float(d.get("sparsity", 0.0)),
                   design=_design(d, "exit_classifier"))

    def forward(self, pooled: np.ndarray) -> np.ndarray:
        return pooled @ np.asarray(self.weight, np.float64).T + self.bias


def pool_grid(shape: tuple[int, ...], grid: int) -> tuple[int, int, int, int]:
    """(channels, grid side, region rows, region columns) of the pooling of an exit point of
    activation shape (C, H, W), or (n,) (a vector: n channels of one value)."""
    if len(shape) != 3:
        return int(np.prod(shape)), 1, 1, 1
    c, h, w = shape
    if grid < 1 or h < grid or w < grid:
        raise ModelError(f"an exit point of shape {tuple(shape)} cannot be pooled over a {grid}x{grid} grid")
    return c, grid, h // grid, w // grid


def exit_features(shape: tuple[int, ...], grid: int) -> int:
    """Pooled values of an exit point (before the zero padding)."""
    c, g, _, _ = pool_grid(shape, grid)
    return c * g * g


def pool_shift(shape: tuple[int, ...], grid: int) -> int:
    """k = ceil(log2(R_h * R_w)) of an exit point's pooling."""
    _, _, rh, rw = pool_grid(shape, grid)
    return (rh * rw - 1).bit_length()


def pool_sums(a: np.ndarray, grid: int) -> np.ndarray:
    """Region sums of a batch of exit-point activations (B, *shape) -> (B, C * g * g)."""
    c, g, rh, rw = pool_grid(a.shape[1:], grid)
    if a.ndim != 4:
        return a.reshape(a.shape[0], -1)
    b = a.shape[0]
    return a[:, :, : g * rh, : g * rw].reshape(b, c, g, rh, g, rw).sum(axis=(3, 5)).reshape(b, -1)


def pool_features(a: np.ndarray, features: int, grid: int) -> np.ndarray:
    """Float pooled features of a batch of exit-point activations, zero-padded to (B, features)."""
    a = np.asarray(a, np.float64)
    pooled = pool_sums(a, grid) / 2.0 ** pool_shift(a.shape[1:], grid)
    out = np.zeros((a.shape[0], features))
    out[:, : pooled.shape[1]] = pooled
    return out


def pool_backward(dpooled: np.ndarray, shape: tuple[int, ...], grid: int) -> np.ndarray:
    """Gradient of pool_features w.r.t. its input (B, *shape), from the padded gradient."""
    c, g, rh, rw = pool_grid(shape, grid)
    b = dpooled.shape[0]
    d = dpooled[:, : c * g * g] / 2.0 ** pool_shift(shape, grid)
    if len(shape) != 3:
        return d.reshape((b, *shape))
    d = np.broadcast_to(d.reshape(b, c, g, 1, g, 1), (b, c, g, rh, g, rw)).reshape(b, c, g * rh, g * rw)
    out = np.zeros((b, *shape))
    out[:, :, : g * rh, : g * rw] = d
    return out


def magnitude_mask(weight: np.ndarray, sparsity: float) -> np.ndarray:
    """Magnitude pruning: a 0/1 mask that keeps all but the round(sparsity * size) smallest
    |weights| of the layer (ties: the earlier index is pruned first, a stable order)."""
    flat = np.abs(np.asarray(weight, np.float64)).reshape(-1)
    mask = np.ones(flat.size)
    mask[np.argsort(flat, kind="stable")[: int(round(sparsity * flat.size))]] = 0.0
    return mask.reshape(np.shape(weight))


def _check_sparsity(where: str, weight: np.ndarray, sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0:
        raise ModelError(f"{where}: sparsity {sparsity} is outside [0, 1)")
    need = int(round(sparsity * weight.size))
    zeros = int((np.asarray(weight) == 0).sum())
    if zeros < need:
        raise ModelError(f"{where}: {zeros} of {weight.size} weights are 0, its sparsity target {sparsity} "
                         f"needs {need}; prune the weights (magnitude_mask, python -m firmware.dnn.train)")


@dataclass
class Model:
    name: str
    input_shape: tuple[int, int, int]
    layers: list[Layer]
    input_frac_bits: int = 7  # int8 input = round(float input * 2^input_frac_bits)
    input_scale: float = 1.0  # float input = raw test-set value * input_scale
    commit_every: int = 16  # default preservation granularity (output elements per commit)
    description: str = ""
    exit_classifier: ExitClassifier | None = None  # shared by the layers with exit=True
    extra: dict = field(default_factory=dict)  # other model.json keys, kept as they are

    @property
    def exit_points(self) -> list[int]:
        """Indices of the layers after which an exit branches off, in order (exit 0, 1, ...)."""
        return [i for i, layer in enumerate(self.layers) if layer.exit]

    def shapes(self) -> list[tuple[int, ...]]:
        """Activation shapes: shapes[0] is the input, shapes[i + 1] the output of layer i."""
        shapes = [tuple(self.input_shape)]
        for i, layer in enumerate(self.layers):
            try:
                shapes.append(layer.output_shape(shapes[-1]))
            except ModelError as exc:
                raise ModelError(f"model {self.name}, layer {i}: {exc}") from None
        return shapes

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes()[-1]

    def init_weights(self, rng: np.random.Generator) -> None:
        """He-normal weights, zero biases, for every weighted layer (then the exit classifier)."""
        for layer, shape in zip(self.layers, self.shapes()):
            wshape = layer.weight_shape(shape)
            if wshape is None:
                continue
            fan_in = int(np.prod(wshape[1:])) if layer.op != "dwconv2d" else layer.kernel ** 2
            layer.weight = (rng.standard_normal(wshape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
            layer.bias = np.zeros(wshape[0], np.float32)
        head = self.exit_classifier
        if head is not None:
            head.weight = (rng.standard_normal((head.units, head.features)) * np.sqrt(2.0 / head.features)
                           ).astype(np.float32)
            head.bias = np.zeros(head.units, np.float32)

    def check_exits(self) -> None:
        """Exit points and the shared classifier fit the layers (see the module docstring)."""
        points, head = self.exit_points, self.exit_classifier
        if not points:
            return
        if head is None:
            raise ModelError(f"model {self.name}: layers {points} are exit points but the model has no "
                             "exit_classifier")
        shapes = self.shapes()
        out = shapes[-1]
        if len(out) != 1 or head.units != out[0]:
            raise ModelError(f"model {self.name}: the exit classifier gives {head.units} logits, the model's "
                             f"output is {out}; they must be the same vector")
        computing = [i for i, layer in enumerate(self.layers) if layer.op not in ("flatten", "relu")]
        for i in points:
            where = f"model {self.name}, layer {i} ({self.layers[i].op})"
            j = i + 1
            while j < len(self.layers) and self.layers[j].op in ("flatten", "relu"):
                if self.layers[j].op == "relu":
                    raise ModelError(f"{where}: an exit point may not be followed by a relu (it folds into "
                                     "the same stage): mark the relu as the exit instead")
                j += 1
            if not any(j > i for j in computing):
                raise ModelError(f"{where}: an exit point needs a computing layer after it (this is the "
                                 "final output)")
            if not any(j <= i for j in computing) and self.layers[i].op != "relu":
                raise ModelError(f"{where}: an exit point needs a computing layer before it")
            try:
                n = exit_features(shapes[i + 1], head.grid)
            except ModelError as exc:
                raise ModelError(f"{where}: {exc}") from None
            if n > head.features:
                raise ModelError(f"{where}: {n} pooled features, the exit classifier takes {head.features}")

    def check_weights(self) -> None:
        for i, (layer, shape) in enumerate(zip(self.layers, self.shapes())):
            wshape = layer.weight_shape(shape)
            if wshape is None:
                continue
            if layer.weight is None or layer.bias is None:
                raise ModelError(f"model {self.name}, layer {i} ({layer.op}): no weights")
            if layer.weight.shape != wshape or layer.bias.shape != (wshape[0],):
                raise ModelError(f"model {self.name}, layer {i} ({layer.op}): weight {layer.weight.shape} / "
                                 f"bias {layer.bias.shape}, expected {wshape} / ({wshape[0]},)")
            _check_sparsity(f"model {self.name}, layer {i} ({layer.op})", layer.weight, layer.sparsity)
        for i, layer in enumerate(self.layers):
            if layer.sparsity and layer.op not in WEIGHTED:
                raise ModelError(f"model {self.name}, layer {i} ({layer.op}): only weighted layers have a sparsity")
            if layer.design is not None and layer.op not in WEIGHTED:
                raise ModelError(f"model {self.name}, layer {i} ({layer.op}): only conv2d, dwconv2d and dense "
                                 "layers have a design")
        self.check_exits()
        head = self.exit_classifier
        if head is not None and self.exit_points:
            if head.weight is None or head.bias is None:
                raise ModelError(f"model {self.name}: the exit classifier has no weights")
            if head.weight.shape != (head.units, head.features) or head.bias.shape != (head.units,):
                raise ModelError(f"model {self.name}: exit classifier weight {head.weight.shape} / bias "
                                 f"{head.bias.shape}, expected {(head.units, head.features)} / ({head.units},)")
            _check_sparsity(f"model {self.name}, exit classifier", head.weight, head.sparsity)

    def forward(self, x: np.ndarray, exit: int | None = None) -> np.ndarray:
        """Float forward pass of a batch x (B, C, H, W) -> (B, outputs): the final output, or
        with `exit` = e the shared exit classifier's logits at exit point e."""
        x = np.asarray(x, np.float64)
        points = self.exit_points
        stop = len(self.layers) if exit is None else points[exit] + 1
        for layer in self.layers[:stop]:
            x = forward_layer(layer, x)
        if exit is not None:
            head = self.exit_classifier
            return head.forward(pool_features(x, head.features, head.grid))
        return x.reshape(x.shape[0], -1)

    def forward_all(self, x: np.ndarray) -> list[np.ndarray]:
        """[exit 0 logits, exit 1 logits, ..., final output] in one pass."""
        x = np.asarray(x, np.float64)
        outs = []
        for layer in self.layers:
            x = forward_layer(layer, x)
            if layer.exit:
                head = self.exit_classifier
                outs.append(head.forward(pool_features(x, head.features, head.grid)))
        return outs + [x.reshape(x.shape[0], -1)]


# -- float forward (batched) ------------------------------------------------------------------
def im2col(x: np.ndarray, k: int) -> np.ndarray:
    """(B, C, H, W) -> (B, Ho, Wo, C, k, k): every k x k window (a view, no copy)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))  # B, C, Ho, Wo, k, k
    return windows.transpose(0, 2, 3, 1, 4, 5)


def pool_windows(x: np.ndarray) -> np.ndarray:
    """(B, C, H, W) -> (B, C, H//2, W//2, 4): the 2x2 windows of stride 2."""
    b, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(b, c, h // 2, 2, w // 2, 2)
    return x.transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)


def forward_layer(layer: Layer, x: np.ndarray) -> np.ndarray:
    op = layer.op
    if op == "conv2d":
        cols = im2col(x, layer.kernel)  # B, Ho, Wo, C, k, k
        y = np.einsum("bhwcij,fcij->bfhw", cols, layer.weight, optimize=True)
        return y + layer.bias[None, :, None, None]
    if op == "dwconv2d":
        cols = im2col(x, layer.kernel)
        y = np.einsum("bhwcij,cij->bchw", cols, layer.weight, optimize=True)
        return y + layer.bias[None, :, None, None]
    if op == "dense":
        return x @ np.asarray(layer.weight, np.float64).T + layer.bias
    if op == "relu":
        return np.maximum(x, 0)
    if op == "maxpool2":
        return pool_windows(x).max(axis=-1)
    if op == "avgpool2":
        return pool_windows(x).mean(axis=-1)
    return x.reshape(x.shape[0], -1)  # flatten


# -- files ---------------------------------------------------------------------------------------
_KNOWN_KEYS = {"name", "description", "input", "layers", "exit_classifier", "commit_every"}


def dump_json(data) -> str:
    """Indented JSON with lists of numbers and flat objects on one line each."""
    text = json.dumps(data, indent=2)
    for pattern, brackets in ((r"\[\s+([^\[\]{}]*?)\s+\]", "[]"), (r"\{\s+([^\[\]{}]*?)\s+\}", "{}")):
        text = re.sub(pattern, lambda m, br=brackets: br[0] + " ".join(m.group(1).split()) + br[1], text)
    return text + "\n"


def save(model: Model, directory: str | Path) -> None:
    """Write model.json and weights.npz into `directory`."""
    model.check_weights()
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    meta = {"name": model.name, "description": model.description,
            "input": {"shape": list(model.input_shape), "frac_bits": model.input_frac_bits,
                      "scale": model.input_scale},
            "layers": [layer.to_json() for layer in model.layers]}
    if model.exit_classifier is not None:
        meta["exit_classifier"] = model.exit_classifier.to_json()
    meta.update({"commit_every": model.commit_every, **model.extra})
    (d / "model.json").write_text(dump_json(meta))
    arrays = {}
    for i, layer in enumerate(model.layers):
        if layer.weight is not None:
            arrays[f"layer{i}.weight"] = np.asarray(layer.weight, np.float32)
            arrays[f"layer{i}.bias"] = np.asarray(layer.bias, np.float32)
    if model.exit_classifier is not None and model.exit_classifier.weight is not None:
        arrays["exit.weight"] = np.asarray(model.exit_classifier.weight, np.float32)
        arrays["exit.bias"] = np.asarray(model.exit_classifier.bias, np.float32)
    np.savez_compressed(d / "weights.npz", **arrays)


def load(directory: str | Path) -> Model:
    """Read a model directory (model.json + weights.npz)."""
    d = Path(directory)
    try:
        meta = json.loads((d / "model.json").read_text())
    except FileNotFoundError:
        raise ModelError(f"{d}: no model.json (a model directory holds model.json and weights.npz)") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{d / 'model.json'}: not valid JSON ({exc})") from None
    try:
        inp = meta["input"]
        model = Model(meta["name"], tuple(inp["shape"]), [Layer.from_json(x) for x in meta["layers"]],
                      input_frac_bits=int(inp.get("frac_bits", 7)), input_scale=float(inp.get("scale", 1.0)),
                      commit_every=int(meta.get("commit_every", 16)), description=meta.get("description", ""),
                      exit_classifier=(ExitClassifier.from_json(meta["exit_classifier"])
                                       if "exit_classifier" in meta else None),
                      extra={k: v for k, v in meta.items() if k not in _KNOWN_KEYS})
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{d / 'model.json'}: missing or malformed field {exc}") from None
    if len(model.input_shape) != 3:
        raise ModelError(f"{d / 'model.json'}: input shape must be [C, H, W]")
    path = d / "weights.npz"
    if path.exists():
        with np.load(path) as npz:
            for i, layer in enumerate(model.layers):
                if f"layer{i}.weight" in npz:
                    layer.weight = npz[f"layer{i}.weight"].astype(np.float32)
                    layer.bias = npz[f"layer{i}.bias"].astype(np.float32)
            if model.exit_classifier is not None and "exit.weight" in npz:
                model.exit_classifier.weight = npz["exit.weight"].astype(np.float32)
                model.exit_classifier.bias = npz["exit.bias"].astype(np.float32)
    model.check_weights()
    return model


def load_testset(directory: str | Path, model: Model) -> tuple[np.ndarray, np.ndarray]:
    """(x float (N, C, H, W), y int labels) from `directory`/testset.npz."""
    with np.load(Path(directory) / "testset.npz") as npz:
        x = npz["x"].astype(np.float64) * model.input_scale
        return x.reshape((-1, *model.input_shape)), npz["y"].astype(np.int64)

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
see quant.py). `exit` marks a layer after which an early-exit head may later branch off
(FreeML-style); the generator rejects it for now.

On disk a model is a directory: `model.json` (input, layers, quantization and code
generation parameters) and `weights.npz` (float32 `layer<i>.weight`, `layer<i>.bias`),
optionally `testset.npz` (`x`: float inputs (N, C, H, W) as uint8 raw values times
`input.scale`, `y`: labels).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["OPS", "WEIGHTED", "Layer", "Model", "conv2d", "dwconv2d", "dense", "relu", "maxpool2",
           "avgpool2", "flatten", "im2col", "load", "save", "dump_json", "load_testset", "ModelError"]

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
    exit: bool = False  # reserved: an early-exit point after this layer

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
        if self.exit:
            d["exit"] = True
        return d

    @classmethod
    def from_json(cls, d: dict) -> Layer:
        op = d.get("op")
        return cls(op, units=int(d.get("filters", d.get("units", 0))), kernel=int(d.get("kernel", 0)),
                   weight_frac_bits=d.get("weight_frac_bits"), output_frac_bits=d.get("output_frac_bits"),
                   exit=bool(d.get("exit", False)))


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
class Model:
    name: str
    input_shape: tuple[int, int, int]
    layers: list[Layer]
    input_frac_bits: int = 7  # int8 input = round(float input * 2^input_frac_bits)
    input_scale: float = 1.0  # float input = raw test-set value * input_scale
    commit_every: int = 16  # default preservation granularity (output elements per commit)
    description: str = ""
    extra: dict = field(default_factory=dict)  # other model.json keys, kept as they are

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
        """He-normal weights, zero biases, for every weighted layer."""
        for layer, shape in zip(self.layers, self.shapes()):
            wshape = layer.weight_shape(shape)
            if wshape is None:
                continue
            fan_in = int(np.prod(wshape[1:])) if layer.op != "dwconv2d" else layer.kernel ** 2
            layer.weight = (rng.standard_normal(wshape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
            layer.bias = np.zeros(wshape[0], np.float32)

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

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Float forward pass of a batch x (B, C, H, W) -> (B, outputs)."""
        x = np.asarray(x, np.float64)
        for layer in self.layers:
            x = forward_layer(layer, x)
        return x.reshape(x.shape[0], -1)


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
_KNOWN_KEYS = {"name", "description", "input", "layers", "commit_every"}


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
            "layers": [layer.to_json() for layer in model.layers],
            "commit_every": model.commit_every, **model.extra}
    (d / "model.json").write_text(dump_json(meta))
    arrays = {}
    for i, layer in enumerate(model.layers):
        if layer.weight is not None:
            arrays[f"layer{i}.weight"] = np.asarray(layer.weight, np.float32)
            arrays[f"layer{i}.bias"] = np.asarray(layer.bias, np.float32)
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
    model.check_weights()
    return model


def load_testset(directory: str | Path, model: Model) -> tuple[np.ndarray, np.ndarray]:
    """(x float (N, C, H, W), y int labels) from `directory`/testset.npz."""
    with np.load(Path(directory) / "testset.npz") as npz:
        x = npz["x"].astype(np.float64) * model.input_scale
        return x.reshape((-1, *model.input_shape)), npz["y"].astype(np.int64)

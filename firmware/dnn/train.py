"""Train (or make) the bundled models and write their directories under firmware/models/.

    python -m firmware.dnn.train digits [--out DIR]   # needs scikit-learn (the 8x8 digits set)
    python -m firmware.dnn.train allops [--out DIR]   # numpy only: random weights, every op

`digits`: conv 3x3 x8 -> relu -> maxpool 2x2 -> flatten -> dense 10 on sklearn's bundled
8x8 digits (1797 images, pixels 0..16, scaled to [0, 1]). Deterministic: a fixed split
(seed 0, 360 test images) and a fixed training seed; plain numpy forward/backward,
softmax cross-entropy, Adam. The test split is saved with the model (testset.npz, raw
pixels) so that tests and the generator need no scikit-learn.

`allops`: not trained. A network that uses every op (a leading ReLU, conv2d on two input
channels, depthwise conv, both pools on odd sizes, two dense layers) with seeded random
weights, calibrated on random inputs and then given one more output fractional bit in its
first conv so that some accumulators saturate. It exists to check the firmware kernels
against the reference, not to classify anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import model as M
from .model import Layer, Model, forward_layer, im2col, pool_windows
from .quant import calibrate, quantize

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


# -- backward passes -------------------------------------------------------------------------
def _col2im(dcols: np.ndarray, x_shape: tuple[int, ...], k: int) -> np.ndarray:
    """Adjoint of im2col: dcols (B, Ho, Wo, C, k, k) summed back into (B, C, H, W)."""
    dx = np.zeros(x_shape)
    ho, wo = dcols.shape[1], dcols.shape[2]
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + ho, j:j + wo] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dx


def _unpool(dwin: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """Adjoint of pool_windows: (B, C, Ho, Wo, 4) -> (B, C, H, W) (dropped rows/columns: 0)."""
    b, c, ho, wo, _ = dwin.shape
    dx = np.zeros(x_shape)
    dx[:, :, : 2 * ho, : 2 * wo] = dwin.reshape(b, c, ho, wo, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        b, c, 2 * ho, 2 * wo)
    return dx


def backward_layer(layer: Layer, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray | None,
                                                                           np.ndarray | None]:
    """(dx, dweight, dbias) of one layer at input x."""
    op = layer.op
    if op == "conv2d":
        cols = im2col(x, layer.kernel)
        dw = np.einsum("bfhw,bhwcij->fcij", dy, cols, optimize=True)
        dcols = np.einsum("bfhw,fcij->bhwcij", dy, layer.weight, optimize=True)
        return _col2im(dcols, x.shape, layer.kernel), dw, dy.sum(axis=(0, 2, 3))
    if op == "dwconv2d":
        cols = im2col(x, layer.kernel)
        dw = np.einsum("bchw,bhwcij->cij", dy, cols, optimize=True)
        dcols = np.einsum("bchw,cij->bhwcij", dy, layer.weight, optimize=True)
        return _col2im(dcols, x.shape, layer.kernel), dw, dy.sum(axis=(0, 2, 3))
    if op == "dense":
        return dy @ layer.weight, dy.T @ x, dy.sum(axis=0)
    if op == "relu":
        return dy * (x > 0), None, None
    if op == "maxpool2":
        win = pool_windows(x)
        mask = np.zeros_like(win)
        np.put_along_axis(mask, win.argmax(axis=-1)[..., None], 1.0, axis=-1)
        return _unpool(mask * dy[..., None], x.shape), None, None
    if op == "avgpool2":
        return _unpool(np.repeat(dy[..., None] / 4, 4, axis=-1), x.shape), None, None
    return dy.reshape(x.shape), None, None  # flatten


def loss_and_grads(model: Model, x: np.ndarray, labels: np.ndarray) -> tuple[float, list]:
    """Softmax cross-entropy of a batch and its gradients [(dweight, dbias) per layer]."""
    inputs = []
    a = x
    for layer in model.layers:
        inputs.append(a)
        a = forward_layer(layer, a)
    logits = a.reshape(len(x), -1)
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = float(-np.log(p[np.arange(len(x)), labels] + 1e-12).mean())
    dy = p
    dy[np.arange(len(x)), labels] -= 1
    dy = dy.reshape(a.shape) / len(x)
    grads: list = [None] * len(model.layers)
    for i in reversed(range(len(model.layers))):
        dy, dw, db = backward_layer(model.layers[i], inputs[i], dy)
        grads[i] = (dw, db)
    return loss, grads


def train(model: Model, x: np.ndarray, y: np.ndarray, *, epochs: int, batch: int = 32, lr: float = 0.01,
          weight_decay: float = 1e-4, seed: int = 0, log=print) -> None:
    """Adam on softmax cross-entropy with L2 weight decay, lr halved every third of the run."""
    rng = np.random.default_rng(seed)
    params = [(layer, name) for layer in model.layers if layer.weight is not None for name in ("weight", "bias")]
    for layer, name in params:
        setattr(layer, name, getattr(layer, name).astype(np.float64))
    m = [np.zeros_like(getattr(layer, name)) for layer, name in params]
    v = [np.zeros_like(getattr(layer, name)) for layer, name in params]
    b1, b2, step = 0.9, 0.999, 0
    for epoch in range(epochs):
        rate = lr * 0.5 ** (3 * epoch // epochs)
        order = rng.permutation(len(x))
        total = 0.0
        for at in range(0, len(x), batch):
            idx = order[at:at + batch]
            loss, grads = loss_and_grads(model, x[idx], y[idx])
            total += loss * len(idx)
            flat = [g for pair in grads if pair[0] is not None for g in pair]
            step += 1
            for k, ((layer, name), g) in enumerate(zip(params, flat)):
                p = getattr(layer, name)
                if name == "weight":
                    g = g + weight_decay * p
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                mh, vh = m[k] / (1 - b1**step), v[k] / (1 - b2**step)
                setattr(layer, name, p - rate * mh / (np.sqrt(vh) + 1e-8))
        if log and (epoch + 1) % 5 == 0:
            acc = (model.forward(x).argmax(axis=1) == y).mean()
            log(f"epoch {epoch + 1}: loss {total / len(x):.4f}, train accuracy {acc:.4f}")
    for layer, name in params:
        setattr(layer, name, getattr(layer, name).astype(np.float32))


# -- the bundled models ----------------------------------------------------------------------------
def make_digits(out: Path, log=print) -> None:
    from sklearn.datasets import load_digits  # training only: the generator never needs it

    digits = load_digits()
    raw = digits.data.astype(np.uint8)  # (1797, 64), 0..16
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(raw))
    test, tr = order[:360], order[360:]
    model = Model("digits", (1, 8, 8), [M.conv2d(8, 3), M.relu(), M.maxpool2(), M.flatten(), M.dense(10)],
                  input_frac_bits=6, input_scale=1 / 16, commit_every=16,
                  description="sklearn 8x8 digits: conv 3x3 x8, relu, maxpool 2x2, dense 10 (int8 logits)")
    model.init_weights(np.random.default_rng(1))
    x = raw.reshape(-1, 1, 8, 8) * model.input_scale
    train(model, x[tr], labels[tr], epochs=60, seed=2, log=log)
    calibrate(model, x[tr])
    M.save(model, out)
    np.savez_compressed(out / "testset.npz", x=raw[test], y=labels[test].astype(np.uint8))
    report(model, x[test], labels[test], log)


def make_allops(out: Path, log=print) -> None:
    rng = np.random.default_rng(7)
    model = Model("allops", (2, 11, 10),
                  [M.relu(), M.conv2d(4, 3), M.relu(), M.maxpool2(), M.dwconv2d(3), M.avgpool2(), M.flatten(),
                   M.dense(6), M.relu(), M.dense(5)],
                  input_frac_bits=7, input_scale=1 / 128, commit_every=5,
                  description="every op on odd sizes, random weights, some saturation: a kernel test, "
                              "not a classifier")
    model.init_weights(rng)
    for layer in model.layers:
        if layer.bias is not None:
            layer.bias = (rng.standard_normal(layer.bias.shape) * 0.1).astype(np.float32)
    raw = rng.integers(-128, 128, size=(16, 2 * 11 * 10), dtype=np.int64).astype(np.int8)
    x = raw.reshape(-1, 2, 11, 10) * model.input_scale
    calibrate(model, x[:4])
    model.layers[1].output_frac_bits += 1  # saturate some outputs of the first conv
    M.save(model, out)
    np.savez_compressed(out / "testset.npz", x=raw, y=model.forward(x).argmax(axis=1).astype(np.uint8))
    quantize(model)  # checks the accumulator ranges


def report(model: Model, x: np.ndarray, y: np.ndarray, log=print) -> None:
    qm = quantize(model)
    fl = model.forward(x).argmax(axis=1)
    q = qm.forward(qm.quantize_input(x)).argmax(axis=1)
    log(f"{model.name}: float test accuracy {(fl == y).mean():.4f}, int8 {(q == y).mean():.4f}, "
        f"argmax agreement {(fl == q).mean():.4f} on {len(y)} images")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.dnn.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=("digits", "allops"))
    parser.add_argument("--out", type=Path, help="model directory (default firmware/models/<model>)")
    args = parser.parse_args(argv)
    out = args.out or MODELS_DIR / args.model
    out.mkdir(parents=True, exist_ok=True)
    (make_digits if args.model == "digits" else make_allops)(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

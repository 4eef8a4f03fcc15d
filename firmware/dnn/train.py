"""Train (or make) the bundled models and write their directories under firmware/models/.

    python -m firmware.dnn.train digits [--out DIR]         # needs scikit-learn (the 8x8 digits set)
    python -m firmware.dnn.train digits_exits [--out DIR]   # idem: two early exits, pruned
    python -m firmware.dnn.train allops [--out DIR]         # numpy only: random weights, every op
    python -m firmware.dnn.train calibration [--out DIR]    # numpy only: the cost model's calibration
    python -m firmware.dnn.train calibration_fine [--out DIR]  # idem, other task sizes

`digits`: conv 3x3 x8 -> relu -> maxpool 2x2 -> flatten -> dense 10 on sklearn's bundled
8x8 digits (1797 images, pixels 0..16, scaled to [0, 1]). Deterministic: a fixed split
(seed 0, 360 test images) and a fixed training seed; plain numpy forward/backward,
softmax cross-entropy, Adam. The test split is saved with the model (testset.npz, raw
pixels) so that tests and the generator need no scikit-learn.

`digits_exits`: conv 3x3 x8 -> relu [exit 0] -> conv 3x3 x16 -> relu [exit 1] -> conv 3x3
x16 -> relu -> flatten -> dense 10, with one exit classifier shared by both exits (2x2-grid
average pooling per channel, zero-padded to 64 features -> dense 10), on the same split.
Trained jointly: the loss is the final output's cross-entropy plus EXIT_LOSS_WEIGHT times
each exit's (60 epochs, seed 2); then gradual magnitude pruning of the last two convs, the
dense layer and the exit classifier (PRUNE_SCHEDULE: to 2/3 of their `sparsity` targets,
10 epochs of fine-tuning with the pruned weights held at 0, then to the targets, 20 more
epochs), then calibration.

`allops`: not trained. A network that uses every op (a leading ReLU, conv2d on two input
channels, depthwise conv, both pools on odd sizes, two dense layers) with seeded random
weights, calibrated on random inputs and then given one more output fractional bit in its
first conv so that some accumulators saturate; its depthwise conv and last dense layer are
magnitude-pruned (stored sparse) and it has three exits (after the first conv's ReLU, a
9x8 map pooled over 4x4 regions; after the depthwise conv, 1x1 regions; after the first
dense layer's ReLU, a vector) with a random shared classifier. It exists to check the
firmware kernels against the reference, not to classify anything.

`calibration`, `calibration_fine`: not trained either; one network with random weights on
every kernel, with two sets of task sizes. The cost model (emu/power/model.py) fits its
per-operation instruction costs on the two once per board, and is then checked on the three
models above (docs/energy.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import model as M
from .model import (ExitClassifier, Layer, Model, forward_layer, im2col, magnitude_mask, pool_backward,
                    pool_features, pool_windows)
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


def _softmax_ce(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of a batch and its gradient w.r.t. the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss = float(-np.log(p[np.arange(len(labels)), labels] + 1e-12).mean())
    p[np.arange(len(labels)), labels] -= 1
    return loss, p / len(labels)


def loss_and_grads(model: Model, x: np.ndarray, labels: np.ndarray, exit_weight: float = 0.0) -> tuple[float, list]:
    """Softmax cross-entropy of a batch (plus exit_weight times each exit's) and its
    gradients [(dweight, dbias) per layer] (+ the exit classifier's, last, with exits)."""
    inputs = []
    a = x
    head = model.exit_classifier
    points = model.exit_points
    exit_grads: dict[int, np.ndarray] = {}
    loss = 0.0
    dw_head = db_head = None
    for i, layer in enumerate(model.layers):
        inputs.append(a)
        a = forward_layer(layer, a)
        if layer.exit and exit_weight:
            pooled = pool_features(a, head.features, head.grid)
            le, dl = _softmax_ce(head.forward(pooled), labels)
            loss += exit_weight * le
            dl *= exit_weight
            dw_head = dl.T @ pooled if dw_head is None else dw_head + dl.T @ pooled
            db_head = dl.sum(axis=0) if db_head is None else db_head + dl.sum(axis=0)
            exit_grads[i] = pool_backward(dl @ head.weight, a.shape[1:], head.grid)
    lf, dy = _softmax_ce(a.reshape(len(x), -1), labels)
    loss += lf
    dy = dy.reshape(a.shape)
    grads: list = [None] * len(model.layers)
    for i in reversed(range(len(model.layers))):
        if i in exit_grads:
            dy = dy + exit_grads[i]
        dy, dw, db = backward_layer(model.layers[i], inputs[i], dy)
        grads[i] = (dw, db)
    if points and exit_weight:
        grads.append((dw_head, db_head))
    return loss, grads


def _params(model: Model, exits: bool) -> list:
    objs = [layer for layer in model.layers if layer.weight is not None]
    if exits:
        objs.append(model.exit_classifier)
    return [(obj, name) for obj in objs for name in ("weight", "bias")]


def accuracies(model: Model, x: np.ndarray, y: np.ndarray) -> list[float]:
    """Float accuracy at each exit, then of the final output."""
    return [float((o.argmax(axis=1) == y).mean()) for o in model.forward_all(x)]


def train(model: Model, x: np.ndarray, y: np.ndarray, *, epochs: int, batch: int = 32, lr: float = 0.01,
          weight_decay: float = 1e-4, seed: int = 0, exit_weight: float = 0.0, masks: dict | None = None,
          log=print) -> None:
    """Adam on softmax cross-entropy (with exits: plus exit_weight x each exit's) with L2
    weight decay, lr halved every third of the run. masks: {id(layer): 0/1 array} weights
    held at 0 (pruned)."""
    rng = np.random.default_rng(seed)
    exits = bool(model.exit_points) and exit_weight > 0
    params = _params(model, exits)
    masks = masks or {}
    for obj, name in params:
        setattr(obj, name, getattr(obj, name).astype(np.float64))
        if name == "weight" and id(obj) in masks:
            obj.weight = obj.weight * masks[id(obj)]
    m = [np.zeros_like(getattr(obj, name)) for obj, name in params]
    v = [np.zeros_like(getattr(obj, name)) for obj, name in params]
    b1, b2, step = 0.9, 0.999, 0
    for epoch in range(epochs):
        rate = lr * 0.5 ** (3 * epoch // epochs)
        order = rng.permutation(len(x))
        total = 0.0
        for at in range(0, len(x), batch):
            idx = order[at:at + batch]
            loss, grads = loss_and_grads(model, x[idx], y[idx], exit_weight if exits else 0.0)
            total += loss * len(idx)
            flat = [g for pair in grads if pair[0] is not None for g in pair]
            step += 1
            for k, ((obj, name), g) in enumerate(zip(params, flat)):
                p = getattr(obj, name)
                if name == "weight":
                    g = g + weight_decay * p
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                mh, vh = m[k] / (1 - b1**step), v[k] / (1 - b2**step)
                p = p - rate * mh / (np.sqrt(vh) + 1e-8)
                if name == "weight" and id(obj) in masks:
                    p = p * masks[id(obj)]
                setattr(obj, name, p)
        if log and (epoch + 1) % 5 == 0:
            acc = " / ".join(f"{a:.4f}" for a in accuracies(model, x, y))
            log(f"epoch {epoch + 1}: loss {total / len(x):.4f}, train accuracy {acc}")
    for obj, name in params:
        setattr(obj, name, getattr(obj, name).astype(np.float32))


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


EXIT_LOSS_WEIGHT = 1.0
PRUNE = {2: 0.75, 4: 0.75, 7: 0.75}  # digits_exits: layer index -> sparsity target
PRUNE_EXIT_CLASSIFIER = 0.75
PRUNE_SCHEDULE = [(2 / 3, 10), (1.0, 20)]  # (fraction of the target, fine-tuning epochs): 50 %, then 75 %


def make_digits_exits(out: Path, log=print) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    raw = digits.data.astype(np.uint8)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(raw))  # the same split as digits
    test, tr = order[:360], order[360:]
    model = Model("digits_exits", (1, 8, 8),
                  [M.conv2d(8, 3), M.relu(), M.conv2d(16, 3), M.relu(), M.conv2d(16, 3), M.relu(), M.flatten(),
                   M.dense(10)],
                  input_frac_bits=6, input_scale=1 / 16, commit_every=16,
                  exit_classifier=ExitClassifier(64, 10, grid=2),
                  description="sklearn 8x8 digits: conv 3x3 x8, relu [exit 0], conv 3x3 x16, relu [exit 1], "
                              "conv 3x3 x16, relu, dense 10; one exit classifier shared by both exits (2x2-grid "
                              "average pooling, zero-padded to 64, dense 10); magnitude-pruned")
    model.layers[1].exit = model.layers[3].exit = True
    model.init_weights(np.random.default_rng(1))
    x = raw.reshape(-1, 1, 8, 8) * model.input_scale
    train(model, x[tr], labels[tr], epochs=60, seed=2, exit_weight=EXIT_LOSS_WEIGHT, log=log)
    calibrate(model, x[tr])
    log("before pruning:")
    report(model, x[test], labels[test], log)
    targets = [(model.layers[i], t) for i, t in PRUNE.items()] + [(model.exit_classifier, PRUNE_EXIT_CLASSIFIER)]
    for step, (fraction, epochs) in enumerate(PRUNE_SCHEDULE):  # gradual: prune, fine-tune, prune more
        masks = {}
        for layer, sparsity in targets:
            layer.sparsity = round(sparsity * fraction, 4)
            masks[id(layer)] = magnitude_mask(layer.weight, layer.sparsity)
        train(model, x[tr], labels[tr], epochs=epochs, lr=0.003, seed=3 + step, exit_weight=EXIT_LOSS_WEIGHT,
              masks=masks, log=log)
    calibrate(model, x[tr])
    M.save(model, out)
    np.savez_compressed(out / "testset.npz", x=raw[test], y=labels[test].astype(np.uint8))
    log("after pruning and fine-tuning:")
    report(model, x[test], labels[test], log)


def make_allops(out: Path, log=print) -> None:
    rng = np.random.default_rng(7)
    model = Model("allops", (2, 11, 10),
                  [M.relu(), M.conv2d(4, 3), M.relu(), M.maxpool2(), M.dwconv2d(3), M.avgpool2(), M.flatten(),
                   M.dense(6), M.relu(), M.dense(5)],
                  input_frac_bits=7, input_scale=1 / 128, commit_every=5,
                  description="every op on odd sizes, random weights, some saturation, sparse layers, "
                              "three exits: a kernel test, not a classifier")
    model.init_weights(rng)
    for layer in model.layers:
        if layer.bias is not None:
            layer.bias = (rng.standard_normal(layer.bias.shape) * 0.1).astype(np.float32)
    raw = rng.integers(-128, 128, size=(16, 2 * 11 * 10), dtype=np.int64).astype(np.int8)
    x = raw.reshape(-1, 2, 11, 10) * model.input_scale
    # the sparse kernels: a pruned depthwise conv and a pruned dense layer (random weights:
    # no fine-tuning); the exit pooling: exits on an odd-sized map (a row dropped), on a
    # map of 1x1 regions and on a vector, one shared classifier (its own seed, so that the
    # other weights and the inputs stay what they were)
    for i, sparsity in ((4, 0.75), (9, 0.8)):
        layer = model.layers[i]
        layer.sparsity = sparsity
        layer.weight = (layer.weight * magnitude_mask(layer.weight, sparsity)).astype(np.float32)
    for i in (2, 4, 8):
        model.layers[i].exit = True
    head = model.exit_classifier = ExitClassifier(16, 5, grid=2)
    head_rng = np.random.default_rng(8)
    head.weight = (head_rng.standard_normal((5, 16)) * 0.5).astype(np.float32)
    head.bias = (head_rng.standard_normal(5) * 0.1).astype(np.float32)
    calibrate(model, x[:4])
    model.layers[1].output_frac_bits += 1  # saturate some outputs of the first conv
    M.save(model, out)
    np.savez_compressed(out / "testset.npz", x=raw, y=model.forward(x).argmax(axis=1).astype(np.uint8))
    quantize(model)  # checks the accumulator ranges


def make_calibration(out: Path, log=print, fine: bool = False) -> None:
    """The cost model's calibration model (docs/energy.md): random weights, every kernel of
    the default element loop (a standalone ReLU, conv2d with 2 and 8 input channels, kernels
    3 and 2, depthwise convs of kernels 3 and 2, sparse conv2d and dense, both pools, dense
    with fan-ins 6, 40, 16 and 6) and a different number of output elements per task in each stage, so that the
    per-operation costs fitted on it are not collinear. Not one of the models the cost model
    is checked on. `fine`: the same network and weights with other, mostly smaller, task
    sizes (calibration_fine), so that a kernel's cost per task and per element are told
    apart even where the model's one commit_every sets the task size (ReLU, pools)."""
    from .design import Design

    rng = np.random.default_rng(11)
    layers = [M.relu(), M.dwconv2d(3), M.conv2d(4, 3), M.relu(), M.avgpool2(), M.conv2d(8, 3), M.maxpool2(),
              M.conv2d(6, 2), M.dwconv2d(2), M.flatten(), M.dense(40), M.relu(), M.dense(16), M.dense(6), M.dense(5)]
    model = Model("calibration_fine" if fine else "calibration", (2, 22, 20), layers, input_frac_bits=7,
                  input_scale=1 / 128, commit_every=3 if fine else 7,
                  description="random weights, every kernel, varied task sizes: the cost model's calibration "
                              "(emu/power/model.py), not a classifier")
    model.init_weights(rng)
    for layer in model.layers:
        if layer.bias is not None:
            layer.bias = (rng.standard_normal(layer.bias.shape) * 0.1).astype(np.float32)
    commits = ((1, 6), (2, 5), (5, 4), (7, 7), (8, 2), (10, 3), (12, 2), (13, 0), (14, 2)) if fine else \
        ((1, 13), (2, 11), (5, 9), (7, 4), (8, 3), (10, 7), (12, 5), (13, 4), (14, 0))  # the rest: commit_every
    for i, every in commits:
        model.layers[i].design = Design(commit_every=every)
    for i, sparsity in ((5, 0.7), (12, 0.75)):
        layer = model.layers[i]
        layer.sparsity = sparsity
        layer.weight = (layer.weight * magnitude_mask(layer.weight, sparsity)).astype(np.float32)
    raw = rng.integers(-128, 128, size=(8, 2 * 22 * 20), dtype=np.int64).astype(np.int8)
    x = raw.reshape(-1, 2, 22, 20) * model.input_scale
    calibrate(model, x[:4])
    # other requantization shifts in a conv2d and a dense stage (some outputs saturate): the
    # shift's cost per bit (shift_steps, firmware/dnn/taskops.py) must be told apart from the
    # per-element costs
    model.layers[7].output_frac_bits += 4
    model.layers[10].output_frac_bits += 3
    M.save(model, out)
    np.savez_compressed(out / "testset.npz", x=raw, y=model.forward(x).argmax(axis=1).astype(np.uint8))
    quantize(model)  # checks the accumulator ranges


def report(model: Model, x: np.ndarray, y: np.ndarray, log=print) -> None:
    qm = quantize(model)
    fls, qs = model.forward_all(x), qm.forward_all(qm.quantize_input(x))
    for k, (fo, qo) in enumerate(zip(fls, qs)):
        fl, q = fo.argmax(axis=1), qo.argmax(axis=1)
        what = "final output" if k == len(fls) - 1 else f"exit {k}"
        log(f"{model.name}, {what}: float test accuracy {(fl == y).mean():.4f}, int8 {(q == y).mean():.4f}, "
            f"argmax agreement {(fl == q).mean():.4f} on {len(y)} images")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.dnn.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=("digits", "digits_exits", "allops", "calibration", "calibration_fine"))
    parser.add_argument("--out", type=Path, help="model directory (default firmware/models/<model>)")
    args = parser.parse_args(argv)
    out = args.out or MODELS_DIR / args.model
    out.mkdir(parents=True, exist_ok=True)
    makers = {"digits": make_digits, "digits_exits": make_digits_exits, "allops": make_allops,
              "calibration": make_calibration, "calibration_fine": lambda out: make_calibration(out, fine=True)}
    makers[args.model](out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

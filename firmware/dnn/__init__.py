"""DNN inference firmware generator (docs/models.md).

    model.py    layers, early-exit points and the shared exit classifier, pruning masks, shapes,
                float forward pass, model directories (model.json + weights.npz)
    quant.py    int8 quantization with power-of-two scales; the bit-exact integer reference
                (final output and every exit)
    codegen.py  stages (backbone, exit pooling, exit classifier), dense or sparse weights, the C
                tables (model.h) and the per-stage costs (costs.json)
    design.py   intermittent execution designs of the weighted stages: loop order, tiles,
                commit granularity; their firmware table and cost figures
    taskops.py  the operations each task executes (costs.json `tasks`), for the cost model in
                emu/power/model.py
    measure.py  runs designs on the emulator: instructions, commits, non-volatile bytes (needs emu)
    train.py    trains the bundled models (needs scikit-learn; nothing else here does)
    c/          the C engine and app that run a generated model under the intermittent runtime

    python -m firmware.dnn generate firmware/models/digits OUT_DIR [--commit-every N] [--order O]
        [--tile CxHxW] [--in-tile K] [--stage-input 0|1]
    python -m firmware.dnn eval firmware/models/digits

Runtime dependency: numpy only.
"""

from pathlib import Path as _Path

import numpy as _np

from .codegen import Stage, costs, generate, plan, sparse_encode
from .design import ORDERS, Design, design_table, stage_designs
from .model import (
    OPS,
    ExitClassifier,
    Layer,
    Model,
    ModelError,
    avgpool2,
    conv2d,
    dense,
    dwconv2d,
    flatten,
    load,
    load_testset,
    magnitude_mask,
    maxpool2,
    relu,
    save,
)
from .quant import QExitClassifier, QLayer, QuantModel, calibrate, quantize, requantize, round_shift

__all__ = ["OPS", "Layer", "ExitClassifier", "Model", "ModelError", "conv2d", "dwconv2d", "dense", "relu",
           "maxpool2", "avgpool2", "flatten", "load", "save", "load_testset", "magnitude_mask", "QLayer",
           "QExitClassifier", "QuantModel", "quantize", "calibrate", "requantize", "round_shift", "Stage", "plan",
           "sparse_encode", "costs", "generate", "load_quantized", "default_input", "evaluate", "ORDERS", "Design",
           "design_table", "stage_designs"]


def load_quantized(directory) -> tuple[Model, QuantModel]:
    """The float model of a model directory and its int8 version."""
    model = load(directory)
    return model, quantize(model)


def default_input(directory, model: Model, qm: QuantModel) -> bytes:
    """The firmware's built-in input: the first test-set input, or zeros without a test set."""
    if (_Path(directory) / "testset.npz").exists():
        x, _ = load_testset(directory, model)
        return qm.quantize_input(x[:1]).tobytes()
    return bytes(int(_np.prod(qm.input_shape)))


def evaluate(directory) -> dict:
    """Float and int8 accuracy on the model's test set, and how often their argmax agree;
    with exits, the same for every exit (`exits`, in order)."""
    model, qm = load_quantized(directory)
    x, y = load_testset(directory, model)

    def scores(fl, q):
        fl, q = fl.argmax(axis=1), q.argmax(axis=1)
        return {"float_accuracy": float((fl == y).mean()), "int8_accuracy": float((q == y).mean()),
                "argmax_agreement": float((fl == q).mean())}

    fls, qs = model.forward_all(x), qm.forward_all(qm.quantize_input(x))
    result = {"images": len(y), **scores(fls[-1], qs[-1])}
    if qm.exits:
        result["exits"] = [scores(f, q) for f, q in zip(fls[:-1], qs[:-1])]
    return result

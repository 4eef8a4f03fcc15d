"""C generation: the tables of one quantized model for the firmware engine (c/), and the
per-stage cost report.

The firmware runs the model as a list of *stages* (see `plan`): the layers minus flatten
(a no-op on channel-major buffers), with a ReLU folded into the stage before it. Stage 0
reads `app_input`, the last backbone stage writes `app_output`, stage i in between writes
`dnn_buffer[i % 2]` and reads `dnn_buffer[(i - 1) % 2]` (ping-pong non-volatile buffers).

A model with early exits (E of them) has, after its backbone stages (0 .. DNN_STAGES - 1),
one pooling stage per exit point (DNN_STAGES + e: the exit point's buffer -> `dnn_pooled`,
F values), then one classifier stage per exit (DNN_STAGES + E + e: `dnn_pooled` ->
`app_output`), which all use the same weights (the shared classifier) with exit e's bias and
shift. A backbone stage that ends at exit point e carries `.exit = e` (c/dnn_app.c decides
there).

Weights are stored dense, or sparse when that is smaller (a pruned layer, see
`sparse_encode`): CSR rows over the layer's output channels whose entries are (delta u8,
weight i8) pairs, the deltas in *input-address* space.

Generated files (never checked in; firmware/Makefile writes them into the build tree):

    model.h     the tables, included once by c/dnn_app.c: app_input (default input),
                app_output, dnn_buffer, dnn_pooled, dnn_commit_every, weights, biases,
                dnn_stages[]
    costs.json  per stage: MACs, commits, non-volatile reads/writes per commit, preserved
                bytes; the operation counts of each task (taskops.py, for the cost model
                in emu/power/model.py); per path (final output, each exit); the model's size
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .design import (DEFAULT, DESIGN_STRUCT, ORDERS, RUNTIME_COMMIT_BYTES, TASK_STATE_BYTES, WEIGHTED_STAGES, Design,
                     check_design, geometry, stage_costs)
from .model import ModelError, dump_json, pool_grid
from .quant import QuantModel
from .taskops import task_ops

__all__ = ["Stage", "SparseWeights", "plan", "sparse_encode", "costs", "generate", "TASK_STATE_BYTES",
           "RUNTIME_COMMIT_BYTES", "NO_EXIT", "accumulator_size", "staging_size"]

# C op codes (c/dnn.h, enum dnn_op)
OP_CODES = {"conv2d": "DNN_CONV2D", "dwconv2d": "DNN_DWCONV2D", "dense": "DNN_DENSE",
            "maxpool2": "DNN_MAXPOOL2", "avgpool2": "DNN_AVGPOOL2", "relu": "DNN_RELU", "exitpool": "DNN_EXITPOOL"}
ORDER_CODES = {"channel": "DNN_ORDER_CHANNEL", "spatial": "DNN_ORDER_SPATIAL", "input": "DNN_ORDER_INPUT"}
assert list(ORDER_CODES) == list(ORDERS)
NO_EXIT = 0xFF  # dnn_stage_t.exit of a stage that is no exit point; the state's exit = RT_EXIT_FINAL


@dataclass
class SparseWeights:
    """CSR encoding of a weight matrix (rows = output channels / units): the entries of row r
    are pairs[rows[r] : rows[r + 1]], each (delta, weight). The kernel starts a pointer at
    the output element's input anchor and, per entry, advances it by delta and accumulates
    *pointer x weight*. A gap of more than 255 bytes is bridged by filler entries (255, 0)."""

    rows: np.ndarray  # uint16 (R + 1,)
    pairs: np.ndarray  # uint8 (entries, 2): delta, weight as a two's-complement byte
    nonzeros: int
    fillers: int

    @property
    def entries(self) -> int:
        return len(self.pairs)

    @property
    def nbytes(self) -> int:
        return self.pairs.size + 2 * self.rows.size

    def row_entries(self) -> np.ndarray:
        return np.diff(self.rows.astype(np.int64))


def input_offsets(op: str, weight_shape: tuple[int, ...], in_shape: tuple[int, ...]) -> np.ndarray:
    """For each weight of one output channel (in C order), the offset of the input value it
    multiplies from the output element's anchor (the window's top-left value of input
    channel 0 (conv2d), of the channel itself (dwconv2d), or the vector's start (dense))."""
    if op == "dense":
        return np.arange(weight_shape[1])
    _, h, w = in_shape
    k = weight_shape[-1]
    ij = (np.arange(k)[:, None] * w + np.arange(k)[None, :]).reshape(-1)
    if op == "dwconv2d":
        return ij
    return (np.arange(weight_shape[1])[:, None] * (h * w) + ij[None, :]).reshape(-1)


def sparse_encode(weight: np.ndarray, offsets: np.ndarray) -> SparseWeights:
    """The CSR encoding of int8 `weight` (R, ...) whose row elements sit at input `offsets`."""
    rows, pairs, fillers = [0], [], 0
    for row in np.asarray(weight).reshape(weight.shape[0], -1):
        at = 0
        for idx in np.flatnonzero(row):
            delta = int(offsets[idx]) - at
            while delta > 255:
                pairs.append((255, 0))
                fillers += 1
                delta -= 255
            pairs.append((delta, int(row[idx]) & 0xFF))
            at = int(offsets[idx])
        rows.append(len(pairs))
    if len(pairs) > 0x7FFF:
        raise ModelError(f"a sparse layer of {len(pairs)} entries does not fit the 16-bit row pointers")
    return SparseWeights(np.array(rows, np.uint16), np.array(pairs, np.uint8).reshape(-1, 2),
                         int(np.count_nonzero(weight)), fillers)


@dataclass
class Stage:
    op: str
    layers: list[int]  # indices of the model layers it computes ([] for the exit stages)
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    relu: bool = False
    shift: int = 0
    kernel: int = 0
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    exit: int | None = None  # backbone: the exit point at its end; pool: the exit it pools
    role: str = "backbone"  # "backbone", "pool" (an exit's pooling) or "classifier" (an exit's classifier)
    shares: int | None = None  # a classifier stage using the weights of this earlier stage
    macs: int = 0  # multiply-accumulates executed (a sparse layer: its entries only)
    sparse: SparseWeights | None = None
    grid: int = 0  # exitpool: regions per side

    def pool_grid(self) -> tuple[int, int, int, int]:
        """exitpool: (channels, grid side, region rows, region columns)."""
        c, h, w = self.in_shape
        return c, self.grid, h // self.grid, w // self.grid

    @property
    def outputs(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def fan_in(self) -> int:
        """Input values read per output element (a sparse layer: the most of any row)."""
        if self.sparse is not None:
            return int(self.sparse.row_entries().max(initial=0))
        if self.op == "conv2d":
            return self.in_shape[0] * self.kernel**2
        if self.op == "dwconv2d":
            return self.kernel**2
        if self.op == "dense":
            return int(np.prod(self.in_shape))
        if self.op in ("maxpool2", "avgpool2"):
            return 4
        if self.op == "exitpool":
            _, _, rh, rw = self.pool_grid()
            return rh * rw
        return 1

    def dims(self) -> tuple[int, int, int, int, int, int]:
        """(in_c, in_h, in_w, out_c, out_h, out_w); vectors are (n, 1, 1)."""
        def chw(shape):
            return tuple(shape) if len(shape) == 3 else (int(np.prod(shape)), 1, 1)
        return chw(self.in_shape) + chw(self.out_shape)

    def output_reads(self) -> np.ndarray:
        """Input values (= MACs for weighted stages) read for each output element."""
        if self.op == "exitpool":
            c, g, _, _ = self.pool_grid()
            n = np.zeros(self.outputs, np.int64)
            n[: c * g * g] = self.fan_in
            return n
        if self.sparse is None:
            return np.full(self.outputs, self.fan_in, np.int64)
        plane = self.outputs // len(self.sparse.row_entries())
        return np.repeat(self.sparse.row_entries(), plane)


def _encode(stage: Stage) -> Stage:
    """Store the weights sparse when that takes fewer bytes than dense."""
    if stage.weight is not None and stage.op in ("conv2d", "dwconv2d", "dense"):
        sp = sparse_encode(stage.weight, input_offsets(stage.op, stage.weight.shape, stage.in_shape))
        if sp.nbytes < stage.weight.size:
            stage.sparse = sp
            stage.macs = int(stage.output_reads().sum())
    return stage


def plan(qm: QuantModel) -> list[Stage]:
    """The firmware's stages for a quantized model: the backbone, then (with exits) one
    pooling stage per exit point and the shared classifier."""
    stages: list[Stage] = []
    for i, layer in enumerate(qm.layers):
        if layer.op == "flatten":
            if stages:
                stages[-1].layers.append(i)
            continue
        if layer.op == "relu" and stages:
            stages[-1].relu = True
            stages[-1].layers.append(i)
            continue
        stages.append(_encode(Stage(layer.op, [i], layer.in_shape, layer.out_shape, shift=layer.shift,
                                    kernel=layer.kernel, weight=layer.weight, bias=layer.bias, macs=layer.macs)))
    if not stages:
        raise ModelError(f"model {qm.name}: no layer computes anything (only flatten)")
    head = qm.exit_classifier
    if head is None:
        return stages  # out_shape: the computing layer's (a folded flatten changes no byte)
    backbone = len(stages)
    for e, point in enumerate(head.points):
        s = next((s for s in stages if point in s.layers), None)
        if s is None or s is stages[-1]:
            raise ModelError(f"model {qm.name}: exit point {e} (layer {point}) does not end a stage before "
                             "the last one")
        if s.exit is not None:
            raise ModelError(f"model {qm.name}: exit points {s.exit} and {e} end the same stage")
        s.exit = e
        shape = head.point_shapes[e]
        chw = tuple(shape) if len(shape) == 3 else (int(np.prod(shape)), 1, 1)
        stages.append(Stage("exitpool", [], chw, (head.features,), shift=head.pool_shifts[e], exit=e, role="pool",
                            grid=pool_grid(shape, head.grid)[1]))
    first = len(stages)
    for e in range(len(head.points)):
        s = Stage("dense", [], (head.features,), (head.units,), shift=head.shifts[e], weight=head.weight,
                  bias=head.biases[e], exit=e, role="classifier", macs=head.units * head.features)
        if e == 0:
            _encode(s)
        else:
            s.sparse, s.macs, s.shares = stages[first].sparse, stages[first].macs, first
        stages.append(s)
    if len(stages) > 254:
        raise ModelError(f"model {qm.name}: {len(stages)} stages, the task state holds at most 254")
    assert stages[backbone].role == "pool"
    return stages


def backbone_count(stages: list[Stage]) -> int:
    return sum(s.role == "backbone" for s in stages)


def _normalize(stages: list[Stage], commit_every, designs) -> tuple[list[int], list[Design]]:
    if isinstance(commit_every, int):
        commit_every = [commit_every] * len(stages)
    if designs is None:
        designs = [DEFAULT] * len(stages)
    elif isinstance(designs, Design):
        designs = [designs if s.op in WEIGHTED_STAGES else DEFAULT for s in stages]
    if len(commit_every) != len(stages) or any(not 0 <= n <= 0xFFFF for n in commit_every):
        raise ModelError(f"commit_every: {len(stages)} values in 0..65535 needed (0: a whole stage per commit)")
    if len(designs) != len(stages):
        raise ModelError(f"designs: {len(stages)} needed, one per stage")
    for i, (s, d) in enumerate(zip(stages, designs)):
        if s.op not in WEIGHTED_STAGES and not d.is_default:
            raise ModelError(f"design: stage {i} ({s.op}) has no design, only conv2d, dwconv2d and dense stages do")
        check_design(s, d, f"stage {i} ({s.op})")
    return list(commit_every), list(designs)


def accumulator_size(stages: list[Stage]) -> int:
    """int32 values per half of dnn_acc: the most outputs of a weighted stage whose reduction
    has more than one slice (only those can run in several passes, whatever the design)."""
    return max([s.outputs for s in stages if s.op in WEIGHTED_STAGES
                and geometry(s, Design(order="input", tile=(0, 0, 0))).slices > 1] or [0])


def staging_size(stages: list[Stage]) -> int:
    """Bytes of the volatile staging buffer: the largest input of a weighted stage."""
    return max([int(np.prod(s.in_shape)) for s in stages if s.op in WEIGHTED_STAGES] or [0])


def costs(qm: QuantModel, stages: list[Stage], commit_every: int | list[int],
          designs: Design | list[Design] | None = None) -> dict:
    """Per-stage cost figures for the given designs (None: the default everywhere; one
    Design: every weighted stage) and preservation granularities (design steps per commit,
    0: a whole pass; design.py)."""
    commit_every, designs = _normalize(stages, commit_every, designs)
    rows = []
    for i, (s, n, d) in enumerate(zip(stages, commit_every, designs)):
        c = stage_costs(s, d, n)
        weighted = s.weight is not None
        row = {
            "stage": i, "role": s.role, "op": s.op, "relu": s.relu, "layers": s.layers,
            "exit": s.exit, "in_shape": list(s.in_shape), "out_shape": list(s.out_shape),
            "outputs": s.outputs, "macs": s.macs, "shift": s.shift,
            "encoding": "sparse" if s.sparse is not None else "dense" if weighted else None,
            "weight_bytes": 0 if not weighted or s.shares is not None else s.sparse.nbytes if s.sparse is not None
            else s.weight.size,
            "dense_weight_bytes": 0 if not weighted or s.shares is not None else s.weight.size,
            "shares_weights_of": s.shares,
            "bias_bytes": 0 if s.bias is None else 4 * s.bias.size,
            "commit_every": n, "elements_per_commit": c["plan"]["steps_per_commit"] * c["plan"]["tile_outputs"],
            **c,
        }
        if weighted:
            row["dense_macs"] = int(np.prod(s.out_shape[1:] if s.op != "dense" else (1,))) * s.weight.size
        if s.sparse is not None:
            row["sparse"] = {"nonzero_weights": s.sparse.nonzeros, "filler_entries": s.sparse.fillers,
                             "pair_bytes": int(s.sparse.pairs.size), "row_pointer_bytes": 2 * int(s.sparse.rows.size)}
        row["tasks"] = task_ops(s, n, d.is_default or s.op not in WEIGHTED_STAGES)  # the cost model's input
        if s.op == "exitpool":
            row["grid"] = s.grid
            row["adds"] = int(s.output_reads().sum())
        rows.append(row)
    backbone = backbone_count(stages)

    def path(indices: list[int]) -> dict:
        return {"stages": indices, "macs": sum(rows[j]["macs"] for j in indices),
                "commits": sum(rows[j]["commits"] for j in indices),
                "preserved_bytes": sum(rows[j]["preserved_bytes"] for j in indices),
                "nv_read_bytes": sum(sum(rows[j]["nv_reads"].values()) for j in indices),
                "nv_write_bytes": sum(sum(rows[j]["nv_writes"].values()) for j in indices)}

    paths = {"final": path(list(range(backbone)))}
    for s in stages[:backbone]:
        if s.exit is not None:
            at = stages.index(s)
            paths[f"exit{s.exit}"] = path(list(range(at + 1)) + [backbone + s.exit, backbone + qm.exits + s.exit])
    buffer = _buffer_size(stages)
    size = {
        "weights": sum(r["weight_bytes"] for r in rows),
        "biases": sum(r["bias_bytes"] for r in rows),
        "input": int(np.prod(qm.input_shape)), "output": stages[backbone - 1].outputs,
        "activation_buffers": 2 * buffer,
        "pooled_features": qm.exit_classifier.features if qm.exit_classifier else 0,
        "accumulators": 8 * accumulator_size(stages),
        "staging_sram": staging_size(stages),
        "design_table": DESIGN_STRUCT.size * len(stages),
    }
    size["constants"] = size["weights"] + size["biases"]
    size["dense_weights"] = sum(r["dense_weight_bytes"] for r in rows)
    size["dense_constants"] = size["dense_weights"] + size["biases"]
    return {
        "model": qm.name,
        "stages": rows,
        "total": {k: v for k, v in paths["final"].items() if k != "stages"},
        "paths": paths,
        "size_bytes": size,
        "notes": "total: the path to the final output (paths: also each exit: the backbone up to the exit "
                 "point, its pooling stage and the shared classifier); macs: multiply-accumulates executed "
                 "(sparse layers: their stored entries; dense_macs: the dense layer's); design: the stage's "
                 "loop order, tile, in_tile, stage_input and commit_every (steps per commit, 0: a whole pass); "
                 "plan: the design applied (passes x tiles = steps; element_loop: the default element loop); "
                 "per_tile: the most expensive step (one tile in one pass, its input staged alone); per_commit: "
                 "the most expensive commit (most MACs, then most non-volatile bytes); nv_reads / nv_writes: "
                 "the stage's totals in bytes under continuous power (activations read from non-volatile "
                 "memory: the staged regions when stage_input; weights_and_biases: weights, sparse pairs, row "
                 "pointers, biases; accumulators: int32 partial sums); sram: bytes copied into the staging "
                 "buffer and input values read from it; nv_writes.runtime is the commit of runtime/task.c "
                 "(header seq/base/next and rt_active); preserved_bytes = outputs + partial sums written + "
                 "commits * (task state + runtime commit); accumulator_bytes: the double-buffered partial sums "
                 "a multi-pass design uses; weight_bytes of a sparse layer: its (delta, weight) pairs and row "
                 "pointers",
    }


def _buffer_size(stages: list[Stage]) -> int:
    backbone = backbone_count(stages)
    return max([s.outputs for s in stages[:backbone - 1]] or [1])


def _c_array(values: np.ndarray, per_line: int = 16) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return "{\n    " + ",\n    ".join(lines) + ",\n}"


def generate(qm: QuantModel, out_dir: str | Path, *, commit_every: int | list[int],
             default_input: bytes, source: str = "", designs: Design | list[Design] | None = None) -> dict:
    """Write model.h and costs.json into out_dir; returns the costs. designs: one per stage
    (design.stage_designs), one for every weighted stage, or None (the default)."""
    stages = plan(qm)
    commit_every, designs = _normalize(stages, commit_every, designs)
    input_size = int(np.prod(qm.input_shape))
    if len(default_input) != input_size:
        raise ModelError(f"default input has {len(default_input)} bytes, the model takes {input_size}")
    if max(s.outputs for s in stages) > 0xFFFF or input_size > 0xFFFF:
        raise ModelError(f"model {qm.name}: an activation of more than 65535 values does not fit the "
                         "16-bit positions")
    backbone = backbone_count(stages)
    exits = qm.exits
    buffer = _buffer_size(stages)
    out = []
    w = out.append
    w(f"/* Generated by firmware/dnn from {source or qm.name} (python -m firmware.dnn generate): do not edit.")
    w(" * Included once, by dnn/c/dnn_app.c. */")
    w("#ifndef DNN_MODEL_H\n#define DNN_MODEL_H\n")
    w(f'#define DNN_NAME "dnn_{qm.name}"')
    w(f"#define DNN_INPUT_SIZE {input_size}")
    w(f"#define DNN_OUTPUT_SIZE {stages[backbone - 1].outputs}")
    w("/* Stages 0 .. DNN_STAGES - 1: the backbone (the last one writes app_output). With exits:")
    w(" * DNN_STAGES + e pools exit point e into dnn_pooled, DNN_STAGES + DNN_EXITS + e is the")
    w(" * shared exit classifier with exit e's bias and shift (dnn_pooled -> app_output). */")
    w(f"#define DNN_STAGES {backbone}")
    w(f"#define DNN_EXITS {exits}")
    w(f"#define DNN_ALL_STAGES {len(stages)}")
    w(f"#define DNN_BUFFER_SIZE {buffer}\n")
    w("/* The job's input (int8, C x H x W), as flashed: the built-in default input. */")
    w(f"NV_INIT uint8_t app_input[DNN_INPUT_SIZE] = {_c_array(np.frombuffer(default_input, np.uint8))};")
    w("/* The output (int8 logits), written by the last backbone stage or the exit classifier. */")
    w("NV uint8_t app_output[DNN_OUTPUT_SIZE];")
    w("/* Ping-pong activations: stage i writes dnn_buffer[i % 2], reads dnn_buffer[(i - 1) % 2]. */")
    w("NV static int8_t dnn_buffer[2][DNN_BUFFER_SIZE];")
    if exits:
        w("/* The pooled features of the exit taken (zero-padded), the exit classifier's input. */")
        w(f"NV static int8_t dnn_pooled[{qm.exit_classifier.features}];")
    w("/* Preservation granularity: output elements (a design: steps) per commit, per stage (0: the")
    w(" * whole stage, a design: a whole pass). A flash-time knob: any values give the same output. */")
    w(f"NV_INIT uint16_t dnn_commit_every[DNN_ALL_STAGES] = {{{', '.join(str(n) for n in commit_every)}}};")
    w("/* Intermittent execution design per stage (dnn.h): loop order, staging, output tile, input")
    w(" * slices per pass. Flash-time too: any values give the same output (design.py: design_table). */")
    w("NV_INIT dnn_design_t dnn_design[DNN_ALL_STAGES] = {")
    for i, (s, d) in enumerate(zip(stages, designs)):
        w(f"    {{.order = {ORDER_CODES[d.order]}, .stage_input = {int(d.stage_input)}, .tile_c = {d.tile[0]}, "
          f".tile_h = {d.tile[1]}, .tile_w = {d.tile[2]}, .in_tile = {d.in_tile}}}, /* stage {i}: {s.op} */")
    w("};")
    acc, staging = accumulator_size(stages), staging_size(stages)
    w("/* Partial sums of the input-stationary order, double-buffered: the most outputs of a stage")
    w(" * whose reduction has more than one slice. */")
    w(f"#define DNN_ACC_SIZE {acc}")
    w(f"NV static int32_t dnn_acc[2][{max(acc, 1)}];")
    w("/* Volatile copy of the input region of a tile (stage_input): the largest input of a weighted")
    w(" * stage, laid out like it. */")
    w(f"NOINIT static int8_t dnn_staged[{max(staging, 1)}];\n")
    for i, s in enumerate(stages):
        if s.shares is not None:
            w(f"static const int32_t stage{i}_bias[{s.bias.size}] = {_c_array(s.bias, 8)};")
        elif s.sparse is not None:
            w(f"/* stage {i}: {s.sparse.nonzeros} nonzero weights of {s.weight.size} (+ {s.sparse.fillers} fillers): "
              "CSR rows, (delta, weight) pairs */")
            w(f"static const uint16_t stage{i}_rows[{s.sparse.rows.size}] = {_c_array(s.sparse.rows)};")
            w(f"static const uint8_t stage{i}_pairs[{max(s.sparse.pairs.size, 1)}] = "
              f"{_c_array(s.sparse.pairs if s.sparse.pairs.size else np.zeros(1))};")
            w(f"static const int32_t stage{i}_bias[{s.bias.size}] = {_c_array(s.bias, 8)};")
        elif s.weight is not None:
            w(f"static const int8_t stage{i}_weight[{s.weight.size}] = {_c_array(s.weight)};")
            w(f"static const int32_t stage{i}_bias[{s.bias.size}] = {_c_array(s.bias, 8)};")
    w("\nstatic const dnn_stage_t dnn_stages[DNN_ALL_STAGES] = {")
    for i, s in enumerate(stages):
        if s.role == "pool":
            src = _stage_out(stages.index(next(t for t in stages[:backbone] if t.exit == s.exit)), backbone)
            src = f"(const int8_t *){src}"
            dst = "dnn_pooled"
        elif s.role == "classifier":
            src, dst = "dnn_pooled", "(int8_t *)app_output"

        else:
            src = "(const int8_t *)app_input" if i == 0 else _stage_out(i - 1, backbone)
            dst = _stage_out(i, backbone)
        ic, ih, iw, oc, oh, ow = s.dims()
        if s.op == "exitpool":  # out: the real channels on a grid x grid (then padding up to outputs)
            oc, oh, ow = ic, s.grid, s.grid
        if s.role == "backbone":
            what = "layers " + ", ".join(f"{j}:{qm.layers[j].op}" for j in s.layers)
            if s.exit is not None:
                what += f"; exit point {s.exit}"
        else:
            what = f"exit {s.exit}: pooling" if s.role == "pool" else f"exit {s.exit}: the shared classifier"
        if s.sparse is not None:
            what += "; sparse"
        w(f"    /* stage {i}: {what}; {list(s.in_shape)} -> {list(s.out_shape)} */")
        w(f"    {{.op = {OP_CODES[s.op]}, .relu = {int(s.relu)}, .shift = {s.shift}, .kernel = {s.kernel}, "
          f".exit = {NO_EXIT if s.exit is None or s.role != 'backbone' else s.exit},")
        w(f"     .in_c = {ic}, .in_h = {ih}, .in_w = {iw}, .out_c = {oc}, .out_h = {oh}, .out_w = {ow},")
        fan_in = s.weight.size // s.weight.shape[0] if s.weight is not None else 0
        w(f"     .outputs = {s.outputs}, .in_plane = {ih * iw}, .out_plane = {oh * ow}, .fan_in = {fan_in},")
        owner = i if s.shares is None else s.shares
        if s.sparse is not None:
            weight, rows = f"(const int8_t *)stage{owner}_pairs", f"stage{owner}_rows"
        else:
            weight, rows = (f"stage{owner}_weight" if s.weight is not None else "0"), "0"
        bias = f"stage{i}_bias" if s.bias is not None else "0"
        w(f"     .in = {src}, .out = {dst}, .weight = {weight}, .rows = {rows}, .bias = {bias}}},")
    w("};\n\n#endif /* DNN_MODEL_H */")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = costs(qm, stages, commit_every, designs)
    (out_dir / "costs.json").write_text(dump_json(report))
    (out_dir / "model.h").write_text("\n".join(out) + "\n")
    return report


def _stage_out(i: int, backbone: int) -> str:
    """Where backbone stage i writes."""
    return "(int8_t *)app_output" if i == backbone - 1 else f"dnn_buffer[{i % 2}]"

"""C generation: the tables of one quantized model for the firmware engine (c/), and the
per-stage cost report.

The firmware runs the model as a list of *stages* (see `plan`): the layers minus flatten
(a no-op on channel-major buffers), with a ReLU folded into the stage before it. Stage 0
reads `app_input`, the last stage writes `app_output`, stage i in between writes
`dnn_buffer[i % 2]` and reads `dnn_buffer[(i - 1) % 2]` (ping-pong non-volatile buffers).

Generated files (never checked in; firmware/Makefile writes them into the build tree):

    model.h     the tables, included once by c/dnn_app.c: app_input (default input),
                app_output, dnn_buffer, dnn_commit_every, weights, biases, dnn_stages[]
    costs.json  per stage: MACs, commits, non-volatile reads/writes per commit, preserved
                bytes; plus the model's size
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .model import ModelError, dump_json
from .quant import QuantModel

__all__ = ["Stage", "plan", "costs", "generate", "TASK_STATE_BYTES", "RUNTIME_COMMIT_BYTES"]

# C op codes (c/dnn.h, enum dnn_op)
OP_CODES = {"conv2d": "DNN_CONV2D", "dwconv2d": "DNN_DWCONV2D", "dense": "DNN_DENSE",
            "maxpool2": "DNN_MAXPOOL2", "avgpool2": "DNN_AVGPOOL2", "relu": "DNN_RELU"}
# Bytes a commit writes besides the outputs: the task state {stage, pos} (c/dnn_app.c) and
# the runtime's copy header {seq u32, base u32, next u16} plus rt_active u16 (runtime/task.c).
TASK_STATE_BYTES = 4
RUNTIME_COMMIT_BYTES = 12


@dataclass
class Stage:
    op: str
    layers: list[int]  # indices of the model layers it computes
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    relu: bool = False
    shift: int = 0
    kernel: int = 0
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    exit: bool = False
    macs: int = 0

    @property
    def outputs(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def fan_in(self) -> int:
        """Input values read per output element."""
        if self.op == "conv2d":
            return self.in_shape[0] * self.kernel**2
        if self.op == "dwconv2d":
            return self.kernel**2
        if self.op == "dense":
            return int(np.prod(self.in_shape))
        if self.op in ("maxpool2", "avgpool2"):
            return 4
        return 1

    def dims(self) -> tuple[int, int, int, int, int, int]:
        """(in_c, in_h, in_w, out_c, out_h, out_w); vectors are (n, 1, 1)."""
        def chw(shape):
            return tuple(shape) if len(shape) == 3 else (int(np.prod(shape)), 1, 1)
        return chw(self.in_shape) + chw(self.out_shape)


def plan(qm: QuantModel) -> list[Stage]:
    """The firmware's stages for a quantized model."""
    stages: list[Stage] = []
    for i, layer in enumerate(qm.layers):
        if layer.exit:
            raise ModelError(f"model {qm.name}, layer {i}: early exits are not supported yet")
        if layer.op == "flatten":
            if stages:
                stages[-1].layers.append(i)
            continue
        if layer.op == "relu" and stages:
            stages[-1].relu = True
            stages[-1].layers.append(i)
            continue
        stages.append(Stage(layer.op, [i], layer.in_shape, layer.out_shape, shift=layer.shift,
                            kernel=layer.kernel, weight=layer.weight, bias=layer.bias, macs=layer.macs))
    if not stages:
        raise ModelError(f"model {qm.name}: no layer computes anything (only flatten)")
    return stages  # out_shape: the computing layer's (a folded flatten changes no byte)


def _chunk(n: int, outputs: int) -> int:
    return outputs if n <= 0 or n > outputs else n


def costs(qm: QuantModel, stages: list[Stage], commit_every: list[int]) -> dict:
    """Per-stage cost figures for the given preservation granularities (0: whole stage)."""
    rows = []
    for i, (s, n) in enumerate(zip(stages, commit_every)):
        chunk = _chunk(n, s.outputs)
        commits = -(-s.outputs // chunk)
        weight_bytes = 0 if s.weight is None else s.weight.size
        bias_reads = 4 if s.bias is not None else 0
        weight_reads = chunk * (s.fan_in + bias_reads) if s.op in ("conv2d", "dwconv2d", "dense") else 0
        rows.append({
            "stage": i, "op": s.op, "relu": s.relu, "layers": s.layers,
            "in_shape": list(s.in_shape), "out_shape": list(s.out_shape),
            "outputs": s.outputs, "macs": s.macs, "shift": s.shift,
            "weight_bytes": weight_bytes, "bias_bytes": 0 if s.bias is None else 4 * s.bias.size,
            "commit_every": n, "elements_per_commit": chunk, "commits": commits,
            "per_commit": {  # a full chunk; the last one of a stage may be shorter
                "macs": chunk * (s.macs // s.outputs),
                "nv_reads": {"activations": chunk * s.fan_in, "weights_and_biases": weight_reads},
                "nv_writes": {"activations": chunk, "task_state": TASK_STATE_BYTES,
                              "runtime": RUNTIME_COMMIT_BYTES},
            },
            "preserved_bytes": s.outputs + commits * (TASK_STATE_BYTES + RUNTIME_COMMIT_BYTES),
            "max_reexecuted_macs": chunk * (s.macs // s.outputs),
        })
    buffer = _buffer_size(stages)
    size = {
        "weights": sum(r["weight_bytes"] for r in rows),
        "biases": sum(r["bias_bytes"] for r in rows),
        "input": int(np.prod(qm.input_shape)), "output": stages[-1].outputs,
        "activation_buffers": 2 * buffer,
    }
    size["constants"] = size["weights"] + size["biases"]
    return {
        "model": qm.name,
        "stages": rows,
        "total": {"macs": sum(r["macs"] for r in rows), "commits": sum(r["commits"] for r in rows),
                  "preserved_bytes": sum(r["preserved_bytes"] for r in rows)},
        "size_bytes": size,
        "notes": "per_commit counts bytes for one full chunk of elements_per_commit outputs; "
                 "nv_writes.runtime is the commit of runtime/task.c (header seq/base/next and rt_active); "
                 "preserved_bytes = outputs written + commits * (task state + runtime commit)",
    }


def _buffer_size(stages: list[Stage]) -> int:
    return max([s.outputs for s in stages[:-1]] or [1])


def _c_array(values: np.ndarray, per_line: int = 16) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return "{\n    " + ",\n    ".join(lines) + ",\n}"


def generate(qm: QuantModel, out_dir: str | Path, *, commit_every: int | list[int],
             default_input: bytes, source: str = "") -> dict:
    """Write model.h and costs.json into out_dir; returns the costs."""
    stages = plan(qm)
    if isinstance(commit_every, int):
        commit_every = [commit_every] * len(stages)
    if len(commit_every) != len(stages) or any(not 0 <= n <= 0xFFFF for n in commit_every):
        raise ModelError(f"commit_every: {len(stages)} values in 0..65535 needed (0: a whole stage per commit)")
    input_size = int(np.prod(qm.input_shape))
    if len(default_input) != input_size:
        raise ModelError(f"default input has {len(default_input)} bytes, the model takes {input_size}")
    if max(s.outputs for s in stages) > 0xFFFF or input_size > 0xFFFF:
        raise ModelError(f"model {qm.name}: an activation of more than 65535 values does not fit the "
                         "16-bit positions")
    buffer = _buffer_size(stages)
    out = []
    w = out.append
    w(f"/* Generated by firmware/dnn from {source or qm.name} (python -m firmware.dnn generate): do not edit.")
    w(" * Included once, by dnn/c/dnn_app.c. */")
    w("#ifndef DNN_MODEL_H\n#define DNN_MODEL_H\n")
    w(f'#define DNN_NAME "dnn_{qm.name}"')
    w(f"#define DNN_INPUT_SIZE {input_size}")
    w(f"#define DNN_OUTPUT_SIZE {stages[-1].outputs}")
    w(f"#define DNN_STAGES {len(stages)}")
    w(f"#define DNN_BUFFER_SIZE {buffer}\n")
    w("/* The job's input (int8, C x H x W), as flashed: the built-in default input. */")
    w(f"NV_INIT uint8_t app_input[DNN_INPUT_SIZE] = {_c_array(np.frombuffer(default_input, np.uint8))};")
    w("/* The output (int8 logits), written by the last stage. */")
    w("NV uint8_t app_output[DNN_OUTPUT_SIZE];")
    w("/* Ping-pong activations: stage i writes dnn_buffer[i % 2], reads dnn_buffer[(i - 1) % 2]. */")
    w("NV static int8_t dnn_buffer[2][DNN_BUFFER_SIZE];")
    w("/* Preservation granularity: output elements per commit, per stage (0: the whole stage).")
    w(" * A flash-time knob: any values give the same output. */")
    w(f"NV_INIT uint16_t dnn_commit_every[DNN_STAGES] = {{{', '.join(str(n) for n in commit_every)}}};\n")
    for i, s in enumerate(stages):
        if s.weight is not None:
            w(f"static const int8_t stage{i}_weight[{s.weight.size}] = {_c_array(s.weight)};")
            w(f"static const int32_t stage{i}_bias[{s.bias.size}] = {_c_array(s.bias, 8)};")
    w("\nstatic const dnn_stage_t dnn_stages[DNN_STAGES] = {")
    for i, s in enumerate(stages):
        src = "(const int8_t *)app_input" if i == 0 else f"dnn_buffer[{(i - 1) % 2}]"
        dst = "(int8_t *)app_output" if i == len(stages) - 1 else f"dnn_buffer[{i % 2}]"
        ic, ih, iw, oc, oh, ow = s.dims()
        layers = ", ".join(f"{j}:{qm.layers[j].op}" for j in s.layers)
        w(f"    /* stage {i}: layers {layers}; {list(s.in_shape)} -> {list(s.out_shape)} */")
        w(f"    {{.op = {OP_CODES[s.op]}, .relu = {int(s.relu)}, .shift = {s.shift}, .kernel = {s.kernel},")
        w(f"     .in_c = {ic}, .in_h = {ih}, .in_w = {iw}, .out_c = {oc}, .out_h = {oh}, .out_w = {ow},")
        fan_in = s.weight.size // s.weight.shape[0] if s.weight is not None else 0
        w(f"     .outputs = {s.outputs}, .in_plane = {ih * iw}, .out_plane = {oh * ow}, .fan_in = {fan_in},")
        weight = f"stage{i}_weight" if s.weight is not None else "0"
        bias = f"stage{i}_bias" if s.bias is not None else "0"
        w(f"     .in = {src}, .out = {dst}, .weight = {weight}, .bias = {bias}}},")
    w("};\n\n#endif /* DNN_MODEL_H */")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = costs(qm, stages, commit_every)
    (out_dir / "costs.json").write_text(dump_json(report))
    (out_dir / "model.h").write_text("\n".join(out) + "\n")
    return report

"""Operation counts of every task (atomic unit) of a generated model, from the loop
structure of the engine's kernels (dnn/c/dnn_kernels.c), for a cost model that predicts
each task's instructions without running it (emu/power/model.py, docs/energy.md).

A task of stage s computes output elements [begin, end) with one call of the stage's kernel
(dnn_app.c: `dnn_stage_run`), then the runtime commits. What it executes, counted here:

* `<kernel>.tasks`: 1; the task's fixed part (the runtime's commit and dispatch, the
  kernel's entry and position set-up) is a cost per task of that kernel;
* `<kernel>.elements`: output elements (one saturation and one non-volatile store each);
* `conv.rows`, `conv.macs`: iterations of conv()'s two innermost loops (kernel rows of
  every input channel, products per row); the input-channel loop around them is counted
  with the rows (a separate figure would not be identifiable from a small calibration);
* `conv.row_wraps`, `conv.channel_wraps`: elements after which the window moves to the next
  output row, and to the next output channel (the same for the other kernels that walk a
  channel-major position: conv_sparse, pool);
* `<sparse kernel>.entries`: (delta, weight) pairs walked, fillers included: a product each;
* `dense.macs`: products of dense();
* `shift_steps`: elements x the stage's requantization shift: dnn_saturate's variable
  32-bit shift is a loop of one step per bit where the CPU has no barrel shifter (the
  MSP430: __mspabi_sral), the same in every kernel;
* `stage_ends`: 1 for the task that completes its stage (the next stage, or the end of the
  job, is decided there).

Kernels: conv (conv2d and dwconv2d with dense weights), conv_sparse, dense, dense_sparse,
maxpool2, avgpool2, relu, exitpool. A stage under a non-default design (dnn_design.c) has no
counts here (None): the model covers the default element loop.

Public names: `task_ops`, `KERNELS`.
"""

from __future__ import annotations

KERNELS = ("conv", "conv_sparse", "dense", "dense_sparse", "maxpool2", "avgpool2", "relu", "exitpool")


def _kernel(stage) -> str:
    sparse = stage.sparse is not None
    if stage.op in ("conv2d", "dwconv2d"):
        return "conv_sparse" if sparse else "conv"
    if stage.op == "dense":
        return "dense_sparse" if sparse else "dense"
    return stage.op


def task_ops(stage, commit_every: int, default_design: bool = True) -> list[dict[str, int]] | None:
    """The operation counts of each task of `stage` in order (None under a non-default
    design); commit_every: output elements per task (0: the whole stage)."""
    if not default_design:
        return None
    kernel = _kernel(stage)
    _, _, _, _, out_h, out_w = stage.dims()
    plane = out_h * out_w
    n = stage.outputs if commit_every == 0 else commit_every
    rows = None if stage.sparse is None else [int(v) for v in stage.sparse.rows]
    tasks = []
    for begin in range(0, stage.outputs, n):
        end = min(begin + n, stage.outputs)
        elements = end - begin
        ops = {f"{kernel}.tasks": 1, f"{kernel}.elements": elements}
        if kernel in ("conv", "conv_sparse", "dense", "dense_sparse", "exitpool"):
            ops["shift_steps"] = elements * stage.shift
        if kernel in ("conv", "conv_sparse", "maxpool2", "avgpool2"):
            ops[f"{kernel}.row_wraps"] = sum(1 for o in range(begin, end) if (o + 1) % out_w == 0)
            ops[f"{kernel}.channel_wraps"] = sum(1 for o in range(begin, end) if (o + 1) % plane == 0)
        if kernel == "conv":
            channels = 1 if stage.op == "dwconv2d" else stage.in_shape[0]
            ops["conv.rows"] = elements * channels * stage.kernel
            ops["conv.macs"] = elements * channels * stage.kernel ** 2
        elif kernel == "conv_sparse":
            ops["conv_sparse.entries"] = sum(rows[o // plane + 1] - rows[o // plane] for o in range(begin, end))
        elif kernel == "dense":
            ops["dense.macs"] = elements * stage.fan_in
        elif kernel == "dense_sparse":
            ops["dense_sparse.entries"] = rows[end] - rows[begin]
        elif kernel == "exitpool":
            c, g, rh, rw = stage.pool_grid()
            real = sum(1 for o in range(begin, end) if o < c * g * g)  # the rest is padding
            ops["exitpool.real"] = real
            ops["exitpool.rows"] = real * rh
            ops["exitpool.adds"] = real * rh * rw
        if end == stage.outputs:
            ops["stage_ends"] = 1
        tasks.append(ops)
    return tasks

"""DNN inference firmware (firmware/dnn, docs/models.md): the int8 reference against the
definitions and the float model, the cost report, and the generated firmware against the
reference, bit for bit, on both boards, under continuous power and power failures (inside
task commits, in tiny periods that cut the boot, at random points), for several
preservation granularities."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest

import emu
from emu.campaign import Campaign
from emu.debuginfo import SourceMap
from emu.protocol import Result, last_result
from firmware.dnn import Model, ModelError, conv2d, dense, load_quantized, load_testset, maxpool2, plan, quantize
from firmware.dnn.codegen import costs
from firmware.dnn.quant import quantize_value, requantize, round_shift

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "firmware" / "models"
BOARDS = ["msp430fr5994", "cortex-m4-mram"]


@cache
def bundled(name: str):
    """(float model, int8 model, float test inputs, labels, int8 test inputs)."""
    model, qm = load_quantized(MODELS / name)
    x, y = load_testset(MODELS / name, model)
    return model, qm, x, y, qm.quantize_input(x)


# -- the arithmetic -----------------------------------------------------------------------------
def test_rounding_is_half_up_then_saturating():
    # 5/2 = 2.5 -> 3, -5/2 = -2.5 -> -2 (ties towards +inf), -7/4 = -1.75 -> -2, 6/4 = 1.5 -> 2
    assert round_shift(np.array([5, -5, -7, 6, -6, 7]), 1).tolist() == [3, -2, -3, 3, -3, 4]
    assert round_shift(np.array([-7, 6, -6, 1, -2]), 2).tolist() == [-2, 2, -1, 0, 0]
    assert round_shift(np.array([-3, 3]), 0).tolist() == [-3, 3]
    # 1000 / 4 = 250 saturates to 127, -1000 / 4 to -128, 510 / 4 = 127.5 -> 128 -> 127
    assert requantize(np.array([1000, -1000, 510, -514, -513]), 2).tolist() == [127, -128, 127, -128, -128]
    # constants: 0.3 * 32 = 9.6 -> 10; -0.296875 * 32 = -9.5 -> -9; 5.0 * 32 = 160 -> 127
    assert quantize_value(np.array([0.3, -0.296875, 5.0, -5.0]), 5).tolist() == [10, -9, 127, -128]


def naive_requant(acc: int, shift: int) -> int:
    if shift:
        acc = (acc + (1 << (shift - 1))) // (1 << shift)  # floor division: an arithmetic shift
    return max(-128, min(127, acc))


def naive_layer(layer, a):
    """One int8 layer from its definition, with Python ints on nested lists."""
    op, k, shift = layer.op, layer.kernel, layer.shift
    w = layer.weight.astype(int).tolist() if layer.weight is not None else None
    b = layer.bias.astype(int).tolist() if layer.bias is not None else None
    out = []
    if op == "conv2d":
        oc, oh, ow = layer.out_shape
        for f in range(oc):
            out.append([[naive_requant(b[f] + sum(a[c][y + i][x + j] * w[f][c][i][j] for c in range(len(a))
                                                  for i in range(k) for j in range(k)), shift)
                         for x in range(ow)] for y in range(oh)])
    elif op == "dwconv2d":
        oc, oh, ow = layer.out_shape
        for c in range(oc):
            out.append([[naive_requant(b[c] + sum(a[c][y + i][x + j] * w[c][i][j]
                                                  for i in range(k) for j in range(k)), shift)
                         for x in range(ow)] for y in range(oh)])
    elif op == "dense":
        out = [naive_requant(b[u] + sum(v * wu for v, wu in zip(a, w[u])), shift) for u in range(len(w))]
    elif op in ("maxpool2", "avgpool2"):
        c_, h, w_ = layer.in_shape
        for c in range(c_):
            rows = []
            for y in range(h // 2):
                row = []
                for x in range(w_ // 2):
                    win = [a[c][2 * y][2 * x], a[c][2 * y][2 * x + 1], a[c][2 * y + 1][2 * x], a[c][2 * y + 1][2 * x + 1]]
                    row.append(max(win) if op == "maxpool2" else naive_requant(sum(win), 2))
                rows.append(row)
            out.append(rows)
    elif op == "relu":
        out = np.maximum(np.array(a), 0).tolist()
    else:  # flatten
        out = np.array(a).reshape(-1).tolist()
    return out


def naive_forward(qm, x: np.ndarray) -> list[int]:
    """The int8 model on one input, written out from the definitions."""
    a = x.astype(int).tolist()
    for layer in qm.layers:
        a = naive_layer(layer, a)
    return list(np.array(a).reshape(-1))


@pytest.mark.parametrize("name", ["digits", "allops"])
def test_reference_follows_the_definitions(name):
    _, qm, _, _, xq = bundled(name)
    for i in range(3):
        assert qm.forward(xq[i:i + 1])[0].tolist() == naive_forward(qm, xq[i])


def test_allops_exercises_saturation_and_negative_rounding():
    """The kernel-test model must reach what it is meant to test: saturated outputs of its
    first conv and negative inputs to its average pool."""
    _, qm, _, _, xq = bundled("allops")
    a = qm.layers[0].forward(xq)
    conv = qm.layers[1].forward(a)
    assert (conv == 127).any() and (conv == -128).any()
    pool_in = qm.layers[4].forward(qm.layers[3].forward(qm.layers[2].forward(conv)))
    assert (pool_in < 0).any()


def test_int8_model_tracks_the_float_model():
    """Power-of-two int8 quantization keeps the classifier. The int8 logits have 2
    fractional bits (LSB 0.25); their error is a sum of roundings (inputs exact, weights
    +-2^-6, conv outputs +-2^-5, logits +-2^-3) through two layers, a few LSBs. So the
    dequantized logits must stay within 4 LSBs of the float ones, and the argmax may only
    differ on images whose float top-2 margin is under 2 * 4 LSBs = 2.0 - about 1 % of
    this test set - which bounds the disagreement well under 3 %."""
    model, qm, x, y, xq = bundled("digits")
    fl = model.forward(x)
    q = qm.forward(xq)
    assert np.abs(q * qm.output_scale() - fl).max() <= 4 * qm.output_scale()
    top2 = np.sort(fl, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] >= 2.0
    assert (fl.argmax(1) == q.argmax(1))[clear].all()
    assert (fl.argmax(1) == q.argmax(1)).mean() >= 0.97
    assert (fl.argmax(1) == y).mean() >= 0.95  # a trained model, not a random one
    assert (q.argmax(1) == y).mean() >= (fl.argmax(1) == y).mean() - 0.02


def test_shape_and_range_errors_are_explained():
    m = Model("bad", (1, 8, 8), [conv2d(2, 3), dense(3)])
    with pytest.raises(ModelError, match="flatten"):
        m.shapes()
    m = Model("big", (1, 4, 4), [conv2d(1, 3), maxpool2()], input_frac_bits=7)
    m.init_weights(np.random.default_rng(0))
    m.layers[0].weight[:] = 0.99
    m.layers[0].weight_frac_bits, m.layers[0].output_frac_bits = 7, -20  # shift 34
    with pytest.raises(ModelError, match="shift"):
        quantize(m)


# -- the plan and its costs ------------------------------------------------------------------------
def test_digits_plan_and_costs(build_dir):
    _, qm, _, _, _ = bundled("digits")
    stages = plan(qm)
    # conv+relu, maxpool+flatten, dense
    assert [(s.op, s.relu, s.layers) for s in stages] == [("conv2d", True, [0, 1]), ("maxpool2", False, [2, 3]),
                                                          ("dense", False, [4])]
    report = json.loads((build_dir / "gen" / "dnn_digits" / "costs.json").read_text())
    assert report == json.loads(json.dumps(costs(qm, stages, [16, 16, 16])))
    rows = report["stages"]
    # 8 x 6 x 6 outputs of 9 MACs; 72 pooled; 10 x 72 MACs
    assert [r["outputs"] for r in rows] == [288, 72, 10]
    assert [r["macs"] for r in rows] == [2592, 0, 720]
    assert [r["commits"] for r in rows] == [18, 5, 1]  # ceil(288 / 16), ceil(72 / 16), 1
    assert rows[0]["per_commit"]["nv_reads"] == {"activations": 16 * 9, "weights_and_biases": 16 * (9 + 4)}
    assert rows[2]["per_commit"]["nv_reads"] == {"activations": 10 * 72, "weights_and_biases": 10 * (72 + 4)}
    # every output byte once, plus per commit the task state and the runtime's commit
    assert report["total"]["preserved_bytes"] == 288 + 72 + 10 + 24 * (4 + 12)
    assert report["size_bytes"]["constants"] == 72 + 720 + 4 * (8 + 10)
    assert report["size_bytes"]["activation_buffers"] == 2 * 288


# -- the firmware ------------------------------------------------------------------------------------
def machine(build_dir: Path, board: str, name: str) -> emu.Machine:
    return emu.Machine.from_elf(build_dir / board / f"dnn_{name}.elf")


def prepare(m: emu.Machine, data: bytes, every: list[int] | None = None) -> None:
    """Back to the flashed state with `data` as the input of the job the firmware runs at
    its first boot (as emu.vectors does), and optionally other commit granularities."""
    m.reset()
    m.write_symbol("app_input", data)
    if every is not None:
        m.write_symbol("dnn_commit_every", np.array(every, np.uint16).tobytes())


def job(m: emu.Machine, data: bytes, every: list[int] | None = None, fail_after=()) -> emu.RunResult:
    prepare(m, data, every)
    return m.run(fail_after=list(fail_after))


def check_result(m: emu.Machine, r: emu.RunResult, expected: bytes) -> None:
    assert r.outcome == "completed" and r.waiting_for_input, r.error
    result = last_result(r.uart)
    assert result is not None and result.exit == Result.NO_EXIT
    assert result.output == expected
    assert m.read_symbol("app_output") == expected


def extreme_inputs(qm) -> list[bytes]:
    n = int(np.prod(qm.input_shape))
    return [bytes([127] * n), bytes([128] * n), bytes([127, 128] * (n // 2) + [0] * (n % 2))]


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", ["digits", "allops"])
def test_continuous_power_matches_reference(build_dir, board, name):
    _, qm, _, _, xq = bundled(name)
    m = machine(build_dir, board, name)
    assert m.image.symbol("app_input").size == xq[0].size
    assert m.image.symbol("app_output").size == int(np.prod(qm.output_shape))
    assert m.image.flashed_bytes("app_input") == xq[0].tobytes()  # the built-in input: test image 0
    for data in [xq[i].tobytes() for i in range(3)] + extreme_inputs(qm):
        check_result(m, job(m, data), qm.run(data))


def commit_lines() -> range:
    lines = (ROOT / "firmware" / "runtime" / "task.c").read_text().splitlines()
    start = next(i for i, t in enumerate(lines, 1) if re.match(r"static void commit\(", t))
    end = next(i for i, t in enumerate(lines[start:], start + 1) if t == "}")
    return range(start, end + 1)


def next_change(m: emu.Machine, symbol: str, limit: int) -> int:
    """Instructions from the current state until the one that changes `symbol`'s bytes
    (that one counted), found by doubling then bisection on snapshots; the machine is left
    where it was. Power stays on."""
    snap, before = m.snapshot(), m.read_symbol(symbol)

    def changed(k: int) -> bool:
        m.restore(snap)
        m.step(k)
        return m.read_symbol(symbol) != before

    lo, hi = 0, 1
    while not changed(hi):
        lo, hi = hi, hi * 2
        assert hi <= limit, f"{symbol} did not change within {limit} instructions"
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if changed(mid) else (mid, hi)
    m.restore(snap)
    return hi


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", ["digits", "allops"])
def test_failures_inside_commits(build_dir, board, name):
    """One commit per element (the finest granularity): power fails at 24 commits spread
    over the job, each time on one of the last instructions before the committing store
    (header writes: the task runs again) or right after it (the task counts), with the
    point checked against the line table; then the job finishes. A couple of tiny periods
    that end inside the boot are thrown in."""
    _, qm, _, _, xq = bundled(name)
    m = machine(build_dir, board, name)
    data, every = xq[1].tobytes(), [1] * len(plan(qm))
    golden = job(m, data, every).instructions
    lines, source = commit_lines(), SourceMap.from_elf(m.image.path)
    rng = np.random.default_rng(3)
    prepare(m, data, every)
    schedule = []
    for n in range(24):
        if n in (5, 6):  # cut the next boot short (twice in a row)
            schedule.append(int(rng.integers(3, 40)))
            m.step(schedule[-1])
            m.power_fail()
            continue
        m.step(int(rng.integers(1, golden // 24)))  # somewhere in a task
        period = m.period_instructions
        active = m.read_symbol("rt_active")
        store = next_change(m, "rt_active", golden)
        offset = int(rng.integers(0, 6))  # 0: after the store; 1..5: before it
        m.step(store - offset)
        if offset:
            pos = source.lookup(m.engine.pc)
            assert pos.file.endswith("task.c") and pos.line in lines, (n, hex(m.engine.pc), pos)
        m.power_fail()
        assert (m.read_symbol("rt_active") == active) == (offset > 0)
        schedule.append(period + store - offset)
    r = m.run()
    assert r.power_failures == len(schedule) and r.power_cycles[:-1] == schedule
    check_result(m, r, qm.run(data))


@pytest.mark.parametrize("every", [[16, 16, 16], [7, 5, 3], [1, 16, 0], [0, 0, 0]])
@pytest.mark.parametrize("board", BOARDS)
def test_any_granularity_gives_the_same_output(build_dir, board, every):
    """Random power failures, periods of 4-20 % of the job, for several granularities:
    commits every N elements, N not dividing the stage, and whole stages per commit (0;
    a period shorter than such a stage loses its work). The periods add up to under 90 %
    of the job, which needs at least the uninterrupted run's instructions in total, so
    every scheduled failure happens before the job ends."""
    _, qm, _, _, xq = bundled("digits")
    m = machine(build_dir, board, "digits")
    rng = np.random.default_rng(sum(every))
    for i in (2, 3):
        data = xq[i].tobytes()
        expected = qm.run(data)
        golden = job(m, data, every)
        check_result(m, golden, expected)
        schedule: list[int] = []
        while True:
            period = int(rng.integers(golden.instructions // 25, golden.instructions // 5))
            if sum(schedule) + period > 0.9 * golden.instructions:
                break
            schedule.append(period)
        r = job(m, data, every, schedule)
        assert r.power_failures == len(schedule) >= 4
        check_result(m, r, expected)


def committed_stage(m: emu.Machine) -> int:
    """The stage in the committed task state {stage u16, pos u16} (firmware/dnn/c/dnn_app.c)."""
    active = int.from_bytes(m.read_symbol("rt_active"), "little")
    return int.from_bytes(m.read_symbol("state")[4 * active:4 * active + 2], "little")


def first_instruction_where(m: emu.Machine, predicate, stride: int) -> int:
    """The smallest k such that `predicate(m)` holds after k instructions of the flashed
    firmware under continuous power (predicate: false, then true for good)."""
    m.reset()
    while True:
        snap, base = m.snapshot(), m.instructions
        m.step(stride)
        if predicate(m):
            break
        assert m.instructions == base + stride, "the job ended first"
    lo, hi = 0, m.instructions - base
    while hi - lo > 1:
        mid = (lo + hi) // 2
        m.restore(snap)
        m.step(mid)
        lo, hi = (lo, mid) if predicate(m) else (mid, hi)
    return base + hi


@pytest.mark.parametrize("board", BOARDS)
def test_campaign_over_the_pool_stage(build_dir, board):
    """Single failures at every instruction (MSP430: 40 sampled ones) of the start and the
    end of the pool stage, from just before the commit that ends the conv stage: the pool
    stage reads what the conv stage left in one ping-pong buffer while writing the other,
    in chunks of 16 that do not divide its 72 outputs."""
    _, qm, _, _, xq = bundled("digits")
    m = machine(build_dir, board, "digits")
    campaign = Campaign(m)
    assert campaign.expected["result"] == qm.run(xq[0].tobytes())
    stride = campaign.golden_instructions // 200
    start = first_instruction_where(m, lambda m: committed_stage(m) >= 1, stride)
    end = first_instruction_where(m, lambda m: committed_stage(m) >= 2, stride)
    # the stage's start (first chunks, reading what the conv stage committed) and its end
    points = sorted(set(range(start - 40, min(start + 600, end))) | set(range(max(start, end - 200), end + 40)))
    if board == "msp430fr5994":  # ~45 ms a trial (the dense stage still has to run): a sample
        points = sorted(np.random.default_rng(0).choice(points, 40, replace=False).tolist())
    result = campaign.run(points)
    assert result.all_correct, result.summary()

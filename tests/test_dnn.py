"""DNN inference firmware (firmware/dnn, docs/models.md): the int8 reference against the
definitions and the float model, the cost report, and the generated firmware against the
reference, bit for bit, on both boards, under continuous power and power failures (inside
task commits, in tiny periods that cut the boot, at random points), for several
preservation granularities; early exits (the low-energy flag, the exit decision's commit
under failures and flag changes) and pruned models (the sparse encoding); intermittent
execution designs (loop orders, tiles, staging, partial sums; their costs, checked by hand
and against the bytes the firmware really moves)."""

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
from firmware.dnn import (Design, ExitClassifier, Model, ModelError, conv2d, dense, design_table, flatten,
                          load, load_quantized, load_testset, maxpool2, plan, quantize, relu, save)
from firmware.dnn.codegen import Stage, _encode, costs, input_offsets, sparse_encode
from firmware.dnn.design import run_stage, stage_costs, stage_designs
from firmware.dnn.quant import QLayer, quantize_value, requantize, round_shift

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
MAC_SEQUENCE = """
    .section .text,"ax"
_start:
    mov #0xFFF6, &0x04CA      ; RESLO, RESHI: the accumulator -10
    mov #0xFFFF, &0x04CC
    mov.b #0x80, &0x04C6      ; MACS (byte: -128), OP2 (byte: 127): -10 - 16256
    mov.b #0x7F, &0x04C8
    mov.b #0x85, &0x04C6      ; -123 * -123: + 15129 = -1137
    mov.b #0x85, &0x04C8
    mov &0x04CA, &r0_lo
    mov &0x04CC, &r0_hi
    mov #0xFFF0, &0x04CA      ; 65520 + 100 * 100 = 75520 = 0x12700: a carry into RESHI
    mov #0, &0x04CC
    mov.b #100, &0x04C6
    mov.b #100, &0x04C8
    mov &0x04CA, &r1_lo
    mov &0x04CC, &r1_hi
1:  jmp 1b
    .section .nv,"aw"
    .globl r0_lo, r0_hi, r1_lo, r1_hi
r0_lo: .word 0
r0_hi: .word 0
r1_lo: .word 0
r1_hi: .word 0
    .section .vectors,"ax"
    .word _start
"""


def test_mpy32_mac_sequence_of_the_engine(tmp_path):
    """The MSP430 engine's DNN_MAC (c/dnn.h): accumulator preloaded into RESHI:RESLO, byte
    stores of int8 operands to MACS and OP2 (sign-extended in the signed modes, SLAU367 and
    QEMU's msp430 MPY model agree), the int32 sum read back."""
    from tests import asm

    m = emu.Machine.from_elf(asm.msp430(tmp_path, MAC_SEQUENCE))
    assert m.run().outcome == "completed"

    def word(name):
        return int.from_bytes(m.read_memory(m.image.symbol(name).address, 2), "little")

    assert (word("r0_hi") << 16 | word("r0_lo")) == (-10 - 128 * 127 + 123 * 123) & 0xFFFFFFFF
    assert (word("r1_hi"), word("r1_lo")) == (0x0001, 0x2700)


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


def naive_exit(head, e: int, a) -> list[int]:
    """The shared exit classifier at exit e on one exit-point activation, from the definitions:
    region sums of a grid x grid per channel, shifted, zero-padded, then the dense layer with
    exit e's bias and shift."""
    a = np.array(a)
    if a.ndim == 1:
        sums = a.tolist()
    else:
        c, h, w = a.shape
        g, rh, rw = head.grid, h // head.grid, w // head.grid
        sums = [int(a[ch, gy * rh:(gy + 1) * rh, gx * rw:(gx + 1) * rw].sum())
                for ch in range(c) for gy in range(g) for gx in range(g)]
    pooled = [naive_requant(v, head.pool_shifts[e]) for v in sums] + [0] * (head.features - len(sums))
    w, b = head.weight.astype(int).tolist(), head.biases[e].astype(int).tolist()
    return [naive_requant(b[u] + sum(v * wu for v, wu in zip(pooled, w[u])), head.shifts[e]) for u in range(len(w))]


def naive_forward(qm, x: np.ndarray, exit: int | None = None) -> list[int]:
    """The int8 model on one input, written out from the definitions (final output or exit)."""
    a = x.astype(int).tolist()
    for i, layer in enumerate(qm.layers):
        a = naive_layer(layer, a)
        if exit is not None and i == qm.exit_classifier.points[exit]:
            return naive_exit(qm.exit_classifier, exit, a)
    return list(np.array(a).reshape(-1))


@pytest.mark.parametrize("name", ["digits", "allops", "digits_exits"])
def test_reference_follows_the_definitions(name):
    _, qm, _, _, xq = bundled(name)
    for i in range(3):
        for e in [None, *range(qm.exits)]:
            assert qm.forward(xq[i:i + 1], e)[0].tolist() == naive_forward(qm, xq[i], e)
    outs = qm.forward_all(xq[:20])
    assert len(outs) == qm.exits + 1
    for e, o in enumerate(outs):
        assert (o == qm.forward(xq[:20], None if e == qm.exits else e)).all()


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


def test_exits_and_pruned_model_track_the_float_model():
    """digits_exits: the int8 output at each exit (per-exit pooled and logit scales, one
    int8 weight matrix) and at the final output stays with the float model, and the pruned
    layers are pruned to their targets (int8 zeros at least the float ones)."""
    model, qm, x, y, xq = bundled("digits_exits")
    fls, qs = model.forward_all(x), qm.forward_all(xq)
    assert qm.exits == 2 and len(fls) == 3
    for e, (fl, q) in enumerate(zip(fls, qs)):
        assert (fl.argmax(1) == q.argmax(1)).mean() >= 0.97, e
        assert (q.argmax(1) == y).mean() >= (fl.argmax(1) == y).mean() - 0.02, e
        assert (fl.argmax(1) == y).mean() >= 0.9, e  # trained, exit 0 included
    for layer, qlayer in zip(model.layers, qm.layers):
        if layer.sparsity:
            assert (qlayer.weight == 0).mean() >= layer.sparsity
            assert ((layer.weight == 0) <= (qlayer.weight == 0)).all()
    assert (qm.exit_classifier.weight == 0).mean() >= model.exit_classifier.sparsity == 0.75


def test_sparse_encoding_decodes_to_the_weights():
    """CSR rows of (delta, weight) pairs with deltas in input-address space: decoding gives
    back every nonzero weight at its input offset; gaps over 255 take (255, 0) fillers."""
    rng = np.random.default_rng(5)
    for op, wshape, in_shape in [("conv2d", (4, 9, 3, 3), (9, 10, 11)), ("dwconv2d", (3, 3, 3), (3, 7, 5)),
                                 ("dense", (5, 600), (600,))]:
        w = rng.integers(-128, 128, size=wshape).astype(np.int8)
        w[rng.random(wshape) < 0.85] = 0
        w[0] = 0  # an empty row
        w.reshape(wshape[0], -1)[1] = 0
        w.reshape(wshape[0], -1)[1, -1] = 77  # one weight at the far end: fillers (conv2d, dense)
        offsets = input_offsets(op, wshape, in_shape)
        sp = sparse_encode(w, offsets)
        assert (sp.fillers >= 1) == (offsets.max() > 255) and sp.nonzeros == np.count_nonzero(w)
        assert sp.entries == sp.nonzeros + sp.fillers and sp.nbytes == 2 * sp.entries + 2 * (wshape[0] + 1)
        span = int(offsets.max()) + 1
        for r, row in enumerate(w.reshape(wshape[0], -1)):
            dense = np.zeros(span, np.int64)
            at = 0
            for delta, value in sp.pairs[sp.rows[r]:sp.rows[r + 1]]:
                at += int(delta)
                dense[at] += int(np.int8(np.uint8(value)))
            expected = np.zeros(span, np.int64)
            expected[offsets] = row
            assert (dense == expected).all(), (op, r)


def test_exit_and_sparsity_errors_are_explained():
    m = Model("e", (1, 6, 6), [conv2d(2, 3), relu(), flatten(), dense(3)], exit_classifier=ExitClassifier(8, 3, 2))
    m.layers[0].exit = True  # the relu folds into the exit's stage
    with pytest.raises(ModelError, match="mark the relu"):
        m.check_exits()
    m.layers[0].exit, m.layers[1].exit = False, True
    m.check_exits()
    m.exit_classifier.features = 7  # 2 channels x 2 x 2 regions
    with pytest.raises(ModelError, match="8 pooled features"):
        m.check_exits()
    m.exit_classifier.features = 8
    m.init_weights(np.random.default_rng(0))
    m.layers[3].sparsity = 0.5
    with pytest.raises(ModelError, match="sparsity target"):
        m.check_weights()


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
    assert rows[0]["per_commit"]["nv_reads"] == {"activations": 16 * 9, "weights_and_biases": 16 * (9 + 4),
                                                 "accumulators": 0}
    assert rows[2]["per_commit"]["nv_reads"] == {"activations": 10 * 72, "weights_and_biases": 10 * (72 + 4),
                                                 "accumulators": 0}
    # every output byte once, plus per commit the task state and the runtime's commit
    assert report["total"]["preserved_bytes"] == 288 + 72 + 10 + 24 * (4 + 12)
    assert report["size_bytes"]["constants"] == 72 + 720 + 4 * (8 + 10)
    assert report["size_bytes"]["activation_buffers"] == 2 * 288


def test_exits_plan_and_costs(build_dir):
    """digits_exits: the backbone, a pooling stage per exit, the shared classifier per exit;
    sparse layers count their nonzero weights as MACs and store 2 bytes per entry."""
    _, qm, _, _, _ = bundled("digits_exits")
    stages = plan(qm)
    assert [(s.op, s.role, s.exit) for s in stages] == [
        ("conv2d", "backbone", 0), ("conv2d", "backbone", 1), ("conv2d", "backbone", None),
        ("dense", "backbone", None), ("exitpool", "pool", 0), ("exitpool", "pool", 1),
        ("dense", "classifier", 0), ("dense", "classifier", 1)]
    report = json.loads((build_dir / "gen" / "dnn_digits_exits" / "costs.json").read_text())
    assert report == json.loads(json.dumps(costs(qm, stages, [16] * 8)))
    rows = report["stages"]
    nonzero = [int(np.count_nonzero(qm.layers[i].weight)) for i in (2, 4, 7)] + [
        int(np.count_nonzero(qm.exit_classifier.weight))]
    assert [r["encoding"] for r in rows] == ["dense", "sparse", "sparse", "sparse", None, None, "sparse", "sparse"]
    # conv 8 x 6 x 6 outputs of 9 MACs; sparse: nonzeros x output plane (4 x 4, 2 x 2, 1)
    assert [r["macs"] for r in rows] == [2592, nonzero[0] * 16, nonzero[1] * 4, nonzero[2], 0, 0,
                                         nonzero[3], nonzero[3]]
    assert rows[1]["dense_macs"] == 16 * 16 * 72 and rows[2]["dense_macs"] == 16 * 4 * 144
    assert [r["weight_bytes"] for r in rows] == [72, 2 * nonzero[0] + 34, 2 * nonzero[1] + 34, 2 * nonzero[2] + 22,
                                                 0, 0, 2 * nonzero[3] + 22, 0]  # exit 1 shares exit 0's weights
    assert rows[7]["shares_weights_of"] == 6 and rows[7]["bias_bytes"] == 40
    # pooling: 8 channels x 2 x 2 regions of 3 x 3 (exit 0), 16 x 2 x 2 of 2 x 2 (exit 1), padded to 64
    assert [rows[4]["adds"], rows[5]["adds"], rows[4]["outputs"]] == [8 * 4 * 9, 16 * 4 * 4, 64]
    paths = report["paths"]
    assert paths["final"]["stages"] == [0, 1, 2, 3]
    assert paths["exit0"]["stages"] == [0, 4, 6] and paths["exit1"]["stages"] == [0, 1, 5, 7]
    assert paths["exit0"]["macs"] == 2592 + nonzero[3] < paths["exit1"]["macs"] < paths["final"]["macs"]
    size = report["size_bytes"]
    assert size["dense_weights"] == 72 + 1152 + 2304 + 640 + 640
    assert size["weights"] == 72 + 2 * sum(nonzero) + 34 + 34 + 22 + 22
    assert size["biases"] == 4 * (8 + 16 + 16 + 10 + 10 + 10)


# -- the firmware ------------------------------------------------------------------------------------
def machine(build_dir: Path, board: str, name: str) -> emu.Machine:
    return emu.Machine.from_elf(build_dir / board / f"dnn_{name}.elf")


def prepare(m: emu.Machine, data: bytes, every: list[int] | None = None, designs: list[Design] | None = None
            ) -> None:
    """Back to the flashed state with `data` as the input of the job the firmware runs at
    its first boot (as emu.vectors does), and optionally other commit granularities and
    designs (written over the flashed tables, no rebuild)."""
    m.reset()
    m.write_symbol("app_input", data)
    if every is not None:
        m.write_symbol("dnn_commit_every", np.array(every, np.uint16).tobytes())
    if designs is not None:
        m.write_symbol("dnn_design", design_table(designs))


def job(m: emu.Machine, data: bytes, every: list[int] | None = None, fail_after=(),
        designs: list[Design] | None = None) -> emu.RunResult:
    prepare(m, data, every, designs)
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
@pytest.mark.parametrize("name", ["digits", "allops", "digits_exits"])
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


def committed_seq(m: emu.Machine) -> bytes:
    """The committed header's sequence number (runtime/task.c): it grows by one at each
    task commit, at the store to rt_active (which itself only toggles)."""
    active = int.from_bytes(m.read_symbol("rt_active"), "little")
    headers = m.read_symbol("rt_header")
    return headers[active * len(headers) // 2:][:4]


def next_change(m: emu.Machine, what, limit: int) -> int:
    """Instructions from the current state until the one that changes `what` (a symbol's
    bytes, or a function of the machine) (that one counted), found by doubling then
    bisection on snapshots, so `what` must not change back in the meantime (use
    committed_seq, not rt_active, for commits); the machine is left where it was."""
    read = (lambda m: m.read_symbol(what)) if isinstance(what, str) else what
    snap, before = m.snapshot(), read(m)

    def changed(k: int) -> bool:
        m.restore(snap)
        m.step(k)
        return read(m) != before

    lo, hi = 0, 1
    while not changed(hi):
        lo, hi = hi, hi * 2
        assert hi <= limit, f"{what} did not change within {limit} instructions"
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if changed(mid) else (mid, hi)
    m.restore(snap)
    return hi


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", ["digits", "allops", "digits_exits"])
def test_failures_inside_commits(build_dir, board, name):
    """One commit per element (the finest granularity): power fails at 24 commits spread
    over the job, each time on one of the last instructions before the committing store
    (header writes: the task runs again) or right after it (the task counts), with the
    point checked against the line table; then the job finishes. A couple of tiny periods
    that end inside the boot are thrown in."""
    _, qm, _, _, xq = bundled(name)
    m = machine(build_dir, board, name)
    fail_in_commits(m, qm, xq[1].tobytes(), [1] * len(plan(qm)), None, 24, 3)


def fail_in_commits(m: emu.Machine, qm, data: bytes, every: list[int], designs: list[Design] | None, count: int,
                    seed: int) -> None:
    """`count` power failures, each on one of the last instructions before a task commit's
    store or right after it, the 6th and 7th in tiny periods that end inside the boot; then
    the job must finish with the reference's output."""
    golden = job(m, data, every, designs=designs).instructions
    lines, source = commit_lines(), SourceMap.from_elf(m.image.path)
    rng = np.random.default_rng(seed)
    prepare(m, data, every, designs)
    schedule = []
    for n in range(count):
        if n in (5, 6):  # cut the next boot short (twice in a row)
            schedule.append(int(rng.integers(3, 40)))
            m.step(schedule[-1])
            m.power_fail()
            continue
        m.step(int(rng.integers(1, golden // count)))  # somewhere in a task
        period = m.period_instructions
        active = m.read_symbol("rt_active")
        store = next_change(m, committed_seq, golden)
        offset = int(rng.integers(0, min(6, store)))  # 0: after the store; 1..5: before it
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


def committed_state(m: emu.Machine) -> tuple[int, int, int]:
    """The committed task state (stage u8, exit u8, pos u16) (firmware/dnn/c/dnn_app.c)."""
    active = int.from_bytes(m.read_symbol("rt_active"), "little")
    raw = m.read_symbol("state")[4 * active:4 * active + 4]
    return raw[0], raw[1], int.from_bytes(raw[2:], "little")


def committed_stage(m: emu.Machine) -> int:
    return committed_state(m)[0]


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


# -- early exits -------------------------------------------------------------------------------------
LOW, HIGH = (1).to_bytes(2, "little"), (0).to_bytes(2, "little")


def set_energy(m: emu.Machine, low: bool) -> None:
    m.write_symbol("rt_low_energy", LOW if low else HIGH)


def exit_stage(qm, e: int) -> int:
    """The backbone stage that ends at exit point e."""
    return next(i for i, s in enumerate(plan(qm)) if s.role == "backbone" and s.exit == e)


def step_until(m: emu.Machine, predicate, stride: int = 500, limit: int = 10**7) -> None:
    """Step (power on) until predicate(m) holds, checking every `stride` instructions."""
    start = m.instructions
    while not predicate(m):
        m.step(stride)
        assert m.instructions - start < limit


def check_exit(m: emu.Machine, r: emu.RunResult, qm, data: bytes, exit: int | None) -> None:
    """The job finished with RESULT exit `exit` (None: the final output) and the output of
    the reference for that exit, in RESULT and in app_output."""
    assert r.outcome == "completed" and r.waiting_for_input, r.error
    result = last_result(r.uart)
    expected = qm.run(data, exit)
    assert result is not None and result.exit == (Result.NO_EXIT if exit is None else exit)
    assert result.output == expected
    assert m.read_symbol("app_output") == expected


def run_to_exit(m: emu.Machine, qm, data: bytes, exit: int | None, every=None, designs=None) -> emu.RunResult:
    """A job that takes exit `exit`: the low-energy flag is clear until the job has passed
    exit point exit - 1 (committed a stage after it), then set; None: never set."""
    prepare(m, data, every, designs)
    if exit is not None and exit > 0:
        past = exit_stage(qm, exit - 1)
        step_until(m, lambda m: committed_stage(m) > past)
        assert committed_state(m)[1] == Result.NO_EXIT
    set_energy(m, exit is not None)
    return m.run()


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", ["digits_exits", "allops"])
def test_low_energy_takes_each_exit(build_dir, board, name):
    """For each exit point e: the flag set when the job reaches e (clear at the earlier
    ones) makes RESULT report exit e with the reference's output for e; clear throughout,
    exit 0xFF and the final output. Test images and extreme inputs. (allops: exits on an
    odd-sized map, on 1x1 regions and on a vector.)"""
    _, qm, _, _, xq = bundled(name)
    m = machine(build_dir, board, name)
    counts = {}
    for data in [xq[i].tobytes() for i in range(3)] + extreme_inputs(qm):
        for exit in [*range(qm.exits), None]:
            r = run_to_exit(m, qm, data, exit)
            check_exit(m, r, qm, data, exit)
            counts.setdefault(exit, r.instructions)
    if name == "digits_exits":  # an earlier exit is cheaper
        assert counts[0] < counts[1] < counts[None]


def commit_instruction(m: emu.Machine, data: bytes, low: bool, predicate) -> int:
    """Instructions from power-on (flag `low` throughout) to the store that commits a state
    satisfying predicate (counted), by stepping then bisection."""
    def fresh():
        prepare(m, data)
        set_energy(m, low)

    fresh()
    stride = 2000
    while True:
        snap, base = m.snapshot(), m.instructions
        m.step(stride)
        if predicate(m):
            break
    lo, hi = 0, m.instructions - base
    while hi - lo > 1:
        mid = (lo + hi) // 2
        m.restore(snap)
        m.step(mid)
        lo, hi = (lo, mid) if predicate(m) else (mid, hi)
    return base + hi


@pytest.mark.parametrize("board", BOARDS)
def test_exit_decision_commit_under_failures(build_dir, board):
    """Power fails on each of the instructions around the commit of the decision at exit
    point 0 (the task's chunk writes, the runtime's header writes, the committing store,
    the instructions after it), and the flag changes before the reboot. The committed
    decision wins: failed before the store, the chunk runs again and reads the new flag;
    after it, the decision stands. Both ways the output is the reference's for the exit
    RESULT reports, never a mix.
    - flag low, then cleared: exit 0 if the decision was committed, else the final output;
    - flag clear, then set: exit 0 if the "go on" was not committed, else exit 1."""
    _, qm, _, _, xq = bundled("digits_exits")
    m = machine(build_dir, board, "digits_exits")
    lines, source = commit_lines(), SourceMap.from_elf(m.image.path)
    data = xq[4].tobytes()
    stage0 = exit_stage(qm, 0)
    cases = [(True, lambda m: committed_state(m)[1] == 0, (0, None)),
             (False, lambda m: committed_stage(m) > stage0, (1, 0))]
    for low, decided, (if_committed, if_not) in cases:
        k = commit_instruction(m, data, low, decided)
        in_commit = 0
        for d in range(-40, 4):
            prepare(m, data)
            set_energy(m, low)
            m.step(k + d)
            pos = source.lookup(m.engine.pc)
            in_commit += d < 0 and pos is not None and pos.file.endswith("task.c") and pos.line in lines
            m.power_fail()
            assert decided(m) == (d >= 0)
            set_energy(m, not low)
            r = m.run()
            assert r.power_failures == 1
            check_exit(m, r, qm, data, if_committed if d >= 0 else if_not)
        assert in_commit >= 5  # the header writes before the store were among the failure points


@pytest.mark.parametrize("board", BOARDS)
def test_exits_under_random_failures_and_flag_changes(build_dir, board):
    """Random failures, each followed by a random flag value at the reboot (an energy
    monitor that changes its mind), at N = 16 and N = 1: whatever exit the job takes, its
    output is the reference's for that exit. Then fixed flags with a failure schedule:
    exit 0, exit 1 and the final output."""
    _, qm, _, _, xq = bundled("digits_exits")
    m = machine(build_dir, board, "digits_exits")
    golden = run_to_exit(m, qm, xq[5].tobytes(), None).instructions
    rng = np.random.default_rng(11)
    seen = set()
    for trial in range(12):
        data = xq[5 + trial].tobytes()
        every = [16] * 8 if trial % 2 else [1] * 8
        prepare(m, data, every)
        set_energy(m, False)
        for _ in range(int(rng.integers(2, 8))):
            m.step(int(rng.integers(golden // 40, golden // 6)))
            if m.engine.pc in m.input_waits:  # the job is done
                break
            m.power_fail()
            set_energy(m, bool(rng.random() < 0.3))
        r = m.run()
        result = last_result(r.uart)
        exit = None if result.exit == Result.NO_EXIT else result.exit
        seen.add(exit)
        check_exit(m, r, qm, data, exit)
    assert len(seen) >= 2
    for exit in (0, 1, None):
        data = xq[20].tobytes()
        r = run_to_exit(m, qm, data, exit)
        schedule = [r.instructions // 7] * 4
        prepare(m, data)
        if exit == 1:  # low from the start of the job's second stage on
            past = exit_stage(qm, 0)
            step_until(m, lambda m: committed_stage(m) > past)
            schedule = [m.period_instructions + 5000] + schedule[1:]
        set_energy(m, exit is not None)
        r = m.run(fail_after=schedule)
        assert r.power_failures == 4
        check_exit(m, r, qm, data, exit)


# -- intermittent execution designs (firmware/dnn/design.py, c/dnn_design.c) ---------------------------
WEIGHTED_OPS = ("conv2d", "dwconv2d", "dense")
# every loop order x two tilings (one output element; a larger tile, staged in SRAM) x two
# commit granularities (every step; 5 steps, which divides no pass of these models)
ORDER_TILES = {
    "channel": [Design(), Design(tile=(2, 3, 3), stage_input=True)],
    "spatial": [Design(order="spatial"), Design(order="spatial", tile=(0, 1, 2), stage_input=True)],
    "input": [Design(order="input"), Design(order="input", tile=(4, 2, 3), in_tile=3, stage_input=True)],
}
DESIGNS = [(d, n) for tiles in ORDER_TILES.values() for d in tiles for n in (1, 5)]


def per_stage(qm, design: Design) -> list[Design]:
    """`design` on every conv2d / dwconv2d / dense stage, the default elsewhere."""
    return [design if s.op in WEIGHTED_OPS else Design() for s in plan(qm)]


def design_id(d: Design, n: int) -> str:
    return f"{d.order}-{'x'.join(map(str, d.tile))}{'-in' + str(d.in_tile) if d.order == 'input' else ''}" \
           f"{'-staged' if d.stage_input else ''}-n{n}"


def test_design_json_cli_and_errors(tmp_path):
    """Designs in model.json (a layer's and the exit classifier's `design`) go through
    load/save and into the firmware tables; the CLI overrides them like --commit-every; bad
    designs are refused with a reason."""
    model, _ = load_quantized(MODELS / "digits_exits")
    model.layers[2].design = Design(order="input", tile=(0, 2, 2), in_tile=2, stage_input=True, commit_every=3)
    model.exit_classifier.design = Design(order="spatial", tile=(5,))
    save(model, tmp_path / "m")
    back = load(tmp_path / "m")
    assert back.layers[2].design == model.layers[2].design and back.exit_classifier.design.tile == (5, 1, 1)
    text = json.loads((tmp_path / "m" / "model.json").read_text())
    assert text["layers"][2]["design"] == {"order": "input", "tile": [0, 2, 2], "in_tile": 2, "stage_input": True,
                                           "commit_every": 3}
    qm = quantize(back)
    designs, every = stage_designs(back, plan(qm))
    assert [d.order for d in designs] == ["channel", "input", "channel", "channel", "channel", "channel",
                                          "spatial", "spatial"]
    assert every == [16, 3, 16, 16, 16, 16, 16, 16]  # the layer's own commit_every, else the model's
    # the CLI: one value for every weighted stage; commit_every for all
    from firmware.dnn.__main__ import main
    assert main(["generate", str(tmp_path / "m"), str(tmp_path / "out"), "--order", "spatial", "--tile", "0x1x1",
                 "--stage-input", "1", "--commit-every", "2"]) == 0
    header = (tmp_path / "out" / "model.h").read_text()
    rows = re.findall(r"\{\.order = (\w+), \.stage_input = (\d), \.tile_c = (\d+), \.tile_h = (\d+), "
                      r"\.tile_w = (\d+), \.in_tile = (\d+)\}", header)
    assert len(rows) == 8 and rows[1] == ("DNN_ORDER_SPATIAL", "1", "0", "1", "1", "2")  # in_tile from model.json
    assert rows[4] == ("DNN_ORDER_CHANNEL", "0", "1", "1", "1", "1")  # an exit pooling stage: no design
    assert "dnn_commit_every[DNN_ALL_STAGES] = {2, 2, 2, 2, 2, 2, 2, 2}" in header
    assert "#define DNN_ACC_SIZE 256" in header and "NOINIT static int8_t dnn_staged[288]" in header
    report = json.loads((tmp_path / "out" / "costs.json").read_text())
    assert report["stages"][1]["design"] == {"order": "spatial", "tile": [0, 1, 1], "stage_input": True,
                                             "commit_every": 2}
    # errors
    for bad, match in [({"order": "diagonal"}, "unknown order"), ({"tile": [1, 300, 1]}, "tile"),
                       ({"order": "input", "stage": True}, "unknown design keys"), ({"in_tile": -1}, "in_tile")]:
        with pytest.raises(ModelError, match=match):
            Design.from_json(bad)
    with pytest.raises(ModelError, match="only conv2d, dwconv2d and dense"):
        stage_designs(back, plan(qm), {"order": ["input"] * 8})  # a list with a pooling stage in it
    back.layers[1].design = Design()  # a relu
    with pytest.raises(ModelError, match="only conv2d, dwconv2d and dense layers have a design"):
        back.check_weights()
    big = Model("big", (1, 40, 40), [conv2d(40, 1), flatten(), dense(2)])
    big.init_weights(np.random.default_rng(0))
    for layer in big.layers:
        layer.weight_frac_bits, layer.output_frac_bits = 4, 0
    big.layers[2].weight_frac_bits = 0
    stages = plan(quantize(big))
    with pytest.raises(ModelError, match="16-bit position"):  # 64000 inputs x 2 units, a pass per input
        stage_designs(big, stages, {"order": "input"})


def test_design_costs_by_hand():
    """The cost figures of a few digits designs against counts worked out by hand."""
    _, qm, _, _, _ = bundled("digits")
    conv, pool, dense_ = plan(qm)
    # conv, all 8 channels of one pixel per tile (spatial order), its 3x3 window staged, 2 tiles per commit
    c = stage_costs(conv, Design(order="spatial", tile=(0, 1, 1), stage_input=True), 2)
    assert c["plan"] == {"tile": [8, 1, 1], "tiles": 36, "tile_outputs": 8, "slices": 1, "slices_per_pass": 1,
                         "passes": 1, "steps": 36, "steps_per_commit": 2, "element_loop": False}
    assert c["commits"] == 18
    assert c["per_tile"] == {"macs": 72, "nv_reads": {"activations": 9, "weights_and_biases": 72 + 8 * 4,
                                                      "accumulators": 0},
                             "nv_writes": {"activations": 8, "accumulators": 0}, "sram": {"staged": 9, "reads": 72}}
    assert c["per_commit"]["nv_reads"] == {"activations": 18, "weights_and_biases": 208, "accumulators": 0}
    assert c["nv_reads"] == {"activations": 36 * 9, "weights_and_biases": 2592 + 288 * 4, "accumulators": 0}
    assert c["sram"] == {"staged": 324, "reads": 2592}
    assert c["preserved_bytes"] == 288 + 18 * 16 and c["staging_bytes"] == 64 and c["accumulator_bytes"] == 0
    # conv in 2 x 3 x 3 tiles, channel order: 4 x 2 x 2 tiles of 18 outputs; a 1 x 5 x 5 region each
    c = stage_costs(conv, Design(tile=(2, 3, 3), stage_input=True), 1)
    assert (c["plan"]["tiles"], c["commits"], c["per_commit"]["macs"]) == (16, 16, 18 * 9)
    assert c["per_commit"]["nv_reads"]["activations"] == 25 and c["nv_reads"]["activations"] == 16 * 25
    # dense 72 -> 10, input-stationary: 9 passes of 8 inputs over all 10 units, a pass per commit
    c = stage_costs(dense_, Design(order="input", tile=(0,), in_tile=8), 1)
    assert (c["plan"]["passes"], c["plan"]["steps"], c["commits"]) == (9, 9, 9)
    # pass 0 starts from the biases (40 bytes) and writes 10 partial sums; passes 1-7 read and
    # write them; pass 8 reads them and writes the 10 outputs. Each unit reads the pass's 8
    # inputs (80 bytes), or they are staged once (8 bytes)
    assert c["per_tile"]["macs"] == 80 and c["per_commit"] == {
        "macs": 80, "nv_reads": {"activations": 80, "weights_and_biases": 80 + 40, "accumulators": 0},
        "nv_writes": {"activations": 0, "accumulators": 40, "task_state": 4, "runtime": 12},
        "sram": {"staged": 0, "reads": 0}}
    assert c["nv_reads"] == {"activations": 720, "weights_and_biases": 720 + 40, "accumulators": 8 * 40}
    assert c["nv_writes"] == {"activations": 10, "accumulators": 8 * 40, "task_state": 9 * 4, "runtime": 9 * 12}
    assert c["preserved_bytes"] == 10 + 320 + 9 * 16 and c["accumulator_bytes"] == 2 * 10 * 4
    assert c["max_reexecuted_macs"] == 80
    staged = stage_costs(dense_, Design(order="input", tile=(0,), in_tile=8, stage_input=True), 1)
    assert staged["nv_reads"]["activations"] == 72 and staged["sram"] == {"staged": 72, "reads": 720}
    # the same with one input per pass, a step (one unit of one pass) per commit, 5 per commit
    c = stage_costs(dense_, Design(order="input"), 5)
    assert (c["plan"]["steps"], c["commits"], c["per_commit"]["macs"]) == (720, 72 * 2, 5)
    # the pooling stage ignores designs; the default design is the element loop of before
    assert stage_costs(pool, Design(), 16)["commits"] == 5
    report = costs(qm, plan(qm), [16, 16, 1], [Design(), Design(), Design(order="input", tile=(0,), in_tile=8)])
    assert report["total"]["commits"] == 18 + 5 + 9 and report["size_bytes"]["accumulators"] == 80


@pytest.mark.parametrize("name", ["digits", "allops", "digits_exits"])
def test_design_costs_are_consistent(name):
    """For every design of every weighted stage: the MACs are the stage's whatever the order
    (a sparse stage's entries), every output is written once, partial sums are written and
    read 4 bytes per output and pass but the last, dense weights are read once per MAC plus
    a bias per output, and commits = passes x ceil(tiles / N)."""
    _, qm, _, _, _ = bundled(name)
    for s in plan(qm):
        if s.op not in WEIGHTED_OPS:
            continue
        for d, n in DESIGNS + [(Design(order="input", tile=(0, 0, 0), in_tile=0), 0)]:
            c = stage_costs(s, d, n)
            p = c["plan"]
            assert sum(1 for _ in range(p["passes"])) * -(-p["tiles"] // (n or p["tiles"])) == c["commits"]
            assert c["nv_reads"]["activations"] + c["sram"]["reads"] == s.macs + c["sram"]["staged"], (s.op, d)
            assert c["nv_writes"]["activations"] == s.outputs
            assert c["nv_writes"]["accumulators"] == c["nv_reads"]["accumulators"] == 4 * s.outputs * (p["passes"] - 1)
            if s.sparse is None:
                assert c["nv_reads"]["weights_and_biases"] == s.macs + 4 * s.outputs
            assert c["preserved_bytes"] == s.outputs + c["nv_writes"]["accumulators"] + 16 * c["commits"]


def test_design_schedules_in_python():
    """The Python twin of c/dnn_design.c's schedule (tiles in order, passes over the
    double-buffered partial sums, each task first run partly then whole, as after a power
    failure) gives the reference layer's bytes for every design: on the bundled models'
    weighted stages and on random conv2d / dwconv2d / dense stages, dense and sparse (the
    bundled models have no dense-weight depthwise conv)."""
    rng = np.random.default_rng(7)
    cases = []
    for name in ["digits", "allops", "digits_exits"]:
        _, qm, _, _, xq = bundled(name)
        acts = [xq[:1]]
        for layer in qm.layers:
            acts.append(layer.forward(acts[-1]))
        cases += [(s, acts[s.layers[0]][0], acts[s.layers[-1] + 1][0]) for s in plan(qm)
                  if s.role == "backbone" and s.op in WEIGHTED_OPS]
    for op, in_shape, wshape, out_shape in [("conv2d", (3, 7, 6), (4, 3, 3, 3), (4, 5, 4)),
                                            ("dwconv2d", (3, 7, 6), (3, 3, 3), (3, 5, 4)),
                                            ("dense", (20,), (7, 20), (7,))]:
        for sparsity in (0.0, 0.8):
            w = rng.integers(-128, 128, wshape).astype(np.int8)
            w[rng.random(wshape) < sparsity] = 0
            b = rng.integers(-5000, 5000, wshape[0]).astype(np.int64)
            layer = QLayer(op, in_shape, out_shape, 0, 0, kernel=3, weight=w, bias=b, shift=6)
            x = rng.integers(-128, 128, (1, *in_shape)).astype(np.int8)
            s = _encode(Stage(op, [0], in_shape, out_shape, relu=sparsity > 0, shift=6, kernel=3, weight=w, bias=b))
            assert (s.sparse is not None) == (sparsity > 0)
            expected = layer.forward(x)[0]
            cases.append((s, x[0], np.maximum(expected, 0) if sparsity else expected))
    for s, x, expected in cases:
        for d, n in DESIGNS + [(Design(order="input", tile=(0, 0, 0), in_tile=2), 0)]:
            assert (run_stage(s, d, n, x, rng) == expected.reshape(s.out_shape)).all(), (s.op, d, n)


def random_schedule(rng, golden: int, low: int = 25, high: int = 5) -> list[int]:
    """Periods of golden/low .. golden/high instructions adding up to under 90 % of golden."""
    schedule: list[int] = []
    while True:
        period = int(rng.integers(golden // low, golden // high))
        if sum(schedule) + period > 0.9 * golden:
            return schedule
        schedule.append(period)


@pytest.mark.parametrize("board", BOARDS)
def test_designs_give_the_reference_output(build_dir, board):
    """digits under every design (loop order x tile x commit granularity), selected by
    rewriting the flashed dnn_design / dnn_commit_every tables (no rebuild): the output is
    the reference's, bit for bit, under continuous power and under random power failures
    (periods of 4-20 % of the job), and the job commits as often as costs.json says."""
    _, qm, _, _, xq = bundled("digits")
    m = machine(build_dir, board, "digits")
    rng = np.random.default_rng(12)
    for k, (d, n) in enumerate(DESIGNS):
        designs, every = per_stage(qm, d), [n] * 3
        data = xq[10 + k].tobytes()
        expected = qm.run(data)
        golden = job(m, data, every, designs=designs)
        check_result(m, golden, expected)
        assert committed_progress(m) == costs(qm, plan(qm), every, designs)["total"]["commits"], design_id(d, n)
        schedule = random_schedule(rng, golden.instructions)
        r = job(m, data, every, schedule, designs)
        assert r.power_failures == len(schedule) >= 4
        check_result(m, r, expected)


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", ["allops", "digits_exits"])
def test_designs_on_every_op_under_failures(build_dir, board, name):
    """allops (conv2d on 2 channels, a sparse depthwise conv, dense layers) and digits_exits
    (sparse convs of 8 and 16 input channels, so several passes of partial sums, and the
    exit classifier): each order with its larger tile, staged, at 5 steps per commit (the
    input order: 3 slices per pass, passes that do not divide the channels), random power
    failures; with digits_exits also an exit taken under the design."""
    _, qm, _, _, xq = bundled(name)
    m = machine(build_dir, board, name)
    rng = np.random.default_rng(21)
    for k, tiles in enumerate(ORDER_TILES.values()):
        designs, every = per_stage(qm, tiles[1]), [5] * len(plan(qm))
        data = xq[k].tobytes()
        golden = job(m, data, every, designs=designs)
        check_result(m, golden, qm.run(data))
        r = job(m, data, every, random_schedule(rng, golden.instructions, 12, 4), designs)
        assert r.power_failures >= 3
        check_result(m, r, qm.run(data))
    if name == "digits_exits":
        designs = per_stage(qm, ORDER_TILES["input"][1])
        for exit in (0, 1):
            r = run_to_exit(m, qm, xq[7].tobytes(), exit, [5] * 8, designs)
            check_exit(m, r, qm, xq[7].tobytes(), exit)


@pytest.mark.parametrize("board", BOARDS)
def test_designs_with_failures_inside_commits(build_dir, board):
    """For each loop order (its larger tile, staged, a step per commit): power fails on the
    last instructions before task commits and right after them, and in boots cut short."""
    _, qm, _, _, xq = bundled("digits")
    m = machine(build_dir, board, "digits")
    for k, tiles in enumerate(ORDER_TILES.values()):
        fail_in_commits(m, qm, xq[30 + k].tobytes(), [1] * 3, per_stage(qm, tiles[1]), 10, 40 + k)


@pytest.mark.parametrize("board", BOARDS)
def test_partial_sums_are_not_added_twice(build_dir, board):
    """The input-stationary order's hard case: one input per pass over all ten units of the
    dense layer, a whole pass per commit, and power failing over and over inside passes,
    after some partial sums of the pass were written: each re-run must start again from the
    committed pass's sums (the other half of the double buffer), never from its own."""
    _, qm, _, _, xq = bundled("digits")
    m = machine(build_dir, board, "digits")
    designs, every = [Design(), Design(), Design(order="input", tile=(0,))], [16, 16, 0]
    data = xq[40].tobytes()
    golden = job(m, data, every, designs=designs)
    check_result(m, golden, qm.run(data))
    prepare(m, data, every, designs)
    step_until(m, lambda m: committed_stage(m) == 2 and committed_state(m)[2] >= 3)  # in the dense stage
    rng = np.random.default_rng(5)
    cut = 0
    while cut < 10:
        assert committed_stage(m) == 2
        m.step(next_change(m, committed_seq, golden.instructions))  # to the start of a pass
        pos = committed_state(m)
        # the pass's first write that changes a partial sum (a pass of zero inputs changes none),
        # and its commit
        first = next_change(m, "dnn_acc", golden.instructions)
        commit = next_change(m, committed_seq, golden.instructions)
        if first < commit:
            m.step(int(rng.integers(first, commit)))
            m.power_fail()
            assert committed_state(m) == pos  # the pass did not commit: it runs again, from the same sums
            cut += 1
    r = m.run()
    check_result(m, r, qm.run(data))


@pytest.mark.parametrize("name", ["digits", "allops", "digits_exits"])
def test_measured_nv_traffic_matches_costs(build_dir, name):
    """On the Cortex-M4 (the emulator's memory hooks), the bytes the firmware reads and
    writes in non-volatile memory for each design, by kind (activations, weights and
    biases, partial sums) and the SRAM staging writes, are the cost report's totals over
    the final path; so are the commits."""
    from firmware.dnn.measure import measure

    _, qm, _, _, _ = bundled(name)
    stages = plan(qm)
    path = [s.role == "backbone" for s in stages]
    extra = [(ORDER_TILES["input"][0], 1)] if name == "digits" else []  # (a step per commit: slow with hooks)
    for d, n in [(Design(), 3)] + [(t[1], 5) for t in ORDER_TILES.values()] + extra:
        designs, every = per_stage(qm, d), [n] * len(stages)
        rows = [r for r, on in zip(costs(qm, stages, every, designs)["stages"], path) if on]
        got = measure(build_dir / "cortex-m4-mram" / f"dnn_{name}.elf", designs, every, instructions=False)
        for kind in ("activations", "weights_and_biases", "accumulators"):
            assert got["nv_reads"].get(kind, 0) == sum(r["nv_reads"][kind] for r in rows), (design_id(d, n), kind)
        for kind in ("activations", "accumulators"):
            assert got["nv_writes"].get(kind, 0) == sum(r["nv_writes"][kind] for r in rows), (design_id(d, n), kind)
        assert got["sram"] == {k: sum(r["sram"][k] for r in rows) for k in ("staged", "reads")}
        assert got["commits"] == sum(r["commits"] for r in rows)


def committed_progress(m: emu.Machine) -> int:
    from firmware.dnn.measure import commits

    return commits(m)

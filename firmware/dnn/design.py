"""Intermittent execution designs of the weighted stages (conv2d, dwconv2d, dense): loop
order, tile sizes and preservation granularity (iNAS's design space), their firmware table
and their costs. The firmware side is c/dnn_design.c; docs/models.md explains the choices.

A design (model.json: a weighted layer's, or the exit classifier's, `"design"` object):

    order         "channel"  output-stationary, tiles and the elements inside a tile in
                             channel, row, column order (the default: today's element order)
                  "spatial"  output-stationary, row, column, then channel (every filter on a
                             pixel's window before the next pixel)
                  "input"    input-stationary: the reduction is split into passes of `in_tile`
                             slices (conv2d: input channels, dwconv2d: kernel rows, dense: input
                             values); each pass adds its products to int32 partial sums kept
                             in a double-buffered non-volatile accumulator; the last pass
                             writes the int8 outputs. Inside a pass, tiles go channel-outer.
    tile          [channels, rows, columns] of output elements computed as one unit (0: the
                  whole dimension; missing trailing sides are 1; a vector is units x 1 x 1);
                  default [1, 1, 1]
    in_tile       "input" order: reduction slices per pass (0: all, one pass); default 1
    stage_input   copy each tile's input region into SRAM before computing it (a re-run
                  after a failure copies it again); default false
    commit_every  preservation granularity: steps (tiles, times passes for "input") per
                  commit, 0 a whole pass; default: the model's commit_every

A stage computes `passes x tiles` steps; the task state's position counts steps and a task
never crosses a pass boundary. The default design is the firmware's original element loop
(dnn_stage_run), so its counts are unchanged.

Runtime dependency: numpy only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

import numpy as np

from .model import ModelError

__all__ = ["ORDERS", "Design", "Geometry", "geometry", "design_table", "commit_table", "stage_designs",
           "stage_costs", "run_stage", "DESIGN_STRUCT", "TASK_STATE_BYTES", "RUNTIME_COMMIT_BYTES"]

ORDERS = ("channel", "spatial", "input")
WEIGHTED_STAGES = ("conv2d", "dwconv2d", "dense")
# dnn_design_t (c/dnn.h): order u8, stage_input u8, tile_c u16, tile_h u8, tile_w u8, in_tile
# u16; the same little-endian bytes on both boards
DESIGN_STRUCT = struct.Struct("<BBHBBH")
# Bytes a commit writes besides the stage's own: the task state {stage u8, exit u8, pos u16}
# (c/dnn_app.c) and the runtime's copy header {seq u32, base u32, next u16} plus rt_active
# u16 (runtime/task.c).
TASK_STATE_BYTES = 4
RUNTIME_COMMIT_BYTES = 12
_KEYS = {"order", "tile", "in_tile", "stage_input", "commit_every"}


@dataclass(frozen=True)
class Design:
    order: str = "channel"
    tile: tuple[int, int, int] = (1, 1, 1)
    in_tile: int = 1
    stage_input: bool = False
    commit_every: int | None = None  # steps per commit; None: the model's commit_every

    def __post_init__(self):
        if self.order not in ORDERS:
            raise ModelError(f"design: unknown order {self.order!r}; use one of {', '.join(ORDERS)}")
        tile = tuple(int(v) for v in (self.tile if not isinstance(self.tile, int) else (self.tile,)))
        if not 1 <= len(tile) <= 3 or not 0 <= tile[0] <= 0xFFFF or any(not 0 <= v <= 0xFF for v in tile[1:]):
            raise ModelError(f"design: tile {list(self.tile)} must be channels in 0..65535, then rows and columns "
                             "in 0..255 (0: the whole dimension)")
        object.__setattr__(self, "tile", tile + (1,) * (3 - len(tile)))
        if not 0 <= int(self.in_tile) <= 0xFFFF:
            raise ModelError(f"design: in_tile {self.in_tile} must be in 0..65535 (0: all slices)")
        if self.commit_every is not None and not 0 <= int(self.commit_every) <= 0xFFFF:
            raise ModelError(f"design: commit_every {self.commit_every} must be in 0..65535 (0: a whole pass)")

    @property
    def is_default(self) -> bool:
        """Runs as the original element loop (c/dnn.h: dnn_design_is_default)."""
        return self.order == "channel" and self.tile == (1, 1, 1) and not self.stage_input

    def to_json(self) -> dict:
        d: dict = {"order": self.order, "tile": list(self.tile)}
        if self.order == "input":
            d["in_tile"] = self.in_tile
        if self.stage_input:
            d["stage_input"] = True
        if self.commit_every is not None:
            d["commit_every"] = self.commit_every
        return d

    @classmethod
    def from_json(cls, d: dict, where: str = "design") -> Design:
        if not isinstance(d, dict):
            raise ModelError(f"{where}: a design is an object with keys {', '.join(sorted(_KEYS))}")
        unknown = set(d) - _KEYS
        if unknown:
            raise ModelError(f"{where}: unknown design keys {sorted(unknown)}; use {', '.join(sorted(_KEYS))}")
        try:
            return cls(order=d.get("order", "channel"), tile=d.get("tile", (1, 1, 1)), in_tile=int(d.get("in_tile", 1)),
                       stage_input=bool(d.get("stage_input", False)),
                       commit_every=None if d.get("commit_every") is None else int(d["commit_every"]))
        except ModelError as exc:
            raise ModelError(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{where}: malformed design ({exc})") from None

    def row(self) -> bytes:
        """This design's dnn_design_t entry."""
        return DESIGN_STRUCT.pack(ORDERS.index(self.order), int(self.stage_input), *self.tile, self.in_tile)


DEFAULT = Design()


def design_table(designs: list[Design]) -> bytes:
    """The bytes of the firmware's dnn_design[] (one entry per stage): a tool may write them
    over the flashed table (emu: Machine.write_symbol("dnn_design", ...)) without rebuilding."""
    return b"".join(d.row() for d in designs)


def commit_table(every: list[int]) -> bytes:
    """The bytes of dnn_commit_every[] (u16 per stage)."""
    return np.array(every, np.uint16).tobytes()


def _clip(v: int, dim: int) -> int:
    return dim if v == 0 or v > dim else v


@dataclass(frozen=True)
class Geometry:
    """A design applied to a stage: the twin of dnn_plan_t (c/dnn.h)."""

    op: str
    dims: tuple[int, int, int, int, int, int]  # in_c, in_h, in_w, out_c, out_h, out_w
    kernel: int
    design: Design
    tile: tuple[int, int, int]  # clipped
    counts: tuple[int, int, int]  # tiles per dimension
    slices: int
    per_pass: int
    passes: int
    default: bool  # the original element loop

    @property
    def tiles(self) -> int:
        return int(np.prod(self.counts))

    @property
    def steps(self) -> int:
        return self.passes * self.tiles

    @property
    def slice_stride(self) -> int:
        """Input offset of one reduction slice."""
        ic, ih, iw = self.dims[:3]
        return ih * iw if self.op == "conv2d" else iw if self.op == "dwconv2d" else 1

    @property
    def weights_per_slice(self) -> int:
        k = self.kernel
        return k * k if self.op == "conv2d" else k if self.op == "dwconv2d" else 1

    def slice_range(self, t: int) -> tuple[int, int]:
        s0 = t * self.per_pass
        return s0, min(s0 + self.per_pass, self.slices)

    def tile_coords(self, u: int) -> tuple[int, int, int]:
        nc, nh, nw = self.counts
        if self.design.order == "spatial":
            return u % nc, u // nc // nw, u // nc % nw
        return u // nw // nh, u // nw % nh, u % nw

    def tile_bounds(self, u: int) -> tuple[int, int, int, int, int, int]:
        """(c0, c1, y0, y1, x0, x1) of tile u."""
        (tc, th, tw), (ct, yt, xt) = self.tile, self.tile_coords(u)
        _, _, _, oc, oh, ow = self.dims
        return (ct * tc, min(ct * tc + tc, oc), yt * th, min(yt * th + th, oh), xt * tw, min(xt * tw + tw, ow))

    def elements(self, bounds) -> list[tuple[int, int, int]]:
        """The tile's output elements (c, y, x) in the order the firmware computes them."""
        c0, c1, y0, y1, x0, x1 = bounds
        if self.design.order == "spatial":
            return [(c, y, x) for y in range(y0, y1) for x in range(x0, x1) for c in range(c0, c1)]
        return [(c, y, x) for c in range(c0, c1) for y in range(y0, y1) for x in range(x0, x1)]

    def region(self, t: int, bounds) -> tuple[int, int, int, int, int, int]:
        """(channels, rows, columns as [begin, end) pairs) of the input that tile `bounds`
        reads in pass t: what stage_input copies."""
        c0, c1, y0, y1, x0, x1 = bounds
        s0, s1 = self.slice_range(t)
        k = 1 if self.op == "dense" else self.kernel
        if self.op == "dwconv2d":
            return (c0, c1, y0 + s0, y1 + s1 - 1, x0, x1 + k - 1)
        return (s0, s1, y0, y1 + k - 1, x0, x1 + k - 1)


def geometry(stage, design: Design) -> Geometry:
    """The design applied to a stage (codegen.Stage), as the firmware's dnn_plan does it. A
    stage that is not conv2d/dwconv2d/dense, and the default design, run element by element."""
    dims = stage.dims()
    ic, ih, iw, oc, oh, ow = dims
    weighted = stage.op in WEIGHTED_STAGES
    if not weighted:
        design = DEFAULT if design.commit_every is None else Design(commit_every=design.commit_every)
    tile = tuple(_clip(v, n) for v, n in zip(design.tile, (oc, oh, ow)))
    counts = tuple(-(-n // v) for n, v in zip((oc, oh, ow), tile))
    slices = (ic if stage.op == "conv2d" else stage.kernel if stage.op == "dwconv2d" else ic) if weighted else 1
    default = not weighted or design.is_default
    per_pass = _clip(design.in_tile, slices) if design.order == "input" and not default else slices
    if default:  # element by element, channel-major, one pass
        tile, counts = (1, 1, 1), (oc, oh, ow)
    return Geometry(stage.op, dims, stage.kernel, design, tile, counts, slices, per_pass, -(-slices // per_pass),
                    default)


def check_design(stage, design: Design, where: str) -> None:
    g = geometry(stage, design)
    if g.steps > 0xFFFF:
        raise ModelError(f"{where}: {g.passes} passes x {g.tiles} tiles = {g.steps} steps, more than the task "
                         "state's 16-bit position holds; use larger tiles or in_tile")


def stage_designs(model, stages, overrides: dict | None = None, commit_every: list[int] | None = None
                  ) -> tuple[list[Design], list[int]]:
    """Per-stage designs and commit granularities: a backbone stage takes its computing
    layer's design, an exit classifier stage the exit classifier's, any other stage the
    default; `overrides` (the CLI's, key -> one value for every weighted stage or a list
    with one per stage) replace fields; a stage's commit_every is `commit_every` (one or
    per stage) when given, else its design's, else the model's."""
    designs = []
    for s in stages:
        d = None
        if s.role == "backbone" and s.layers:
            d = model.layers[s.layers[0]].design
        elif s.role == "classifier" and model.exit_classifier is not None:
            d = model.exit_classifier.design
        designs.append(d or DEFAULT)
    for key, value in (overrides or {}).items():
        if key not in _KEYS - {"commit_every"}:
            raise ModelError(f"design: unknown field {key!r}")
        if isinstance(value, list) and len(value) == len(stages):
            values = value
        elif isinstance(value, list) and len(value) != 1:
            raise ModelError(f"design {key}: one value, or one per stage ({len(stages)})")
        else:
            one = value[0] if isinstance(value, list) else value
            values = [one if s.op in WEIGHTED_STAGES else getattr(d, key) for s, d in zip(stages, designs)]
        for i, (s, v) in enumerate(zip(stages, values)):
            new = replace(designs[i], **{key: v})
            if s.op not in WEIGHTED_STAGES and not new.is_default:
                raise ModelError(f"design {key}: stage {i} ({s.op}) has no design, only conv2d, dwconv2d and "
                                 "dense stages do")
            designs[i] = new
    if commit_every is not None:
        if len(commit_every) not in (1, len(stages)):
            raise ModelError(f"commit_every: one value, or one per stage ({len(stages)})")
        every = list(commit_every) * (len(stages) if len(commit_every) == 1 else 1)
    else:
        every = [model.commit_every if d.commit_every is None else d.commit_every for d in designs]
    if any(not 0 <= int(n) <= 0xFFFF for n in every):
        raise ModelError(f"commit_every: {len(stages)} values in 0..65535 needed (0: a whole stage per commit)")
    designs = [replace(d, commit_every=int(n)) for d, n in zip(designs, every)]
    for i, (s, d) in enumerate(zip(stages, designs)):
        check_design(s, d, f"stage {i} ({s.op})")
    return designs, [int(n) for n in every]


# -- costs ---------------------------------------------------------------------------------------
@dataclass
class _Tally:
    """Bytes and operations of some steps (one tile, one commit, a stage)."""

    macs: int = 0
    act_reads: int = 0  # input activations read from non-volatile memory
    weight_reads: int = 0  # weights, sparse pairs and row pointers, biases
    acc_reads: int = 0
    act_writes: int = 0  # output activations
    acc_writes: int = 0
    staged: int = 0  # bytes copied into SRAM (counted in act_reads too)
    sram_reads: int = 0  # input values read from the staging buffer

    def add(self, other: _Tally) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def key(self) -> tuple[int, int]:
        return self.macs, self.act_reads + self.weight_reads + self.acc_reads + self.act_writes + self.acc_writes

    def reads(self) -> dict:
        return {"activations": self.act_reads, "weights_and_biases": self.weight_reads, "accumulators": self.acc_reads}

    def writes(self) -> dict:
        return {"activations": self.act_writes, "accumulators": self.acc_writes}


@dataclass
class _Sparse:
    offsets: list[np.ndarray] = field(default_factory=list)  # per row: input offset of each entry


def _sparse_offsets(stage) -> _Sparse | None:
    if stage.sparse is None:
        return None
    sp = stage.sparse
    deltas = sp.pairs[:, 0].astype(np.int64) if sp.entries else np.zeros(0, np.int64)
    return _Sparse([np.cumsum(deltas[sp.rows[r]:sp.rows[r + 1]]) for r in range(len(sp.rows) - 1)])


def _element_cost(g: Geometry, sparse: _Sparse | None, c: int, t: int) -> tuple[int, int]:
    """(MACs = input values read, weight bytes read) of one element of channel c in pass t."""
    s0, s1 = g.slice_range(t)
    if sparse is None:
        n = (s1 - s0) * g.weights_per_slice
        return n, n
    off = sparse.offsets[c]
    lo, hi = s0 * g.slice_stride, s1 * g.slice_stride
    inside = int(((off >= lo) & (off < hi)).sum())
    past = int(np.searchsorted(off, hi, side="left"))  # entries before the first one past the slice
    walked = min(past + 1, len(off))
    return inside, 2 * inside + (walked - inside) + 4  # a pair per entry used, a delta per entry skipped, rows


def _region_bytes(r) -> int:
    return max(0, r[1] - r[0]) * max(0, r[3] - r[2]) * max(0, r[5] - r[4])


def _steps(g: Geometry, stage, sparse, t: int, us, staged: list | None) -> _Tally:
    """The costs of tiles `us` of pass t run by one task (staged: the region staged last)."""
    tally = _Tally()
    stage_input = g.design.stage_input and not g.default
    for u in us:
        bounds = g.tile_bounds(u)
        if stage_input:
            region = g.region(t, bounds)
            if staged is None or staged[0] != region:
                tally.staged += _region_bytes(region)
                if staged is not None:
                    staged[0] = region
        for c, _, _ in g.elements(bounds):
            macs, wbytes = _element_cost(g, sparse, c, t)
            tally.macs += macs
            tally.weight_reads += wbytes + (4 if t == 0 else 0)
            if stage_input:
                tally.sram_reads += macs
            else:
                tally.act_reads += macs
            tally.acc_reads += 4 if t > 0 else 0
            if t == g.passes - 1:
                tally.act_writes += 1
            else:
                tally.acc_writes += 4
    tally.act_reads += tally.staged
    return tally


def _plain_stage_tally(stage, begin: int, end: int) -> _Tally:
    """A stage without weights (pools) or a default design: elements [begin, end)."""
    reads = stage.output_reads()[begin:end]
    tally = _Tally(act_reads=int(reads.sum()), act_writes=end - begin)
    if stage.op in WEIGHTED_STAGES:
        tally.macs = int(reads.sum())
        n = end - begin
        if stage.sparse is None:
            tally.weight_reads = int(reads.sum()) + 4 * n
        else:  # a pair per entry, a bias per output, the row pointers once per channel of the chunk
            plane = stage.outputs // (len(stage.sparse.rows) - 1)
            channels = (end - 1) // plane - begin // plane + 1
            tally.weight_reads = 2 * int(reads.sum()) + 4 * n + 4 * channels
    return tally


def stage_costs(stage, design: Design, commit_every: int) -> dict:
    """A stage's cost figures under a design and a commit granularity (steps per commit, 0:
    a whole pass): the steps and commits, the most expensive tile and commit, totals, and
    the bytes written to preserve progress."""
    g = geometry(stage, design)
    sparse = None if g.default else _sparse_offsets(stage)
    chunk = g.tiles if commit_every <= 0 or commit_every > g.tiles else commit_every
    total, worst_commit, worst_tile, commits = _Tally(), None, None, 0
    for t in range(g.passes):
        for begin in range(0, g.tiles, chunk):
            end = min(begin + chunk, g.tiles)
            if g.default:
                tally = _plain_stage_tally(stage, begin, end)
            else:
                tally = _steps(g, stage, sparse, t, range(begin, end), [None])
            commits += 1
            total.add(tally)
            if worst_commit is None or tally.key() > worst_commit.key():
                worst_commit = tally
    for t in range(g.passes):  # the most expensive single step (its region staged alone)
        for u in range(g.tiles):
            tally = _plain_stage_tally(stage, u, u + 1) if g.default else _steps(g, stage, sparse, t, [u], None)
            if worst_tile is None or tally.key() > worst_tile.key():
                worst_tile = tally
    runtime = commits * (TASK_STATE_BYTES + RUNTIME_COMMIT_BYTES)
    weighted = stage.op in WEIGHTED_STAGES
    return {
        "design": {**g.design.to_json(), "commit_every": commit_every} if weighted else {"commit_every": commit_every},
        "plan": {"tile": list(g.tile), "tiles": g.tiles, "tile_outputs": int(np.prod(g.tile)), "slices": g.slices,
                 "slices_per_pass": g.per_pass, "passes": g.passes, "steps": g.steps, "steps_per_commit": chunk,
                 "element_loop": g.default},
        "commits": commits,
        "per_tile": {"macs": worst_tile.macs, "nv_reads": worst_tile.reads(), "nv_writes": worst_tile.writes(),
                     "sram": {"staged": worst_tile.staged, "reads": worst_tile.sram_reads}},
        "per_commit": {"macs": worst_commit.macs, "nv_reads": worst_commit.reads(),
                       "nv_writes": {**worst_commit.writes(), "task_state": TASK_STATE_BYTES,
                                     "runtime": RUNTIME_COMMIT_BYTES},
                       "sram": {"staged": worst_commit.staged, "reads": worst_commit.sram_reads}},
        "nv_reads": total.reads(),
        "nv_writes": {**total.writes(), "task_state": commits * TASK_STATE_BYTES,
                      "runtime": commits * RUNTIME_COMMIT_BYTES},
        "sram": {"staged": total.staged, "reads": total.sram_reads},
        "preserved_bytes": total.act_writes + total.acc_writes + runtime,
        "max_reexecuted_macs": worst_commit.macs,
        "accumulator_bytes": 8 * stage.outputs if g.passes > 1 else 0,
        "staging_bytes": int(np.prod(stage.in_shape)) if weighted and g.design.stage_input and not g.default else 0,
    }


# -- a Python twin of the firmware's schedule -------------------------------------------------------
def run_stage(stage, design: Design, commit_every: int, x: np.ndarray, rng: np.random.Generator | None = None
              ) -> np.ndarray:
    """The stage's int8 output computed step by step as c/dnn_design.c does (tiles in the
    design's order, passes over the double-buffered accumulator, the rounding term with the
    bias), for an int8 input (stage.in_shape). With `rng`, every task first runs a random
    prefix of its steps and is then run again whole (a power failure before its commit):
    the result must not change. For the weighted stages."""
    g = geometry(stage, design)
    ic, ih, iw, oc, oh, ow = g.dims
    inp = np.asarray(x, np.int64).reshape(-1)
    w = stage.weight.astype(np.int64).reshape(stage.weight.shape[0], -1)
    offsets = _offsets(stage)  # input offset of each weight of an output channel, from its anchor
    half = (1 << (stage.shift - 1)) if stage.shift else 0
    acc = [np.full(stage.outputs, 0x5A5A5A5A, np.int64), np.full(stage.outputs, -0x3C3C3C3C, np.int64)]
    out = np.full(stage.outputs, 99, np.int64)
    chunk = g.tiles if commit_every <= 0 or commit_every > g.tiles else commit_every

    def run(t: int, us) -> None:
        s0, s1 = g.slice_range(t)
        lo, hi = s0 * g.slice_stride, s1 * g.slice_stride
        for u in us:
            for c, y, xx in g.elements(g.tile_bounds(u)):
                o = (c * oh + y) * ow + xx
                anchor = (c * ih * iw if stage.op == "dwconv2d" else 0) + y * iw + xx
                v = int(stage.bias[c]) + half if t == 0 else int(acc[t % 2][o])
                sel = (offsets >= lo) & (offsets < hi)
                v += int((inp[anchor + offsets[sel]] * w[c][sel]).sum())
                if t == g.passes - 1:
                    out[o] = v
                else:
                    acc[(t + 1) % 2][o] = v

    for t in range(g.passes):
        for begin in range(0, g.tiles, chunk):
            us = range(begin, min(begin + chunk, g.tiles))
            if rng is not None:
                run(t, us[:int(rng.integers(0, len(us) + 1))])
            run(t, us)
    v = np.clip(out >> stage.shift, 0 if stage.relu else -128, 127)  # the rounding term is in the sums
    return v.astype(np.int8).reshape(stage.out_shape)


def _offsets(stage) -> np.ndarray:
    from .codegen import input_offsets

    return input_offsets(stage.op, stage.weight.shape, stage.dims()[:3] if stage.op != "dense" else stage.in_shape)

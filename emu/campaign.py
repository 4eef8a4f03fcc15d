"""Fault-injection campaigns: fail power after instruction k, for many k, and compare each
trial's outcome with the continuous-power (golden) run.

A trial "at k" fails power after exactly k instructions of the first power-on period, then
power stays on until completion. It is `correct` when it completes and every observed
output equals the golden run's; otherwise `wrong_output`, `crash`, or `timeout` (no
completion within `max_factor` x N instructions in total, N = golden instructions).

Observed outputs: the bytes of the `observe` symbols. Without any: for firmware that speaks
the host protocol (docs/protocol.md), the output bytes and exit of the last RESULT frame it
sent (not its boot or progress counters); otherwise the UART bytes the firmware sent after
its last boot.

Energy-driven campaigns (`EnergyCampaign`, `Sweep`): trial i is one energy-driven run
(`emu.power.run_energy`) under combination i of a sweep over capacitance, harvester, the
supervisor's thresholds, leakage, regulator efficiency or a trace's start offset, judged
by the same oracle; outcomes add `non_termination` and `starved` (docs/campaigns.md).

Speed: the golden run is recorded as snapshots every `interval` instructions; a trial
restores the nearest snapshot before k instead of re-running the prefix, on one reused
machine per process. `execute` spreads trials over worker processes (each builds its own
machine from a `CampaignSpec`), appends them to a `ResultStore` as they finish and shows
progress on a terminal.

Convergence pruning (`prune`, on by default): after a trial's last failure its state is
probed right before the final power-on and after `prune_first`, 2x, 4x, ... instructions
of that power-on period. The machine is deterministic, so a trial whose state (`Machine.state_key`:
registers, all memory, peripherals, pending input; not the counters or UART bytes already
sent) equals one an earlier trial of this process had at a probe has the same ending: the
same outcome after the same number of further instructions, the same further UART bytes
and final memory. The trial stops there (`Trial.pruned`) and takes that ending, shifted by
the difference of their instruction counts; where the instruction limit could tell them
apart (the ending would reach the limit, or it was a timeout from another count) it runs
on. States are compared exactly (a hash finds candidates). It cannot compare with the
golden run itself: after a reboot volatile memory holds another fill and the firmware's
boot counter differs.

Failure epochs (on engines whose watched runs are cheap, Unicorn): a single failure at k
leaves a state that only the golden run's writes to non-volatile memory and peripheral
registers before k decide (power-on overwrites everything else), so two k with none of
those writes between them have the same ending. Once enough trials ran, one watched
golden run (`golden_epochs`) finds those writes and records the PC after every
instruction; a trial at k whose epoch (the writes before k) an earlier trial probed takes
that trial's ending without restoring or running anything (`Campaign.trials`). Same
results, counts and `pruned` flags as probing it.
"""

from __future__ import annotations

import bisect
import gc
import multiprocessing
import os
import random
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from .debuginfo import SourceMap
from .engines.base import StopKind
from .errors import EmuError
from .machine import Machine, Probe, RunResult, Snapshot
from .protocol import last_result
from .results import ResultStore, firmware_digest
from .vectors import Vector, load_vector

if TYPE_CHECKING:
    from .power import PowerConfig

__all__ = ["Trial", "CampaignResult", "Campaign", "CampaignSpec", "Strategy", "execute", "exhaustive", "in_range", "in_function", "sample",
           "double", "read_schedules", "golden_trace", "nv_writes", "nv_writers", "golden_epochs", "OUTCOMES", "Point",
           "Sweep", "EnergyCampaign", "ENERGY_OUTCOMES", "SWEEP_PARAMETERS"]

OUTCOMES = ("correct", "wrong_output", "crash", "timeout")


# -- strategies: which k -------------------------------------------------------------------
def exhaustive(golden_instructions: int) -> list[int]:
    """k = 1 ... N-1."""
    return list(range(1, golden_instructions))


def in_range(golden_instructions: int, start: int, stop: int) -> list[int]:
    """start <= k < stop, clipped to 1 ... N-1."""
    if start >= stop:
        raise EmuError(f"empty range {start}:{stop}; use --range A:B with A < B")
    return list(range(max(1, start), min(stop, golden_instructions)))


def in_function(trace: Sequence[int], start: int, end: int) -> list[int]:
    """k = 1 ... N-1 whose next instruction lies in [start, end) (a function's range);
    `trace` is `golden_trace`'s PC list."""
    return [k for k in range(1, len(trace)) if start <= trace[k] < end]


def double(golden_instructions: int, count: int, seed: int, window: int) -> list[tuple[int, int]]:
    """`count` distinct (k1, k2): k1 drawn uniformly from 1 ... N-1, k2 from 1 ... window,
    the first instructions of the reboot after the first failure, where boot and
    recovery code run."""
    rng = random.Random(seed)
    total = (golden_instructions - 1) * window
    picks = rng.sample(range(total), min(count, total))
    return sorted((1 + p // window, 1 + p % window) for p in picks)


def read_schedules(path: str | Path) -> list[tuple[int, ...]]:
    """Schedules from a file: one "K1,K2,..." per line (blank lines and # comments skipped)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise EmuError(f"cannot read schedule file {path}: {exc.strerror}") from None
    schedules = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            ks = tuple(int(k, 0) for k in line.split(","))
        except ValueError:
            raise EmuError(f"{path}:{number}: expected K1,K2,... (integers), got {line!r}") from None
        if not ks or min(ks) < 1:
            raise EmuError(f"{path}:{number}: failure counts must be >= 1")
        schedules.append(ks)
    if not schedules:
        raise EmuError(f"schedule file {path} holds no schedule")
    return schedules


def golden_trace(machine: Machine) -> list[int]:
    """The PC before each instruction of the continuous-power run from the flashed state:
    trace[k] is the instruction that runs after k have retired. Single-steps the run
    (about 10-25 us per instruction), so use it on runs of up to a few million."""
    machine.reset()
    machine.power_on()
    trace = [machine.engine.pc]
    while machine.step(1).kind == StopKind.LIMIT:
        trace.append(machine.engine.pc)
    machine.reset()
    return trace


def nv_writes(machine: Machine) -> list[int]:
    """k = 1 ... N-1 right before and right after each instruction of the golden run
    that writes non-volatile memory: for the instruction that runs after i have retired,
    k = i and k = i + 1."""
    writers, golden_instructions = nv_writers(machine)
    return sorted({k for w in writers for k in (w, w + 1) if 1 <= k < golden_instructions})


def nv_writers(machine: Machine) -> tuple[list[int], int]:
    """(the i whose instruction - the one that runs after i have retired - writes
    non-volatile memory in the golden run, N). Watches the CPU's writes to the board's
    non-volatile regions (`Engine.watch_memory`)."""
    writers, n, _, _ = _watched_golden_run(machine, [(r.start, r.end) for r in machine.board.nonvolatile_regions])
    return writers, n


def _watched_golden_run(machine: Machine, ranges: list[tuple[int, int]],
                        pcs: int = 0) -> tuple[list[int], int, Sequence[int] | None, bool]:
    """The golden run from the flashed state, watched: (the sorted i whose instruction
    writes into `ranges`, N, the PCs `Engine.record_pcs(pcs)` recorded (None for
    `pcs` 0 or where the engine cannot), whether an interrupt's exception frame went
    outside volatile memory). The machine is reset before and after."""
    engine = machine.engine
    machine.reset()
    machine.power_on()
    frames = machine.frames_outside_volatile
    writers: set[int] = set()
    engine.watch_memory(ranges, lambda kind, address, size, value, pc, index: writers.add(index), "w")
    trace = engine.record_pcs(pcs) if pcs > 0 else None
    try:
        machine.step(machine.max_instructions)
        n, kept_frames = engine.instructions, machine.frames_outside_volatile != frames
    finally:
        engine.watch_memory(None, None)
        engine.record_pcs(0)
        machine.reset()
    return sorted(writers), n, trace, kept_frames


def golden_epochs(machine: Machine, pcs: int = 0) -> tuple[list[int], Sequence[int] | None] | None:
    """(writes, trace): the i (instructions retired before it) of each instruction of the
    golden run (from the flashed state) that writes non-volatile memory or a peripheral
    register, sorted; and with `pcs` > 0, where the engine can record them
    (`Engine.record_pcs`), the golden run's PC after i instructions for i < `pcs`
    (0xFFFFFFFF where not recorded), else None. None where the
    state a power failure leaves is not decided by those writes alone: registers survive
    power-on (`volatile_init` "keep"), UART input is pending (a peripheral
    read would consume it), or an interrupt's exception frame goes to non-volatile memory
    (a stack in FRAM or MRAM: the engine writes the frame, no CPU store the watch sees).
    Interrupts stacked in SRAM change nothing a failure keeps; their handlers' stores are
    CPU stores, watched like any other.

    Why these writes decide it: at a failure volatile memory, registers and peripherals
    are lost and power-on sets them from the boot number's fill; what survives is
    non-volatile memory (changed by CPU writes only), the UART bytes sent (by peripheral
    register writes) and pending input (none here)."""
    if machine.volatile_init == "keep":
        return None
    machine.reset()
    if machine.link.rx:
        return None
    watched = [(r.start, r.end) for r in machine.board.regions if r.mmio or not r.volatile]
    writes, _, trace, kept_frames = _watched_golden_run(machine, watched, pcs)
    return None if kept_frames else (writes, trace)


def sample(golden_instructions: int, count: int, seed: int) -> list[int]:
    """`count` distinct k drawn uniformly from 1 ... N-1 (all of them if fewer)."""
    population = range(1, golden_instructions)
    return sorted(random.Random(seed).sample(population, min(count, len(population))))


# -- results ------------------------------------------------------------------------------
Point = int | tuple[int, ...]  # k, or a schedule (k1, k2, ...) as emu run --fail-after


@dataclass(frozen=True)
class Trial:
    at: Point
    outcome: str
    pc: int  # the instruction that did not execute (the failure came before it)
    observed: dict[str, bytes]
    error: str | None = None
    energy: dict | None = None  # energy-driven trials (a sweep): latency, energy, power cycles
    pruned: bool = field(default=False, compare=False)  # stopped early: converged with an earlier trial


@dataclass
class CampaignResult:
    firmware: Path
    board: str
    golden_instructions: int
    expected: dict[str, bytes]
    trials: list[Trial] = field(default_factory=list)
    observe: tuple[str, ...] = ()
    source: SourceMap | None = None
    vector: Path | None = None  # the test vector directory the trials ran on
    sweep: "Sweep | None" = None  # energy-driven: trial i ran with combination i of the sweep

    @property
    def outcomes(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES + (ENERGY_OUTCOMES if self.sweep else ()), 0)
        for t in self.trials:
            counts[t.outcome] += 1
        return counts

    @property
    def failures(self) -> list[Trial]:
        return sorted((t for t in self.trials if t.outcome != "correct"), key=lambda t: _schedule(t.at))

    @property
    def pruned(self) -> int:
        """Trials that stopped early because they converged with an earlier one."""
        return sum(t.pruned for t in self.trials)

    @property
    def all_correct(self) -> bool:
        return not self.failures

    def reproduce(self, trial: Trial) -> str:
        reads = "".join(f" --read {name}" for name in self.observe)
        vector = f" --vector {self.vector}" if self.vector else ""
        power = self.sweep.flags(trial.at) if self.sweep is not None else \
            "--fail-after " + ",".join(str(k) for k in _schedule(trial.at))
        return f"emu run {self.firmware} --board {self.board}{vector} {power}{reads}"

    def to_json(self) -> dict:
        failures = []
        for t in self.failures:
            pos = self.source.lookup(t.pc) if self.source else None
            failures.append({
                "at": t.at if isinstance(t.at, int) else list(t.at), "pc": t.pc,
                "function": pos.function if pos else None, "file": pos.file if pos else None,
                "line": pos.line if pos else None, "outcome": t.outcome,
                "observed": {k: v.hex() for k, v in t.observed.items()},
                "expected": {k: v.hex() for k, v in self.expected.items()},
                "reproduce": self.reproduce(t),
            })
        data = {"golden_instructions": self.golden_instructions, "trials": len(self.trials),
                "outcomes": self.outcomes, "pruned": self.pruned, "failures": failures}
        if self.sweep is not None:
            data["sweep"] = {"axes": {name: list(values) for name, values in self.sweep.axes},
                             "trials": [{"at": t.at, "parameters": self.sweep.combination(t.at),
                                         "outcome": t.outcome, **(t.energy or {})}
                                        for t in sorted(self.trials, key=lambda t: _schedule(t.at))]}
        return data

    def __repr__(self) -> str:  # what a failing `assert result.all_correct` shows
        return f"<CampaignResult {self.summary()}>"

    def assert_all_correct(self) -> None:
        """Raise AssertionError listing the first failures (function, line, reproducer)."""
        if not self.all_correct:
            raise AssertionError(self.summary())

    def summary(self) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in self.outcomes.items())
        lines = [f"{len(self.trials)} trials on {self.board} (golden run: {self.golden_instructions} "
                 f"instructions): {counts}"]
        for t in self.failures[:10]:
            pos = self.source.lookup(t.pc) if self.source else None
            where = pos.function or "?" if pos else "?"
            if pos and pos.file:
                where += f" ({pos.file}:{pos.line})"
            lines.append(f"  at {t.at}: {t.outcome} before pc {t.pc:#x} in {where}; reproduce: {self.reproduce(t)}")
        if len(self.failures) > 10:
            lines.append(f"  ... {len(self.failures) - 10} more")
        return "\n".join(lines)


# -- execution -----------------------------------------------------------------------------
_UNKNOWN = object()  # Campaign._lookup: the caller has not looked the memo up


class Campaign:
    """Golden run plus trials on one reused machine."""

    def __init__(self, machine: Machine, observe: Sequence[str] = (), max_factor: float = 10.0,
                 interval: int | None = None, vector: "Vector | None" = None, prune: bool = True,
                 prune_first: int | None = None):
        if max_factor < 1:
            raise EmuError("max-factor must be >= 1")
        if prune_first is not None and prune_first < 1:
            raise EmuError("prune_first must be >= 1 (instructions before the first convergence probe)")
        self.machine = machine
        self.observe = tuple(observe)
        self.vector = vector
        machine.observe_symbols(self.observe)
        machine.reset()
        if vector is not None:  # the vector's input, as if flashed with the firmware
            load_vector(machine, vector)
            machine.rebase()
        golden = machine.run()
        if golden.outcome != "completed":
            raise EmuError(f"the golden (continuous-power) run did not complete: {golden.outcome}"
                           f"{': ' + golden.error if golden.error else ''}")
        self.golden_instructions = golden.instructions
        self.expected = self._observed(golden)
        if vector is not None:
            found = last_result(golden.uart)
            got = (found.output, found.exit) if found else None
            if got != (vector.expected_output, vector.exit):
                raise EmuError(f"under continuous power the firmware does not give vector {vector.name}'s "
                               f"expected output: got {got[0].hex() + f' (exit {got[1]})' if got else 'no RESULT'}, "
                               f"expected {vector.expected_output.hex()} (exit {vector.exit})")
        self.limit = int(max_factor * self.golden_instructions)
        self.interval = interval or max(256, self.golden_instructions // 1000)
        self._snapshots: list[tuple[int, Snapshot]] = []
        machine.reset()
        while True:  # snapshots along the golden run, in its single power-on period
            machine.power_on()
            self._snapshots.append((machine.instructions, machine.snapshot()))
            if machine.step(self.interval).kind != StopKind.LIMIT:
                break
        self._positions = [p for p, _ in self._snapshots]
        # convergence pruning (module docstring): state key -> (ending, instructions and
        # UART bytes sent when a trial had that state)
        self.prune = prune
        # a probe costs about as much as running a few thousand instructions
        self.prune_first = prune_first or max(256, min(4096, self.golden_instructions // 16))
        self._memo: dict[tuple, tuple[_Ending, int, int]] = {}  # endings that are not timeouts
        self._timeouts: dict[tuple, tuple[_Ending, int, int]] = {}  # (state key, instructions) -> a timeout
        self._seen: list[tuple[tuple, int, int]] = []  # this trial's probed states
        self._hit: tuple[tuple[_Ending, int, int], int, int] | None = None
        self._probe = Probe(self.prune_first, self._converged)
        self._source: SourceMap | None = None
        # failure epochs (module docstring): built once the watched run pays for itself
        self._epochs: _Epochs | None = None
        self._epochs_after = _epochs_after(machine, self.golden_instructions) if prune else None
        self._single_trials = 0  # single-failure trials since the last forget()
        self._off: tuple | None = None  # this trial's probe before power-on: (key, instructions, UART bytes)

    @property
    def boot_instructions(self) -> int:
        """Instructions from power-on to `main` in the golden run (0 without a `main`)."""
        m = self.machine
        if "main" not in m.image.symbols:
            return 0
        main = m.resolve_address("main")
        m.restore(self._snapshots[0][1])
        count = 0
        while m.engine.pc != main and count < _BOOT_SEARCH_LIMIT:
            if m.step(1).kind != StopKind.LIMIT:
                return 0
            count += 1
        return count if m.engine.pc == main else 0

    def _observed(self, result: RunResult, tx_at_boot: int | None = None) -> dict[str, bytes]:
        """The observed outputs of a run that ended in `result`; `tx_at_boot`: where the
        last boot's UART bytes start in result.uart (default: the machine's)."""
        if self.observe:
            return dict(result.reads)  # (a pruned trial's reads are an earlier trial's)
        if self.machine.input_waits:  # speaks the host protocol
            return dict(_result_frame(result.uart))
        if tx_at_boot is None:
            return {"uart": self.machine.uart_since_boot}
        return {"uart": result.uart[tx_at_boot:]}

    def forget(self) -> None:
        """Drop the states pruning remembered (later trials start from nothing, and the
        failure epochs are found again)."""
        self._memo.clear()
        self._timeouts.clear()
        self._epochs, self._single_trials = None, 0

    def _converged(self, m: Machine) -> bool:
        """The probe: has an earlier trial had this state, with an ending this trial is
        sure to share? Otherwise remember the state for later trials."""
        key = m.state_key()
        now, sent = m.instructions, len(m.link.tx)
        if not m.powered:
            self._off = (key, now, sent)
        hit = self._lookup(key, now)
        if hit is not None:
            self._hit = (hit, now, sent)
            return True
        self._seen.append((key, now, sent))
        return False

    def _lookup(self, key: tuple, now: int, memo: object = _UNKNOWN) -> tuple[_Ending, int, int] | None:
        """The remembered ending a state `key` reached after `now` instructions shares.
        `memo`: the memo's entry for `key` where the caller already has it (or None)."""
        hit = self._memo.get(key) if memo is _UNKNOWN else memo
        if hit is None or now + hit[0].instructions - hit[1] >= self.limit:  # not the same end before the limit
            # a timeout only from the same count (from another it stops elsewhere, or ends)
            hit = self._timeouts.get((key, now))
        return hit

    def _finish(self, result: RunResult) -> tuple[RunResult, bool]:
        """The trial's final result (for a pruned one: the ending it converged to, shifted
        to its own counts and UART bytes), recorded as the ending of every state it was
        probed in; whether it was pruned."""
        pruned = result.outcome == "stopped"
        if pruned:
            hit, now, sent = self._hit
            result = _ending_result(hit, result.board, now, result.uart[:sent], result.power_cycles)
        if self._seen and len(self._memo) + len(self._timeouts) < _MEMO_LIMIT:
            mine = _Ending(result.outcome, result.instructions, result.uart, result.reads, result.error,
                           result.stop_pc, result.waiting_for_input)
            for key, now, sent in self._seen:
                if mine.outcome == "timeout":
                    self._timeouts.setdefault((key, now), (mine, now, sent))
                else:  # (every trial reaching this state ends so, the same number of instructions later)
                    self._memo.setdefault(key, (mine, now, sent))
        self._seen, self._hit = [], None
        return result, pruned

    def trial(self, at: Point) -> Trial:
        """Fail power after at = k instructions (or per the schedule at = (k1, k2, ...)),
        then run to the end with power on."""
        first, *rest = _schedule(at)
        m = self.machine
        i = bisect.bisect_right(self._positions, first) - 1
        position, snap = self._snapshots[i]
        m.restore(snap)
        if first > position:
            stop = m.step(first - position)
            if stop.kind != StopKind.LIMIT:
                raise EmuError(f"trial at {at}: the golden run ends before it ({self.golden_instructions})")
        pc = m.engine.pc
        m.power_fail()
        probe = self._probe if self.prune and m.supply is None else None
        self._seen, self._hit, self._off = [], None, None
        result, pruned = self._finish(m.run(fail_after=rest, max_instructions=self.limit, probe=probe))
        if not rest:
            self._single_trials += 1
            if self._epochs is not None and self._off is not None:  # this epoch's state, for later trials
                key, now, sent = self._off
                self._epochs.known.setdefault(self._epochs.of(first), (key, now - first, result.uart[:sent], None))
        # the last boot's UART bytes start here (a trial pruned before it is where it would)
        tx_at_boot = len(m.link.tx) - (len(m.uart_since_boot) if m.powered else 0)
        observed = self._observed(result, tx_at_boot)
        return Trial(at, self._outcome(result, observed), pc, observed, result.error, pruned=pruned)

    def _outcome(self, result: RunResult, observed: dict[str, bytes]) -> str:
        if result.outcome == "completed":
            return "correct" if observed == self.expected else "wrong_output"
        return result.outcome

    def trials(self, points: Sequence[Point]) -> list[Trial]:
        """`trial(at)` for each point in turn (the same trials), where the failure epochs
        allow it without running anything (module docstring)."""
        if self._epochs is None and self._epochs_after is not None and self.machine.supply is None and \
                self._single_trials + sum(isinstance(p, int) for p in points) >= self._epochs_after:
            self._epochs = _Epochs.of_golden(self.machine, self.golden_instructions)
            if self._epochs is None:
                self._epochs_after = None  # (this firmware's golden run does not allow them)
        if self._epochs is None:
            return [self.trial(at) for at in points]
        out: list[Trial | None] = []
        quick: list[tuple[int, int, str, dict[str, bytes], str | None]] = []
        for at in points:
            ending = self._epoch_ending(at) if isinstance(at, int) else None
            if ending is None:
                out.append(self.trial(at))
            else:
                quick.append((len(out), at, *ending))
                out.append(None)
                self._single_trials += 1
        if quick:  # their failure PCs (recorded by the scan; else one sweep along the golden run)
            pcs = self._golden_pcs(sorted({at for _, at, *_ in quick}))
            for i, at, outcome, observed, error in quick:
                out[i] = Trial(at, outcome, pcs[at], observed, error, pruned=True)
        return out  # type: ignore[return-value]

    def _epoch_ending(self, k: int) -> tuple[str, dict[str, bytes], str | None] | None:
        """(outcome, observed, error) of the trial at k from the ending of an earlier
        trial in its failure epoch (exactly what probing its state before power-on gives:
        the same key, instructions and UART bytes); None if none is known."""
        if not 0 < k < self.golden_instructions:
            return None  # (trial() says what is wrong with it)
        epoch = self._epochs.of(k)
        known = self._epochs.known.get(epoch)
        if known is None:
            return None
        key, offset, sent, memo = known
        if memo is None:  # (once there, a memo entry stays until forget(): look it up once)
            memo = self._memo.get(key)
            if memo is not None:
                self._epochs.known[epoch] = (key, offset, sent, memo)
        now = k + offset
        hit = self._lookup(key, now, memo)
        if hit is None:
            return None
        result = _ending_result(hit, self.machine.board.name, now, sent, [k, 0])
        observed = self._observed(result, len(sent))
        return self._outcome(result, observed), observed, result.error

    def _golden_pcs(self, ks: Sequence[int]) -> dict[int, int]:
        """The golden run's PC after k instructions, for ascending `ks`: recorded in the
        scan for the failure epochs, or where not, stepped to from the previous k (the
        snapshot before k is restored only where that is far behind: running a few
        hundred instructions costs less than a restore)."""
        m, pcs, at = self.machine, {}, None
        trace = self._epochs.pcs if self._epochs is not None else None
        for k in ks:
            if trace is not None and trace[k] != _NO_PC:
                pcs[k] = trace[k]
                continue
            position, snap = self._snapshots[bisect.bisect_right(self._positions, k) - 1]
            if at is None or (position > at and k - at > 4 * self.interval):
                m.restore(snap)
                at = position
            if k > at and m.step(k - at).kind != StopKind.LIMIT:
                raise EmuError(f"trial at {k}: the golden run ends before it ({self.golden_instructions})")
            at = k
            pcs[k] = m.engine.pc
        return pcs

    def run(self, points: Iterable[Point]) -> CampaignResult:
        """The trials at `points`, one after the other in this process (`execute` adds
        worker processes, a result store and progress)."""
        return self.result(self.trials(list(points)))

    def result(self, trials: list[Trial]) -> CampaignResult:
        m = self.machine
        if self._source is None:  # DWARF parsing: once per campaign
            self._source = SourceMap.from_elf(m.image.path)
        return CampaignResult(m.image.path, m.board.name, self.golden_instructions, self.expected, trials,
                              observe=self.observe, source=self._source,
                              vector=self.vector.path if self.vector else None,
                              sweep=getattr(self, "sweep", None))


@dataclass
class _Epochs:
    """The golden run's writes that a failure keeps (`golden_epochs`) and, per failure
    epoch (how many of them come before k), the state an earlier trial in it had before
    power-on: (state key, its instruction count minus k, the UART bytes sent by then,
    the memo's entry for that key once known)."""

    writes: list[int]
    pcs: Sequence[int] | None  # the golden run's PC after k instructions (0xFFFFFFFF: not recorded)
    known: dict[int, tuple] = field(default_factory=dict)

    @classmethod
    def of_golden(cls, machine: Machine, golden_instructions: int) -> "_Epochs | None":
        found = golden_epochs(machine, golden_instructions if golden_instructions <= _MAX_TRACE else 0)
        return None if found is None else cls(*found)

    def of(self, k: int) -> int:
        return bisect.bisect_left(self.writes, k)


_NO_PC = 0xFFFF_FFFF  # Engine.record_pcs: not recorded
_MAX_TRACE = 1 << 22  # golden PCs recorded (4 bytes each) for runs up to this long; longer: stepped to
# A trial pruned before power-on costs about this much (restore, run to k, state key):
# the watched golden run pays for itself once this many trials times it exceed its cost.
_PREFIX_COST_S = 1e-4


def _epochs_after(machine: Machine, golden_instructions: int) -> int | None:
    """After how many single-failure trials the failure epochs are worth finding."""
    return max(1, int(golden_instructions * machine.engine.watch_cost / _PREFIX_COST_S))


def _ending_result(hit: tuple[_Ending, int, int], board: str, now: int, uart: bytes, cycles: list[int]) -> RunResult:
    """The result of a trial that reached, after `now` instructions and having sent `uart`
    (power-on periods `cycles`, the last one still running), a state whose remembered
    ending `hit` = (ending, its instructions then, its UART bytes then) it shares."""
    ending, then, then_sent = hit
    more = ending.instructions - then
    return RunResult(board, ending.outcome, now + more, cycles[:-1] + [cycles[-1] + more], ending.stop_pc,
                     uart + ending.uart[then_sent:], ending.reads, ending.error, ending.waiting_for_input)


_BOOT_SEARCH_LIMIT = 200_000
_MEMO_LIMIT = 20_000  # remembered trial states per process (a page list each, pages shared)


@lru_cache(maxsize=256)
def _result_frame(uart: bytes) -> dict[str, bytes]:
    """The observed output of host-protocol firmware: its last RESULT frame (trials often
    send the same bytes, and decoding them is pure Python)."""
    found = last_result(uart)
    if found is None:
        return {"result": b""}
    return {"result": found.output, "exit": bytes([found.exit])}


@dataclass(frozen=True)
class _Ending:
    """How a trial's run ended (its RunResult's fields that a converged trial shares)."""

    outcome: str
    instructions: int
    uart: bytes
    reads: dict[str, bytes]
    error: str | None
    stop_pc: int
    waiting_for_input: bool


@dataclass(frozen=True)
class Strategy:
    """Which failure points a campaign tries (one of `KINDS`); `parse` reads the short
    form "exhaustive", "range:A:B", "sample:M", "double:M", "function:NAME",
    "schedule:FILE", "nv-writes"."""

    kind: str
    count: int | None = None  # sample, double
    start: int | None = None  # range
    stop: int | None = None
    name: str | None = None  # function
    path: Path | None = None  # schedule
    window: int = 2000  # double: instructions after main for the second failure

    KINDS = ("exhaustive", "range", "sample", "double", "function", "schedule", "nv-writes")

    @classmethod
    def parse(cls, text: str) -> "Strategy":
        kind, _, arg = text.partition(":")
        try:
            if kind in ("exhaustive", "nv-writes") and not arg:
                return cls(kind)
            if kind == "range":
                a, _, b = arg.partition(":")
                return cls(kind, start=int(a, 0), stop=int(b, 0))
            if kind in ("sample", "double"):
                return cls(kind, count=int(arg, 0))
            if kind == "function" and arg:
                return cls(kind, name=arg)
            if kind == "schedule" and arg:
                return cls(kind, path=Path(arg))
        except ValueError:
            pass
        raise EmuError(f"bad strategy {text!r}; use exhaustive, range:A:B, sample:M, double:M, "
                       "function:NAME, schedule:FILE or nv-writes")

    def points(self, campaign: "Campaign", seed: int = 0) -> list[Point]:
        n = campaign.golden_instructions
        if self.kind == "exhaustive":
            return exhaustive(n)
        if self.kind == "range":
            return in_range(n, self.start, self.stop)
        if self.kind == "sample":
            return sample(n, self.count, seed)
        if self.kind == "double":
            return double(n, self.count, seed, campaign.boot_instructions + self.window)
        if self.kind == "schedule":
            return read_schedules(self.path)
        if self.kind == "nv-writes":
            return nv_writes(campaign.machine)
        if self.kind == "function":
            m = campaign.machine
            symbol = m.image.symbol(self.name)
            if symbol.size <= 0:
                raise EmuError(f"symbol {self.name!r} has no size: is it a function?")
            start = m.resolve_address(self.name)
            points = in_function(golden_trace(m), start, start + symbol.size)
            if not points:
                raise EmuError(f"function {self.name!r} does not run in the golden run")
            return points
        raise EmuError(f"unknown strategy {self.kind!r}; use one of {', '.join(self.KINDS)}")


@dataclass(frozen=True)
class CampaignSpec:
    """Everything that decides a campaign's trials except the points: enough for a
    worker process to build the same machine and golden run."""

    firmware: Path
    board: str | None = None
    observe: tuple[str, ...] = ()
    max_factor: float = 10.0
    volatile_init: str = "random"
    seed: int = 0
    vector: Vector | None = None
    sweep: "Sweep | None" = None  # energy-driven trials
    prune: bool = True  # convergence pruning (never changes a trial's result)

    def campaign(self) -> Campaign:
        machine = Machine.from_elf(self.firmware, self.board, volatile_init=self.volatile_init, seed=self.seed)
        if self.sweep is not None:
            return EnergyCampaign(machine, self.sweep, observe=self.observe, max_factor=self.max_factor,
                                  vector=self.vector)
        return Campaign(machine, observe=self.observe, max_factor=self.max_factor, vector=self.vector,
                        prune=self.prune)

    def header(self, board: str) -> dict:
        """What a result file must match to be resumed."""
        options = asdict(replace(self, sweep=None))
        del options["firmware"], options["vector"], options["sweep"], options["prune"]  # (prune: same results)
        if self.sweep is not None:
            options["sweep"] = self.sweep.to_json()
        options.update(board=board, observe=list(self.observe))
        if self.vector is not None:
            v = self.vector
            options["vector"] = {"name": v.name, "input": v.input.hex(), "expected": v.expected_output.hex(),
                                 "exit": v.exit}
        return {"firmware_sha256": firmware_digest(self.firmware), "options": options}


_MIN_BATCH, _MAX_BATCH = 16, 512
_LOCAL_BATCH = 128  # trials between two appends to the result store in a single process
_PROBE_BATCH = 64  # trials timed in this process before deciding on worker processes
_POOL_WORTH_S = 8.0  # estimated seconds of work in this process above which workers start


def execute(campaign: Campaign, spec: CampaignSpec, points: Sequence[Point], *, workers: int = 1,
            store: ResultStore | None = None, progress: bool | None = None,
            pool_after: float = _POOL_WORTH_S, scheduler: str | None = None) -> CampaignResult:
    """Run the trials at `points` not already in `store`, on `workers` processes (1: in
    this one, on `campaign`), appending each batch to `store` as it finishes. Workers
    start only when the remaining trials would take more than `pool_after` seconds in
    this process (timed on a first batch). With `scheduler` (a Dask distributed
    scheduler's address, e.g. tcp://host:8786) the batches go to that cluster's workers
    instead; the firmware travels with them. `progress`
    shows a bar with trials/s and ETA (default: when stderr is a terminal). Returns all
    trials of `points`, the stored ones included."""
    from tqdm import tqdm

    collected: dict[tuple[int, ...], Trial] = dict(store.finished) if store else {}
    todo = [p for p in points if _schedule(p) not in collected]
    bar = tqdm(total=len(points), initial=len(points) - len(todo), unit="trial", smoothing=0.1,
               disable=not (sys.stderr.isatty() if progress is None else progress), file=sys.stderr)

    def finished(trials: list[Trial]) -> None:
        if store:
            store.append(trials)
        collected.update((_schedule(t.at), t) for t in trials)
        bar.update(len(trials))

    try:
        if scheduler is not None:
            _run_on_dask(scheduler, spec, todo, finished)
            todo = []
        if workers > 1 and len(todo) >= 2 * _MIN_BATCH:
            # worker processes cost a start-up each (imports, golden run, JIT warm-up):
            # worth it only for campaigns longer than a few seconds in this process
            t = time.perf_counter()
            first, todo = todo[:_PROBE_BATCH], todo[_PROBE_BATCH:]
            finished(campaign.trials(first))
            rate = len(first) / max(time.perf_counter() - t, 1e-9)
            if len(todo) / rate < pool_after:
                workers = 1
        if workers <= 1 or len(todo) < 2 * _MIN_BATCH:
            for batch in _batches(todo, _LOCAL_BATCH):
                finished(campaign.trials(batch))
        else:
            size = max(_MIN_BATCH, min(_MAX_BATCH, len(todo) // (workers * 8)))
            context = multiprocessing.get_context("spawn")  # no engine state crosses a fork
            # machines no longer used may sit in reference cycles: free them here, since the
            # pool's threads must not (an icicle VM may only be dropped on its own thread)
            gc.collect()
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                pending = {pool.submit(_run_batch, spec, batch) for batch in _batches(todo, size)}
                try:
                    while pending:
                        complete, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in complete:
                            finished(future.result())
                except BaseException:
                    for future in pending:
                        future.cancel()
                    raise
    finally:
        bar.close()
    return campaign.result([collected[_schedule(p)] for p in points])


def _batches(points: Sequence[Point], size: int) -> Iterable[list[Point]]:
    for i in range(0, len(points), size):
        yield list(points[i : i + size])


def _run_on_dask(address: str, spec: CampaignSpec, todo: list[Point], finished) -> None:
    """Batches of trials as tasks on a Dask distributed cluster (as they complete)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise EmuError("--scheduler needs Dask: pip install 'intermittent-emu[dask]'") from None
    gc.collect()  # (see the local pool in execute: no icicle VM dropped on Dask's threads)
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise EmuError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        workers = max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))
        size = max(_MIN_BATCH, min(_MAX_BATCH, len(todo) // (workers * 8) or _MIN_BATCH))
        firmware = client.scatter(Path(spec.firmware).read_bytes(), broadcast=True)
        futures = [client.submit(_run_remote_batch, spec, firmware, batch, pure=False)
                   for batch in _batches(todo, size)]
        try:
            for future in as_completed(futures):
                finished(future.result())
        except BaseException:
            client.cancel(futures)
            raise


def _run_remote_batch(spec: CampaignSpec, firmware: bytes, batch: list[Point]) -> list[Trial]:
    """On a Dask worker: the firmware is written to a local file named by its hash."""
    import hashlib
    import tempfile

    digest = hashlib.sha256(firmware).hexdigest()
    local = Path(tempfile.gettempdir()) / "emu-campaign-firmware" / f"{digest}-{Path(spec.firmware).name}"
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(firmware)
        partial.replace(local)
    return _run_batch(replace(spec, firmware=local), batch)


@lru_cache(maxsize=1)
def _worker_campaign(spec: CampaignSpec) -> Campaign:
    """One campaign per worker process, built on its first batch and reused."""
    return spec.campaign()


def _run_batch(spec: CampaignSpec, batch: list[Point]) -> list[Trial]:
    campaign = _worker_campaign(spec)
    return campaign.trials(batch)


def _schedule(at: Point) -> tuple[int, ...]:
    return (at,) if isinstance(at, int) else tuple(at)


# -- energy-driven campaigns: a sweep of power configurations --------------------------------
ENERGY_OUTCOMES = ("non_termination", "starved")  # outcomes only energy-driven trials have
SWEEP_PARAMETERS = ("capacitance", "harvester", "v_on", "v_off", "leakage", "efficiency", "offset")
_SWEEP_FLAGS = {"capacitance": "--capacitor", "harvester": "--harvester", "v_on": "--v-on", "v_off": "--v-off",
                "leakage": "--leakage", "efficiency": "--efficiency"}


@dataclass(frozen=True)
class Sweep:
    """Energy-driven trials: trial i is one `run_energy` with combination i of the
    cartesian product of `axes` (first axis slowest), each value overriding the `base`
    power configuration. `offset` starts a trace harvester that many seconds into its
    recording. `base_flags`: the `emu run` flags and values that give `base` (for
    reproducers), e.g. (("--capacitor", "10uF"),)."""

    base: "PowerConfig"
    axes: tuple[tuple[str, tuple[str, ...]], ...]
    base_flags: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, base: "PowerConfig", texts: Sequence[str],
              base_flags: tuple[tuple[str, str], ...] = ()) -> "Sweep":
        """`texts`: "NAME=V1,V2,..." each (values separated by ';' instead when one holds
        a comma, e.g. harvester=square:100ms,0.25,3mW;const:1mW)."""
        axes: list[tuple[str, tuple[str, ...]]] = []
        for text in texts:
            name, sep, values = text.partition("=")
            name = name.strip().replace("-", "_")
            if name == "capacitor":
                name = "capacitance"
            if not sep or name not in SWEEP_PARAMETERS:
                raise EmuError(f"bad sweep {text!r}: expected NAME=V1,V2,... with NAME one of "
                               f"{', '.join(SWEEP_PARAMETERS)} (e.g. capacitance=47uF,100uF)")
            split = [v.strip() for v in values.split(";" if ";" in values else ",")]
            if not all(split):
                raise EmuError(f"bad sweep {text!r}: empty value")
            if any(n == name for n, _ in axes):
                raise EmuError(f"sweep parameter {name} given twice: list all its values in one --sweep")
            axes.append((name, tuple(split)))
        if not axes:
            raise EmuError("an energy-driven campaign needs at least one --sweep NAME=V1,V2,...")
        sweep = cls(base, tuple(axes), base_flags)
        for i in range(len(sweep)):  # every combination must make a valid config: fail before any trial
            sweep.config(i)
        return sweep

    def __len__(self) -> int:
        n = 1
        for _, values in self.axes:
            n *= len(values)
        return n

    def points(self) -> list[int]:
        return list(range(len(self)))

    def combination(self, i: int) -> dict[str, str]:
        out = {}
        for name, values in reversed(self.axes):
            i, j = divmod(i, len(values))
            out[name] = values[j]
        return {name: out[name] for name, _ in self.axes}

    def config(self, i: int) -> "PowerConfig":
        from .power import power_config

        values = self.combination(i)
        offset = values.pop("offset", None)
        config = power_config(base=self.base, **values)
        if offset is not None:
            from .power import parse_quantity

            config = replace(config, harvester=_shifted(config.harvester, parse_quantity(offset, "s", what="offset")))
        return config

    def flags(self, i: int) -> str:
        """`emu run` flags for combination i."""
        values = self.combination(i)
        offset = values.pop("offset", None)
        flags = dict(self.base_flags)
        flags.update((_SWEEP_FLAGS[k], v) for k, v in values.items())
        text = " ".join(f"{flag} '{v}'" if "," in v else f"{flag} {v}" for flag, v in flags.items())
        return text + (f" (harvester trace started {offset} into the recording)" if offset else "")

    def to_json(self) -> dict:
        return {"base": self.base.to_json(), "axes": {name: list(values) for name, values in self.axes}}


def _shifted(harvester, offset: float):
    """The trace harvester started `offset` seconds into its recording (a looping trace
    wraps around)."""
    import numpy as np

    from .power import TraceHarvester

    if not isinstance(harvester, TraceHarvester):
        raise EmuError("a sweep over offset needs a trace harvester (--harvester trace:FILE)")
    if not 0 <= offset < harvester.duration:
        raise EmuError(f"trace offset {offset:g} s lies outside the trace (0 to {harvester.duration:g} s)")
    starts = np.asarray(harvester._starts)  # sample j covers [starts[j], starts[j + 1])
    i = int(np.searchsorted(starts, offset, side="right")) - 1
    edges = np.concatenate([[offset], starts[i + 1:]]) - offset  # piece ends included
    power = harvester.power[i:]
    if harvester.loop:  # wrap: the recording's beginning, up to the offset, follows its end
        head = np.concatenate([starts[:i + 1], [offset]])
        keep = np.diff(head) > 0
        edges = np.concatenate([edges, head[1:][keep] + (starts[-1] - offset)])
        power = np.concatenate([power, harvester.power[:i + 1][keep]])
    # a trace's last sample lasts as long as the one before it: split the last piece in two
    last = (edges[-2] + edges[-1]) / 2
    times = np.concatenate([edges[:-1], [last]])
    power = np.concatenate([power, power[-1:]])
    return TraceHarvester(times, power, f"{harvester.source}@{offset:g}s", harvester.loop)


class EnergyCampaign(Campaign):
    """The same oracle (golden continuous-power run) with energy-driven trials: trial i is
    one `run_energy` under combination i of `sweep`, from the flashed state, with a limit
    of `max_factor` x the golden run's instructions."""

    def __init__(self, machine: Machine, sweep: Sweep, observe: Sequence[str] = (), max_factor: float = 10.0,
                 vector: "Vector | None" = None):
        self.sweep = sweep
        super().__init__(machine, observe, max_factor, interval=1 << 40, vector=vector)  # no trial snapshots
        self._epochs_after = None  # (its trials are energy-driven runs, not failures after k)

    def trial(self, at: Point) -> Trial:
        from .power import run_energy

        if not isinstance(at, int) or not 0 <= at < len(self.sweep):
            raise EmuError(f"energy-driven trial {at!r}: expected an index 0 ... {len(self.sweep) - 1}")
        m = self.machine
        m.reset()
        run = run_energy(m, self.sweep.config(at), max_instructions=self.limit)
        observed = self._observed(run.result)
        outcome = run.outcome
        if outcome == "completed":
            outcome = "correct" if observed == self.expected else "wrong_output"
        energy = {"latency_s": run.latency, "energy_j": run.energy, "power_cycles": len(run.periods),
                  "on_time_s": run.on_time, "off_time_s": run.off_time, "instructions": run.result.instructions}
        if run.repeated_unit is not None:
            energy["repeated_unit"] = run.repeated_unit.to_json()
        pc = run.repeated_unit.failure_pc if run.repeated_unit is not None else run.result.stop_pc
        return Trial(at, outcome, pc, observed, run.result.error, energy)

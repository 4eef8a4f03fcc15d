"""Why does a failure at instruction K break the result? First-divergence analysis: `emu explain`.

`explain(firmware, fail_after)` runs the golden (continuous-power) run and the failing run
side by side, both single-stepped with every non-volatile access recorded together with
the call site of the function making it (so a write inside `memcpy` is also attributed
to the line that called it), and reports in source terms:

* `differences`: the non-volatile bytes that differ at the end, by symbol and offset,
  golden against observed (the observed symbols and the RESULT output first);
* for each failure, `last_writes`: the last non-volatile writes before it, and
  `first_reads`: the first reads after the reboot of bytes the interrupted period wrote
  (they see what the failure left behind);
* `divergence`: the first write after the first failure that gives a byte a value the
  golden run never gave it: where the two runs' non-volatile state parts ways;
* `hazards`: the `emu war` hazards whose exposure window holds the failure point.

Public names: `explain`, `Explanation`, `AccessReport`, `ByteDifference`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .engines.base import StopKind
from .errors import EmuError
from .machine import Machine
from .trace import CodeLocation, Locator, nv_ranges
from .war import DEFAULT_COMMITS, DEFAULT_IGNORED, Hazard, find_hazards

__all__ = ["explain", "Explanation", "AccessReport", "ByteDifference"]

_SHOWN = 6  # accesses listed per section


@dataclass(frozen=True)
class AccessReport:
    """One access in source terms."""

    kind: str  # "r" | "w"
    symbol: str
    offset: int
    address: int
    size: int
    value: int | None
    index: int  # instructions before it, all periods
    boot: int
    at: CodeLocation
    called_from: CodeLocation | None
    golden_values: tuple[int, ...] = ()  # divergence only: what the golden run wrote there

    def to_json(self) -> dict:
        return {"kind": self.kind, "symbol": self.symbol, "offset": self.offset, "address": self.address,
                "size": self.size, "value": self.value, "index": self.index, "boot": self.boot,
                "at": self.at.to_json(), "called_from": self.called_from.to_json() if self.called_from else None,
                "golden_values": list(self.golden_values)}

    def __str__(self) -> str:
        what = f"{self.symbol}+{self.offset}" if self.offset else self.symbol
        value = f" = {self.value:#x}" if self.value is not None else ""
        caller = f", called from {self.called_from}" if self.called_from else ""
        return f"{'write' if self.kind == 'w' else 'read '} {what}{value} at {self.at}{caller} " \
               f"[boot {self.boot}, after {self.index} instructions]"


@dataclass(frozen=True)
class ByteDifference:
    """A run of differing non-volatile bytes inside one symbol."""

    symbol: str
    offset: int
    address: int
    golden: bytes
    observed: bytes
    watched: bool  # an --observe symbol or the firmware's output

    def to_json(self) -> dict:
        return {"symbol": self.symbol, "offset": self.offset, "address": self.address,
                "golden": self.golden.hex(), "observed": self.observed.hex(), "watched": self.watched}


@dataclass
class Explanation:
    firmware: str
    board: str
    fail_after: tuple[int, ...]
    golden_outcome: str
    outcome: str
    differences: list[ByteDifference] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)  # per failure: last_writes, first_reads
    divergence: AccessReport | None = None
    hazards: list[Hazard] = field(default_factory=list)

    def locations(self) -> list[CodeLocation]:
        """Every source location the explanation names (for tools and tests)."""
        out = []
        accesses = [a for f in self.failures for a in f["last_writes"] + f["first_reads"]]
        if self.divergence:
            accesses.append(self.divergence)
        for a in accesses:
            out.append(a.at)
            if a.called_from:
                out.append(a.called_from)
        for h in self.hazards:
            out += [h.read, h.write]
        return out

    def to_json(self) -> dict:
        return {"firmware": self.firmware, "board": self.board, "fail_after": list(self.fail_after),
                "golden_outcome": self.golden_outcome, "outcome": self.outcome,
                "differences": [d.to_json() for d in self.differences],
                "failures": [{"at": f["at"], "pc": f["pc"].to_json(), "last_writes": [a.to_json() for a in f["last_writes"]],
                              "first_reads": [a.to_json() for a in f["first_reads"]]} for f in self.failures],
                "divergence": self.divergence.to_json() if self.divergence else None,
                "hazards": [h.to_json() for h in self.hazards]}

    def format_text(self) -> str:
        out = [f"{self.firmware} on {self.board}, power failing after {','.join(map(str, self.fail_after))}: "
               f"{self.outcome} (golden run: {self.golden_outcome})"]
        out.append("\nnon-volatile bytes that differ at the end (golden -> observed):")
        if not self.differences:
            out.append("  none")
        for d in self.differences:
            mark = "  * " if d.watched else "    "
            at = f"+{d.offset}" if d.offset else ""
            out.append(f"{mark}{d.symbol}{at}: {d.golden.hex()} -> {d.observed.hex()}")
        for n, f in enumerate(self.failures, 1):
            out.append(f"\nfailure {n}: power lost after {f['at']} instructions of period {n}, "
                       f"before {f['pc']}")
            out.append("  last non-volatile writes before it:")
            out += [f"    {a}" for a in f["last_writes"]] or ["    none"]
            out.append("  first reads after the reboot of bytes that period wrote:")
            out += [f"    {a}" for a in f["first_reads"]] or ["    none"]
        out.append("\nfirst divergence of non-volatile state:")
        if self.divergence:
            d = self.divergence
            golden = ", ".join(f"{v:#x}" for v in d.golden_values[:6]) or "nothing"
            out.append(f"  {d}\n  the golden run wrote there only: {golden}")
        else:
            out.append("  none: every value written after the failure is one the golden run also wrote there")
        if self.hazards:
            out.append("\nhazards (emu war) whose exposure window holds the failure point:")
            for h in self.hazards:
                kind = "volatile" if h.kind == "volatile" else "write-after-read"
                out.append(f"  {h.symbol}: {kind}; read at {h.read}; write at {h.write}")
        return "\n".join(out)


def explain(firmware: str | Path, fail_after: Sequence[int], *, board: str | None = None,
            observe: Sequence[str] = (), seed: int = 0, volatile_init: str = "random",
            max_factor: float = 10.0, commits: Sequence[str] | None = None,
            ignore: Sequence[str] | None = None) -> Explanation:
    """Compare the golden run of `firmware` with the run failing after `fail_after`.
    `commits` and `ignore` as for `emu.war.find_hazards` (defaults: the runtime's commit
    words; its boot counter)."""
    schedule = tuple(int(k) for k in fail_after)
    if not schedule or any(k < 1 for k in schedule):
        raise EmuError("explain needs --fail-after K1[,K2...] with every K >= 1")

    def machine() -> Machine:
        return Machine.from_elf(firmware, board, volatile_init=volatile_init, seed=seed, observe=observe)

    golden_m, failing_m = machine(), machine()
    locate = Locator(golden_m.image)
    nv = nv_ranges(golden_m.board)
    golden = _Stepper(golden_m, nv, locate)
    golden.run((), golden_m.max_instructions)
    failing = _Stepper(failing_m, nv, locate)
    failing.run(schedule, max(int(max_factor * max(golden.instructions, 1)), 1000))

    image = golden_m.image
    ignore = [n for n in DEFAULT_IGNORED if n in image.symbols] if ignore is None else list(ignore)
    commit_names = [n for n in DEFAULT_COMMITS if n in image.symbols] if commits is None else list(commits)
    ignored = [(s.address, s.address + max(s.size, 1)) for s in map(image.symbol, ignore)]
    commit_spans = [(s.address, s.address + max(s.size, 1)) for s in map(image.symbol, commit_names)]
    watched = [(s.address, s.address + s.size) for s in (image.symbols.get(n.split(":")[0]) for n in
                                                          list(observe) + ["app_output"]) if s]
    result = Explanation(str(image.path), golden_m.board.name, schedule, golden.outcome, failing.outcome)
    result.differences = _differences(golden_m, failing_m, nv, locate, ignored, watched)

    for n, k in enumerate(failing.failures, 1):
        period = [a for a in failing.trace if a.boot == n]
        writes = [a for a in period if a.kind == "w" and not _inside(a.address, ignored)]
        # bytes written since the period's last commit (all of its writes if it made none)
        last_commit = max((i for i, a in enumerate(writes) if _inside(a.address, commit_spans)), default=-1)
        pending = {b for a in writes[last_commit + 1:] for b in range(a.address, a.address + a.size)}
        reads, seen = [], set()
        for a in failing.trace:
            if a.boot != n + 1 or a.kind != "r":
                continue
            touched = [b for b in range(a.address, a.address + a.size) if b in pending and b not in seen]
            if touched:
                seen.update(touched)
                reads.append(a)
                if len(reads) == _SHOWN:
                    break
        result.failures.append({"at": k[0], "pc": locate.code(k[1]),
                                "last_writes": writes[-_SHOWN:], "first_reads": reads})

    result.divergence = _divergence(golden, failing, ignored)
    war = find_hazards(machine(), observe=observe, commits=commit_names, ignore=ignore)
    result.hazards = [h for h in war.hazards if any(a <= schedule[0] <= b for a, b in h.windows)]
    return result


class _Stepper:
    """Runs a machine one instruction at a time with its power schedule, recording the
    watched accesses with the call site of the function that made them."""

    def __init__(self, machine: Machine, ranges, locate: Locator):
        self.machine, self.ranges, self.locate = machine, ranges, locate
        self.trace: list[AccessReport] = []
        self.failures: list[tuple[int, int]] = []  # (instructions in the period, pc not executed)
        self.outcome = "timeout"
        self.entries = {start for start, _ in locate.functions.values()}  # function entry points

    def run(self, schedule: Sequence[int], limit: int) -> None:
        m, engine, locate = self.machine, self.machine.engine, self.locate
        pending: list[tuple] = []
        engine.watch_memory(self.ranges, lambda *a: pending.append(a))
        schedule = list(schedule)
        stack: list[int] = []  # call sites
        try:
            m.power_on()
            while engine.instructions < limit:
                if schedule and m.period_instructions >= schedule[0]:
                    self.failures.append((schedule.pop(0), engine.pc))
                    m.power_fail()
                    m.power_on()
                    stack.clear()
                    continue
                pc = engine.pc
                stop = m.step(1)  # delivers interrupts
                caller = locate.code(stack[-1]) if stack else None
                for kind, address, size, value, apc, index in pending:
                    name, offset = locate.data(address)
                    self.trace.append(AccessReport(kind, name, offset, address, size, value, index, m.boots,
                                                   locate.code(apc), caller))
                pending.clear()
                if stop.kind == StopKind.EXIT:
                    self.outcome = "completed"
                    break
                if stop.kind == StopKind.FAULT:
                    self.outcome = "crash"
                    break
                new = engine.pc
                if new in self.entries and new != pc and locate.code(new).function != locate.code(pc).function:
                    stack.append(pc)  # a call (or a tail jump) into another function
                elif stack and locate.code(new).function == locate.code(stack[-1]).function:
                    stack.pop()  # back in the caller
        finally:
            engine.watch_memory(None, None)

    @property
    def instructions(self) -> int:
        return self.machine.engine.instructions


def _inside(address: int, spans) -> bool:
    return any(a <= address < b for a, b in spans)


def _differences(golden: Machine, failing: Machine, nv, locate: Locator, ignored, watched) -> list[ByteDifference]:
    out: list[ByteDifference] = []
    for start, end in nv:
        g = np.frombuffer(golden.engine.read_memory(start, end - start), np.uint8)
        f = np.frombuffer(failing.engine.read_memory(start, end - start), np.uint8)
        differing = np.flatnonzero(g != f)
        runs: list[list[int]] = []
        for i in differing.tolist():
            address = start + i
            if _inside(address, ignored):
                continue
            name, offset = locate.data(address)
            if runs and runs[-1][1] == address and runs[-1][2] == name:
                runs[-1][1] = address + 1
            else:
                runs.append([address, address + 1, name, offset])
        for a, b, name, offset in runs:
            out.append(ByteDifference(name, offset, a, bytes(g[a - start:b - start]), bytes(f[a - start:b - start]),
                                      _inside(a, watched)))
    out.sort(key=lambda d: (not d.watched, d.address))
    return out


def _divergence(golden: _Stepper, failing: _Stepper, ignored) -> AccessReport | None:
    """The first write after the first failure of a value the golden run never wrote
    (byte by byte) at that address, and that the address did not hold as flashed."""
    history: dict[int, set[int]] = {}
    for a in golden.trace:
        if a.kind == "w":
            for i in range(a.size):
                history.setdefault(a.address + i, set()).add((a.value >> 8 * i) & 0xFF)
    image = failing.machine.image
    for a in failing.trace:
        if a.kind != "w" or a.boot == 1 or _inside(a.address, ignored):
            continue
        for i in range(a.size):
            byte = (a.value >> 8 * i) & 0xFF
            address = a.address + i
            known = history.get(address, set()) | {(image.flashed(address) or b"\0")[0]}
            if byte not in known:
                values = sorted({w.value for w in golden.trace if w.kind == "w" and w.address == a.address})
                return AccessReport(a.kind, a.symbol, a.offset, a.address, a.size, a.value, a.index, a.boot, a.at,
                                    a.called_from, tuple(values))
    return None

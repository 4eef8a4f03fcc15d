"""Write-after-read (idempotence) hazards found on a binary: `emu war`.

A power failure makes firmware re-execute code since its last commit point. If that code
read a non-volatile location and later wrote it, the re-execution reads the new value
instead of the old one: a write-after-read (WAR) hazard. `find_hazards` runs the firmware
on continuous power, records every non-volatile read and write (`emu.trace`), cuts the run
into regions at the commit points, and reports each location whose first access in a
region is a read that a write in the same region follows.

Commit points (`commit`): names of functions (a region ends when the function is called)
or of non-volatile variables (a region ends right after each write to it: the single-word
commit of the double-buffered runtime). Default: the project runtime's commit words that
the ELF has (`rt_active` for tasks, `rt_jit_valid` for just-in-time checkpoints, and the
host protocol's job word `rt_job` and `rt_result_sent`). A boot also starts a region. A write to a
commit variable is the commit itself, never a hazard.

Trusted functions (`trust`): code that updates non-volatile data in place under its own
protection (an undo or redo log); a hazard whose write is made inside one is reported as
`guarded`, not as a hazard. Default: the project runtime's undo-log functions that the ELF
has. Ignored variables (`ignore`, default `DEFAULT_IGNORED`: the runtime's boot counter and
cycle counts) are not analysed.

Each hazard instance has an exposure window: the failure points (`emu run --fail-after K`
of the first power-on period) it can break. For a write-after-read, a failure after the
write retired and before the region's commit (the re-execution reads the written value);
for a volatile hazard, a failure after the write and before the commit of the region that
reads it (until then the read is re-executed after a reboot).

A second kind of hazard concerns volatile memory: a statically allocated variable in
SRAM written after the first commit of a boot and read in a later region holds a value
that a power failure loses (the startup code re-initialises it), while the committed
state that depends on it survives. Reported as `volatile` hazards.

Public names: `find_hazards`, `WarReport`, `Hazard`, `DEFAULT_COMMITS`, `DEFAULT_TRUSTED`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from .errors import EmuError
from .machine import Machine
from .trace import CodeLocation, Locator, MemoryAccess, nv_ranges, static_volatile_ranges
from .engines.base import StopKind

__all__ = ["find_hazards", "WarReport", "Hazard", "DEFAULT_COMMITS", "DEFAULT_TRUSTED", "DEFAULT_IGNORED"]

DEFAULT_COMMITS = ("rt_active", "rt_jit_valid", "rt_job", "rt_result_sent")
DEFAULT_TRUSTED = ("rt_undo_write", "rt_undo_write16", "rt_undo_write32", "rt_undo_recover")
# Not analysed by default, each by design: the runtime's boot counter (an in-place
# increment: it counts boots), its job cycle counts (committed values that depend on where
# power failed) and the MSP430 cycle counter's high half (SRAM that restarts with the timer
# at every boot).
DEFAULT_IGNORED = ("rt_boot_count", "rt_cycle_count", "board_cycles_high")


@dataclass(frozen=True)
class Hazard:
    """A location read and then written inside one region (first instance; `count` of
    all instances of the same read and write instructions on that symbol)."""

    kind: str  # "war" | "guarded" | "volatile"
    symbol: str
    offset: int
    address: int
    read: CodeLocation
    write: CodeLocation
    read_index: int  # instructions before the read (emu run --fail-after K: fail before it)
    write_index: int
    region: tuple[int, int]  # [first, last) instruction index of the region
    count: int = 1
    observed: bool = False  # the symbol is one of --observe
    windows: tuple[tuple[int, int], ...] = ()  # exposure windows of all instances: K1 <= K <= K2

    def to_json(self) -> dict:
        return {"kind": self.kind, "symbol": self.symbol, "offset": self.offset, "address": self.address,
                "read": self.read.to_json(), "write": self.write.to_json(), "read_index": self.read_index,
                "write_index": self.write_index, "region": list(self.region), "count": self.count,
                "observed": self.observed, "windows": [list(w) for w in self.windows]}


@dataclass
class WarReport:
    firmware: str
    board: str
    outcome: str
    instructions: int
    regions: int
    commits: list[str]
    trusted: list[str]
    hazards: list[Hazard] = field(default_factory=list)  # kind war and volatile
    guarded: list[Hazard] = field(default_factory=list)
    accesses: int = 0
    seconds: float = 0.0
    unwatched_instructions: int = 0

    @property
    def instructions_per_second(self) -> float:
        return self.instructions / self.seconds if self.seconds else 0.0

    def explains(self, k: int) -> list[Hazard]:
        """The hazards whose exposure window holds failure point `k`."""
        return [h for h in self.hazards if any(a <= k <= b for a, b in h.windows)]

    def to_json(self) -> dict:
        return {"firmware": self.firmware, "board": self.board, "outcome": self.outcome,
                "instructions": self.instructions, "regions": self.regions, "commits": self.commits,
                "trusted": self.trusted, "hazards": [h.to_json() for h in self.hazards],
                "guarded": [h.to_json() for h in self.guarded], "accesses": self.accesses,
                "seconds": round(self.seconds, 3),
                "instructions_per_second": round(self.instructions_per_second),
                "unwatched_instructions": self.unwatched_instructions}

    def format_text(self) -> str:
        out = [f"{self.firmware} on {self.board}: {self.instructions} instructions ({self.outcome}), "
               f"{self.regions} regions between commit points ({', '.join(self.commits) or 'none'}), "
               f"{self.accesses} memory accesses; {self.instructions_per_second:,.0f} instructions/s"]
        if self.unwatched_instructions:
            out.append(f"warning: {self.unwatched_instructions} MSP430X instructions could not be decoded; "
                       "their accesses are missing")
        if not self.hazards:
            out.append("no write-after-read hazards")
        by_symbol: dict[str, list[Hazard]] = {}
        for h in self.hazards:
            by_symbol.setdefault(h.symbol, []).append(h)
        for symbol, items in by_symbol.items():
            kind = "volatile variable carried across a commit" if items[0].kind == "volatile" else \
                "write-after-read"
            observed = " (observed)" if items[0].observed else ""
            out.append(f"\n{symbol}{observed}: {kind}, {sum(h.count for h in items)} instance(s)")
            for h in items:
                at = f"+{h.offset}" if h.offset else ""
                first, then = (("write", h.write), ("read ", h.read)) if h.kind == "volatile" else \
                    (("read ", h.read), ("write", h.write))
                out.append(f"  {symbol}{at}: {first[0]} {first[1]}")
                out.append(f"  {' ' * len(symbol + at)}  {then[0]} {then[1]}")
                out.append(f"  {' ' * len(symbol + at)}  first in region [{h.region[0]}, {h.region[1]}), "
                           f"read after {h.read_index}, write after {h.write_index} instructions"
                           + (f"; {h.count} times" if h.count > 1 else ""))
        if self.guarded:
            out.append(f"\nguarded by trusted code ({', '.join(self.trusted)}): "
                       + ", ".join(sorted({h.symbol for h in self.guarded})))
        return "\n".join(out)


def find_hazards(machine: Machine, *, commits: Sequence[str] | None = None, trusted: Sequence[str] | None = None,
                 ignore: Sequence[str] | None = None, observe: Sequence[str] = (), volatile: bool = True,
                 max_instructions: int | None = None) -> WarReport:
    """Run `machine` (freshly flashed) on continuous power and report its hazards."""
    image = machine.image
    locate = Locator(image)
    commit_names = [c for c in DEFAULT_COMMITS if c in image.symbols] if commits is None else list(commits)
    trusted_names = [t for t in DEFAULT_TRUSTED if t in image.symbols] if trusted is None else list(trusted)
    funcs = locate.functions
    commit_funcs, commit_words = {}, []
    for name in commit_names:
        sym = image.symbol(name)
        if name in funcs:
            commit_funcs[funcs[name][0]] = name
        else:
            commit_words.append((sym.address, sym.address + max(sym.size, 1)))
    trusted_spans = []
    for name in trusted_names:
        if name not in funcs:
            raise EmuError(f"--trust {name}: not a function in {image.path.name}")
        trusted_spans.append(funcs[name])
    ignore = [n for n in DEFAULT_IGNORED if n in image.symbols] if ignore is None else list(ignore)
    ignored = [_span(image, n) for n in ignore]
    observed = [_span(image, n.split(":")[0]) for n in observe]

    nv = nv_ranges(machine.board)
    sram = static_volatile_ranges(image, machine.board) if volatile else []
    limit = machine.max_instructions if max_instructions is None else max_instructions
    analysis = _Regions(commit_words, trusted_spans, ignored, nv, lambda a: locate.data(a)[0])
    started = time.perf_counter()
    engine = machine.engine
    engine.watch_memory(nv + sram, analysis.access)
    exits = machine.exits | set(commit_funcs)
    outcome = "timeout"
    try:
        machine.power_on()
        engine.set_exits(sorted(exits))
        while engine.instructions < limit:
            stop = machine.step(limit - engine.instructions)  # delivers interrupts
            if stop.kind == StopKind.EXIT and stop.pc in commit_funcs and stop.pc not in machine.exits:
                analysis.boundary(engine.instructions)
                stop = machine.step_past_exit(exits)
                if stop.kind == StopKind.FAULT:
                    outcome = "crash"
                    break
                continue
            if stop.kind == StopKind.EXIT:
                outcome = "completed"
                break
            if stop.kind == StopKind.FAULT:
                outcome = "crash"
                break
    finally:
        engine.watch_memory(None, None)
        engine.set_exits(sorted(machine.exits))
    seconds = time.perf_counter() - started
    analysis.boundary(engine.instructions)

    report = WarReport(str(image.path), machine.board.name, outcome, engine.instructions, analysis.regions,
                       commit_names, trusted_names, accesses=analysis.count, seconds=seconds,
                       unwatched_instructions=getattr(engine, "unwatched_instructions", 0))
    for (kind, symbol, rpc, wpc), (first, count, windows) in analysis.found.items():
        read, write, region = first
        name, offset = locate.data(read.address)
        hazard = Hazard(kind, name, offset, read.address, locate.code(read.pc), locate.code(write.pc), read.index,
                        write.index, region, count,
                        observed=any(a <= read.address < b for a, b in observed), windows=_merge(windows))
        (report.guarded if kind == "guarded" else report.hazards).append(hazard)
    report.hazards.sort(key=lambda h: (h.write_index, h.address))
    report.guarded.sort(key=lambda h: (h.write_index, h.address))
    return report


class _Regions:
    """The streaming analysis: exposed reads and writes of the current region."""

    def __init__(self, commit_words, trusted, ignored, nv, symbol_of):
        self.commit_words, self.trusted, self.ignored, self.nv = commit_words, trusted, ignored, nv
        self.symbol_of = symbol_of
        self.start = 0
        self.regions = 0
        self.count = 0
        self.boot = 0
        self.written: set[int] = set()  # NV bytes written in this region
        self.exposed: dict[int, MemoryAccess] = {}  # NV bytes read before any write in it
        self.volatile_writes: dict[int, tuple[int, MemoryAccess]] = {}  # byte -> (region, last write)
        # (kind, symbol, read pc, write pc) -> ((read, write, region) of the first, count, windows)
        self.found: dict[tuple, tuple[tuple, int, list[tuple[int, int]]]] = {}
        self._open: list[tuple[str, MemoryAccess, MemoryAccess]] = []

    def boundary(self, index: int) -> None:
        region = (self.start, index)
        for kind, read, write in self._open:
            key = (kind, self.symbol_of(read.address), read.pc, write.pc)
            window = (write.index + 1, index - 1)  # from the write retiring to this region's commit
            if key in self.found:
                first, n, windows = self.found[key]
                self.found[key] = (first, n + 1, windows)
            else:
                windows = []
                self.found[key] = ((read, write, region), 1, windows)
            windows.append(window)
        self._open = []
        self.written.clear()
        self.exposed.clear()
        self.start = index
        self.regions += 1

    def access(self, kind: str, address: int, size: int, value, pc: int, index: int) -> None:
        self.count += 1
        if any(a <= address < b for a, b in self.ignored):
            return
        if not any(a <= address < b for a, b in self.nv):
            self._volatile(kind, address, size, value, pc, index)
            return
        acc = MemoryAccess(kind, address, size, value, pc, index, 0)
        if kind == "r":
            for b in range(address, address + size):
                if b not in self.written and b not in self.exposed:
                    self.exposed[b] = acc
            return
        if any(a <= address < b for a, b in self.commit_words):
            self.boundary(index + 1)  # the region ends once the commit store retired
            return
        guarded = any(a <= pc < b for a, b in self.trusted)
        for b in range(address, address + size):
            read = self.exposed.pop(b, None)
            if read is not None:
                self._open.append(("guarded" if guarded else "war", read, acc))
            self.written.add(b)

    def _volatile(self, kind, address, size, value, pc, index) -> None:
        acc = MemoryAccess(kind, address, size, value, pc, index, 0)
        if kind == "w":
            if self.regions == 0:
                return  # before the first commit of the run: (re)initialisation
            for b in range(address, address + size):
                self.volatile_writes[b] = (self.regions, acc)
            return
        for b in range(address, address + size):
            entry = self.volatile_writes.get(b)
            if entry is not None and entry[0] < self.regions:
                self._open.append(("volatile", acc, entry[1]))


def _merge(windows: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def _span(image, name: str) -> tuple[int, int]:
    sym = image.symbol(name)
    return sym.address, sym.address + max(sym.size, 1)

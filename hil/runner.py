"""Running test vectors on the boards of a rack (`hil run`).

For each board, in its own thread: open its drivers, and for each firmware its vectors
need: flash once, power on, wait until the firmware is idle; then per vector (and repeat):
LOAD the input and RUN through the host protocol, apply the vector's power plan while the
job runs, wait for its RESULT (up to the board's `result_timeout`), and compare output and
exit with the expected ones. Each finished vector is reported at once (`Reporter`: JSON
lines and a JUnit XML file rewritten atomically), so an interrupted run keeps everything
finished so far. A board that fails (port gone, supply error, flash error) has its
remaining vectors reported as errors; the other boards go on.

Power plans (`PowerPlan`): a vector's `schedule` holds instruction counts (the emulator's
`--fail-after`); on a board the K-th count becomes an on-time of K / clock_hz seconds,
counted from the job's RUN, each followed by the board's `off_time`. A vector.json may
instead give a plan in wall-clock terms under "power": `{"on_ms": [...], "off_ms": [...]}`
(off_ms: one value or one per on-time) or `{"trace": [[t_ms, volts], ...]}`, set-points
replayed on the supply (a harvesting trace). Switching a supply's output takes tens to
hundreds of milliseconds, so on-times below that are stretched (see docs/rack.md).

Public names: `VectorOutcome`, `PowerPlan`, `Reporter`, `run_rack`, `run_vector_on_board`,
`wait_idle`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable

from emu.errors import EmuError
from emu.host import FirmwareError, HostError
from emu.protocol import Status
from emu.vectors import Vector
from hil.psu import PsuError

from .board import Board
from .errors import ConsoleError, FlashError, HilError

__all__ = ["VectorOutcome", "PowerPlan", "Reporter", "run_rack", "run_vector_on_board",
           "wait_idle"]


@dataclass
class VectorOutcome:
    """What one vector did on one board. `outcome`: passed | failed | error."""

    board: str
    board_type: str
    vector: str                  # the vector's directory
    name: str                    # <firmware>/<vector name>
    repeat: int
    outcome: str
    wall_time: float = 0.0
    output: bytes | None = None
    expected: bytes = b""
    exit: int | None = None
    expected_exit: int = 255
    boot_count: int | None = None     # the firmware's boot counter in RESULT
    cycles: int | None = None         # the job's CPU cycles in RESULT (protocol v2; None before)
    boots: int | None = None          # boots during the job (RESULT's count minus STATUS's before RUN)
    power_cycles: int = 0             # power-offs the plan applied during the job
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    def to_json(self) -> dict:
        return {"board": self.board, "board_type": self.board_type, "vector": self.vector,
                "name": self.name, "repeat": self.repeat, "outcome": self.outcome,
                "wall_time_s": round(self.wall_time, 4),
                "output": self.output.hex() if self.output is not None else None,
                "expected": self.expected.hex(), "exit": self.exit,
                "expected_exit": self.expected_exit, "boot_count": self.boot_count,
                "cycles": self.cycles, "boots": self.boots, "power_cycles": self.power_cycles, "error": self.error}


@dataclass(frozen=True)
class PowerPlan:
    """Power during a job: `cycles` of (on seconds, off seconds), or a `trace` of
    (seconds, volts) supply set-points."""

    cycles: tuple[tuple[float, float], ...] = ()
    trace: tuple[tuple[float, float], ...] = ()

    @classmethod
    def for_vector(cls, vector: Vector, clock_hz: int, off_time: float) -> PowerPlan:
        meta = {}
        if vector.path is not None:
            try:
                meta = json.loads((vector.path / "vector.json").read_text()).get("power") or {}
            except (OSError, ValueError, AttributeError):
                meta = {}
        where = f"{vector.path}/vector.json: power"
        if meta:
            if not isinstance(meta, dict):
                raise HilError(f"{where} must be a mapping with on_ms/off_ms or trace")
            if "trace" in meta:
                try:
                    trace = tuple((float(t) / 1000, float(v)) for t, v in meta["trace"])
                except (TypeError, ValueError):
                    raise HilError(f"{where}.trace must be a list of [t_ms, volts] pairs") from None
                if any(t < 0 or v < 0 for t, v in trace) or list(trace) != sorted(trace):
                    raise HilError(f"{where}.trace: times must be >= 0 and increasing, volts >= 0")
                return cls(trace=trace)
            on = meta.get("on_ms")
            off = meta.get("off_ms", off_time * 1000)
            if not isinstance(on, list) or not all(isinstance(x, (int, float)) and x >= 0 for x in on):
                raise HilError(f"{where}.on_ms must be a list of milliseconds >= 0")
            offs = off if isinstance(off, list) else [off] * len(on)
            if len(offs) != len(on) or not all(isinstance(x, (int, float)) and x >= 0 for x in offs):
                raise HilError(f"{where}.off_ms must be a number or one value per on-time")
            return cls(cycles=tuple((a / 1000, b / 1000) for a, b in zip(on, offs)))
        return cls(cycles=tuple((k / clock_hz, off_time) for k in vector.schedule or ()))


class _Player:
    """Applies a `PowerPlan` from its own thread while the job runs."""

    def __init__(self, board: Board, plan: PowerPlan):
        self.board, self.plan = board, plan
        self.stop = threading.Event()
        self.cycles = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._play, name=f"power plan {board.name}", daemon=True)

    def start(self) -> _Player:
        if self.plan.cycles or self.plan.trace:
            self.thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        if self.error is not None:
            raise self.error

    def _play(self) -> None:
        power = self.board.power
        try:
            for on_s, off_s in self.plan.cycles:
                if self.stop.wait(on_s):
                    return
                power.off()
                self.cycles += 1
                time.sleep(off_s)  # even when stopped: the board must get its power back
                power.on()
            if self.plan.trace:
                nominal = power.voltage
                start = time.monotonic()
                try:
                    for t, volts in self.plan.trace:
                        if self.stop.wait(max(0.0, start + t - time.monotonic())):
                            return
                        power.set_voltage(volts)
                finally:
                    power.set_voltage(nominal)
        except BaseException as e:  # noqa: BLE001 - reported by finish() in the board's thread
            self.error = e


def wait_idle(board: Board, deadline: float) -> Status:
    """STATUS until the firmware is not running a job (a firmware serves requests only
    between jobs, so a busy one does not answer)."""
    host = board.host()
    while True:
        try:
            status = host.status()
            if status.state != Status.RUNNING:
                return status
        except FirmwareError:
            raise
        except HostError:
            pass
        if time.monotonic() >= deadline:
            raise HilError(f"board {board.name}: the firmware did not become idle (no STATUS "
                           f"reply, or still running) within {board.result_timeout:g} s")


def _wait_result(board: Board, deadline: float):
    host = board.host()
    while True:
        if host.job_seq in host.results:
            return host.results[host.job_seq]
        try:
            return host.wait_result(polls=1)
        except FirmwareError:
            raise
        except HostError:
            pass
        if time.monotonic() >= deadline:
            raise HilError(f"board {board.name}: no RESULT within {board.result_timeout:g} s")


def run_vector_on_board(board: Board, vector: Vector, repeat: int = 0) -> VectorOutcome:
    """Run one vector on an open, flashed board (see the module docstring). Board-level
    failures (console, supply) propagate; job-level ones become an `error` outcome."""
    out = VectorOutcome(board.name, board.board_type, str(vector.path or vector.name),
                        f"{vector.firmware}/{vector.name}", repeat, "error",
                        expected=vector.expected_output, expected_exit=vector.exit)
    start = time.monotonic()
    deadline = start + board.result_timeout
    plan = PowerPlan.for_vector(vector, board.clock_hz, board.off_time)
    if not getattr(board.power, "is_on", False):
        board.power.on()
    player = _Player(board, plan)
    try:
        before = wait_idle(board, deadline)
        host = board.host()
        host.load(vector.input)
        host.run()
        player.start()
        try:
            result = _wait_result(board, deadline)
        finally:
            player.finish()
    except (ConsoleError, PsuError, FlashError):
        raise
    except (HostError, HilError) as e:
        out.error = str(e)
    else:
        out.output, out.exit, out.boot_count = result.output, result.exit, result.boot_count
        out.cycles = result.cycles
        out.boots = result.boot_count - before.boot_count
        out.outcome = "passed" if (result.output, result.exit) == (vector.expected_output,
                                                                  vector.exit) else "failed"
        if out.outcome == "failed":
            out.error = (f"output {result.output.hex()} exit {result.exit}, expected "
                         f"{vector.expected_output.hex()} exit {vector.exit}")
    out.power_cycles = player.cycles
    out.wall_time = time.monotonic() - start
    return out


class Reporter:
    """Writes each outcome as it comes: a JSON line to `json_stream`, a text line to
    `text_stream`, and the whole JUnit XML to `junit` (rewritten atomically, so the file is
    always complete and valid). Thread-safe."""

    def __init__(self, json_stream: IO[str] | None = None, junit: str | Path | None = None,
                 text_stream: IO[str] | None = None):
        self.json_stream, self.text_stream = json_stream, text_stream
        self.junit = Path(junit) if junit else None
        self.outcomes: list[VectorOutcome] = []
        self._lock = threading.Lock()
        if self.junit is not None:
            self._write_junit()

    def add(self, outcome: VectorOutcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)
            if self.json_stream is not None:
                self.json_stream.write(json.dumps(outcome.to_json()) + "\n")
                self.json_stream.flush()
            if self.text_stream is not None:
                o = outcome
                extra = f" ({o.error})" if o.error else ""
                self.text_stream.write(f"{o.outcome.upper():6} {o.board}: {o.name}"
                                       f"{f' #{o.repeat + 1}' if o.repeat else ''} "
                                       f"boots={o.boots} {o.wall_time:.2f}s{extra}\n")
                self.text_stream.flush()
            if self.junit is not None:
                self._write_junit()

    def _write_junit(self) -> None:
        root = ET.Element("testsuites", name="hil run")
        suites: dict[str, ET.Element] = {}
        for o in self.outcomes:
            suite = suites.get(o.board)
            if suite is None:
                suite = suites[o.board] = ET.SubElement(root, "testsuite", name=o.board)
            case = ET.SubElement(suite, "testcase", classname=f"{o.board}.{o.board_type}",
                                 name=o.name + (f"#{o.repeat + 1}" if o.repeat else ""),
                                 time=f"{o.wall_time:.3f}")
            if o.outcome == "failed":
                ET.SubElement(case, "failure", message=o.error or "wrong output")
            elif o.outcome == "error":
                ET.SubElement(case, "error", message=o.error or "error")
            ET.SubElement(case, "system-out").text = json.dumps(o.to_json())
        for name, suite in suites.items():
            mine = [o for o in self.outcomes if o.board == name]
            suite.set("tests", str(len(mine)))
            suite.set("failures", str(sum(o.outcome == "failed" for o in mine)))
            suite.set("errors", str(sum(o.outcome == "error" for o in mine)))
            suite.set("time", f"{sum(o.wall_time for o in mine):.3f}")
        for key, what in (("tests", None), ("failures", "failed"), ("errors", "error")):
            root.set(key, str(sum(what is None or o.outcome == what for o in self.outcomes)))
        tmp = self.junit.with_name(self.junit.name + ".tmp")
        ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
        os.replace(tmp, self.junit)


def _board_thread(session, spec, vectors: list[Vector], repeat: int, reporter: Reporter,
                  stop: threading.Event) -> None:
    def abandon(todo: Iterable[tuple[Vector, int]], why: str) -> None:
        for v, r in todo:
            reporter.add(VectorOutcome(spec.name, spec.type, str(v.path or v.name),
                                       f"{v.firmware}/{v.name}", r, "error",
                                       expected=v.expected_output, expected_exit=v.exit,
                                       error=why))

    todo = [(v, r) for v in vectors for r in range(repeat)]
    try:
        board = session.open_board(spec)
    except EmuError as e:
        abandon(todo, f"board {spec.name} could not be opened: {e}")
        return
    flashed: str | None = None
    while todo and not stop.is_set():
        vector, r = todo[0]
        try:
            if vector.firmware != flashed:
                elf = board.elf_for(vector.firmware)
                if not elf.is_file():
                    same = [(v, k) for v, k in todo if v.firmware == vector.firmware]
                    todo = [t for t in todo if t not in same]
                    abandon(same, f"no firmware {elf} (build it: make firmware, or set build: "
                                  f"in the rack file)")
                    continue
                board.power.on()
                board.flash(elf)
                flashed = vector.firmware
            outcome = run_vector_on_board(board, vector, r)
        except Exception as e:  # noqa: BLE001 - a board's failure must not stop the others
            if stop.is_set():
                return  # interrupted: the rack is being closed under us
            kind = {ConsoleError: "console", PsuError: "power supply", FlashError: "flasher",
                    EmuError: "board"}
            what = next((k for c, k in kind.items() if isinstance(e, c)), None)
            abandon(todo, f"{what} failed: {e}" if what else f"internal error: {e!r}")
            return
        todo.pop(0)
        reporter.add(outcome)


def run_rack(config, vectors: list[Vector], boards: list[str] | None = None, repeat: int = 1,
             reporter: Reporter | None = None, warn: IO[str] | None = sys.stderr,
             session=None) -> list[VectorOutcome]:
    """Run `vectors` on the rack's boards (those named in `boards`, default all) in
    parallel; each board runs the vectors of its board type. Returns every outcome (also
    given to `reporter` as they finish). A KeyboardInterrupt stops the run; what finished
    has been reported. `session`: an open `RackSession` to use (and leave open), e.g. to
    reach the virtual boards while the run goes on."""
    if repeat < 1:
        raise HilError(f"--repeat must be >= 1, not {repeat}")
    reporter = reporter or Reporter()
    specs = config.select(boards)
    types = {s.type for s in specs}
    unmatched = [v for v in vectors if v.board not in types]
    if unmatched and warn is not None:
        names = ", ".join(sorted({f"{v.firmware}/{v.name} ({v.board})" for v in unmatched})[:5])
        warn.write(f"hil: {len(unmatched)} vector(s) match no selected board's type: {names}\n")
    if len(unmatched) == len(vectors):
        raise HilError(f"no vector is for a board of this rack (board types: "
                       f"{', '.join(sorted(types))})")
    stop = threading.Event()
    with contextlib.nullcontext(session) if session is not None else config.session() as session:
        threads = []
        for spec in specs:
            mine = sorted((v for v in vectors if v.board == spec.type),
                          key=lambda v: (v.firmware, str(v.path)))
            if not mine:
                continue
            t = threading.Thread(target=_board_thread, name=f"board {spec.name}", daemon=True,
                                 args=(session, spec, mine, repeat, reporter, stop))
            t.start()
            threads.append(t)
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)  # short joins: Ctrl-C reaches this thread
        except KeyboardInterrupt:
            stop.set()
            raise
    return list(reporter.outcomes)

"""Test vectors: an input, the output it must produce, and optionally a power schedule.

On disk a vector is a directory (docs/vectors.md)::

    <name>/vector.json    {"format": 1, "firmware": "checksum", "board": "msp430fr5994",
                           "exit": 255, "schedule": [1500, 2500] or null,
                           "input_symbol": "app_input", "output_symbol": "app_output"}
    <name>/input.bin      the input bytes
    <name>/expected.bin   the expected output bytes

The emulator runs a vector in one of two ways that must agree: through the UART with the
host protocol (`via="uart"`: LOAD, RUN, RESULT, as a host or the HIL rack does) or by
writing the input straight into the firmware's non-volatile input buffer before power-on
(`via="memory"`: the job the firmware starts at its first boot then runs on it).

Public names: `Vector`, `VectorRun`, `run_vector`, `find_vectors`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .errors import EmuError
from .host import Host, MachineTransport
from .machine import Machine, RunResult
from .protocol import Result, last_result

__all__ = ["Vector", "VectorRun", "run_vector", "load_vector", "find_vectors"]

FORMAT = 1
EXIT_FINAL = Result.NO_EXIT
# rt_job as the runtime encodes it (firmware/runtime/rt.h): a job is to start at boot.
_RT_JOB_START = 1


@dataclass(frozen=True)
class Vector:
    name: str
    firmware: str  # ELF name without .elf, in build/<board>/
    board: str
    input: bytes
    expected_output: bytes
    exit: int = EXIT_FINAL
    schedule: tuple[int, ...] | None = None  # emu run --fail-after counts
    input_symbol: str = "app_input"
    output_symbol: str = "app_output"
    path: Path | None = field(default=None, compare=False)  # the directory it was read from

    def write(self, directory: Path) -> Path:
        """Write this vector as `directory`/<name>/; returns that path."""
        path = Path(directory) / self.name
        path.mkdir(parents=True, exist_ok=True)
        (path / "input.bin").write_bytes(self.input)
        (path / "expected.bin").write_bytes(self.expected_output)
        meta = {"format": FORMAT, "firmware": self.firmware, "board": self.board, "exit": self.exit,
                "schedule": list(self.schedule) if self.schedule is not None else None,
                "input_symbol": self.input_symbol, "output_symbol": self.output_symbol}
        (path / "vector.json").write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: str | Path) -> "Vector":
        path = Path(path)
        try:
            meta = json.loads((path / "vector.json").read_text())
            data, expected = (path / "input.bin").read_bytes(), (path / "expected.bin").read_bytes()
        except FileNotFoundError as exc:
            raise EmuError(f"{path}: not a test vector: {Path(exc.filename).name} is missing "
                           "(a vector directory holds vector.json, input.bin, expected.bin)") from None
        except json.JSONDecodeError as exc:
            raise EmuError(f"{path / 'vector.json'}: not valid JSON ({exc})") from None
        if meta.get("format") != FORMAT:
            raise EmuError(f"{path / 'vector.json'}: format {meta.get('format')!r} is not {FORMAT}")
        missing = [k for k in ("firmware", "board") if not isinstance(meta.get(k), str)]
        if missing:
            raise EmuError(f"{path / 'vector.json'}: missing string field(s) {', '.join(missing)}")
        schedule = meta.get("schedule")
        if schedule is not None and not (isinstance(schedule, list)
                                         and all(isinstance(k, int) and k >= 0 for k in schedule)):
            raise EmuError(f"{path / 'vector.json'}: schedule must be a list of instruction counts >= 0")
        return cls(path.name, meta["firmware"], meta["board"], data, expected, int(meta.get("exit", EXIT_FINAL)),
                   tuple(schedule) if schedule is not None else None,
                   meta.get("input_symbol", "app_input"), meta.get("output_symbol", "app_output"), path)

    def elf(self, build: str | Path) -> Path:
        return Path(build) / self.board / f"{self.firmware}.elf"


@dataclass(frozen=True)
class VectorRun:
    """What one vector produced. `passed`: output and exit as expected."""

    vector: Vector
    via: str
    output: bytes | None  # None: no RESULT came
    exit: int | None
    run: RunResult | None = None  # via="memory" only
    cycles: int | None = None  # the job's CPU cycles in RESULT (None: none came, or protocol v1)

    @property
    def passed(self) -> bool:
        return self.output == self.vector.expected_output and self.exit == self.vector.exit


def run_vector(vector: Vector, elf: str | Path, via: str = "memory",
               machine: Machine | None = None) -> VectorRun:
    """Run `vector` on the firmware `elf` (or on `machine`, reset first) in the emulator."""
    if via not in ("memory", "uart"):
        raise EmuError(f"unknown way to run a vector {via!r}; use memory or uart")
    m = machine or Machine.from_elf(elf, vector.board)
    m.reset()
    schedule = list(vector.schedule or ())
    if via == "uart":
        result = Host(MachineTransport(m, fail_after=schedule)).run_job(vector.input)
        return VectorRun(vector, via, result.output, result.exit, cycles=result.cycles)
    load_vector(m, vector)
    run = m.run(fail_after=schedule)
    result = last_result(run.uart)
    return VectorRun(vector, via, result.output if result else None, result.exit if result else None, run,
                     result.cycles if result else None)


def load_vector(machine: Machine, vector: Vector) -> None:
    """Write the vector's input into the firmware's input buffer and ask for a job at the
    next boot (the runtime's job word), as LOAD + RUN would."""
    size = machine.image.symbol(vector.input_symbol).size
    if len(vector.input) > size:
        raise EmuError(f"vector {vector.name}: {len(vector.input)} input bytes do not fit "
                       f"{vector.input_symbol} ({size} bytes)")
    if "rt_job" not in machine.image.symbols:
        raise EmuError(f"{machine.image.path.name} does not use the project runtime (no rt_job): "
                       "its vectors can only be run through the UART")
    machine.write_symbol(vector.input_symbol, vector.input)
    machine.write_symbol("rt_job", _RT_JOB_START.to_bytes(2, "little"))


def find_vectors(root: str | Path) -> Iterator[Vector]:
    """Every vector under `root` (directories holding a vector.json), sorted by path."""
    for meta in sorted(Path(root).rglob("vector.json")):
        yield Vector.read(meta.parent)

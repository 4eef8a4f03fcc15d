"""Intermittent-aware performance model (iNAS's abstract model) for task-based firmware.

Predicts, for a power configuration, the intermittent latency, MCU energy, number of power
cycles, and whether every atomic unit fits one power cycle's energy budget, without an
intermittent emulation. The model has iNAS's four parts:

* compute + progress preservation: the instructions of each atomic unit (a task of the
  project runtime, from one commit to the next, its commit included), and of the job's
  start (boot to the first commit) and finish (last commit to the end, the RESULT frame);
* recovery: the instructions a reboot costs before the unit in flight runs again;
* re-execution: a unit cut by a power failure is lost and runs again after recovery;
* recharge: the capacitor's off-time, from the same circuit model as the emulator
  (`Circuit.evolve`), so each period's instruction budget is the emulator's too.

The walk places the units into power-on periods in order: a period holds the boot
overhead and as many whole units as its budget allows; the rest of the period is wasted.
A period in which not even one unit fits can never make progress: prediction
`non_termination`, with the unit that does not fit.

The per-unit instructions are *predicted* for DNN firmware (the default): the generator's
cost report (`dnn_<model>.costs.json` next to the ELF) lists each task's operation counts,
derived from the kernels' loop structure (firmware/dnn/taskops.py), and each count is
weighed with the board's per-operation instruction cost (`TaskCosts`, board data in
task_costs.json next to this module). Those costs are fitted once per board
(`calibrate_task_costs`) on dedicated calibration models (firmware/models/calibration and
calibration_fine), never on the firmware being predicted; the runtime's job start, finish
and recovery are measured on them too (`python -m emu.power.model calibrate BUILD`).
Alternatively a *profile* (`profile_firmware`, `emu model --profile`) takes the per-unit
instructions from a continuous-power emulation of the firmware itself, stopped at each
commit (`emu.power.commits`), plus a few reboots right after a commit for the recovery
cost: exact, but circular as a check of the model.

Public names: `Profile`, `Unit`, `profile_firmware`, `TaskCosts`, `calibrate_task_costs`,
`load_task_costs`, `save_task_costs`, `profile_from_costs`, `Prediction`, `predict`,
`Comparison`, `compare`, `load_costs`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EmuError
from ..machine import Machine
from .commits import commit_sites, replay_commits
from .config import PowerConfig
from .run import _instructions_within, run_energy
from .timeline import Event

__all__ = ["Profile", "Unit", "profile_firmware", "TaskCosts", "calibrate_task_costs", "load_task_costs",
           "save_task_costs", "profile_from_costs", "Prediction", "predict", "Comparison", "compare", "load_costs"]

RECOVERY_SAMPLES = 5  # reboots measured for the recovery cost
TASK_COSTS_FILE = Path(__file__).with_name("task_costs.json")  # per-board data (calibrate_task_costs)
# firmware/models/calibration*: one network, two sets of task sizes; build/<board>/dnn_<model>.elf
CALIBRATION_MODELS = ("calibration", "calibration_fine")


@dataclass(frozen=True)
class Unit:
    """One atomic unit: what runs between two commits."""

    instructions: int
    stage: int | None = None  # DNN stage (from costs.json), None if unknown
    preserved_bytes: int | None = None  # non-volatile bytes its commit preserves (costs.json)


@dataclass(frozen=True)
class Profile:
    """A firmware's costs in instructions, from one continuous-power run."""

    board: str
    start: int  # power-on to the job's first commit
    units: tuple[Unit, ...]
    finish: int  # last commit to the end of the run
    recovery: int  # a reboot's instructions before the unit in flight runs again
    costs_file: str | None = None
    source: str = "profile"  # "profile": measured on this firmware; "cost model": predicted from costs_file

    @property
    def instructions(self) -> int:
        """Under continuous power."""
        return self.start + sum(u.instructions for u in self.units) + self.finish

    def to_json(self) -> dict:
        largest = max(self.units, key=lambda u: u.instructions, default=None)
        return {"board": self.board, "start": self.start, "finish": self.finish, "recovery": self.recovery,
                "units": len(self.units), "continuous_instructions": self.instructions,
                "largest_unit": None if largest is None else
                {"instructions": largest.instructions, "stage": largest.stage},
                "costs_file": self.costs_file, "source": self.source}


def load_costs(elf: str | Path) -> dict | None:
    """The DNN generator's cost report next to `elf` (dnn_<model>.costs.json), or None."""
    path = Path(elf).with_suffix(".costs.json")
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EmuError(f"cannot read the cost report {path}: {exc}; rebuild the firmware (make -C firmware)") from None


def _unit_labels(costs: dict, count: int, path: Path) -> list[tuple[int | None, int | None]]:
    """(stage, preserved bytes) of each unit along the final path of the cost report."""
    stages = {s["stage"]: s for s in costs["stages"]}
    labels: list[tuple[int | None, int | None]] = []
    for index in costs["paths"]["final"]["stages"]:
        s = stages[index]
        per_commit = s["per_commit"]["nv_writes"]
        per = sum(per_commit.values())
        total = sum(s["nv_writes"].values())
        for j in range(s["commits"]):
            labels.append((index, per if j < s["commits"] - 1 else total - per * (s["commits"] - 1)))
    if len(labels) != count:
        raise EmuError(f"{path.name} lists {len(labels)} commits on the final path but the firmware commits "
                       f"{count} tasks: the cost report does not match the ELF; rebuild (make -C firmware)")
    return labels


def profile_firmware(make_machine, costs: dict | None = None, costs_file: str | None = None) -> Profile:
    """Profile the firmware that `make_machine()` builds (a new machine each call: the
    same ELF, options and input): one continuous-power run stopped at every commit, and
    `RECOVERY_SAMPLES` runs that fail power right after a commit and reboot."""
    machine = make_machine()
    sites = commit_sites(machine)
    commits = replay_commits(machine, [], None, sites)
    if machine.engine.pc not in machine.exits:
        raise EmuError(f"{machine.image.path.name} did not complete under continuous power "
                       f"(stopped at pc {machine.engine.pc:#x}): nothing to model")
    if len(commits) < 2:
        raise EmuError(f"{machine.image.path.name} made {len(commits)} task commit(s): the model needs a job "
                       "of runtime tasks (firmware/runtime/rt.h)")
    counts = [k for _, k in commits]
    total = machine.instructions
    sizes = [b - a for a, b in zip(counts, counts[1:])]
    labels = _unit_labels(costs, len(sizes), Path(costs_file or "costs.json")) if costs else [(None, None)] * len(sizes)
    # recovery: fail right after commit j; the reboot reaches commit j+1 after recovery + unit j.
    # Not after the first commit (j = 0): the job start commits before the runtime marks the
    # job as running, so a failure there starts the job over.
    last = len(sizes) - 1
    samples = sorted({1 + round(i * (last - 1) / max(RECOVERY_SAMPLES - 1, 1)) for i in range(RECOVERY_SAMPLES)}
                     ) if last >= 1 else [0]
    extra = []
    for j in samples:
        m = make_machine()
        again = [k for period, k in replay_commits(m, [counts[j]], None, sites) if period == 1]
        extra.append(again[0] - sizes[j])
    recovery = round(sum(extra) / len(extra))
    units = tuple(Unit(n, stage, nv) for n, (stage, nv) in zip(sizes, labels))
    return Profile(machine.board.name, counts[0], units, total - counts[-1], recovery, costs_file)


@dataclass(frozen=True)
class TaskCosts:
    """A board's instructions per operation of a DNN task (firmware/dnn/taskops.py's names),
    and the runtime's fixed costs, fitted on the calibration models."""

    board: str
    per_op: dict  # operation name -> instructions per count
    start: int  # power-on to the job's first commit
    finish: int  # last commit to the end of the run (the RESULT frame)
    recovery: int  # a reboot's instructions before the unit in flight runs again
    calibration: dict = field(default_factory=dict)  # where the figures come from, and the fit's residuals

    def unit(self, ops: dict) -> float:
        """Predicted instructions of a task with operation counts `ops`."""
        unknown = sorted(set(ops) - set(self.per_op))
        if unknown:
            raise EmuError(f"the {self.board} task costs have no figure for {', '.join(unknown)}: the calibration "
                           "models do not exercise that kernel; use `emu model --profile`")
        return sum(n * self.per_op[k] for k, n in ops.items())

    def to_json(self) -> dict:
        return {"per_op": self.per_op, "start": self.start, "finish": self.finish, "recovery": self.recovery,
                "calibration": self.calibration}


def _path_tasks(costs: dict, path: str = "final") -> list[tuple[int, dict]]:
    """(stage, operation counts) of each task along a path of the cost report."""
    stages = {s["stage"]: s for s in costs["stages"]}
    out = []
    for index in costs["paths"][path]["stages"]:
        tasks = stages[index].get("tasks", "missing")
        if tasks == "missing":
            raise EmuError(f"the cost report of {costs.get('model')} has no per-task operation counts: it was "
                           "written by an older generator; rebuild (make -C firmware)")
        if tasks is None:
            raise EmuError(f"stage {index} of {costs.get('model')} runs under a non-default design, which the cost "
                           "model does not cover (it covers the default element loop); use `emu model --profile`")
        out += [(index, ops) for ops in tasks]
    return out


def calibrate_task_costs(elfs: list[str | Path]) -> TaskCosts:
    """Fit a board's per-operation costs on the calibration models' ELFs (least squares of
    the task instructions of one continuous-power profile each on the tasks' operation
    counts); the runtime's start, finish and recovery are the first one's."""
    import numpy as np

    tasks, instructions, profiles, models = [], [], [], []
    for elf in map(Path, elfs):
        costs = load_costs(elf)
        if costs is None or costs.get("model") not in CALIBRATION_MODELS:
            raise EmuError(f"{elf} is not a calibration model (dnn_{{{','.join(CALIBRATION_MODELS)}}}.elf with its "
                           "costs.json); build them with make -C firmware")
        profile = profile_firmware(lambda: Machine.from_elf(elf), costs, str(elf.with_suffix(".costs.json")))
        tasks += [ops for _, ops in _path_tasks(costs)]
        instructions += [u.instructions for u in profile.units]
        profiles.append(profile)
        models.append(costs["model"])
    if len({p.board for p in profiles}) != 1:
        raise EmuError("calibrate one board at a time: the ELFs are built for different boards")
    names = sorted({k for ops in tasks for k in ops})
    a = np.array([[ops.get(k, 0) for k in names] for ops in tasks], dtype=float)
    y = np.array(instructions, dtype=float)
    rank = int(np.linalg.matrix_rank(a))
    if rank < len(names):  # a figure the calibration cannot tell apart from another one
        raise EmuError(f"the calibration models' tasks determine only {rank} of {len(names)} operation costs; "
                       "vary their stages (firmware/dnn/train.py: make_calibration)")
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    residual = (a @ coef - y) / y
    first = profiles[0]
    return TaskCosts(first.board, {k: round(float(c), 3) for k, c in zip(names, coef)}, first.start, first.finish,
                     first.recovery,
                     {"models": models, "tasks": len(tasks), "instructions": sum(p.instructions for p in profiles),
                      "max_task_error": round(float(np.abs(residual).max()), 4),
                      "rms_task_error": round(float(np.sqrt((residual ** 2).mean())), 4)})


def load_task_costs(board: str, path: str | Path | None = None) -> TaskCosts:
    """The stored per-operation costs of `board` (task_costs.json)."""
    path = Path(path or TASK_COSTS_FILE)
    try:
        data = json.loads(path.read_text())[board]
    except (OSError, ValueError) as exc:
        raise EmuError(f"cannot read the task costs {path}: {exc}") from None
    except KeyError:
        raise EmuError(f"no task costs for board {board} in {path}: calibrate it (python -m emu.power.model "
                       "calibrate build)") from None
    return TaskCosts(board, data["per_op"], data["start"], data["finish"], data["recovery"], data["calibration"])


def save_task_costs(costs: list[TaskCosts], path: str | Path | None = None) -> Path:
    """Write the boards' costs (other boards already in the file are kept)."""
    path = Path(path or TASK_COSTS_FILE)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update({c.board: c.to_json() for c in costs})
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path


def profile_from_costs(costs: dict, task_costs: TaskCosts, costs_file: str | None = None) -> Profile:
    """The predicted profile of DNN firmware: each task along the final path from its
    operation counts (no emulation of that firmware)."""
    tasks = _path_tasks(costs)
    preserved = _unit_labels(costs, len(tasks), Path(costs_file or "costs.json"))
    units = [Unit(round(task_costs.unit(ops)), stage, nv) for (stage, ops), (_, nv) in zip(tasks, preserved)]
    return Profile(task_costs.board, task_costs.start, tuple(units), task_costs.finish, task_costs.recovery,
                   costs_file, "cost model")


@dataclass
class Prediction:
    """What the model predicts for one power configuration."""

    outcome: str  # completed | non_termination | starved | timeout
    latency: float | None  # s, recharges included (None unless completed)
    elapsed: float  # s of device time predicted
    energy: float  # J used by the MCU
    instructions: int
    power_cycles: int  # power-on periods
    on_time: float
    off_time: float
    initial_charge: float
    budget: int | None  # instructions of the smallest full power-on period (from v_on to v_off)
    largest_unit: int  # recovery + the largest unit, instructions
    fits: bool  # every atomic unit (with the recovery before it) fits one power cycle
    wasted: int  # instructions of units cut by a failure (re-execution)
    recovery: int  # instructions spent recovering after reboots
    failing_unit: int | None = None  # index of the unit that never fits (non_termination)
    breakdown: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"outcome": self.outcome, "latency_s": self.latency, "elapsed_s": self.elapsed,
                "energy_j": self.energy, "instructions": self.instructions, "power_cycles": self.power_cycles,
                "on_time_s": self.on_time, "off_time_s": self.off_time, "initial_charge_s": self.initial_charge,
                "period_budget": self.budget, "largest_unit": self.largest_unit, "fits": self.fits,
                "reexecuted_instructions": self.wasted, "recovery_instructions": self.recovery,
                "failing_unit": self.failing_unit, "breakdown": self.breakdown}


def predict(profile: Profile, config: PowerConfig, max_periods: int = 1_000_000) -> Prediction:
    """Walk the profile's units through the power-on periods that `config` gives."""
    circuit = config.circuit(profile.board)
    mcu = circuit.mcu
    t_instr = mcu.instruction_time
    max_time = math.inf if config.max_time is None else config.max_time
    # the work, in order: start, units, finish; a reboot costs `start` again until the first commit
    work = [profile.start] + [u.instructions for u in profile.units] + [profile.finish]
    state = circuit.start()
    done = 0  # pieces of `work` completed (committed)
    on_time = off_time = initial = 0.0
    periods = 0
    total = wasted = recovered = 0
    budgets: list[int] = []
    outcome, failing = None, None
    while outcome is None:
        charged, event = circuit.evolve(state, running=False, until=max_time)
        if periods:
            off_time += charged.time - state.time
        else:
            initial = charged.time - state.time
        state = charged
        if event == Event.NEVER:
            outcome = "starved"
            break
        if event == Event.TIME or periods >= max_periods:
            outcome = "timeout"
            break
        crossing, event = circuit.evolve(state, running=True, until=max_time)
        budget = None if event != Event.TARGET else _instructions_within(crossing.time - state.time, t_instr)
        periods += 1
        used = 0
        if periods > 1 and done > 0:
            used = profile.recovery
            recovered += min(profile.recovery, budget if budget is not None else profile.recovery)
        progress = False
        while done < len(work) and (budget is None or used + work[done] <= budget):
            used += work[done]
            done += 1
            progress = True
        if done == len(work):  # completed in this period
            end, _ = circuit.evolve(state, running=True, until=state.time + used * t_instr)
            on_time += end.time - state.time
            total += used
            state = end
            outcome = "completed"
            break
        if budget is None:  # power never fails but the work cannot finish: time ran out
            outcome = "timeout"
            break
        budgets.append(budget)
        wasted += budget - used
        total += budget
        on_time += crossing.time - state.time
        state = crossing
        if not progress:
            outcome, failing = "non_termination", done
    overhead = profile.recovery
    largest = max([profile.start] + [overhead + n for n in work[1:]])
    budget = min(budgets) if budgets else None
    energy = total * mcu.instruction_energy
    per_stage: dict[str, int] = {}
    for u in profile.units:
        key = "runtime" if u.stage is None else f"stage {u.stage}"
        per_stage[key] = per_stage.get(key, 0) + u.instructions
    breakdown = {"compute_and_preservation": sum(work), "recovery": recovered,
                 "reexecution": wasted, "per_stage": per_stage}
    return Prediction(outcome, state.time if outcome == "completed" else None, state.time, energy, total, periods,
                      on_time, off_time, initial, budget, largest, budget is None or largest <= budget,
                      wasted, recovered, failing if outcome == "non_termination" else None, breakdown)


@dataclass
class Comparison:
    """Prediction and emulation side by side."""

    prediction: Prediction
    emulation: object  # EnergyRunResult

    def errors(self) -> dict[str, float | None]:
        """Relative errors (prediction - emulation) / emulation."""
        e, p = self.emulation, self.prediction

        def rel(a, b):
            return None if a is None or b in (None, 0) else (a - b) / b

        return {"latency": rel(p.latency, e.latency), "energy": rel(p.energy, e.energy),
                "power_cycles": rel(p.power_cycles, len(e.periods)),
                "instructions": rel(p.instructions, e.result.instructions)}

    def rows(self) -> list[tuple[str, object, object, float | None]]:
        e, p, err = self.emulation, self.prediction, self.errors()
        return [("outcome", p.outcome, e.outcome, None),
                ("latency s", p.latency, e.latency, err["latency"]),
                ("energy J", p.energy, e.energy, err["energy"]),
                ("power cycles", p.power_cycles, len(e.periods), err["power_cycles"]),
                ("instructions", p.instructions, e.result.instructions, err["instructions"])]

    def to_json(self) -> dict:
        return {"prediction": self.prediction.to_json(), "emulation": self.emulation.energy_json()
                | {"outcome": self.emulation.outcome, "instructions": self.emulation.result.instructions,
                   "power_cycles": len(self.emulation.periods)},
                "relative_error": self.errors()}

    def table(self) -> str:
        lines = [f"{'':14} {'prediction':>14} {'emulation':>14} {'error':>8}"]
        for name, p, e, err in self.rows():
            fmt = (lambda v: f"{v:.6g}" if isinstance(v, float) else ("-" if v is None else str(v)))
            lines.append(f"{name:14} {fmt(p):>14} {fmt(e):>14} {'' if err is None else f'{err:+.1%}':>8}")
        return "\n".join(lines)


def compare(make_machine, config: PowerConfig, profile: Profile | None = None,
            costs: dict | None = None) -> Comparison:
    """Predict with the profile (made with `make_machine` if not given) and emulate on a
    new machine (`run_energy`)."""
    profile = profile or profile_firmware(make_machine, costs)
    return Comparison(predict(profile, config), run_energy(make_machine(), config))


def main(argv: list[str] | None = None) -> int:
    """python -m emu.power.model calibrate BUILD: fit every board's task costs on
    BUILD/<board>/dnn_calibration*.elf and store them (task_costs.json)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "calibrate":
        print("usage: python -m emu.power.model calibrate BUILD_DIR", file=sys.stderr)
        return 2
    from ..boards import BOARDS

    fitted = []
    for board in sorted(BOARDS):
        elfs = [Path(args[1]) / board / f"dnn_{name}.elf" for name in CALIBRATION_MODELS]
        if all(elf.exists() for elf in elfs):
            fitted.append(calibrate_task_costs(elfs))
            print(f"{board}: {fitted[-1].calibration}")
    print(f"wrote {save_task_costs(fitted)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

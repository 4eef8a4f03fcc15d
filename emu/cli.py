"""The `emu` command line. Front end only: all logic lives in `emu.machine`.

Exit status: 0 completed, 1 crash or timeout, 2 usage or input error (one line, no
traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from .boards import BOARDS
from .errors import EmuError
from .machine import DEFAULT_MAX_INSTRUCTIONS, VOLATILE_INIT, Machine

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors exit 2 with one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def _counts(text: str) -> list[int]:
    try:
        values = [int(part, 0) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K1,K2,... (non-negative integers), got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected K1,K2,... (non-negative integers), got {text!r}")
    return values


def _count(text: str) -> int:
    try:
        value = int(float(text)) if "e" in text.lower() else int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _add_power_flags(group) -> None:
    """The power configuration flags of `emu run` (docs/energy.md), for other subcommands."""
    group.add_argument("--power", type=Path, metavar="CONFIG", help="power configuration (TOML)")
    group.add_argument("--harvester", metavar="SPEC", help="const:1mW, current:2mA, square:PERIOD,DUTY,POWER or trace:FILE")
    group.add_argument("--capacitor", metavar="C", help="storage capacitance, e.g. 100uF")
    group.add_argument("--v-on", metavar="V", help="supervisor turn-on voltage, e.g. 2.8")
    group.add_argument("--v-off", metavar="V", help="brown-out voltage, e.g. 1.9")
    group.add_argument("--leakage", metavar="I|R", help="capacitor leakage, e.g. 1uA or 10MOhm")
    group.add_argument("--efficiency", metavar="E", help="regulator efficiency, e.g. 0.85")
    group.add_argument("--v-warn", metavar="V", help="power-warning trip level of the board's comparator "
                       "input (MSP430 COMP_E, STM32 PVD_IN), e.g. 2.2")


def _power_config(args: argparse.Namespace, required: bool = True):
    """The PowerConfig of --power and the flags; None if none given and not `required`."""
    flags = (args.power, args.harvester, args.capacitor, args.v_on, args.v_off, args.leakage, args.efficiency,
             args.v_warn)
    if not any(flag is not None for flag in flags):
        if required:
            raise EmuError("give a power configuration: --power CONFIG or --harvester/--capacitor/--v-on/--v-off")
        return None
    from .power import load_power_config, power_config

    return power_config(harvester=args.harvester, capacitance=args.capacitor, v_on=args.v_on, v_off=args.v_off,
                        leakage=args.leakage, efficiency=args.efficiency, v_warn=args.v_warn,
                        base=load_power_config(args.power) if args.power else None)


def _power_flags(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The power flags as given, for reproducer commands."""
    return tuple((flag, str(value)) for flag, value in (
        ("--power", args.power), ("--harvester", args.harvester), ("--capacitor", args.capacitor),
        ("--v-on", args.v_on), ("--v-off", args.v_off), ("--leakage", args.leakage),
        ("--efficiency", args.efficiency), ("--v-warn", args.v_warn)) if value is not None)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="emu", description="Emulate batteryless-device firmware with exact power failures.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run an ELF through power failures")
    run.add_argument("firmware", type=Path, metavar="FIRMWARE.elf")
    run.add_argument("--board", choices=sorted(BOARDS), help="default: from the ELF machine type")
    run.add_argument("--fail-after", type=_counts, default=[], metavar="K1,K2,...",
                     help="power-on period i fails after Ki instructions; then power stays on")
    run.add_argument("--until", metavar="SYM|ADDR", help="also complete when PC reaches this")
    run.add_argument("--max-instructions", type=_count, default=DEFAULT_MAX_INSTRUCTIONS, metavar="N",
                     help="timeout after N instructions in total (default 10^9)")
    run.add_argument("--volatile-init", choices=VOLATILE_INIT, default="random",
                     help="what SRAM and registers hold at power-on (default random)")
    run.add_argument("--seed", type=_count, default=0, help="seed for --volatile-init random (default 0)")
    run.add_argument("--read", action="append", default=[], metavar="SYMBOL[:NBYTES]",
                     help="report these bytes after the run (repeatable)")
    run.add_argument("--uart-in", type=Path, metavar="FILE", help="bytes the UART receives")
    run.add_argument("--vector", type=Path, metavar="DIR",
                     help="write a test vector's input into the firmware's input buffer first")
    energy = run.add_argument_group("energy-driven power failures (docs/energy.md; instead of --fail-after)")
    _add_power_flags(energy)
    energy.add_argument("--plot", type=Path, metavar="FILE.png",
                        help="draw capacitor voltage against time, with power failures (PNG)")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("-v", "--verbose", action="store_true", help="report unmodeled peripheral registers")
    camp = sub.add_parser("campaign", help="fail power after every (or some) instruction k and check the outcome")
    camp.add_argument("firmware", type=Path, metavar="FIRMWARE.elf")
    camp.add_argument("--board", choices=sorted(BOARDS), help="default: from the ELF machine type")
    strategy = camp.add_mutually_exclusive_group(required=True)
    strategy.add_argument("--exhaustive", action="store_true", help="one trial per k = 1 ... N-1")
    strategy.add_argument("--range", metavar="A:B", help="trials for A <= k < B")
    strategy.add_argument("--sample", type=_count, metavar="M", help="M distinct k drawn with --seed")
    strategy.add_argument("--double", type=_count, metavar="M",
                          help="M trials with two failures, the second early in the reboot (recovery)")
    strategy.add_argument("--schedule", type=Path, metavar="FILE",
                          help="one trial per line K1,K2,... of FILE (as emu run --fail-after)")
    strategy.add_argument("--nv-writes", action="store_true",
                          help="every k right before and right after an instruction that writes non-volatile memory")
    strategy.add_argument("--function", metavar="NAME",
                          help="every k whose next instruction lies in function NAME")
    strategy.add_argument("--sweep", action="append", metavar="NAME=V1,V2,...",
                          help="energy-driven trials over the cartesian product of the --sweep lists (repeatable; "
                               "NAME: capacitance, harvester, v_on, v_off, leakage, efficiency, offset), "
                               "with --power or the power flags as the base (docs/campaigns.md)")
    _add_power_flags(camp.add_argument_group("power configuration for --sweep (docs/energy.md)"))
    camp.add_argument("--observe", action="append", default=[], metavar="SYMBOL[:NBYTES]",
                      help="outputs compared with the golden run (default: UART bytes after the last boot)")
    camp.add_argument("--recovery-window", type=_count, default=2000, metavar="W",
                      help="--double: the second failure falls in the first W instructions after "
                           "the boot code reaches main (default 2000)")
    camp.add_argument("--vector", type=Path, metavar="DIR",
                      help="run on a test vector's input; trials must also give its expected output")
    camp.add_argument("--max-factor", type=float, default=10.0, metavar="F",
                      help="timeout after F x N instructions in total (default 10)")
    camp.add_argument("--seed", type=_count, default=0, help="seed for --sample and --volatile-init random")
    camp.add_argument("--volatile-init", choices=VOLATILE_INIT, default="random")
    camp.add_argument("--workers", type=_count, default=os.cpu_count() or 1, metavar="N",
                      help="worker processes (default: all cores)")
    camp.add_argument("--scheduler", metavar="ADDRESS",
                      help="run the trials on a Dask distributed cluster (e.g. tcp://10.0.0.5:8786)")
    camp.add_argument("--results", type=Path, metavar="FILE",
                      help="append trials to FILE as they finish (default .emu/campaigns/<firmware>-<hash>.jsonl)")
    camp.add_argument("--resume", action="store_true",
                      help="keep the trials already in the results file and run only the others")
    camp.add_argument("--report", type=Path, metavar="DIR", help="write an HTML report to DIR/index.html")
    camp.add_argument("--no-prune", dest="prune", action="store_false",
                      help="run every trial to its end instead of stopping it once it converges with an "
                           "earlier one (same results, slower; docs/campaigns.md)")
    camp.add_argument("--json", action="store_true", help="print one JSON object")
    model = sub.add_parser("model", help="predict intermittent latency, energy and power cycles of task-based "
                                         "firmware (iNAS's model) and compare with an energy-driven emulation")
    model.add_argument("firmware", type=Path, metavar="FIRMWARE.elf")
    model.add_argument("--board", choices=sorted(BOARDS), help="default: from the ELF machine type")
    _add_power_flags(model.add_argument_group("power configuration (docs/energy.md)"))
    model.add_argument("--no-emulation", action="store_true", help="print the prediction only")
    model.add_argument("--profile", action="store_true",
                       help="take each unit's instructions from a continuous-power emulation of this firmware "
                            "instead of predicting them from its cost report (exact, but not a prediction)")
    model.add_argument("--volatile-init", choices=VOLATILE_INIT, default="random")
    model.add_argument("--seed", type=_count, default=0)
    model.add_argument("--json", action="store_true", help="print one JSON object")
    gdb = sub.add_parser("gdb", help="serve a GDB connection to the emulated board (power failures included)")
    gdb.add_argument("firmware", type=Path, metavar="FIRMWARE.elf")
    gdb.add_argument("--board", choices=sorted(BOARDS), help="default: from the ELF machine type")
    gdb.add_argument("--fail-after", type=_counts, default=[], metavar="K1,K2,...",
                     help="power schedule as for emu run: GDB sees SIGPWR before each failure")
    gdb.add_argument("--port", type=_count, default=3333, help="TCP port on 127.0.0.1 (default 3333)")
    gdb.add_argument("--volatile-init", choices=VOLATILE_INIT, default="random")
    gdb.add_argument("--seed", type=_count, default=0)
    war = sub.add_parser("war", help="find write-after-read (idempotence) hazards between commit points")
    war.add_argument("firmware", type=Path, metavar="FIRMWARE.elf")
    war.add_argument("--board", choices=sorted(BOARDS), help="default: from the ELF machine type")
    war.add_argument("--observe", action="append", default=[], metavar="SYMBOL[:NBYTES]",
                     help="mark hazards on this symbol as observed (repeatable)")
    war.add_argument("--commit", action="append", metavar="NAME",
                     help="commit point: a function (region ends at its call) or a variable (region ends after "
                          "each write to it); repeatable; default: the runtime's commit words")
    war.add_argument("--trust", action="append", metavar="FUNCTION",
                     help="a function that updates non-volatile data under its own log (its writes are "
                          "'guarded'); repeatable; default: the runtime's undo log")
    war.add_argument("--ignore", action="append", metavar="SYMBOL",
                     help="a variable not to analyse (repeatable; default: the runtime's boot counter)")
    war.add_argument("--no-volatile", action="store_true",
                     help="do not report static SRAM variables carried across a commit")
    war.add_argument("--max-instructions", type=_count, default=DEFAULT_MAX_INSTRUCTIONS)
    war.add_argument("--json", action="store_true", help="print one JSON object")
    explain = sub.add_parser("explain", help="why a failure breaks the result: golden and failing runs side by side")
    explain.add_argument("firmware", type=Path, metavar="FIRMWARE.elf")
    explain.add_argument("--board", choices=sorted(BOARDS), help="default: from the ELF machine type")
    explain.add_argument("--fail-after", type=_counts, required=True, metavar="K1,K2,...",
                         help="the failing run's power schedule, as for emu run (e.g. a campaign's reproducer)")
    explain.add_argument("--observe", action="append", default=[], metavar="SYMBOL[:NBYTES]",
                         help="list differences in this symbol first (repeatable)")
    explain.add_argument("--commit", action="append", metavar="NAME", help="commit point, as for emu war")
    explain.add_argument("--ignore", action="append", metavar="SYMBOL",
                         help="a variable that may differ (repeatable; default: the runtime's boot counter)")
    explain.add_argument("--volatile-init", choices=VOLATILE_INIT, default="random")
    explain.add_argument("--seed", type=_count, default=0)
    explain.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"campaign": _campaign, "gdb": _gdb, "model": _model, "war": _war,
                "explain": _explain}.get(args.command, _run)(args)
    except EmuError as exc:
        print(f"emu: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head: not an error of ours
        sys.stdout = open(os.devnull, "w")
        return 0


def _run(args: argparse.Namespace) -> int:
    uart_input = b""
    if args.uart_in is not None:
        try:
            uart_input = args.uart_in.read_bytes()
        except OSError as exc:
            raise EmuError(f"cannot read --uart-in file {args.uart_in}: {exc.strerror}") from None
    machine = Machine.from_elf(args.firmware, args.board, volatile_init=args.volatile_init, seed=args.seed,
                               until=args.until, max_instructions=args.max_instructions,
                               uart_input=uart_input, observe=args.read, verbose=args.verbose)
    if args.vector is not None:
        from .vectors import Vector, load_vector

        load_vector(machine, Vector.read(args.vector))
    energy_flags = (args.power, args.harvester, args.capacitor, args.v_on, args.v_off, args.leakage, args.efficiency,
                    args.v_warn)
    if args.plot and not any(flag is not None for flag in energy_flags):
        raise EmuError("--plot draws an energy-driven run: give --power or --harvester/--capacitor/--v-on/--v-off")
    if any(flag is not None for flag in energy_flags):
        if args.fail_after:
            raise EmuError("--fail-after and an energy-driven run (--power/--harvester/...) exclude each other")
        from .power import load_power_config, power_config, run_energy

        config = power_config(harvester=args.harvester, capacitance=args.capacitor, v_on=args.v_on,
                              v_off=args.v_off, leakage=args.leakage, efficiency=args.efficiency,
                              v_warn=args.v_warn, base=load_power_config(args.power) if args.power else None)
        energy = run_energy(machine, config)
        if args.plot:
            from .power.plot import plot_energy_run

            plot_energy_run(energy, args.plot, commits=_commit_times(args, uart_input, energy))
        print(json.dumps(energy.to_json()) if args.json else "\n".join([_summary(energy.result), *energy.summary()]))
        return 0 if energy.outcome == "completed" else 1
    result = machine.run(fail_after=args.fail_after)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(_summary(result))
    return 0 if result.outcome == "completed" else 1


def _campaign(args: argparse.Namespace) -> int:
    from .campaign import Campaign, CampaignSpec, Strategy, execute
    from .vectors import Vector
    from .results import ResultStore

    vector = Vector.read(args.vector) if args.vector else None
    machine = Machine.from_elf(args.firmware, args.board, volatile_init=args.volatile_init, seed=args.seed)
    base = _power_config(args, required=args.sweep is not None)
    if base is not None and args.sweep is None:
        raise EmuError("a power configuration (--power/--harvester/...) is for energy-driven campaigns: add --sweep")
    if args.sweep is not None:
        from .campaign import EnergyCampaign, Sweep

        sweep = Sweep.parse(base, args.sweep, _power_flags(args))
        campaign = EnergyCampaign(machine, sweep, observe=args.observe, max_factor=args.max_factor, vector=vector)
    else:
        sweep = None
        campaign = Campaign(machine, observe=args.observe, max_factor=args.max_factor, vector=vector,
                            prune=args.prune)
    if sweep is not None:
        strategy = None  # the trials are the sweep's combinations
    elif args.exhaustive:
        strategy = Strategy("exhaustive")
    elif args.sample is not None:
        strategy = Strategy("sample", count=args.sample)
    elif args.double is not None:
        strategy = Strategy("double", count=args.double, window=args.recovery_window)
    elif args.schedule is not None:
        strategy = Strategy("schedule", path=args.schedule)
    elif args.function is not None:
        strategy = Strategy("function", name=args.function)
    elif args.nv_writes:
        strategy = Strategy("nv-writes")
    else:
        strategy = Strategy.parse(f"range:{args.range}")
    points = sweep.points() if sweep is not None else strategy.points(campaign, seed=args.seed)
    spec = CampaignSpec(args.firmware, machine.board.name, tuple(args.observe), args.max_factor,
                        args.volatile_init, args.seed, vector, sweep, prune=args.prune)
    header = spec.header(machine.board.name)
    path = args.results or Path(".emu/campaigns") / f"{args.firmware.stem}-{header['firmware_sha256'][:12]}.jsonl"
    with ResultStore(path, header, resume=args.resume) as store:
        try:
            result = execute(campaign, spec, points, workers=args.workers, store=store,
                             scheduler=args.scheduler)
        except KeyboardInterrupt:
            print(f"emu: interrupted; {len(store.finished)} trials are saved in {path}: "
                  "run the same command with --resume to continue", file=sys.stderr)
            return 130
    print(json.dumps(result.to_json()) if args.json else result.summary())
    if args.report:
        from .report import write_report

        page = write_report(result, args.report)
        if not args.json:
            print(f"report: {page}")
    return 0 if result.all_correct else 1


def _commit_times(args: argparse.Namespace, uart_input: bytes, energy) -> list[tuple[float, float]]:
    """The runtime's commits in the energy run, replayed on a new machine (none if the
    firmware does not use the runtime's tasks)."""
    from .power.commits import commit_times

    machine = Machine.from_elf(args.firmware, args.board, volatile_init=args.volatile_init, seed=args.seed,
                               until=args.until, max_instructions=args.max_instructions,
                               uart_input=uart_input, observe=args.read)
    if "rt_active" not in machine.image.symbols:
        return []
    if args.vector is not None:
        from .vectors import Vector, load_vector

        load_vector(machine, Vector.read(args.vector))
    return commit_times(machine, energy)


def _model(args: argparse.Namespace) -> int:
    from .power.model import compare, load_costs, load_task_costs, predict, profile_firmware, profile_from_costs

    config = _power_config(args)

    def make_machine() -> Machine:
        return Machine.from_elf(args.firmware, args.board, volatile_init=args.volatile_init, seed=args.seed)

    costs = load_costs(args.firmware)
    costs_file = str(args.firmware.with_suffix(".costs.json")) if costs else None
    if args.profile:
        profile = profile_firmware(make_machine, costs, costs_file)
    elif costs is None:
        raise EmuError(f"no cost report {args.firmware.with_suffix('.costs.json').name} next to {args.firmware.name}: "
                       "the prediction needs the DNN generator's per-task costs; for other task-based firmware "
                       "use --profile (unit costs from an emulation)")
    else:
        profile = profile_from_costs(costs, load_task_costs(make_machine().board.name), costs_file)
    if args.no_emulation:
        prediction = predict(profile, config)
        print(json.dumps({"profile": profile.to_json(), "prediction": prediction.to_json()}) if args.json else
              "\n".join(f"{k}: {v}" for k, v in prediction.to_json().items() if k != "breakdown"))
        return 0
    comparison = compare(make_machine, config, profile)
    if args.json:
        print(json.dumps({"profile": profile.to_json(), **comparison.to_json()}))
    else:
        p = comparison.prediction
        how = "predicted from the cost report" if profile.source == "cost model" else "measured on this firmware"
        print(f"{args.firmware.name} on {profile.board}: {len(profile.units)} atomic units ({how}), "
              f"{profile.instructions:,} instructions under continuous power, recovery {profile.recovery} "
              f"per reboot, largest unit {p.largest_unit:,} with recovery, period budget "
              f"{'unlimited' if p.budget is None else f'{p.budget:,}'}: "
              f"{'every unit fits' if p.fits else 'a unit does NOT fit one power cycle'}")
        print(comparison.table())
    return 0 if comparison.prediction.outcome == comparison.emulation.outcome else 1


def _gdb(args: argparse.Namespace) -> int:
    from .gdbstub import GdbStub

    machine = Machine.from_elf(args.firmware, args.board, volatile_init=args.volatile_init, seed=args.seed)
    stub = GdbStub(machine, args.fail_after)
    gdb = "gdb-multiarch" if machine.board.arch == "cortex-m" else "msp430-elf-gdb"
    try:
        stub.serve(args.port, on_listen=lambda port: print(
            f"emu gdb: {machine.board.name} waiting for GDB on 127.0.0.1:{port}\n"
            f"  {gdb} {args.firmware} -ex 'target remote 127.0.0.1:{port}'", flush=True))
    except OSError as exc:
        raise EmuError(f"cannot serve GDB on 127.0.0.1:{args.port}: {exc.strerror}") from None
    return 0


def _war(args: argparse.Namespace) -> int:
    from .war import find_hazards

    machine = Machine.from_elf(args.firmware, args.board)
    report = find_hazards(machine, commits=args.commit, trusted=args.trust, ignore=args.ignore,
                          observe=args.observe, volatile=not args.no_volatile,
                          max_instructions=args.max_instructions)
    print(json.dumps(report.to_json(), indent=1) if args.json else report.format_text())
    return 1 if report.hazards else 0


def _explain(args: argparse.Namespace) -> int:
    from .explain import explain

    result = explain(args.firmware, args.fail_after, board=args.board, observe=args.observe, seed=args.seed,
                     volatile_init=args.volatile_init, commits=args.commit, ignore=args.ignore)
    print(json.dumps(result.to_json(), indent=1) if args.json else result.format_text())
    return 0


def _summary(result) -> str:
    lines = [f"{result.outcome}: {result.instructions} instructions on {result.board}, "
             f"{result.power_failures} power failure(s), stopped at pc {result.stop_pc:#x}"]
    if len(result.power_cycles) > 1:
        lines.append("power-on periods: " + ", ".join(str(c) for c in result.power_cycles))
    if result.error:
        lines.append(f"error: {result.error}")
    if result.uart:
        text = result.uart.decode("ascii", "backslashreplace")
        lines.append("uart: " + text.rstrip("\n").replace("\n", "\n      "))
    for name, data in result.reads.items():
        lines.append(f"{name} = {data.hex()}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

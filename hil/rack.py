"""Rack configuration: a YAML file describing boards, validated, and opened into `Board`s.

docs/rack.md documents the schema; examples/rack-real.yaml and examples/rack-virtual.yaml
are complete examples. In short::

    rack: nightly                 # optional name
    build: ../build               # firmware ELFs: <build>/<board type>/<firmware>.elf
    defaults: {off_time_ms: 100}  # optional, merged into every board
    boards:
      - name: fr5994-a
        type: msp430fr5994        # the emulator's board name
        clock_hz: 8000000         # optional (default: the board's clock)
        console: {port: /dev/serial/by-id/usb-TI_..., baudrate: 115200}
        power:
          supply: {model: rigol-dp832, resource: "TCPIP::192.0.2.5::5555::SOCKET", channel: 1}
          voltage: 3.3
          current_limit: 0.05
          switch: {kind: ftdi, url: "ftdi://ftdi:232h/1", pin: 5}   # optional fast cut
        flasher: {kind: mspdebug, driver: tilib}
      - name: virtual-a
        type: msp430fr5994
        clock_hz: 100000            # emulated time runs at this clock
        virtual: true               # an emulated board (or a mapping of its options)
        power: {supply: {model: korad-ka3005p, simulated: true}, voltage: 3.3}

Every error names the file, the key path (`boards[1].power.supply.model`) and the fix.
Relative paths (`build`) are relative to the YAML file.

`load_rack(path)` returns a `RackConfig`; `RackConfig.open_board(spec)` (inside a
`RackConfig.session()`) opens a board's drivers; for a virtual board it first starts the
emulated board and its simulated supply (hil.virtual, hil.sim) and then opens the very
drivers a real board uses on them.

Public names: `load_rack`, `parse_rack`, `RackConfig`, `BoardSpec`, `PowerSpec`,
`SupplySpec`, `SwitchSpec`, `ConsoleSpec`, `FlasherSpec`, `VirtualSpec`, `RackSession`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from emu.boards import BOARDS

from .errors import RackError

__all__ = ["load_rack", "parse_rack", "RackConfig", "BoardSpec", "PowerSpec", "SupplySpec",
           "SwitchSpec", "ConsoleSpec", "FlasherSpec", "VirtualSpec", "RackSession"]

FLASHERS = ("mspdebug", "pyocd", "bsl")
SIMULATED_SUPPLIES = ("rigol-dp832", "korad-ka3005p", "keysight-e36312a", "keysight-e3631a",
                      "siglent-spd3303x")


@dataclass(frozen=True)
class ConsoleSpec:
    port: str | None = None          # None for a virtual board (its own pty)
    baudrate: int = 115200
    reopen_timeout: float = 5.0      # seconds a vanished port may take to come back


@dataclass(frozen=True)
class SupplySpec:
    model: str
    resource: str | None = None      # None for a simulated supply
    channel: int = 1
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    simulated: bool = False


@dataclass(frozen=True)
class SwitchSpec:
    kind: str                        # "ftdi"
    url: str
    pin: int
    active_high: bool = True


@dataclass(frozen=True)
class PowerSpec:
    supply: SupplySpec
    voltage: float
    current_limit: float | None = None
    switch: SwitchSpec | None = None


@dataclass(frozen=True)
class FlasherSpec:
    kind: str                        # mspdebug | pyocd | bsl | virtual
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class VirtualSpec:
    min_voltage: float | None = None
    current: float | None = None     # amperes drawn while powered
    usb_powered: bool = False
    reenumerate: float = 0.2
    noise: Mapping[str, float] | None = None


@dataclass(frozen=True)
class BoardSpec:
    name: str
    type: str
    clock_hz: int
    power: PowerSpec
    console: ConsoleSpec
    flasher: FlasherSpec
    virtual: VirtualSpec | None = None
    build: Path = Path("build")
    off_time: float = 0.1
    result_timeout: float = 60.0
    host_timeout: float = 0.5
    host_retries: int = 2


@dataclass(frozen=True)
class RackConfig:
    path: Path
    name: str
    boards: tuple[BoardSpec, ...]

    def board(self, name: str) -> BoardSpec:
        for b in self.boards:
            if b.name == name:
                return b
        raise RackError(f"{self.path}: no board named {name!r}; boards: "
                        f"{', '.join(b.name for b in self.boards)}")

    def select(self, names: list[str] | None) -> list[BoardSpec]:
        """The boards named (all if `names` is empty or None), in rack order."""
        if not names:
            return list(self.boards)
        wanted = [self.board(n) for n in names]
        return [b for b in self.boards if b in wanted]

    def session(self) -> RackSession:
        return RackSession(self)


class RackSession:
    """Opens boards of a rack and closes everything it opened (a context manager). Virtual
    boards' ports live in a temporary directory that goes away with the session."""

    def __init__(self, config: RackConfig):
        self.config = config
        self.directory = Path(tempfile.mkdtemp(prefix="hil-rack-"))
        self.virtual: dict[str, Any] = {}   # board name -> hil.virtual.VirtualBoard
        self._opened: list[Any] = []

    def open_board(self, spec: BoardSpec):
        """Open `spec`'s drivers (starting the emulated board and simulated supply of a virtual
        one); a `hil.board.Board`."""
        from .board import Board
        from .console import SerialConsole
        from .power import FtdiGpioSwitch, SupplyPower, SwitchedPower
        from hil.psu import SupplyResource

        closers: list = []
        try:
            s = spec.power.supply
            console_port = spec.console.port
            if spec.virtual is not None:
                from hil.sim import simulate

                from .virtual import LineNoise, VirtualBoard, VirtualFlasher, couple

                v = spec.virtual
                vb = VirtualBoard(spec.name, spec.type, self.directory, clock_hz=spec.clock_hz,
                                  min_voltage=v.min_voltage, current=v.current,
                                  usb_powered=v.usb_powered, reenumerate=v.reenumerate,
                                  noise=LineNoise(**v.noise) if v.noise else None)
                closers.append(vb.close)
                sim = simulate(s.model)
                closers.append(sim.close)
                couple(vb, sim, s.channel)
                self.virtual[spec.name] = vb
                resource, console_port, flasher = sim.resource, vb.port, VirtualFlasher(vb)
            else:
                resource, flasher = s.resource, make_flasher(spec.flasher)
            supply = SupplyResource(s.model, resource, s.channel, dict(s.options))
            if spec.power.switch is not None:
                sw = spec.power.switch
                power = SwitchedPower(supply, FtdiGpioSwitch(sw.url, sw.pin, sw.active_high),
                                      spec.power.voltage, spec.power.current_limit)
            else:
                power = SupplyPower(supply, spec.power.voltage, spec.power.current_limit)
            closers.append(power.close)
            power.setup()
            console = SerialConsole(console_port, spec.console.baudrate,
                                    reopen_timeout=spec.console.reopen_timeout,
                                    name=f"board {spec.name} console {console_port}")
            closers.append(console.close)
        except BaseException:
            for close in reversed(closers):
                try:
                    close()
                except Exception:  # noqa: BLE001
                    pass
            raise
        board = Board(spec.name, spec.type, spec.clock_hz, console, power, flasher, spec.build,
                      spec.host_timeout, spec.host_retries, spec.off_time, spec.result_timeout,
                      virtual=spec.virtual is not None, closers=closers)
        self._opened.append(board)
        return board

    def close(self) -> None:
        for board in reversed(self._opened):
            board.close()
        self._opened.clear()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RackSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_flasher(spec: FlasherSpec):
    """The flasher a `FlasherSpec` describes."""
    from .flash import BslFlasher, MspdebugFlasher, PyocdFlasher

    cls = {"mspdebug": MspdebugFlasher, "pyocd": PyocdFlasher, "bsl": BslFlasher}[spec.kind]
    return cls(**dict(spec.options))


# -- validation -------------------------------------------------------------------------------

_FLASHER_KEYS = {
    "mspdebug": {"driver": str, "device": str, "args": list, "command": list, "executable": str,
                 "timeout": float, "verify": bool},
    "pyocd": {"target": str, "probe": str, "frequency": int, "options": dict},
    "bsl": {"port": str, "args": list, "command": list, "python": str, "timeout": float,
            "erase": bool},
}
_REQUIRED_FLASHER_KEYS = {"pyocd": ("target",), "bsl": ("port",)}
_TYPES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
          list: "a list", dict: "a mapping"}


class _Node:
    """A mapping being validated: typed look-ups, unknown keys reported with their path."""

    def __init__(self, file: Path, path: str, data: Any):
        self.file, self.path = file, path
        if not isinstance(data, dict):
            self.fail(f"must be a mapping (key: value lines), not {type(data).__name__}")
        self.data, self.used = data, set()

    def fail(self, problem: str, key: str | None = None, fix: str = "") -> None:
        where = f"{self.path}.{key}" if key and self.path else (key or self.path or "top level")
        raise RackError(f"{self.file}: {where}: {problem}" + (f". {fix}" if fix else ""))

    def get(self, key: str, kind: type, default: Any = None, required: bool = False,
            fix: str = "") -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                self.fail("missing", key, fix)
            return default
        value = self.data[key]
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            self.fail(f"must be {_TYPES[kind]}, not {value!r}", key, fix)
        return value

    def positive(self, key: str, kind: type, default: Any = None, required: bool = False) -> Any:
        value = self.get(key, kind, default, required)
        if value is not None and value <= 0:
            self.fail(f"must be > 0, not {value!r}", key)
        return value

    def child(self, key: str, required: bool = False, fix: str = "") -> _Node | None:
        value = self.get(key, dict, None, required, fix)
        return None if value is None else _Node(self.file, f"{self.path}.{key}" if self.path else key,
                                                value)

    def done(self) -> None:
        unknown = sorted(set(map(str, self.data)) - self.used)
        if unknown:
            self.fail(f"unknown key(s) {', '.join(unknown)}", None,
                      f"known keys here: {', '.join(sorted(self.used))} (docs/rack.md)")


def load_rack(path: str | Path) -> RackConfig:
    """Read and validate a rack YAML file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise RackError(f"cannot read rack file {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RackError(f"{path}: not valid YAML: {e}") from None
    return parse_rack(data, path)


def parse_rack(data: Any, path: Path) -> RackConfig:
    """Validate already-parsed YAML `data` (from file `path`, for messages and relative paths)."""
    top = _Node(path, "", data if data is not None else {})
    name = top.get("rack", str, path.stem)
    build = Path(top.get("build", str, "build"))
    if not build.is_absolute():
        build = (path.parent / build).resolve()
    defaults = top.child("defaults")
    raw_boards = top.get("boards", list, required=True,
                         fix="list the boards: boards: [{name: ..., type: ..., power: ...}]")
    if not raw_boards:
        top.fail("is empty", "boards", "a rack needs at least one board")
    boards, names, switches = [], set(), {}
    for i, raw in enumerate(raw_boards):
        if isinstance(raw, dict) and defaults is not None:
            raw = {**defaults.data, **raw}
        spec = _board(_Node(path, f"boards[{i}]", raw), build)
        if spec.name in names:
            raise RackError(f"{path}: boards[{i}].name: {spec.name!r} is used twice; board names "
                            f"must be unique")
        names.add(spec.name)
        sw = spec.power.switch
        if sw is not None:
            if (sw.url, sw.pin) in switches:
                raise RackError(f"{path}: boards[{i}].power.switch: pin {sw.pin} of {sw.url} "
                                f"already switches board {switches[sw.url, sw.pin]!r}; give each "
                                f"board its own pin")
            switches[sw.url, sw.pin] = spec.name
        boards.append(spec)
    if defaults is not None:
        defaults.used |= set(defaults.data)
    top.done()
    return RackConfig(path, name, tuple(boards))


def _board(node: _Node, build: Path) -> BoardSpec:
    name = node.get("name", str, required=True, fix="give every board a unique name")
    kind = node.get("type", str, required=True, fix=f"one of {', '.join(BOARDS)}")
    if kind not in BOARDS:
        node.fail(f"unknown board type {kind!r}", "type", f"use one of {', '.join(BOARDS)}")
    virtual_node = node.child("virtual") if isinstance(node.data.get("virtual"), dict) else None
    is_virtual = virtual_node is not None or node.get("virtual", bool, False) is True
    node.used.add("virtual")
    clock = node.positive("clock_hz", int, BOARDS[kind].clock_hz)
    virtual = None
    if is_virtual:
        v = virtual_node or _Node(node.file, f"{node.path}.virtual", {})
        noise = v.child("noise")
        noise_spec = None
        if noise is not None:
            noise_spec = {k: noise.get(k, float, 0.0) for k in ("corrupt", "drop", "duplicate")}
            for k, p in noise_spec.items():
                if not 0.0 <= p <= 1.0:
                    noise.fail(f"must be a probability between 0 and 1, not {p!r}", k)
            noise_spec["seed"] = noise.get("seed", int, 0)
            noise.done()
        virtual = VirtualSpec(v.positive("min_voltage", float), v.positive("current", float),
                              v.get("usb_powered", bool, False),
                              v.get("reenumerate_s", float, 0.2), noise_spec)
        v.done()
    power = _power(node.child("power", required=True,
                               fix="say which supply channel powers the board: "
                                   "power: {supply: {model: ..., resource: ...}, voltage: 3.3}"),
                   is_virtual)
    console_node = node.child("console", required=not is_virtual,
                              fix="give the board's serial port: console: {port: /dev/ttyACM0}")
    console = ConsoleSpec()
    if console_node is not None:
        port = console_node.get("port", str, required=not is_virtual,
                                fix="e.g. /dev/serial/by-id/usb-... (stable across re-plugging)")
        if is_virtual and port is not None:
            console_node.fail("a virtual board has its own pseudo-terminal", "port",
                              "remove console.port (baudrate and reopen_timeout_s may stay)")
        console = ConsoleSpec(port, console_node.positive("baudrate", int, 115200),
                              console_node.positive("reopen_timeout_s", float, 5.0))
        console_node.done()
    if is_virtual:
        if "flasher" in node.data:
            node.fail("a virtual board is flashed by loading the ELF", "flasher",
                      "remove the flasher of a virtual board")
        flasher = FlasherSpec("virtual")
    else:
        flasher = _flasher(node.child("flasher", required=True,
                                      fix="e.g. flasher: {kind: mspdebug, driver: tilib}"))
    spec = BoardSpec(
        name, kind, clock, power, console, flasher, virtual, build,
        off_time=node.positive("off_time_ms", float, 100.0) / 1000,
        result_timeout=node.positive("result_timeout_s", float, 60.0),
        host_timeout=node.positive("host_timeout_s", float, 0.5),
        host_retries=node.get("host_retries", int, 2))
    node.done()
    return spec


def _power(node: _Node, virtual: bool) -> PowerSpec:
    from hil.psu import MODELS

    s = node.child("supply", required=True, fix="e.g. supply: {model: rigol-dp832, resource: ...}")
    model = s.get("model", str, required=True, fix=f"one of {', '.join(MODELS)}")
    if model not in MODELS:
        s.fail(f"unknown supply model {model!r}", "model", f"use one of {', '.join(MODELS)}")
    simulated = s.get("simulated", bool, False)
    if virtual and not simulated:
        s.fail("a virtual board is powered by a simulated supply", "simulated",
               "set simulated: true (and leave out resource)")
    if simulated and not virtual:
        s.fail("only a virtual board can use a simulated supply", "simulated",
               "remove simulated: true, or make the board virtual")
    if simulated and model not in SIMULATED_SUPPLIES:
        s.fail(f"{model} cannot power a virtual board", "model",
               f"use one of {', '.join(SIMULATED_SUPPLIES)}")
    resource = s.get("resource", str, required=not simulated,
                     fix="a serial port (/dev/ttyUSB0) or a VISA resource string "
                         "(TCPIP::192.0.2.5::5555::SOCKET)")
    if simulated and resource is not None:
        s.fail("a simulated supply has its own pseudo-terminal", "resource", "remove resource")
    options = s.get("options", dict, {})
    supply = SupplySpec(model, resource, s.positive("channel", int, 1), options, simulated)
    s.done()
    voltage = node.get("voltage", float, required=True, fix="the board's supply voltage, e.g. 3.3")
    if not 0 < voltage <= 30:
        node.fail(f"{voltage!r} V is not a board supply voltage", "voltage", "use e.g. 3.3")
    limit = node.positive("current_limit", float)
    switch = None
    sw = node.child("switch")
    if sw is not None:
        kind = sw.get("kind", str, required=True, fix="kind: ftdi")
        if kind != "ftdi":
            sw.fail(f"unknown load-switch kind {kind!r}", "kind", "use ftdi")
        if virtual:
            sw.fail("a virtual board has no load switch", "kind", "remove power.switch")
        pin = sw.get("pin", int, required=True, fix="the FTDI GPIO bit, 0..7")
        if not 0 <= pin <= 7:
            sw.fail(f"must be 0..7, not {pin}", "pin")
        url = sw.get("url", str, required=True, fix="e.g. ftdi://ftdi:232h/1")
        if not re.fullmatch(r"ftdi://[^/?#]*/[0-9]+/?", url):
            sw.fail(f"{url!r} is not a pyftdi device URL", "url",
                    "use ftdi://ftdi:232h/1 or, with several adapters, ftdi://ftdi:232h:SERIAL/1 "
                    "(ftdi_urls.py lists them)")
        switch = SwitchSpec(kind, url, pin, sw.get("active_high", bool, True))
        sw.done()
    node.done()
    return PowerSpec(supply, voltage, limit, switch)


def _flasher(node: _Node) -> FlasherSpec:
    kind = node.get("kind", str, required=True, fix=f"one of {', '.join(FLASHERS)}")
    if kind not in FLASHERS:
        node.fail(f"unknown flasher {kind!r}", "kind", f"use one of {', '.join(FLASHERS)}")
    options = {}
    for key, kind_ in _FLASHER_KEYS[kind].items():
        value = node.get(key, kind_, required=key in _REQUIRED_FLASHER_KEYS.get(kind, ()))
        if value is not None:
            options[key] = value
    if kind == "mspdebug" and options.get("driver", "tilib") not in ("tilib", "ezfet", "sim") \
            and "command" not in options:
        node.fail(f"driver {options['driver']!r} is not supported", "driver",
                  "use tilib, ezfet or sim, or give the whole command line as command: [...]")
    for key in ("args", "command"):
        if key in options and not all(isinstance(a, str) for a in options[key]):
            node.fail("must be a list of strings", key)
    node.done()
    return FlasherSpec(kind, options)

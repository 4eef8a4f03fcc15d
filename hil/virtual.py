"""The virtual rack's board: an `emu.Machine` behind a pseudo-terminal, powered by a
simulated supply.

A `VirtualBoard` runs the firmware in the emulator from its own thread and bridges the
emulated UART to a pseudo-terminal, so a host talks to it through real pyserial I/O, byte
for byte as to a board on a USB serial adapter. Its port is a stable symlink
(`<directory>/<name>.tty` -> `/dev/pts/N`), like a `/dev/serial/by-id/` name: when the
board "unplugs" (a USB serial adapter powered by the board loses power, or a test pulls the
cable) the pty goes away and anything holding it open gets I/O errors; when it comes back
the symlink points at a new pty.

Time: wall-clock time maps to instructions through the board clock (`clock_hz`). While
powered and busy, the thread runs the machine in slices so that after t seconds of power
about t * clock_hz instructions have retired; it never runs ahead of the wall clock, and if
the host cannot keep up it drops the debt beyond 50 ms (time then runs slower for the
board). While the firmware waits for host input (`proto_wait_input`) the thread sleeps in
`select` on the pty and a wake-up pipe: no CPU is burnt. Each power event is applied at the
instruction count its wall-clock time maps to.

Power: `couple(board, sim, channel)` makes a simulated supply's channel (`hil.sim`: Rigol
DP832, Korad KA3005P and the other SCPI models) power the board: the channel's load is the
board (`load_current`: `current` amperes above `min_voltage`, nothing below), and every
change of the channel's output state, voltage or current limit recomputes the voltage at
the terminals; at or above `min_voltage` the board is powered, below it is not. A power
loss is `emu.Machine.power_fail()` (volatile state lost, non-volatile kept; the next
power-on reboots); UART bytes in flight are lost. Flashing (`VirtualFlasher`) is loading
the ELF into a new machine.

`LineNoise` corrupts, drops and duplicates bytes on the virtual UART line (both
directions), for testing the host protocol under noise.

Public names: `VirtualBoard`, `VirtualFlasher`, `LineNoise`, `couple`, `MIN_VOLTAGE`,
`ACTIVE_CURRENT`.
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
import select
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from emu.boards import get_board
from emu.errors import EmuError
from hil.sim.load import CallbackLoad
from hil.sim.scpi import SimChannel

from .errors import FlashError, HilError

__all__ = ["VirtualBoard", "VirtualFlasher", "LineNoise", "couple", "MIN_VOLTAGE",
           "ACTIVE_CURRENT"]

# Minimum supply voltage (datasheets: MSP430FR5994 1.8 V; STM32L4 1.71 V).
MIN_VOLTAGE = {"msp430fr5994": 1.8, "cortex-m4-mram": 1.71}
# Active-mode supply current at the board clock (MSP430FR5994 ~120 uA/MHz at 8 MHz;
# STM32L4 ~100 uA/MHz at 80 MHz), amperes.
ACTIVE_CURRENT = {"msp430fr5994": 0.001, "cortex-m4-mram": 0.008}

_MAX_LAG = 0.05   # seconds of instruction debt the board may catch up on
_SLICE = 0.001    # seconds between slices while running
_IDLE_WAIT = 0.1  # select timeout while idle (events wake the thread anyway)


@dataclass
class LineNoise:
    """Random line errors: each byte is dropped with probability `drop`, else corrupted
    (xor with a random non-zero byte) with probability `corrupt`, and sent twice with
    probability `duplicate`. Seeded: the same byte stream gets the same errors."""

    corrupt: float = 0.0
    drop: float = 0.0
    duplicate: float = 0.0
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("corrupt", "drop", "duplicate"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise HilError(f"line noise: {name} is a probability in 0..1, not {p!r}")
        self._rng = random.Random(self.seed)

    def apply(self, data: bytes) -> bytes:
        rng, out = self._rng, bytearray()
        for byte in data:
            r = rng.random()
            if r < self.drop:
                continue
            if r < self.drop + self.corrupt:
                byte ^= rng.randrange(1, 256)
            out.append(byte)
            if rng.random() < self.duplicate:
                out.append(byte)
        return bytes(out)


@dataclass(order=True)
class _Event:
    time: float
    seq: int
    kind: str = field(compare=False)
    arg: Any = field(compare=False, default=None)
    done: threading.Event | None = field(compare=False, default=None)
    outcome: list = field(compare=False, default_factory=list)


class VirtualBoard:
    """An emulated board on a pty (see the module docstring). `usb_powered`: the UART's USB
    adapter is powered by the board, so the port vanishes at power-off and reappears
    `reenumerate` seconds after power-on. `record`: keep every byte the firmware sent
    (before line noise) in `sent`."""

    def __init__(self, name: str, board_type: str, directory: str | Path, *,
                 clock_hz: int | None = None, min_voltage: float | None = None,
                 current: float | None = None, usb_powered: bool = False,
                 reenumerate: float = 0.2, noise: LineNoise | None = None, record: bool = False):
        board = get_board(board_type)
        self.name, self.board_type = name, board.name
        self.clock_hz = int(clock_hz or board.clock_hz)
        if self.clock_hz <= 0:
            raise HilError(f"virtual board {name}: clock_hz must be > 0")
        self.min_voltage = float(MIN_VOLTAGE[board.name] if min_voltage is None else min_voltage)
        self.current = float(ACTIVE_CURRENT[board.name] if current is None else current)
        self.usb_powered, self.reenumerate = bool(usb_powered), float(reenumerate)
        self.noise = noise
        self.path = Path(directory) / f"{name}.tty"
        self.sent = bytearray() if record else None
        # what the thread reports (read-only for others)
        self.boots = 0
        self.power_failures = 0
        self.instructions = 0
        self.error: str | None = None    # the last crash of the firmware
        self.firmware: Path | None = None
        self._lock = threading.Lock()
        self._events: list[_Event] = []
        self._counter = itertools.count()
        self._supply_on = False            # last posted power state
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._master: int | None = None
        self._slave: int | None = None
        self._plug()
        self._thread = threading.Thread(target=self._serve, name=f"virtual board {name}", daemon=True)
        self._thread.start()

    # -- the outside world's side -------------------------------------------------------------

    @property
    def port(self) -> str:
        """The console's port name (a stable symlink to the current pty)."""
        return str(self.path)

    def load_current(self, volts: float) -> float:
        """The board as a supply's load: amperes drawn at `volts`."""
        return self.current if volts >= self.min_voltage else 0.0

    def supply_changed(self, volts: float) -> None:
        """The voltage at the board's terminals changed (called by the coupled supply)."""
        on = volts >= self.min_voltage
        with self._lock:
            if on == self._supply_on:
                return
            self._supply_on = on
        self._post("power", on)

    @property
    def supplied(self) -> bool:
        """Whether the supply currently powers the board."""
        return self._supply_on

    def flash(self, elf: str | Path, timeout: float = 60.0) -> None:
        """Load `elf` into a fresh machine (flashing); the board runs it while powered."""
        path = Path(elf)
        if not path.is_file():
            raise FlashError(f"cannot flash {path}: no such file (build the firmware: make firmware)")
        event = self._post("flash", path, wait=True)
        if not event.done.wait(timeout):
            raise FlashError(f"virtual board {self.name}: flashing {path.name} did not finish "
                             f"within {timeout:g} s")
        if event.outcome:
            raise event.outcome[0]

    def unplug(self) -> None:
        """Pull the board's USB serial cable: the port vanishes until `plug()`."""
        self._post("unplug")

    def plug(self) -> None:
        """Put the cable back (a new pty behind the same port name)."""
        self._post("plug")

    def close(self) -> None:
        """Stop the board's thread and remove its port (idempotent)."""
        if self._thread.is_alive():
            self._post("stop")
            self._thread.join(timeout=5)
        self._unplug()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> VirtualBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<VirtualBoard {self.name} {self.board_type} at {self.path}>"

    def _post(self, kind: str, arg: Any = None, when: float | None = None,
              wait: bool = False) -> _Event:
        event = _Event(time.monotonic() if when is None else when, next(self._counter), kind, arg,
                       threading.Event() if wait else None)
        with self._lock:
            heapq.heappush(self._events, event)
        try:
            os.write(self._wake_w, b"\0")
        except OSError:  # pipe full (the thread is already awake) or closed
            pass
        return event

    # -- the port ---------------------------------------------------------------------------

    def _plug(self) -> None:
        if self._master is not None:
            return
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        tmp = self.path.with_name(self.path.name + ".new")
        tmp.unlink(missing_ok=True)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.path)  # atomically: the name never points at nothing mid-swap
        self._master, self._slave = master, slave

    def _unplug(self) -> None:
        if self._master is None:
            return
        self.path.unlink(missing_ok=True)
        # closing the master makes every open handle of the slave fail with EIO
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = None

    def _send(self, data: bytes) -> None:
        if self.sent is not None:
            self.sent += data
        if self.noise is not None:
            data = self.noise.apply(data)
        if self._master is None:
            return  # cable pulled: the bytes go nowhere
        while data:
            try:
                n = os.write(self._master, data)
            except OSError:
                return  # the host is not reading and the pty is full: a UART overrun
            data = data[n:]

    def _receive(self) -> bytes:
        if self._master is None:
            return b""
        try:
            data = os.read(self._master, 65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            return b""
        return self.noise.apply(data) if self.noise is not None else data

    # -- the board's thread -------------------------------------------------------------------

    def _serve(self) -> None:
        run = _Run(self)
        try:
            while True:
                now = time.monotonic()
                while True:
                    with self._lock:
                        if not self._events or self._events[0].time > now:
                            break
                        event = heapq.heappop(self._events)
                    if event.kind == "stop":
                        return
                    run.handle(event)
                data = self._receive()
                if data:
                    run.input(data, now)
                run.advance(time.monotonic())
                with self._lock:
                    due = self._events[0].time - time.monotonic() if self._events else _IDLE_WAIT
                timeout = max(0.0, min(due, _SLICE if run.state == "run" else _IDLE_WAIT))
                watched = [self._wake_r] + ([self._master] if self._master is not None else [])
                ready, _, _ = select.select(watched, [], [], timeout)
                if self._wake_r in ready:
                    try:
                        os.read(self._wake_r, 4096)
                    except OSError:
                        pass
        finally:
            run.drop_machine()
            with self._lock:
                pending, self._events = self._events, []
            for event in pending:
                if event.done is not None:
                    event.outcome.append(HilError(f"virtual board {self.name} was closed"))
                    event.done.set()


class _Run:
    """The machine and its power/timing state; touched only by the board's thread (icicle
    machines cannot move between threads, so the machine is also created there)."""

    def __init__(self, board: VirtualBoard):
        self.board = board
        self.machine = None
        self.powered = False
        self.state = "off"           # off | run | idle (waits for input) | halted
        self.t_ref, self.i_ref = 0.0, 0

    def drop_machine(self) -> None:
        """Free the machine in this thread: an icicle VM must be dropped by the thread that
        made it. A machine holds reference cycles (peripherals -> machine -> engine), which
        some other thread's garbage collection would free; break them so that reference
        counting frees it here and now."""
        machine, self.machine = self.machine, None
        if machine is not None:
            for p in machine.bus.peripherals:
                p.clock = None
            machine.__dict__.clear()

    def _restart_clock(self, t: float) -> None:
        self.t_ref, self.i_ref = t, self.machine.instructions if self.machine else 0

    def handle(self, event: _Event) -> None:
        b = self.board
        if event.kind == "power":
            if event.arg and not self.powered:
                self.powered = True
                if self.machine is not None:
                    self.state = "run"
                    self._restart_clock(event.time)
                if b.usb_powered:
                    b._post("plug", when=event.time + b.reenumerate)
            elif not event.arg and self.powered:
                self.advance(event.time)
                self.powered = False
                self.state = "off"
                if self.machine is not None:
                    self.machine.power_fail()
                    self.machine.link.rx.clear()  # bytes in flight are lost with the power
                    b.power_failures = self.machine.power_failures
                if b.usb_powered:
                    b._unplug()
        elif event.kind == "flash":
            try:
                from emu.machine import Machine

                machine = Machine.from_elf(event.arg, b.board_type)
                self.drop_machine()
                self.machine = machine
            except EmuError as e:
                event.outcome.append(FlashError(f"virtual board {b.name}: cannot flash "
                                                f"{event.arg}: {e}"))
            else:
                b.firmware, b.error = event.arg, None
                b.boots = b.power_failures = b.instructions = 0
                self.state = "run" if self.powered else "off"
                self._restart_clock(time.monotonic())
            event.done.set()
        elif event.kind == "unplug":
            b._unplug()
        elif event.kind == "plug":
            if not b.usb_powered or self.powered:
                b._plug()

    def input(self, data: bytes, now: float) -> None:
        if not self.powered or self.machine is None:
            return  # an unpowered UART receives nothing
        self.machine.link.rx.extend(data)
        if self.state == "idle":
            self.state = "run"
            self._restart_clock(now)

    def advance(self, until: float) -> None:
        """Run the machine up to the instruction count wall-clock time `until` maps to."""
        m, b = self.machine, self.board
        if self.state != "run" or m is None:
            return
        budget = int((until - self.t_ref) * b.clock_hz) - (m.instructions - self.i_ref)
        if budget <= 0:
            return
        lag = int(_MAX_LAG * b.clock_hz)
        if budget > lag:  # the emulator fell behind: forget the older debt
            self.i_ref += budget - lag
            budget = lag
        result = m.run(max_instructions=m.instructions + budget)
        if m.link.tx:
            data = bytes(m.link.tx)
            del m.link.tx[:]
            b._send(data)
        b.boots, b.instructions = m.boots, m.instructions
        if result.outcome == "completed":
            self.state = "idle" if result.waiting_for_input else "halted"
        elif result.outcome == "crash":
            self.state = "halted"
            b.error = result.error


class VirtualFlasher:
    """`FlashProtocol` for a virtual board: flashing is loading the ELF."""

    def __init__(self, board: VirtualBoard):
        self.board = board

    def flash(self, elf: str | Path) -> str:
        self.board.flash(elf)
        return ""  # (loading an ELF has no tool log)


class _WatchedChannel(SimChannel):
    """A simulated supply channel that reports changes of its output (see `couple`)."""

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in ("on", "voltage", "current"):
            watcher = self.__dict__.get("_hil_watcher")
            if watcher is not None:
                watcher(self)


def couple(board: VirtualBoard, sim: Any, channel: int = 1) -> None:
    """Power `board` from `channel` of the simulated supply `sim` (`hil.sim.simulate(...)`)."""
    device = sim.device
    if hasattr(device, "channels"):
        try:
            ch = device.channels[channel]
        except KeyError:
            raise HilError(f"simulated {sim.model} has channels {sorted(device.channels)}, "
                           f"not {channel}") from None
    elif hasattr(device, "ch"):
        ch = device.ch
    else:
        raise HilError(f"a virtual board cannot be powered by a simulated {sim.model}; use a "
                       f"supply with output channels (rigol-dp832, korad-ka3005p, ...)")
    lock = getattr(device, "lock", threading.RLock())
    with lock:
        ch.load = CallbackLoad(board.load_current)
        ch.__class__ = _WatchedChannel
        notify: Callable[[SimChannel], None] = lambda c: board.supply_changed(c.measure()[0])
        ch.__dict__["_hil_watcher"] = notify
        notify(ch)

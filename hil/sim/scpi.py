"""A small SCPI instrument engine for simulated power supplies.

It parses program messages the way IEEE 488.2 / SCPI instruments do, enough for the
supplies' command sets: messages end at LF (a CR before it is ignored), `;` separates
program units, a leading `:` is the root, headers match in short (`VOLT`) or long (`VOLTage`)
form in any letter case with optional nodes (`[SOURce:]VOLTage[:LEVel]`) and numeric
suffixes (`SOURce#`, `CH#`), parameters are comma-separated (a channel list `(@1:3)` counts
as one). Replies of one message are joined with `;` and terminated with LF.

Errors go to an error queue with the standard SCPI numbers and texts (-113 "Undefined header",
-222 "Data out of range", ...; -350 "Queue overflow" when full), read back with
`SYSTem:ERRor?` in the instrument's own layout. An undefined query is not answered, as on the
real instruments, so the host times out.

`ScpiSupplySim` adds what the supplies share: channels with set-points, limits, output state
and a load, `*IDN?`, `*RST`, `*CLS`, `*OPC?`, `SYST:ERR?`, and a log of received messages.

Public names: `ScpiError`, `ErrorQueue`, `SimChannel`, `ScpiSupplySim`, `header_pattern`,
`split_params`, `STANDARD_ERRORS`.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

from .load import Load, OpenCircuit, operating_point

__all__ = ["ScpiError", "ErrorQueue", "SimChannel", "ScpiSupplySim", "header_pattern",
           "split_params", "STANDARD_ERRORS"]

STANDARD_ERRORS = MappingProxyType({
    -100: "Command error",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -350: "Queue overflow",
    550: "Command not allowed in local",
})


class ScpiError(Exception):
    """Raised by a command handler: the error-queue entry to post."""

    def __init__(self, code: int, message: str | None = None):
        super().__init__(code, message)
        self.code, self.message = code, message or STANDARD_ERRORS.get(code, "Error")


class ErrorQueue:
    """A bounded FIFO of (code, message); `pop()` formats the oldest, or "no error"."""

    def __init__(self, formatter: Callable[[int, str], str], capacity: int = 20):
        self.formatter, self.capacity = formatter, capacity
        self._entries: deque[tuple[int, str]] = deque()

    def push(self, code: int, message: str | None = None) -> None:
        if len(self._entries) >= self.capacity:
            self._entries[-1] = (-350, STANDARD_ERRORS[-350])
        else:
            self._entries.append((code, message or STANDARD_ERRORS.get(code, "Error")))

    def pop(self) -> str:
        code, message = self._entries.popleft() if self._entries else (0, "No error")
        return self.formatter(code, message)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def codes(self) -> list[int]:
        return [code for code, _ in self._entries]


def header_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an SCPI header pattern (`[SOURce#:]VOLTage[:LEVel]?`) to a case-insensitive
    regex; each `#` suffix becomes a capture group of digits (empty or None when absent)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            out.append("(?:")
        elif c == "]":
            out.append(")?")
        elif c.isalpha() or c == "*":
            j = i + 1
            while j < len(pattern) and pattern[j].isalpha():
                j += 1
            word = pattern[i:j]
            short = re.match(r"\*?[A-Z]*", word).group(0)
            long = word.upper()
            alt = re.escape(long) if short == word or not short else \
                f"(?:{re.escape(long)}|{re.escape(short)})"
            out.append(alt)
            if j < len(pattern) and pattern[j] == "#":
                out.append(r"(\d*)")
                j += 1
            i = j
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.IGNORECASE)


def split_params(text: str) -> list[str]:
    """Comma-separated parameters; commas inside parentheses or quotes do not split."""
    params, depth, quote, cur = [], 0, "", []
    for c in text:
        if quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            params.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    if text.strip():
        params.append("".join(cur).strip())
    return params


@dataclass
class SimChannel:
    """One output: programming ranges, set-points, output state and the load on it."""

    name: str
    v_range: tuple[float, float]        # programmable voltage range (lo, hi)
    i_max: float                        # programmable current-limit maximum
    i_default: float                    # current limit after *RST
    load: Load = field(default_factory=OpenCircuit)
    voltage: float = 0.0
    current: float = 0.0
    on: bool = False

    def __post_init__(self) -> None:
        self.current = self.i_default

    def reset(self) -> None:
        self.voltage, self.current, self.on = 0.0, self.i_default, False

    def measure(self) -> tuple[float, float]:
        """(volts, amperes) at the terminals: 0, 0 when off; the operating point when on
        (the current is reported as a magnitude)."""
        if not self.on:
            return 0.0, 0.0
        volts, amps = operating_point(self.voltage, self.current, self.load)
        return volts, abs(amps)

    @property
    def in_cc(self) -> bool:
        return self.on and abs(self.load.current(self.voltage)) > self.current


Handler = Callable[[Sequence[str | None], list[str]], "str | None"]


def number(text: str, lo: float, hi: float, default: float | None = None) -> float:
    """An <NRf> parameter (or MIN/MAX/DEF) within [lo, hi]; ScpiError otherwise."""
    word = text.strip().upper()
    if word in ("MIN", "MINIMUM"):
        return lo
    if word in ("MAX", "MAXIMUM"):
        return hi
    if word in ("DEF", "DEFAULT") and default is not None:
        return default
    try:
        value = float(re.sub(r"\s*(V|A|MV|MA)$", "", word))
    except ValueError:
        raise ScpiError(-104) from None
    if word.endswith("MV") or word.endswith("MA"):
        value /= 1000
    if not lo - 1e-9 <= value <= hi + 1e-9:
        raise ScpiError(-222)
    return value


def boolean(text: str) -> bool:
    """ON/OFF/1/0."""
    word = text.strip().upper()
    if word in ("ON", "1"):
        return True
    if word in ("OFF", "0"):
        return False
    raise ScpiError(-224)


def channel_list(text: str, valid: Sequence[int]) -> list[int]:
    """`(@1)`, `(@1,3)`, `(@1:3)` -> channel numbers."""
    m = re.fullmatch(r"\(@([\d,:\s]+)\)", text.strip())
    if not m:
        raise ScpiError(-104)
    chans: list[int] = []
    for part in m.group(1).split(","):
        a, _, b = part.strip().partition(":")
        try:
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise ScpiError(-104) from None
        chans.extend(range(lo, hi + 1))
    if not chans or any(c not in valid for c in chans):
        raise ScpiError(-224)
    return chans


class ScpiSupplySim:
    """The shared engine of the simulated SCPI supplies (see the module docstring).

    `loads` gives each channel its load (default: nothing connected); `lock` serialises the
    endpoint thread and anyone inspecting or changing the state from outside.
    """

    idn: str = "SIM,SUPPLY,0,0"
    error_capacity = 20
    log_size = 1000

    def __init__(self, channels: Mapping[int, SimChannel], loads: Mapping[int, Load] | None = None):
        self.channels = dict(channels)
        for number_, load in (loads or {}).items():
            self.channels[number_].load = load
        self.errors = ErrorQueue(self.format_error, self.error_capacity)
        self.lock = threading.RLock()
        self.log: deque[str] = deque(maxlen=self.log_size)
        self.selected = min(self.channels)
        self._buffer = b""
        self._commands: list[tuple[re.Pattern[str], Handler]] = []
        self.command("*IDN?", lambda s, p: self.idn)
        self.command("*RST", self._rst)
        self.command("*CLS", lambda s, p: self.errors.clear())
        self.command("*OPC?", lambda s, p: "1")
        self.command("SYSTem:ERRor[:NEXT]?", lambda s, p: self.errors.pop())

    # -- to be specialised -------------------------------------------------------------

    def format_error(self, code: int, message: str) -> str:
        return f'{code:+d},"{message}"'

    def accept(self, line: str, now: float) -> bool:
        """Whether a complete message is processed (a model may drop some, e.g. too early)."""
        return True

    # -- engine ----------------------------------------------------------------------------

    def command(self, pattern: str, handler: Handler) -> None:
        """Register a handler for a header pattern; it returns the reply of a query."""
        self._commands.append((header_pattern(pattern), handler))

    def _rst(self, suffixes: Sequence[str | None], params: list[str]) -> None:
        for ch in self.channels.values():
            ch.reset()

    def receive(self, data: bytes, now: float) -> bytes:
        with self.lock:
            self._buffer += data
            replies = []
            while b"\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\n", 1)
                line = raw.decode("ascii", "replace").rstrip("\r")
                if not self.accept(line, now):
                    self.log.append(f"(dropped) {line}")
                    continue
                self.log.append(line)
                out = self.execute(line)
                if out:
                    replies.append(";".join(out) + "\n")
            return "".join(replies).encode("ascii")

    def tick(self, now: float) -> bytes:
        return b""

    def disconnect(self) -> None:
        with self.lock:
            self._buffer = b""

    def execute(self, line: str) -> list[str]:
        """Run one program message; the replies of its queries."""
        replies = []
        for unit in line.split(";"):
            unit = unit.strip()
            if not unit:
                continue
            header, _, rest = unit.partition(" ")
            header = header.lstrip(":")
            params = split_params(rest.strip())
            for rx, handler in self._commands:
                m = rx.fullmatch(header)
                if m:
                    try:
                        reply = handler(m.groups(), params)
                    except ScpiError as e:
                        self.errors.push(e.code, e.message)
                    else:
                        if reply is not None:
                            replies.append(reply)
                    break
            else:
                self.errors.push(-113)
        return replies

    # -- helpers for the models ------------------------------------------------------------

    def channel(self, number_: int | str | None) -> SimChannel:
        """The channel numbered `number_` (None: the selected one); -224 if there is none."""
        if number_ in (None, ""):
            return self.channels[self.selected]
        try:
            return self.channels[int(number_)]
        except (KeyError, ValueError):
            raise ScpiError(-224) from None

    def set_voltage(self, ch: SimChannel, text: str) -> None:
        ch.voltage = number(text, *ch.v_range, default=0.0)

    def set_current(self, ch: SimChannel, text: str) -> None:
        ch.current = number(text, 0.0, ch.i_max, default=ch.i_default)

    @staticmethod
    def expect(params: list[str], least: int, most: int) -> None:
        if len(params) < least:
            raise ScpiError(-109)
        if len(params) > most:
            raise ScpiError(-108)

"""Simulated SCPI supplies: Keysight E36312A and E3631A, Rigol DP832, Siglent SPD3303X.

Each keeps the instrument's state (per-channel set-points, output on/off, selected channel,
error queue) and answers the commands of its programming manual in the instrument's reply
format. Measured voltage is the set-point while the output is on (0 when off) unless the load
pulls the supply into constant current; measured current is what the channel's load draws.
Out-of-range values are refused with -222 "Data out of range", unknown headers with -113.

Documented quirks enforced:

* E3631A: over RS-232 the supply must be put in remote mode (SYSTem:REMote) first; before
  that, the simulator refuses setting commands with error 550 "Command not allowed in local"
  (the manual only warns of "unpredictable results"). OUTPut switches all three outputs.
* SPD3303X: a command arriving less than `min_gap` (20 ms) after the previous one is lost,
  as users report of the real instrument; `error_queue=False` models firmware without a
  usable SYSTem:ERRor? (the query is not answered). Its error entries use Siglent's
  "code  text" layout ("0  No Error"); the codes of refused values are the SCPI ones, as
  Siglent's guide lists no numbers.

Public names: `KeysightE36312ASim`, `KeysightE3631ASim`, `RigolDP832Sim`, `SiglentSPD3303XSim`.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from .load import Load
from .scpi import ScpiError, ScpiSupplySim, SimChannel, boolean, channel_list, number

__all__ = ["KeysightE36312ASim", "KeysightE3631ASim", "RigolDP832Sim", "SiglentSPD3303XSim"]

_VOLT = "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]"
_CURR = "[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]"


def _keysight_number(x: float) -> str:
    return f"{x:+.8E}"


def _ch_name(text: str, names: Mapping[str, int]) -> int:
    try:
        return names[text.strip().upper()]
    except KeyError:
        raise ScpiError(-224) from None


class KeysightE36312ASim(ScpiSupplySim):
    """Keysight E36312A: CH1 0–6.18 V / 0–5.15 A, CH2 and CH3 0–25.75 V / 0–1.03 A (rated
    6 V / 5 A and 25 V / 1 A, programmable 3 % beyond, as the E3631A). Channel lists `(@n)`."""

    idn = "Keysight Technologies,E36312A,MY00000000,2.1.0-1.0.4-1.12"

    def __init__(self, loads: Mapping[int, Load] | None = None):
        super().__init__({
            1: SimChannel("CH1", (0.0, 6.18), 5.15, 5.0),
            2: SimChannel("CH2", (0.0, 25.75), 1.03, 1.0),
            3: SimChannel("CH3", (0.0, 25.75), 1.03, 1.0),
        }, loads)
        names = {"CH1": 1, "CH2": 2, "CH3": 3, "P6V": 1, "P25V": 2, "N25V": 3}
        self.command(_VOLT, lambda s, p: self._set(p, self.set_voltage))
        self.command(_CURR, lambda s, p: self._set(p, self.set_current))
        self.command(_VOLT + "?", lambda s, p: self._each(p, lambda ch: ch.voltage))
        self.command(_CURR + "?", lambda s, p: self._each(p, lambda ch: ch.current))
        self.command("OUTPut[:STATe]", self._output)
        self.command("OUTPut[:STATe]?", lambda s, p: ",".join(
            "1" if ch.on else "0" for ch in self._chans(p, 0)))
        self.command("INSTrument[:SELect]", lambda s, p: self._select(_ch_name(p[0], names)
                                                                       if p else None))
        self.command("INSTrument:NSELect", lambda s, p: self._select(
            int(number(p[0], 1, 3)) if p else None))
        self.command("MEASure[:SCALar][:VOLTage][:DC]?",
                      lambda s, p: self._each(p, lambda ch: ch.measure()[0]))
        self.command("MEASure[:SCALar]:CURRent[:DC]?",
                      lambda s, p: self._each(p, lambda ch: ch.measure()[1]))
        self.command("APPLy", lambda s, p: self._apply(p, names))

    def _chans(self, params: list[str], at: int) -> list[SimChannel]:
        if len(params) > at + 1:
            raise ScpiError(-108)
        if len(params) == at + 1:
            return [self.channels[c] for c in channel_list(params[at], tuple(self.channels))]
        return [self.channel(None)]

    def _set(self, params: list[str], setter) -> None:
        self.expect(params, 1, 2)
        chans = self._chans(params, 1)
        for ch in chans:
            setter(ch, params[0])

    def _each(self, params: list[str], value) -> str:
        return ",".join(_keysight_number(value(ch)) for ch in self._chans(params, 0))

    def _output(self, suffixes: Sequence[str | None], params: list[str]) -> None:
        self.expect(params, 1, 2)
        on = boolean(params[0])
        for ch in self._chans(params, 1):
            ch.on = on

    def _select(self, number_: int | None) -> None:
        if number_ is None:
            raise ScpiError(-109)
        self.selected = number_

    def _apply(self, params: list[str], names: Mapping[str, int]) -> None:
        self.expect(params, 1, 3)
        ch = self.channels[_ch_name(params[0], names)]
        if len(params) > 1:
            self.set_voltage(ch, params[1])
        if len(params) > 2:
            self.set_current(ch, params[2])


class KeysightE3631ASim(ScpiSupplySim):
    """Keysight/Agilent E3631A: P6V 0–6.18 V / 0–5.15 A, P25V 0–25.75 V / 0–1.03 A, N25V
    0 to -25.75 V / 0–1.03 A (User's Guide table 4-1). `require_remote` (default True, the
    RS-232 case): setting commands need SYSTem:REMote first."""

    idn = "Agilent Technologies,E3631A,0,2.1-5.0-1.0"
    outputs = {"P6V": 1, "P25V": 2, "N25V": 3}

    def __init__(self, loads: Mapping[int, Load] | None = None, require_remote: bool = True):
        super().__init__({
            1: SimChannel("P6V", (0.0, 6.18), 5.15, 5.0),
            2: SimChannel("P25V", (0.0, 25.75), 1.03, 1.0),
            3: SimChannel("N25V", (-25.75, 0.0), 1.03, 1.0),
        }, loads)
        self.remote = not require_remote
        self.output_on = False
        self.command("SYSTem:REMote", lambda s, p: self._set_remote(True))
        self.command("SYSTem:RWLock", lambda s, p: self._set_remote(True))
        self.command("SYSTem:LOCal", lambda s, p: self._set_remote(False))
        self.command("INSTrument[:SELect]", self._remote_only(
            lambda s, p: self._select(_ch_name(p[0], self.outputs) if p else None)))
        self.command("INSTrument[:SELect]?", lambda s, p: self.channel(None).name)
        self.command("INSTrument:NSELect", self._remote_only(
            lambda s, p: self._select(int(number(p[0], 1, 3)) if p else None)))
        self.command("INSTrument:NSELect?", lambda s, p: str(self.selected))
        self.command(_VOLT, self._remote_only(
            lambda s, p: self.set_voltage(self.channel(None), self._one(p))))
        self.command(_CURR, self._remote_only(
            lambda s, p: self.set_current(self.channel(None), self._one(p))))
        self.command(_VOLT + "?", lambda s, p: _keysight_number(self.channel(None).voltage))
        self.command(_CURR + "?", lambda s, p: _keysight_number(self.channel(None).current))
        self.command("APPLy", self._remote_only(self._apply))
        self.command("OUTPut[:STATe]", self._remote_only(lambda s, p: self._output(self._one(p))))
        self.command("OUTPut[:STATe]?", lambda s, p: "1" if self.output_on else "0")
        self.command("MEASure[:SCALar][:VOLTage][:DC]?",
                      lambda s, p: _keysight_number(self._target(p).measure()[0]))
        self.command("MEASure[:SCALar]:CURRent[:DC]?",
                      lambda s, p: _keysight_number(self._target(p).measure()[1]))

    def _set_remote(self, remote: bool) -> None:
        self.remote = remote

    def _remote_only(self, handler):
        def guarded(suffixes, params):
            if not self.remote:
                raise ScpiError(550)
            return handler(suffixes, params)
        return guarded

    def _one(self, params: list[str]) -> str:
        self.expect(params, 1, 1)
        return params[0]

    def _select(self, number_: int | None) -> None:
        if number_ is None:
            raise ScpiError(-109)
        self.selected = number_

    def _target(self, params: list[str]) -> SimChannel:
        self.expect(params, 0, 1)
        return self.channels[_ch_name(params[0], self.outputs)] if params else self.channel(None)

    def _apply(self, suffixes: Sequence[str | None], params: list[str]) -> None:
        self.expect(params, 1, 3)
        ch = self.channels[_ch_name(params[0], self.outputs)]
        if len(params) > 1:
            self.set_voltage(ch, params[1])
        if len(params) > 2:
            self.set_current(ch, params[2])

    def _output(self, text: str) -> None:
        self.output_on = boolean(text)
        for ch in self.channels.values():
            ch.on = self.output_on

    def _rst(self, suffixes, params) -> None:
        super()._rst(suffixes, params)
        self.output_on = False


class RigolDP832Sim(ScpiSupplySim):
    """Rigol DP832: CH1, CH2 0–32 V / 0–3.2 A, CH3 0–5.3 V / 0–3.2 A (DP800 Programming Guide,
    :APPLy parameter table)."""

    idn = "RIGOL TECHNOLOGIES,DP832,DP8C000000000,00.01.16"

    def __init__(self, loads: Mapping[int, Load] | None = None):
        super().__init__({
            1: SimChannel("CH1", (0.0, 32.0), 3.2, 3.0),
            2: SimChannel("CH2", (0.0, 32.0), 3.2, 3.0),
            3: SimChannel("CH3", (0.0, 5.3), 3.2, 3.0),
        }, loads)
        volt, curr = "[SOURce#:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", \
            "[SOURce#:]CURRent[:LEVel][:IMMediate][:AMPLitude]"
        self.command(volt, lambda s, p: self.set_voltage(self.channel(s[0]), self._one(p)))
        self.command(curr, lambda s, p: self.set_current(self.channel(s[0]), self._one(p)))
        self.command(volt + "?", lambda s, p: f"{self.channel(s[0]).voltage:.3f}")
        self.command(curr + "?", lambda s, p: f"{self.channel(s[0]).current:.4f}")
        self.command("OUTPut[:STATe]", self._output)
        self.command("OUTPut[:STATe]?", lambda s, p: "ON" if self._named(p).on else "OFF")
        self.command("INSTrument[:SELect]", lambda s, p: self._select(self._named(p, True)))
        self.command("INSTrument:NSELect", lambda s, p: self._select(
            self.channel(int(number(self._one(p), 1, 3)))))
        self.command("INSTrument[:SELect]?", lambda s, p: self.channel(None).name)
        self.command("MEASure[:VOLTage][:DC]?", lambda s, p: f"{self._named(p).measure()[0]:.3f}")
        self.command("MEASure:CURRent[:DC]?", lambda s, p: f"{self._named(p).measure()[1]:.4f}")
        self.command("MEASure:ALL[:DC]?", self._measure_all)
        self.command("APPLy", self._apply)

    def format_error(self, code: int, message: str) -> str:
        return f'{code},"{message}"'

    def _one(self, params: list[str]) -> str:
        self.expect(params, 1, 1)
        return params[0]

    def _named(self, params: list[str], required: bool = False) -> SimChannel:
        self.expect(params, 1 if required else 0, 1)
        if not params:
            return self.channel(None)
        return self.channels[_ch_name(params[0], {"CH1": 1, "CH2": 2, "CH3": 3})]

    def _select(self, ch: SimChannel) -> None:
        self.selected = next(n for n, c in self.channels.items() if c is ch)

    def _output(self, suffixes: Sequence[str | None], params: list[str]) -> None:
        self.expect(params, 1, 2)
        ch = self._named(params[:-1])
        ch.on = boolean(params[-1])

    def _measure_all(self, suffixes: Sequence[str | None], params: list[str]) -> str:
        volts, amps = self._named(params).measure()
        return f"{volts:.3f},{amps:.4f},{volts * amps:.3f}"

    def _apply(self, suffixes: Sequence[str | None], params: list[str]) -> None:
        self.expect(params, 1, 3)
        ch = self._named(params[:1], True)
        self._select(ch)
        if len(params) > 1:
            self.set_voltage(ch, params[1])
        if len(params) > 2:
            self.set_current(ch, params[2])


class SiglentSPD3303XSim(ScpiSupplySim):
    """Siglent SPD3303X: CH1, CH2 0–32 V / 0–3.2 A (CH3 only switches on and off)."""

    idn = "Siglent Technologies,SPD3303X,SPD3XIDD000000,1.01.01.02.05,V3.0"

    def __init__(self, loads: Mapping[int, Load] | None = None, min_gap: float = 0.02,
                 error_queue: bool = True):
        super().__init__({
            1: SimChannel("CH1", (0.0, 32.0), 3.2, 3.2),
            2: SimChannel("CH2", (0.0, 32.0), 3.2, 3.2),
        }, loads)
        self.min_gap = min_gap
        self.has_error_queue = error_queue
        self.ch3_on = False
        self._last = -math.inf
        if not error_queue:
            self._commands = [c for c in self._commands if not c[0].fullmatch("SYST:ERR?")]
        self.command("[CH#:]VOLTage", lambda s, p: self.set_voltage(self.channel(s[0]), self._one(p)))
        self.command("[CH#:]CURRent", lambda s, p: self.set_current(self.channel(s[0]), self._one(p)))
        self.command("[CH#:]VOLTage?", lambda s, p: f"{self.channel(s[0]).voltage:.3f}")
        self.command("[CH#:]CURRent?", lambda s, p: f"{self.channel(s[0]).current:.3f}")
        self.command("OUTPut", self._output)
        self.command("MEASure:VOLTage?", lambda s, p: f"{self._named(p).measure()[0]:.3f}")
        self.command("MEASure:CURRent?", lambda s, p: f"{self._named(p).measure()[1]:.3f}")
        self.command("MEASure:POWEr?", lambda s, p: f"{self._power(p):.3f}")
        self.command("INSTrument[:SELect]", lambda s, p: self._select(self._one(p)))
        self.command("INSTrument[:SELect]?", lambda s, p: self.channel(None).name)
        self.command("SYSTem:VERSion?", lambda s, p: "1.01.01.02.05")

    def format_error(self, code: int, message: str) -> str:
        return "0  No Error" if code == 0 else f"{code}  {message}"

    def accept(self, line: str, now: float) -> bool:
        if now - self._last < self.min_gap:
            return False  # the instrument was still busy: the command is lost
        self._last = now
        return True

    def _one(self, params: list[str]) -> str:
        self.expect(params, 1, 1)
        return params[0]

    def _named(self, params: list[str]) -> SimChannel:
        self.expect(params, 0, 1)
        if not params:
            return self.channel(None)
        return self.channels[_ch_name(params[0], {"CH1": 1, "CH2": 2})]

    def _select(self, text: str) -> None:
        self.selected = _ch_name(text, {"CH1": 1, "CH2": 2})

    def _power(self, params: list[str]) -> float:
        volts, amps = self._named(params).measure()
        return volts * amps

    def _output(self, suffixes: Sequence[str | None], params: list[str]) -> None:
        self.expect(params, 2, 2)
        on = boolean(params[1])
        if params[0].strip().upper() == "CH3":
            self.ch3_on = on
        else:
            self._named(params[:1]).on = on

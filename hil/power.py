"""Power drivers: the power protocol on a supply channel, optionally cut by a load switch.

`SupplyPower` implements `hil.board.PowerProtocol` on one channel of a programmable supply
(any `hil.psu` model, real or simulated): at `setup()` it programs the current limit and the
voltage, then `on()` / `off()` switch the supply's output. Toggling a supply's output is
slow — each switch is one or more commands over USB/LAN/RS-232 plus the instrument's own
settling, tens to hundreds of milliseconds (the Korad's driver alone waits 50 ms between
commands and reads every state back) — so on-times shorter than that are stretched.

For faster cuts, a load switch sits between the supply and the board and is driven by a
GPIO line: `SwitchedPower` keeps the supply output on and toggles the switch instead.
`FtdiGpioSwitch` drives one pin of an FTDI chip through pyftdi (optional extra `hil`,
imported when the switch is opened) — a USB round trip, about a millisecond. The Nordic PPK2
needs no switch: its `output()` is the DUT-power toggle, equally fast.

Public names: `SupplyPower`, `SwitchedPower`, `LoadSwitch`, `FtdiGpioSwitch`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Protocol

from hil.psu import PowerSupply, SupplyResource

from .errors import HilError

__all__ = ["SupplyPower", "SwitchedPower", "LoadSwitch", "FtdiGpioSwitch"]


class SupplyPower:
    """The power protocol on one supply channel. `supply` is an open `PowerSupply` or a
    `SupplyResource` opened at `setup()`; `voltage` / `current_limit` are programmed then."""

    def __init__(self, supply: PowerSupply | SupplyResource, voltage: float,
                 current_limit: float | None = None):
        self._resource = supply if isinstance(supply, SupplyResource) else None
        self.psu: PowerSupply | None = None if self._resource else supply
        self.voltage, self.current_limit = float(voltage), current_limit
        self.is_on: bool | None = None  # unknown until switched
        self.switches = 0               # output toggles so far

    @property
    def name(self) -> str:
        if self.psu is not None:
            return self.psu.name
        r = self._resource
        return f"{r.model} at {r.resource} channel {r.channel}"

    def setup(self) -> None:
        """Open the supply (if given as a resource), switch its output off and program the
        current limit and voltage."""
        if self.psu is None:
            self.psu = self._resource.open()
        self.psu.output(False)
        self.is_on = False
        if self.current_limit is not None:
            self.psu.set_current_limit(self.current_limit)
        self.psu.set_voltage(self.voltage)

    def _psu(self) -> PowerSupply:
        if self.psu is None:
            self.setup()
        return self.psu

    def on(self) -> None:
        self._psu().output(True)
        self.is_on = True
        self.switches += 1

    def off(self) -> None:
        self._psu().output(False)
        self.is_on = False
        self.switches += 1

    def cycle(self, off_time: float = 0.5) -> None:
        """Off, wait `off_time` seconds, on."""
        self.off()
        time.sleep(off_time)
        self.on()

    def set_voltage(self, volts: float) -> None:
        self._psu().set_voltage(volts)
        self.voltage = float(volts)

    def set_current_limit(self, amps: float) -> None:
        self._psu().set_current_limit(amps)
        self.current_limit = float(amps)

    def measure(self) -> tuple[float, float]:
        """(volts, amperes) measured at the output."""
        psu = self._psu()
        return psu.measure_voltage(), psu.measure_current()

    def close(self) -> None:
        if self.psu is not None and self._resource is not None:
            self.psu.close()
            self.psu = None


class LoadSwitch(Protocol):
    """A switch between supply and board, driven by a GPIO line."""

    def set(self, on: bool) -> None: ...

    def close(self) -> None: ...


class SwitchedPower(SupplyPower):
    """A supply whose output stays on, with a fast load switch doing `on()` / `off()`."""

    def __init__(self, supply: PowerSupply | SupplyResource, switch: LoadSwitch, voltage: float,
                 current_limit: float | None = None):
        super().__init__(supply, voltage, current_limit)
        self.switch = switch

    def setup(self) -> None:
        self.switch.set(False)
        super().setup()
        self.psu.output(True)  # the switch does the cutting from now on

    def on(self) -> None:
        self._psu()
        self.switch.set(True)
        self.is_on = True
        self.switches += 1

    def off(self) -> None:
        self._psu()
        self.switch.set(False)
        self.is_on = False
        self.switches += 1

    def close(self) -> None:
        try:
            self.switch.close()
        finally:  # the supply is closed even if the switch's adapter is gone
            super().close()


class FtdiGpioSwitch:
    """One GPIO pin of an FTDI chip (FT232H, FT2232H, FT232R, ...) through pyftdi's
    `GpioAsyncController`. `url` is a pyftdi URL (`ftdi://ftdi:232h/1`), `pin` the bit
    number (0 = ADBUS0/TXD), `active_high` whether a high level closes the switch.

    Switches on other pins of the same FTDI port share one controller (`_FtdiPort`): opening
    a port resets it, so a second controller would take the first switch's pin away. The pin
    is made an output only after the off level is in the chip's output latch, so it does not
    start at the on level. `close()` leaves the pin driving its level: handing it back to the
    UART would let the switch follow the UART's idle levels instead."""

    def __init__(self, url: str, pin: int, active_high: bool = True):
        if not 0 <= int(pin) <= 7:
            raise HilError(f"FTDI load switch: pin must be 0..7 (one byte of GPIO), not {pin!r}")
        self.url, self.pin, self.active_high = url, int(pin), bool(active_high)
        self.mask = 1 << self.pin
        self._port: _FtdiPort | None = _FtdiPort.acquire(url)
        try:
            self._port.add(self.mask, self._level(False))
        except BaseException:
            port, self._port = self._port, None
            with contextlib.suppress(Exception):  # the first error is the one to report
                port.release(0)
            raise

    def _level(self, on: bool) -> bool:
        return bool(on) == self.active_high

    def set(self, on: bool) -> None:
        if self._port is None:
            raise HilError(f"FTDI load switch {self.url} pin {self.pin}: used after close()")
        self._port.drive(self.mask, self._level(on))

    def close(self) -> None:
        if self._port is not None:
            self._port.release(self.mask)
            self._port = None


class _FtdiPort:
    """One FTDI port in asynchronous bit-bang mode, open once for all the switches on its
    pins, found by the port's USB identity (several URLs can name one chip)."""

    _open: dict[tuple, _FtdiPort] = {}
    _registry = threading.Lock()

    def __init__(self, url: str, key: tuple, gpio):
        self.url, self.key, self.gpio = url, key, gpio
        self.lock = threading.Lock()  # the latch and the USB transfers (boards run in threads)
        self.latch = 0   # what was last written to the pins
        self.used = 0    # pins of open switches
        self.users = 0

    @classmethod
    def acquire(cls, url: str) -> _FtdiPort:
        try:
            from pyftdi.ftdi import Ftdi
            from pyftdi.gpio import GpioAsyncController
        except ImportError as e:
            raise HilError("the FTDI load switch needs pyftdi: pip install pyftdi "
                           "(or the project's extra: pip install -e '.[hil]')") from e
        if "?" in url:  # pyftdi would list the devices and exit the process
            raise HilError(f"FTDI load switch: {url!r} is a device query, not a device; give "
                           f"one like ftdi://ftdi:232h/1")
        with cls._registry:
            try:
                desc, interface = Ftdi.get_identifiers(url)
                key = (desc.vid, desc.pid, desc.bus, desc.address, desc.sn, interface)
                port = cls._open.get(key)
                if port is None:
                    gpio = GpioAsyncController()
                    gpio.configure(url, direction=0)  # bit-bang, every pin an input for now
                    port = cls._open[key] = cls(url, key, gpio)
            except Exception as e:  # noqa: BLE001 - pyftdi raises USB and value errors
                raise HilError(f"FTDI load switch: cannot open {url!r}: {e}. List devices with "
                               f"`ftdi_urls.py` (pyftdi) and check USB permissions") from e
            port.users += 1
            return port

    def add(self, mask: int, level: bool) -> None:
        """Make the pins of `mask` outputs at `level`: the level goes into the latch first."""
        with self.lock:
            if self.used & mask:
                raise HilError(f"FTDI load switch: pin {mask.bit_length() - 1} of {self.url} "
                               f"is already used by another switch")
            self._write(mask, level)
            self._usb(self.gpio.set_direction, mask, mask)
            self._usb(self.gpio.write, self.latch)  # again, in case the chip dropped it
            self.used |= mask

    def drive(self, mask: int, level: bool) -> None:
        with self.lock:
            self._write(mask, level)

    def release(self, mask: int) -> None:
        """A switch is done with its pins (they keep their level); the last one closes the
        port without resetting it (pyftdi's `freeze`)."""
        with self._registry, self.lock:
            self.used &= ~mask
            self.users -= 1
            if self.users == 0:
                del self._open[self.key]
                self._usb(self.gpio.close, freeze=True)

    def _write(self, mask: int, level: bool) -> None:
        self.latch = self.latch | mask if level else self.latch & ~mask
        self._usb(self.gpio.write, self.latch)

    def _usb(self, call, *args, **kw) -> None:
        try:
            call(*args, **kw)
        except Exception as e:  # noqa: BLE001 - pyftdi's FtdiError, USBError, ...
            raise HilError(f"FTDI load switch {self.url}: {e}. Is the adapter still "
                           f"plugged in?") from e

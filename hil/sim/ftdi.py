"""A simulated FTDI FT232H on a simulated USB bus: a pyusb backend, for testing pyftdi users.

pyftdi finds USB devices through the pyusb backends named in
`pyftdi.usbtools.UsbTools.BACKENDS`; `simulate_ft232h()` puts this module there (alone, so no
real FTDI chip on the machine is touched) and plugs in an FT232H that answers what a real
one answers, at the level of USB transfers. The code under test goes through the real
pyftdi and pyusb and cannot tell the difference, except in timing:

    >>> from hil.sim.ftdi import simulate_ft232h
    >>> from pyftdi.gpio import GpioAsyncController
    >>> with simulate_ft232h(serial="SIM001") as chip:
    ...     gpio = GpioAsyncController()
    ...     gpio.configure("ftdi://ftdi:232h:SIM001/1", direction=0x10)
    ...     gpio.write(0x10); gpio.close(freeze=True)
    ...     hex(chip.pins & 0x10), chip.mode, hex(chip.direction)
    ('0x10', 1, '0x10')

What is simulated, and from which documents:

* USB identity (FT232H datasheet, pyftdi's device table): VID 0x0403, PID 0x6014, bcdDevice
  0x0900; one configuration, one vendor-specific interface with bulk IN 0x81 and bulk OUT
  0x02 of 512 bytes (high speed); strings "FTDI", "Single RS232-HS" and the serial number
  (`serial=None`: none, as a chip with a blank EEPROM enumerates; the EEPROM reads blank
  either way).
* The vendor control requests (bmRequestType 0x40 out / 0xC0 in), numbered as in libftdi's
  ftdi.h and Linux's ftdi_sio.h: SIO_RESET (0: reset, 1/2: purge buffers), SET_MODEM_CTRL (1),
  SET_FLOW_CTRL (2), SET_BAUDRATE (3), SET_DATA (4), POLL_MODEM_STATUS (5), SET_EVENT_CHAR (6),
  SET_ERROR_CHAR (7), SET_LATENCY_TIMER (9, 1..255 ms), GET_LATENCY_TIMER (0x0A),
  SET_BITMODE (0x0B: wValue low byte the direction mask, 1 = output, high byte the mode),
  READ_PINS (0x0C) and READ_EEPROM (0x90, one 16-bit word; the EEPROM is blank, all 0xFFFF).
  SIO reset does what ftdi_sio.h lists (flow control off, event and error characters off, DTR
  and RTS cleared, baud rate and data format kept). Standard GET_DESCRIPTOR and GET_STATUS
  are answered; any other request, a bit mode other than reset (0) and asynchronous bit-bang
  (1), a wrong direction or a bad value stalls: a `usb.core.USBError` with errno EPIPE, as
  libusb reports a stall — never silently accepted.
* Asynchronous bit-bang (FTDI AN_232R-01, the knowledge base's "Asynchronous Bit Bang
  Mode"): each byte written to bulk OUT 0x02 goes to the output latch, and ADBUS0..7 set as
  outputs in the direction mask drive its bits; pins hold the last value written. The latch
  also keeps the bits of pins that are inputs, so writing before making a pin an output sets
  its first level (FTDI's descriptions of the mode do not say what becomes of those bits;
  this is the reading of "hold the last value written"). Every bulk IN packet starts with
  the two modem status bytes, 0x32 0x60 (CTS and DSR set, transmitter holding register and
  transmitter empty; bit 1 of the first byte is undocumented), then in bit-bang mode one
  sample of the pins.
* UART mode (bit mode 0, the state after power-up): ADBUS0 is TXD, idling high; ADBUS2 and
  ADBUS4 are RTS# and DTR#, driven low while RTS/DTR are set (FT232H datasheet pin table);
  bytes written are kept in `uart_tx` (not shifted out); nothing is received.
* A pin nobody drives reads `inputs` (default 0xFF: pulled high; a test sets it to model what
  the board drives).

Not modelled: timing (transfers complete at once; the baud rate, latency timer and FIFOs only
have their values recorded), MPSSE and the other modes, CBUS pins, EEPROM writes, several
ports (FT2232H/FT4232H), USB resets beyond forgetting the configuration.

`chip.pins` (levels at ADBUS0..7 now), `chip.direction`, `chip.mode`, `chip.latch`,
`chip.inputs` (settable), `chip.latency`, `chip.requests` (every control request, in order),
and `chip.history`: a `PinChange(t, pins, direction, mode)` at each change of any of them,
`t` from `time.monotonic()`; `chip.pin_history(n)` gives pin n's levels over time.
`chip.close()` unplugs it: transfers on a handle still open fail with ENODEV, as after a real
unplug; once the last simulated chip is closed pyftdi's USB backends and device cache are
restored.

Public names: `simulate_ft232h`, `SimulatedFT232H`, `PinChange`, `ControlRequest`,
`get_backend`.
"""

from __future__ import annotations

import array
import errno
import itertools
import struct
import threading
import time
from types import SimpleNamespace
from typing import NamedTuple, NoReturn

import usb.backend
from usb.core import USBError

__all__ = ["simulate_ft232h", "SimulatedFT232H", "PinChange", "ControlRequest", "get_backend"]

VID, PID, BCD_DEVICE = 0x0403, 0x6014, 0x0900
EP_IN, EP_OUT = 0x81, 0x02
MAX_PACKET = 512                    # high-speed bulk endpoints
EEPROM_WORDS = 128                  # 256 bytes, a 93C56: what pyftdi reads of an FT232H
MODEM_STATUS = bytes((0x32, 0x60))
LANGID_EN_US = 0x0409

# bRequest of the vendor requests (libftdi ftdi.h, Linux ftdi_sio.h)
SIO_RESET, SIO_SET_MODEM_CTRL, SIO_SET_FLOW_CTRL, SIO_SET_BAUDRATE, SIO_SET_DATA = 0, 1, 2, 3, 4
SIO_POLL_MODEM_STATUS, SIO_SET_EVENT_CHAR, SIO_SET_ERROR_CHAR = 5, 6, 7
SIO_SET_LATENCY_TIMER, SIO_GET_LATENCY_TIMER, SIO_SET_BITMODE, SIO_READ_PINS = 9, 0x0A, 0x0B, 0x0C
SIO_READ_EEPROM = 0x90
MODE_RESET, MODE_BITBANG = 0x00, 0x01
MODE_NAMES = {0x02: "MPSSE", 0x04: "synchronous bit-bang", 0x08: "MCU host bus emulation",
              0x10: "fast opto-isolated serial", 0x20: "CBUS bit-bang",
              0x40: "synchronous FIFO"}
VENDOR_OUT, VENDOR_IN, STANDARD_IN = 0x40, 0xC0, 0x80

# libusb's error codes, as pyusb's libusb1 backend reports them
_PIPE, _NO_DEVICE, _NOT_FOUND = (-9, errno.EPIPE), (-4, errno.ENODEV), (-5, errno.ENOENT)


class PinChange(NamedTuple):
    t: float                        # time.monotonic()
    pins: int                       # levels at ADBUS0..7
    direction: int                  # 1 = output
    mode: int                       # 0 UART, 1 asynchronous bit-bang


class ControlRequest(NamedTuple):
    t: float
    bmRequestType: int
    bRequest: int
    wValue: int
    wIndex: int


def simulate_ft232h(serial: str | None = "SIM001", **options) -> SimulatedFT232H:
    """Plug a simulated FT232H into the simulated bus; pyftdi sees only simulated chips until
    the last one is closed. `ftdi://ftdi:232h:SERIAL/1` (or `ftdi://ftdi:232h/1` when it is
    the only one) opens it. Options: `inputs`, `manufacturer`, `product`."""
    from pyftdi.usbtools import UsbTools

    global _saved_backends
    chip = SimulatedFT232H(serial, **options)
    with _bus_lock:
        if serial is not None and any(c.serial == serial for c in _bus):
            raise ValueError(f"a simulated FT232H with serial {serial!r} is already plugged in")
        if not _bus:
            _saved_backends = UsbTools.BACKENDS
            UsbTools.BACKENDS = (__name__,)
        # never reuse an address: pyftdi keeps open devices by (bus, address, vid, pid)
        chip.address = next(_addresses)
        _bus.append(chip)
    UsbTools.flush_cache()  # pyftdi caches the enumeration: make it see the new chip
    return chip


class SimulatedFT232H:
    """One FT232H: its USB descriptors, its registers and its pins (see the module docstring)."""

    def __init__(self, serial: str | None = "SIM001", *, inputs: int = 0xFF,
                 manufacturer: str = "FTDI", product: str = "Single RS232-HS"):
        self.serial = serial
        self.strings = {1: manufacturer, 2: product, **({3: serial} if serial else {})}
        self.bus, self.address = 254, 0  # set when plugged in
        self.lock = threading.RLock()
        self.plugged = True
        self.configuration = 1          # the host configured it when it was plugged in
        self._inputs = inputs & 0xFF
        self.mode = MODE_RESET
        self.direction = 0
        self.latch = 0                  # bit-bang output register
        self.dtr = self.rts = False
        self.flow = 0                   # wIndex high byte of SET_FLOW_CTRL
        self.event_char = self.error_char = 0
        self.baud_divisor: int | None = None
        self.line = 0                   # SET_DATA's wValue: data bits, parity, stop bits, break
        self.latency = 16               # ms, the chip's default
        self.uart_tx = bytearray()
        self.requests: list[ControlRequest] = []
        self.history: list[PinChange] = [PinChange(time.monotonic(), self.pins, 0, MODE_RESET)]

    # -- what a test looks at ---------------------------------------------------------------

    @property
    def pins(self) -> int:
        """Levels at ADBUS0..7 now."""
        with self.lock:
            if self.mode == MODE_BITBANG:
                driven, level = self.direction, self.latch
            else:  # UART: TXD idles high, RTS# and DTR# are the inverted modem-control bits
                driven = 0x15
                level = 0x01 | (0 if self.rts else 0x04) | (0 if self.dtr else 0x10)
            return (level & driven) | (self._inputs & ~driven & 0xFF)

    @property
    def inputs(self) -> int:
        return self._inputs

    @inputs.setter
    def inputs(self, levels: int) -> None:
        """What the outside world drives on the pins the chip does not drive."""
        with self.lock:
            self._inputs = levels & 0xFF
            self._changed()

    def pin_history(self, pin: int) -> list[tuple[float, int]]:
        """(t, level) of pin `pin` at the start and at each change."""
        out: list[tuple[float, int]] = []
        with self.lock:
            for change in self.history:
                level = change.pins >> pin & 1
                if not out or out[-1][1] != level:
                    out.append((change.t, level))
        return out

    def close(self) -> None:
        """Unplug the chip (see the module docstring)."""
        from pyftdi.usbtools import UsbTools

        with _bus_lock:
            if self not in _bus:
                return
            _bus.remove(self)
            with self.lock:
                self.plugged = False
            if not _bus:
                UsbTools.release_all_devices(SimulatedFT232H)
                UsbTools.BACKENDS = _saved_backends
        UsbTools.flush_cache()

    def __enter__(self) -> SimulatedFT232H:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SimulatedFT232H serial={self.serial!r} pins=0x{self.pins:02x}>"

    # -- the device side of the transfers -------------------------------------------------------

    def _changed(self) -> None:
        last = self.history[-1]
        now = (self.pins, self.direction, self.mode)
        if now != (last.pins, last.direction, last.mode):
            self.history.append(PinChange(time.monotonic(), *now))

    def control(self, bmRequestType: int, bRequest: int, wValue: int, wIndex: int,
                data: bytes, length: int) -> bytes:
        """One control transfer; returns the IN data stage (b"" for OUT requests)."""
        with self.lock:
            self._check_plugged()
            self.requests.append(ControlRequest(time.monotonic(), bmRequestType, bRequest,
                                                wValue, wIndex))
            if bmRequestType == STANDARD_IN:
                return self._standard(bRequest, wValue, wIndex)[:length]
            if bmRequestType not in (VENDOR_OUT, VENDOR_IN):
                _stall(f"request type 0x{bmRequestType:02x}")
            is_in = bmRequestType == VENDOR_IN
            if bRequest == SIO_READ_EEPROM and is_in:
                if wIndex >= EEPROM_WORDS:
                    _stall(f"EEPROM word {wIndex} (the EEPROM has {EEPROM_WORDS})")
                return b"\xff\xff"[:length]
            if wIndex & 0xFF not in (0, 1):  # the port: 0 (any) or 1 (A), the FT232H's only one
                _stall(f"port {wIndex & 0xFF} (an FT232H has one port)")
            if is_in:
                reply = self._vendor_in(bRequest)
                return reply[:length]
            self._vendor_out(bRequest, wValue, wIndex)
            self._changed()
            return b""

    def _standard(self, bRequest: int, wValue: int, wIndex: int) -> bytes:
        if bRequest == 0:                                  # GET_STATUS: bus-powered, wakeup off
            return b"\x00\x00"
        if bRequest != 6:                                  # GET_DESCRIPTOR
            _stall(f"standard request {bRequest}")
        kind, index = wValue >> 8, wValue & 0xFF
        if kind == 1:
            return _pack_device(self)
        if kind == 2 and index == 0:
            return _pack_configuration()
        if kind == 3 and index == 0:
            return bytes((4, 3)) + struct.pack("<H", LANGID_EN_US)
        if kind == 3 and index in self.strings and wIndex == LANGID_EN_US:
            text = self.strings[index].encode("utf-16-le")
            return bytes((2 + len(text), 3)) + text
        _stall(f"descriptor type {kind} index {index}")

    def _vendor_in(self, bRequest: int) -> bytes:
        if bRequest == SIO_POLL_MODEM_STATUS:
            return MODEM_STATUS
        if bRequest == SIO_GET_LATENCY_TIMER:
            return bytes((self.latency,))
        if bRequest == SIO_READ_PINS:
            return bytes((self.pins,))
        _stall(f"vendor IN request 0x{bRequest:02x}")

    def _vendor_out(self, bRequest: int, wValue: int, wIndex: int) -> None:
        if bRequest == SIO_RESET:
            if wValue == 0:
                self.flow, self.event_char, self.error_char = 0, 0, 0
                self.dtr = self.rts = False
            elif wValue not in (1, 2):                     # 1, 2: purge; nothing is buffered
                _stall(f"SIO_RESET value {wValue}")
        elif bRequest == SIO_SET_MODEM_CTRL:
            if wValue & 0x100:
                self.dtr = bool(wValue & 0x01)
            if wValue & 0x200:
                self.rts = bool(wValue & 0x02)
        elif bRequest == SIO_SET_FLOW_CTRL:
            if wIndex >> 8 not in (0, 1, 2, 4):            # off, RTS/CTS, DTR/DSR, XON/XOFF
                _stall(f"flow control 0x{wIndex >> 8:02x}")
            self.flow = wIndex >> 8
        elif bRequest == SIO_SET_BAUDRATE:
            self.baud_divisor = wValue | (wIndex >> 8) << 16
        elif bRequest == SIO_SET_DATA:
            self.line = wValue
        elif bRequest == SIO_SET_EVENT_CHAR:
            self.event_char = wValue
        elif bRequest == SIO_SET_ERROR_CHAR:
            self.error_char = wValue
        elif bRequest == SIO_SET_LATENCY_TIMER:
            if not 1 <= wValue <= 255:
                _stall(f"latency {wValue} ms")
            self.latency = wValue
        elif bRequest == SIO_SET_BITMODE:
            mode = wValue >> 8
            if mode not in (MODE_RESET, MODE_BITBANG):
                _stall(f"bit mode 0x{mode:02x} ({MODE_NAMES.get(mode, 'unknown')}) is not "
                       f"simulated")
            self.mode, self.direction = mode, wValue & 0xFF
        else:
            _stall(f"vendor OUT request 0x{bRequest:02x}")

    def bulk_out(self, data: bytes) -> int:
        with self.lock:
            self._check_plugged()
            if self.mode == MODE_BITBANG:
                for byte in data:      # each byte is one step of the output pins
                    self.latch = byte
                    self._changed()
            else:
                self.uart_tx += data
            return len(data)

    def bulk_in(self, size: int) -> bytes:
        with self.lock:
            self._check_plugged()
            packet = MODEM_STATUS + (bytes((self.pins,)) if self.mode == MODE_BITBANG else b"")
            return packet[:min(size, MAX_PACKET)]

    def _check_plugged(self) -> None:
        if not self.plugged:
            raise USBError("No such device (it may have been disconnected)", *_NO_DEVICE)


# -- the pyusb backend ------------------------------------------------------------------------


def get_backend() -> usb.backend.IBackend:
    """The backend pyftdi loads from `UsbTools.BACKENDS`."""
    return _backend


class _Handle:
    def __init__(self, chip: SimulatedFT232H):
        self.chip, self.claimed = chip, set()


class _Backend(usb.backend.IBackend):
    """pyusb's backend interface over the simulated bus; the "device" objects pyusb passes
    back are the `SimulatedFT232H`s themselves."""

    def enumerate_devices(self):
        with _bus_lock:
            return list(_bus)

    def get_parent(self, dev):
        return None

    def get_device_descriptor(self, dev):
        return _device_descriptor(dev)

    def get_configuration_descriptor(self, dev, config):
        if config != 0:
            raise IndexError(f"no configuration {config}")
        return _CONFIGURATION

    def get_interface_descriptor(self, dev, intf, alt, config):
        if (intf, alt, config) != (0, 0, 0):
            raise IndexError(f"no interface {intf} alternate setting {alt}")
        return _INTERFACE

    def get_endpoint_descriptor(self, dev, ep, intf, alt, config):
        if (intf, alt, config) != (0, 0, 0) or not 0 <= ep < len(_ENDPOINTS):
            raise IndexError(f"no endpoint {ep}")
        return _ENDPOINTS[ep]

    def open_device(self, dev):
        dev._check_plugged()
        return _Handle(dev)

    def close_device(self, dev_handle):
        dev_handle.claimed.clear()

    def set_configuration(self, dev_handle, config_value):
        chip = dev_handle.chip
        chip._check_plugged()
        if config_value not in (0, 1):
            _stall(f"configuration {config_value}")
        chip.configuration = config_value

    def get_configuration(self, dev_handle):
        dev_handle.chip._check_plugged()
        return dev_handle.chip.configuration

    def set_interface_altsetting(self, dev_handle, intf, altsetting):
        dev_handle.chip._check_plugged()
        if (intf, altsetting) != (0, 0):
            _stall(f"interface {intf} alternate setting {altsetting}")

    def claim_interface(self, dev_handle, intf):
        dev_handle.chip._check_plugged()
        if intf != 0:
            raise USBError("Entity not found", *_NOT_FOUND)
        dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle, intf):
        dev_handle.chip._check_plugged()
        dev_handle.claimed.discard(intf)

    def bulk_write(self, dev_handle, ep, intf, data, timeout):
        if ep != EP_OUT:
            _stall(f"bulk write to endpoint 0x{ep:02x}")
        return dev_handle.chip.bulk_out(bytes(data))

    def bulk_read(self, dev_handle, ep, intf, buff, timeout):
        if ep != EP_IN:
            _stall(f"bulk read from endpoint 0x{ep:02x}")
        packet = dev_handle.chip.bulk_in(len(buff))
        buff[:len(packet)] = array.array("B", packet)
        return len(packet)

    def ctrl_transfer(self, dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout):
        chip = dev_handle.chip
        if bmRequestType & 0x80:
            reply = chip.control(bmRequestType, bRequest, wValue, wIndex, b"", len(data))
            data[:len(reply)] = array.array("B", reply)
            return len(reply)
        chip.control(bmRequestType, bRequest, wValue, wIndex, bytes(data), 0)
        return len(data)

    def clear_halt(self, dev_handle, ep):
        dev_handle.chip._check_plugged()

    def reset_device(self, dev_handle):
        chip = dev_handle.chip
        with chip.lock:
            chip._check_plugged()
            chip.configuration = 0

    def is_kernel_driver_active(self, dev_handle, intf):
        return False

    def detach_kernel_driver(self, dev_handle, intf):
        raise USBError("Entity not found", *_NOT_FOUND)

    def attach_kernel_driver(self, dev_handle, intf):
        raise USBError("Entity not found", *_NOT_FOUND)


# -- descriptors -------------------------------------------------------------------------------


def _stall(why: str) -> NoReturn:
    raise USBError(f"Pipe error (simulated FT232H stalls: {why})", *_PIPE)


def _device_descriptor(chip: SimulatedFT232H) -> SimpleNamespace:
    return SimpleNamespace(
        bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
        bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=VID, idProduct=PID,
        bcdDevice=BCD_DEVICE, iManufacturer=1, iProduct=2, iSerialNumber=3 if chip.serial else 0,
        bNumConfigurations=1, bus=chip.bus, address=chip.address, port_number=chip.address,
        port_numbers=(chip.address,), speed=3)  # 3: high speed (libusb's numbering)


_CONFIGURATION = SimpleNamespace(
    bLength=9, bDescriptorType=2, wTotalLength=9 + 9 + 7 + 7, bNumInterfaces=1,
    bConfigurationValue=1, iConfiguration=0, bmAttributes=0xA0, bMaxPower=45,  # 90 mA
    extra_descriptors=[])
_INTERFACE = SimpleNamespace(
    bLength=9, bDescriptorType=4, bInterfaceNumber=0, bAlternateSetting=0, bNumEndpoints=2,
    bInterfaceClass=0xFF, bInterfaceSubClass=0xFF, bInterfaceProtocol=0xFF, iInterface=2,
    extra_descriptors=[])
_ENDPOINTS = tuple(SimpleNamespace(
    bLength=7, bDescriptorType=5, bEndpointAddress=address, bmAttributes=2,  # 2: bulk
    wMaxPacketSize=MAX_PACKET, bInterval=0, bRefresh=0, bSynchAddress=0, extra_descriptors=[])
    for address in (EP_IN, EP_OUT))


def _pack_device(chip: SimulatedFT232H) -> bytes:
    d = _device_descriptor(chip)
    return struct.pack("<BBHBBBBHHHBBBB", d.bLength, d.bDescriptorType, d.bcdUSB,
                       d.bDeviceClass, d.bDeviceSubClass, d.bDeviceProtocol, d.bMaxPacketSize0,
                       d.idVendor, d.idProduct, d.bcdDevice, d.iManufacturer, d.iProduct,
                       d.iSerialNumber, d.bNumConfigurations)


def _pack_configuration() -> bytes:
    c, i = _CONFIGURATION, _INTERFACE
    out = struct.pack("<BBHBBBBB", c.bLength, c.bDescriptorType, c.wTotalLength,
                      c.bNumInterfaces, c.bConfigurationValue, c.iConfiguration,
                      c.bmAttributes, c.bMaxPower)
    out += struct.pack("<BBBBBBBBB", i.bLength, i.bDescriptorType, i.bInterfaceNumber,
                       i.bAlternateSetting, i.bNumEndpoints, i.bInterfaceClass,
                       i.bInterfaceSubClass, i.bInterfaceProtocol, i.iInterface)
    for e in _ENDPOINTS:
        out += struct.pack("<BBBBHB", e.bLength, e.bDescriptorType, e.bEndpointAddress,
                           e.bmAttributes, e.wMaxPacketSize, e.bInterval)
    return out


_backend = _Backend()
_bus: list[SimulatedFT232H] = []
_bus_lock = threading.RLock()
_addresses = itertools.count(1)
_saved_backends: tuple[str, ...] = ()

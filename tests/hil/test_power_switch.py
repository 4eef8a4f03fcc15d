"""The FTDI load switch (`hil.power.FtdiGpioSwitch`, `SwitchedPower`) against a simulated FT232H.

`hil.sim.ftdi` plugs a simulated FT232H into pyusb as a backend, so the switch runs through
the real pyftdi and pyusb down to USB control and bulk transfers; what the tests check is
what the chip's pins did (`chip.pins`, `chip.history`). The supply is a simulated Rigol
DP832 on a pseudo-terminal, driven by the real `hil.psu` driver, which also notes when each
command arrived. Timing is only compared (a cut through the switch against a supply output
toggle), never held to an absolute figure.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import statistics
import time

import pytest

pytest.importorskip("pyftdi", reason="the FTDI load switch needs pyftdi (extra `hil`)")

from hil.errors import HilError, RackError  # noqa: E402
from hil.power import FtdiGpioSwitch, SupplyPower, SwitchedPower  # noqa: E402
from hil.psu import SupplyResource  # noqa: E402
from hil.rack import SwitchSpec, load_rack, parse_rack  # noqa: E402
from hil.sim import PtyEndpoint, Resistor, RigolDP832Sim, SimulatedInstrument  # noqa: E402
from hil.sim.ftdi import simulate_ft232h  # noqa: E402

URL = "ftdi://ftdi:232h:SIM001/1"
OTHERS = 0xA5  # what the board drives on the pins the switch does not use
needs_visa = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("pyvisa", "pyvisa_py")),
    reason="the DP832 driver needs pyvisa and pyvisa-py")
POLARITY = pytest.mark.parametrize("active_high", [True, False], ids=["active-high", "active-low"])
PINS = pytest.mark.parametrize("pin", range(8))


class TimedDP832(RigolDP832Sim):
    """The simulated DP832, also noting when each command arrived (`time.monotonic()`, the
    clock of the FT232H's history)."""

    def __init__(self, **options):
        super().__init__(**options)
        self.arrivals: list[tuple[float, str]] = []

    def accept(self, line: str, now: float) -> bool:
        self.arrivals.append((now, line))
        return True


@pytest.fixture
def chip():
    with simulate_ft232h(serial="SIM001") as c:
        yield c


@pytest.fixture
def dp832():
    device = TimedDP832(loads={1: Resistor(100.0)})
    with SimulatedInstrument("rigol-dp832", device, PtyEndpoint(device), scpi=True) as sim:
        yield sim


def level(chip, pin: int) -> int:
    return chip.pins >> pin & 1


def levels_since_output(chip, pin: int, start: int = 0) -> list[int]:
    """The levels pin `pin` took, in order, from the moment (after history entry `start`) it
    became a bit-bang output."""
    history = chip.history[start:]
    first = next(i for i, c in enumerate(history) if c.mode == 1 and c.direction >> pin & 1)
    levels = [c.pins >> pin & 1 for c in history[first:]]
    return [lvl for i, lvl in enumerate(levels) if i == 0 or levels[i - 1] != lvl]


# -- the switch on its own ----------------------------------------------------------------------


@POLARITY
@PINS
def test_open_makes_only_that_pin_an_output_at_the_off_level(chip, pin, active_high):
    chip.inputs = OTHERS
    off = 0 if active_high else 1
    switch = FtdiGpioSwitch(URL, pin, active_high)
    try:
        assert chip.mode == 1 and chip.direction == 1 << pin  # asynchronous bit-bang
        assert chip.pins == (OTHERS & ~(1 << pin)) | off << pin
        # never at the on level, not even between entering bit-bang and the first write
        assert set(levels_since_output(chip, pin)) == {off}
    finally:
        switch.close()


@POLARITY
@PINS
def test_set_drives_exactly_that_pin(chip, pin, active_high):
    chip.inputs = OTHERS
    on, off = (1, 0) if active_high else (0, 1)
    switch = FtdiGpioSwitch(URL, pin, active_high)
    try:
        start = len(chip.history)
        for state in (True, False, True, True, False):
            switch.set(state)
            assert chip.pins == (OTHERS & ~(1 << pin)) | (on if state else off) << pin
        changes = chip.history[start - 1:]
        assert [c.pins >> pin & 1 for c in changes] == [off, on, off, on, off]
        # each change is that pin alone; the direction stays that pin alone
        assert all(a.pins ^ b.pins == 1 << pin for a, b in zip(changes, changes[1:]))
        assert {c.direction for c in changes} == {1 << pin}
    finally:
        switch.close()


@pytest.mark.parametrize("pin", [8, -1])
def test_a_pin_outside_the_byte_is_refused_before_any_usb_traffic(chip, pin):
    with pytest.raises(HilError) as e:
        FtdiGpioSwitch(URL, pin)
    assert str(e.value) == f"FTDI load switch: pin must be 0..7 (one byte of GPIO), not {pin}"
    assert chip.requests == [] and chip.mode == 0


def test_a_url_without_a_device_names_the_url(chip):
    url = "ftdi://ftdi:232h:NOPE/1"
    with pytest.raises(HilError) as e:
        FtdiGpioSwitch(url, 0)
    assert str(e.value) == (f"FTDI load switch: cannot open {url!r}: No USB device with S/N "
                            f"NOPE. List devices with `ftdi_urls.py` (pyftdi) and check USB "
                            f"permissions")
    assert chip.mode == 0 and chip.direction == 0
    with simulate_ft232h(serial="SIM002"):  # two adapters, a URL that names neither
        with pytest.raises(HilError, match=r"^FTDI load switch: cannot open 'ftdi://ftdi:232h/1'"
                                           r": 2 USB devices match URL"):
            FtdiGpioSwitch("ftdi://ftdi:232h/1", 0)
    with pytest.raises(HilError, match=r"cannot open 'ftdi://ftdi:232h:SIM001/2': No such FTDI "
                                       r"port: 2"):
        FtdiGpioSwitch("ftdi://ftdi:232h:SIM001/2", 0)
    # pyftdi answers a "?" URL by printing the devices and exiting the process
    with pytest.raises(HilError, match="'ftdi://ftdi:232h/\\?' is a device query"):
        FtdiGpioSwitch("ftdi://ftdi:232h/?", 0)


def test_switches_on_pins_of_one_port_share_it(chip):
    a = FtdiGpioSwitch(URL, 2)
    a.set(True)
    # the same chip under another URL: opening the port again would reset pin 2
    b = FtdiGpioSwitch("ftdi://ftdi:232h/1", 5, active_high=False)
    try:
        assert chip.direction == 1 << 2 | 1 << 5
        assert level(chip, 2) == 1 and level(chip, 5) == 1  # a on, b off (high)
        b.set(True)
        assert level(chip, 2) == 1 and level(chip, 5) == 0
        a.set(False)
        assert level(chip, 2) == 0 and level(chip, 5) == 0
        with pytest.raises(HilError, match=r"pin 2 of .* is already used by another switch"):
            FtdiGpioSwitch(URL, 2)
        assert chip.direction == 1 << 2 | 1 << 5
    finally:
        b.close()
    a.set(True)
    assert level(chip, 2) == 1 and level(chip, 5) == 0
    assert [lvl for _, lvl in chip.pin_history(2)][-3:] == [1, 0, 1]  # no glitch from b
    assert levels_since_output(chip, 5) == [1, 0]  # off, on: b's pin was never disturbed
    a.close()


def test_close_leaves_the_pin_driven_and_a_new_switch_starts_off(chip):
    switch = FtdiGpioSwitch(URL, 6)
    switch.set(True)
    switch.close()
    # not handed back to the UART, whose idle levels would decide the board's power
    assert chip.mode == 1 and chip.direction == 1 << 6 and level(chip, 6) == 1
    with pytest.raises(HilError, match="used after close"):
        switch.set(False)
    start = len(chip.history)
    again = FtdiGpioSwitch(URL, 6)
    try:
        assert level(chip, 6) == 0 and chip.direction == 1 << 6
        # pyftdi resets the port when it opens it: for that moment the pin is the UART's
        assert 0 in {c.mode for c in chip.history[start:]}
        assert set(levels_since_output(chip, 6, start)) == {0}
    finally:
        again.close()


def test_an_unplugged_adapter_is_a_hil_error_naming_the_url(chip):
    url = "ftdi://ftdi:232h:GONE/1"
    gone = simulate_ft232h(serial="GONE")
    switch = FtdiGpioSwitch(url, 1)
    gone.close()  # pulled out; SIM001 stays plugged in
    with pytest.raises(HilError, match=rf"^FTDI load switch {url}: .*No such device.* Is the "
                                       rf"adapter still plugged in\?"):
        switch.set(True)
    with pytest.raises(HilError, match="No such device"):
        switch.close()
    switch.close()  # once is enough


# -- SwitchedPower: a supply kept on, the switch cutting -----------------------------------------


@needs_visa
def test_switched_power_keeps_the_supply_on_and_cuts_with_the_switch(chip, dp832):
    channel = dp832.device.channels[1]
    power = SwitchedPower(SupplyResource("rigol-dp832", dp832.resource, 1, {}),
                          FtdiGpioSwitch(URL, 4), 3.3, 0.05)
    try:
        power.setup()
        with dp832.device.lock:
            assert channel.on and channel.voltage == 3.3 and channel.current == 0.05
        assert level(chip, 4) == 0 and power.is_on is False and power.switches == 0
        # the switch was off before the supply's output came on, and stayed off
        switched_off = next(c.t for c in chip.history if c.mode == 1 and c.direction >> 4 & 1)
        output_on = [t for t, line in dp832.device.arrivals if line == ":OUTP CH1,ON"]
        assert len(output_on) == 1 and switched_off < output_on[0]
        assert set(levels_since_output(chip, 4)) == {0}

        commands = len(dp832.device.arrivals)
        for _ in range(3):
            power.on()
            assert level(chip, 4) == 1 and power.is_on
            power.off()
            assert level(chip, 4) == 0 and not power.is_on
        power.cycle(off_time=0.01)
        assert power.switches == 8 and power.is_on and level(chip, 4) == 1
        assert levels_since_output(chip, 4) == [0, 1, 0, 1, 0, 1, 0, 1]  # cycle: off already
        # the supply was not touched: no command at all, its output still on
        assert dp832.device.arrivals[commands:] == []
        with dp832.device.lock:
            assert channel.on and channel.measure() == pytest.approx((3.3, 0.033))
    finally:
        power.close()
    with dp832.device.lock:
        assert channel.on  # closing leaves the power as it is, the supply's as the switch's
    assert chip.mode == 1 and level(chip, 4) == 1


@needs_visa
def test_a_cut_through_the_switch_is_much_faster_than_a_supply_toggle(chip, dp832):
    power = SwitchedPower(SupplyResource("rigol-dp832", dp832.resource, 1, {}),
                          FtdiGpioSwitch(URL, 0), 3.3, 0.05)
    try:
        power.setup()
        plain = SupplyPower(power.psu, 3.3)  # the same supply, switched by its output
        switch_cut, supply_cut, pin_delay = [], [], []
        for _ in range(9):
            power.on()
            start = time.monotonic()
            power.off()
            switch_cut.append(time.monotonic() - start)
            pin_delay.append(chip.history[-1].t - start)
            start = time.monotonic()
            plain.off()
            supply_cut.append(time.monotonic() - start)
            plain.on()
        # the pin changed inside the call
        assert all(0 <= d <= cut for d, cut in zip(pin_delay, switch_cut))
        fast, slow = statistics.median(switch_cut), statistics.median(supply_cut)
        assert fast * 3 < slow, (f"switch {fast * 1e3:.3f} ms, supply output "
                                 f"{slow * 1e3:.3f} ms (medians of 9)")
    finally:
        power.close()


# -- the rack file -------------------------------------------------------------------------------


@needs_visa
def test_a_rack_board_with_a_switch_is_powered_through_it(tmp_path, chip, dp832):
    controller, console = os.openpty()  # the board's serial console (not used here)
    try:
        rack_file = tmp_path / "rack.yaml"
        rack_file.write_text(f"""\
boards:
  - name: fr5994-switched
    type: msp430fr5994
    console: {{port: {os.ttyname(console)}}}
    power:
      supply: {{model: rigol-dp832, resource: "{dp832.resource}", channel: 1}}
      voltage: 3.3
      current_limit: 0.05
      switch: {{kind: ftdi, url: "{URL}", pin: 4, active_high: false}}
    flasher: {{kind: mspdebug, driver: sim}}
""")
        rack = load_rack(rack_file)
        spec = rack.boards[0]
        assert spec.power.switch == SwitchSpec("ftdi", URL, 4, False)
        channel = dp832.device.channels[1]
        with rack.session() as session:
            board = session.open_board(spec)
            assert isinstance(board.power, SwitchedPower)
            with dp832.device.lock:
                assert channel.on and channel.voltage == 3.3 and channel.current == 0.05
            assert level(chip, 4) == 1 and chip.direction == 1 << 4  # active low: high is off
            commands = len(dp832.device.arrivals)
            board.power.on()
            assert level(chip, 4) == 0
            board.power.cycle(off_time=0.01)
            assert levels_since_output(chip, 4) == [1, 0, 1, 0]
            assert dp832.device.arrivals[commands:] == []  # the supply was left alone
        assert chip.mode == 1 and level(chip, 4) == 0 and channel.on
    finally:
        os.close(controller)
        os.close(console)


def real_board(name: str = "a", **switch):
    return {"name": name, "type": "msp430fr5994", "console": {"port": "/dev/ttyACM0"},
            "power": {"supply": {"model": "rigol-dp832",
                                 "resource": "TCPIP::192.0.2.5::5555::SOCKET"},
                      "voltage": 3.3, "switch": switch},
            "flasher": {"kind": "mspdebug", "driver": "tilib"}}


GOOD = {"kind": "ftdi", "url": "ftdi://ftdi:232h/1", "pin": 4}
BAD_SWITCHES = [
    ([real_board(kind="ftdi", pin=4)], "boards[0].power.switch.url: missing",
     "e.g. ftdi://ftdi:232h/1"),
    ([real_board(**{**GOOD, "kind": "gpiod"})],
     "boards[0].power.switch.kind: unknown load-switch kind 'gpiod'", "use ftdi"),
    ([real_board(**{**GOOD, "pin": 8})], "boards[0].power.switch.pin: must be 0..7, not 8", ""),
    ([real_board(**{**GOOD, "pin": -1})], "boards[0].power.switch.pin: must be 0..7, not -1", ""),
    ([real_board(**{**GOOD, "pin": "4"})],
     "boards[0].power.switch.pin: must be an integer, not '4'", ""),
    ([real_board(**{**GOOD, "url": "/dev/ttyUSB0"})],
     "boards[0].power.switch.url: '/dev/ttyUSB0' is not a pyftdi device URL", "ftdi_urls.py"),
    ([real_board(**{**GOOD, "url": "ftdi://ftdi:232h/?"})],
     "boards[0].power.switch.url: 'ftdi://ftdi:232h/?' is not a pyftdi device URL", ""),
    ([real_board(**GOOD, polarity="low")], "boards[0].power.switch: unknown key(s) polarity",
     "known keys here: active_high, kind, pin, url"),
    ([{"name": "v", "type": "msp430fr5994", "virtual": True,
       "power": {"supply": {"model": "rigol-dp832", "simulated": True}, "voltage": 3.3,
                 "switch": GOOD}}],
     "boards[0].power.switch.kind: a virtual board has no load switch", "remove power.switch"),
    ([real_board("a", **GOOD), real_board("b", **GOOD)],
     "boards[1].power.switch: pin 4 of ftdi://ftdi:232h/1 already switches board 'a'",
     "give each board its own pin"),
]


@pytest.mark.parametrize("boards,where,fix", BAD_SWITCHES)
def test_rack_switch_validation_names_the_key_and_the_fix(tmp_path, boards, where, fix):
    with pytest.raises(RackError) as e:
        parse_rack({"boards": boards}, tmp_path / "rack.yaml")
    message = str(e.value)
    assert message.startswith(f"{tmp_path / 'rack.yaml'}: {where}"), message
    assert fix in message


def test_two_boards_on_two_pins_of_one_adapter_are_valid(tmp_path):
    rack = parse_rack({"boards": [real_board("a", **GOOD), real_board("b", **{**GOOD, "pin": 5})]},
                      tmp_path / "rack.yaml")
    assert [b.power.switch.pin for b in rack.boards] == [4, 5]


# -- the simulator itself ------------------------------------------------------------------------


def test_the_simulated_ft232h_answers_like_one_and_refuses_the_rest(chip):
    from pyftdi.ftdi import Ftdi, FtdiError
    from usb.core import USBError

    (desc, ports), = Ftdi.list_devices("ftdi://ftdi:232h/1")
    assert (desc.vid, desc.pid, desc.sn, desc.description, ports) == (
        0x0403, 0x6014, "SIM001", "Single RS232-HS", 1)
    ftdi = Ftdi()
    ftdi.open_from_url(URL)
    try:
        assert ftdi.ic_name == "ft232h" and ftdi.has_mpsse and ftdi.port_width == 16
        assert ftdi.read_eeprom() == b"\xff" * 256  # blank
        assert ftdi.poll_modem_status() == 0x6032   # CTS, DSR; transmitter empty
        ftdi.set_latency_timer(42)
        assert ftdi.get_latency_timer() == 42 == chip.latency
        # UART mode: TXD idles high, RTS# and DTR# follow the modem-control bits
        chip.inputs = 0x00
        ftdi.set_dtr_rts(True, False)
        assert chip.pins == 0b0000_0101 and ftdi.read_pins() == chip.pins
        ftdi.write_data(b"hi")
        assert chip.uart_tx == b"hi" and chip.pins == 0b0000_0101
        # asynchronous bit-bang: each byte written is one step of the output pins
        chip.inputs = 0xF0
        ftdi.set_bitmode(0x0F, Ftdi.BitMode.BITBANG)
        start = len(chip.history)
        ftdi.write_data(bytes([0x03, 0x0C, 0xFF]))
        assert [c.pins for c in chip.history[start:]] == [0xF3, 0xFC, 0xFF]
        assert ftdi.read_data(1) == bytes([chip.pins])  # a sample, after the 2 status bytes
        # what it does not simulate is refused, not ignored
        with pytest.raises(FtdiError, match="Pipe error.*MPSSE"):
            ftdi.set_bitmode(0xFF, Ftdi.BitMode.MPSSE)
        dev = ftdi.usb_dev
        for request in [(0x40, 0x42, 0, 1), (0x40, 0x91, 0xBEEF, 0), (0xC0, 0x90, 0, 128, 2),
                        (0x40, 0x09, 0, 1), (0x40, 0x00, 3, 1), (0x40, 0x0B, 0x0100, 2)]:
            with pytest.raises(USBError) as e:
                dev.ctrl_transfer(*request)
            assert e.value.errno == errno.EPIPE, request
        with pytest.raises(USBError):
            dev.write(0x81, b"x")
    finally:
        ftdi.close()
    assert chip.mode == 0  # pyftdi's close resets the bit mode unless frozen


def test_the_simulation_restores_pyftdi_when_the_last_chip_goes():
    from pyftdi.usbtools import UsbTools

    before = UsbTools.BACKENDS
    with simulate_ft232h(serial="A"), simulate_ft232h(serial="B") as b:
        assert UsbTools.BACKENDS == ("hil.sim.ftdi",)
        with pytest.raises(ValueError, match="already plugged in"):
            simulate_ft232h(serial="A")
        switch = FtdiGpioSwitch("ftdi://ftdi:232h:B/1", 0)
        switch.set(True)
        assert level(b, 0) == 1
        switch.close()
    assert UsbTools.BACKENDS == before
    assert not UsbTools.Devices

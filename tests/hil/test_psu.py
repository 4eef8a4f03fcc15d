"""Power-supply drivers against their simulators, through real pty and socket I/O.

Every driver talks to a simulator that follows the instrument's documented protocol, served
on a pseudo-terminal (PyVISA `ASRL/dev/pts/N::INSTR` for the SCPI models, pyserial for the
Korad and the PPK2) or on a loopback TCP socket (`TCPIP::127.0.0.1::PORT::SOCKET`). Expected
measurements follow from Ohm's law on the simulated load, expected commands from the
programming manuals.
"""

from __future__ import annotations

import importlib.util
import time

import pytest

from hil.psu import (MODELS, InstrumentError, InstrumentTimeout, PowerSupply, PsuError,
                     SupplyResource, open_psu, power_cycle)
from hil.psu.links import serial_port, visa_resource
from hil.sim import ConstantCurrent, Resistor, simulate
from hil.sim.scpi import ErrorQueue, ScpiError, header_pattern, number, split_params

HAVE = {name: importlib.util.find_spec(name) is not None for name in ("pyvisa", "pyvisa_py",
                                                                     "ppk2_api")}
needs_visa = pytest.mark.skipif(not (HAVE["pyvisa"] and HAVE["pyvisa_py"]),
                                reason="SCPI drivers need pyvisa and pyvisa-py")
needs_ppk2 = pytest.mark.skipif(not HAVE["ppk2_api"], reason="the PPK2 driver needs ppk2-api")


def models(*names):
    """pytest parameters, each skipped when its driver's optional package is missing."""
    marks = {"korad-ka3005p": [], "ppk2": [needs_ppk2]}
    return [pytest.param(n, marks=marks.get(n, [needs_visa])) for n in names]


SCPI = models("keysight-e36312a", "keysight-e3631a", "rigol-dp832", "siglent-spd3303x")
LAN = models("keysight-e36312a", "rigol-dp832", "siglent-spd3303x")
ALL = SCPI + models("korad-ka3005p", "ppk2")
MODEL_NAMES = ["keysight-e36312a", "keysight-e3631a", "rigol-dp832", "siglent-spd3303x",
               "korad-ka3005p", "ppk2"]

# What each driver must have sent for set_voltage(3.3) on channel 1 (from the manuals).
VOLTAGE_COMMAND = {
    "keysight-e36312a": "VOLT 3.3,(@1)",
    "keysight-e3631a": "VOLT 3.3",
    "rigol-dp832": ":SOUR1:VOLT 3.3",
    "siglent-spd3303x": "CH1:VOLT 3.3",
}
# The instrument's error-queue entry for an out-of-range value, in its own layout.
RANGE_ERROR = {
    "keysight-e36312a": '-222,"Data out of range"',
    "keysight-e3631a": '-222,"Data out of range"',
    "rigol-dp832": '-222,"Data out of range"',
    "siglent-spd3303x": "-222  Data out of range",
}


@pytest.fixture
def sims():
    """simulate() whose simulators are closed at the end of the test."""
    started = []

    def start(model, transport="pty", **options):
        if "load" not in options and "loads" not in options:
            load = Resistor(100.0)
            options = {**options, **({"load": load} if model in ("korad-ka3005p", "ppk2")
                                     else {"loads": {1: load}})}
        sim = simulate(model, transport, **options)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.close()


def sent(sim) -> list[str]:
    with sim.device.lock:
        return list(sim.device.log)


# -- the power protocol on every model --------------------------------------------------------


@pytest.mark.parametrize("model", ALL)
def test_set_output_measure(sims, model):
    sim = sims(model)
    with open_psu(model, sim.resource) as psu:
        assert isinstance(psu, PowerSupply)
        psu.set_current_limit(0.5)
        psu.set_voltage(3.3)
        assert psu.measure_voltage() == 0.0 and psu.measure_current() == pytest.approx(0.0, abs=1e-6)
        psu.output(True)
        assert psu.measure_voltage() == pytest.approx(3.3, abs=1e-3)
        # 3.3 V across 100 ohm; the reply's resolution is 1 mA at worst (Siglent, Korad).
        assert psu.measure_current() == pytest.approx(0.033, abs=1e-3)
        psu.output(False)
        assert psu.measure_voltage() == 0.0
        assert psu.measure_current() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("model", SCPI)
def test_scpi_commands_and_state(sims, model):
    sim = sims(model)
    with open_psu(model, sim.resource) as psu:
        psu.set_voltage(3.3)
        psu.set_current_limit(0.25)
        psu.output(True)
    log = sent(sim)
    assert log[log.index("*IDN?") + 1].upper().lstrip(":").startswith("SYST")  # queue emptied
    assert VOLTAGE_COMMAND[model] in log
    i = log.index(VOLTAGE_COMMAND[model])
    assert log[i + 1].lstrip(":").upper() == "SYST:ERR?"  # error queue checked after configuring
    ch = sim.device.channels[1]
    assert (ch.voltage, ch.current, ch.on) == (3.3, 0.25, True)


@needs_ppk2
def test_ppk2_protocol_bytes(sims):
    sim = sims("ppk2", load=Resistor(1000.0))
    with open_psu("ppk2", sim.resource, window=0.02) as psu:
        psu.set_voltage(3.3)
        psu.output(True)
        samples = psu.current_samples(0.02)
        assert len(samples) > 100
        assert all(s == pytest.approx(3.3e-3, rel=1e-3) for s in samples)
    ops = [op for op, _ in sim.device.log]
    assert ops[:2] == [0x19, 0x11]                       # metadata, then the mode
    assert (0x11, b"\x02") in sim.device.log             # source-meter mode
    assert (0x0C, b"\x01") in sim.device.log             # DUT power on
    assert 0x06 in ops and 0x07 in ops                   # average start / stop
    assert sim.device.millivolts == 3300                 # REGULATOR_SET decoded by the device


def test_korad_wire_format(sims):
    sim = sims("korad-ka3005p")
    with open_psu("korad-ka3005p", sim.resource) as psu:
        psu.set_voltage(3.3)
        psu.set_current_limit(0.1)
        psu.output(True)
    assert sim.device.log == ["*IDN?", "VSET1:03.30", "VSET1?", "ISET1:0.100", "ISET1?", "OUT1",
                              "STATUS?"]
    assert sim.device.ignored == [] and sim.device.lost == 0


# -- instrument errors -------------------------------------------------------------------------


@pytest.mark.parametrize("model", SCPI)
def test_out_of_range_value_names_instrument_command_reply(sims, model):
    sim = sims(model)
    with open_psu(model, sim.resource) as psu:
        with pytest.raises(InstrumentError) as info:
            psu.set_voltage(99)
    e = info.value
    assert e.command == VOLTAGE_COMMAND[model].replace("3.3", "99")
    assert e.reply == RANGE_ERROR[model]
    message = str(e)
    assert psu.title in message and sim.resource in message
    assert e.command in message and RANGE_ERROR[model] in message and "range" in message


def test_korad_out_of_range_found_by_read_back(sims):
    sim = sims("korad-ka3005p")
    with open_psu("korad-ka3005p", sim.resource) as psu:
        psu.set_voltage(5.0)
        with pytest.raises(InstrumentError) as info:
            psu.set_voltage(45)
    assert info.value.command == "VSET1:45.00"
    assert info.value.reply == "VSET1? -> 05.00"  # the supply kept the old set-point
    assert "Korad KA3005P" in str(info.value) and sim.resource in str(info.value)


@needs_ppk2
def test_ppk2_argument_checks(sims):
    sim = sims("ppk2")
    with open_psu("ppk2", sim.resource) as psu:
        with pytest.raises(PsuError, match="set_voltage"):
            psu.output(True)
        with pytest.raises(PsuError, match=r"REGULATOR_SET 6\.0 V not sent.*0\.8 to 5 V"):
            psu.set_voltage(6.0)
        with pytest.raises(PsuError, match="up to 1 A"):
            psu.set_current_limit(2.0)
        psu.set_current_limit(0.2)
    assert all(op != 0x0D for op, _ in sim.device.log)  # nothing was sent for the bad value


@needs_visa
def test_wrong_instrument_is_refused(sims):
    sim = sims("rigol-dp832")
    with pytest.raises(InstrumentError, match="not a Keysight E36312A") as info:
        open_psu("keysight-e36312a", sim.resource)
    assert info.value.command == "*IDN?" and "RIGOL" in info.value.reply


@needs_visa
def test_stale_errors_are_not_blamed_on_the_next_command(sims):
    sim = sims("rigol-dp832")
    with sim.device.lock:
        sim.device.errors.push(-113)  # left over from before we connected
    with open_psu("rigol-dp832", sim.resource) as psu:
        psu.set_voltage(1.0)


# -- timeouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ALL)
def test_timeout_when_instrument_stops_answering(sims, model):
    sim = sims(model)
    with open_psu(model, sim.resource, timeout=0.3) as psu:
        psu.set_voltage(3.3)
        sim.hang()
        start = time.monotonic()
        with pytest.raises(InstrumentTimeout) as info:
            psu.measure_current()
        assert time.monotonic() - start < 1.5
        assert psu.title in str(info.value) and info.value.command in str(info.value)
        assert "no reply within 0.3 s" in str(info.value)
        sim.resume()
        if model != "ppk2":  # the PPK2 has no voltage read-back to try
            assert psu.measure_voltage() == 0.0  # answers again, no stale reply in the way


@pytest.mark.parametrize("model", models("keysight-e36312a", "korad-ka3005p", "ppk2"))
def test_timeout_on_open(sims, model):
    sim = sims(model)
    sim.hang()
    with pytest.raises(InstrumentTimeout) as info:
        open_psu(model, sim.resource, timeout=0.3)
    assert info.value.command in ("*IDN?", "GET_META_DATA (0x19)")


# -- context manager and resources ---------------------------------------------------------------


@pytest.mark.parametrize("model", ALL)
def test_context_manager_closes_and_port_reopens(sims, model):
    sim = sims(model)
    with open_psu(model, sim.resource) as psu:
        psu.set_voltage(3.3)
    if model == "ppk2":
        assert not psu._api.ser.is_open
    elif model == "korad-ka3005p":
        assert not psu.link._ser.is_open
    else:
        assert psu.link._inst is None
    psu.close()  # idempotent
    with open_psu(model, sim.resource) as again:
        again.set_voltage(2.5)


@needs_visa
def test_supply_resource_and_power_cycle(sims):
    sim = sims("siglent-spd3303x")
    res = SupplyResource("siglent-spd3303x", sim.resource, 1, {"timeout": 1.0})
    with res.open() as psu:
        psu.set_voltage(3.3)
        power_cycle(psu, off_time=0.01)
    outputs = [c for c in sent(sim) if c.startswith("OUTP")]
    assert outputs == ["OUTP CH1,OFF", "OUTP CH1,ON"]
    assert sim.device.channels[1].on


@needs_visa
def test_entry_point_rejects_bad_arguments(sims):
    with pytest.raises(PsuError, match="unknown power-supply model 'hp-6632b'.*rigol-dp832"):
        open_psu("hp-6632b", "/dev/null")
    sim = sims("rigol-dp832")
    with pytest.raises(PsuError, match="channels 1, 2, 3, not 4"):
        open_psu("rigol-dp832", sim.resource, channel=4)
    with pytest.raises(PsuError, match="unknown option.*volume"):
        open_psu("rigol-dp832", sim.resource, volume=11)
    with pytest.raises(PsuError, match="cannot open VISA resource"):
        open_psu("rigol-dp832", "ASRL/dev/does-not-exist::INSTR")
    with pytest.raises(PsuError, match="cannot open serial port"):
        open_psu("korad-ka3005p", "/dev/does-not-exist")
    assert set(MODELS) == set(MODEL_NAMES)


@needs_visa
def test_two_supplies_open_at_once(sims):
    a, b = sims("rigol-dp832"), sims("keysight-e36312a")
    first = open_psu("rigol-dp832", a.resource)
    with open_psu("keysight-e36312a", b.resource) as second:
        first.close()  # must not close the other supply's session
        second.set_voltage(1.0)
    assert b.device.channels[1].voltage == 1.0


def test_resource_strings():
    assert visa_resource("/dev/ttyUSB0") == "ASRL/dev/ttyUSB0::INSTR"
    assert visa_resource("COM3") == "ASRL3::INSTR"
    assert visa_resource("TCPIP::192.0.2.5::5555::SOCKET") == "TCPIP::192.0.2.5::5555::SOCKET"
    assert serial_port("ASRL/dev/ttyACM0::INSTR") == "/dev/ttyACM0"
    assert serial_port("ASRL4::INSTR") == "COM4"
    assert serial_port("/dev/ttyACM0") == "/dev/ttyACM0"


# -- SCPI over a LAN socket ------------------------------------------------------------------------


@pytest.mark.parametrize("model", LAN)
def test_scpi_over_tcp_socket(sims, model):
    sim = sims(model, transport="tcp", loads={1: Resistor(50.0)})
    assert sim.resource.startswith("TCPIP::127.0.0.1::") and sim.resource.endswith("::SOCKET")
    with open_psu(model, sim.resource, timeout=0.5) as psu:
        psu.set_current_limit(1.0)
        psu.set_voltage(5.0)
        psu.output(True)
        assert psu.measure_voltage() == pytest.approx(5.0, abs=1e-3)
        assert psu.measure_current() == pytest.approx(0.1, abs=1e-3)  # 5 V / 50 ohm
        with pytest.raises(InstrumentError) as info:
            psu.set_current_limit(10)
        assert info.value.reply == RANGE_ERROR[model]
        sim.hang()
        with pytest.raises(InstrumentTimeout):
            psu.measure_voltage()


def test_tcp_refused_for_serial_only_models():
    for model in ("keysight-e3631a", "korad-ka3005p", "ppk2"):
        with pytest.raises(PsuError, match="no LAN"):
            simulate(model, "tcp")


# -- model quirks ----------------------------------------------------------------------------------


@needs_visa
def test_e3631a_remote_mode_outputs_and_negative_rail(sims):
    sim = sims("keysight-e3631a", loads={3: Resistor(1000.0)})
    with open_psu("keysight-e3631a", sim.resource, channel=3) as psu:
        assert sent(sim)[0] == "SYST:REM"  # before anything else over RS-232
        psu.set_voltage(-12)
        psu.set_current_limit(0.1)
        psu.output(True)
        assert psu.measure_voltage() == pytest.approx(-12.0)
        assert psu.measure_current() == pytest.approx(0.012)  # 12 V / 1 kohm, as a magnitude
        with pytest.raises(InstrumentError, match="-222"):
            psu.set_voltage(12)  # the N25V output only goes negative
    assert "INST:SEL N25V" in sent(sim) and "MEAS:VOLT? N25V" in sent(sim)
    assert all(ch.on for ch in sim.device.channels.values())  # OUTPut switches all three


@needs_visa
def test_e3631a_without_remote_mode_is_refused(sims):
    sim = sims("keysight-e3631a")
    with open_psu("keysight-e3631a", sim.resource, remote=False) as psu:
        with pytest.raises(InstrumentError, match="550.*local.*remote=True") as info:
            psu.set_voltage(1.0)
    assert info.value.command == "INST:SEL P6V"


@needs_visa
def test_siglent_needs_its_command_delay(sims):
    sim = sims("siglent-spd3303x")
    with pytest.raises(InstrumentTimeout):  # commands right after another one are lost
        with open_psu("siglent-spd3303x", sim.resource, timeout=0.3, command_delay=0) as psu:
            psu.set_voltage(3.3)
    assert any(line.startswith("(dropped)") for line in sent(sim))


@needs_visa
def test_siglent_without_error_queue_checks_by_read_back(sims):
    sim = sims("siglent-spd3303x", error_queue=False)
    with open_psu("siglent-spd3303x", sim.resource, timeout=0.3, error_queue=False) as psu:
        psu.set_voltage(12.0)
        with pytest.raises(InstrumentError) as info:
            psu.set_voltage(40)
    assert info.value.command == "CH1:VOLT 40"
    assert info.value.reply == "CH1:VOLT? -> 12.000"
    assert not any("SYST:ERR" in line for line in sent(sim))


def test_korad_needs_silence_between_commands(sims):
    sim = sims("korad-ka3005p")
    with open_psu("korad-ka3005p", sim.resource, timeout=0.3, command_delay=0) as psu:
        with pytest.raises(InstrumentError):  # VSET1 and VSET1? merge into one command
            psu.set_voltage(3.3)
    assert sim.device.ch.voltage == 0.0 and sim.device.ignored


def test_korad_extra_iset_byte_is_not_taken_for_the_next_reply(sims):
    sim = sims("korad-ka3005p", iset_extra_byte=b"\x00")
    with open_psu("korad-ka3005p", sim.resource) as psu:
        psu.set_voltage(3.3)
        psu.set_current_limit(0.2)
        psu.output(True)
        assert psu.measure_voltage() == pytest.approx(3.3)


@needs_visa
def test_constant_current_when_the_load_wants_more(sims):
    sim = sims("rigol-dp832", loads={2: Resistor(10.0)})
    with open_psu("rigol-dp832", sim.resource, channel=2) as psu:
        psu.set_voltage(3.3)
        psu.set_current_limit(0.1)  # 3.3 V / 10 ohm would be 0.33 A
        psu.output(True)
        assert psu.measure_current() == pytest.approx(0.1)
        assert psu.measure_voltage() == pytest.approx(1.0, abs=1e-3)  # 0.1 A * 10 ohm


@needs_ppk2
def test_ppk2_constant_current_load(sims):
    sim = sims("ppk2", load=ConstantCurrent(0.25))
    with open_psu("ppk2", sim.resource) as psu:
        psu.set_voltage(1.8)
        psu.output(True)
        assert psu.measure_voltage() == 1.8
        assert psu.measure_current() == pytest.approx(0.25, rel=1e-3)


# -- the SCPI engine of the simulators ---------------------------------------------------------


def test_scpi_header_matching():
    rx = header_pattern("[SOURce#:]VOLTage[:LEVel][:IMMediate][:AMPLitude]")
    for header in ("VOLT", "volt", "VOLTAGE", "SOUR:VOLT", "source2:volt:lev", "VOLT:LEV:IMM:AMPL"):
        assert rx.fullmatch(header), header
    for header in ("VOL", "VOLTA", "SOURCE:VOLT:AMPL:LEV", "VOLT?"):
        assert not rx.fullmatch(header), header
    assert rx.fullmatch("SOUR2:VOLT").group(1) == "2"
    assert header_pattern("*IDN?").fullmatch("*idn?")
    assert split_params("ON,(@1,2)") == ["ON", "(@1,2)"] and split_params("") == []
    assert number("MAX", 0, 6.18) == 6.18 and number("500 mV", 0, 1) == 0.5
    with pytest.raises(ScpiError) as info:
        number("7", 0, 6.18)
    assert info.value.code == -222


def test_error_queue_overflow():
    queue = ErrorQueue(lambda code, msg: f"{code},{msg}", capacity=3)
    for _ in range(5):
        queue.push(-113)
    assert [queue.pop() for _ in range(4)] == ["-113,Undefined header", "-113,Undefined header",
                                              "-350,Queue overflow", "0,No error"]

"""Flashers. No probe or FET is attached here, so: the mspdebug and BSL command lines are
checked by running a fake tool (a script this test writes, which records its argv and
answers like the real one) — that checks only the command line we build and how we report
the tool's failure, not flashing itself; pyocd's absence gives a clear error."""

from __future__ import annotations

import json
import stat
import sys

import pytest

from hil.errors import FlashError
from hil.flash import BslFlasher, MspdebugFlasher, PyocdFlasher
from hil.rack import FlasherSpec, make_flasher


def fake_tool(tmp_path, name, exit_status=0, output="Done, 1234 bytes total"):
    record = tmp_path / f"{name}.argv"
    tool = tmp_path / name
    tool.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
                    f"print({output!r})\nsys.exit({exit_status})\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return tool, record


@pytest.fixture
def elf(build_dir):
    return build_dir / "msp430fr5994" / "checksum.elf"


def test_mspdebug_command_line(tmp_path, elf):
    tool, record = fake_tool(tmp_path, "mspdebug")
    MspdebugFlasher("tilib", device="/dev/ttyACM0", executable=str(tool)).flash(elf)
    assert json.loads(record.read_text()) == ["-d", "/dev/ttyACM0", "tilib", f"prog {elf}"]
    MspdebugFlasher("ezfet", args=["-q"], executable=str(tool)).flash(elf)
    assert json.loads(record.read_text()) == ["-q", "ezfet", f"prog {elf}"]
    custom = make_flasher(FlasherSpec("mspdebug", {"command": [str(tool), "--allow-fw-update",
                                                              "tilib", "prog {elf}"]}))
    custom.flash(elf)
    assert json.loads(record.read_text()) == ["--allow-fw-update", "tilib", f"prog {elf}"]


def test_mspdebug_failure_names_the_command_and_its_output(tmp_path, elf):
    tool, _ = fake_tool(tmp_path, "mspdebug", 1, "tilib: MSP430_Initialize: Interface "
                                                   "Communication error (error = 35)")
    with pytest.raises(FlashError) as e:
        MspdebugFlasher(executable=str(tool)).flash(elf)
    assert f"`{tool} tilib prog {elf}` failed with exit status 1" in str(e.value)
    assert "Interface Communication error (error = 35)" in str(e.value)
    with pytest.raises(FlashError, match="mspdebug-nowhere not found. Install it"):
        MspdebugFlasher(executable="mspdebug-nowhere").flash(elf)
    with pytest.raises(FlashError, match="no such file"):
        MspdebugFlasher(executable=str(tool)).flash(tmp_path / "missing.elf")
    with pytest.raises(FlashError, match="driver 'rf2500' is not supported"):
        MspdebugFlasher("rf2500")


def test_bsl_command_line(tmp_path, elf, monkeypatch):
    tool, record = fake_tool(tmp_path, "python")
    BslFlasher("/dev/ttyUSB1", args=["--invert-test"], python=str(tool)).flash(elf)
    assert json.loads(record.read_text()) == ["-m", "msp430.bsl5.uart", "-p", "/dev/ttyUSB1",
                                              "-e", "-P", "-r", "--invert-test", str(elf)]
    # with this interpreter and no python-msp430-tools installed: say what to install
    monkeypatch.setitem(sys.modules, "msp430", None)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(FlashError, match="needs python-msp430-tools: pip install python-msp430-tools"):
        BslFlasher("/dev/ttyUSB1").flash(elf)


def test_pyocd_missing_is_a_clear_error(monkeypatch, build_dir):
    monkeypatch.setitem(sys.modules, "pyocd", None)
    monkeypatch.setitem(sys.modules, "pyocd.core", None)
    monkeypatch.setitem(sys.modules, "pyocd.core.helpers", None)
    with pytest.raises(FlashError, match=r"the pyocd flasher needs pyocd: pip install pyocd"):
        PyocdFlasher("stm32l476rg").flash(build_dir / "cortex-m4-mram" / "checksum.elf")

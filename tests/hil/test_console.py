"""The serial console against real pseudo-terminals: expect, timeouts that show what came,
and a port that vanishes and comes back under the same name (as a /dev/serial/by-id link
does when a USB adapter re-enumerates)."""

from __future__ import annotations

import os
import threading
import time
import tty

import pytest

from hil.board import ConsoleProtocol
from hil.console import SerialConsole
from hil.errors import ConsoleError, ConsoleTimeout


class Port:
    """A pty behind a stable symlink: the device side writes to `master`."""

    def __init__(self, directory):
        self.link = directory / "board.tty"
        self.master = self.slave = None
        self.plug()

    def plug(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tmp = self.link.with_name("new")
        os.symlink(os.ttyname(self.slave), tmp)
        os.replace(tmp, self.link)

    def unplug(self):
        self.link.unlink()
        os.close(self.master)
        os.close(self.slave)
        self.master = None

    def close(self):
        if self.master is not None:
            self.unplug()


@pytest.fixture
def port(tmp_path):
    p = Port(tmp_path)
    yield p
    p.close()


def test_expect_returns_the_match_and_keeps_the_rest(port):
    with SerialConsole(str(port.link), reopen_timeout=1) as con:
        assert isinstance(con, ConsoleProtocol)
        os.write(port.master, b"boot\r\nready 42\r\nrest")
        m = con.expect(rb"ready (\d+)", timeout=2)
        assert m.group(1) == b"42"
        assert con.expect("rest", timeout=2).group(0) == b"rest"  # str patterns too
        con.write(b"ping")
        assert os.read(port.master, 100) == b"ping"


def test_expect_timeout_shows_what_was_received(port):
    with SerialConsole(str(port.link)) as con:
        os.write(port.master, b"garbage \x00\xff")
        t = time.monotonic()
        with pytest.raises(ConsoleTimeout) as e:
            con.expect(b"RESULT", timeout=0.3)
        assert 0.3 <= time.monotonic() - t < 1.5
    assert e.value.received == b"garbage \x00\xff"
    assert "b'RESULT' not received within 0.3 s" in str(e.value)
    assert "b'garbage \\x00\\xff'" in str(e.value)


def test_port_vanishing_and_coming_back_is_reopened(port):
    con = SerialConsole(str(port.link), reopen_timeout=3, retry_interval=0.02).open()
    os.write(port.master, b"one")
    assert con.read(1) == b"one"
    port.unplug()

    def replug():
        time.sleep(0.3)  # USB re-enumeration
        port.plug()
        time.sleep(0.2)
        os.write(port.master, b"two")

    threading.Thread(target=replug).start()
    got = b""
    deadline = time.monotonic() + 3
    while b"two" not in got and time.monotonic() < deadline:
        got += con.read(0.5)
    assert got == b"two" and con.reopens == 1
    con.write(b"back")
    assert os.read(port.master, 10) == b"back"
    con.close()


def test_port_gone_for_good_is_a_clear_error(port):
    con = SerialConsole(str(port.link), reopen_timeout=0.3).open()
    port.unplug()
    with pytest.raises(ConsoleError, match=r"serial port .*board\.tty cannot be opened and did "
                                           r"not appear within 0\.3 s"):
        con.read(1.0)
    con.close()
    with pytest.raises(ConsoleError, match="Check the cable"):
        SerialConsole(str(port.link), reopen_timeout=0.1).open()

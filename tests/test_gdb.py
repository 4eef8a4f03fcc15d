"""The GDB stub across power failures: a scripted gdb-multiarch session on the Cortex-M4
(breakpoint, SIGPWR at the scheduled failure, SIGUSR1 at the reboot, non-volatile
variables, a watchpoint, monitor commands) and the same flow on the MSP430 through a small
client of the remote protocol written here. The stub runs as `emu gdb` in a subprocess."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import sys

import pytest

import emu
from emu.elf import ElfImage
from emu.engines.base import StopKind
from emu.gdbstub import SIGNALS


@contextlib.contextmanager
def served(elf, fail_after):
    """`emu gdb ELF --port 0 --fail-after ...`; yields the port it listens on."""
    schedule = ["--fail-after", ",".join(map(str, fail_after))] if fail_after else []
    proc = subprocess.Popen([sys.executable, "-m", "emu", "gdb", str(elf), "--port", "0", *schedule],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        yield int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        assert proc.wait(30) == 0
    finally:
        proc.kill()


def _entries(elf, function: str, count: int) -> list[int]:
    """Instruction counts (from power-on) at which the first `count` calls of `function`
    are about to execute its first instruction."""
    m = emu.Machine.from_elf(elf)
    start = m.resolve_address(function) & ~1
    m.power_on()
    found, n = [], 0
    while len(found) < count:
        assert m.step(1).kind == StopKind.LIMIT
        n += 1
        if m.engine.pc == start:
            found.append(n)
    return found


@pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="gdb-multiarch is installed by `make test`")
def test_gdb_multiarch_session_through_a_power_failure(build_dir):
    elf = build_dir / "cortex-m4-mram" / "checksum.elf"
    fail_at = _entries(elf, "task_chunk", 3)[-1] + 80  # after the third task_chunk, before the fourth
    with served(elf, [fail_at]) as port:
        script = [f"target remote 127.0.0.1:{port}", "break task_chunk", "continue", "print rt_boot_count",
                  "continue", "continue", "continue", "info registers pc", "print rt_boot_count", "continue",
                  "print rt_boot_count", "monitor power status", "continue", "print rt_boot_count",
                  "delete", "watch rt_active", "continue", "delete", "continue"]
        args = ["gdb-multiarch", "-batch", "-nx", str(elf)] + [x for line in script for x in ("-ex", line)]
        run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert "Breakpoint 1, task_chunk" in out
    assert "Program received signal SIGPWR, Power fail/restart." in out
    assert out.index("SIGPWR") < out.index("Program received signal SIGUSR1") < out.rindex("Breakpoint 1, task_chunk")
    assert "Reset_Handler" in out  # the reboot stops at the reset vector
    values = [line.split("= ")[1] for line in out.splitlines() if line.startswith("$")]
    assert values == ["1", "1", "1", "2"]  # the boot count survives the failure, the reboot counts
    assert "power on; boot 2;" in out and "1 power failures so far" in out
    assert "watchpoint 2: rt_active" in out and "Old value = " in out and "New value = " in out
    assert "proto_wait_input" in out  # and on to the firmware's wait for the host


class Client:
    """A minimal GDB remote-protocol client (acknowledged mode)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def request(self, body: str) -> str:
        data = body.encode()
        self.sock.sendall(b"$" + data + b"#" + f"{sum(data) & 0xFF:02x}".encode())
        while True:
            start = self.buffer.find(b"$")
            end = self.buffer.find(b"#", start)
            if start >= 0 and end >= 0 and len(self.buffer) >= end + 3:
                reply = self.buffer[start + 1 : end]
                assert int(self.buffer[end + 1 : end + 3], 16) == sum(reply) & 0xFF
                self.buffer = self.buffer[end + 3 :]
                self.sock.sendall(b"+")
                return reply.decode()
            chunk = self.sock.recv(65536)
            assert chunk, "stub closed the connection"
            self.buffer += chunk  # acks before a packet are skipped by find("$")

    def u16(self, address: int) -> int:
        return int.from_bytes(bytes.fromhex(self.request(f"m{address:x},2")), "little")

    def pc(self) -> int:
        return int.from_bytes(bytes.fromhex(self.request("p0")), "little")


def test_protocol_session_on_the_msp430(build_dir):
    elf = build_dir / "msp430fr5994" / "checksum.elf"
    image = ElfImage.read(elf)
    task = image.symbol("task_chunk").address
    boots = image.symbol("rt_boot_count").address
    with served(elf, [12000]) as port:
        c = Client(port)
        assert "qXfer:features:read+" in c.request("qSupported:xmlRegisters=i386")
        xml = c.request("qXfer:features:read:target.xml:0,fff")
        assert xml.startswith("l") and "<architecture>msp430</architecture>" in xml
        assert len(c.request("g")) == 16 * 8
        reset = c.u16(0xFFFE)
        assert c.pc() == reset
        assert c.request(f"Z0,{task:x},2") == "OK"
        assert c.request("c").startswith(f"T{SIGNALS['SIGTRAP']:02x}") and c.pc() == task
        assert c.u16(boots) == 1
        stops = []
        while not stops or not stops[-1].startswith(f"T{SIGNALS['SIGPWR']:02x}"):
            stops.append(c.request("c"))
            assert len(stops) < 20
        status = bytes.fromhex(c.request("qRcmd," + b"power status".hex())).decode()
        assert "12000 instructions in this period" in status  # stopped right before the failure
        assert c.request("c").startswith(f"T{SIGNALS['SIGUSR1']:02x}") and c.pc() == reset  # the reboot
        assert c.request("c").startswith("T05") and c.pc() == task  # the breakpoint survived it
        assert c.u16(boots) == 2
        for _ in range(2):  # compared with the flashed image until a snapshot is taken
            diff = bytes.fromhex(c.request("qRcmd," + b"nv-diff".hex())).decode()
            assert "differ from the flashed image" in diff and "rt_boot_count+0: 00 -> 02" in diff
        c.request("qRcmd," + b"snapshot".hex())
        diff = bytes.fromhex(c.request("qRcmd," + b"nv-diff".hex())).decode()
        assert diff == "non-volatile memory equals the last snapshot\n"
        assert c.request(f"z0,{task:x},2") == "OK"
        assert c.request("c").startswith("T05") and c.pc() == image.symbol("proto_wait_input").address
        c.request("D")


def test_read_and_access_watchpoints(build_dir):
    """Z3 stops after the first instruction that reads the variable, Z4 after any access:
    rt_active (the task commit word) is read only by the runtime's task functions and
    written only by the commit (firmware/runtime/task.c)."""
    elf = build_dir / "msp430fr5994" / "checksum.elf"
    image = ElfImage.read(elf)
    active = image.symbol("rt_active").address
    readers = {"rt_commit_seq", "rt_progress", "rt_tasks_state", "rt_tasks_start", "rt_tasks_run"}

    def function_at(pc):
        return next(s.name for s in image.symbols_containing(pc, code=True))

    with served(elf, []) as port:
        c = Client(port)
        assert c.request(f"Z3,{active:x},2") == "OK"
        reply = c.request("c")
        assert reply.startswith("T05") and f"rwatch:{active:x};" in reply
        assert function_at(c.pc()) in readers
        assert c.request(f"z3,{active:x},2") == "OK"
        assert c.request(f"Z2,{active:x},2") == "OK"  # on to the first commit: a write
        reply = c.request("c")
        assert f"watch:{active:x};" in reply and not reply.count("rwatch")
        assert function_at(c.pc()) in {"rt_tasks_start", "rt_tasks_run"}  # commit() is inlined there
        committed = c.u16(active)
        assert c.request(f"z2,{active:x},2") == "OK"
        assert c.request(f"Z4,{active:x},2") == "OK"  # the next access reads it again
        reply = c.request("c")
        assert f"awatch:{active:x};" in reply and function_at(c.pc()) in readers
        assert c.u16(active) == committed
        assert c.request(f"z4,{active:x},2") == "OK"
        c.request("D")


@pytest.mark.skipif(shutil.which("gdb-multiarch") is None, reason="gdb-multiarch is installed by `make test`")
def test_gdb_multiarch_read_and_access_watchpoints(build_dir):
    elf = build_dir / "cortex-m4-mram" / "checksum.elf"
    with served(elf, []) as port:
        script = [f"target remote 127.0.0.1:{port}", "rwatch rt_active", "continue", "info symbol $pc",
                  "delete", "awatch rt_job", "continue", "delete", "continue"]
        args = ["gdb-multiarch", "-batch", "-nx", str(elf)] + [x for line in script for x in ("-ex", line)]
        run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert "Hardware read watchpoint 1: rt_active" in out and "Value = 0" in out
    assert re.search(r"rt_(tasks_start|tasks_run|commit_seq|progress|tasks_state) \+ \d+ in section", out)
    assert "Hardware access (read/write) watchpoint 2: rt_job" in out

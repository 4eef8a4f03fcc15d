"""A GDB remote-protocol server for an emulated board, across power failures.

`emu gdb FIRMWARE.elf [--fail-after K1,...] [--port P]` listens on 127.0.0.1 and serves one
GDB connection (gdb-multiarch for the Cortex-M4; any client of the protocol for the
MSP430): registers, memory, software breakpoints, write, read and access watchpoints,
step, continue, and a target description for each board.

Power follows the run's schedule, as `emu run --fail-after` does:

* reaching a scheduled failure stops with signal SIGPWR *before* the instruction that does
  not run, with everything (registers, SRAM) still as it was, so you can look at what is
  about to be lost;
* the next `continue` or `stepi` cuts the power and boots the board: it stops at the reset
  vector with signal SIGUSR1 ("reboot");
* breakpoints and watchpoints survive reboots;
* `monitor power fail` cuts power before the current instruction (then as above),
  `monitor power status` reports the schedule and counters, `monitor snapshot` /
  `monitor restore` save and return to the whole machine state, and `monitor nv-diff`
  lists the non-volatile bytes that differ from the last snapshot (or from the flashed
  image), by symbol.

A completed run (the firmware's final self-branch) ends the session as a normal exit;
reaching the firmware's wait for host input stops with SIGTRAP and a message.

Public names: `GdbStub`, `SIGNALS`.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Callable, Sequence

from .engines.base import StopKind
from .errors import EmuError
from .machine import Machine

__all__ = ["GdbStub", "SIGNALS"]

# GDB's own signal numbers (gdb/signals.def), as the protocol carries them
SIGNALS = {"SIGINT": 2, "SIGTRAP": 5, "SIGSEGV": 11, "SIGUSR1": 30, "SIGPWR": 32}

_CHUNK = 2_000_000  # instructions between checks for a GDB interrupt (Ctrl-C)


@dataclass
class _Stop:
    signal: int
    extra: str = ""  # e.g. "watch:2000;" or "swbreak:;"
    exited: bool = False


class GdbStub:
    """Serves one GDB connection for `machine` (freshly flashed), with power failures
    after the counts in `fail_after` (one per power-on period)."""

    def __init__(self, machine: Machine, fail_after: Sequence[int] = ()):
        self.machine = machine
        self.schedule = [int(k) for k in fail_after]
        self.breakpoints: set[int] = set()
        # (kind, address) -> length; kind as in Z2/Z3/Z4: "2" write, "3" read, "4" access
        self.watchpoints: dict[tuple[str, int], int] = {}
        self._hit: str | None = None  # the stop reason of the first watchpoint hit
        self.failure_pending = False  # stopped on SIGPWR: the next resume reboots
        self.snapshot = None
        self._reference_nv: dict[int, bytes] = {}  # what nv-diff compares with
        self._reference_name = "the flashed image"
        self._no_ack = False
        self._conn: socket.socket | None = None
        self._buffer = b""
        arch = machine.board.arch
        self.registers = _ARM_REGISTERS if arch == "cortex-m" else _MSP430_REGISTERS
        self.target_xml = _ARM_XML if arch == "cortex-m" else _MSP430_XML
        machine.reset()
        self._reference_nv = self._nv_bytes()  # as flashed: nothing has run yet
        machine.power_on()

    # -- connection ---------------------------------------------------------------------
    def serve(self, port: int = 0, on_listen: Callable[[int], None] | None = None) -> None:
        """Listen on 127.0.0.1:`port` (0: any free port, told to `on_listen`), serve one
        client until it detaches, kills or disconnects."""
        with socket.create_server(("127.0.0.1", port)) as server:
            if on_listen:
                on_listen(server.getsockname()[1])
            conn, _ = server.accept()
            with conn:
                self._conn = conn
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while True:
                    packet = self._read_packet()
                    if packet is None:
                        return
                    reply = self._handle(packet)
                    if reply is _CLOSE:
                        return
                    if reply is not None:
                        self._send(reply)

    def _read_packet(self) -> str | None:
        while True:
            start = self._buffer.find(b"$")
            if start < 0:
                self._buffer = b""  # acks and stray bytes between packets
            end = self._buffer.find(b"#", start + 1) if start >= 0 else -1
            if start >= 0 and end >= 0 and len(self._buffer) >= end + 3:
                body = self._buffer[start + 1 : end]
                checksum = self._buffer[end + 1 : end + 3]
                self._buffer = self._buffer[end + 3 :]
                if not self._no_ack:
                    ok = int(checksum, 16) == sum(body) & 0xFF
                    self._conn.sendall(b"+" if ok else b"-")
                    if not ok:
                        continue
                return _unescape(body).decode("latin-1")
            data = self._conn.recv(65536)
            if not data:
                return None
            self._buffer += data

    def _send(self, body: str) -> None:
        data = body.encode("latin-1")
        packet = b"$" + data + b"#" + f"{sum(data) & 0xFF:02x}".encode()
        self._conn.sendall(packet)
        if not self._no_ack:  # wait for the ack (retransmit on "-")
            while True:
                ack = self._conn.recv(1)
                if ack in (b"+", b""):
                    return
                if ack == b"-":
                    self._conn.sendall(packet)

    def _interrupted(self) -> bool:
        """A Ctrl-C (0x03) from GDB while running."""
        self._conn.setblocking(False)
        try:
            data = self._conn.recv(1024)
        except BlockingIOError:
            data = b""
        finally:
            self._conn.setblocking(True)
        if b"\x03" in data:
            return True
        self._buffer += data
        return False

    # -- packets ----------------------------------------------------------------------------
    def _handle(self, p: str):
        m = self.machine
        if p == "?":
            return self._stop_reply(_Stop(SIGNALS["SIGPWR"] if self.failure_pending else SIGNALS["SIGTRAP"]))
        if p.startswith("qSupported"):
            return "PacketSize=4000;qXfer:features:read+;swbreak+;QStartNoAckMode+"
        if p == "QStartNoAckMode":
            self._send("OK")
            self._no_ack = True
            return None
        if p.startswith("qXfer:features:read:target.xml:"):
            offset, length = (int(x, 16) for x in p.rsplit(":", 1)[1].split(","))
            chunk = self.target_xml[offset : offset + length]
            return ("m" if offset + length < len(self.target_xml) else "l") + chunk
        if p in ("qC",):
            return "QC1"
        if p == "qAttached":
            return "1"
        if p == "qfThreadInfo":
            return "m1"
        if p == "qsThreadInfo":
            return "l"
        if p.startswith("H") or p.startswith("T"):
            return "OK"
        if p.startswith("qRcmd,"):
            return self._monitor(bytes.fromhex(p[6:]).decode())
        if p == "g":
            return "".join(self._reg_hex(i) for i in range(len(self.registers)))
        if p.startswith("G"):
            data = bytes.fromhex(p[1:])
            for i, (name, size) in enumerate(self.registers):
                self._write_reg(i, data[sum(s for _, s in self.registers[:i]):][:size])
            return "OK"
        if p.startswith("p"):
            n = int(p[1:], 16)
            return self._reg_hex(self._reg_index(n)) if self._reg_index(n) is not None else "E01"
        if p.startswith("P"):
            n, value = p[1:].split("=")
            i = self._reg_index(int(n, 16))
            if i is None:
                return "E01"
            self._write_reg(i, bytes.fromhex(value))
            return "OK"
        if p.startswith("m"):
            address, length = (int(x, 16) for x in p[1:].split(","))
            try:
                return m.read_memory(address, length).hex()
            except EmuError:
                return "E14"
        if p.startswith("M"):
            where, data = p[1:].split(":")
            address, _ = (int(x, 16) for x in where.split(","))
            try:
                m.write_memory(address, bytes.fromhex(data))
            except EmuError:
                return "E14"
            return "OK"
        if p[:2] in ("Z0", "Z1", "Z2", "Z3", "Z4", "z0", "z1", "z2", "z3", "z4"):
            kind, address, length = p[1], int(p.split(",")[1], 16), int(p.split(",")[2].split(";")[0], 16)
            if kind in "01":
                address &= ~1
                (self.breakpoints.add if p[0] == "Z" else self.breakpoints.discard)(address)
            elif p[0] == "Z":
                self.watchpoints[(kind, address)] = max(length, 1)
            else:
                self.watchpoints.pop((kind, address), None)
            return "OK"
        if p.startswith(("Z", "z")):
            return ""
        if p == "vCont?":
            return "vCont;c;C;s;S"
        if p.startswith("vCont;"):  # c, s, or C/S with a signal (not delivered: ignored)
            return self._stop_reply(self._resume(step=p[6] in "sS"))
        if p.startswith(("c", "s", "C", "S")):
            return self._stop_reply(self._resume(step=p[0] in "sS"))
        if p == "k":
            return _CLOSE
        if p.startswith("D"):
            self._send("OK")
            return _CLOSE
        return ""

    def _stop_reply(self, stop: _Stop) -> str:
        if stop.exited:
            return "W00"
        pc = self.registers.index(("pc", 4))
        return f"T{stop.signal:02x}{stop.extra}{pc:02x}:{self._reg_hex(pc)};thread:1;"

    # -- registers ----------------------------------------------------------------------------
    def _reg_index(self, remote_number: int) -> int | None:
        numbers = _ARM_REMOTE_NUMBERS if self.machine.board.arch == "cortex-m" else None
        if numbers is None:
            return remote_number if remote_number < len(self.registers) else None
        return numbers.get(remote_number)

    def _reg_hex(self, i: int) -> str:
        name, size = self.registers[i]
        return (self.machine.engine.read_register(name) & ((1 << (8 * size)) - 1)).to_bytes(size, "little").hex()

    def _write_reg(self, i: int, data: bytes) -> None:
        name, _ = self.registers[i]
        value = int.from_bytes(data, "little")
        if name == "pc":
            self.machine.engine.pc = value & ~1 if self.machine.board.arch == "cortex-m" else value
        else:
            self.machine.engine.write_register(name, value)

    # -- execution ----------------------------------------------------------------------------
    def _resume(self, step: bool) -> _Stop:
        m = self.machine
        if self.failure_pending or not m.powered:
            self._reboot()
            return _Stop(SIGNALS["SIGUSR1"])
        engine = m.engine
        exits = set(m.exits) | self.breakpoints
        engine.set_exits(sorted(exits))
        if self.watchpoints:  # watched by single steps
            self._hit = None
            engine.watch_memory([(a, a + n) for (_, a), n in self.watchpoints.items()], self._access)
        first = True  # the exit we stand on (a breakpoint we stopped at) does not stop us
        try:
            while True:
                if self.schedule and m.period_instructions >= self.schedule[0]:
                    self.failure_pending = True
                    return _Stop(SIGNALS["SIGPWR"])
                if first and engine.pc in exits:
                    stop = m.step_past_exit(exits)
                else:
                    budget = 1 if step or self.watchpoints else _CHUNK
                    if self.schedule:
                        budget = min(budget, self.schedule[0] - m.period_instructions)
                    stop = m.step(budget)
                first = False
                if stop.kind == StopKind.FAULT:
                    return _Stop(SIGNALS["SIGSEGV"])
                if stop.kind == StopKind.EXIT:
                    if stop.pc in self.breakpoints:
                        return _Stop(SIGNALS["SIGTRAP"], "swbreak:;")
                    if stop.pc in m.input_waits:
                        if m.link.rx:  # input is waiting: read it
                            first = True
                            continue
                        return _Stop(SIGNALS["SIGTRAP"])
                    return _Stop(0, exited=True)
                if self._hit:
                    return _Stop(SIGNALS["SIGTRAP"], self._hit)
                if self.schedule and m.period_instructions >= self.schedule[0]:
                    self.failure_pending = True
                    return _Stop(SIGNALS["SIGPWR"])
                if step:
                    return _Stop(SIGNALS["SIGTRAP"])
                if (not self.watchpoints or m.instructions % 4096 == 0) and self._interrupted():
                    return _Stop(SIGNALS["SIGINT"])
        finally:
            engine.set_exits(sorted(m.exits))
            if self.watchpoints:
                engine.watch_memory(None, None)

    def _access(self, kind: str, address: int, size: int, value, pc: int, index: int) -> None:
        """A watched access: remember the first one that matches a watchpoint's kind."""
        if self._hit:
            return
        for (wkind, start), length in self.watchpoints.items():
            if address < start + length and start < address + size and \
                    (wkind == "4" or (wkind == "2") == (kind == "w")):
                reason = {"2": "watch", "3": "rwatch", "4": "awatch"}[wkind]
                self._hit = f"{reason}:{start:x};"
                return

    def _reboot(self) -> None:
        m = self.machine
        if self.failure_pending and self.schedule:
            self.schedule.pop(0)
        self.failure_pending = False
        m.power_fail()
        m.power_on()

    # -- monitor commands -------------------------------------------------------------------------
    def _monitor(self, command: str) -> str:
        m = self.machine
        words = command.split()
        if words == ["power", "fail"]:
            if self.failure_pending:
                text = "power has already failed; continue to reboot\n"
            else:
                self.failure_pending = True
                self.schedule.insert(0, m.period_instructions)
                text = f"power fails before pc {m.engine.pc:#x}; continue or stepi reboots the board\n"
        elif words == ["power", "status"]:
            state = "failed (reboots on continue)" if self.failure_pending else "on"
            text = (f"power {state}; boot {m.boots}; {m.period_instructions} instructions in this period, "
                    f"{m.instructions} in all; {m.power_failures} power failures so far; "
                    f"schedule ahead: {', '.join(map(str, self.schedule)) or 'none (power stays on)'}\n")
        elif words == ["snapshot"]:
            self.snapshot = (m.snapshot(), list(self.schedule), self.failure_pending)
            self._reference_nv, self._reference_name = self._nv_bytes(), "the last snapshot"
            text = "snapshot taken\n"
        elif words == ["restore"]:
            if self.snapshot is None:
                text = "no snapshot: take one with 'monitor snapshot'\n"
            else:
                state, schedule, pending = self.snapshot
                m.restore(state)
                self.schedule, self.failure_pending = list(schedule), pending
                text = "restored (use 'flushregs' or step to refresh GDB's register cache)\n"
        elif words == ["nv-diff"]:
            text = self._nv_diff()
        else:
            text = ("monitor commands: power fail | power status | snapshot | restore | nv-diff\n")
        return text.encode().hex()

    def _nv_bytes(self) -> dict[int, bytes]:
        m = self.machine
        return {r.start: m.engine.read_memory(r.start, r.size) for r in m.board.nonvolatile_regions}

    def _nv_diff(self) -> str:
        m = self.machine
        base = self._reference_name
        now = self._nv_bytes()
        lines = []
        for start, before in self._reference_nv.items():
            after = now[start]
            if after == before:
                continue
            i = 0
            while i < len(after):
                if after[i] == before[i]:
                    i += 1
                    continue
                j = i
                while j < len(after) and after[j] != before[j] and j - i < 16:
                    j += 1
                lines.append(f"  {start + i:#x} {_symbolize(m, start + i)}: {before[i:j].hex()} -> {after[i:j].hex()}")
                i = j
        if not lines:
            return f"non-volatile memory equals {base}\n"
        return f"non-volatile bytes that differ from {base}:\n" + "\n".join(lines[:200]) + "\n"


def _symbolize(machine: Machine, address: int) -> str:
    sym = next(machine.image.symbols_containing(address), None)
    return f"{sym.name}+{address - sym.address}" if sym else "?"


def _unescape(body: bytes) -> bytes:
    out = bytearray()
    it = iter(body)
    for b in it:
        out.append((next(it) ^ 0x20) if b == 0x7D else b)
    return bytes(out)


_CLOSE = object()

# (engine register name, bytes) in the order of the g packet
_ARM_REGISTERS = [(f"r{i}", 4) for i in range(13)] + [("sp", 4), ("lr", 4), ("pc", 4), ("xpsr", 4)]
_ARM_REMOTE_NUMBERS = {**{i: i for i in range(16)}, 25: 16}  # p/P numbers: xpsr is GDB's 25
_MSP430_REGISTERS = [("pc", 4), ("sp", 4), ("sr", 4)] + [(f"r{i}", 4) for i in range(3, 16)]

_ARM_XML = """<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
<architecture>arm</architecture>
<feature name="org.gnu.gdb.arm.m-profile">
""" + "".join(f'<reg name="r{i}" bitsize="32" regnum="{i}"/>\n' for i in range(13)) + """<reg name="sp" bitsize="32" type="data_ptr" regnum="13"/>
<reg name="lr" bitsize="32" regnum="14"/>
<reg name="pc" bitsize="32" type="code_ptr" regnum="15"/>
<reg name="xpsr" bitsize="32" regnum="25"/>
</feature>
</target>
"""

_MSP430_XML = """<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
<architecture>msp430</architecture>
<feature name="org.gnu.gdb.msp430.core">
<reg name="pc" bitsize="32" type="code_ptr"/>
<reg name="sp" bitsize="32" type="data_ptr"/>
<reg name="sr" bitsize="32"/>
<reg name="cg" bitsize="32"/>
""" + "".join(f'<reg name="r{i}" bitsize="32"/>\n' for i in range(4, 16)) + """</feature>
</target>
"""

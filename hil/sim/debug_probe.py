"""A simulated SWD debug probe with an STM32L4-class Cortex-M4 behind it, served over pyocd's
remote-probe protocol, so that pyocd — and `hil.flash.PyocdFlasher` — run for real, down to
pyocd's own STM32L4 flash algorithm executing on the emulated CPU, without hardware:

    >>> from hil.sim.debug_probe import SimulatedDebugProbe
    >>> from hil.flash import PyocdFlasher
    >>> with SimulatedDebugProbe() as sim:
    ...     PyocdFlasher("stm32l475xg", probe=sim.unique_id).flash("checksum.elf")
    ...     sim.target.memory_at_reset(0x0800_0000, 8)   # what the firmware booted from

Written from the ARM and ST documents, not from what one client happens to send: ADIv5 (DP,
MEM-AP, ROM tables, CoreSight identification), the ARMv7-M Architecture Reference Manual's
debug chapter (DHCSR, DCRSR/DCRDR, DEMCR, DFSR, AIRCR, FPB), the Cortex-M4 TRM (its AHB-AP and
ROM table) and RM0351, the STM32L47x/L48x reference manual (embedded flash, DBGMCU).

**Probe.** A loopback TCP server; `unique_id` is `remote:127.0.0.1:PORT`, which makes pyocd
use its `TCPClientProbe`. The wire format is pyocd's (pyocd/probe/tcp_probe_server.py is the
real server side): one JSON object per line, `{"id", "request", "arguments"}`, answered by
`{"id", "status": 0, "result"}` or `{"id", "status", "error"}` — status 1 general error, 3
probe error, 10 transfer error (no acknowledge), 12 transfer fault. Requests: hello
(protocol 1), readprop (vendor_name, product_name, supported_wire_protocols `["DEFAULT", "SWD"]`,
capabilities `["SWJ_SEQUENCE"]`, wire_protocol), open, close, lock/unlock (exclusive between
connections), connect (SWD or DEFAULT), disconnect, swj_sequence, set_clock, reset,
assert_reset, is_reset_asserted (the nRESET line), flush, read_dp, write_dp, read_ap,
write_ap, read_ap_multiple, write_ap_multiple, get_memory_interface_for_ap (always null: no
memory interface is offered, so pyocd drives the MEM-AP through DP/AP accesses, as over a
CMSIS-DAP probe) and has_swo (false; the real server does not know it). Like a real probe,
AP accesses use the DP's SELECT register (the APSEL/APBANKSEL bits pyocd also puts in the
address argument are not looked at), and an AP read returns its data at once (the posted
read and RDBUFF are the probe's business; RDBUFF still holds the last AP read's data).

**Debug port** (SW-DP v1, DPIDR 0x2BA01477 as on STM32L4). The SWJ-DP starts in JTAG mode;
`swj_sequence` bits are decoded: >= 50 ones then the 16-bit JTAG-to-SWD code 0xE79E selects
SWD (0xE73C selects JTAG, which this probe does not speak), and a line reset (>= 50 ones,
then a zero) leaves the DP answering nothing but a DPIDR read until it gets one. Requests the
DP does not answer (JTAG mode, line-reset state) fail with "no acknowledge" (status 10).
CTRL/STAT: CDBGPWRUPREQ/CSYSPWRUPREQ are acknowledged at once (CDBGRSTREQ likewise);
STICKYERR, READOK; ORUNDETECT, MASKLANE, TRNCNT kept as written. AP accesses fault while
the debug power is not acknowledged. A faulting transfer sets STICKYERR and, until ABORT
clears it, every AP access, SELECT write and RDBUFF read faults (DPIDR and CTRL/STAT reads
and ABORT writes still work). DLCR (DPBANKSEL 1) reads 0x40.

**Access port** 0: the Cortex-M4's AHB-AP (IDR 0x24770011). CSW: Size (byte, halfword, word;
another value reads back as word), AddrInc off/single/packed, DeviceEn (1), TrInProg (0),
HPROT and MasterType kept as written; TAR; DRW with byte lanes from TAR[1:0] and
auto-increment, only the low 12 bits of TAR incrementing (the Cortex-M3/M4 AHB-AP wraps at 4
KiB; ADIv5 guarantees only 10 bits, 1 KiB, which `tar_wrap=0x400` models); BD0-BD3
(TAR[31:4] + offset, no increment); CFG 0; BASE 0xE00FF003. A bus error leaves TAR on the
failing address. Other APSEL values read as zeros (no AP there).

**System bus**, the same for the CPU and the debugger: flash 1 MiB at 0x08000000 (also at
0x00000000, booting from flash), SRAM 128 KiB at 0x20000000, peripherals 0x40000000-0x5FFFFFFF
(the project's models, `emu.peripherals`; unmodelled registers keep what is written), MRAM
512 KiB at 0x60000000 (the `cortex-m4-mram` board's; the real chip's FMC is not modelled:
the memory answers without set-up), and the Private Peripheral Bus 0xE0000000-0xE00FFFFF.
Anything else is a bus error (a fault for the debugger, a lockup for the CPU). The PPB
holds: the ROM table at 0xE00FF000 (designer ST, part 0x415; entries SCS, DWT, FPB, ITM, and
TPIU/ETM marked not present, as their registers are not modelled) and the CoreSight
identification of each component, so pyocd's discovery finds a Cortex-M4; the SCB (CPUID
0x410FC241) with AIRCR (VECTKEY 0x05FA: SYSRESETREQ resets the system, VECTRESET the core)
and DFSR (HALTED, BKPT, DWTTRAP, VCATCH, EXTERNAL; write one to clear); DHCSR, DCRSR, DCRDR
and DEMCR; the DWT (four comparators); the FPB v1 (six code and two literal comparators:
enabled ones halt the core before the instruction at their address); the ITM (plain
registers); DBGMCU at 0xE0042000 (IDCODE 0x10076415, the rest kept as written).

**Core debug** (ARMv7-M C1). DHCSR writes need DBGKEY 0xA05F and come from the debugger only
(software writes are ignored). C_DEBUGEN, C_HALT (halt; reads 1 while halted), C_STEP (with
C_HALT 0 while halted: one instruction, then halted again; with C_MASKINTS no interrupt is
taken), C_MASKINTS; S_REGRDY, S_HALT, S_LOCKUP, S_RETIRE_ST and S_RESET_ST (both cleared
by a read). DCRSR/DCRDR move R0-R12, SP, LR, the debug return address, xPSR, MSP, PSP and
CONTROL/FAULTMASK/BASEPRI/PRIMASK (selector 20) while halted. The core halts on BKPT (pyocd's
flash algorithm returns to one), on an FPB match, after a reset when DEMCR.VC_CORERESET is
set (at the reset vector, DFSR.VCATCH), and on request. A system reset (SYSRESETREQ,
nRESET) resets the CPU, clears C_HALT, C_STEP and C_MASKINTS, resets the peripherals and the
flash interface, keeps SRAM, and leaves the debug logic (DP, AP, DEMCR, DFSR, FPB, DBGMCU)
as it was.

**CPU.** The instructions run on the project's emulator, an `emu.Machine` of board
`cortex-m4-mram` (Unicorn; interrupts as `emu.Machine` delivers them), lazily: while the core
runs, each request first lets it retire up to `run_per_request` instructions (10 000 by
default: about 125 us of an 80 MHz core, one USB transaction of a real probe), and
`SimulatedTarget.run` lets it go on without a debugger. CPU stores to flash reach the flash
interface: the flash is mapped writable for the engine and every CPU store there is watched
(`Engine.watch_memory`); the watch sees the store before it lands, keeps the old bytes, and
before anything can observe flash again — a CPU read of flash, an access to the flash
interface's registers, the end of the slice — the old bytes are put back and the store is
handed to the flash interface model, which decides what flash holds.

**Flash interface** (`FlashInterface`, RM0351 section 3, at 0x40022000): FLASH_KEYR unlocks
FLASH_CR with 0x45670123 then 0xCDEF89AB; any other write there (also while unlocked) is a
bus error and keeps FLASH_CR locked until the next system reset; FLASH_OPTKEYR likewise
(0x08192A3B, 0x4C5D6E7F; a bus error while FLASH_CR is locked). FLASH_CR (reset 0xC0000000):
PG, PER, MER1, MER2, PNB, BKER, STRT, FSTPG, EOPIE, ERRIE, OPTLOCK, LOCK; ignored while
locked. FLASH_SR: EOP (only with EOPIE), OPERR (only with ERRIE), PROGERR, WRPERR, PGAERR,
SIZERR, PGSERR, write one to clear. Two banks of 256 pages of 2 KiB; erased bytes are 0xFF.
Programming: a double word, as two word writes into the flash range with PG set — the first
8-byte aligned (else PGAERR), the second at the next word (else PGAERR); a byte or halfword
write is SIZERR; a write without PG (or while locked) is PGSERR; starting with an error flag
still set is PGSERR; a double word that is not erased is PROGERR unless the data is zero
(RM0351's exception); a page in a write-protected area (the WRP option bytes) is WRPERR;
failing writes leave flash unchanged. STRT starts a page erase (PER: page PNB of bank BKER)
or a bank erase (MER1, MER2). Operations complete within the access that starts them, so BSY
reads 0. Option bytes: OPTR 0xFFEFF8AA (dual bank, software watchdog), no write protection;
the constructor's `option_bytes` may change them.

**State at power-on**: flash erased (0xFF, a part fresh from the factory); SRAM and MRAM
hold pseudo-random bytes from `seed` (nothing may rely on their contents); the core runs
from the blank vector table and so locks up at once, as a blank part does.

**Not modelled**: wire timing and WAIT responses (every transfer completes at once), pushed
compare/verify, JTAG, SWO, dormant state, the FPU as the debugger sees it (MVFR0 reads 0, so
pyocd treats the core as having none; the engine's register interface has no FP registers),
xPSR writes beyond the flags (the engine writes N, Z, C, V, Q and GE only), fault exceptions
(the emulator stops at a fault: the core locks up, or halts with DFSR.VCATCH when
DEMCR.VC_HARDERR is set, its PC on the faulting instruction rather than on the HardFault
handler), DWT watchpoints (the comparators keep what is written and never match), ITM
output, software halting itself through DHCSR, sleep (WFI retires at once), flash timing,
fast programming (FSTPG writes fail with PGSERR), option-byte programming (OPTSTRT,
OBL_LAUNCH do nothing), PCROP, ECC, SRAM2's alias at 0x10000000, the FMC.

Public names: `SimulatedDebugProbe`, `SimulatedTarget`, `FlashInterface`, `FlashMemory`,
`BusFault`, `DPIDR`, `AHB_AP_IDR`, `FLASH_KEYS`, `FLASH_OPTKEYS`.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from emu.boards import CORTEX_M4_MRAM, Region
from emu.elf import ElfImage, Segment
from emu.engines import Access, StopKind
from emu.machine import Machine
from emu.peripherals import Peripheral
from emu.peripherals.base import part, with_part

__all__ = ["SimulatedDebugProbe", "SimulatedTarget", "FlashInterface", "FlashMemory", "BusFault",
           "DPIDR", "AHB_AP_IDR", "FLASH_KEYS", "FLASH_OPTKEYS"]

DPIDR = 0x2BA0_1477  # ARM SW-DP v1 (DPv1), as on STM32L4
AHB_AP_IDR = 0x2477_0011  # the Cortex-M3/M4 AHB-AP
FLASH_KEYS = (0x4567_0123, 0xCDEF_89AB)  # RM0351 3.3.5
FLASH_OPTKEYS = (0x0819_2A3B, 0x4C5D_6E7F)  # RM0351 3.4.2


class BusFault(Exception):
    """A bus error on the system bus at `address` (the AHB answered with an error)."""

    def __init__(self, address: int, why: str = "no memory there"):
        super().__init__(f"bus error at {address:#010x}: {why}")
        self.address = address


# ================================================================================================
# The probe: pyocd's remote-probe protocol over TCP
# ================================================================================================
class SimulatedDebugProbe:
    """A probe server on `host` (loopback) and an OS-chosen `port` (or the one given), serving
    `target` (a new `SimulatedTarget(**target_options)` by default). `unique_id` is what pyocd
    takes (`remote:HOST:PORT`). While the target's core runs, each request first lets it
    retire up to `run_per_request` instructions. A context manager; `close()` stops it."""

    VENDOR = "hil.sim"
    PRODUCT = "simulated SWD probe (STM32L4-class Cortex-M4)"
    PROTOCOL_VERSION = 1

    def __init__(self, target: "SimulatedTarget | None" = None, *, host: str = "127.0.0.1", port: int = 0,
                 run_per_request: int = 10_000, **target_options):
        self.target = target if target is not None else SimulatedTarget(**target_options)
        self.run_per_request = int(run_per_request)
        self._listener = socket.create_server((host, port))
        self.host, self.port = self._listener.getsockname()[:2]
        self.unique_id = f"remote:{self.host}:{self.port}"
        self.requests = 0  # served since start
        self._open = 0  # connections that sent `open` and not `close`
        self._wire_protocol: str | None = None
        self.clock_hz: int | None = None
        self._owner: object | None = None  # connection holding the probe lock
        self._owner_depth = 0
        self._probe_lock = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._accepter = threading.Thread(target=self._accept, name=f"sim-probe-{self.port}", daemon=True)
        self._accepter.start()

    def __enter__(self) -> "SimulatedDebugProbe":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._closed:
            return
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # (wakes the blocked accept(); close alone does not)
        except OSError:
            pass
        self._listener.close()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in [self._accepter, *self._threads]:
            t.join(timeout=5)

    # -- connections --------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._connections.add(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        client = object()  # this connection's identity for the probe lock
        try:
            with conn.makefile("rb") as lines:
                for line in lines:
                    reply = self._reply(line, client)
                    conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass  # the client went away (or close() dropped it)
        finally:
            self._connections.discard(conn)
            conn.close()
            with self._probe_lock:
                if self._owner is client:
                    self._owner, self._owner_depth = None, 0
                    self._probe_lock.notify_all()

    def _reply(self, line: bytes, client: object) -> dict:
        rid = -1
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or "id" not in request:
                raise _RequestError(1, "invalid request format")
            rid = request["id"]
            name = request.get("request")
            args = request.get("arguments", [])
            handler = _HANDLERS.get(name)
            if handler is None:
                raise _RequestError(1, "unknown request type")
            if not isinstance(args, list) or len(args) != handler[1]:
                raise _RequestError(1, "malformed request; invalid number of arguments")
            result = self._dispatch(name, handler[0], args, client)
        except _RequestError as e:
            return {"id": rid, "status": e.status, "error": str(e)}
        except json.JSONDecodeError:
            return {"id": rid, "status": 1, "error": "invalid request format"}
        except Exception as e:  # noqa: BLE001 - a client waits for an answer to every request
            return {"id": rid, "status": 1, "error": f"{type(e).__name__}: {e}"}
        self.requests += 1
        reply = {"id": rid, "status": 0}
        if result is not None:
            reply["result"] = result
        return reply

    def _dispatch(self, name: str, method: str, args: list, client: object):
        if name == "lock":  # (waits without holding the target)
            return self._lock(client)
        if name == "unlock":
            return self._unlock(client)
        target = self.target
        with target.lock:
            if target.running:  # time passes with every transaction
                target.run(self.run_per_request)
            return getattr(self, method)(*args)

    def _lock(self, client: object) -> None:
        with self._probe_lock:
            while self._owner not in (None, client):
                self._probe_lock.wait()
            self._owner = client
            self._owner_depth += 1

    def _unlock(self, client: object) -> None:
        with self._probe_lock:
            if self._owner is not client:
                raise _RequestError(3, "unlock without lock")
            self._owner_depth -= 1
            if self._owner_depth == 0:
                self._owner = None
                self._probe_lock.notify_all()

    # -- requests (names in _HANDLERS) -----------------------------------------------------------
    def _hello(self, version) -> None:
        if version != self.PROTOCOL_VERSION:
            raise _RequestError(1, f"client requested unsupported protocol version {version} "
                                   f"(expected {self.PROTOCOL_VERSION})")

    def _readprop(self, name) -> object:
        props = {"vendor_name": self.VENDOR, "product_name": self.PRODUCT, "unique_id": self.unique_id,
                 "supported_wire_protocols": ["DEFAULT", "SWD"], "capabilities": ["SWJ_SEQUENCE"],
                 "wire_protocol": self._wire_protocol, "is_open": self._open > 0}
        if name not in props:
            raise _RequestError(1, f"unknown property name '{name}' requested")
        return props[name]

    def _do_open(self) -> None:
        self._open += 1

    def _do_close(self) -> None:
        self._open = max(0, self._open - 1)
        if self._open == 0:
            self._wire_protocol = None

    def _connect(self, protocol) -> None:
        self._need_open()
        if protocol not in ("SWD", "DEFAULT"):
            raise _RequestError(3, f"wire protocol {protocol} is not supported (SWD only)")
        self._wire_protocol = "SWD"

    def _disconnect(self) -> None:
        self._wire_protocol = None

    def _swj_sequence(self, length, bits) -> None:
        self._need_wire()
        self.target.dap.swj_sequence(int(length), int(bits))

    def _set_clock(self, frequency) -> None:
        self.clock_hz = int(frequency)

    def _reset(self) -> None:
        self._need_open()
        self.target.pulse_reset()

    def _assert_reset(self, asserted) -> None:
        self._need_open()
        self.target.hold_reset(bool(asserted))

    def _is_reset_asserted(self) -> bool:
        return self.target.reset_held

    def _flush(self) -> None:
        pass  # every transfer is done when its request is answered

    def _read_dp(self, addr) -> int:
        return self._transfer(lambda dap: dap.read_dp(int(addr)))

    def _write_dp(self, addr, data) -> None:
        self._transfer(lambda dap: dap.write_dp(int(addr), int(data)))

    def _read_ap(self, addr) -> int:
        return self._transfer(lambda dap: dap.read_ap(int(addr)))

    def _write_ap(self, addr, data) -> None:
        self._transfer(lambda dap: dap.write_ap(int(addr), int(data)))

    def _read_ap_multiple(self, addr, count) -> list[int]:
        return self._transfer(lambda dap: [dap.read_ap(int(addr)) for _ in range(int(count))])

    def _write_ap_multiple(self, addr, values) -> None:
        self._transfer(lambda dap: [dap.write_ap(int(addr), int(v)) for v in values])

    def _memory_interface(self, ap_version, ap_address) -> None:
        return None  # no memory interface: the client uses the MEM-AP through read_ap/write_ap

    def _has_swo(self) -> bool:
        return False

    def _no_swo(self, *args) -> None:
        raise _RequestError(3, "this probe has no SWO")

    def _need_open(self) -> None:
        if self._open == 0:
            raise _RequestError(3, "the probe is not open")

    def _need_wire(self) -> None:
        self._need_open()
        if self._wire_protocol is None:
            raise _RequestError(3, "the probe is not connected to the target (send connect)")

    def _transfer(self, what: Callable[["_Dap"], object]):
        self._need_wire()
        try:
            return what(self.target.dap)
        except _NoAck as e:
            raise _RequestError(10, f"no acknowledge from the target: {e}") from None
        except _TransferFault as e:
            raise _RequestError(12, f"transfer fault: {e}") from None


# request -> (method, argument count); as pyocd's DebugProbeRequestHandler lists them
_HANDLERS = {
    "hello": ("_hello", 1), "readprop": ("_readprop", 1), "open": ("_do_open", 0),
    "close": ("_do_close", 0), "lock": ("_lock", 0), "unlock": ("_unlock", 0),
    "connect": ("_connect", 1), "disconnect": ("_disconnect", 0),
    "swj_sequence": ("_swj_sequence", 2), "set_clock": ("_set_clock", 1), "reset": ("_reset", 0),
    "assert_reset": ("_assert_reset", 1), "is_reset_asserted": ("_is_reset_asserted", 0),
    "flush": ("_flush", 0), "read_dp": ("_read_dp", 1), "write_dp": ("_write_dp", 2),
    "read_ap": ("_read_ap", 1), "write_ap": ("_write_ap", 2),
    "read_ap_multiple": ("_read_ap_multiple", 2), "write_ap_multiple": ("_write_ap_multiple", 2),
    "get_memory_interface_for_ap": ("_memory_interface", 2), "has_swo": ("_has_swo", 0),
    "swo_start": ("_no_swo", 1), "swo_stop": ("_no_swo", 0), "swo_read": ("_no_swo", 0),
}


class _RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# ================================================================================================
# The target: an STM32L4-class chip around an emu.Machine
# ================================================================================================
FLASH_BASE, FLASH_SIZE = 0x0800_0000, 0x10_0000
_ALIAS_SIZE = 0x10_0000  # flash seen at 0x00000000 (boot from main flash)
_PPB = (0xE000_0000, 0x10_0000)

# DHCSR (ARMv7-M C1.6.2)
DBGKEY = 0xA05F
C_DEBUGEN, C_HALT, C_STEP, C_MASKINTS, C_SNAPSTALL = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 5
S_REGRDY, S_HALT, S_SLEEP, S_LOCKUP, S_RETIRE_ST, S_RESET_ST = 1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 24, 1 << 25
# DFSR
DFSR_HALTED, DFSR_BKPT, DFSR_DWTTRAP, DFSR_VCATCH, DFSR_EXTERNAL = 1, 2, 4, 8, 16
# DEMCR
VC_CORERESET, VC_HARDERR = 1 << 0, 1 << 10
# AIRCR
VECTKEY = 0x05FA
VECTRESET, VECTCLRACTIVE, SYSRESETREQ = 1 << 0, 1 << 1, 1 << 2


class SimulatedTarget:
    """The chip: an `emu.Machine` (board cortex-m4-mram, its flash writable for the engine so
    that CPU stores reach the flash interface), the debug components on its PPB, the flash
    interface, the DP and AHB-AP (`dap`). See the module docstring. `seed` picks the SRAM and
    MRAM contents at power-on; `tar_wrap` the AHB-AP's auto-increment boundary;
    `option_bytes` overrides the flash option bytes (names as `FlashInterface.OPTION_BYTES`).

    For tests and tools (each takes the target's lock): `read_memory`/`write_memory` (raw,
    no side effects, no bus), `memory_at_reset` (non-volatile memory as it was at the last
    reset: what the firmware started from), `run(n)` (let a running core retire up to n
    instructions), `uart` (bytes the firmware sent since the last reset), `state`, `fault`."""

    def __init__(self, *, seed: int = 0, tar_wrap: int = 0x1000, option_bytes: dict[str, int] | None = None):
        self.lock = threading.RLock()
        board = _debug_view(CORTEX_M4_MRAM)
        blank = ElfImage(Path("<blank part>"), board.elf_machine, 0,
                         (Segment(FLASH_BASE, b"\xff" * FLASH_SIZE, True),), {})
        # "keep": a system reset keeps SRAM; it is filled below, as at power-on
        self.machine = machine = Machine(blank, board, volatile_init="keep", seed=seed)
        self.engine = engine = machine.engine
        rng = np.random.default_rng(seed)
        for r in board.regions:
            if not r.mmio and r.alias_of is None and r.start != FLASH_BASE:
                engine.write_memory(r.start, rng.bytes(r.size))
        self._nonvolatile = tuple((r.start, r.size) for r in board.nonvolatile_regions)

        self.flash = FlashInterface(_EngineFlash(engine), option_bytes=option_bytes,
                                    before_access=self._drain_cpu_flash)
        self.fpb = _Fpb(self._breakpoints_changed)
        self.dfsr = 0
        scb = machine.bus.by_name("scb")
        self._debugctl = machine.bus.by_name("debug")  # DEMCR (emu.peripherals: it gates the DWT)
        # Debug components first: the bus routes an address to the first peripheral covering it
        # (DHCSR-DCRDR, AIRCR and DFSR lie inside emu's SCB and debug-control models).
        machine.add_peripherals((
            _CoreDebug(self), _Aircr(self, scb), _Dfsr(self), self.flash, _Dbgmcu(), _RomTable(),
            self.fpb, _Itm(),
            _ComponentId(0xE000_EFD0, _SCS_ID), _ComponentId(0xE000_1FD0, _DWT_ID)))

        # CPU stores into flash (and its alias): see the module docstring
        self._cpu_flash: list[tuple[int, int, int, bytes]] = []  # (address, size, value, old bytes)
        self._hook_error: BaseException | None = None
        engine.watch_memory([(FLASH_BASE, FLASH_BASE + FLASH_SIZE), (0, _ALIAS_SIZE)], self._cpu_flash_access)

        self.dap = _Dap(_DebugBus(self), tar_wrap)
        self.debugger_access = False  # a register write through the AP is under way
        # run control (ARMv7-M C1): the core's debug state
        self._halted = False
        self._lockup: str | None = None
        self.fault: str | None = None  # why the core faulted since the last reset, if it did
        self._reset_held = False
        self._c_debugen = self._c_maskints = self._c_step = self._c_snapstall = False
        self._s_reset_st = True  # power-on reset
        self._retired_mark = 0
        self._regrdy = False
        self._dcrdr = 0
        self._boot_image: dict[int, bytes] = {}
        self._reset_cpu_and_memory_image()
        machine.power_on()
        self._retired_mark = machine.instructions

    # -- public view ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not (self._halted or self._lockup is not None or self._reset_held)

    @property
    def state(self) -> str:
        """The core's state: "running", "halted", "lockup" or "reset" (nRESET held)."""
        if self._reset_held:
            return "reset"
        return "halted" if self._halted else "lockup" if self._lockup is not None else "running"

    @property
    def reset_held(self) -> bool:
        return self._reset_held

    @property
    def uart(self) -> bytes:
        """Bytes the firmware sent on its UART since the last reset."""
        with self.lock:
            return self.machine.uart_since_boot

    @property
    def instructions(self) -> int:
        """Instructions the core retired since power-on."""
        return self.machine.instructions

    def read_memory(self, address: int, size: int) -> bytes:
        with self.lock:
            self._drain_cpu_flash()
            return self.engine.read_memory(address, size)

    def write_memory(self, address: int, data: bytes) -> None:
        """Raw write (also into flash: like a part that arrives pre-programmed)."""
        with self.lock:
            self._drain_cpu_flash()
            self.engine.write_memory(address, data)

    def memory_at_reset(self, address: int, size: int) -> bytes:
        """Non-volatile memory (flash, MRAM) as it was at the last reset."""
        with self.lock:
            for start, data in self._boot_image.items():
                if start <= address and address + size <= start + len(data):
                    return data[address - start : address - start + size]
        raise ValueError(f"{address:#x}+{size:#x} is not in one non-volatile region")

    def run(self, instructions: int) -> int:
        """Let the core, if it runs, retire up to `instructions` more (it may halt, lock up or
        reset on the way); the number it retired."""
        with self.lock:
            start = self.machine.instructions
            budget = int(instructions)
            idle = 0
            while budget > 0 and self.running and idle < 2:
                before = self.machine.instructions
                self._execute(lambda: self.machine.step(budget))
                done = self.machine.instructions - before
                budget -= done
                idle = idle + 1 if done == 0 else 0  # (e.g. resets retiring nothing)
            return self.machine.instructions - start

    def pulse_reset(self) -> None:
        """nRESET low then high: a system reset."""
        with self.lock:
            self._reset_held = False
            self._system_reset()

    def hold_reset(self, asserted: bool) -> None:
        """Drive nRESET: low holds the system in reset, high releases it (a system reset)."""
        with self.lock:
            if asserted:
                self._drain_cpu_flash()
                self._reset_held = True
            elif self._reset_held:
                self._reset_held = False
                self._system_reset()

    # -- the CPU -------------------------------------------------------------------------------
    def _execute(self, step: Callable[[], object]) -> None:
        """Run `step` (the machine or engine running instructions) and turn how it stopped
        into run-control state: a breakpoint or BKPT halts, a fault locks up, a reset
        request resets."""
        engine = self.engine
        try:
            stop = step()
        except _ResetRequest as r:
            self._drain_cpu_flash()
            self._system_reset() if r.system else self._core_reset()
            return
        except BusFault as f:
            self._drain_cpu_flash()
            self._fault(f"{f} (pc {engine.pc:#010x})")
            return
        finally:
            if self._hook_error is not None:
                e, self._hook_error = self._hook_error, None
                raise e
        self._drain_cpu_flash()
        if stop.kind == StopKind.EXIT:  # an FPB comparator matched: before that instruction
            self._enter_debug(DFSR_BKPT)
        elif stop.kind == StopKind.FAULT:
            if self._is_bkpt(stop.pc):
                self._enter_debug(DFSR_BKPT)  # BKPT halts a debugged core (PC on the BKPT)
            else:
                self._fault(f"{stop.reason} (pc {stop.pc:#010x})")

    def _is_bkpt(self, pc: int) -> bool:
        try:
            return self.engine.read_memory(pc, 2)[1] == 0xBE
        except ValueError:
            return False

    def _fault(self, why: str) -> None:
        self.fault = why
        if self._c_debugen and self._debugctl.demcr & VC_HARDERR:
            self._enter_debug(DFSR_VCATCH)
        else:
            self._lockup = why

    def _cpu_flash_access(self, kind, address, size, value, pc, index) -> None:
        # Runs inside the engine (a Unicorn hook): must not raise. A write is seen before it
        # lands: keep the old bytes; a read of flash first settles the writes before it.
        try:
            if kind == "w":
                self._cpu_flash.append((address, size, value, self.engine.read_memory(address, size)))
            elif self._cpu_flash:
                self._drain_cpu_flash()
        except BaseException as e:  # noqa: BLE001 - re-raised after the run
            self._hook_error = self._hook_error or e

    def _drain_cpu_flash(self) -> None:
        """Undo the CPU's raw stores into flash and hand them to the flash interface."""
        pending, self._cpu_flash = self._cpu_flash, []
        for address, _, _, old in reversed(pending):
            self.engine.write_memory(address, old)
        for address, size, value, _ in pending:
            self.flash.memory_write(_flash_address(address), size, value)

    def _breakpoints_changed(self, addresses: frozenset[int]) -> None:
        self.engine.set_exits(sorted(addresses))

    # -- resets --------------------------------------------------------------------------------
    def _system_reset(self) -> None:
        """SYSRESETREQ or nRESET: CPU and peripherals reset, SRAM kept, debug logic kept."""
        self._drain_cpu_flash()
        machine, demcr = self.machine, self._debugctl.demcr
        machine.power_fail()  # (emu's bus: every peripheral to its reset state)
        self.flash.reset()  # (also when only memory writes touched it)
        self._reset_cpu_and_memory_image()
        machine.power_on()  # volatile_init "keep": SRAM kept; SP, PC from the vector table
        self._debugctl.write(0xC, 4, demcr)  # DEMCR is reset by a power-on reset only
        self._after_reset()

    def _core_reset(self) -> None:
        """VECTRESET: the core alone (registers from the vector table), peripherals kept."""
        engine = self.engine
        engine.reset_cpu()
        vectors = engine.read_memory(FLASH_BASE, 8)
        engine.write_register("sp", int.from_bytes(vectors[:4], "little") & ~3)
        engine.write_register("lr", 0xFFFF_FFFF)
        engine.write_register("xpsr", 0x0100_0000)
        engine.pc = int.from_bytes(vectors[4:], "little") & ~1
        self._after_reset()

    def _reset_cpu_and_memory_image(self) -> None:
        self.engine.reset_cpu()
        self._boot_image = {start: self.engine.read_memory(start, size) for start, size in self._nonvolatile}

    def _after_reset(self) -> None:
        self._s_reset_st = True
        self.fault = None
        self._halted, self._lockup = False, None
        self._c_step = self._c_maskints = False
        if self._c_debugen and self._debugctl.demcr & VC_CORERESET:
            self._enter_debug(DFSR_VCATCH)  # before the first instruction

    # -- debug state (DHCSR, DCRSR, DCRDR; ARMv7-M C1.6) -------------------------------------------
    def _enter_debug(self, reason: int) -> None:
        self._halted, self._lockup = True, None
        self.dfsr |= reason
        self._regrdy = True

    def _leave_debug(self) -> None:
        self._halted = False

    def read_dhcsr(self) -> int:
        value = (self._c_debugen * C_DEBUGEN | self._halted * C_HALT | self._c_step * C_STEP
                 | self._c_maskints * C_MASKINTS | self._c_snapstall * C_SNAPSTALL)
        if self._halted:
            value |= S_HALT | (S_REGRDY if self._regrdy else 0)
        if self._lockup is not None:
            value |= S_LOCKUP
        now = self.machine.instructions
        if now != self._retired_mark:
            value |= S_RETIRE_ST
        self._retired_mark = now
        if self._s_reset_st or self._reset_held:
            value |= S_RESET_ST
        self._s_reset_st = False
        return value

    def write_dhcsr(self, value: int, from_debugger: bool) -> None:
        if value >> 16 != DBGKEY or not from_debugger:
            return  # (software cannot set C_DEBUGEN; its halting itself is not modelled)
        if not value & C_DEBUGEN:
            self._c_debugen = self._c_step = self._c_maskints = False
            if self._halted:
                self._leave_debug()  # leaving debug state
            return
        self._c_debugen = True
        self._c_snapstall = bool(value & C_SNAPSTALL)
        if self._halted:
            self._c_maskints = bool(value & C_MASKINTS)
        self._c_step = bool(value & C_STEP)
        if value & C_HALT:
            if not self._halted and not self._reset_held:
                self._enter_debug(DFSR_HALTED)
        elif self._halted:
            if self._c_step:
                self._step_one()
            else:
                self._leave_debug()

    def _step_one(self) -> None:
        self._leave_debug()
        if self._c_maskints:  # no interrupt is taken: the engine alone
            self._execute(lambda: self.engine.run(1))
        else:
            self._execute(lambda: self.machine.step(1))
        if self.running:
            self._enter_debug(DFSR_HALTED)

    def write_dcrsr(self, value: int) -> None:
        if not self._halted:
            self._regrdy = False  # (no transfer outside debug state)
            return
        select = value & 0x7F
        if value & (1 << 16):
            self._write_core_register(select, self._dcrdr)
        else:
            self._dcrdr = self._read_core_register(select)
        self._regrdy = True

    def _read_core_register(self, select: int) -> int:
        engine = self.engine
        if select in _DCRSR_NAMES:
            return engine.read_register(_DCRSR_NAMES[select]) & 0xFFFF_FFFF
        if select == 20:
            return (engine.read_register("control") << 24 | engine.read_register("faultmask") << 16
                    | engine.read_register("basepri") << 8 | engine.read_register("primask"))
        return 0  # (FP registers: no FPU is shown to the debugger)

    def _write_core_register(self, select: int, value: int) -> None:
        engine = self.engine
        if select in _DCRSR_NAMES:
            engine.write_register(_DCRSR_NAMES[select], value)
        elif select == 20:
            for name, shift in (("primask", 0), ("basepri", 8), ("faultmask", 16), ("control", 24)):
                engine.write_register(name, value >> shift & 0xFF)

    @property
    def dcrdr(self) -> int:
        return self._dcrdr

    @dcrdr.setter
    def dcrdr(self, value: int) -> None:
        self._dcrdr = value & 0xFFFF_FFFF


_DCRSR_NAMES = {**{i: f"r{i}" for i in range(13)}, 13: "sp", 14: "lr", 15: "pc", 16: "xpsr", 17: "msp", 18: "psp"}


def _debug_view(board):
    """The board as the simulated chip maps it: flash writable for the engine (the flash
    interface decides what a store does), and the whole Private Peripheral Bus as registers."""
    regions = []
    for r in board.regions:
        if r.start >= _PPB[0]:
            continue  # (replaced by the whole PPB below)
        if r.access == Access.RX and not r.mmio:
            r = dataclasses.replace(r, access=Access.RWX)
        regions.append(r)
    regions.append(Region("ppb", *_PPB, Access.RW, mmio=True))
    return dataclasses.replace(board, regions=tuple(regions))


def _flash_address(address: int) -> int:
    return address + FLASH_BASE if address < _ALIAS_SIZE else address


class _ResetRequest(Exception):
    """Raised by AIRCR writes: the system (or the core) resets now."""

    def __init__(self, system: bool):
        super().__init__("system reset" if system else "core reset")
        self.system = system


class _DebugBus:
    """The system bus as the AHB-AP sees it: memory through the engine, flash writes through
    the flash interface, registers through the machine's peripheral bus."""

    def __init__(self, target: SimulatedTarget):
        self.target = target
        self.board = target.machine.board

    def read(self, address: int, size: int) -> int:
        region = self._region(address, size)
        t = self.target
        if region.mmio:
            return t.machine.bus.read(address, size)
        t._drain_cpu_flash()
        return int.from_bytes(t.engine.read_memory(address, size), "little")

    def write(self, address: int, size: int, value: int) -> None:
        region = self._region(address, size)
        t = self.target
        if region.mmio:
            t.debugger_access = True  # (DHCSR takes writes from the debugger only)
            try:
                t.machine.bus.write(address, size, value)
            except _ResetRequest as r:
                t._system_reset() if r.system else t._core_reset()
            finally:
                t.debugger_access = False
        elif region.start == FLASH_BASE or region.alias_of == FLASH_BASE:
            t.flash.memory_write(_flash_address(address), size, value)
        else:
            t.engine.write_memory(address, value.to_bytes(size, "little"))

    def _region(self, address: int, size: int) -> Region:
        region = self.board.region_at(address, size)
        if region is None:
            raise BusFault(address)
        return region


# ================================================================================================
# The flash interface (RM0351 section 3)
# ================================================================================================
class FlashArray(Protocol):
    def read(self, address: int, size: int) -> bytes: ...

    def write(self, address: int, data: bytes) -> None: ...


class FlashMemory:
    """Flash cells on their own (erased): for driving `FlashInterface` without a CPU."""

    def __init__(self, base: int = FLASH_BASE, size: int = FLASH_SIZE):
        self.base, self.data = base, bytearray(b"\xff" * size)

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.data[address - self.base : address - self.base + size])

    def write(self, address: int, data: bytes) -> None:
        self.data[address - self.base : address - self.base + len(data)] = data


class _EngineFlash:
    """The engine's flash bytes (raw host writes: no store hooks, translations dropped)."""

    def __init__(self, engine):
        self.engine = engine

    def read(self, address: int, size: int) -> bytes:
        return self.engine.read_memory(address, size)

    def write(self, address: int, data: bytes) -> None:
        self.engine.write_memory(address, data)


class _KeySequence:
    """An unlock sequence (RM0351 3.3.5, 3.4.2): the keys written in order, while locked,
    unlock; any other write (also while unlocked) is a bus error and locks until the next
    reset."""

    def __init__(self, keys: tuple[int, ...], register: int, what: str, lock: str):
        self.keys, self.register, self.what, self.lock = keys, register, what, lock
        self.received = 0  # keys of the current sequence received
        self.locked_out = False

    def feed(self, value: int, locked: bool, on_error: Callable[[], None]) -> bool:
        """One write; True when it completes the sequence (`on_error` relocks, then BusFault)."""
        if locked and not self.locked_out and value == self.keys[self.received]:
            self.received += 1
            if self.received < len(self.keys):
                return False
            self.received = 0
            return True
        self.locked_out, self.received = True, 0
        on_error()
        raise BusFault(self.register, f"wrong {self.what} sequence; {self.lock} until reset")


class FlashInterface(Peripheral):
    """The STM32L4 embedded flash interface at 0x40022000 (see the module docstring), over
    `memory` (a `FlashMemory` by default). `memory_write(address, size, value)` is a bus
    write into the flash range, by the CPU or the debugger. `before_access` is called before
    every register access (the simulated chip settles the CPU's pending flash stores there).
    `programmed` counts the double words programmed and `erased` lists the pages erased
    (their start addresses), since construction."""

    name = "flash"
    base = 0x4002_2000
    size = 0x400
    PAGE = 0x800
    # registers (offsets)
    ACR, PDKEYR, KEYR, OPTKEYR, SR, CR, ECCR, OPTR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x20
    OPTION_BYTES = {"OPTR": (0x20, 0xFFEF_F8AA), "WRP1AR": (0x2C, 0xFF00_FFFF), "WRP1BR": (0x30, 0xFF00_FFFF),
                    "WRP2AR": (0x4C, 0xFF00_FFFF), "WRP2BR": (0x50, 0xFF00_FFFF)}  # factory: no WRP area
    # FLASH_SR
    EOP, OPERR, PROGERR, WRPERR, PGAERR, SIZERR, PGSERR = 1 << 0, 1 << 1, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7
    MISERR, FASTERR, RDERR, OPTVERR, BSY = 1 << 8, 1 << 9, 1 << 14, 1 << 15, 1 << 16
    SR_W1C = 0xC3FB
    PROGRAMMING_ERRORS = PROGERR | WRPERR | PGAERR | SIZERR | PGSERR | MISERR | FASTERR
    # FLASH_CR
    PG, PER, MER1, BKER, MER2, STRT, OPTSTRT, FSTPG = 1 << 0, 1 << 1, 1 << 2, 1 << 11, 1 << 15, 1 << 16, 1 << 17, 1 << 18
    EOPIE, ERRIE, OBL_LAUNCH, OPTLOCK, LOCK = 1 << 24, 1 << 25, 1 << 27, 1 << 30, 1 << 31
    CR_WRITABLE = 0x0F07_8FFF
    PNB_SHIFT, PNB_MASK = 3, 0xFF

    def __init__(self, memory: FlashArray | None = None, *, flash_base: int = FLASH_BASE,
                 flash_size: int = FLASH_SIZE, option_bytes: dict[str, int] | None = None,
                 before_access: Callable[[], None] | None = None):
        self.memory = memory if memory is not None else FlashMemory(flash_base, flash_size)
        self.flash_base, self.flash_size = flash_base, flash_size
        self.options = {name: value for name, (_, value) in self.OPTION_BYTES.items()}
        for name, value in (option_bytes or {}).items():
            if name not in self.options:
                raise ValueError(f"unknown option byte register {name}; known: {', '.join(self.options)}")
            self.options[name] = value & 0xFFFF_FFFF
        self.before_access = before_access
        self.programmed = 0  # double words programmed (counted since construction)
        self.erased: list[int] = []  # start address of each page erased, in order
        self.reset()

    def reset(self) -> None:
        """A system reset: registers to their reset values, FLASH_CR locked (keys again)."""
        self.acr = 0x0000_0600
        self.sr = 0
        self.cr = self.LOCK | self.OPTLOCK
        self.unlock = _KeySequence(FLASH_KEYS, self.base + self.KEYR, "flash key", "FLASH_CR locked")
        self.opt_unlock = _KeySequence(FLASH_OPTKEYS, self.base + self.OPTKEYR, "option key", "OPTLOCK set")
        self.first_word: tuple[int, int] | None = None  # (address, value) of a double word half written

    # -- registers --------------------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        if self.before_access:
            self.before_access()
        word = offset & ~3
        if word in (self.ACR, self.SR, self.CR):
            value = {self.ACR: self.acr, self.SR: self.sr, self.CR: self.cr}[word]
        else:  # option byte registers; the key registers and the rest read as zero
            value = next((self.options[name] for name, (off, _) in self.OPTION_BYTES.items() if off == word), 0)
        return part(value, offset, size, 4)

    def write(self, offset: int, size: int, value: int) -> None:
        if self.before_access:
            self.before_access()
        word = offset & ~3
        if size != 4 or offset & 3:
            if word in (self.KEYR, self.OPTKEYR):
                raise BusFault(self.base + offset, "flash key registers take word writes")
            value = with_part(self.read(word, 4), offset, size, value, 4)
        if word == self.ACR:
            self.acr = value & 0x7F07
        elif word == self.KEYR:
            self._key(value)
        elif word == self.OPTKEYR:
            self._optkey(value)
        elif word == self.SR:
            self.sr &= ~(value & self.SR_W1C)
        elif word == self.CR:
            self._write_cr(value)
        # (PDKEYR, ECCR, option registers: writes have no modelled effect)

    def _key(self, value: int) -> None:
        if self.unlock.feed(value, locked=bool(self.cr & self.LOCK), on_error=self._lock):
            self.cr &= ~self.LOCK

    def _optkey(self, value: int) -> None:
        if self.cr & self.LOCK:
            raise BusFault(self.base + self.OPTKEYR, "option keys while FLASH_CR is locked")
        if self.opt_unlock.feed(value, locked=bool(self.cr & self.OPTLOCK), on_error=self._lock_options):
            self.cr &= ~self.OPTLOCK

    def _lock(self) -> None:
        self.cr |= self.LOCK

    def _lock_options(self) -> None:
        self.cr |= self.OPTLOCK

    def _write_cr(self, value: int) -> None:
        if self.cr & self.LOCK:
            return  # FLASH_CR is locked: writes are ignored
        locks = value & (self.LOCK | self.OPTLOCK)  # (set by software, cleared only by keys)
        self.cr = (value & self.CR_WRITABLE) | (self.cr & self.OPTLOCK) | locks
        if not self.cr & self.PG:
            self.first_word = None
        if self.cr & self.STRT:
            self._erase()
            self.cr &= ~self.STRT  # cleared when the operation ends (at once here)
        self.cr &= ~(self.OPTSTRT | self.OBL_LAUNCH)  # option programming: not modelled
        if locks & self.LOCK:
            self.unlock.received = 0

    # -- operations ---------------------------------------------------------------------------
    def _fail(self, flag: int) -> None:
        self.sr |= flag | (self.OPERR if self.cr & self.ERRIE else 0)

    def _done(self) -> None:
        if self.cr & self.EOPIE:
            self.sr |= self.EOP

    def _erase(self) -> None:
        cr = self.cr
        if self.sr & self.PROGRAMMING_ERRORS or cr & (self.PG | self.FSTPG):
            self._fail(self.PGSERR)
            return
        half = self.flash_size // 2
        if cr & self.PER:
            if cr & (self.MER1 | self.MER2):
                self._fail(self.PGSERR)  # (RM0351 leaves this combination undefined)
                return
            bank = 1 if cr & self.BKER else 0
            page = cr >> self.PNB_SHIFT & self.PNB_MASK
            if page * self.PAGE >= half:
                self._fail(self.PGSERR)
                return
            spans = [(bank, page, page)]
        elif cr & (self.MER1 | self.MER2):
            last = half // self.PAGE - 1
            spans = [(b, 0, last) for b, bit in ((0, self.MER1), (1, self.MER2)) if cr & bit]
        else:
            return  # STRT without PER/MER: unpredictable per RM0351; nothing here
        if any(self._protected(bank, p) for bank, first, last in spans for p in range(first, last + 1)):
            self._fail(self.WRPERR)
            return
        for bank, first, last in spans:
            start = self.flash_base + bank * half + first * self.PAGE
            self.memory.write(start, b"\xff" * ((last - first + 1) * self.PAGE))
            self.erased += range(start, start + (last - first + 1) * self.PAGE, self.PAGE)
        self._done()

    def _protected(self, bank: int, page: int) -> bool:
        for name in (("WRP1AR", "WRP1BR") if bank == 0 else ("WRP2AR", "WRP2BR")):
            value = self.options[name]
            start, end = value & 0xFF, value >> 16 & 0xFF
            if start <= page <= end:
                return True
        return False

    def memory_write(self, address: int, size: int, value: int) -> None:
        """A write of `size` bytes at `address` in the flash range (RM0351 3.3.7)."""
        first, self.first_word = self.first_word, None
        if self.cr & self.LOCK or not self.cr & self.PG:
            self._fail(self.PGSERR)  # (FSTPG alone: fast programming is not modelled)
            return
        if size != 4:
            self._fail(self.SIZERR)
            return
        if first is None:
            if address % 8:
                self._fail(self.PGAERR)
            elif self.sr & self.PROGRAMMING_ERRORS:
                self._fail(self.PGSERR)
            else:
                self.first_word = (address, value)
            return
        start, low = first
        if address != start + 4:
            self._fail(self.PGAERR)
            return
        half = self.flash_size // 2
        offset = start - self.flash_base
        if self._protected(offset // half, offset % half // self.PAGE):
            self._fail(self.WRPERR)
            return
        data = (low | value << 32).to_bytes(8, "little")
        if self.memory.read(start, 8) != b"\xff" * 8 and data != bytes(8):
            self._fail(self.PROGERR)  # not erased (zeros may always be written)
            return
        self.memory.write(start, data)
        self.programmed += 1
        self._done()


# ================================================================================================
# The debug access port: SW-DP and AHB-AP
# ================================================================================================
class _NoAck(Exception):
    """The DP did not answer (no ACK): a protocol error for the probe."""


class _TransferFault(Exception):
    """The DP answered FAULT."""


# DP registers (ADIv5 B2) and bits
DP_ABORT_IDR, DP_CTRL_STAT, DP_SELECT_RESEND, DP_RDBUFF = 0x0, 0x4, 0x8, 0xC
STKCMPCLR, STKERRCLR, WDERRCLR, ORUNERRCLR = 1 << 1, 1 << 2, 1 << 3, 1 << 4
ORUNDETECT, STICKYORUN, STICKYCMP, STICKYERR, READOK, WDATAERR = 1 << 0, 1 << 1, 1 << 4, 1 << 5, 1 << 6, 1 << 7
CDBGRSTREQ, CDBGRSTACK, CDBGPWRUPREQ, CDBGPWRUPACK, CSYSPWRUPREQ, CSYSPWRUPACK = (1 << 26, 1 << 27, 1 << 28,
                                                                                 1 << 29, 1 << 30, 1 << 31)
_CTRL_WRITABLE = ORUNDETECT | 0xC | 0xF00 | 0xFFF000 | CDBGRSTREQ | CDBGPWRUPREQ | CSYSPWRUPREQ
# MEM-AP registers (ADIv5 C2.6) and CSW bits
AP_CSW, AP_TAR, AP_DRW, AP_CFG, AP_BASE, AP_IDR = 0x00, 0x04, 0x0C, 0xF4, 0xF8, 0xFC
CSW_SIZE, CSW_ADDRINC, CSW_DEVICEEN, CSW_TRINPROG = 0x7, 0x30, 1 << 6, 1 << 7
CSW_RESET = 0x0300_0040  # HPROT data, privileged; DeviceEn
_CSW_WRITABLE = 0x2F00_0037  # MasterType, HPROT[3:0], AddrInc, Size
_INC_OFF, _INC_SINGLE, _INC_PACKED = 0, 1, 2
ROM_TABLE_BASE = 0xE00F_F000
_JTAG_TO_SWD, _SWD_TO_JTAG = 0xE79E, 0xE73C


class _Dap:
    """The SWJ-DP (SW-DP v1) and AP 0, an AHB-AP on `bus`."""

    def __init__(self, bus, tar_wrap: int):
        if tar_wrap & (tar_wrap - 1) or tar_wrap < 0x400:
            raise ValueError("tar_wrap must be a power of two of at least 0x400 (ADIv5: 10 bits)")
        self.bus, self.tar_wrap = bus, tar_wrap
        self.mode = "jtag"  # the SWJ-DP after power-on
        self.line_reset = False
        self._ones = 0
        self._code: list[int] | None = None  # bits after a line reset (a select code?)
        self.ctrl = 0
        self.select = 0
        self.rdbuff = 0
        self.dlcr = 0x40
        self.csw, self.tar = CSW_RESET, 0

    # -- SWJ ---------------------------------------------------------------------------------------
    def swj_sequence(self, length: int, bits: int) -> None:
        for i in range(length):
            bit = bits >> i & 1
            if self._code is not None:
                self._code.append(bit)
                if len(self._code) == 16:
                    code, self._code = sum(b << k for k, b in enumerate(self._code)), None
                    if code == _JTAG_TO_SWD:
                        self.mode = "swd"
                    elif code == _SWD_TO_JTAG:
                        self.mode = "jtag"
            if bit:
                self._ones += 1
                continue
            if self._ones >= 50:
                self.line_reset = True  # an SWD line reset (in JTAG mode: Test-Logic-Reset)
                if self._code is None:
                    self._code = [0]
            self._ones = 0

    def _answer(self, dpidr_read: bool = False) -> None:
        if self.mode != "swd":
            raise _NoAck("the SWJ-DP is in JTAG mode (send the JTAG-to-SWD sequence)")
        if self.line_reset and not dpidr_read:
            raise _NoAck("the DP is in its reset state after a line reset (read DPIDR first)")
        self.line_reset = False

    def _check_sticky(self) -> None:
        if self.ctrl & STICKYERR:
            raise _TransferFault("STICKYERR is set (clear it with ABORT.STKERRCLR)")

    # -- DP ----------------------------------------------------------------------------------------
    def read_dp(self, addr: int) -> int:
        addr &= 0xC
        self._answer(dpidr_read=addr == DP_ABORT_IDR)
        if addr == DP_ABORT_IDR:
            return DPIDR
        if addr == DP_CTRL_STAT:
            bank = self.select & 0xF
            if bank == 0:
                return self.ctrl
            return self.dlcr if bank == 1 else 0
        self._check_sticky()
        return self.rdbuff  # RESEND and RDBUFF: the last AP read's data

    def write_dp(self, addr: int, value: int) -> None:
        addr &= 0xC
        self._answer()
        value &= 0xFFFF_FFFF
        if addr == DP_ABORT_IDR:
            for clear, bits in ((STKCMPCLR, STICKYCMP), (STKERRCLR, STICKYERR), (WDERRCLR, WDATAERR),
                                (ORUNERRCLR, STICKYORUN)):
                if value & clear:
                    self.ctrl &= ~bits
            return  # (DAPABORT: no transfer is ever in progress)
        self._check_sticky()
        if addr == DP_CTRL_STAT:
            bank = self.select & 0xF
            if bank == 0:
                ctrl = (self.ctrl & ~_CTRL_WRITABLE) | (value & _CTRL_WRITABLE)
                # power and reset requests are acknowledged at once
                ctrl &= ~(CDBGPWRUPACK | CSYSPWRUPACK | CDBGRSTACK)
                ctrl |= (CDBGPWRUPACK if ctrl & CDBGPWRUPREQ else 0) | (CSYSPWRUPACK if ctrl & CSYSPWRUPREQ else 0)
                ctrl |= CDBGRSTACK if ctrl & CDBGRSTREQ else 0
                self.ctrl = ctrl
            elif bank == 1:
                self.dlcr = 0x40 | (value & 0x300)
        elif addr == DP_SELECT_RESEND:
            self.select = value
        # (a write to RDBUFF is ignored)

    # -- AP ----------------------------------------------------------------------------------------
    def read_ap(self, addr: int) -> int:
        self._ap_access()
        try:
            value = self._ap_register(self.select >> 24, (self.select & 0xF0) | (addr & 0xC), None)
        except _TransferFault:
            self.ctrl &= ~READOK
            raise
        self.rdbuff = value
        self.ctrl |= READOK
        return value

    def write_ap(self, addr: int, value: int) -> None:
        self._ap_access()
        self._ap_register(self.select >> 24, (self.select & 0xF0) | (addr & 0xC), value & 0xFFFF_FFFF)

    def _ap_access(self) -> None:
        self._answer()
        self._check_sticky()
        if not self.ctrl & CDBGPWRUPACK:
            self.ctrl |= STICKYERR
            raise _TransferFault("AP access while the debug power domain is off (CDBGPWRUPREQ)")

    def _ap_register(self, apsel: int, reg: int, value: int | None) -> int:
        if apsel != 0:
            return 0  # no AP there: RAZ/WI
        write = value is not None
        if reg == AP_CSW:
            if write:
                size = value & CSW_SIZE
                value = (value & _CSW_WRITABLE & ~CSW_SIZE) | (size if size <= 2 else 2)
                if value & CSW_ADDRINC == 0x30:
                    value &= ~CSW_ADDRINC  # (reserved increment mode)
                self.csw = value | CSW_DEVICEEN
            return self.csw
        if reg == AP_TAR:
            if write:
                self.tar = value
            return self.tar
        if reg == AP_DRW:
            return self._drw(value)
        if 0x10 <= reg <= 0x1C:  # BD0-BD3: TAR[31:4] + the register's offset, no increment
            return self._lane((self.tar & ~0xF) | (reg & 0xC) | (self.tar & 3), 1 << (self.csw & CSW_SIZE), value)
        if write:
            return 0
        return {AP_CFG: 0, AP_BASE: ROM_TABLE_BASE | 3, AP_IDR: AHB_AP_IDR}.get(reg, 0)

    def _drw(self, value: int | None) -> int:
        size = 1 << (self.csw & CSW_SIZE)
        inc = (self.csw & CSW_ADDRINC) >> 4
        result = 0
        for _ in range(4 // size if inc == _INC_PACKED else 1):  # packed: items fill the word
            result |= self._lane(self.tar, size, value)
            if inc != _INC_OFF:
                mask = self.tar_wrap - 1  # only TAR's low bits increment
                self.tar = (self.tar & ~mask) | ((self.tar + size) & mask)
        return result

    def _lane(self, address: int, size: int, value: int | None) -> int:
        """One bus transfer of `size` bytes at `address` (aligned down), its data on the byte
        lanes address[1:0] selects; a bus error sets STICKYERR."""
        address &= ~(size - 1)
        shift, mask = 8 * (address & 3), (1 << 8 * size) - 1
        try:
            if value is None:
                return (self.bus.read(address, size) & mask) << shift
            self.bus.write(address, size, value >> shift & mask)
            return 0
        except BusFault as e:
            self.ctrl |= STICKYERR  # (TAR stays on the failing address)
            raise _TransferFault(str(e)) from None


# ================================================================================================
# Debug components on the Private Peripheral Bus
# ================================================================================================
def _identification(designer: int, part: int, revision: int, component_class: int) -> dict[int, int]:
    """CoreSight PIDR0-7/CIDR0-3 (offsets 0xFD0-0xFFC from the block) as bytes. `designer`
    as pyocd writes JEP106 codes: continuation << 8 | identity (ARM 0x43B, ST 0x020)."""
    pidr = part | (designer & 0x7F) << 12 | 1 << 19 | revision << 20 | (designer >> 8) << 32
    cidr = 0xB105_000D | component_class << 12
    regs = {0xFD0 + 4 * i: pidr >> 32 + 8 * i & 0xFF for i in range(4)}  # PIDR4-7
    regs |= {0xFE0 + 4 * i: pidr >> 8 * i & 0xFF for i in range(4)}  # PIDR0-3
    regs |= {0xFF0 + 4 * i: cidr >> 8 * i & 0xFF for i in range(4)}  # CIDR0-3
    return regs


_ARM, _ST = 0x43B, 0x020
_GENERIC, _ROM = 0xE, 0x1
_SCS_ID = _identification(_ARM, 0x00C, 0, _GENERIC)  # Cortex-M4 r0p1 (TRM), as pyocd's table
_DWT_ID = _identification(_ARM, 0x002, 3, _GENERIC)
_FPB_ID = _identification(_ARM, 0x003, 2, _GENERIC)
_ITM_ID = _identification(_ARM, 0x001, 3, _GENERIC)
_ROM_ID = _identification(_ST, 0x415, 0, _ROM)  # the STM32L47x ROM table: ST, the device's ID


def _word(regs: dict[int, int], offset: int, size: int) -> int:
    return part(regs.get(offset & ~3, 0), offset, size, 4)


class _DebugPeripheral(Peripheral):
    """A debug-domain block: a system reset leaves it as it is (ARMv7-M: reset by power-on)."""

    def reset(self) -> None:
        pass


class _ComponentId(_DebugPeripheral):
    """The identification registers of a component whose other registers emu models."""

    name = "coresight-id"
    size = 0x30

    def __init__(self, base: int, ident: dict[int, int]):
        self.base, self.ident = base, {k - 0xFD0: v for k, v in ident.items()}

    def read(self, offset: int, size: int) -> int:
        return _word(self.ident, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        pass  # read-only


class _RomTable(_DebugPeripheral):
    """The Cortex-M4 ROM table at 0xE00FF000: SCS, DWT, FPB, ITM; TPIU and ETM not present."""

    name = "rom-table"
    base, size = ROM_TABLE_BASE, 0x1000
    ENTRIES = (0xFFF0_F003, 0xFFF0_2003, 0xFFF0_3003, 0xFFF0_1003, 0xFFF4_1002, 0xFFF4_2002, 0)

    def __init__(self):
        self.regs = {4 * i: e for i, e in enumerate(self.ENTRIES)}
        self.regs[0xFCC] = 1  # MEMTYPE.SYSMEM: system memory is on this bus
        for offset, byte in _ROM_ID.items():
            self.regs[offset] = byte

    def read(self, offset: int, size: int) -> int:
        return _word(self.regs, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        pass


class _Itm(_DebugPeripheral):
    """The ITM at 0xE0000000: registers kept as written (no trace output), its identification."""

    name = "itm"
    base, size = 0xE000_0000, 0x1000

    def __init__(self):
        self.regs = dict(_ITM_ID)

    def read(self, offset: int, size: int) -> int:
        if offset < 0x80:
            return 1  # stimulus port ready
        return _word(self.regs, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if 0x80 <= offset < 0xFD0:
            self.regs[offset & ~3] = value if size == 4 else value << 8 * (offset & 3)


class _Fpb(_DebugPeripheral):
    """FPB v1 at 0xE0002000: FP_CTRL (NUM_CODE 6, NUM_LIT 2, KEY, ENABLE), FP_REMAP, FP_COMP0-7.
    Enabled code comparators (REPLACE 01/10/11) are breakpoints on their halfword(s)."""

    name = "fpb"
    base, size = 0xE000_2000, 0x1000
    NUM_CODE, NUM_LIT = 6, 2

    def __init__(self, changed: Callable[[frozenset[int]], None]):
        self.changed = changed
        self.enabled = False
        self.remap = 0
        self.comps = [0] * (self.NUM_CODE + self.NUM_LIT)

    def read(self, offset: int, size: int) -> int:
        if offset >= 0xFD0:
            return _word(_FPB_ID, offset, size)
        word = offset & ~3
        if word == 0:
            value = (self.NUM_CODE & 0xF) << 4 | self.NUM_LIT << 8 | (self.NUM_CODE >> 4) << 12 | self.enabled
        elif word == 4:
            value = self.remap
        elif 8 <= word < 8 + 4 * len(self.comps):
            value = self.comps[(word - 8) // 4]
        else:
            value = 0
        return part(value, offset, size, 4)

    def write(self, offset: int, size: int, value: int) -> None:
        word = offset & ~3
        if size != 4:
            return  # (word registers)
        if word == 0:
            if value & 2:  # KEY: the write takes effect only with it
                self.enabled = bool(value & 1)
        elif word == 4:
            self.remap = value & 0x1FFF_FFE0
        elif 8 <= word < 8 + 4 * len(self.comps):
            self.comps[(word - 8) // 4] = value & 0xDFFF_FFFD
        else:
            return
        self.changed(self.breakpoints())

    def breakpoints(self) -> frozenset[int]:
        if not self.enabled:
            return frozenset()
        found = set()
        for comp in self.comps[: self.NUM_CODE]:
            replace = comp >> 30
            if comp & 1 and replace:
                address = comp & 0x1FFF_FFFC
                if replace & 1:
                    found.add(address)
                if replace & 2:
                    found.add(address + 2)
        return frozenset(found)


class _Dbgmcu(_DebugPeripheral):
    """DBGMCU at 0xE0042000 (RM0351 48.16): IDCODE (STM32L47x/L48x, DEV_ID 0x415), CR and the
    freeze registers kept as written; reset by power-on only."""

    name = "dbgmcu"
    base, size = 0xE004_2000, 0x400
    IDCODE = 0x1007_6415

    def __init__(self):
        self.regs = {0: self.IDCODE}

    def read(self, offset: int, size: int) -> int:
        return _word(self.regs, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if 4 <= offset < 0x14 and size == 4:
            self.regs[offset] = value


class _CoreDebug(_DebugPeripheral):
    """DHCSR, DCRSR, DCRDR at 0xE000EDF0 (DEMCR, at 0xEDFC, is emu's `DebugControl`)."""

    name = "core-debug"
    base, size = 0xE000_EDF0, 0xC

    def __init__(self, target: SimulatedTarget):
        self.target = target

    def read(self, offset: int, size: int) -> int:
        word = offset & ~3
        value = self.target.read_dhcsr() if word == 0 else self.target.dcrdr if word == 8 else 0
        return part(value, offset, size, 4)

    def write(self, offset: int, size: int, value: int) -> None:
        if size != 4:
            return
        if offset == 0:
            self.target.write_dhcsr(value, self.target.debugger_access)
        elif offset == 4:
            self.target.write_dcrsr(value)
        elif offset == 8:
            self.target.dcrdr = value


class _Aircr(_DebugPeripheral):
    """AIRCR at 0xE000ED0C: reads and PRIGROUP through emu's SCB model; with VECTKEY,
    SYSRESETREQ resets the system, VECTRESET the core."""

    name = "aircr"
    base, size = 0xE000_ED0C, 4

    def __init__(self, target: SimulatedTarget, scb: Peripheral):
        self.target, self.scb = target, scb

    def read(self, offset: int, size: int) -> int:
        return self.scb.read(0x0C + offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if size != 4 or value >> 16 != VECTKEY:
            return  # without the key the write is ignored
        self.scb.write(0x0C, 4, value)
        if value & SYSRESETREQ:
            raise _ResetRequest(system=True)
        if value & VECTRESET:
            raise _ResetRequest(system=False)


class _Dfsr(_DebugPeripheral):
    """DFSR at 0xE000ED30: why the core halted; write one to clear."""

    name = "dfsr"
    base, size = 0xE000_ED30, 4

    def __init__(self, target: SimulatedTarget):
        self.target = target

    def read(self, offset: int, size: int) -> int:
        return part(self.target.dfsr, offset, size, 4)

    def write(self, offset: int, size: int, value: int) -> None:
        self.target.dfsr &= ~(value << 8 * offset) & 0x1F

"""`hil.flash.PyocdFlasher` run for real: pyocd (its STM32L475xG target, its flash algorithm)
drives `hil.sim.debug_probe`, a simulated SWD probe served over pyocd's remote-probe protocol
with an STM32L4-class Cortex-M4 behind it, whose CPU is the project's emulator.

Expected values come from the ELFs (pyelftools through `emu.elf`) and from the emulator
running them; the debug port, the access port and the flash interface are also driven by
hand, one JSON request at a time, and checked against what ADIv5 and RM0351 say.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from pathlib import Path

import pytest

pytest.importorskip("pyocd", reason="the pyocd flasher needs pyocd (pip install -e '.[hil]')")

import emu  # noqa: E402
from elftools.elf.elffile import ELFFile  # noqa: E402
from emu.boards import get_board  # noqa: E402
from emu.elf import ElfImage, Segment  # noqa: E402
from hil.errors import FlashError  # noqa: E402
from hil.flash import PyocdFlasher  # noqa: E402
from hil.sim.debug_probe import (AHB_AP_IDR, DPIDR, FLASH_BASE, FLASH_KEYS, FLASH_OPTKEYS,  # noqa: E402
                                 FLASH_SIZE, BusFault, FlashInterface, FlashMemory,
                                 SimulatedDebugProbe)

TARGET = "stm32l475xg"  # pyocd's builtin STM32L475 with 1 MiB of flash
SECTOR = 0x800
BOARD = get_board("cortex-m4-mram")
MRAM = next(r for r in BOARD.regions if r.name == "mram")
BUILD = Path(os.environ.get("EMU_TEST_BUILD") or Path(__file__).resolve().parents[2] / "build").resolve()


@pytest.fixture
def elf():
    """Path of a cortex-m4-mram firmware ELF (the build is not made here)."""

    def path(name: str) -> Path:
        p = BUILD / "cortex-m4-mram" / f"{name}.elf"
        if not p.is_file():
            pytest.skip(f"{p} is not built (make firmware)")
        return p

    return path


def flash_image(image: ElfImage, old: bytes | None = None, sectors: set[int] | None = None) -> bytes:
    """The whole flash after programming `image`: its flash segments over erased sectors
    (`sectors`, default: those the segments touch), `old` (default erased) elsewhere."""
    data = bytearray(old if old is not None else b"\xff" * FLASH_SIZE)
    for s in flash_sectors(image) if sectors is None else sectors:
        data[s * SECTOR : (s + 1) * SECTOR] = b"\xff" * SECTOR
    for seg in image.segments:
        if FLASH_BASE <= seg.address < FLASH_BASE + FLASH_SIZE:
            data[seg.address - FLASH_BASE : seg.address - FLASH_BASE + len(seg.data)] = seg.data
    return bytes(data)


def flash_sectors(image: ElfImage) -> set[int]:
    """Numbers of the 2 KiB sectors that the image's flash segments touch."""
    sectors = set()
    for seg in image.segments:
        if FLASH_BASE <= seg.address < FLASH_BASE + FLASH_SIZE:
            first, last = seg.address - FLASH_BASE, seg.address - FLASH_BASE + len(seg.data) - 1
            sectors.update(range(first // SECTOR, last // SECTOR + 1))
    return sectors


def booted(target, image: ElfImage) -> emu.Machine:
    """An emulator machine started from what the simulated target booted from (its whole
    flash and MRAM at the last reset), with the ELF's symbols."""
    nv = (Segment(FLASH_BASE, target.memory_at_reset(FLASH_BASE, FLASH_SIZE), True),
          Segment(MRAM.start, target.memory_at_reset(MRAM.start, MRAM.size), False))
    return emu.Machine(ElfImage(image.path, image.machine, image.entry, nv, image.symbols), BOARD)


def moved_segment(src: Path, address: int, new_address: int, dst: Path) -> Path:
    """A copy of ELF `src` whose PT_LOAD at `address` now loads at `new_address`."""
    data = bytearray(src.read_bytes())
    with src.open("rb") as f:
        elf = ELFFile(f)
        for i, seg in enumerate(elf.iter_segments()):
            if seg["p_type"] == "PT_LOAD" and seg["p_paddr"] == address:
                struct.pack_into("<II", data, elf["e_phoff"] + i * elf["e_phentsize"] + 8, new_address, new_address)
    dst.write_bytes(data)
    return dst


# -- flashing through pyocd ---------------------------------------------------------------------
def test_flashes_every_segment_and_the_flashed_board_runs_like_the_emulator(elf):
    path = elf("checksum")
    image = ElfImage.read(path)
    assert {seg.address for seg in image.segments} == {FLASH_BASE, MRAM.start}  # flash and MRAM
    reference = emu.Machine.from_elf(path).run()
    with SimulatedDebugProbe() as sim:
        target = sim.target
        power_on_mram = target.read_memory(MRAM.start, MRAM.size)
        out = PyocdFlasher(TARGET, probe=sim.unique_id).flash(path)

        # what the firmware booted from after the flasher's last reset
        for seg in image.segments:
            assert target.memory_at_reset(seg.address, len(seg.data)) == seg.data
            assert f"{seg.address:#010x}-{seg.address + len(seg.data) - 1:#010x}" in out
        # flash: the segments, the rest of each sector erased, nothing else written
        assert target.memory_at_reset(FLASH_BASE, FLASH_SIZE) == flash_image(image)
        assert sorted(set(target.flash.erased)) == [FLASH_BASE + s * SECTOR for s in sorted(flash_sectors(image))]
        # MRAM: the segment over what the part held
        mram = bytearray(power_on_mram)
        for seg in image.segments:
            if seg.address == MRAM.start:
                mram[: len(seg.data)] = seg.data
        assert target.memory_at_reset(MRAM.start, MRAM.size) == bytes(mram)

        # the emulator, started from that image, runs as it runs the ELF
        result = booted(target, image).run()
        assert reference.outcome == "completed" and reference.waiting_for_input
        assert (result.outcome, result.uart, result.instructions, result.stop_pc) == (
            reference.outcome, reference.uart, reference.instructions, reference.stop_pc)
        # and the probe's own core, released by the flasher's reset, sends the same bytes
        target.run(2 * reference.instructions)
        assert target.state == "running" and target.fault is None
        assert target.uart == reference.uart

        # the same image again: pyocd's smart flash (its CRC32 analyzer run on the core over
        # the flash, then reads) finds every sector identical and erases nothing; MRAM is
        # written anew
        erased, programmed = len(target.flash.erased), target.flash.programmed
        PyocdFlasher(TARGET, probe=sim.unique_id).flash(path)
        assert (len(target.flash.erased), target.flash.programmed) == (erased, programmed)
        for seg in image.segments:
            assert target.memory_at_reset(seg.address, len(seg.data)) == seg.data


def test_a_second_image_replaces_the_first_in_the_sectors_pyocd_erases(elf):
    first, second = ElfImage.read(elf("checksum")), ElfImage.read(elf("demo"))
    reference = emu.Machine.from_elf(second.path).run()
    with SimulatedDebugProbe() as sim:
        target = sim.target
        PyocdFlasher(TARGET, probe=sim.unique_id).flash(first.path)
        target.run(2 * emu.Machine.from_elf(first.path).run().instructions)  # it ran to its end
        old_flash = target.read_memory(FLASH_BASE, FLASH_SIZE)
        old_mram = target.read_memory(MRAM.start, MRAM.size)  # (its non-volatile state moved on)
        erased_before = len(target.flash.erased)
        PyocdFlasher(TARGET, probe=sim.unique_id).flash(second.path)

        # pyocd erases (sector erase, keep_unwritten off) the sectors the new image programs:
        # nothing of the old image is left there; the sectors it does not touch are not erased
        ours = flash_sectors(second)
        assert flash_sectors(first) - ours  # (the old image reaches sectors the new one does not)
        assert sorted(target.flash.erased[erased_before:]) == [FLASH_BASE + s * SECTOR for s in sorted(ours)]
        assert target.memory_at_reset(FLASH_BASE, FLASH_SIZE) == flash_image(second, old_flash, ours)
        # MRAM is written, not erased: the new segment over what the old firmware left
        mram = bytearray(old_mram)
        seg = next(s for s in second.segments if s.address == MRAM.start)
        mram[: len(seg.data)] = seg.data
        assert target.memory_at_reset(MRAM.start, MRAM.size) == bytes(mram)

        result = booted(target, second).run()
        assert (result.outcome, result.uart) == (reference.outcome, reference.uart)
        target.run(2 * reference.instructions)
        assert target.uart == reference.uart


def test_a_probe_server_that_is_not_there_is_named(elf):
    sim = SimulatedDebugProbe()
    gone = sim.unique_id
    sim.close()
    with pytest.raises(FlashError, match=rf"pyocd: cannot connect to probe {gone}: .*(refused|Errno)"):
        PyocdFlasher(TARGET, probe=gone).flash(elf("checksum"))


def test_a_segment_in_no_writable_memory_is_refused_before_anything_is_erased(elf, tmp_path):
    path = moved_segment(elf("checksum"), MRAM.start, 0x3000_0000, tmp_path / "nowhere.elf")
    size = next(len(s.data) for s in ElfImage.read(path).segments if s.address == 0x3000_0000)
    with SimulatedDebugProbe() as sim:
        target = sim.target
        programmed = bytes(range(256)) * (2 * SECTOR // 256)  # a part that holds an older image
        target.write_memory(FLASH_BASE, programmed)
        with pytest.raises(FlashError, match=rf"segment 0x30000000-{0x3000_0000 + size - 1:#010x} \({size} bytes\) "
                                             rf"is neither in {TARGET}'s flash nor in memory the debugger can "
                                             rf"write .*nothing was erased. Link it into flash or RAM"):
            PyocdFlasher(TARGET, probe=sim.unique_id).flash(path)
        assert target.read_memory(FLASH_BASE, len(programmed)) == programmed
        assert target.flash.erased == [] and target.flash.programmed == 0


def test_a_write_that_does_not_take_fails_the_read_back(elf, tmp_path):
    # the ROM table answers writes without error and keeps its contents
    path = moved_segment(elf("checksum"), MRAM.start, 0xE00F_F000, tmp_path / "rom.elf")
    with SimulatedDebugProbe() as sim:
        with pytest.raises(FlashError, match=r"verification failed at 0xe00ff0.. \(read 0x.., expected 0x..\) "
                                             r"in segment 0xe00ff000-"):
            PyocdFlasher(TARGET, probe=sim.unique_id).flash(path)


def test_a_segment_partly_in_flash_is_refused(elf, tmp_path):
    path = moved_segment(elf("checksum"), FLASH_BASE, FLASH_BASE + FLASH_SIZE - 0x400, tmp_path / "edge.elf")
    with SimulatedDebugProbe() as sim:
        with pytest.raises(FlashError, match=r"segment 0x080ffc00-.* lies partly in stm32l475xg's flash"):
            PyocdFlasher(TARGET, probe=sim.unique_id).flash(path)
        assert sim.target.flash.erased == []


# -- the debug port and access port, request by request ------------------------------------------
class RawProbe:
    """pyocd's remote-probe protocol by hand: one JSON object per line each way."""

    CSW_WORD, CSW_HALF, CSW_BYTE = 0x2, 0x1, 0x0
    SINGLE, PACKED = 0x10, 0x20

    def __init__(self, sim: SimulatedDebugProbe):
        self.sock = socket.create_connection((sim.host, sim.port), timeout=10)
        self.lines = self.sock.makefile("rb")
        self.next_id = 0

    def request(self, name: str, *args) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "request": name}
        if args:
            message["arguments"] = list(args)
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        reply = json.loads(self.lines.readline())
        assert reply["id"] == self.next_id
        return reply

    def ok(self, name: str, *args):
        reply = self.request(name, *args)
        assert reply["status"] == 0, reply
        return reply.get("result")

    def status(self, name: str, *args) -> int:
        return self.request(name, *args)["status"]

    def open(self) -> None:
        self.ok("hello", 1)
        self.ok("open")
        self.ok("connect", "SWD")

    def select_swd(self) -> None:
        self.ok("swj_sequence", 51, (1 << 51) - 1)  # line reset
        self.ok("swj_sequence", 16, 0xE79E)  # JTAG-to-SWD
        self.ok("swj_sequence", 51, (1 << 51) - 1)
        self.ok("swj_sequence", 8, 0)

    def attach(self) -> None:
        self.open()
        self.select_swd()
        assert self.ok("read_dp", 0x0) == DPIDR
        self.ok("write_dp", 0x8, 0)  # SELECT: AP 0, bank 0
        self.ok("write_dp", 0x4, 0x5000_0000)  # CSYSPWRUPREQ | CDBGPWRUPREQ

    def csw(self, size: int, inc: int = SINGLE) -> None:
        self.ok("write_ap", 0x00, size | inc)

    def write32(self, address: int, value: int) -> dict:
        self.csw(self.CSW_WORD)
        self.ok("write_ap", 0x04, address)
        return self.request("write_ap", 0x0C, value)

    def read32(self, address: int) -> int:
        self.csw(self.CSW_WORD)
        self.ok("write_ap", 0x04, address)
        return self.ok("read_ap", 0x0C)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw():
    with SimulatedDebugProbe() as sim:
        probe = RawProbe(sim)
        yield sim, probe
        probe.close()


def test_dp_selection_power_and_identification(raw):
    sim, p = raw
    assert p.request("read_dp", 0)["status"] == 3  # not open
    p.open()
    assert p.ok("readprop", "supported_wire_protocols") == ["DEFAULT", "SWD"]
    assert p.ok("readprop", "capabilities") == ["SWJ_SEQUENCE"]
    assert p.status("read_dp", 0x0) == 10  # the SWJ-DP starts in JTAG mode: no acknowledge
    p.select_swd()
    assert p.status("write_dp", 0x8, 0) == 10  # after a line reset only a DPIDR read is answered
    assert p.ok("read_dp", 0x0) == DPIDR
    p.ok("write_dp", 0x8, 0)
    # AP accesses need the debug power domain: a fault, then STICKYERR until ABORT clears it
    assert p.status("read_ap", 0xFC) == 12
    assert p.ok("read_dp", 0x4) & 0x20
    assert p.status("read_dp", 0xC) == 12  # RDBUFF faults while STICKYERR is set
    p.ok("write_dp", 0x0, 0x4)  # ABORT.STKERRCLR
    p.ok("write_dp", 0x4, 0x5000_0000)
    assert p.ok("read_dp", 0x4) & 0xF000_0000 == 0xF000_0000  # both requests acknowledged
    p.ok("write_dp", 0x8, 0xF0)  # APBANKSEL 0xF
    assert p.ok("read_ap", 0xFC) == AHB_AP_IDR
    assert p.ok("read_dp", 0xC) == AHB_AP_IDR  # RDBUFF: the last AP read's data
    assert p.ok("read_ap", 0xF8) == 0xE00F_F003  # BASE: ROM table, present, ADIv5 format
    assert p.ok("read_ap", 0xF4) == 0  # CFG
    p.ok("write_dp", 0x8, 0x0100_00F0)  # AP 1: nothing there
    assert p.ok("read_ap", 0xFC) == 0
    p.ok("write_dp", 0x8, 0)
    p.csw(0x3)  # 64-bit transfers are not supported: CSW.Size reads back as word
    assert p.ok("read_ap", 0x00) & 0xFF == 0x40 | 0x10 | 0x2  # DeviceEn, single increment, word
    assert [p.read32(0xE00F_FFF0 + 4 * i) for i in range(4)] == [0x0D, 0x10, 0x05, 0xB1]  # ROM table CIDR


def test_mem_ap_auto_increment_lanes_wrap_and_sticky_errors(raw):
    sim, p = raw
    p.attach()
    words = [0x1111_1111, 0x2222_2222, 0x3333_3333]
    p.csw(p.CSW_WORD)
    p.ok("write_ap", 0x04, 0x2000_0100)
    p.ok("write_ap_multiple", 0x0C, words)
    assert p.ok("read_ap", 0x04) == 0x2000_010C
    assert sim.target.read_memory(0x2000_0100, 12) == b"".join(w.to_bytes(4, "little") for w in words)
    p.ok("write_ap", 0x04, 0x2000_0100)
    assert p.ok("read_ap_multiple", 0x0C, 3) == words
    p.ok("write_dp", 0x8, 0x10)  # APBANKSEL 1: BD0-BD3
    assert p.ok("read_ap", 0x14) == words[1]  # BD1: TAR[31:4] + 4, no increment
    assert p.ok("read_ap", 0x18) == words[2]  # BD2
    p.ok("write_dp", 0x8, 0)
    assert p.ok("read_ap", 0x04) == 0x2000_010C
    # byte lanes follow TAR[1:0]; packed halfwords fill one DRW word
    p.csw(p.CSW_BYTE)
    p.ok("write_ap", 0x04, 0x2000_0201)
    p.ok("write_ap", 0x0C, 0x0000_AB00)
    assert sim.target.read_memory(0x2000_0201, 1) == b"\xab" and p.ok("read_ap", 0x04) == 0x2000_0202
    p.csw(p.CSW_HALF, p.PACKED)
    p.ok("write_ap", 0x04, 0x2000_0300)
    p.ok("write_ap", 0x0C, 0x2222_1111)
    assert sim.target.read_memory(0x2000_0300, 4) == bytes.fromhex("11112222")
    assert p.ok("read_ap", 0x04) == 0x2000_0304
    # the Cortex-M4 AHB-AP increments TAR's low 12 bits only: it wraps at 4 KiB
    p.csw(p.CSW_WORD)
    p.ok("write_ap", 0x04, 0x2000_0FFC)
    p.ok("write_ap_multiple", 0x0C, [0xAAAA_AAAA, 0xBBBB_BBBB])
    assert p.ok("read_ap", 0x04) == 0x2000_0004
    assert sim.target.read_memory(0x2000_0000, 4) == b"\xbb" * 4
    assert sim.target.read_memory(0x2000_1000, 4) != b"\xbb" * 4
    # a bus error: FAULT, STICKYERR, TAR left on the failing address, every AP access faults
    p.ok("write_ap", 0x04, 0x3000_0000)
    assert p.status("read_ap", 0x0C) == 12
    assert p.ok("read_dp", 0x4) & 0x20
    assert p.status("read_ap", 0x04) == 12
    p.ok("write_dp", 0x0, 0x4)  # ABORT.STKERRCLR
    assert p.ok("read_ap", 0x04) == 0x3000_0000
    assert not p.ok("read_dp", 0x4) & 0x20


def test_tar_wrap_at_the_adiv5_minimum(elf):
    with SimulatedDebugProbe(tar_wrap=0x400) as sim:
        p = RawProbe(sim)
        p.attach()
        p.csw(p.CSW_WORD)
        p.ok("write_ap", 0x04, 0x2000_03FC)
        p.ok("write_ap_multiple", 0x0C, [0xAAAA_AAAA, 0xBBBB_BBBB])
        assert p.ok("read_ap", 0x04) == 0x2000_0004
        assert sim.target.read_memory(0x2000_0000, 4) == b"\xbb" * 4
        p.close()


# -- the flash interface (RM0351) and core debug, by hand -------------------------------------------
FLASH_R = 0x4002_2000
KEYR, OPTKEYR, SR, CR = FLASH_R + 0x08, FLASH_R + 0x0C, FLASH_R + 0x10, FLASH_R + 0x14
PG, PER, STRT, LOCK, OPTLOCK = 1 << 0, 1 << 1, 1 << 16, 1 << 31, 1 << 30
PROGERR, PGAERR, SIZERR, PGSERR = 1 << 3, 1 << 5, 1 << 6, 1 << 7
AIRCR, DFSR, DHCSR, DCRSR, DCRDR = 0xE000_ED0C, 0xE000_ED30, 0xE000_EDF0, 0xE000_EDF4, 0xE000_EDF8
S_HALT, S_LOCKUP, S_RESET_ST = 1 << 17, 1 << 19, 1 << 25


def test_cpu_stores_to_flash_go_through_the_flash_interface(raw):
    """The core (halted, registers set through DCRSR/DCRDR) runs from SRAM: a store into flash
    without PG, a load of the same word, BKPT."""
    sim, p = raw
    p.attach()
    code = bytes.fromhex("0160" "0268" "00be")  # str r1, [r0]; ldr r2, [r0]; bkpt
    sim.target.write_memory(0x2000_1000, code)
    assert p.read32(DHCSR) & S_LOCKUP  # a blank part: the core locked up at its first fetch
    p.write32(DHCSR, 0xA05F_0003)  # C_DEBUGEN | C_HALT
    assert p.read32(DHCSR) & S_HALT and not p.read32(DHCSR) & S_LOCKUP
    for select, value in ((0, FLASH_BASE), (1, 0x1234_5678), (2, 0), (15, 0x2000_1000)):
        p.write32(DCRDR, value)
        p.write32(DCRSR, select | 1 << 16)
    p.write32(DFSR, 0x1F)
    p.write32(DHCSR, 0xA05F_0001)  # resume
    assert p.read32(DHCSR) & S_HALT  # (the core ran before this request was answered)
    assert p.read32(DFSR) == 0x2  # BKPT
    for select, expected in ((15, 0x2000_1004), (2, 0xFFFF_FFFF)):  # the load saw flash unchanged
        p.write32(DCRSR, select)
        assert p.read32(DCRDR) == expected
    assert p.read32(SR) == PGSERR and sim.target.read_memory(FLASH_BASE, 4) == b"\xff" * 4
    # nRESET: held, the core stays in reset; released, it resets (and locks up on blank flash)
    p.ok("assert_reset", True)
    assert p.ok("is_reset_asserted") and sim.target.state == "reset"
    assert p.read32(DHCSR) & S_RESET_ST and p.read32(DHCSR) & S_RESET_ST
    p.ok("assert_reset", False)
    assert p.read32(DHCSR) & (S_RESET_ST | S_LOCKUP) == S_RESET_ST | S_LOCKUP
    assert p.read32(SR) == 0  # the flash interface was reset with the system


def test_flash_interface_through_the_debug_port(raw):
    sim, p = raw
    p.attach()
    memory = sim.target.read_memory
    assert p.read32(CR) == LOCK | OPTLOCK
    for key in FLASH_KEYS:
        p.write32(KEYR, key)
    assert p.read32(CR) == OPTLOCK
    # a double word, as two word writes with PG set
    p.write32(CR, PG)
    p.write32(FLASH_BASE, 0x4433_2211)
    assert memory(FLASH_BASE, 8) == b"\xff" * 8  # (programming starts with the second word)
    p.write32(FLASH_BASE + 4, 0x8877_6655)
    assert memory(FLASH_BASE, 8) == bytes.fromhex("1122334455667788") and p.read32(SR) == 0
    # not erased: PROGERR, unchanged; a new operation with the flag still set: PGSERR
    p.write32(FLASH_BASE, 0x1)
    p.write32(FLASH_BASE + 4, 0x0)
    assert p.read32(SR) == PROGERR and memory(FLASH_BASE, 8) == bytes.fromhex("1122334455667788")
    p.write32(FLASH_BASE + 8, 0x1)
    assert p.read32(SR) == PROGERR | PGSERR
    p.write32(SR, PROGERR | PGSERR)  # write one to clear
    # zeros may be written over anything (RM0351's exception to PROGERR)
    p.write32(FLASH_BASE, 0)
    p.write32(FLASH_BASE + 4, 0)
    assert p.read32(SR) == 0 and memory(FLASH_BASE, 8) == bytes(8)
    # a byte write is SIZERR, a first word not on a double word PGAERR
    p.csw(p.CSW_BYTE)
    p.ok("write_ap", 0x04, FLASH_BASE + 0x10)
    p.ok("write_ap", 0x0C, 0x5A)
    assert p.read32(SR) == SIZERR
    p.write32(SR, SIZERR)
    p.write32(FLASH_BASE + 0x14, 0x1234_5678)
    assert p.read32(SR) == PGAERR and memory(FLASH_BASE + 0x10, 8) == b"\xff" * 8
    p.write32(SR, PGAERR)
    # page erase: PER, PNB 0, STRT
    p.write32(CR, PER)
    p.write32(CR, PER | STRT)
    assert memory(FLASH_BASE, SECTOR) == b"\xff" * SECTOR and p.read32(CR) == PER | OPTLOCK
    # locked: FLASH_CR ignores writes, a flash write is PGSERR and changes nothing
    p.write32(CR, LOCK)
    p.write32(CR, PG)
    assert p.read32(CR) == LOCK | OPTLOCK
    p.write32(FLASH_BASE, 0)
    p.write32(FLASH_BASE + 4, 0)
    assert p.read32(SR) == PGSERR and memory(FLASH_BASE, 8) == b"\xff" * 8
    p.write32(SR, PGSERR)
    # option keys need FLASH_CR unlocked: a bus error
    assert p.write32(OPTKEYR, FLASH_OPTKEYS[0])["status"] == 12
    p.ok("write_dp", 0x0, 0x4)
    # a wrong key: a bus error, and FLASH_CR stays locked, even for the right keys, until reset
    assert p.write32(KEYR, 0x1234_5678)["status"] == 12
    p.ok("write_dp", 0x0, 0x4)
    for key in FLASH_KEYS:
        assert p.write32(KEYR, key)["status"] == 12
        p.ok("write_dp", 0x0, 0x4)
    assert p.read32(CR) == LOCK | OPTLOCK
    assert p.write32(AIRCR, 0x05FA_0004)["status"] == 0  # SYSRESETREQ
    for key in FLASH_KEYS:
        assert p.write32(KEYR, key)["status"] == 0
    assert p.read32(CR) == OPTLOCK


def test_flash_interface_model_protection_and_flags():
    # WRP area A of bank 1: pages 1..2; EOPIE and ERRIE set EOP and OPERR
    wrp = 0xFF00_FF00 | 2 << 16 | 1
    fi = FlashInterface(FlashMemory(), option_bytes={"WRP1AR": wrp})
    reg = lambda name: getattr(FlashInterface, name)  # noqa: E731
    with pytest.raises(BusFault):
        fi.write(reg("OPTKEYR"), 4, FLASH_OPTKEYS[0])  # option keys while FLASH_CR is locked
    for key in FLASH_KEYS:
        fi.write(reg("KEYR"), 4, key)
    fi.write(reg("CR"), 4, PG | 1 << 24 | 1 << 25)
    fi.memory_write(FLASH_BASE + SECTOR, 4, 0)
    fi.memory_write(FLASH_BASE + SECTOR + 4, 4, 0)
    assert fi.read(reg("SR"), 4) == 1 << 4 | 1 << 1  # WRPERR | OPERR
    fi.write(reg("SR"), 4, 0xFFFF_FFFF)
    fi.memory_write(FLASH_BASE + 3 * SECTOR, 4, 0x1)
    fi.memory_write(FLASH_BASE + 3 * SECTOR + 4, 4, 0x2)
    assert fi.read(reg("SR"), 4) == 1  # EOP
    assert fi.memory.read(FLASH_BASE + 3 * SECTOR, 8) == bytes.fromhex("0100000002000000")
    fi.write(reg("SR"), 4, 1)
    # a bank erase that covers a protected page fails as a whole; bank 2 erases
    fi.write(reg("CR"), 4, 1 << 2 | 1 << 24 | 1 << 25)
    fi.write(reg("CR"), 4, 1 << 2 | STRT | 1 << 24 | 1 << 25)
    assert fi.read(reg("SR"), 4) == 1 << 4 | 1 << 1
    assert fi.memory.read(FLASH_BASE + 3 * SECTOR, 2) == b"\x01\x00"
    fi.write(reg("SR"), 4, 0xFFFF_FFFF)
    fi.memory.write(FLASH_BASE + FLASH_SIZE // 2 + 5 * SECTOR, b"\x00" * 16)
    fi.write(reg("CR"), 4, 1 << 15 | STRT)  # MER2
    assert fi.read(reg("SR"), 4) == 0
    assert fi.memory.read(FLASH_BASE + FLASH_SIZE // 2, FLASH_SIZE // 2) == b"\xff" * (FLASH_SIZE // 2)
    assert fi.erased[-1] == FLASH_BASE + FLASH_SIZE - SECTOR
    # a page of bank 2 through PNB and BKER
    fi.memory.write(FLASH_BASE + FLASH_SIZE // 2 + 7 * SECTOR, b"\x00" * 8)
    fi.write(reg("CR"), 4, PER | 7 << 3 | 1 << 11 | STRT)
    assert fi.memory.read(FLASH_BASE + FLASH_SIZE // 2 + 7 * SECTOR, 8) == b"\xff" * 8
    # a system reset locks FLASH_CR again
    fi.reset()
    assert fi.read(reg("CR"), 4) == LOCK | OPTLOCK


# -- run control as pyocd uses it -----------------------------------------------------------------
def test_pyocd_halts_steps_and_breaks_on_the_simulated_core(elf):
    from pyocd.core.helpers import ConnectHelper
    from pyocd.core.target import Target

    image = ElfImage.read(elf("checksum"))
    main = image.symbol("main").address & ~1
    with SimulatedDebugProbe() as sim:
        for seg in image.segments:  # a part programmed beforehand
            sim.target.write_memory(seg.address, seg.data)
        session = ConnectHelper.session_with_chosen_probe(unique_id=sim.unique_id, target_override=TARGET,
                                                          options={"resume_on_disconnect": False})
        with session:
            core = session.target.selected_core
            assert (core.name, core.fpb.nb_code, core.dwt.watchpoint_count) == ("Cortex-M4", 6, 4)
            core.reset_and_halt()  # DEMCR.VC_CORERESET: halted before the first instruction
            vectors = image.segments[0].data
            assert core.read_core_register("pc") == int.from_bytes(vectors[4:8], "little") & ~1
            assert core.read_core_register("msp") == int.from_bytes(vectors[:4], "little")
            assert core.read32(0xE000_ED30) & 0x8  # DFSR.VCATCH
            core.write32(0xE000_ED30, 0x1F)
            assert core.set_breakpoint(main, Target.BreakpointType.HW)  # FPB comparator
            core.resume()
            for _ in range(100):
                if core.get_state() == Target.State.HALTED:
                    break
            assert core.read_core_register("pc") == main and core.read32(0xE000_ED30) & 0x2  # BKPT
            core.remove_breakpoint(main)
            core.write_core_register("r0", 0x1234_5678)
            assert core.read_core_register("r0") == 0x1234_5678
            before = sim.target.instructions
            core.step()
            assert sim.target.instructions == before + 1 and core.read_core_register("pc") != main
            core.resume()
            assert core.get_state() == Target.State.RUNNING
            core.halt()
            assert core.get_state() == Target.State.HALTED

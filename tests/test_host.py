"""The host client against the real firmware runtime, through the emulated UART: every
command, corrupted frames, retried requests and jobs across power failures."""

from __future__ import annotations

import random
import zlib

import pytest

import emu
from emu.host import FirmwareError, Host, HostError, MachineTransport
from emu.protocol import Error, MessageType, Result, Status, encode_frame

BOARDS = ["msp430fr5994", "cortex-m4-mram"]
INPUT = bytes(random.Random(5).randbytes(256))


def crc(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "little")


@pytest.fixture(params=BOARDS)
def checksum(request, build_dir):
    return emu.Machine.from_elf(build_dir / request.param / "checksum.elf")


def test_info_describes_firmware_and_buffers(checksum):
    info = Host(MachineTransport(checksum)).info()
    assert (info.board, info.firmware, info.version) == (checksum.board.name, "checksum", 2)
    assert info.input_size == checksum.image.symbol("app_input").size == 256
    assert info.output_size == checksum.image.symbol("app_output").size == 4


def test_flashed_firmware_runs_its_built_in_input_once_then_waits(checksum):
    host = Host(MachineTransport(checksum))
    assert host._receive(0) is not None  # the first boot computes without being asked
    flashed = checksum.image.flashed_bytes("app_input")
    assert list(host.results) == [0]
    r = host.results[0]  # (its cycles: tests/test_cycles.py)
    assert (r.output, r.exit, r.boot_count, r.counter) == (crc(flashed), Result.NO_EXIT, 1, 9)
    assert checksum.run().waiting_for_input  # and then only waits for the host


def test_job_through_load_run_result(checksum):
    host = Host(MachineTransport(checksum))
    result = host.run_job(INPUT)
    assert result.output == crc(INPUT) and result.exit == Result.NO_EXIT
    # 256 bytes in chunks of 32: 8 chunk tasks and one finishing task commit
    assert host.status() == Status(Status.DONE, 9, 1, 0)
    assert host.result().output == crc(INPUT)
    assert checksum.read_symbol("app_output") == crc(INPUT)


def test_job_survives_power_failures_during_load_run_and_compute(checksum):
    schedule = [900, 4000, 2500, 700, 6000, 3000, 1200]
    transport = MachineTransport(checksum, fail_after=schedule)
    host = Host(transport)
    result = host.run_job(INPUT)
    assert result.output == crc(INPUT) and result.boot_count >= 3
    status = host.status()  # later requests may meet the rest of the schedule
    assert status.boot_count == checksum.power_failures + 1 == len(schedule) - len(transport.schedule) + 1


def test_retried_run_does_not_start_a_second_job(checksum):
    host = Host(MachineTransport(checksum))
    host.load(INPUT)
    host.request(MessageType.RUN, seq=77)
    host._job_seq = 77
    assert host.wait_result().output == crc(INPUT)
    before = checksum.instructions
    host.request(MessageType.RUN, seq=77)  # the host lost the reply and retries
    assert checksum.instructions - before < 3000  # answered, nothing recomputed
    assert host.status().progress == 9
    host.request(MessageType.RUN, seq=78)  # a new RUN starts a new job
    assert host.status().state == Status.DONE and checksum.instructions - before > 5000


def test_corrupt_truncated_and_garbage_frames_are_dropped_and_counted(checksum):
    transport = MachineTransport(checksum)
    host = Host(transport)
    host.status()
    good = encode_frame(MessageType.LOAD, 9, (0).to_bytes(2, "little") + b"\xEE" * 8)
    flipped = bytearray(good)
    flipped[3] ^= 0x10
    transport.write(bytes(flipped))  # CRC fails
    transport.write(good[:6] + b"\x00")  # truncated, then a delimiter
    transport.write(b"\x05\x01\x02\x00")  # bad COBS: code runs past the delimiter
    status = host.status()
    assert status.dropped == 3
    assert checksum.read_symbol("app_input", 8) != b"\xEE" * 8  # none was acted on


def test_errors_name_the_problem(checksum):
    host = Host(MachineTransport(checksum))
    with pytest.raises(FirmwareError) as err:
        host.load(b"x" * 8, offset=252)
    assert err.value.error.code == Error.ARGUMENT and "beyond" in str(err.value)
    with pytest.raises(FirmwareError) as err:
        host.request(0x42)
    assert err.value.error.code == Error.UNKNOWN


class LossyLine:
    """Drops the first `drop` reads' bytes, as a noisy line or a detached host would."""

    def __init__(self, inner, drop: int):
        self.inner, self.drop = inner, drop

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        if data and self.drop:
            self.drop -= 1
            return b""
        return data


def test_host_retries_when_a_reply_is_lost(checksum):
    host = Host(LossyLine(MachineTransport(checksum), drop=2))
    assert host.info().firmware == "checksum"  # third attempt
    with pytest.raises(HostError, match="no reply to STATUS after 1 attempts"):
        Host(LossyLine(MachineTransport(checksum), drop=5), retries=0).status()

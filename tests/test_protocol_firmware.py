"""The firmware side of the host protocol (firmware/lib/protocol.c) against the host side
(emu/protocol.py), through the emulated UART on both boards: valid frames are echoed,
corrupt, truncated and oversized ones are dropped and counted, never acted on."""

from __future__ import annotations

import random

import pytest

import emu
from emu.protocol import Frame, FrameDecoder, encode_frame
from tests.conftest import BOARDS

QUIT = 0x10  # proto_echo: reply with the dropped-frame count, then return


def program(build_dir, board):
    return build_dir / "test-apps" / board / "proto_echo.elf"


@pytest.mark.parametrize("board", BOARDS)
def test_echo_and_drop_count(build_dir, board):
    rng = random.Random(7)
    stream = bytearray(b"\x00\x00")  # idle line first
    expected, dropped = [], 0
    for seq in range(18):
        body = rng.randbytes(rng.randrange(0, 48))
        frame = bytearray(encode_frame(0x02, seq, body))
        kind = seq % 6
        if kind == 1:  # one flipped bit (never producing a delimiter): CRC or COBS catches it
            i = rng.randrange(len(frame) - 1)
            bit = next(b for b in range(8) if frame[i] ^ (1 << b))
            frame[i] ^= 1 << bit
            dropped += 1
        elif kind == 3:  # truncated: the line cuts the frame short
            frame = frame[: len(frame) // 2] + b"\x00"
            dropped += 1
        else:
            expected.append(Frame(0x82, seq, body))
        stream += frame
    stream += encode_frame(0x02, 200, bytes(range(256)) + bytes(40))  # longer than the firmware takes
    dropped += 1
    stream += encode_frame(0x02, 201, bytes(256))  # the largest body it takes, all zeros
    expected.append(Frame(0x82, 201, bytes(256)))
    stream += encode_frame(QUIT, 99)
    m = emu.Machine.from_elf(program(build_dir, board), uart_input=bytes(stream))
    r = m.run(max_instructions=50_000_000)
    assert r.outcome == "completed", r.error
    decoder = FrameDecoder()
    got = decoder.feed(r.uart)
    assert decoder.dropped == 0  # everything the firmware sent is a valid frame
    assert got[:-1] == expected
    assert got[-1] == Frame(0x90, 99, dropped.to_bytes(2, "little"))


@pytest.mark.parametrize("board", BOARDS)
def test_after_a_power_failure_the_firmware_serves_requests_again(build_dir, board):
    # the receive state is volatile: after the reboot the firmware starts afresh (its drop
    # count too) and answers the next requests
    first = encode_frame(0x02, 1, b"hello")
    m = emu.Machine.from_elf(program(build_dir, board), uart_input=first)
    m.run(max_instructions=200_000)  # waits for more input after replying
    assert FrameDecoder().feed(m.link.tx) == [Frame(0x82, 1, b"hello")]
    m.power_fail()
    m.link.rx.extend(encode_frame(0x02, 2, b"again") + encode_frame(QUIT, 3))
    r = m.run(max_instructions=400_000)
    assert r.outcome == "completed"
    assert FrameDecoder().feed(r.uart) == [Frame(0x82, 1, b"hello"), Frame(0x82, 2, b"again"),
                                           Frame(0x90, 3, b"\x00\x00")]

"""Host protocol framing: COBS, CRC-16, the frame decoder under noise, message bodies.
References: the COBS examples of Cheshire and Baker (as listed on Wikipedia's COBS page)
and Python's binascii.crc_hqx (CRC-CCITT) as an independent CRC."""

from __future__ import annotations

import binascii
import random

import pytest

from emu.protocol import (MAX_FRAME, Frame, FrameDecoder, Info, Load, MessageType, ProtocolError, Result,
                          Status, cobs_decode, cobs_encode, crc16, encode_frame)


def test_crc16_check_value_and_reference():
    assert crc16(b"123456789") == 0x29B1  # the catalogued check value of CRC-16/CCITT-FALSE
    rng = random.Random(1)
    for n in (0, 1, 7, 64, 300):
        data = rng.randbytes(n)
        assert crc16(data) == binascii.crc_hqx(data, 0xFFFF)


B = bytes
COBS_EXAMPLES = [
    (B([0x00]), B([0x01, 0x01])),
    (B([0x00, 0x00]), B([0x01, 0x01, 0x01])),
    (B([0x00, 0x11, 0x00]), B([0x01, 0x02, 0x11, 0x01])),
    (B([0x11, 0x22, 0x00, 0x33]), B([0x03, 0x11, 0x22, 0x02, 0x33])),
    (B([0x11, 0x22, 0x33, 0x44]), B([0x05, 0x11, 0x22, 0x33, 0x44])),
    (B([0x11, 0x00, 0x00, 0x00]), B([0x02, 0x11, 0x01, 0x01, 0x01])),
    (B(range(1, 255)), B([0xFF]) + B(range(1, 255))),
    (B(range(0, 255)), B([0x01, 0xFF]) + B(range(1, 255))),
    (B(range(1, 256)), B([0xFF]) + B(range(1, 255)) + B([0x02, 0xFF])),
    (B(range(2, 256)) + B([0x00]), B([0xFF]) + B(range(2, 256)) + B([0x01, 0x01])),
    (B(range(3, 256)) + B([0x00, 0x01]), B([0xFE]) + B(range(3, 256)) + B([0x02, 0x01])),
]


@pytest.mark.parametrize("raw, encoded", COBS_EXAMPLES)
def test_cobs_reference_examples(raw, encoded):
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


def test_cobs_round_trip_and_invalid_input():
    rng = random.Random(2)
    for n in list(range(0, 600, 7)) + [253, 254, 255, 508, 509]:
        data = B(rng.choice((0, rng.randrange(256))) for _ in range(n))
        enc = cobs_encode(data)
        assert 0 not in enc and cobs_decode(enc) == data
    assert cobs_decode(B([0x05, 0x11])) is None  # block runs past the end
    assert cobs_decode(B([0x03, 0x11, 0x00])) is None  # zero inside a block
    assert cobs_decode(B([0x00])) is None


def test_frame_round_trip_fed_byte_by_byte():
    frames = [Frame(MessageType.LOAD, 7, B(range(40))), Frame(MessageType.STATUS.reply, 8, b""),
              Frame(MessageType.INFO, 255, B(MAX_FRAME - 4))]
    stream = b"".join(encode_frame(f.type, f.seq, f.body) for f in frames)
    decoder = FrameDecoder()
    got = [f for byte in stream for f in decoder.feed(B([byte]))]
    assert got == frames and decoder.frames == 3 and decoder.dropped == 0
    assert got[1].is_reply and not got[0].is_reply


def test_encode_rejects_oversized_frames():
    with pytest.raises(ProtocolError, match="exceeds"):
        encode_frame(MessageType.LOAD, 0, B(MAX_FRAME))


@pytest.mark.parametrize("noise", ["flip", "drop", "duplicate", "insert"])
def test_decoder_never_accepts_a_corrupted_frame(noise):
    rng = random.Random({"flip": 11, "drop": 12, "duplicate": 13, "insert": 14}[noise])
    sent = [Frame(MessageType.RESULT.reply, i & 0xFF, rng.randbytes(rng.randrange(0, 60))) for i in range(400)]
    stream = bytearray(b"".join(encode_frame(f.type, f.seq, f.body) for f in sent))
    damaged = 0
    for _ in range(300):  # damage about 300 places; frames between them stay intact
        i = rng.randrange(len(stream))
        if noise == "flip":
            stream[i] ^= 1 << rng.randrange(8)
        elif noise == "drop":
            del stream[i]
        elif noise == "duplicate":
            stream.insert(i, stream[i])
        else:
            stream.insert(i, rng.randrange(256))
        damaged += 1
    decoder = FrameDecoder()
    got = decoder.feed(bytes(stream))
    sent_set = set(sent)
    assert all(f in sent_set for f in got)  # nothing corrupt got through
    assert len(got) > len(sent) // 3  # and undamaged frames did
    assert decoder.dropped > 0 and decoder.frames == len(got)


def test_garbage_longer_than_any_frame_is_dropped_then_sync_recovers():
    decoder = FrameDecoder()
    assert decoder.feed(B([0x55]) * (3 * MAX_FRAME)) == []
    got = decoder.feed(b"\x00" + encode_frame(MessageType.STATUS, 1))
    assert got == [Frame(MessageType.STATUS, 1, b"")] and decoder.dropped_oversize == 1


def test_truncated_frame_is_dropped():
    decoder = FrameDecoder()
    frame = encode_frame(MessageType.LOAD, 3, b"abcdef")
    assert decoder.feed(frame[:5] + b"\x00") == []
    assert decoder.dropped == 1


def test_message_bodies_round_trip():
    info = Info("msp430fr5994", "dnn_tiny", 3, 64, 10)
    assert Info.decode(info.encode()) == info
    load = Load(0x120, b"\x01\x02\x03")
    assert Load.decode(load.encode()) == load
    status = Status(Status.RUNNING, 123456, 17)
    assert Status.decode(status.encode()) == status
    result = Result(b"\x09\x00\x05", Result.NO_EXIT, 4, 0xDEADBEEF, 0x89ABCDEF)
    assert Result.decode(result.encode()) == result
    # the wire layout of docs/protocol.md, written out by hand: exit, boot_count u16,
    # counter u32, cycles u32, output
    body = bytes.fromhex("ff 0400 efbeadde efcdab89 090005")
    assert result.encode() == body and Result.decode(body) == result
    # protocol version 1 firmware sends no cycles: the same bytes minus those four
    old = Result(b"\x09\x00\x05", Result.NO_EXIT, 4, 0xDEADBEEF)
    assert old.encode(version=1) == bytes.fromhex("ff 0400 efbeadde 090005")
    assert Result.decode(old.encode(version=1), version=1) == old
    with pytest.raises(ProtocolError, match="too short"):
        Result.decode(bytes.fromhex("ff 0400 efbeadde 0900"))  # version 2 without the cycles
    with pytest.raises(ProtocolError, match="too short"):
        Status.decode(b"\x01\x02")

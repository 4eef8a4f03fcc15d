"""Expected output of the sort app: the int16 little-endian input values in ascending order."""
import struct


def run(data: bytes) -> bytes:
    values = struct.unpack(f"<{len(data) // 2}h", data)
    return struct.pack(f"<{len(values)}h", *sorted(values))

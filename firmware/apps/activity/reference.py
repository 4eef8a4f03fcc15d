"""Expected output of the activity app: per 16-sample window of int8 (x, y, z) samples,
mean u16, variance u32 and class u8 of the L1 magnitudes, then the class histogram."""
import struct

WINDOW = 16


def run(data: bytes) -> bytes:
    samples = struct.unpack(f"<{len(data)}b", data)
    magnitudes = [abs(samples[i]) + abs(samples[i + 1]) + abs(samples[i + 2])
                  for i in range(0, len(samples), 3)]
    out = b""
    histogram = [0, 0, 0]
    for w in range(0, len(magnitudes), WINDOW):
        window = magnitudes[w:w + WINDOW]
        mean = sum(window) // WINDOW
        var = sum((m - mean) ** 2 for m in window) // WINDOW
        cls = 0 if var < 16 else 1 if var < 256 else 2
        histogram[cls] += 1
        out += struct.pack("<HIB", mean, var, cls)
    return out + bytes(histogram)

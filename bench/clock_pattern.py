"""The sender's wall clock burnt into a picture: a strip of black/white blocks (pure; bench/live_latency.py).

Two rows of 24 blocks across the top 2/9 of the picture. 48 bits: 42 bits of
milliseconds since the Unix epoch (most significant first: 2^42 ms is 139
years) and 6 check bits, check bit j being the inverted parity of data bits
j, j+6, j+12, … Inverted, so an all-black and an all-white strip are both
refused (a black frame before the first real one, a flash). A block at 720p
is 53×80 pixels: at the 360p rung still 27×40, hundreds of times the size of
a macroblock, so even a starved low rung keeps every block's mean on its
side of mid-grey. Readers sample the central half of each block only (its
edges are where scaling and chroma blend neighbours).

Everything is relative to the picture size, so the same functions read any
rung. The browser only thresholds each block (bench/live_latency.py's page
script); the bits are checked and decoded here, by `bits_clock`.
"""

from __future__ import annotations

import numpy as np

COLS, ROWS = 24, 2
STRIP_ROWS_OF = 9  # a block row is 1/9 of the picture height
DATA_BITS, CHECK_BITS = 42, 6
BITS = COLS * ROWS
WHITE, BLACK = 235, 16  # video range luma
assert DATA_BITS + CHECK_BITS == BITS


def _check(data: list[int]) -> list[int]:
    return [1 - sum(data[j::CHECK_BITS]) % 2 for j in range(CHECK_BITS)]


def clock_bits(ms: int) -> list[int]:
    """The 48 bits for `ms` (0 ≤ ms < 2^42), row by row, left to right."""
    if not 0 <= ms < 1 << DATA_BITS:
        raise ValueError(f"{ms} does not fit in {DATA_BITS} bits")
    data = [(ms >> (DATA_BITS - 1 - i)) & 1 for i in range(DATA_BITS)]
    return data + _check(data)


def bits_clock(bits) -> int | None:
    """`clock_bits`' inverse; None when the check bits disagree (no pattern, a torn or garbled frame)."""
    bits = [int(b) for b in bits]
    if len(bits) != BITS:
        return None
    data, check = bits[:DATA_BITS], bits[DATA_BITS:]
    if _check(data) != check:
        return None
    ms = 0
    for b in data:
        ms = ms << 1 | b
    return ms


def _block(i: int, width: int, height: int) -> tuple[int, int, int, int]:
    r, c = divmod(i, COLS)
    return (r * height // STRIP_ROWS_OF, (r + 1) * height // STRIP_ROWS_OF,
            c * width // COLS, (c + 1) * width // COLS)


def draw_clock(luma: np.ndarray, ms: int) -> None:
    """Paint the pattern for `ms` into a luma plane (uint8, height × width), in place."""
    h, w = luma.shape
    for i, bit in enumerate(clock_bits(ms)):
        y0, y1, x0, x1 = _block(i, w, h)
        luma[y0:y1, x0:x1] = WHITE if bit else BLACK


def read_bits(luma: np.ndarray) -> list[int]:
    """Threshold the central half of every block of a luma plane of any size."""
    h, w = luma.shape
    bits = []
    for i in range(BITS):
        y0, y1, x0, x1 = _block(i, w, h)
        dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
        bits.append(int(luma[y0 + dy:y1 - dy, x0 + dx:x1 - dx].mean() > (WHITE + BLACK) / 2))
    return bits


def read_clock(luma: np.ndarray) -> int | None:
    return bits_clock(read_bits(luma))

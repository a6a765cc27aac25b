"""Lane vectors as integers: lane i of a packed port occupies bits [i*w, (i+1)*w). Pure Python (no
Amaranth, no cocotb), for testbenches and host code that drive or read a packed port of a unit
(``in_data`` of the top-k engine, the K/V beats of SpAtten's pipeline, ...)."""
from __future__ import annotations

from collections.abc import Iterable


def pack(values: Iterable[int], w: int) -> int:
    """The integer whose lane i holds ``values[i]`` modulo 2**w (negative values in two's complement)."""
    if w < 1:
        raise ValueError(f"lane width must be >= 1, got {w}")
    mask = (1 << w) - 1
    return sum((int(v) & mask) << (i * w) for i, v in enumerate(values))


def unpack(x: int, n: int, w: int, signed: bool = True) -> list[int]:
    """Lanes 0..n-1 of ``x``, each w bits, read as two's complement when ``signed``."""
    if w < 1:
        raise ValueError(f"lane width must be >= 1, got {w}")
    x, mask, out = int(x), (1 << w) - 1, []
    for i in range(n):
        v = (x >> (i * w)) & mask
        out.append(v - (1 << w) if signed and v >> (w - 1) else v)
    return out

"""Packing lane vectors for the SpAtten benches (lane i at bits [i*w, (i+1)*w))."""


def pack(vals, w):
    return sum((int(v) & ((1 << w) - 1)) << (i * w) for i, v in enumerate(vals))


def unpack(x, n, w, signed=True):
    out = []
    for i in range(n):
        v = (x >> (i * w)) & ((1 << w) - 1)
        out.append(v - (1 << w) if signed and v >> (w - 1) else v)
    return out

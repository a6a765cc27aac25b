"""Packing lane vectors for the SpAtten benches (lane i at bits [i*w, (i+1)*w)), and the K/V memory beats
(spatten_top moves K keys / R V rows per beat: ``<m>req_count`` tokens on ``<m>req_index`` lanes 0..count-1,
answered by one ``<m>resp`` beat carrying their rows on the same lanes)."""


def pack(vals, w):
    return sum((int(v) & ((1 << w) - 1)) << (i * w) for i, v in enumerate(vals))


def unpack(x, n, w, signed=True):
    out = []
    for i in range(n):
        v = (x >> (i * w)) & ((1 << w) - 1)
        out.append(v - (1 << w) if signed and v >> (w - 1) else v)
    return out


def request_beat(dut, mem, index_bits):
    """The token indices of the ``mem`` ('k' or 'v') request beat seen this cycle."""
    count = int(getattr(dut, f"{mem}req_count").value)
    return unpack(int(getattr(dut, f"{mem}req_index").value), count, index_bits, signed=False)


def response_beat(rows, idxs, bits):
    """The packed rows of tokens ``idxs`` for a response beat (unused lanes stay 0)."""
    return pack([x for j in idxs for x in rows[j]], bits)

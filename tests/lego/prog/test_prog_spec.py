"""The programmable array's command words, bursts, program files and timing formulas (lego/prog)."""
import struct

import numpy as np
import pytest

from lego.errors import LegoError
from lego.prog import program as P
from lego.arch.banking import Layout
from lego.host import place
from lego.prog.spec import CommandError, bursts, decode, encode, load_lanes
from lego.prog.timing import load_cycles, store_cycles

CMDS = [{"op": "SET", "reg": "LD_ADDR", "value": 0xDEADBEEF}, {"op": "LOAD", "tensor": "W", "buf": 1, "mode": 2},
        {"op": "COMPUTE", "mode": 1, "xbuf": 1, "wbuf": 0, "ybuf": 1, "acc": 1},
        {"op": "STORE", "buf": 1, "mode": 3}, {"op": "END"}]


@pytest.mark.parametrize("cmd", CMDS)
def test_command_words_round_trip(cmd):
    assert decode(encode(cmd)) == cmd


@pytest.mark.parametrize("word, field", [(0x7 << 60, "opcode"), ((1 << 60) | (99 << 52), "CSR index"),
                                         ((2 << 60) | 1, "reserved"), ((3 << 60) | (2 << 54), "mode")])
def test_undefined_words_are_named(word, field):
    with pytest.raises(CommandError, match=field):
        decode(word, nmodes=2)


def test_bursts_stop_at_4k_and_256_beats():
    # one row of 5000 bytes from 4000 on a 64-bit bus: 96 bytes to the page, then 256 beats, then the rest
    (row,) = bursts(4000, 1, 5000, 5000, 1, 8)
    assert [(b.addr, b.beats, b.off, b.elems) for b in row] == [(4000, 12, 0, 96), (4096, 256, 0, 2048),
                                                               (6144, 256, 0, 2048), (8192, 101, 0, 808)]
    assert sum(b.elems for b in row) == 5000
    (row,) = bursts(13, 1, 10, 10, 1, 8)       # unaligned: the first lane skips the offset
    assert [(b.addr, b.beats, b.off, b.elems) for b in row] == [(8, 2, 5, 10)]


def test_timing_formulas_by_hand():
    # one row, 10 elements from byte 13, 64-bit bus, latency 4: AR at edge 0, first beat captured at 3+4=7,
    # written at 8..17 (one element per cycle): busy falls at the edge of the last write
    assert load_cycles(13, 1, 10, 10, 1, 8, 4) == 7 + 10
    # two rows of 2 int32 on a 64-bit bus, aligned: per burst 2 elements + 2 cycles per beat + 2 + latency
    assert store_cycles(0, 2, 2, 8, 8, 3) == 2 * (2 + 2 + 2 + 3)


def test_program_file_checks(tmp_path):
    words = [encode(c) for c in CMDS]
    data = P.dumps({"design_hash": "h"}, words)
    assert P.loads(data) == ({"design_hash": "h"}, words)
    with pytest.raises(LegoError, match="--program: truncated"):
        P.loads(data[:-9])
    bad = bytearray(data)
    bad[-12] ^= 1
    with pytest.raises(LegoError, match="--program: corrupt"):
        P.loads(bytes(bad))
    with pytest.raises(LegoError, match="--program: not a lego program"):
        P.loads(b"\x00" * 40)
    assert struct.unpack("<I", data[8:12])[0] == len(b'{"design_hash": "h"}')


def _lay(g, B, ids=None, shape=(24, 40)):
    ids = tuple(range(B[0] * B[1])) if ids is None else tuple(ids)
    E = tuple(-(-shape[m] // (g[m] * B[m])) * g[m] for m in range(2))
    return Layout("T", shape, tuple(g), tuple(B), False, ids, E, E[0] * E[1])


def _widest_by_brute_force(lay, E):
    """The largest power of two P <= E such that every window of P consecutive columns of every row lies in
    P distinct physical banks, by placing every element with the host's placement (lego.host.place)."""
    r, c = np.meshgrid(np.arange(lay.shape[0]), np.arange(lay.shape[1]), indexing="ij")
    ((mask, bank, _),) = place(lay.doc(), np.stack([r.ravel(), c.ravel()], axis=1))
    bank = np.where(mask, bank, -1).reshape(lay.shape)
    best, p = 1, 2
    while p <= E:
        ok = all(len(set(bank[i, j:j + p])) == p and (bank[i, j:j + p] >= 0).all()
                 for i in range(lay.shape[0]) for j in range(lay.shape[1] - p + 1))
        if ok:
            best = p
        p *= 2
    return best


@pytest.mark.parametrize("g, B, ids, E, want", [
    ((1, 1), (1, 16), None, 8, 8),       # columns banked 16 ways: a whole 8-lane beat per cycle
    ((1, 1), (4, 16), None, 32, 16),     # capped by the 16 column banks
    ((1, 1), (2, 3), None, 8, 2),        # 3 column banks: the largest power of two <= 3
    ((1, 1), (16, 1), None, 8, 1),       # rows banked, one column bank: every element of a row in one bank
    ((1, 2), (1, 4), None, 8, 1),        # g1 = 2: columns 2c and 2c+1 share a bank
    ((2, 1), (2, 4), None, 8, 4),        # row grouping does not matter
    ((1, 1), (2, 2), (0, 3), 8, 1),      # not every cyclic id is a bank
])
def test_load_lanes_against_brute_force(g, B, ids, E, want):
    lay = _lay(g, B, ids)
    assert load_lanes([lay], E) == want
    if ids is None:
        assert _widest_by_brute_force(lay, E) == want
    # a tensor's lanes in several layouts: the smallest
    assert load_lanes([lay, _lay((1, 1), (1, 2))], E) == min(want, 2)


def test_wide_load_timing_by_hand():
    # 8 aligned rows of 32 int8 on a 128-bit bus (E = 16 lanes), 2 beats = 1 burst per row, latency 1: the
    # first beat is captured at edge 3 + 1; with P lanes a row takes 32 / P cycles, and the next burst's
    # first beat (3 + 1 edges after RLAST's capture) is there when the last beat's E / P >= 4 groups end
    for p in (1, 2, 4):
        assert load_cycles(0, 8, 32, 32, 1, 16, 1, p) == 4 + 8 * 32 // p
    # one row, 10 elements from byte 13 on a 64-bit bus, P = 4: beats of 3 and 7 valid lanes -> 1 + 2 groups
    assert load_cycles(13, 1, 10, 10, 1, 8, 4, 4) == 7 + 3

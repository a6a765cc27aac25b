"""The programmable array's command words, bursts, program files and timing formulas (lego/prog)."""
import struct

import pytest

from lego.errors import LegoError
from lego.prog import program as P
from lego.prog.spec import CommandError, bursts, decode, encode
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

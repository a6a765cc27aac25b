"""lego/units/lanes.py: lane i at bits [i*w, (i+1)*w), two's complement, against hand-written integers."""
import pytest

from lego.units.lanes import pack, unpack


def test_pack_by_hand():
    assert pack([1, 2, 3], 4) == 0x321
    assert pack([-1, 0, 5], 4) == 0x50F                      # -1 is 0xF in a 4-bit lane
    assert pack([0xABC], 8) == 0xBC                           # wider values are cut to the lane
    assert pack([], 7) == 0


def test_unpack_by_hand():
    assert unpack(0x50F, 3, 4) == [-1, 0, 5]
    assert unpack(0x50F, 3, 4, signed=False) == [15, 0, 5]
    assert unpack(0x80, 2, 4) == [0, -8]
    assert unpack(0, 2, 1, signed=False) == [0, 0] and unpack(0b10, 2, 1) == [0, -1]


@pytest.mark.parametrize("w", [1, 3, 8, 17, 64])
def test_roundtrip(w):
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    vals = [lo, hi, 0, -1 if w > 1 else 0, hi // 3]
    assert unpack(pack(vals, w), len(vals), w) == vals
    uvals = [0, (1 << w) - 1, 1]
    assert unpack(pack(uvals, w), 3, w, signed=False) == uvals


def test_bad_width():
    with pytest.raises(ValueError):
        pack([1], 0)
    with pytest.raises(ValueError):
        unpack(1, 1, 0)

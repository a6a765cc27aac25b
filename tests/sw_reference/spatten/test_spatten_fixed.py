"""sw_reference.spatten.fixed: the bit-accurate numerics, against hand-worked values and float math."""
import numpy as np

from accelerators.spatten.config import SpAttenConfig
from sw_reference.spatten import fixed

CFG = SpAttenConfig.preset("eighth")


def test_msb_lsb_split_roundtrip():
    x = np.arange(-512, 512)
    msb, lsb = fixed.split_msb_lsb(x, 4)
    assert (fixed.fetch_value(msb, lsb, 4) == x).all()
    assert msb.min() >= -32 and msb.max() <= 31 and lsb.max() <= 15
    assert (fixed.msb_only(x, 4) == (x >> 4) << 4).all()
    # by hand: -7 = 0b...11111001 -> MSB -1, LSB 9; fetched without LSBs: -16
    assert [int(v) for v in fixed.split_msb_lsb(np.array(-7), 4)] == [-1, 9]
    assert int(fixed.msb_only(np.array(-7), 4)) == -16


def test_softmax_by_hand():
    """Two equal scores: e = LUT[0] = 2**15 each, sum 2**16, r = 2**40 // 2**16 = 2**24,
    p = (2**15 * 2**24) >> 24 = 2**15 (one half in Q0.16)."""
    assert fixed.exp_lut(8, 4)[0] == 1 << 15 and fixed.exp_lut(8, 4)[16] == round(2**15 / np.e)
    assert fixed.softmax_fixed(np.array([5, 5]), 1 << 20, CFG).tolist() == [1 << 15, 1 << 15]
    # one score far below the other: its LUT index saturates at 255, LUT[255] = round(2**15 e^-15.9375) = 0
    p = fixed.softmax_fixed(np.array([0, -10**6]), 1 << 24, CFG)
    assert p.tolist() == [65535, 0]                # 2**16 saturates to 2**16 - 1


def test_softmax_fixed_close_to_float():
    rng = np.random.default_rng(0)
    q = rng.integers(-2047, 2048, 64)
    k = rng.integers(-511, 512, (200, 64))
    sq, sk = 1 / 2047, 4 / 511
    dq = fixed.dequant_scale(sq, sk, 64, CFG)
    p = fixed.softmax_fixed(fixed.dot_scores(q, k), dq, CFG) / 65536
    pf = fixed.softmax_float(fixed.dot_scores(q, k) * sq * sk / 8)
    assert abs(p.sum() - 1) < 0.01
    assert np.abs(p - pf).max() < 0.01


def test_requant_and_pv_by_hand():
    assert CFG.threshold_q == 3277                 # round(0.05 * 2**16)
    assert fixed.need_requant(np.array([3276, 10]), CFG) and not fixed.need_requant(np.array([3277]), CFG)
    assert fixed.pv_product(np.array([2, 3]), np.array([[1, -1], [10, 4]])).tolist() == [32, 10]
    assert fixed.pv_product(np.array([2, 3]), np.array([[1, -1], [10, 4]]), np.array([1])).tolist() == [30, 12]


def test_lut_index_rounds_half_up_and_saturates_by_hand():
    from accelerators.spatten.config import SpAttenConfig
    from sw_reference.spatten.fixed import lut_index
    cfg = SpAttenConfig.preset("eighth")
    # dq = 2^23 at shift 24 halves the distance to the max: (d + 1) // 2 for d = 0, 3, 0, 6, 1 -> 0, 2, 0, 3, 1;
    # a distance of 10^6 saturates at the LUT's last entry
    assert cfg.dequant_shift == 24
    got = lut_index(np.array([10, 7, 10, 4, 9, 10 - 10 ** 6]), 1 << 23, cfg).tolist()
    assert got == [0, 2, 0, 3, 1, (1 << cfg.exp_lut_bits) - 1]

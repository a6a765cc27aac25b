"""Accumulator width inference (lego/affine/widths.py): the term bound on known nests, the width it gives,
and RTL at the inferred width driven at both extremes of the sum (every product at its max, then at its min),
bit-exact against sw_reference (which wraps at 32 bits) under Icarus and Verilator."""
import itertools
import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lego.affine.library import attention_stages, builtin_workload, parse_shape
from lego.affine.widths import acc_bits, product_range, terms_per_output
from lego.affine.workload import Affine, Tensor, Workload, parse_workload_file
from lego.generate import generate
from lego.api import simulate
from simulator.engine import get_engine, read_manifest


def _w(name, shape, bits=8):
    return builtin_workload(name, parse_shape(shape, name), bits)


@pytest.mark.parametrize("name,shape,terms", [
    ("gemm", "M=37,N=23,K=19", 19),
    ("bmm", "B=2,M=9,N=10,K=3", 3),
    ("conv2d", "N=1,C=3,K=5,H=7,W=6,R=3,S=2,STRIDE=2,PAD=1", 3 * 3 * 2),
    ("dwconv2d", "C=5,H=6,W=7,R=3,S=3,PAD=1", 9),
])
def test_terms_per_output_on_builtin_nests(name, shape, terms):
    assert terms_per_output(_w(name, shape)) == terms


def test_terms_bound_on_a_nest_whose_output_index_mixes_loops(tmp_path):
    # Y[i + j] += X[i] * W[j]: both loops appear in the output index, yet up to min(5, 3) = 3 terms meet
    # at one output; the bound (product of the loops not picked) is 3.
    f = tmp_path / "c1d.yaml"
    f.write_text("name: c1d\niterators: {i: 5, j: 3}\ntensors:\n"
                 "  X: {index: [i], role: input, dtype: int8}\n  W: {index: [j], role: input, dtype: int8}\n"
                 "  Y: {index: [i + j], role: output, dtype: int32}\n")
    w = parse_workload_file(f)
    exact = max(sum(1 for i in range(5) for j in range(3) if i + j == y) for y in range(7))
    assert terms_per_output(w) >= exact == 3
    assert terms_per_output(w) == 3


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4).flatmap(lambda ext: st.tuples(
    st.just(ext), st.lists(st.lists(st.integers(-2, 2), min_size=len(ext), max_size=len(ext)),
                           min_size=1, max_size=3))))
def test_terms_bound_holds_by_enumeration(case):
    """On random output accesses A_Y (small integer coefficients, any rank), the bound is at least the
    largest number of iterations that meet at one output element, counted over the whole box."""
    ext, rows = case
    its = tuple(f"i{k}" for k in range(len(ext)))
    y = Tensor("Y", "output", "int32", tuple(Affine(tuple(r)) for r in rows), (1,) * len(rows))
    x = Tensor("X", "input", "int8", (Affine((1,) + (0,) * (len(ext) - 1)),), (ext[0],))
    w = Workload("rnd", its, tuple(ext), (x, x, y))
    counts = Counter(tuple(int(sum(c * i for c, i in zip(r, pt))) for r in rows)
                     for pt in itertools.product(*(range(e) for e in ext)))
    assert terms_per_output(w) >= max(counts.values())


@pytest.mark.parametrize("name,shape,bits,want", [
    ("gemm", "M=4,N=4,K=64", 8, 22),       # 64 * 2^14 = 2^20 needs 22 bits
    ("gemm", "M=4,N=4,K=1", 8, 16),        # (-128)^2 = 2^14: 16 bits
    ("gemm", "M=4,N=4,K=16", 16, 36),      # 16 * 2^30 = 2^34 needs 36 bits (output int48)
    ("gemm", "M=2,N=2,K=100000", 8, 32),   # would need 33: capped at the output width (wraps like the reference)
])
def test_acc_bits(name, shape, bits, want):
    assert acc_bits(_w(name, shape, bits)) == want


def test_product_range_unsigned_and_attention():
    qk, pv = attention_stages({"L": 16, "D": 16})
    assert product_range(qk) == (-128 * 127, 128 * 128)
    assert acc_bits(qk) == 20 and acc_bits(pv) == 28


@pytest.fixture(scope="module")
def narrow_design(tmp_path_factory):
    out = tmp_path_factory.mktemp("wd") / "g"
    generate("gemm", "M=5,N=6,K=21", "4x4", ("os", "ws"), 8, True, out)
    return out


def test_report_and_ports(narrow_design):
    rep = json.loads((narrow_design / "report.json").read_text())
    assert rep["widths"] == {"acc_bits": 20, "output_bits": 32, "terms_per_output": 21}
    man = read_manifest(narrow_design)
    rd = next(p for p in man["ports"] if p["name"] == "rd_data")
    assert rd["width"] == 32                      # the host port keeps the output dtype's width
    v = (narrow_design / f"{man['top']}.v").read_text()
    assert "reg [19:0] mem_Y_0 [" in v          # an output bank word: the 20 accumulator bits


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_extreme_sums_bit_exact(narrow_design, engine):
    """X = W = -128 makes every partial sum the largest the bound allows (21 * 2^14); X = -128, W = 127
    the smallest. Both must read back exactly, sign-extended to 32 bits."""
    man = read_manifest(narrow_design)
    shp = {k: v["shape"] for k, v in man["tensors"].items()}
    cases = {"max": (-128, -128), "min": (-128, 127)}
    for label, (x, w) in cases.items():
        inputs = {"X": np.full(shp["X"], x, np.int8), "W": np.full(shp["W"], w, np.int8)}
        for mode in ("os", "ws"):
            rep = get_engine(engine).run(narrow_design, mode=mode, inputs=inputs)
            assert rep.match, (label, mode, rep.max_abs_err)
            y = rep.outputs["Y"]
            assert int(y.max() if label == "max" else y.min()) == 21 * x * w


@pytest.fixture(scope="module")
def attention_design(tmp_path_factory):
    out = tmp_path_factory.mktemp("wa") / "a"
    generate("attention", "L=6,D=5", "4x4", ("os",), 8, True, out)
    return out


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_attention_extreme_scores_bit_exact(attention_design, engine):
    """S = Q·Kᵀ at its bound (Q = K = -128: every score 5 * 2^14) in an 18-bit S bank and an 18-bit softmax
    input, then P·V at V = -128 and V = 127: bit-exact, sign-extended to the 32-bit O port."""
    st = json.loads((attention_design / "report.json").read_text())["stages"]
    assert st["qk"]["widths"]["acc_bits"] == 18 and st["pv"]["widths"]["acc_bits"] == 26
    for v in (-128, 127):
        inputs = {"Q": np.full((6, 5), -128, np.int8), "K": np.full((6, 5), -128, np.int8),
                  "V": np.full((6, 5), v, np.int8)}
        rep = simulate(attention_design, engine, inputs=inputs)
        assert rep.match, (v, rep.max_abs_err)


def test_value_and_product_ranges_by_hand():
    from lego.affine.widths import value_range
    mk = lambda dt: Tensor("T", "input", dt, (Affine((1,)),), (1,))  # noqa: E731
    assert value_range(mk("int8")) == (-128, 127) and value_range(mk("uint8")) == (0, 255)
    assert value_range(mk("int4")) == (-8, 7) and value_range(mk("uint16")) == (0, 65535)
    assert value_range(mk("int1")) == (-1, 0)
    for dx, dw in itertools.product(["int4", "uint8", "int8", "uint16"], repeat=2):
        xs, ws = value_range(mk(dx)), value_range(mk(dw))
        y = Tensor("Y", "output", "int32", (Affine((1,)),), (1,))
        w = Workload("p", ("i",), (1,), (mk(dx), mk(dw), y))
        prods = [a * b for a in range(xs[0], xs[1] + 1, max(1, (xs[1] - xs[0]))) for b in
                 range(ws[0], ws[1] + 1, max(1, (ws[1] - ws[0])))] + [0]
        assert product_range(w) == (min(prods), max(prods))


def test_acc_bits_is_the_narrowest_width_by_search():
    """acc_bits = min(output bits, the smallest b with terms * [pmin, pmax] inside [-2^(b-1), 2^(b-1) - 1])."""
    for k in (1, 2, 3, 4, 5, 8, 63, 64, 65, 1000):
        for bits in (4, 8):
            w = _w("gemm", f"M=1,N=1,K={k}", bits)
            lo, hi = product_range(w)
            b = next(b for b in range(1, 80) if -(2 ** (b - 1)) <= k * lo and k * hi <= 2 ** (b - 1) - 1)
            assert acc_bits(w) == min(32, b)
    # an unsigned x signed product: the negative end decides
    y = Tensor("Y", "output", "int32", (Affine((1, 0)),), (2,))
    x = Tensor("X", "input", "uint8", (Affine((0, 1)),), (3,))
    v = Tensor("V", "input", "int8", (Affine((0, 1)),), (3,))
    w = Workload("u", ("i", "k"), (2, 3), (x, v, y))
    assert product_range(w) == (-128 * 255, 127 * 255) and terms_per_output(w) == 3
    assert acc_bits(w) == 18          # 3 * -32640 = -97920 needs 18 bits (2^17 = 131072)


def test_terms_per_output_rank_cases():
    y = lambda rows: Tensor("Y", "output", "int32", tuple(Affine(r) for r in rows), (1,) * len(rows))  # noqa: E731
    x = Tensor("X", "input", "int8", (Affine((1, 0, 0)),), (4,))
    mk = lambda rows: Workload("t", ("a", "b", "c"), (4, 3, 5), (x, x, y(rows)))  # noqa: E731
    assert terms_per_output(mk([(1, 0, 0)])) == 15                 # a fixed: b, c free
    assert terms_per_output(mk([(1, 1, 1)])) == 12                 # one row: one loop (c, largest) determined
    assert terms_per_output(mk([(1, 0, 0), (0, 1, 0), (0, 0, 1)])) == 1
    assert terms_per_output(mk([(1, 2, 0), (2, 4, 0)])) == 15      # dependent rows: rank 1
    assert terms_per_output(mk([(0, 0, 0)])) == 60                 # a scalar output: every loop reduces
    assert terms_per_output(mk([(1, 1, 0), (0, 0, 1)])) == 3       # c and a determined (a before b: larger)


@pytest.mark.parametrize("K,bits", [(1, 8), (2, 9), (4, 10), (3, 10)])
def test_acc_bits_when_the_sum_reaches_the_negative_end_exactly(K, bits):
    # X int8 times W uint1: products lie in {-128..127} (W = 1) or 0, so K terms span [-128 K, 127 K]. For K a
    # power of two the minimum -128 K is exactly -2^(b-1) of the answer, which must still fit (b, not b + 1):
    # K=1: [-128, 127] -> 8 bits; K=2: [-256, 254] -> 9; K=4: [-512, 508] -> 10; K=3: [-384, 381] -> 10.
    m, n, k = (Affine(c) for c in ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    x = Tensor("X", "input", "int8", (m, k), (2, K))
    wt = Tensor("W", "input", "uint1", (k, n), (K, 2))
    y = Tensor("Y", "output", "int32", (m, n), (2, 2))
    w = Workload("g", ("m", "n", "k"), (2, 2, K), (x, wt, y))
    assert product_range(w) == (-128, 127)
    assert terms_per_output(w) == K
    assert acc_bits(w) == bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    assert lo <= -128 * K and 127 * K <= hi and not (-(1 << (bits - 2)) <= -128 * K)

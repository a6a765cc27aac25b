"""Unsigned input tensors (dtype uint8): the RTL zero-extends them into the signed datapath. (Regression:
banks and operands were declared signed, so values >= 128 were read back negative.)"""
import pytest

from lego.generate import generate
from simulator.engine import get_engine

WORKLOAD = """name: u8gemm
iterators: {i: 5, j: 3, k: 6}
tensors:
  X: {index: [i, k], role: input, dtype: uint8}
  W: {index: [k, j], role: input, dtype: int8}
  Y: {index: [i, j], role: output, dtype: int32}
"""


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    d = tmp_path_factory.mktemp("u8")
    (d / "w.yaml").write_text(WORKLOAD)
    out = d / "g"
    generate(str(d / "w.yaml"), None, "2x2", ("os", "ws"), 8, True, out)
    return out


@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
def test_unsigned_inputs_bit_exact(design, engine):
    for mode in ("os", "ws"):
        ref = get_engine("cycle").run(design, mode=mode, seed=7)
        rep = get_engine(engine).run(design, mode=mode, seed=7)
        assert ref.match and rep.match, (mode, rep.max_abs_err)
        assert rep.cycles == ref.cycles

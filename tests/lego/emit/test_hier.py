"""Hierarchical emission (one module per FU type) against the flat emission it replaces, and the exact
rational null space that replaced sympy's."""
import random
import subprocess

import numpy as np
import pytest

from lego.affine.reuse import int_nullspace, rational_nullspace
from lego.design import build_array, load_workload
from lego.emit.top import ArrayTop
from lego.generate import to_verilog
from lego.toolchain import require


def _design(wl, shape, arr, dfs, opt=True):
    return build_array(load_workload(wl, shape, 8), arr, dfs, opt)


@pytest.mark.parametrize("shape,types", [("M=16,N=16,K=4", 4), ("M=9,N=11,K=4", 9)])
def test_fu_types_are_few(shape, types):
    """An 8x8 os GEMM has four FU types (interior, last row, last column, corner); padding bounds arrive
    on constant ports, so a shape that does not divide the array adds only the first row/column's types."""
    d = _design("gemm", shape, (8, 8), ("os",))
    top = ArrayTop(d.arch, d.pg, "h")
    text = to_verilog(top, "h")
    assert len(top.modules()) == types
    assert sorted(ln.split("(")[0] for ln in text.splitlines() if ln.startswith("module ")) == \
        sorted(["module h"] + [f"module h_fu{k}" for k in range(types)])


def test_no_opt_stays_flat():
    d = _design("gemm", "M=4,N=4,K=4", (2, 2), ("os",), opt=False)
    top = ArrayTop(d.arch, d.pg, "h")
    assert to_verilog(top, "h").count("\nmodule ") == 1 and top.modules() == []


TB = """
module tb;
  reg clk = 0, rst = 1;
  integer seed = 7, k, errs = 0;
  {decl}
  flat F({fc});
  hier H({hc});
  initial begin
    for (k = 0; k < {cycles}; k = k + 1) begin
{rnd}
      ld_en = ($random(seed) % 4) != 0;
      start = ($random(seed) % 32) == 0;
      rst = k < 2;
      #1; if ({cmp}) errs = errs + 1;
      clk = 1; #1; if ({cmp}) errs = errs + 1;
      clk = 0;
    end
    $display("ERRS %0d", errs);
    $finish;
  end
endmodule
"""


@pytest.mark.parametrize("wl,shape,arr,dfs", [
    ("gemm", "M=5,N=6,K=7", (3, 2), ("os", "ws-bcast")),
    ("conv2d", "N=1,C=2,K=3,H=5,W=5,R=3,S=3,PAD=1", (2, 3), ("os", "is")),
])
def test_hier_cosimulates_with_flat(tmp_path, wl, shape, arr, dfs):
    """Random host traffic (loads, starts in any mode, reads) on the flat and the hierarchical Verilog of
    one design: every output agrees on every cycle."""
    iverilog = require("iverilog")
    d = _design(wl, shape, arr, dfs)
    flat = ArrayTop(d.arch, d.pg)
    (tmp_path / "f.v").write_text(to_verilog(flat, "flat"))     # both without memory init: X meets X
    hier = ArrayTop(d.arch, d.pg, "hier")
    (tmp_path / "h.v").write_text(to_verilog(hier, "hier"))
    assert hier.modules()
    ins = {"start", "mode", "ld_en", "ld_tensor", "ld_bank", "ld_addr", "ld_data", "rd_bank", "rd_addr"}
    ports = [(s.name, len(s)) for s in hier.ports()]
    decl = " ".join(f"reg [{w - 1}:0] {n};" if n in ins else f"wire [{w - 1}:0] f_{n}, h_{n};" for n, w in ports)

    def conn(side):
        return ", ".join([".clk(clk)", ".rst(rst)"] + [f".{n}({n if n in ins else side + n})" for n, _ in ports])
    tb = TB.format(decl=decl, fc=conn("f_"), hc=conn("h_"), cycles=3000,
                   rnd="\n".join(f"      {n} = $random(seed);" for n in sorted(ins - {"start", "ld_en"})),
                   cmp=" || ".join(f"(f_{n} !== h_{n})" for n, _ in ports if n not in ins))
    (tmp_path / "tb.v").write_text(tb)
    subprocess.run([iverilog, "-g2012", "-o", "sim", "tb.v", "f.v", "h.v"], cwd=tmp_path, check=True)
    out = subprocess.run([require("vvp"), "-n", "sim"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "ERRS 0" in out.stdout, out.stdout[-500:]


def test_rational_nullspace_matches_sympy():
    sympy = pytest.importorskip("sympy")
    rng = random.Random(3)
    for _ in range(300):
        r, c = rng.randint(1, 4), rng.randint(1, 6)
        M = [[rng.choice([0, 0, 1, -1, 2, 3, 16]) for _ in range(c)] for _ in range(r)]
        got = [[sympy.Rational(x.numerator, x.denominator) for x in v] for v in rational_nullspace(M, c)]
        assert got == [list(v) for v in sympy.Matrix(M).nullspace()], M


def test_int_nullspace_examples():
    assert int_nullspace(np.array([[1, 0, 0], [0, 1, 0]])) == [(0, 0, 1)]
    assert int_nullspace(np.array([[2, -4]])) == [(2, 1)]
    assert int_nullspace(np.zeros((0, 2), dtype=np.int64)) == [(1, 0), (0, 1)]

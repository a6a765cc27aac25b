"""lego/arch/graph.py: the ArchGraph of fused dataflows."""

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape
from lego.arch import build_arch


def test_fusion_reports_mux_inputs():
    w = builtin_workload("gemm", parse_shape("M=8,N=8,K=8", "gemm"))
    one = build_arch(w, [make_dataflow(w, "os", (4, 4))])
    two = build_arch(w, [make_dataflow(w, d, (4, 4)) for d in ("os", "ws")])
    assert one.mux_inputs() == 0 and two.mux_inputs() > 0
    assert two.banks("X")[0] >= one.banks("X")[0]

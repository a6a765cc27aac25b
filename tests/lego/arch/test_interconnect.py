"""lego/arch/interconnect.py: the min-cost arborescence of FU links."""
import pytest

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape
from lego.arch import build_arch


@pytest.mark.parametrize("df,kind", [("os", "delay"), ("os-bcast", "direct")])
def test_arborescence_links(df, kind):
    w = builtin_workload("gemm", parse_shape("M=8,N=8,K=8", "gemm"))
    a = build_arch(w, [make_dataflow(w, df, (4, 4))])
    net = a.modes[0].nets["X"]
    # a spanning forest: every FU has exactly one source; one memory port per array row
    assert len(net.parent) == 16
    assert len(net.ports) == 4
    counts = net.links()
    assert counts[kind] == 12
    # tree property: following parents from any FU reaches memory without cycles
    for s in net.parent:
        seen = set()
        while s is not None:
            assert s not in seen
            seen.add(s)
            s = net.parent[s][0]

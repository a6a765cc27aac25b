"""lego/arch/graph.py: the ArchGraph of fused dataflows."""
import numpy as np

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape
from lego.arch import build_arch


def test_fusion_reports_mux_inputs():
    w = builtin_workload("gemm", parse_shape("M=8,N=8,K=8", "gemm"))
    one = build_arch(w, [make_dataflow(w, "os", (4, 4))])
    two = build_arch(w, [make_dataflow(w, d, (4, 4)) for d in ("os", "ws")])
    assert one.mux_inputs() == 0 and two.mux_inputs() > 0
    assert two.banks("X")[0] >= one.banks("X")[0]


import pytest  # noqa: E402

from lego.errors import LegoError  # noqa: E402


def _gemm():
    return builtin_workload("gemm", parse_shape("M=8,N=8,K=8", "gemm"))


def test_nets_ports_and_links_by_hand():
    w = _gemm()
    a = build_arch(w, [make_dataflow(w, "os", (2, 3))])
    assert a.P == (2, 3) and a.fus == [(r, c) for r in range(2) for c in range(3)]
    x, wn, y = (a.modes[0].nets[n] for n in ("X", "W", "Y"))
    assert x.role == "input" and y.role == "output" and x.tensor == "X"
    # X[i,k] flows along the rows (one port per row), W[k,j] down the columns, Y is held and written by every FU
    assert sorted(p.fu for p in x.ports) == [(0, 0), (1, 0)]
    assert sorted(p.fu for p in wn.ports) == [(0, 0), (0, 1), (0, 2)]
    assert len(y.ports) == 6
    assert x.links() == {"direct": 0, "delay": 4, "stationary": 0}
    assert wn.links() == {"direct": 0, "delay": 3, "stationary": 0}
    assert y.links() == {"direct": 0, "delay": 0, "stationary": 6}
    assert x.port_of((1, 0)).fu == (1, 0) and x.port_of((1, 1)) is None
    assert x.children((0, 0)) == [((0, 1), 1)] and x.children((0, 2)) == []
    assert a.link_counts() == {"direct": 0, "delay": 7, "stationary": 6}
    assert a.banks("X") == (2, x.layout.depth) and a.banks("W")[0] == 3
    assert x.M.tolist() == (np.array([[1, 0, 0], [0, 0, 1]]) @ a.modes[0].df.AT).tolist()
    assert x.N.tolist() == [[1, 0], [0, 0]] and x.k0.tolist() == [0, 0]


def test_bcast_links_are_direct_and_reduction_forest():
    w = _gemm()
    a = build_arch(w, [make_dataflow(w, "ws-bcast", (2, 2))])     # rows k, columns j: sums flow along rows
    y = a.modes[0].nets["Y"]
    assert y.links()["direct"] == 2 and len(y.ports) == 2
    assert sorted(p.fu for p in y.ports) == [(1, 0), (1, 1)]    # the last row of each chain
    held = a.modes[0].nets["W"]
    assert held.reuse.held and held.links()["stationary"] == 4


def test_fusion_counts_by_hand():
    w = _gemm()
    two = build_arch(w, [make_dataflow(w, d, (2, 2)) for d in ("os", "ws")])
    assert len(two.modes) == 2 and [m.index for m in two.modes] == [0, 1]
    # every FU input with a different source in the two modes costs one mux input per distinct source
    total = 0
    for t in w.tensors:
        for s in two.fus:
            srcs = {("mem", m.nets[t.name].port_of(s).bank) if m.nets[t.name].parent[s][0] is None
                    else ("fu",) + m.nets[t.name].parent[s] for m in two.modes}
            total += len(srcs) if len(srcs) > 1 else 0
    assert two.mux_inputs() == total > 0
    one = build_arch(w, [make_dataflow(w, "os", (2, 2))])
    assert two.link_counts() == {k: one.link_counts()[k] + build_arch(w, [make_dataflow(w, "ws", (2, 2))])
                                 .link_counts()[k] for k in ("direct", "delay", "stationary")}
    assert two.banks("Y") == tuple(max(m.nets["Y"].layout.__getattribute__(f) for m in two.modes)
                                   for f in ("nbanks", "depth"))


def test_build_arch_errors():
    w = _gemm()
    with pytest.raises(LegoError) as e:
        build_arch(w, [])
    assert str(e.value) == "--dataflow: at least one dataflow is needed"
    with pytest.raises(LegoError) as e:
        build_arch(w, [make_dataflow(w, "os", (2, 2)), make_dataflow(w, "ws", (2, 2)), make_dataflow(w, "os", (2, 2))])
    assert str(e.value) == "--dataflow: 'os' given twice"
    with pytest.raises(LegoError) as e:     # the repeated one is named, not merely the first
        build_arch(w, [make_dataflow(w, "ws", (2, 2)), make_dataflow(w, "os", (2, 2)), make_dataflow(w, "os", (2, 2))])
    assert str(e.value) == "--dataflow: 'os' given twice"
    with pytest.raises(LegoError) as e:
        build_arch(w, [make_dataflow(w, "os", (2, 2)), make_dataflow(w, "ws", (2, 4))])
    assert str(e.value) == "--dataflow: fused dataflows must use the same array shape"

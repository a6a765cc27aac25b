"""lego/prim/lower.py: the PrimGraph of an ArchGraph, counted and checked edge by edge against the arch."""
import pytest

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape
from lego.arch import build_arch
from lego.arch.flags import single_flush
from lego.prim import lower
from lego.prim.lower import bits_for, control_fields, frame_delay, shared_alpha


def _arch(dfs=("os",), shape="M=4,N=6,K=5", arr=(2, 3)):
    w = builtin_workload("gemm", parse_shape(shape, "gemm"))
    return build_arch(w, [make_dataflow(w, d, arr) for d in dfs])


def test_bits_for():
    assert [bits_for(n) for n in (0, 1, 2, 3, 4, 7, 8, 255, 256)] == [1, 1, 2, 2, 3, 3, 4, 8, 9]


def test_shared_alpha():
    class P:
        def __init__(self, a):
            self.alpha = a

    class Net:
        def __init__(self, *a):
            self.ports = [P(x) for x in a]
    assert shared_alpha(Net((1, 2), (1, 2))) == (1, 2)
    assert shared_alpha(Net((1, 2), (1, 3))) is None
    assert shared_alpha(Net((0, -1))) is None
    assert shared_alpha(Net((0, 0))) == (0, 0)


def test_control_fields_by_hand():
    a = _arch()
    df = a.modes[0].df                       # T = (2, 2, 5)
    f = dict(control_fields(a))
    assert list(f)[:6] == ["v", "m0_t0", "m0_t1", "m0_t2", "m0_chg_X", "m0_chg_W"]
    assert f["v"] == 1 and f["m0_t0"] == 1 and f["m0_t1"] == 1 and f["m0_t2"] == 3     # 0..1, 0..1, 0..4
    assert f["m0_first"] == f["m0_last"] == 1 and "m0_fresh" not in f
    assert "m0_fresh" in dict(control_fields(a, rmw=True))
    for t in ("X", "W", "Y"):
        al = shared_alpha(a.modes[0].nets[t])
        if al is not None:
            top = sum(x * (e - 1) for x, e in zip(al, df.T))
            assert f[f"m0_base_{t}"] == bits_for(top)
    two = dict(control_fields(_arch(("os", "ws"))))
    assert "m1_t0" in two and "m1_last" in two and two["v"] == 1


def test_frame_delay():
    a = _arch(("os", "os-bcast"))
    fd = frame_delay(a)
    assert fd(0, None) == 0 and fd(0, (1, 2)) == 3 and fd(1, (1, 2)) == 0


@pytest.mark.parametrize("dfs", [("os",), ("ws",), ("is-bcast",), ("os", "ws")])
def test_lower_structure(dfs):
    a = _arch(dfs)
    pg = lower(a)
    w = a.workload
    X, W = w.inputs
    nfu = len(a.fus)
    st = pg.stats()
    assert st["op"] == 2 * nfu and st["mul"] == nfu and st["add"] == nfu and st["ctl"] == 1
    assert st["ag"] == st["rd"] == a.banks("X")[0] + a.banks("W")[0]
    assert st["wr"] == st["wag"] == a.banks("Y")[0]
    assert st["acc"] == len({p.fu for m in a.modes for p in m.nets["Y"].ports})
    assert pg.modes == len(dfs) and pg.passes == ("lower",) and pg.acc_bits == 32
    assert pg.rmw == (not single_flush(a))
    n = pg.nodes
    assert n["ctl"].width == sum(b for _, b in control_fields(a, pg.rmw))
    s = a.fus[0]
    assert n[f"op:X:{s}"].width == X.vbits and n[f"mul:{s}"].width == X.vbits + W.vbits
    assert n[f"mul:{s}"].delay == 0.5 + (X.vbits + W.vbits) / 8
    assert n["rd:X:0"].lat == 1 and n["ag:X:0"].lat == 0 and n["ag:X:0"].delay == 1.5 and n["rd:X:0"].delay == 0.5
    assert n["ag:X:0"].width == bits_for(a.banks("X")[1] - 1) + 2
    assert n["wag:Y:0"].width == bits_for(a.banks("Y")[1] - 1) + 1 + pg.rmw and n["wr:Y:0"].width == 32
    # every edge's per-mode delay is the difference of the frames' control delays
    fd = frame_delay(a)
    for e in pg.edges:
        for m, d in e.delta.items():
            assert d == fd(m, n[e.dst].fu[m]) - fd(m, n[e.src].fu[m])
    # per mode: each FU's operands come from its parent in the arch (or its port's bank), partial sums likewise
    ins = {}
    for e in pg.edges:
        for m in e.delta:
            ins.setdefault((e.dst, m), set()).add(e.src)
    for md in a.modes:
        m = md.index
        for t in (X, W):
            net = md.nets[t.name]
            for fu in a.fus:
                src, _ = net.parent[fu]
                want = f"rd:{t.name}:{net.port_of(fu).bank}" if src is None else f"op:{t.name}:{src}"
                assert ins[(f"op:{t.name}:{fu}", m)] == {want}
            for p in net.ports:
                assert ins[(f"ag:{t.name}:{p.bank}", m)] == {"ctl"}
                assert ins[(f"rd:{t.name}:{p.bank}", m)] == {f"ag:{t.name}:{p.bank}"}
        ynet = md.nets["Y"]
        for fu in a.fus:
            assert ins[(f"mul:{fu}", m)] == {f"op:X:{fu}", f"op:W:{fu}", "ctl"}
            assert ins[(f"add:{fu}", m)] == {f"mul:{fu}"} | {f"add:{c}" for c, _ in ynet.children(fu)}
        for p in ynet.ports:
            assert ins[(f"acc:{p.fu}", m)] == {f"add:{p.fu}", "ctl"}
            assert ins[(f"wr:Y:{p.bank}", m)] == {f"acc:{p.fu}", f"wag:Y:{p.bank}"}
            assert ins[(f"wag:Y:{p.bank}", m)] == {"ctl"}
    # op muxes and adder-tree delays
    indeg = {}
    for e in pg.edges:
        indeg[e.dst] = indeg.get(e.dst, 0) + 1
    for nid, node in n.items():
        if node.kind == "op":
            assert node.delay == (0.5 if indeg[nid] > 1 else 0.0)
        if node.kind == "add":
            assert node.delay == float((indeg[nid] - 1).bit_length())


def test_lower_acc_bits():
    pg = lower(_arch(), acc_bits=20)
    assert pg.acc_bits == 20
    assert {n.width for n in pg.nodes.values() if n.kind in ("add", "acc", "wr")} == {20}


@pytest.mark.parametrize("dfs", [("os",), ("ws",), ("os", "ws")])
def test_lower_node_attrs_name_their_fu_and_tensor(dfs):
    # the emitters find an operand register's tensor and every node's FU through attrs: each op node of FU s
    # carries {"tensor": t, "fu": s}, each accumulator the FU of the output port it sits on
    a = _arch(dfs)
    pg = lower(a)
    for s in a.fus:
        for t in ("X", "W"):
            assert pg.nodes[f"op:{t}:{s}"].attrs == {"tensor": t, "fu": s}
    roots = {p.fu for m in a.modes for p in m.nets["Y"].ports}
    accs = {nid: n for nid, n in pg.nodes.items() if n.kind == "acc"}
    assert {n.attrs["fu"] for n in accs.values()} == roots
    for nid, n in accs.items():
        assert nid == f"acc:{n.attrs['fu']}"

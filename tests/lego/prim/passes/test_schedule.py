"""LP delay matching: integral, optimal against brute force on tiny graphs, never worse than naive."""
import itertools

import pytest

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape
from lego.arch import build_arch
from lego.prim import lower
from lego.prim.graph import Edge, Node, PrimGraph
from lego.prim.passes import extract_reduction_trees, schedule_asap, schedule_lp
from lego.prim.passes.schedule import timing_rows


def tiny(delays, widths, t_clk_chain=False):
    """ctl -> a -> c, ctl -> b -> c with structural delays on the ctl edges."""
    nodes = {"ctl": Node("ctl", "ctl", widths[0], {0: None}),
             "a": Node("a", "mul", widths[1], {0: (0,)}, delay=1.0),
             "b": Node("b", "mul", widths[2], {0: (1,)}, delay=1.0),
             "c": Node("c", "add", widths[3], {0: (1,)}, delay=1.0)}
    edges = (Edge("ctl", "a", "x", {0: delays[0]}), Edge("ctl", "b", "x", {0: delays[1]}),
             Edge("a", "c", "p", {0: delays[2]}), Edge("b", "c", "q", {0: 0}))
    return PrimGraph(nodes, edges, 1)


def brute(pg, horizon=6):
    best = None
    names = [n for n in pg.nodes if n != "ctl"]
    rows = timing_rows(pg)
    for vals in itertools.product(range(horizon), repeat=len(names)):
        sig = dict(zip(names, vals), ctl=0)
        if any(sig[e.dst] - pg.nodes[e.dst].lat < sig[e.src] for e in pg.edges):
            continue
        if any(sig[v] - pg.nodes[v].lat - sig[u] < 1 for u, v in rows):
            continue
        bits = pg.with_(sigma=sig, shared=True).register_bits()
        best = bits if best is None else min(best, bits)
    return best


@pytest.mark.parametrize("delays,widths", [((0, 1, 1), (4, 8, 8, 16)), ((2, 0, 0), (3, 8, 4, 9)),
                                           ((1, 3, 2), (5, 2, 7, 1))])
def test_lp_matches_brute_force(delays, widths):
    pg = tiny(delays, widths)
    out = schedule_lp(pg)
    assert all(isinstance(v, int) for v in out.sigma.values())
    assert out.register_bits() == brute(pg)


@pytest.mark.parametrize("df", ["os", "ws", "is", "ws-bcast", "os-bcast"])
def test_lp_integral_and_better_than_naive(df):
    w = builtin_workload("gemm", parse_shape("M=8,N=8,K=8", "gemm"))
    pg = lower(build_arch(w, [make_dataflow(w, df, (4, 4))]))
    opt = schedule_lp(extract_reduction_trees(pg))
    naive = schedule_asap(pg)
    assert opt.lp["objective_bits"] == opt.register_bits()
    assert opt.register_bits() <= naive.register_bits()
    # every timing row holds in the optimized schedule
    for u, v in timing_rows(opt):
        assert opt.sigma[v] - opt.nodes[v].lat - opt.sigma[u] >= 1


def test_reduction_tree_depth():
    w = builtin_workload("gemm", parse_shape("M=8,N=8,K=8", "gemm"))
    pg = lower(build_arch(w, [make_dataflow(w, "ws-bcast", (8, 2))]))
    tree = extract_reduction_trees(pg)
    assert "reduction-trees" in tree.passes
    assert sum(1 for n in tree.nodes if "/t" in n) > 0
    assert schedule_lp(tree).register_bits() <= schedule_lp(pg).register_bits()

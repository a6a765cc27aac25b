"""lego/prim/passes/reduction.py: δ = 0 adder chains become balanced trees computing the same sum."""
import math

import pytest

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape
from lego.arch import build_arch
from lego.prim import lower
from lego.prim.graph import Edge, Node, PrimGraph
from lego.prim.passes import extract_reduction_trees


def chain(n, deltas=None):
    """Leaf terms m0..m{n-1}; adders a0 <- a1 <- ... (a_{k+1} feeds a_k), a0 writes w."""
    deltas = deltas or [0] * (n - 1)
    nodes = {f"m{k}": Node(f"m{k}", "mul", 8, {0: (k,)}) for k in range(n)}
    nodes.update({f"a{k}": Node(f"a{k}", "add", 16, {0: (k,)}, attrs={"fu": (k,)}) for k in range(n)})
    nodes["w"] = Node("w", "wr", 16, {0: (0,)})
    edges = [Edge(f"m{k}", f"a{k}", "p", {0: 0}) for k in range(n)]
    edges += [Edge(f"a{k + 1}", f"a{k}", f"add:{k + 1}", {0: deltas[k]}) for k in range(n - 1)]
    edges.append(Edge("a0", "w", "in", {0: 0}))
    return PrimGraph(nodes, tuple(edges), 1)


def _terms(pg, node, memo=None):
    """The multiset of leaf (mul) nodes summed into ``node``."""
    ins = [e.src for e in pg.edges if e.dst == node]
    out = []
    for s in ins:
        out += [s] if pg.nodes[s].kind == "mul" else _terms(pg, s)
    return out


def _depth(pg, node):
    ins = [e.src for e in pg.edges if e.dst == node and pg.nodes[e.src].kind == "add"]
    return 1 + max((_depth(pg, s) for s in ins), default=0)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 9])
def test_chain_becomes_balanced_tree(n):
    pg = chain(n)
    t = extract_reduction_trees(pg)
    assert t.passes == ("reduction-trees",)
    assert sorted(_terms(t, "a0")) == sorted(f"m{k}" for k in range(n))     # the same sum, each term once
    assert _depth(t, "a0") == max(1, math.ceil(math.log2(n)))
    adds = [v for v in t.nodes.values() if v.kind == "add"]
    assert len(adds) == max(1, n - 1)              # a binary tree over n terms: n - 1 two-input adders
    assert all(sum(1 for e in t.edges if e.dst == a.id) == 2 for a in adds)
    assert all(a.width == 16 and a.fu == {0: (0,)} for a in adds)
    assert all(f"a{k}" not in t.nodes for k in range(1, n))
    assert t.nodes["a0"].delay == 1.0             # the root adds the last two partial sums
    assert t.nodes["a0"].attrs == {"fu": (0,)}
    assert [e for e in t.edges if e.src == "a0"] == [Edge("a0", "w", "in", {0: 0})]
    # slots of the tree nodes are in0/in1
    assert {e.slot for e in t.edges if e.dst.startswith("a0")} == {"in0", "in1"}


def test_tree_keeps_leaf_delays():
    pg = chain(3, [0, 0])
    pg = pg.with_(edges=tuple(Edge(e.src, e.dst, e.slot, {0: 2}) if e.src == "m2" else e for e in pg.edges))
    t = extract_reduction_trees(pg)
    assert [e.delta for e in t.edges if e.src == "m2"] == [{0: 2}]


def test_delayed_links_are_not_trees():
    pg = chain(4, [1, 1, 1])                      # systolic chain: nothing to rewrite
    t = extract_reduction_trees(pg)
    assert t.passes == ("reduction-trees",) and t.nodes == pg.nodes and t.edges == pg.edges
    mixed = chain(4, [0, 1, 0])                   # δ = 0 pairs a0 <- a1 and a2 <- a3, joined by a δ = 1 link
    t = extract_reduction_trees(mixed)
    assert sorted(_terms(t, "a0")) == ["m0", "m1", "m2", "m3"]
    assert "a1" not in t.nodes and "a3" not in t.nodes and "a2" in t.nodes


def test_fused_graphs_are_skipped():
    pg = chain(4).with_(modes=2)
    t = extract_reduction_trees(pg)
    assert t.passes == ("reduction-trees(skipped: fused)",) and t.edges == pg.edges


def test_on_a_broadcast_array():
    w = builtin_workload("gemm", parse_shape("M=4,N=4,K=8", "gemm"))
    pg = lower(build_arch(w, [make_dataflow(w, "ws-bcast", (8, 1))]))      # one column of 8 chained adders
    t = extract_reduction_trees(pg)
    roots = [n for n in t.nodes if n.startswith("add:") and "/" not in n]
    assert len(roots) == 1
    assert sorted(_terms(t, roots[0])) == sorted(n for n in pg.nodes if n.startswith("mul:"))
    assert _depth(t, roots[0]) == 3

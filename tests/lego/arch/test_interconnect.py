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


from lego.arch.interconnect import (MEM, PORT_COST, arborescence, arborescence_nx, candidate_edges,  # noqa: E402
                                    input_forest, output_forest)

FUS = [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_candidate_edges_by_hand():
    # systolic c = (1, 1), kernel along the columns: each row passes right with one cycle of delay
    assert sorted(candidate_edges(FUS, (2, 2), (1, 1), [(0, 1)])) == [((0, 0), (0, 1), 1), ((1, 0), (1, 1), 1)]
    # c = (1, -1): moving right is -1 cycle, so only the reverse direction (delay 1) is a link
    assert sorted(candidate_edges(FUS, (2, 2), (1, -1), [(0, 1)])) == [((0, 1), (0, 0), 1), ((1, 1), (1, 0), 1)]
    # broadcast c = (0, 0): zero-delay links point to the lexicographically larger FU only
    assert sorted(candidate_edges(FUS, (2, 2), (0, 0), [(1, 0)])) == [((0, 0), (1, 0), 0), ((0, 1), (1, 1), 0)]
    # a diagonal kernel vector and a delay of 2
    assert candidate_edges(FUS, (2, 2), (1, 1), [(1, 1)]) == [((0, 0), (1, 1), 2)]
    assert candidate_edges(FUS, (2, 2), (1, 1), [(-1, -1)]) == [((0, 0), (1, 1), 2)]
    # two basis vectors, with a negative-delay direction skipped each time
    e = candidate_edges(FUS, (2, 2), (2, 1), [(1, 0), (0, 1)])
    assert sorted(e) == [((0, 0), (0, 1), 1), ((0, 0), (1, 0), 2), ((0, 1), (1, 1), 2), ((1, 0), (1, 1), 1)]
    assert candidate_edges(FUS, (2, 2), (1, 1), []) == []


def test_arborescence_by_hand():
    # no links: every FU reads memory
    assert arborescence(FUS, [], 8) == {s: (None, 0) for s in FUS}
    # a chain of delay-1 links along each row: one memory port per row, the rest linked
    par = input_forest(FUS, (2, 2), (1, 1), [(0, 1)], 8)
    assert par == {(0, 0): (None, 0), (0, 1): ((0, 0), 1), (1, 0): (None, 0), (1, 1): ((1, 0), 1)}
    # the cheaper of two links wins: a direct one (cost 1) over a delay-3 one (cost 3 * 8 + 1)
    par = arborescence([(0,), (1,), (2,)], [((0,), (2,), 3), ((1,), (2,), 0), ((0,), (1,), 1)], 8)
    assert par == {(0,): (None, 0), (1,): ((0,), 1), (2,): ((1,), 0)}
    # the same pair given twice keeps its cheaper delay
    par = arborescence([(0,), (1,)], [((0,), (1,), 2), ((0,), (1,), 1)], 4)
    assert par[(1,)] == ((0,), 1)
    # a link that costs more than a memory port is not taken
    par = arborescence([(0,), (1,)], [((0,), (1,), PORT_COST)], 4)
    assert par[(1,)] == (None, 0)
    assert MEM == "MEM" and PORT_COST == 10_000


def test_output_forest_reverses_the_links():
    # systolic: partial sums of (0, j) flow to (1, j) one cycle later; row 1 writes memory
    par = output_forest(FUS, (2, 2), (1, 1), [(1, 0)], 32)
    assert par == {(1, 0): (None, 0), (1, 1): (None, 0), (0, 0): ((1, 0), 1), (0, 1): ((1, 1), 1)}
    # broadcast: the zero-delay links point to the larger FU, so the adder chain ends in the last row
    par = output_forest(FUS, (2, 2), (0, 0), [(1, 0)], 32)
    assert par == {(1, 0): (None, 0), (1, 1): (None, 0), (0, 0): ((1, 0), 0), (0, 1): ((1, 1), 0)}


def test_cheapest_incoming_link_equals_edmonds_on_random_candidate_graphs():
    """``arborescence`` (each FU's cheapest link: the candidate graph is acyclic) equals networkx's Edmonds
    algorithm, ties included, on random grids, kernels and schedules, shuffled FU orders and both link
    directions (input and output forests)."""
    import itertools
    import random
    rng = random.Random(7)
    taken = 0
    for trial in range(200):
        dims = rng.choice([1, 2, 3])
        fus = list(itertools.product(*[range(rng.randint(1, 5)) for _ in range(dims)]))
        if trial % 2:
            rng.shuffle(fus)
        kernel = [v for v in (tuple(rng.randint(-1, 1) for _ in range(dims)) for _ in range(3)) if any(v)]
        c = [rng.randint(0, 2) for _ in range(dims)]
        e = candidate_edges(fus, None, c, kernel or [(1,) + (0,) * (dims - 1)])
        bits = rng.choice([1, 8, 32])
        for links in (e, [(b, a, d) for a, b, d in e]):
            par = arborescence(fus, links, bits)
            assert par == arborescence_nx(fus, links, bits), (fus, links, bits)
            taken += sum(p is not None for p, _ in par.values())
    assert taken > 1000                        # links were taken, not only memory ports


@pytest.mark.parametrize("df", [("ws",), ("os",), ("is",), ("ws", "os"), ("os", "is", "ws")])
def test_design_forests_equal_edmonds(df, monkeypatch):
    """Every forest of real designs (gemm 4x4 and 3x5) equals networkx's."""
    import lego.arch.interconnect as I
    seen = []

    def both(fus, links, bits):
        a = arborescence(fus, links, bits)
        assert a == arborescence_nx(fus, links, bits)
        seen.append(a)
        return a
    monkeypatch.setattr(I, "arborescence", both)
    w = builtin_workload("gemm", parse_shape("M=8,N=8,K=8", "gemm"))
    for arr in ((4, 4), (3, 5)):
        build_arch(w, [make_dataflow(w, d, arr) for d in df])
    assert len(seen) >= 3 * 2 * len(df) and any(p is not None for a in seen for p, _ in a.values())

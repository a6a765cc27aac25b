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


from lego.arch.interconnect import (MEM, PORT_COST, arborescence, candidate_edges, input_forest,  # noqa: E402
                                    output_forest)

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

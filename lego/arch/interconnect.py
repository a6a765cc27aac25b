"""FU interconnect: candidate reuse links → minimum-cost spanning arborescence rooted at memory.

Inputs: an edge ``s' → s`` carries the operand with delay ``δ = c·(s − s')`` (must be ≥ 0).
Outputs: partial sums flow child → parent with ``δ = c·(parent − child)``; the arborescence is built
on the reversed graph, its MEM children are the FUs that write memory (reduction roots).
"""
from __future__ import annotations

import networkx as nx
import numpy as np

PORT_COST = 10_000   # a memory/DDS port costs far more than a wire or a short shift register
MEM = "MEM"


def candidate_edges(fus, P, c, kernel) -> list[tuple[tuple, tuple, int]]:
    """(src, dst, delay) for every pair of FUs related by ± a spatial-kernel basis vector."""
    fuset = set(fus)
    out = []
    for v in kernel:
        for sign in (1, -1):
            vv = tuple(sign * x for x in v)
            d = int(np.dot(c, vv))
            if d < 0:
                continue
            for s in fus:
                t = tuple(a + b for a, b in zip(s, vv))
                # zero-delay (broadcast) links point to the lexicographically larger FU in every mode,
                # so fusing dataflows never closes a combinational loop through the operand muxes
                if t in fuset and (d > 0 or t > s):
                    out.append((s, t, d))
    return out


def arborescence(fus, edges, bits: int) -> dict[tuple, tuple[tuple | None, int]]:
    """Return parent map: fu -> (source fu or None for memory, delay).

    The candidate graph is acyclic: a link's delay is ``c·(t - s)``, which sums to zero around a cycle, and
    every link has δ >= 0 with the zero-delay ones pointing to the lexicographically larger FU. So the
    minimum-cost spanning arborescence rooted at memory is every FU's cheapest incoming link (Edmonds'
    algorithm stops after its first step). Ties go as ``nx.minimum_spanning_arborescence`` breaks them
    (``arborescence_nx``, the tests' oracle): memory first, then the source earliest in ``fus``."""
    order = {s: k for k, s in enumerate(fus)}
    link: dict[tuple, dict[tuple, tuple[int, int]]] = {}
    for a, b, d in edges:                      # one link per (a, b): the cheapest, as the DiGraph keeps
        w = d * bits + 1
        have = link.setdefault(b, {}).get(a)
        if have is None or have[0] > w:
            link[b][a] = (w, d)
    parent: dict[tuple, tuple[tuple | None, int]] = {}
    for s in fus:
        best, src, dly = PORT_COST, None, 0
        for a in sorted(link.get(s, {}), key=order.__getitem__):
            w, d = link[s][a]
            if w < best:
                best, src, dly = w, a, d
        parent[s] = (src, dly)
    return parent


def arborescence_nx(fus, edges, bits: int) -> dict[tuple, tuple[tuple | None, int]]:
    """``arborescence`` by networkx's Edmonds algorithm (the oracle of tests/lego/arch/test_interconnect.py)."""
    g = nx.DiGraph()
    g.add_node(MEM)
    for s in fus:
        g.add_edge(MEM, s, weight=PORT_COST, delay=0)
    for a, b, d in edges:
        w = d * bits + 1
        if not g.has_edge(a, b) or g[a][b]["weight"] > w:
            g.add_edge(a, b, weight=w, delay=d)
    tree = nx.minimum_spanning_arborescence(g, attr="weight", preserve_attrs=True)
    parent: dict[tuple, tuple[tuple | None, int]] = {}
    for a, b, data in tree.edges(data=True):
        parent[b] = (None if a == MEM else a, int(data["delay"]))
    return parent


def input_forest(fus, P, c, kernel, bits):
    return arborescence(fus, candidate_edges(fus, P, c, kernel), bits)


def output_forest(fus, P, c, kernel, bits):
    """Reduction forest: parent map child -> (parent fu or None = writes memory, delay)."""
    # reversed graph: arborescence edge a -> b means b sends its partial sum to a; δ = c·(a - b) ≥ 0
    rev = [(b, a, d) for (a, b, d) in candidate_edges(fus, P, c, kernel)]
    return arborescence(fus, rev, bits)

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
    """Return parent map: fu -> (source fu or None for memory, delay)."""
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

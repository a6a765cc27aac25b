"""Reduction-tree extraction: δ = 0 partial-sum chains (broadcast arrays) become balanced adder trees.

A chain of n adders across FUs has depth n; the balanced tree has depth ⌈log2 n⌉, so delay matching
needs fewer pipeline registers to meet the clock.  Integer adds are associative, so this is exact.
Only single-mode designs are rewritten (fused designs keep per-mode gated chains).
"""
from __future__ import annotations

from ..graph import Edge, Node, PrimGraph


def extract_reduction_trees(pg: PrimGraph) -> PrimGraph:
    if pg.modes != 1:
        return pg.with_(passes=pg.passes + ("reduction-trees(skipped: fused)",))
    adds = {n for n, v in pg.nodes.items() if v.kind == "add"}
    zero_in: dict[str, list[str]] = {}      # parent add -> children adds linked with δ = 0
    has_zero_parent: set[str] = set()
    for e in pg.edges:
        if e.src in adds and e.dst in adds and e.delta[0] == 0:
            zero_in.setdefault(e.dst, []).append(e.src)
            has_zero_parent.add(e.src)
    roots = [a for a in zero_in if a not in has_zero_parent]
    if not roots:
        return pg.with_(passes=pg.passes + ("reduction-trees",))
    nodes = dict(pg.nodes)
    removed: set[str] = set()
    new_edges: list[Edge] = []
    for r in sorted(roots):
        members, stack = [], [r]
        while stack:
            a = stack.pop()
            members.append(a)
            stack.extend(zero_in.get(a, []))
        mset = set(members)
        # leaf terms: every input edge of a member that does not come from another member
        terms = [e for e in pg.edges if e.dst in mset and e.src not in mset]
        removed |= mset - {r}
        width = pg.nodes[r].width
        fu = pg.nodes[r].fu
        level = [(e.src, e.delta[0], e.slot) for e in sorted(terms, key=lambda e: (e.src, e.slot))]
        k = 0
        while len(level) > 2:
            nxt = []
            for i in range(0, len(level) - 1, 2):
                nid = f"{r}/t{k}"
                k += 1
                nodes[nid] = Node(nid, "add", width, dict(fu), 0, 1.0, {"fu": pg.nodes[r].attrs["fu"]})
                for j, (src, d, _) in enumerate(level[i:i + 2]):
                    new_edges.append(Edge(src, nid, f"in{j}", {0: d}))
                nxt.append((nid, 0, nid))
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        nodes[r] = Node(r, "add", width, fu, 0, float(len(level) > 1), pg.nodes[r].attrs)
        for j, (src, d, slot) in enumerate(level):
            new_edges.append(Edge(src, r, f"in{j}", {0: d}))
    rootset = set(roots)
    keep = [e for e in pg.edges if e.dst not in removed and e.src not in removed and e.dst not in rootset]
    for nid in removed:
        nodes.pop(nid)
    # edges leaving removed members only went to other members (δ = 0 chain), so nothing dangles
    return pg.with_(nodes=nodes, edges=tuple(keep + new_edges), passes=pg.passes + ("reduction-trees",))

"""Lowering pass: ArchGraph → PrimGraph (one primitive network shared by all fused modes)."""
from __future__ import annotations

from math import ceil, log2

from ..arch.flags import fresh_positions, single_flush
from ..arch.graph import ArchGraph
from .graph import Edge, Node, PrimGraph


def bits_for(n: int) -> int:
    """Bits to hold values 0..n (at least 1)."""
    return max(1, int(n).bit_length())


def shared_alpha(net) -> tuple[int, ...] | None:
    """The temporal address coefficients α when every port of the tensor shares them (true for cyclic
    and replicated banks) and they are non-negative: the controller then computes α·t once."""
    alphas = {p.alpha for p in net.ports}
    if len(alphas) != 1:
        return None
    a = next(iter(alphas))
    return a if all(x >= 0 for x in a) else None


def control_fields(arch: ArchGraph, rmw: bool = False) -> list[tuple[str, int]]:
    """The control word broadcast along the array (shared by all FUs, delayed by c·s): step counters,
    change/first/last flags, the fresh flag of read-modify-write designs (a flush that is the first write
    of its element: ``arch.flags.fresh_positions``), and one shared base address α·t per tensor (LEGO's
    shared control)."""
    fields = [("v", 1)]
    for m in arch.modes:
        for k, e in enumerate(m.df.T):
            fields.append((f"m{m.index}_t{k}", bits_for(e - 1)))
        for t in arch.workload.inputs:
            fields.append((f"m{m.index}_chg_{t.name}", 1))
        fields += [(f"m{m.index}_first", 1), (f"m{m.index}_last", 1)]
        if rmw:
            fields.append((f"m{m.index}_fresh", 1))
        for t in arch.workload.tensors:
            a = shared_alpha(m.nets[t.name])
            if a is not None:
                top = sum(x * (e - 1) for x, e in zip(a, m.df.T))
                fields.append((f"m{m.index}_base_{t.name}", bits_for(top)))
    return fields


def frame_delay(arch: ArchGraph):
    def fd(m: int, fu) -> int:
        return 0 if fu is None else arch.modes[m].df.ctl_delay(fu)
    return fd


def lower(arch: ArchGraph, acc_bits: int | None = None, force_rmw: bool = False) -> PrimGraph:
    """``acc_bits``: width of the adders, accumulators and output words (default: the output dtype's).
    ``force_rmw``: read-modify-write output ports even where every element is written once per run (the
    programmable array accumulates across commands, lego/prog)."""
    w = arch.workload
    fd = frame_delay(arch)
    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str, str], dict[int, int]] = {}
    allm = range(len(arch.modes))
    rmw = force_rmw or not single_flush(arch)
    fresh = {m.index: fresh_positions(arch, m.index) for m in arch.modes} if rmw else {}
    cw = sum(b for _, b in control_fields(arch, rmw))
    nodes["ctl"] = Node("ctl", "ctl", cw, {m: None for m in allm})

    def node_fu(nid: str, m: int):
        return nodes[nid].fu[m]

    def edge(src: str, dst: str, slot: str, m: int):
        d = fd(m, node_fu(dst, m)) - fd(m, node_fu(src, m))
        edges.setdefault((src, dst, slot), {})[m] = d

    X, W = w.inputs
    Y = w.output
    acc_bits = acc_bits or Y.bits
    # --- per-FU datapath nodes
    for s in arch.fus:
        for t in (X, W):
            nodes[f"op:{t.name}:{s}"] = Node(f"op:{t.name}:{s}", "op", t.vbits, {m: s for m in allm},
                                             attrs={"tensor": t.name, "fu": s})
        pw = X.vbits + W.vbits
        nodes[f"mul:{s}"] = Node(f"mul:{s}", "mul", pw, {m: s for m in allm}, delay=0.5 + pw / 8,
                                 attrs={"fu": s})
        nodes[f"add:{s}"] = Node(f"add:{s}", "add", acc_bits, {m: s for m in allm}, attrs={"fu": s})
    # --- memory ports (physical banks shared across modes)
    for t in (X, W):
        for m in arch.modes:
            for p in m.nets[t.name].ports:
                for kind in ("ag", "rd"):
                    nid = f"{kind}:{t.name}:{p.bank}"
                    if nid not in nodes:
                        abits = bits_for(arch.banks(t.name)[1] - 1) + 2   # address, valid, enable
                        nodes[nid] = Node(nid, kind, t.vbits if kind == "rd" else abits, {}, lat=int(kind == "rd"),
                                          delay=1.5 if kind == "ag" else 0.5,
                                          attrs={"tensor": t.name, "bank": p.bank, "ports": {}})
                    nodes[nid].fu[m.index] = p.fu
                    nodes[nid].attrs["ports"][m.index] = p
    for m in arch.modes:
        roots = [p.fu for p in m.nets[Y.name].ports]
        for s in roots:
            nid = f"acc:{s}"
            if nid not in nodes:
                nodes[nid] = Node(nid, "acc", acc_bits, {}, delay=1.0, attrs={"fu": s})
            nodes[nid].fu[m.index] = s
        for p in m.nets[Y.name].ports:
            for kind in ("wag", "wr"):
                nid = f"{kind}:{Y.name}:{p.bank}"
                if nid not in nodes:
                    abits = bits_for(arch.banks(Y.name)[1] - 1) + 1 + rmw   # address, enable[, fresh]
                    nodes[nid] = Node(nid, kind, abits if kind == "wag" else acc_bits, {}, delay=1.5,
                                      attrs={"tensor": Y.name, "bank": p.bank, "ports": {}})
                nodes[nid].fu[m.index] = p.fu
                nodes[nid].attrs["ports"][m.index] = p
    # --- edges, mode by mode
    for m in arch.modes:
        mi = m.index
        for t in (X, W):
            net = m.nets[t.name]
            for p in net.ports:
                edge("ctl", f"ag:{t.name}:{p.bank}", "ctl", mi)
                edge(f"ag:{t.name}:{p.bank}", f"rd:{t.name}:{p.bank}", "a", mi)
            for s in arch.fus:
                src, _ = net.parent[s]
                sid = f"rd:{t.name}:{net.port_of(s).bank}" if src is None else f"op:{t.name}:{src}"
                edge(sid, f"op:{t.name}:{s}", sid, mi)
        ynet = m.nets[Y.name]
        for s in arch.fus:
            edge(f"op:{X.name}:{s}", f"mul:{s}", "a", mi)
            edge(f"op:{W.name}:{s}", f"mul:{s}", "b", mi)
            edge("ctl", f"mul:{s}", "ctl", mi)
            edge(f"mul:{s}", f"add:{s}", "p", mi)
            for c, _ in ynet.children(s):
                edge(f"add:{c}", f"add:{s}", f"add:{c}", mi)
        for p in ynet.ports:
            edge(f"add:{p.fu}", f"acc:{p.fu}", "in", mi)
            edge("ctl", f"acc:{p.fu}", "ctl", mi)
            edge("ctl", f"wag:{Y.name}:{p.bank}", "ctl", mi)
            edge(f"acc:{p.fu}", f"wr:{Y.name}:{p.bank}", f"acc:{p.fu}", mi)
            edge(f"wag:{Y.name}:{p.bank}", f"wr:{Y.name}:{p.bank}", "a", mi)
    # op nodes with several sources become muxes; n-input adders cost ceil(log2 n) units
    fin: dict[str, Node] = {}
    indeg: dict[str, int] = {}
    for (src, dst, slot) in edges:
        indeg[dst] = indeg.get(dst, 0) + 1
    for nid, n in nodes.items():
        if n.kind == "op" and indeg.get(nid, 0) > 1:
            n = Node(n.id, n.kind, n.width, n.fu, n.lat, 0.5, n.attrs)
        elif n.kind == "add":
            n = Node(n.id, n.kind, n.width, n.fu, n.lat, float(ceil(log2(max(1, indeg.get(nid, 1))))), n.attrs)
        fin[nid] = n
    es = tuple(Edge(s, d, slot, dict(sorted(delta.items()))) for (s, d, slot), delta in edges.items())
    return PrimGraph(fin, es, len(arch.modes), passes=("lower",), acc_bits=acc_bits, fresh=fresh)

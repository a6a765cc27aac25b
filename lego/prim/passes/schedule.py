"""Delay matching: choose σ (the stage of every primitive) so that every join sees aligned data,
every combinational path fits the clock (SDC chaining rows), and register bits are minimal.

* ``schedule_lp``: LEGO's LP, solved with PuLP (HiGHS when available, else CBC). Rows are difference
  constraints; fan-out sharing uses the mirror variable μ(u) = m(u) + σ(u) (Leiserson–Saxe), so the
  constraint matrix is totally unimodular and the vertex optimum is integral — checked after solving.
* ``schedule_asap``: the naive baseline (``--no-opt``): as-soon-as-possible chaining with one private
  shift register per delayed edge (no fan-out sharing, no rewiring).
"""
from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict

import networkx as nx
import pulp

from ...errors import LegoError
from ..graph import T_CLK, PrimGraph


def _order(pg: PrimGraph) -> list[str]:
    g = nx.DiGraph()
    g.add_nodes_from(pg.nodes)
    g.add_edges_from((e.src, e.dst) for e in pg.edges)
    try:
        return list(nx.lexicographical_topological_sort(g))
    except nx.NetworkXUnfeasible:
        cyc = nx.find_cycle(g)
        raise LegoError(f"--dataflow: the fused dataflows close a loop through {cyc[0][0]} -> {cyc[0][1]} "
                        f"(opposite link directions); fuse them in separate designs") from None


def timing_rows(pg: PrimGraph, t_clk: float = T_CLK) -> set[tuple[str, str]]:
    """Pairs (u, v) joined by a δ=0 combinational path longer than the clock: σ(v)−lat(v)−σ(u) ≥ 1.
    A read-modify-write port reads the old word one cycle before it writes (a synchronous read, as block
    RAM has), so its address arrives at least one cycle early: (wag, wr) is a row of every such design."""
    succ: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for e in pg.edges:
        for m, d in e.delta.items():
            if d == 0:
                succ[m][e.src].append(e.dst)
    rows: set[tuple[str, str]] = set()
    if pg.rmw:
        rows |= {(e.src, e.dst) for e in pg.edges if e.slot == "a" and pg.nodes[e.dst].kind == "wr"}
    for m, sm in succ.items():
        for u, n in pg.nodes.items():
            start = 0.0 if n.lat else n.delay
            stack = [(u, start)]
            seen: dict[str, float] = {}
            while stack:
                x, acc = stack.pop()
                for v in sm.get(x, ()):
                    nv = pg.nodes[v]
                    a = acc + nv.delay
                    if a > t_clk:
                        rows.add((u, v))
                        continue
                    if nv.lat or seen.get(v, -1.0) >= a:
                        continue
                    seen[v] = a
                    stack.append((v, a))
    return rows


def schedule_asap(pg: PrimGraph, t_clk: float = T_CLK) -> PrimGraph:
    rows = timing_rows(pg, t_clk)
    need = defaultdict(list)
    for u, v in rows:
        need[v].append(u)
    ins = defaultdict(list)
    for e in pg.edges:
        ins[e.dst].append(e.src)
    sigma: dict[str, int] = {}
    for v in _order(pg):
        n = pg.nodes[v]
        s = 0
        for u in ins[v]:
            s = max(s, sigma[u] + n.lat)
        for u in need[v]:
            s = max(s, sigma[u] + n.lat + 1)
        sigma[v] = s
    return pg.with_(sigma=sigma, shared=False, passes=pg.passes + ("asap",))


LP_TIME_LIMIT_S = 120


def _solver():
    try:
        s = pulp.HiGHS(msg=False, timeLimit=LP_TIME_LIMIT_S)
        if s.available():
            return s
    except Exception:  # pragma: no cover - highspy missing
        pass
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=LP_TIME_LIMIT_S)


@contextlib.contextmanager
def _quiet_stdout():
    """HiGHS prints a banner on fd 1 even with msg=False; `lego ... --json` must print JSON only."""
    import sys
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as dn:
            os.dup2(dn.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def schedule_lp(pg: PrimGraph, t_clk: float = T_CLK) -> PrimGraph:
    t0 = time.perf_counter()
    rows = timing_rows(pg, t_clk)
    prob = pulp.LpProblem("delay_matching", pulp.LpMinimize)
    horizon = 4 * len(pg.nodes) + 16
    var = getattr(prob, "add_variable", None) or pulp.LpVariable
    sig = {v: var(f"s{i}", 0, horizon) for i, v in enumerate(sorted(pg.nodes))}
    drivers = sorted({e.src for e in pg.edges})
    mu = {u: var(f"m{i}", 0, 2 * horizon) for i, u in enumerate(drivers)}
    ncons = 0
    prob += sig["ctl"] == 0
    ncons += 1
    lat = {v: n.lat for v, n in pg.nodes.items()}
    seen = set()
    for e in pg.edges:
        if (e.src, e.dst) not in seen:
            seen.add((e.src, e.dst))
            prob += sig[e.dst] - sig[e.src] >= lat[e.dst]
            ncons += 1
        for d in set(e.delta.values()):
            prob += mu[e.src] - sig[e.dst] >= d - lat[e.dst]
            ncons += 1
    for u in drivers:
        prob += mu[u] - sig[u] >= 0
        ncons += 1
    for u, v in sorted(rows):
        prob += sig[v] - sig[u] >= lat[v] + 1
        ncons += 1
    eps = 1e-3
    prob += pulp.lpSum(pg.nodes[u].width * (mu[u] - sig[u]) for u in drivers) + eps * pulp.lpSum(sig.values())
    with _quiet_stdout():
        status = prob.solve(_solver())
    if status != pulp.LpStatusOptimal or prob.sol_status != pulp.LpSolutionOptimal:
        why = pulp.LpSolution.get(prob.sol_status, str(prob.sol_status))
        hint = (f" within the solver's {LP_TIME_LIMIT_S} s limit ({len(sig) + len(mu):,} variables)"
                if prob.sol_status == pulp.LpSolutionIntegerFeasible or status == pulp.LpStatusNotSolved else "")
        raise LegoError(f"lp: delay-matching LP not solved to optimality{hint} "
                        f"(status {pulp.LpStatus[status]}, solution {why})")
    sigma = {}
    for v, var in sig.items():
        x = var.value()
        if x is None or abs(x - round(x)) > 1e-6:
            raise LegoError(f"lp: non-integral solution σ({v}) = {x} (constraint matrix not TU?)")
        sigma[v] = int(round(x))
    for u, var in mu.items():
        x = var.value()
        if abs(x - round(x)) > 1e-6:
            raise LegoError(f"lp: non-integral fan-out variable for {u}: {x}")
    lp = {"variables": len(sig) + len(mu), "constraints": ncons, "timing_rows": len(rows),
          "solve_seconds": round(time.perf_counter() - t0, 4), "solver": type(_solver()).__name__,
          "objective_bits": int(round(sum(pg.nodes[u].width * (mu[u].value() - sigma[u]) for u in drivers)))}
    return pg.with_(sigma=sigma, shared=True, passes=pg.passes + ("lp",), lp=lp)

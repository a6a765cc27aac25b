"""Delay matching: choose σ (the stage of every primitive) so that every join sees aligned data,
every combinational path fits the clock (SDC chaining rows), and register bits are minimal.

* ``schedule_lp``: LEGO's LP, a sparse model solved by HiGHS (highspy) directly; ``schedule_lp_pulp``
  is the same LP through PuLP (HiGHS or CBC), the tests' oracle. Rows are difference constraints;
  fan-out sharing uses the mirror variable μ(u) = m(u) + σ(u) (Leiserson–Saxe), so the constraint matrix
  is totally unimodular and the vertex optimum is integral — checked after solving.
* ``schedule_asap``: the naive baseline (``--no-opt``): as-soon-as-possible chaining with one private
  shift register per delayed edge (no fan-out sharing, no rewiring).
"""
from __future__ import annotations

import contextlib
import math
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


# The solver's wall-clock limit. A generous default: the limit is wall time, so a loaded machine must not turn a
# slow solve into a failed ``lego gen`` (the PointAcc server preset's 64x64 matrix unit: 28,866 columns, 212,161
# rows, 63-75 s on a quiet 2-core box, and past 120 s on a busy one). ``LEGO_LP_TIME_LIMIT_S`` overrides it.
LP_TIME_LIMIT_S = 900
LP_TIME_LIMIT_ENV = "LEGO_LP_TIME_LIMIT_S"
# HiGHS dual simplex pricing: Dantzig (0). The delay-matching LP is a large, highly degenerate network LP on
# which steepest-edge pricing (HiGHS's default) spends most of its time on edge weights: Dantzig solves the
# programmable 128x128 array's LP (~230k rows) in 10.5 s instead of 67 s, to the same optimum.
HIGHS_OPTIONS = {"simplex_dual_edge_weight_strategy": 0}


def lp_time_limit() -> float:
    """The solver's limit in seconds: ``LEGO_LP_TIME_LIMIT_S`` from the environment, else ``LP_TIME_LIMIT_S``."""
    text = os.environ.get(LP_TIME_LIMIT_ENV)
    if text is None or text.strip() == "":
        return LP_TIME_LIMIT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise LegoError(f"{LP_TIME_LIMIT_ENV}: must be a positive number of seconds, got {text!r}")
    return int(value) if value == int(value) else value


def _solver():
    limit = lp_time_limit()
    try:
        s = pulp.HiGHS(msg=False, timeLimit=limit)
        if s.available():
            return s
    except Exception:  # pragma: no cover - highspy missing
        pass
    return pulp.PULP_CBC_CMD(msg=False, timeLimit=limit)


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


def lp_rows(pg: PrimGraph, rows) -> tuple[list[str], list[str], list[tuple[int, int, int]], int]:
    """The LP's variables and rows: σ of every node, then μ of every driver; each row
    ``x[a] - x[b] >= c`` as (a, b, c), duplicates and dominated rows (same pair, smaller c) dropped; and the
    count of rows as written (one per (src, dst) pair and per distinct delta of an edge, as PuLP is given)."""
    nodes = sorted(pg.nodes)
    drivers = sorted({e.src for e in pg.edges})
    si = {v: i for i, v in enumerate(nodes)}
    mi = {u: len(nodes) + i for i, u in enumerate(drivers)}
    lat = {v: n.lat for v, n in pg.nodes.items()}
    best: dict[tuple[int, int], int] = {}
    count = [1]                      # (σ(ctl) = 0)

    def row(a, b, c):
        count[0] += 1
        if best.get((a, b), c - 1) < c:
            best[(a, b)] = c
    pairs = set()
    for e in pg.edges:
        if (e.src, e.dst) not in pairs:
            pairs.add((e.src, e.dst))
            row(si[e.dst], si[e.src], lat[e.dst])
        for d in set(e.delta.values()):
            row(mi[e.src], si[e.dst], d - lat[e.dst])
    for u in drivers:
        row(mi[u], si[u], 0)
    for u, v in rows:
        row(si[v], si[u], lat[v] + 1)
    return nodes, drivers, [(a, b, c) for (a, b), c in best.items()], count[0]


def _solve_highs(n_cols: int, cost, upper, fixed: int, rows) -> tuple[str, list[float] | None]:
    """min cost·x over 0 <= x <= upper, x[fixed] = 0, rows x[a] - x[b] >= c: HiGHS called directly with a
    sparse row-wise matrix (two entries a row). Returns (model status name, x or None)."""
    import highspy
    import numpy as np
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(lp_time_limit()))
    for k, v in HIGHS_OPTIONS.items():
        h.setOptionValue(k, v)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n_cols, len(rows)
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lo = np.zeros(n_cols)
    up = np.asarray(upper, dtype=float)
    up[fixed] = 0.0
    lp.col_lower_, lp.col_upper_ = lo, up
    r = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    lp.row_lower_ = r[:, 2].astype(float)
    lp.row_upper_ = np.full(len(r), highspy.kHighsInf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n_cols, len(r)
    lp.a_matrix_.start_ = np.arange(0, 2 * len(r) + 1, 2, dtype=np.int32)
    lp.a_matrix_.index_ = r[:, :2].astype(np.int32).ravel()
    lp.a_matrix_.value_ = np.tile([1.0, -1.0], len(r))
    h.passModel(lp)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return status, None
    return status, list(h.getSolution().col_value)


def _eliminate_mu(n: int, own: dict[int, int], rows, ncols: int):
    """Substitute out the μ of a driver with one consumer row ``μ(u) - σ(v) >= c`` (besides
    ``μ(u) - σ(u) >= 0``, which the edge row ``σ(v) - σ(u) >= lat(v)`` and ``c = d - lat(v)``, ``d >= 0``,
    already imply): at an optimum μ(u) = σ(v) + c, so its cost moves onto σ(v) (an exact reformulation, the
    same optimum; most drivers have one consumer). ``own``: μ column -> its driver's σ column. Returns
    (kept column per old column or -1, the substitution ``{old μ column: (σ column, c)}``, the remaining
    rows)."""
    by_a: dict[int, list] = defaultdict(list)
    diff = {}
    for r in rows:
        if r[0] >= n:
            by_a[r[0]].append(r)
        else:
            diff[(r[0], r[1])] = r[2]
    subst = {}
    for col, scol in own.items():
        out = [r for r in by_a[col] if r[1] != scol]
        # (only where the rows imply σ(v) + c >= σ(u), so that μ(u) >= σ(u) is redundant)
        if len(out) == 1 and len(by_a[col]) <= 2 and diff.get((out[0][1], scol), -math.inf) >= -out[0][2]:
            subst[col] = (out[0][1], out[0][2])
    keep = [-1] * ncols
    k = 0
    for j in range(ncols):
        if j not in subst:
            keep[j] = k
            k += 1
    rest = [(keep[a], keep[b], c) for a, b, c in rows if a not in subst]
    return keep, subst, rest


def schedule_lp(pg: PrimGraph, t_clk: float = T_CLK) -> PrimGraph:
    """The delay-matching LP (module docstring), built as a sparse matrix and solved by HiGHS directly
    (``schedule_lp_pulp`` is the same LP through PuLP, kept as the tests' oracle); the μ of one-consumer
    drivers are substituted out first (``_eliminate_mu``)."""
    t0 = time.perf_counter()
    trows = timing_rows(pg, t_clk)
    horizon = 4 * len(pg.nodes) + 16
    nodes, drivers, rows, ncons = lp_rows(pg, trows)
    n = len(nodes)
    width = {u: pg.nodes[u].width for u in drivers}
    eps = 1e-3
    ncols = n + len(drivers)
    cost = [eps] * n + [float(width[u]) for u in drivers]
    for u in drivers:
        cost[_index(nodes, u)] -= width[u]
    upper = [horizon] * n + [2 * horizon] * len(drivers)
    own = {n + i: _index(nodes, u) for i, u in enumerate(drivers)}
    keep, subst, rest = _eliminate_mu(n, own, rows, ncols)
    for col, (v, _c) in subst.items():
        cost[v] += cost[col]
    rcost = [cost[j] for j in range(ncols) if keep[j] >= 0]
    rupper = [upper[j] for j in range(ncols) if keep[j] >= 0]
    with _quiet_stdout():
        status, y = _solve_highs(len(rcost), rcost, rupper, keep[_index(nodes, "ctl")], rest)
    if y is None:
        hint = (f" within the solver's {lp_time_limit()} s limit ({ncols:,} variables)"
                if "time" in status.lower() else "")
        raise LegoError(f"lp: delay-matching LP not solved to optimality{hint} (status {status})")
    x = [y[keep[j]] if keep[j] >= 0 else None for j in range(ncols)]
    for col, (v, c) in subst.items():
        x[col] = y[keep[v]] + c
    sigma = {}
    for i, v in enumerate(nodes):
        if abs(x[i] - round(x[i])) > 1e-6:
            raise LegoError(f"lp: non-integral solution σ({v}) = {x[i]} (constraint matrix not TU?)")
        sigma[v] = int(round(x[i]))
    mu = {}
    for i, u in enumerate(drivers):
        if abs(x[n + i] - round(x[n + i])) > 1e-6:
            raise LegoError(f"lp: non-integral fan-out variable for {u}: {x[n + i]}")
        mu[u] = int(round(x[n + i]))
    lp = {"variables": ncols, "constraints": ncons, "timing_rows": len(trows),
          "solve_seconds": round(time.perf_counter() - t0, 4), "solver": "HiGHS",
          "objective_bits": int(sum(width[u] * (mu[u] - sigma[u]) for u in drivers))}
    return pg.with_(sigma=sigma, shared=True, passes=pg.passes + ("lp",), lp=lp)


def _index(sorted_names: list[str], name: str) -> int:
    import bisect
    i = bisect.bisect_left(sorted_names, name)
    assert sorted_names[i] == name
    return i


def schedule_lp_pulp(pg: PrimGraph, t_clk: float = T_CLK) -> PrimGraph:
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
        hint = (f" within the solver's {lp_time_limit()} s limit ({len(sig) + len(mu):,} variables)"
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

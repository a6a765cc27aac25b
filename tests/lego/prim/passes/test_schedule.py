"""LP delay matching: integral, optimal against brute force on tiny graphs, never worse than naive."""
import itertools
import re

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


# ---------------------------------------------------------------- timing rows, ASAP, the LP's bookkeeping

from lego.errors import LegoError  # noqa: E402
from lego.prim.passes.schedule import _order  # noqa: E402


def line(delays, lats=None, deltas=None, extra=()):
    """ctl -> n1 -> n2 -> ... with the given combinational delays (units) and latencies."""
    lats = lats or [0] * len(delays)
    deltas = deltas or [0] * len(delays)
    nodes = {"ctl": Node("ctl", "ctl", 1, {0: None})}
    prev = "ctl"
    edges = []
    for k, (d, lat, dl) in enumerate(zip(delays, lats, deltas)):
        nodes[f"n{k}"] = Node(f"n{k}", "add", 4, {0: (0,)}, lat=lat, delay=d)
        edges.append(Edge(prev, f"n{k}", "x", {0: dl}))
        prev = f"n{k}"
    return PrimGraph(nodes, tuple(edges) + tuple(extra), 1)


def test_timing_rows_by_hand():
    # 1.5 + 1.5 + 1.5: the paths from n0 (its own delay counted) and from ctl exceed 4 units at n2
    pg = line([1.5, 1.5, 1.5])
    assert timing_rows(pg) == {("ctl", "n2"), ("n0", "n2")}
    assert timing_rows(pg, t_clk=10.0) == set()
    assert timing_rows(pg, t_clk=2.9) == {("ctl", "n1"), ("n0", "n1"), ("n1", "n2")}
    # exactly the clock is allowed; ctl (delay 0) starts a path too
    assert timing_rows(line([2.0, 2.0])) == set()
    assert timing_rows(line([2.0, 2.5])) == {("ctl", "n1"), ("n0", "n1")}
    # a registered node (lat 1) starts from 0 and cuts the path through it
    assert timing_rows(line([3.0, 1.0, 3.0], lats=[0, 1, 0])) == set()
    assert timing_rows(line([3.0, 1.0, 4.5], lats=[0, 1, 0])) == {("n1", "n2")}
    # a delayed edge (δ > 0) is a register: no combinational path through it
    assert timing_rows(line([3.0, 3.0], deltas=[0, 1])) == set()
    # a longer second path to the same node is still explored
    nodes = {"ctl": Node("ctl", "ctl", 1, {0: None}), "a": Node("a", "add", 4, {0: (0,)}, delay=1.0),
             "b": Node("b", "add", 4, {0: (0,)}, delay=2.5), "c": Node("c", "add", 4, {0: (0,)}, delay=1.0),
             "d": Node("d", "add", 4, {0: (0,)}, delay=1.0)}
    e = (Edge("ctl", "a", "x", {0: 0}), Edge("ctl", "b", "x", {0: 0}), Edge("a", "c", "x", {0: 0}),
         Edge("b", "c", "y", {0: 0}), Edge("c", "d", "x", {0: 0}))
    assert timing_rows(PrimGraph(nodes, e, 1)) == {("b", "d"), ("ctl", "d")}


def test_timing_rows_rmw_and_modes():
    nodes = {"ctl": Node("ctl", "ctl", 1, {0: None, 1: None}), "g": Node("g", "wag", 3, {0: (0,), 1: (0,)}),
             "w": Node("w", "wr", 8, {0: (0,), 1: (0,)}), "s": Node("s", "acc", 8, {0: (0,), 1: (0,)}, delay=3.0)}
    e = (Edge("ctl", "g", "ctl", {0: 0, 1: 0}), Edge("g", "w", "a", {0: 0, 1: 0}),
         Edge("ctl", "s", "ctl", {0: 0, 1: 1}), Edge("s", "w", "acc", {0: 5, 1: 0}))
    plain = PrimGraph(nodes, e, 2)
    assert timing_rows(plain) == set()
    nodes["w"] = Node("w", "wr", 8, {0: (0,), 1: (0,)}, delay=1.5)
    pg = PrimGraph(nodes, e, 2)
    assert timing_rows(pg) == {("s", "w")}                # mode 1: s (3.0) -> w (1.5) with δ = 0
    assert timing_rows(pg.with_(fresh={0: (0,)})) == {("s", "w"), ("g", "w")}


def test_schedule_asap_by_hand():
    pg = line([1.5, 1.5, 1.5], lats=[0, 1, 0])
    out = schedule_asap(pg)
    assert out.sigma == {"ctl": 0, "n0": 0, "n1": 1, "n2": 1}
    assert out.shared is False and out.passes == ("asap",)
    pg = line([1.5, 1.5, 1.5])
    out = schedule_asap(pg)                                  # row (n0, n2): n2 one stage after n0
    assert out.sigma == {"ctl": 0, "n0": 0, "n1": 0, "n2": 1}
    out = schedule_asap(pg, t_clk=2.9)
    assert out.sigma == {"ctl": 0, "n0": 0, "n1": 1, "n2": 2}


def test_order_and_cycles():
    pg = line([1.0, 1.0])
    assert _order(pg) == ["ctl", "n0", "n1"]
    cyc = line([1.0, 1.0], extra=(Edge("n1", "n0", "y", {0: 0}),))
    with pytest.raises(LegoError) as e:
        _order(cyc)
    assert str(e.value).startswith("--dataflow: the fused dataflows close a loop through n")
    assert str(e.value).endswith("(opposite link directions); fuse them in separate designs")
    # the message names one link of the loop: two different nodes joined by an edge of the cycle
    m = re.search(r"through (\w+) -> (\w+) ", str(e.value))
    assert m and m.group(1) != m.group(2) and (m.group(1), m.group(2)) in {("n0", "n1"), ("n1", "n0")}


def test_schedule_lp_bookkeeping():
    pg = tiny((2, 0, 0), (3, 8, 4, 9))
    out = schedule_lp(pg)
    rows = timing_rows(pg)
    assert out.lp["variables"] == len(pg.nodes) + len({e.src for e in pg.edges})
    pairs = len({(e.src, e.dst) for e in pg.edges})
    deltas = sum(len(set(e.delta.values())) for e in pg.edges)
    assert out.lp["constraints"] == 1 + pairs + deltas + len({e.src for e in pg.edges}) + len(rows)
    assert out.lp["timing_rows"] == len(rows) and out.lp["objective_bits"] == out.register_bits()
    assert out.lp["solver"] in ("HiGHS", "PULP_CBC_CMD") and out.lp["solve_seconds"] >= 0
    assert out.passes == ("lp",) and out.shared and out.sigma["ctl"] == 0
    for e in out.edges:
        assert all(out.rho(e, m) >= 0 for m in e.delta)


def test_highs_stopped_by_the_time_limit_says_so(monkeypatch):
    from lego.errors import LegoError
    from lego.prim.passes import schedule as S
    monkeypatch.setattr(S, "_solve_highs", lambda *a, **k: ("Time limit reached", None))
    with pytest.raises(LegoError) as e:
        schedule_lp(tiny((0, 1, 1), (4, 8, 8, 16)))
    assert str(e.value) == (f"lp: delay-matching LP not solved to optimality within the solver's "
                            f"{S.LP_TIME_LIMIT_S} s limit (7 variables) (status Time limit reached)")


def _design_pg(df, arr, shape="M=8,N=8,K=8", rmw=False):
    w = builtin_workload("gemm", parse_shape(shape, "gemm"))
    return extract_reduction_trees(lower(build_arch(w, [make_dataflow(w, d, arr) for d in df]), 32,
                                        force_rmw=rmw))


@pytest.mark.parametrize("df,arr,rmw", [(("ws",), (4, 4), False), (("os",), (4, 4), False), (("is",), (2, 4), False),
                                        (("ws-bcast",), (4, 4), False), (("ws",), (4, 4), True),
                                        (("os", "is", "ws"), (2, 2), True), (("ws", "os"), (3, 2), True)])
def test_sparse_highs_lp_equals_the_pulp_lp(df, arr, rmw):
    """The sparse HiGHS model (deduplicated rows) and the PuLP model reach the same optimum: objective,
    register bits and (with the σ tiebreaker) the same σ on these designs."""
    from lego.prim.passes.schedule import schedule_lp_pulp
    pg = _design_pg(df, arr, rmw=rmw)
    a, b = schedule_lp(pg), schedule_lp_pulp(pg)
    assert a.lp["objective_bits"] == b.lp["objective_bits"] == a.register_bits() == b.register_bits()
    assert a.lp["constraints"] == b.lp["constraints"] and a.lp["variables"] == b.lp["variables"]
    assert sum(a.sigma.values()) == sum(b.sigma.values())
    assert a.sigma == b.sigma


def test_lp_stopped_by_the_time_limit_says_so(monkeypatch):
    """A solver that stops at its time limit with a feasible point (pulp: status Optimal, solution
    'Integer Feasible') is named as such, not as 'not solved to optimality (Optimal)'."""
    import pulp

    from lego.errors import LegoError
    from lego.prim.passes import schedule as S

    def stopped(self, solver=None, **kw):
        self.sol_status = pulp.LpSolutionIntegerFeasible
        return pulp.LpStatusOptimal
    monkeypatch.setattr(pulp.LpProblem, "solve", stopped)
    with pytest.raises(LegoError) as e:
        S.schedule_lp_pulp(tiny((0, 1, 1), (4, 8, 8, 16)))
    msg = str(e.value)
    assert f"within the solver's {S.LP_TIME_LIMIT_S} s limit (7 variables)" in msg, msg
    assert "status Optimal, solution Optimal Solution Found" not in msg
    assert msg.endswith(f"(status Optimal, solution {pulp.LpSolution[pulp.LpSolutionIntegerFeasible]})")


@pytest.mark.parametrize("df,arr,rmw", [(("ws",), (4, 4), True), (("os", "is", "ws"), (2, 2), True),
                                        (("ws", "os"), (3, 2), True), (("is",), (2, 4), False)])
def test_dantzig_pricing_reaches_the_default_pricing_schedule(df, arr, rmw, monkeypatch):
    """The solver option that makes large LPs fast (HIGHS_OPTIONS, Dantzig pricing) changes neither the
    optimum nor the vertex: σ and register bits equal those of HiGHS's default pricing."""
    from lego.prim.passes import schedule as S
    pg = _design_pg(df, arr, rmw=rmw)
    assert S.HIGHS_OPTIONS == {"simplex_dual_edge_weight_strategy": 0}
    a = schedule_lp(pg)
    monkeypatch.setattr(S, "HIGHS_OPTIONS", {})
    b = schedule_lp(pg)
    assert a.sigma == b.sigma and a.lp["objective_bits"] == b.lp["objective_bits"] == a.register_bits()


def test_lp_time_limit_from_the_environment(monkeypatch):
    """``LEGO_LP_TIME_LIMIT_S`` sets the solver's wall-clock limit (named in the time-limit message); unset, the
    default; a bad value is refused naming the variable."""
    from lego.errors import LegoError
    from lego.prim.passes import schedule as S
    monkeypatch.delenv("LEGO_LP_TIME_LIMIT_S", raising=False)
    assert S.lp_time_limit() == S.LP_TIME_LIMIT_S == 900
    monkeypatch.setenv("LEGO_LP_TIME_LIMIT_S", "7.5")
    assert S.lp_time_limit() == 7.5
    monkeypatch.setenv("LEGO_LP_TIME_LIMIT_S", "30")
    monkeypatch.setattr(S, "_solve_highs", lambda *a, **k: ("Time limit reached", None))
    with pytest.raises(LegoError, match=r"within the solver's 30 s limit \(7 variables\)"):
        schedule_lp(tiny((0, 1, 1), (4, 8, 8, 16)))
    for bad in ("0", "-3", "soon", "inf", "nan"):
        monkeypatch.setenv("LEGO_LP_TIME_LIMIT_S", bad)
        with pytest.raises(LegoError) as e:
            S.lp_time_limit()
        assert str(e.value) == f"LEGO_LP_TIME_LIMIT_S: must be a positive number of seconds, got {bad!r}"


def test_lp_time_limit_bad_value_on_the_cli(tmp_path, monkeypatch, capsys):
    """``lego gen`` with a bad ``LEGO_LP_TIME_LIMIT_S``: exit 2, one line naming it, no traceback, no directory."""
    from lego.cli import main
    monkeypatch.setenv("LEGO_LP_TIME_LIMIT_S", "-1")
    out = tmp_path / "rtl"
    assert main(["gen", "--workload", "gemm", "--shape", "M=4,N=4,K=4", "--array", "2x2", "--dataflow", "ws",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LEGO_LP_TIME_LIMIT_S: must be a positive number of seconds, got '-1'" in err[0]
    assert "Traceback" not in err[0] and not out.exists()

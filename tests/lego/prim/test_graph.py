"""lego/prim/graph.py: register counts ρ, register bits (shared taps vs private chains), drain, stats."""
import pytest

from lego.prim.graph import T_CLK, Edge, Node, PrimGraph


def _pg(sigma, shared=True, fresh=None):
    nodes = {"a": Node("a", "ctl", 3, {0: None, 1: None}),
             "b": Node("b", "rd", 5, {0: (0,), 1: (1,)}, lat=1),
             "c": Node("c", "wr", 7, {0: (1,)}),
             "d": Node("d", "wr", 2, {1: (0,)})}
    edges = (Edge("a", "b", "x", {0: 0, 1: 2}), Edge("a", "c", "y", {0: 1}), Edge("b", "c", "z", {0: 0}),
             Edge("b", "d", "w", {1: 3}))
    return PrimGraph(nodes, edges, 2, sigma=sigma, shared=shared, fresh=fresh or {})


def test_rho_by_hand():
    pg = _pg({"a": 0, "b": 2, "c": 4, "d": 3})
    e = pg.edges
    assert pg.rho(e[0], 0) == 2 - 1 - 0 + 0 and pg.rho(e[0], 1) == 2 - 1 + 2
    assert pg.rho(e[1], 0) == 4 - 0 - 0 + 1
    assert pg.rho(e[2], 0) == 4 - 0 - 2 + 0
    assert pg.rho(e[3], 1) == 3 - 0 - 2 + 3


def test_register_bits_shared_and_private_by_hand():
    sigma = {"a": 0, "b": 2, "c": 4, "d": 3}
    # shared taps: driver a's deepest tap is max(ρ(a→b) over modes = 3, ρ(a→c) = 5) = 5 -> 3 bits x 5;
    # driver b: max(ρ(b→c) = 2, ρ(b→d) = 4) = 4 -> 5 bits x 4
    assert _pg(sigma).register_bits() == 3 * 5 + 5 * 4
    # private chains: every edge its own worst-mode depth
    assert _pg(sigma, shared=False).register_bits() == 3 * 3 + 3 * 5 + 5 * 2 + 5 * 4
    # a driver whose first edge is deeper than the next keeps the deeper tap
    sigma2 = {"a": 0, "b": 9, "c": 9, "d": 9}
    assert _pg(sigma2).register_bits() == 3 * max(8 + 2, 9 + 1) + 5 * max(0, 0 + 3)
    with pytest.raises(ValueError, match="schedule the graph first"):
        _pg({}).register_bits()


def test_drain_stats_rmw_with():
    pg = _pg({"a": 0, "b": 2, "c": 4, "d": 3})
    fd = lambda m, fu: 10 * m + (0 if fu is None else sum(fu))   # noqa: E731
    assert pg.drain(0, fd) == 0 + 1 + 4          # only c writes in mode 0
    assert pg.drain(1, fd) == 10 + 0 + 3
    assert pg.stats() == {"ctl": 1, "rd": 1, "wr": 2}
    assert not pg.rmw and _pg({}, fresh={0: (1,)}).rmw
    q = pg.with_(shared=False, passes=("x",))
    assert q.shared is False and q.passes == ("x",) and pg.shared is True and q.nodes is pg.nodes
    assert pg.acc_bits == 32 and T_CLK == 4.0
    n = Node("n", "add", 4, {})
    assert n.lat == 0 and n.delay == 0.0 and n.attrs == {}

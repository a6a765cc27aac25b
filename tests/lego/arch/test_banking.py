"""lego/arch/banking.py: every concurrent access hits its port's private bank (checked by enumerating every
step of every port)."""
import numpy as np
import pytest

from lego.affine.dataflow import make_dataflow
from lego.affine.library import builtin_workload, parse_shape
from lego.arch import build_arch

CASES = [("gemm", "M=9,N=7,K=5", (3, 4)), ("conv2d", "C=3,K=5,H=7,W=6,R=3,S=2,STRIDE=2,PAD=1", (3, 2)),
         ("dwconv2d", "C=5,H=6,W=6", (2, 3)), ("bmm", "B=2,M=5,N=6,K=3", (4, 4))]


@pytest.mark.parametrize("name,shape,arr", CASES)
@pytest.mark.parametrize("df", ["os", "ws", "is", "ws-bcast"])
def test_banks_conflict_free_by_enumeration(name, shape, arr, df):
    w = builtin_workload(name, parse_shape(shape, name))
    a = build_arch(w, [make_dataflow(w, df, arr)])
    md = a.modes[0]
    t = md.df.time_coords()
    for tname, net in md.nets.items():
        lay = net.layout
        t_shape = np.array(w.tensor(tname).shape)
        per_bank = {}
        for p in net.ports:
            d = t @ net.M.T + np.array(p.k)
            inb = np.all((d >= 0) & (d < t_shape), axis=1)
            (mask, bank, addr), *_ = lay.place(d[inb]) if not lay.replicated else [lay.place(d[inb])[p.bank]]
            # every in-range access of this port lands in the port's own bank at the generator's address
            assert mask.all() and (bank == p.bank).all()
            assert (addr == (t[inb] @ np.array(p.alpha) + p.beta)).all()
            per_bank.setdefault(p.bank, []).append(p.fu)
        # one port per physical bank: no two FUs ever access the same bank in a cycle
        assert all(len(v) == 1 for v in per_bank.values())


# ---------------------------------------------------------------- bank_tensor on hand-made access patterns

import itertools  # noqa: E402

from lego.arch.banking import Layout, bank_tensor  # noqa: E402
from lego.errors import LegoError  # noqa: E402


def _check_ports(shape, M, ports, role="input", T=(4, 3), full=True):
    """Every in-range access of every port, over every step t: place() puts it in the port's own bank at the
    generator's address α·t + β; the layout itself maps distinct elements to distinct (bank, addr)."""
    lay, addrs = bank_tensor("D", shape, np.array(M), [(fu, np.array(k)) for fu, k in ports], role)
    ts = np.array(list(itertools.product(*(range(e) for e in T))))
    for p in addrs:
        d = ts @ np.array(M).T + np.array(p.k)
        ok = np.all((d >= 0) & (d < np.array(shape)), axis=1)
        copies = lay.place(d[ok])
        mask, bank, addr = copies[p.bank] if lay.replicated else copies[0]
        assert mask.all() and (bank == p.bank).all()
        assert (addr == ts[ok] @ np.array(p.alpha) + p.beta).all()
        assert (addr >= 0).all() and (addr < lay.depth).all()
    every = np.indices(shape).reshape(len(shape), -1).T
    for mask, bank, addr in lay.place(every):
        assert mask.all() or not full        # ids that no port uses hold no element
        assert len({(int(b), int(a)) for b, a in zip(bank[mask], addr[mask])}) == int(mask.sum())
    assert len({p.bank for p in addrs}) == len(addrs)      # one port per physical bank
    return lay, addrs


def test_bank_tensor_cyclic_by_hand():
    # d0 = 2 t + k, ports at rows 0 and 1: g = 1, B = 2 (even rows / odd rows), local row = d0 // 2
    lay, addrs = _check_ports((6, 4), [[2, 0], [0, 1]], [((0,), (0, 0)), ((1,), (1, 0))], T=(3, 4))
    assert (lay.g, lay.B, lay.replicated, lay.bank_ids, lay.E, lay.depth) == ((1, 1), (2, 1), False, (0, 1), (3, 4), 12)
    assert lay.nbanks == 2 and lay.strides() == (4, 1)
    assert [(p.fu, p.bank, p.alpha, p.beta, p.k) for p in addrs] == [((0,), 0, (4, 1), 0, (0, 0)),
                                                                      ((1,), 1, (4, 1), 0, (1, 0))]
    assert lay.doc() == {"banks": 2, "depth": 12, "replicated": False, "g": [1, 1], "B": [2, 1],
                         "local_extents": [3, 4], "bank_ids": [0, 1]}


def test_bank_tensor_gcd_and_two_dimensions():
    # ports at row offsets 0, 2, 4 (g = 2, B = 3) and column offsets 0, 1 (g = 1, B = 2); steps move by 6 and 2
    ports = [((a, b), (2 * a, b)) for a in range(3) for b in range(2)]
    lay, addrs = _check_ports((13, 6), [[6, 0], [0, 2]], ports, T=(3, 3))
    assert lay.g == (2, 1) and lay.B == (3, 2) and not lay.replicated
    assert lay.E == (6, 3) and lay.depth == 18                 # ceil(13 / 6) * 2, ceil(6 / 2)
    assert sorted(lay.bank_ids) == list(lay.bank_ids) == [0, 1, 2, 3, 4, 5]
    # a port offset by one row inside its gcd block (k = 1 with g = 2) keeps a private bank
    lay2, _ = _check_ports((12, 2), [[3, 0], [0, 0]], [((0,), (0, 0)), ((1,), (2, 0)), ((2,), (1, 0))], T=(4, 1))
    assert not lay2.replicated and lay2.g == (1, 1) and lay2.B == (3, 1)


def test_bank_tensor_offset_ports_and_sparse_ids():
    # every port a constant offset of 3 rows from the origin: the common minimum is removed before the gcd
    lay, addrs = _check_ports((10, 1), [[2], [0]], [((0,), (3, 0)), ((1,), (4, 0))], T=(3,))
    assert lay.g == (1, 1) and lay.B == (2, 1)
    assert sorted(p.bank for p in addrs) == [0, 1]
    # two ports three rows apart: g = 3, B = 2, the steps move by 6
    lay, addrs = _check_ports((12, 1), [[6], [0]], [((0,), (0, 0)), ((1,), (3, 0))], T=(2,))
    assert lay.g == (3, 1) and lay.B == (2, 1) and lay.E == (6, 1)
    # a mixed-radix id set with a hole: ports on banks (0,0), (1,1) of a 2 x 2 cyclic grid
    lay, addrs = _check_ports((4, 4), [[2, 0], [0, 2]], [((0,), (0, 0)), ((1,), (1, 1))], T=(2, 2), full=False)
    assert lay.bank_ids == (0, 3) and lay.nbanks == 2 and [p.bank for p in addrs] == [0, 1]
    assert lay.place(np.array([[0, 1]]))[0][0].tolist() == [False]       # id 1 is held by no bank


def test_bank_tensor_replicated_and_refused():
    # ports at rows 0 and 1 but steps of 1 row: the bank of a port would change every step
    M = [[1], [0]]
    lay, addrs = _check_ports((5, 3), M, [((0,), (0, 0)), ((1,), (1, 0))], T=(4,))
    assert lay.replicated and lay.nbanks == 2 and lay.g == (1, 1) and lay.B == (1, 1)
    assert lay.E == (5, 3) and lay.depth == 15 and lay.bank_ids == (0, 1)
    assert [(p.bank, p.alpha, p.beta) for p in addrs] == [(0, (3,), 0), (1, (3,), 3)]
    with pytest.raises(LegoError) as e:
        bank_tensor("Y", (5, 3), np.array(M), [((0,), np.array([0, 0])), ((1,), np.array([1, 0]))], "output")
    assert str(e.value) == ("--dataflow: the concurrent writes of output Y cannot be banked conflict-free (ports do "
                            "not keep a fixed bank); choose another dataflow")
    # two ports on the same element: one cyclic bank id for both, so replicated copies
    lay, _ = bank_tensor("X", (4,), np.array([[1]]), [((0,), np.array([1])), ((1,), np.array([1]))], "input")
    assert lay.replicated and lay.nbanks == 2


def test_layout_strides():
    lay = Layout("T", (2, 3, 4), (1, 1, 1), (1, 1, 1), False, (0,), (2, 3, 4), 24)
    assert lay.strides() == (12, 4, 1) and lay.nbanks == 1

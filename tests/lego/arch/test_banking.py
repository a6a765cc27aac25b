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

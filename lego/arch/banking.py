"""Memory synthesis: conflict-free banks and affine address generators.

The FUs adjacent to memory (the arborescence roots) access ``d = M·t + k_p`` in the same step, with
``M = A_D·A_T`` and a per-port constant ``k_p``.  Per tensor dimension m, with g_m the gcd of the
port offsets and B_m their span, cyclic banking ``bank_m = ⌊d_m/g_m⌋ mod B_m`` gives every port a
*constant* private bank when every temporal coefficient ``M[m,k]`` is a multiple of ``g_m·B_m``.
The local address is then affine: ``addr = α·t + β_p``.  Otherwise input tensors fall back to one
replicated bank per port (documented area cost); outputs cannot be replicated and are refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from math import ceil, gcd

import numpy as np

from ..errors import LegoError
from ..host import place


@dataclass(frozen=True)
class Layout:
    tensor: str
    shape: tuple[int, ...]
    g: tuple[int, ...]
    B: tuple[int, ...]
    replicated: bool
    bank_ids: tuple[int, ...]        # cyclic bank id (mixed radix over B) of each physical bank
    E: tuple[int, ...]               # per-dimension local extents
    depth: int

    @property
    def nbanks(self) -> int:
        return len(self.bank_ids)

    def strides(self) -> tuple[int, ...]:
        out, acc = [], 1
        for e in reversed(self.E):
            out.append(acc)
            acc *= e
        return tuple(reversed(out))

    def doc(self) -> dict:
        """The layout as the manifest documents it (``manifest.layouts``; docs/host_protocol.md)."""
        return {"banks": self.nbanks, "depth": self.depth, "replicated": self.replicated, "g": list(self.g),
                "B": list(self.B), "local_extents": list(self.E), "bank_ids": list(self.bank_ids)}

    def place(self, d: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """For element coordinates d (n, rank): [(mask, bank, addr)] — one entry per copy (``host.place``)."""
        return place(self.doc(), d)


@dataclass(frozen=True)
class PortAddr:
    fu: tuple[int, ...]
    bank: int                        # physical bank index
    alpha: tuple[int, ...]           # per temporal coordinate
    beta: int
    k: tuple[int, ...]               # constant part of d at this port (for bounds checks)


def bank_tensor(name: str, shape, M: np.ndarray, ports: list[tuple[tuple, np.ndarray]], role: str):
    """ports: [(fu, k_p)] with d = M t + k_p.  Returns (Layout, [PortAddr])."""
    rank = len(shape)
    K = np.array([k for _, k in ports], dtype=np.int64).reshape(len(ports), rank)
    g, B = [], []
    for m in range(rank):
        offs = sorted(set(int(x) for x in K[:, m] - K[:, m].min()))
        gm = reduce(gcd, offs, 0)
        if gm == 0:
            g.append(1)
            B.append(1)
        else:
            g.append(gm)
            B.append(offs[-1] // gm + 1)
    ok = all(B[m] == 1 or not (M[m] % (g[m] * B[m])).any() for m in range(rank))
    if ok:
        cyc = np.stack([(K[:, m] // g[m]) % B[m] for m in range(rank)], axis=1)
        radix = [int(np.prod(B[m + 1:], dtype=np.int64)) for m in range(rank)]
        bids = [int(np.dot(r, radix)) for r in cyc]
        ok = len(set(bids)) == len(bids)
    if not ok:
        if role == "output":
            raise LegoError(f"--dataflow: the concurrent writes of output {name} cannot be banked conflict-free "
                            f"(ports do not keep a fixed bank); choose another dataflow")
        E = tuple(int(s) for s in shape)
        lay = Layout(name, tuple(shape), (1,) * rank, (1,) * rank, True, tuple(range(len(ports))), E,
                     int(np.prod(E, dtype=np.int64)))
        st = np.array(lay.strides())
        addrs = [PortAddr(fu, i, tuple(int(x) for x in st @ M), int(st @ k), tuple(int(x) for x in k))
                 for i, (fu, k) in enumerate(ports)]
        return lay, addrs
    order = sorted(set(bids))
    E = tuple(ceil(shape[m] / (g[m] * B[m])) * g[m] for m in range(rank))
    lay = Layout(name, tuple(shape), tuple(g), tuple(B), False, tuple(order), E, int(np.prod(E, dtype=np.int64)))
    st = np.array(lay.strides())
    addrs = []
    for (fu, k), bid in zip(ports, bids):
        alpha = [int(sum(st[m] * M[m, j] // B[m] for m in range(rank))) for j in range(M.shape[1])]
        beta = int(sum(st[m] * ((k[m] // (g[m] * B[m])) * g[m] + k[m] % g[m]) for m in range(rank)))
        addrs.append(PortAddr(fu, order.index(bid), tuple(alpha), beta, tuple(int(x) for x in k)))
    return lay, addrs

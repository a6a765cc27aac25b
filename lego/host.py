"""Host-side view of a generated array: where every tensor element lives in the banks.

Used by the cocotb bench (load/read sequences) and documented in the manifest (``layouts``).
"""
from __future__ import annotations

import numpy as np

from .arch.graph import ArchGraph


def load_words(arch: ArchGraph, mode: int, inputs: dict[str, np.ndarray]) -> list[tuple[int, int, int, int]]:
    """(tensor index, bank, addr, value) writes that fill the input banks for ``mode``."""
    out = []
    for ti, t in enumerate(arch.workload.inputs):
        lay = arch.modes[mode].nets[t.name].layout
        x = np.asarray(inputs[t.name]).astype(np.int64)
        d = np.indices(t.shape).reshape(len(t.shape), -1).T
        vals = x.reshape(-1)
        for mask, bank, addr in lay.place(d):
            for v, b, a in zip(vals[mask], bank[mask], addr[mask]):
                out.append((ti, int(b), int(a), int(v)))
    return out


def read_words(arch: ArchGraph, mode: int) -> tuple[np.ndarray, np.ndarray]:
    """(bank, addr) of every output element in row-major order."""
    Y = arch.workload.output
    lay = arch.modes[mode].nets[Y.name].layout
    d = np.indices(Y.shape).reshape(len(Y.shape), -1).T
    (mask, bank, addr), = lay.place(d)
    assert mask.all(), "every output element has a bank"
    return bank, addr


def layout_doc(arch: ArchGraph) -> dict:
    doc = {}
    for m in arch.modes:
        per = {}
        for name, net in m.nets.items():
            L = net.layout
            per[name] = {"banks": L.nbanks, "depth": L.depth, "replicated": L.replicated,
                         "g": list(L.g), "B": list(L.B), "local_extents": list(L.E),
                         "bank_ids": list(L.bank_ids)}
        doc[m.df.name] = per
    return doc

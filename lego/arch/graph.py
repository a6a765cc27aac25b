"""ArchGraph: the FU-level architecture of one design (one ModeArch per fused dataflow)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..affine.dataflow import Dataflow
from ..affine.reuse import Reuse, analyze
from ..affine.workload import Workload
from ..errors import LegoError
from .banking import Layout, PortAddr, bank_tensor
from .interconnect import input_forest, output_forest


@dataclass(frozen=True)
class TensorNet:
    tensor: str
    role: str
    parent: dict            # fu -> (source fu | None for memory, delay)
    ports: tuple[PortAddr, ...]
    layout: Layout
    reuse: Reuse
    M: np.ndarray = field(repr=False)   # A_D · A_T
    N: np.ndarray = field(repr=False)   # A_D · A_S
    k0: np.ndarray = field(repr=False)  # A_D · b + a_D

    def links(self) -> dict[str, int]:
        direct = sum(1 for p, d in self.parent.values() if p is not None and d == 0)
        delay = sum(1 for p, d in self.parent.values() if p is not None and d > 0)
        held = len(self.parent) if (self.reuse.held or self.role == "output") else 0
        return {"direct": direct, "delay": delay, "stationary": held}

    def port_of(self, fu) -> PortAddr | None:
        """The first port of ``fu`` (an index built once: a per-FU scan would be quadratic in the FUs)."""
        return self._port_index.get(fu)

    def children(self, fu) -> list[tuple[tuple, int]]:
        return self._child_index.get(fu, [])

    @cached_property
    def _port_index(self) -> dict:
        out = {}
        for p in self.ports:
            out.setdefault(p.fu, p)
        return out

    @cached_property
    def _child_index(self) -> dict:
        out: dict = {}
        for c, (p, d) in self.parent.items():
            out.setdefault(p, []).append((c, d))
        for v in out.values():
            v.sort()
        return out


@dataclass(frozen=True)
class ModeArch:
    index: int
    df: Dataflow
    nets: dict[str, TensorNet]


@dataclass(frozen=True)
class FusedBank:
    """The physical banks of one tensor, shared by all fused modes (``ArchGraph.fused``).

    A mode whose layout has fewer banks (ports) than ``nbanks`` sees each of its logical banks as a group
    of ``groups[mode]`` physical banks (a power of two ``g``): word ``a`` of logical bank ``b`` lies in
    physical bank ``b·g + a mod g`` at address ``a div g``. The words per tensor are then the deepest
    mode's words, not (most banks) x (deepest bank). Where a ratio of port counts is not a power of two
    (or a layout is replicated) the banks fall back to (most banks, deepest bank), all groups 1, and
    ``fallback`` says why."""
    tensor: str
    nbanks: int
    depth: int
    groups: tuple[int, ...]          # per mode index
    fallback: str | None = None

    @property
    def grouped(self) -> bool:
        return any(g > 1 for g in self.groups)

    def doc(self, modes) -> dict:
        """``manifest.prog.banks[tensor]``: physical banks, depth (words per buffer) and per mode group size."""
        out = {"banks": self.nbanks, "depth": self.depth,
               "groups": {md.df.name: g for md, g in zip(modes, self.groups)}}
        if self.fallback:
            out["fallback"] = self.fallback
        return out


@dataclass(frozen=True)
class ArchGraph:
    workload: Workload
    modes: tuple[ModeArch, ...]

    @property
    def P(self) -> tuple[int, ...]:
        return self.modes[0].df.P

    @property
    def fus(self) -> list[tuple[int, ...]]:
        return self.modes[0].df.fus

    def banks(self, tensor: str) -> tuple[int, int]:
        """(physical banks, depth) shared by all modes."""
        return (max(m.nets[tensor].layout.nbanks for m in self.modes),
                max(m.nets[tensor].layout.depth for m in self.modes))

    def fused_bank(self, tensor: str) -> FusedBank:
        """Capacity-preserving banks of ``tensor`` shared by all modes (``FusedBank``)."""
        lays = [m.nets[tensor].layout for m in self.modes]
        nb = max(lay.nbanks for lay in lays)
        ratios = [nb / lay.nbanks for lay in lays]
        bad = None
        if any(lay.replicated for lay in lays):
            bad = "a replicated layout"
        elif any(r != int(r) or int(r) & (int(r) - 1) for r in ratios):
            ports = sorted({lay.nbanks for lay in lays})
            bad = (f"port counts {', '.join(map(str, ports))}: a ratio is not a power of two; "
                   f"(most banks) x (deepest bank)")
        if bad is not None:
            return FusedBank(tensor, *self.banks(tensor), (1,) * len(lays), bad)
        groups = tuple(int(r) for r in ratios)
        depth = max(-(-lay.depth // g) for lay, g in zip(lays, groups))
        return FusedBank(tensor, nb, depth, groups)

    @property
    def fused(self) -> dict[str, FusedBank]:
        """Per tensor, the physical banks shared by the fused modes (``fused_bank``)."""
        return {t.name: self.fused_bank(t.name) for t in self.workload.tensors}

    def mux_inputs(self) -> int:
        """Extra operand-mux inputs that fusion costs: Σ over FU ports with >1 distinct source."""
        if len(self.modes) < 2:
            return 0
        total = 0
        for t in self.workload.tensors:
            for s in self.fus:
                srcs = set()
                for m in self.modes:
                    net = m.nets[t.name]
                    p, d = net.parent[s]
                    srcs.add(("mem", net.port_of(s).bank) if p is None else ("fu", p, d))
                if len(srcs) > 1:
                    total += len(srcs)
        return total

    def link_counts(self) -> dict[str, int]:
        out = {"direct": 0, "delay": 0, "stationary": 0}
        for m in self.modes:
            for net in m.nets.values():
                for k, v in net.links().items():
                    out[k] += v
        return out


def _net(w: Workload, df: Dataflow, tname: str) -> TensorNet:
    t = w.tensor(tname)
    A, a = w.access(tname)
    M, N, k0 = A @ df.AT, A @ df.AS, A @ df.bvec + a
    r = analyze(w, df, tname)
    fus = df.fus
    if t.role == "input":
        parent = input_forest(fus, df.P, df.c, r.spatial, t.bits)
    else:
        parent = output_forest(fus, df.P, df.c, r.spatial, w.output.bits)
    roots = [s for s in fus if parent[s][0] is None]
    ports = [(s, N @ np.array(s, dtype=np.int64) + k0) for s in roots]
    layout, addrs = bank_tensor(tname, t.shape, M, ports, t.role)
    return TensorNet(tname, t.role, parent, tuple(addrs), layout, r, M, N, k0)


def build_arch(w: Workload, dfs: list[Dataflow]) -> ArchGraph:
    if not dfs:
        raise LegoError("--dataflow: at least one dataflow is needed")
    names = [d.name for d in dfs]
    if len(set(names)) != len(names):
        raise LegoError(f"--dataflow: '{[n for n in names if names.count(n) > 1][0]}' given twice")
    if len({d.P for d in dfs}) > 1:
        raise LegoError("--dataflow: fused dataflows must use the same array shape")
    modes = tuple(ModeArch(i, df, {t.name: _net(w, df, t.name) for t in w.tensors}) for i, df in enumerate(dfs))
    return ArchGraph(w, modes)

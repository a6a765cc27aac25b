"""PrimGraph: primitives in FU frames, with per-mode structural delays on edges.

A node ``v`` of FU ``s`` produces its value for step ``t`` at global cycle
``ℓ·t + ctl_delay_m(s) + σ(v)``.  On edge ``u → v`` in mode ``m`` the register count is
``ρ_m(e) = σ(v) − lat(v) − σ(u) + δ_m(e)`` with ``δ_m(e) = ctl_delay_m(fu(v)) − ctl_delay_m(fu(u))``.
Any σ with every ρ ≥ 0 is functionally correct; passes choose σ to meet timing with the fewest bits.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

# combinational delay estimates in "units" (one unit ≈ a 32-bit ripple-carry add); T_CLK per stage
T_CLK = 4.0


@dataclass(frozen=True)
class Node:
    id: str
    kind: str                  # ctl | ag | rd | op | mul | add | acc | wag | wr
    width: int
    fu: dict                   # mode -> fu tuple (None = global frame); absent mode = unused in that mode
    lat: int = 0               # 1 for registered primitives (sync memory read)
    delay: float = 0.0         # combinational delay units
    attrs: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    slot: str                  # input name at dst
    delta: dict                # mode -> structural delay δ_m (only modes where the edge is live)


@dataclass(frozen=True)
class PrimGraph:
    nodes: dict[str, Node]
    edges: tuple[Edge, ...]
    modes: int
    sigma: dict[str, int] = field(default_factory=dict)
    shared: bool = True        # fan-out sharing (tapped shift register per driver)
    passes: tuple[str, ...] = ()
    acc_bits: int = 32         # adders, accumulators and output-bank words (lego.affine.widths)
    fresh: dict = field(default_factory=dict)   # mode -> revisit counters (arch.flags.fresh_positions);
    #                            empty: every output element is written once per run (plain write ports)
    lp: dict = field(default_factory=dict, compare=False)   # statistics of the LP that chose σ (schedule_lp)

    @property
    def rmw(self) -> bool:
        """Write ports add to the bank word (outputs revisited within a run)."""
        return bool(self.fresh)

    def rho(self, e: Edge, m: int) -> int:
        s = self.sigma
        return s[e.dst] - self.nodes[e.dst].lat - s[e.src] + e.delta[m]

    def with_(self, **kw) -> "PrimGraph":
        return replace(self, **kw)

    def register_bits(self) -> int:
        """Pipeline/delay register bits implied by σ (shared taps or private per-edge chains)."""
        if not self.sigma:
            raise ValueError("schedule the graph first")
        total = 0
        if self.shared:
            depth: dict[str, int] = {}          # deepest tap of each driver
            for e in self.edges:
                d = max(self.rho(e, m) for m in e.delta)
                depth[e.src] = max(depth.get(e.src, d), d)
            for u, n in self.nodes.items():
                total += n.width * depth.get(u, 0)
        else:
            for e in self.edges:
                total += self.nodes[e.src].width * max(self.rho(e, m) for m in e.delta)
        return total

    def drain(self, m: int, frame_delay) -> int:
        """Cycles after the last step's issue until its last write lands (per mode)."""
        return max(frame_delay(m, n.fu[m]) + self.sigma[n.id]
                   for n in self.nodes.values() if n.kind == "wr" and m in n.fu)

    def stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes.values():
            out[n.kind] = out.get(n.kind, 0) + 1
        return out

"""A top-level wrapper that brings the ports of named units out as top-level ports, so that one or several
hand-built units (anything with ``io() -> [(signal, "i" | "o")]``) become one Verilog module with plain
ports: ``<unit>_<port>`` with ``prefix=True`` (several units side by side, e.g. a unit-bench harness), or
the unit's own port names with ``prefix=False`` (one unit as the design's top)."""
from __future__ import annotations

from amaranth import Elaboratable, Module, Signal


class Wrapper(Elaboratable):
    def __init__(self, named_units: dict, prefix: bool = True):
        self.units = dict(named_units)
        self.port_list: list[tuple[Signal, str]] = []      # (top-level signal, "i" | "o"), in io() order
        self._links = []
        seen: set[str] = set()
        for uname, u in self.units.items():
            for sig, d in u.io():
                if d not in ("i", "o"):
                    self._refuse(f"{uname}.{sig.name}: direction must be 'i' or 'o', got {d!r}")
                name = f"{uname}_{sig.name}" if prefix else sig.name
                if name in seen:
                    self._refuse(f"port {name!r} appears twice (use prefix=True for several units)")
                seen.add(name)
                top = Signal(sig.shape(), name=name)
                self.port_list.append((top, d))
                self._links.append((top, sig, d))

    def _refuse(self, msg: str):
        self._MustUse__silence = True      # never elaborated: no UnusedElaboratable warning for a refused wrapper
        raise ValueError(msg)

    def ports(self) -> list[Signal]:
        return [s for s, _ in self.port_list]

    def port_doc(self) -> list[dict]:
        """Manifest-style port list: clk and rst (the sync domain), then every port in order."""
        return ([{"name": "clk", "direction": "in", "width": 1, "signed": False},
                 {"name": "rst", "direction": "in", "width": 1, "signed": False}]
                + [{"name": s.name, "direction": "in" if d == "i" else "out", "width": len(s),
                    "signed": s.shape().signed} for s, d in self.port_list])

    def elaborate(self, platform):
        m = Module()
        for uname, u in self.units.items():
            m.submodules[uname] = u
        for top, sig, d in self._links:
            m.d.comb += (sig.eq(top) if d == "i" else top.eq(sig))
        return m

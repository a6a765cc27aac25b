"""``pointacc_top``: the mapping unit, the MMU and the matrix unit in one module, with the MMU's gather
stream wired into the matrix unit (gather -> GEMM without a host round trip).

Host interface (every port of a unit is brought out with the unit's prefix; clk/rst are shared,
rst is synchronous):

* ``map_*``: the mapping unit (``accelerators.pointacc.mapping``): ``start, op, n, m, k, r2, shift, ksize,
  tstride``; point load ``ld_en, ld_addr, ld_data``; queries ``q_valid, q_data, q_ready``; ``busy, done,
  cycles``; results ``out_valid, out_idx, out_val, out_off, out_coord, out_flag``.
* ``mmu_*``: the MMU (``accelerators.pointacc.mmu``): ``start, op, count``; map entries ``m_valid, m_row,
  m_tag, m_data, m_ready``; gather results ``out_valid, out_data, out_tag``; the DRAM port
  ``dram_req_valid, dram_req_write, dram_req_addr, dram_req_data, dram_resp_valid, dram_resp_data``;
  ``busy, done, cycles, hits, misses, writebacks``.
* ``mxu_*``: the matrix unit (``accelerators.pointacc.matrix``): weights ``w_en, w_row, w_data``; input
  ``src`` (0: ``in_valid, x, tag`` from the host; 1: the MMU's ``out_valid, out_data, out_tag``: each
  gathered feature row is one input vector); results ``out_valid, y, out_tag``.

* ``map_fld_src`` (only with the feature kNN path, ``feature_points`` > 0): 0: the feature buffer's row
  writes come from the host (``map_fld_en, map_fld_addr, map_fld_data``); 1: from the MMU's gather stream
  (``mmu_out_valid`` writes row ``mmu_out_tag`` with the low FL*FB bits of ``mmu_out_data``).

A feature kNN (DGCNN's EdgeConv after the first layer) is: set ``map_fld_src`` = 1, run an MMU gather with
one map entry per feature-buffer row (``m_row`` = the DRAM row holding features j*FL .. j*FL+FL-1 of the
point, ``m_tag`` = the buffer row p*CH + j); the MMU's ``done`` comes with the last row written (MMU
``cycles`` = G, start in cycle s, done in cycle s + G + 1); in the next cycle set ``map_fld_src`` = 0 and
start ``OP_KNNF`` (``n`` points, ``m`` query indices, ``k``); its beats leave ``map_out_idx``/``map_out_val``
like the xyz kNN's. From the gather's start cycle to the cycle of the kNN's ``done``:
``cycles.gather_knn_feature_cycles`` = G + (OP_KNNF cycles) + 4.

A sparse-convolution offset is: write the offset's weight tile (R cycles), set ``mxu_src`` = 1, run an
MMU gather of the offset's input rows; the partial sums leave ``mxu_y`` in map order, ``latency`` cycles
after each gathered row, tagged with the map entry's tag (the host adds them into the outputs).
"""
from __future__ import annotations

from amaranth.hdl import Elaboratable, Module, Mux, Signal

from lego.units.harness import port_list

from .config import PointAccConfig
from .mapping import MappingUnit
from .matrix import MatrixUnit
from .mmu import MMU

__all__ = ["PointAccTop", "TOP"]

TOP = "pointacc_top"


class PointAccTop(Elaboratable):
    def __init__(self, cfg: PointAccConfig):
        self.cfg = cfg
        self.map = MappingUnit(**cfg.mapping_params())
        self.mmu = MMU(**cfg.mmu_params())
        self.mxu = MatrixUnit(cfg.mxu_rows, cfg.mxu_cols)
        self.links = []                 # (top signal, unit signal or None, direction "i"/"o")
        for prefix, comp in (("map", self.map), ("mmu", self.mmu)):
            for name, d, w in port_list(comp):
                self.links.append((Signal(w, name=f"{prefix}_{name}"), getattr(comp, name), d[0]))
        self.fld_src = None
        if self.map.feat is not None:   # the feature kNN path: its buffer fills from MMU gathers
            self.fld_src = Signal(name="map_fld_src")
            self.links.append((self.fld_src, None, "i"))
        self.mxu_src = Signal(name="mxu_src")
        self.links.append((self.mxu_src, None, "i"))
        self.mxu_ports = {}
        for sig, d in self.mxu.io():
            top = Signal(sig.shape(), name=f"mxu_{sig.name}")
            self.mxu_ports[sig.name] = top
            self.links.append((top, sig, d[0]))

    def ports(self) -> list[Signal]:
        return [t for t, _, _ in self.links]

    def port_doc(self) -> list[dict]:
        """Manifest-style port list: clk and rst (the sync domain), then every port in order."""
        return ([{"name": "clk", "direction": "in", "width": 1, "signed": False},
                 {"name": "rst", "direction": "in", "width": 1, "signed": False}]
                + [{"name": t.name, "direction": "in" if d == "i" else "out", "width": len(t),
                    "signed": False} for t, _, d in self.links])

    def elaborate(self, platform):
        m = Module()
        m.submodules.mapping = self.map
        m.submodules.mmu = self.mmu
        m.submodules.mxu = self.mxu
        for top, sig, d in self.links:
            if sig is None:
                continue
            if sig is self.mxu.in_valid:
                m.d.comb += sig.eq(Mux(self.mxu_src, self.mmu.out_valid, top))
            elif sig is self.mxu.x:
                m.d.comb += sig.eq(Mux(self.mxu_src, self.mmu.out_data, top))
            elif sig is self.mxu.tag:
                m.d.comb += sig.eq(Mux(self.mxu_src, self.mmu.out_tag, top))
            elif self.fld_src is not None and sig is self.map.fld_en:
                m.d.comb += sig.eq(Mux(self.fld_src, self.mmu.out_valid, top))
            elif self.fld_src is not None and sig is self.map.fld_addr:
                m.d.comb += sig.eq(Mux(self.fld_src, self.mmu.out_tag[:len(sig)], top))
            elif self.fld_src is not None and sig is self.map.fld_data:
                m.d.comb += sig.eq(Mux(self.fld_src, self.mmu.out_data[:len(sig)], top))
            elif d == "i":
                m.d.comb += sig.eq(top)
            else:
                m.d.comb += top.eq(sig)
        return m


def emit_verilog(cfg: PointAccConfig) -> tuple[str, PointAccTop]:
    import os
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    from amaranth.back import verilog
    top = PointAccTop(cfg)
    text = verilog.convert(top, name=TOP, ports=top.ports(), emit_src=False)
    return text, top

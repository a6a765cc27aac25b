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
* ``mxu_*``: the matrix unit (``accelerators.pointacc.matrix``), lego's programmable GEMM array: its command
  port ``cmd_valid, cmd_ready, cmd_data, busy, done, cycles`` and AXI4 master ``m_axi_*`` (docs/programmable.md);
  the gather stager: ``stage`` (1: the MMU's gathered rows are written to DRAM), ``stage_base`` and the write
  port ``stg_valid, stg_addr, stg_data`` (row ``mmu_out_tag`` at byte ``stage_base + tag * R``).

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

A sparse-convolution offset is: the host places the offset's R x C weights in DRAM; set ``mxu_stage`` = 1 and
``mxu_stage_base``, run an MMU gather of the offset's input rows (tag = the row's place in X); in the cycle after
the MMU's done, feed the GEMM program on ``mxu_cmd_*``; the partial sums (M x C int32) are in DRAM at the
array's ``done`` (the host adds them into the outputs).
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
        self.links = []                 # (top signal, unit signal or None, direction "i"/"o")
        for prefix, comp in (("map", self.map), ("mmu", self.mmu)):
            for name, d, w in port_list(comp):
                self.links.append((Signal(w, name=f"{prefix}_{name}"), getattr(comp, name), d[0]))
        self.fld_src = None
        if self.map.feat is not None:   # the feature kNN path: its buffer fills from MMU gathers
            self.fld_src = Signal(name="map_fld_src")
            self.links.append((self.fld_src, None, "i"))
        self.mxu = MatrixUnit(cfg)
        for sig, d in self.mxu.prog_ports():
            self.links.append((Signal(sig.shape(), name=f"mxu_{sig.name}"), sig, d))
        for sig, d in ((self.mxu.stage, "i"), (self.mxu.stage_base, "i"), (self.mxu.stg_valid, "o"),
                       (self.mxu.stg_addr, "o"), (self.mxu.stg_data, "o")):
            self.links.append((Signal(sig.shape(), name=f"mxu_{sig.name}"), sig, d))

    def modules(self):
        """The array's FU-type modules (lego.generate.to_verilog converts them beside the top)."""
        return self.mxu.modules()

    def text_modules(self):
        return self.mxu.text_modules()

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
            if self.fld_src is not None and sig is self.map.fld_en:
                m.d.comb += sig.eq(Mux(self.fld_src, self.mmu.out_valid, top))
            elif self.fld_src is not None and sig is self.map.fld_addr:
                m.d.comb += sig.eq(Mux(self.fld_src, self.mmu.out_tag[:len(sig)], top))
            elif self.fld_src is not None and sig is self.map.fld_data:
                m.d.comb += sig.eq(Mux(self.fld_src, self.mmu.out_data[:len(sig)], top))
            elif d == "i":
                m.d.comb += sig.eq(top)
            else:
                m.d.comb += top.eq(sig)
        m.d.comb += [self.mxu.row_valid.eq(self.mmu.out_valid), self.mxu.row_data.eq(self.mmu.out_data),
                     self.mxu.row_tag.eq(self.mmu.out_tag)]
        return m


def emit_verilog(cfg: PointAccConfig) -> tuple[str, PointAccTop]:
    """``pointacc_top``'s Verilog: the top, its units, and the array's FU modules and instance level
    (``lego.generate.to_verilog``), one file."""
    from lego.generate import to_verilog
    top = PointAccTop(cfg)
    return to_verilog(top, TOP), top

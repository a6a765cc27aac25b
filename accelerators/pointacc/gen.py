"""PointAcc RTL generator: ``build_files(cfg)`` -> the ``Build`` that ``Accelerator.generate`` hands to the
shared directory writer (``pointacc_top.v``, ``files.f``, ``manifest.json``, ``report.json``, ``lint.vlt``,
``pointacc_top.core``, ``config.yaml`` and ``tb/``).

``pointacc_top`` (``top.py``) holds the mapping unit (``mapping.py``), the MMU with its cache (``mmu.py``)
and the matrix unit (``matrix.py``: lego's programmable GEMM array on R x C, ``lego.prog``, and the stager that
writes the MMU's gathered rows into the array's X in DRAM). Host interface: ``top.py``.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import lego.prog
from lego.prog.generate import PROG_LINT, prog_doc

from ..base import Build
from .bench import BENCH_DRAM_LATENCY, bench_prediction, input_tensors, output_tensors
from .config import PointAccConfig
from .top import TOP, emit_verilog

TB_DIR = Path(__file__).resolve().parent / "tb"

# Appended by the shared writer to lego's own waivers (Amaranth/Yosys backend message shapes only, each
# narrowed with -match); a warning that names a signal of the PointAcc units is not waived.
LINT_EXTRA = """// PointAcc: Amaranth names submodules '<top>.<inst>' in the top's single file (pointacc_top.v):
lint_off -rule DECLFILENAME -file "*" -match "Filename 'pointacc_top' does not match MODULE name: 'pointacc_top.*'"
lint_off -rule DECLFILENAME -file "*" -match "Filename 'pointacc_top' does not match MODULE name: 'pointacc_mxu_fu*'"
""" + PROG_LINT

HOST_PROTOCOL = {
    "map": "mapping unit: load points (ld_en/ld_addr/ld_data, one per cycle, while busy is low), set op and "
           "parameters, pulse start; queries by q_valid/q_data/q_ready; beats on out_* (no back-pressure); "
           "done with the last beat; cycles = the op's cycles (accelerators.pointacc.cycles)",
    "mmu": "MMU: pulse start with op (1 gather, 2 scatter, 3 scatter-add, 4 flush) and count; offer map "
           "entries (m_valid/m_row/m_tag/m_data, taken when m_ready); gather rows on out_*; DRAM port "
           "dram_req_* (a read asks for a block of cache_block_rows rows) / dram_resp_* (one row per cycle)",
    "mxu": "matrix unit: lego's programmable GEMM array (docs/programmable.md): programs on cmd_valid/cmd_ready/"
           "cmd_data (lego.prog.compiler.compile_gemm against manifest mxu.prog), DRAM behind the AXI4 master "
           "m_axi_*; with stage = 1 every MMU gather row (tag t) is written by stg_valid/stg_addr/stg_data to "
           "byte stage_base + t * R (the program's X)",
}
# with the feature kNN path (feature_points > 0) only
HOST_PROTOCOL_FEATURE_KNN = (
    "feature kNN (DGCNN): with the mapping unit idle set map_fld_src = 1 and run an MMU gather of one entry per "
    "feature-buffer row (m_row = DRAM row of features j*FL..j*FL+FL-1 of the point, m_tag = buffer row p*CH+j); "
    "each gathered row is written into the buffer; the cycle after the MMU's done set map_fld_src = 0 and start "
    "OP_KNNF (7) with n, m queries (point indices on q_data), k; beats (index, distance) on map_out_* like the "
    "xyz kNN's; from the gather's start to the kNN's done: cycles.gather_knn_feature_cycles")


def mxu_report(unit, prog: dict) -> dict:
    """What lego generated for the matrix unit: the programmable array's size, tile box, buffers, DMA, FUs,
    registers and passes."""
    b = unit.build
    return {"kind": "lego programmable GEMM array (lego.prog)", "module": unit.prog.core.module_name,
            "array": prog["array"], "dataflows": prog["dataflows"], "box": prog["box"],
            "scratchpad_bytes": prog["scratchpad_bytes"], "accumulator_bytes": prog["accumulator_bytes"],
            "dram_bits": prog["dram_bits"], "dram_outstanding": prog["dram_outstanding"], "fus": len(b.arch.fus),
            "registers": {"lp_bits": b.design.lp_bits}, "passes": list(b.pg.passes)}


def build_files(cfg: PointAccConfig) -> Build:
    text, top = emit_verilog(cfg)
    prog = prog_doc(top.mxu.build, hashlib.sha256(text.encode()).hexdigest())
    mxu = mxu_report(top.mxu, prog)
    pred, bp = bench_prediction(cfg, prog)
    tensors = {**input_tensors(cfg), **output_tensors(cfg, bp)}
    tb = {f.name: f.read_text() for f in sorted(TB_DIR.glob("*.py"))}
    tb["prog_bench.py"] = (Path(lego.prog.__file__).parent / "bench.py").read_text()     # the array's AXI DRAM model, command feeder
    manifest = {
        "workload": "pointacc",
        "shape": {"point_buffer": cfg.point_buffer, "mxu": [cfg.mxu_rows, cfg.mxu_cols],
                  "cache_bytes": cfg.cache_bytes},
        "dataflows": [],
        "array": [cfg.mxu_rows, cfg.mxu_cols],
        "bits": {"coord": cfg.coord_bits, "feature": 8, "weight": 8, "mxu_acc": 32},
        "ports": top.port_doc(),
        "tensors": tensors,
        "modes": {},
        "units": {"mapping": "MappingUnit", "mmu": "MMU", "mxu": "MatrixUnit"},
        "datapaths": {"mxu": mxu},
        "mxu": {"prog": prog},
        "host_protocol": dict(HOST_PROTOCOL, **({"feature_knn": HOST_PROTOCOL_FEATURE_KNN} if cfg.feature_points
                                                else {})),
        "geometry": {"lanes": cfg.distance_lanes, "sorter_width": cfg.sorter_width,
                     "sorter_latency": bp.geo.sorter_latency, "max_neighbors": cfg.max_neighbors,
                     "cache_sets": cfg.cache_sets, "cache_ways": cfg.cache_ways,
                     "cache_block_rows": cfg.cache_block_rows, "mmu_mshrs": cfg.mmu_mshrs,
                     "mmu_queue": cfg.mmu_queue},
        "config": cfg.to_dict(),
        "sw_reference": "sw_reference.pointacc",
        "bench": {"inputs": pred["inputs"], "dram_latency": BENCH_DRAM_LATENCY},
        "cycles_predicted": pred["predicted"],
    }
    report = {"datapaths": {"mxu": mxu}, "units": manifest["units"], "geometry": manifest["geometry"],
              "cycles": pred}
    return Build(top=TOP, sources={f"{TOP}.v": text}, manifest=manifest, report=report, tb=tb, lint=LINT_EXTRA,
                 extra={"config.yaml": cfg.to_yaml_text()},
                 summary=f"pointacc RTL ({cfg.name}), top {TOP}: mapping unit (NC {cfg.point_buffer}, "
                         f"L {cfg.distance_lanes}, W {cfg.sorter_width}), MMU ({cfg.cache_bytes} B cache), "
                         f"{cfg.mxu_rows}x{cfg.mxu_cols} programmable matrix unit ({cfg.mxu_dataflow}, tile box "
                         f"M={prog['box']['M']} N={prog['box']['N']} K={prog['box']['K']})")

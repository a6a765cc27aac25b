"""``lego gen --workload gemm --array RxC --dataflow D... --scratchpad-kib N --accumulator-kib N``: the
programmable array. The front end, the reuse analysis, the banking, the lowering and the LP are the ones
of the fixed-shape designs, run on the *tile box* (the largest tile the buffers hold); ``lego.prog.rtl``
then reads the step-counter extents, the bounds and the buffer bases from registers."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Fragment

from ..affine.dataflow import make_dataflow
from ..affine.library import builtin_workload
from ..arch.graph import build_arch
from ..design import MAX_ARRAY, ArrayDesign, parse_array
from ..emit import design_file
from ..emit.directory import write_design
from ..emit.files import layout_doc
from ..emit.outdir import check_target
from ..errors import LegoError
from ..prim.lower import frame_delay, lower
from ..prim.passes import PIPELINES
from .spec import ADDR_BITS, CSR, DIM_BITS, OP

DRAM_BITS = (64, 128, 256)
DRAM_OUTSTANDING = 4          # default read bursts in flight = write bursts unacknowledged (--dram-outstanding)
MAX_OUTSTANDING = 16
ACC_BYTES = 4            # accumulator words: int32 (the output dtype; sums wrap as sw_reference's)
TOP = "lego_gemm_prog"
# lint.vlt of a programmable design: lego's backend waivers (emit.files.LINT_VLT) and this one, of the command
# port's reserved bits (tests/lego/prog/test_prog_lint.py lints the Verilog with -Wall: zero warnings)
PROG_LINT = """// the reserved bits [49:32] of a command word (docs/programmable.md: 0 in every command; the host
// refuses a program that sets one) are read by no unit:
lint_off -rule UNUSEDSIGNAL -file "*" -match "Bits of signal are not used: 'cmd_data'[49:32]"
"""
KIB_MAX = 1024
# the workload families a programmable design is generated for (all on the one GEMM core) -> whether its load
# DMA has the convolution-window address generator (the windowed LOAD, WIN_* CSRs: docs/programmable.md)
IM2COL = {"gemm": False, "bmm": False, "conv2d": True, "dwconv2d": True}
# sides of a programmable array: a single-dataflow core is emitted hierarchically (lego.prog.hier: one module per
# FU type, the instance level as text) and generates 128x128 in under a minute; fused designs stay flat
PROG_MAX_ARRAY = 128


def _kib(v, field: str) -> int:
    if v is None:
        raise LegoError(f"{field}: required with --scratchpad-kib/--accumulator-kib (KiB, 1..{KIB_MAX})")
    if not 1 <= v <= KIB_MAX:
        raise LegoError(f"{field}: {v} KiB is out of range (1..{KIB_MAX})")
    return int(v) * 1024


def tile_box(R: int, C: int, spad: int, acc: int, eb: int) -> dict[str, int]:
    """The largest tile (M, N, K), multiples of lcm(R, C), whose X and W tiles fit the scratchpad twice
    (double buffered) and whose Y tile fits the accumulator twice."""
    L = R * C // math.gcd(R, C)
    mn = int(math.isqrt(acc // (2 * ACC_BYTES))) // L * L
    if mn < L:
        raise LegoError(f"--accumulator-kib: {acc // 1024} KiB holds no {L}x{L} int32 output tile twice "
                        f"(needs {2 * ACC_BYTES * L * L} bytes for a {R}x{C} array)")
    k = spad // (2 * eb * 2 * mn) // L * L
    if k < L:
        raise LegoError(f"--scratchpad-kib: {spad // 1024} KiB holds no X {mn}x{L} and W {L}x{mn} tile twice "
                        f"(needs {2 * eb * 2 * mn * L} bytes)")
    return {"M": mn, "N": mn, "K": k}


def _check_structure(arch) -> None:
    """What the run-time controller assumes: every index entry is one iterator (so a tensor dimension's bound
    is that iterator's tile extent), every step counter moves one iterator, the non-zero columns of each
    tensor's step matrix are independent (the change flags then depend only on which extents are 1), and
    no layout is replicated (the DMA scatters into cyclic banks)."""
    w = arch.workload
    for t in w.tensors:
        for a in t.index:
            if sorted(a.coeffs) != [0] * (len(a.coeffs) - 1) + [1] or a.const:
                raise LegoError(f"--workload: {t.name} index is not one iterator per dimension")
    for md in arch.modes:
        df = md.df
        for j in range(len(df.T)):
            if np.count_nonzero(df.AT[:, j]) != 1:
                raise LegoError(f"--dataflow: {df.name}: step counter {j} moves several iterators")
        for name, net in md.nets.items():
            cols = [k for k in range(net.M.shape[1]) if net.M[:, k].any()]
            if np.linalg.matrix_rank(net.M[:, cols].astype(float)) != len(cols):
                raise LegoError(f"--dataflow: {df.name}: the steps of {name} are not independent")
            if net.layout.replicated:
                raise LegoError(f"--dataflow: {df.name}: {name} needs replicated banks, which the DMA does not fill")


def counters(arch) -> dict[str, list[list]]:
    """Per mode: for each step counter, [iterator, divisor]: extent = ceil(tile[iterator] / divisor)."""
    w = arch.workload
    out = {}
    for md in arch.modes:
        df = md.df
        cs = []
        for j in range(len(df.T)):
            r = int(np.nonzero(df.AT[:, j])[0][0])
            cs.append([w.iterators[r], int(df.AT[r, j])])
        out[df.name] = cs
    return out


def fit_box(R: int, C: int, dataflows, bits: int, spad: int, acc: int):
    """The tile box whose physical banks (``ArchGraph.fused``) fit ``spad`` / ``acc`` bytes, double buffered:
    ``tile_box``, shrunk while the fused banks need more. Returns (workload, dataflows, arch, box, scratchpad
    bytes, accumulator bytes)."""
    eb = bits // 8
    box = tile_box(R, C, spad, acc, eb)
    if max(box.values()) >= 1 << DIM_BITS:
        raise LegoError(f"--scratchpad-kib: the tile box {box} overflows the {DIM_BITS}-bit bound registers")
    L = R * C // math.gcd(R, C)
    while True:
        # fused dataflows share physical banks (ArchGraph.fused: the deepest mode's words where the port
        # counts' ratios are powers of two, else the most banks times the deepest bank): shrink the box
        # until the banks, not just the tiles, fit the KiB asked for
        w = builtin_workload("gemm", dict(box), bits)
        dfs = [make_dataflow(w, d, (R, C)) for d in dataflows]
        arch = build_arch(w, dfs)
        fb = arch.fused
        used_spad = sum(2 * fb[t.name].nbanks * fb[t.name].depth * eb for t in w.inputs)
        used_acc = 2 * fb["Y"].nbanks * fb["Y"].depth * ACC_BYTES
        if used_spad <= spad and used_acc <= acc:
            break
        if used_acc > acc or box["K"] <= L:
            if box["M"] <= L:
                field = "--accumulator-kib" if used_acc > acc else "--scratchpad-kib"
                raise LegoError(f"{field}: the banks of the fused dataflows {', '.join(dataflows)} need more than "
                                f"{(acc if used_acc > acc else spad) // 1024} KiB even for the smallest tile")
            box = {"M": box["M"] - L, "N": box["N"] - L, "K": box["K"]}
        else:
            box = {**box, "K": box["K"] - L}
    return w, dfs, arch, box, used_spad, used_acc


@dataclass(frozen=True)
class ProgBuild:
    """A programmable array before emission: ``top`` (``ProgTop``, an Amaranth elaboratable that a larger design
    may hold as a submodule: accelerators/pointacc), the architecture, the scheduled primitive graph and the tile
    box the buffers hold."""
    workload: str
    top: object
    arch: object
    pg: object
    design: ArrayDesign
    box: dict
    used_spad: int
    used_acc: int


def build_prog(workload: str, R: int, C: int, dataflows: tuple[str, ...], bits: int, spad: int, acc: int,
               dram_bits: int, outstanding: int, name: str = TOP) -> ProgBuild:
    """Front end, banking, lowering, LP and the ``ProgTop`` of a programmable array (sizes in bytes; the
    arguments already checked). ``name``: the top module's name, and the prefix of its FU modules."""
    from .rtl import ProgTop
    w, dfs, arch, box, used_spad, used_acc = fit_box(R, C, dataflows, bits, spad, acc)
    _check_structure(arch)
    pg = lower(arch, 32, force_rmw=True)
    for p in PIPELINES["opt"]:
        pg = p(pg)
    d = ArrayDesign(w, arch, pg, 0, pg.register_bits(), dict(pg.lp))
    top = ProgTop(arch, pg, dram_bits, outstanding, name, im2col=IM2COL[workload])
    return ProgBuild(workload, top, arch, pg, d, box, used_spad, used_acc)


def prog_doc(b: ProgBuild, design_hash: str) -> dict:
    """The manifest's ``prog`` section (what ``lego compile`` and the cycle engine read); needs no elaboration."""
    arch, pg, top = b.arch, b.pg, b.top
    fd = frame_delay(arch)
    R, C = arch.modes[0].df.P
    dfs = [md.df for md in arch.modes]
    return {
        "workload": b.workload, "im2col": IM2COL[b.workload], "array": [R, C], "dataflows": [df.name for df in dfs],
        "modes": {df.name: i for i, df in enumerate(dfs)}, "box": b.box, "bits": arch.workload.inputs[0].bits,
        "dram_bits": top.db, "dram_outstanding": top.outstanding, "scratchpad_kib": None, "accumulator_kib": None,
        "scratchpad_bytes": b.used_spad, "accumulator_bytes": b.used_acc,
        "drain": {md.df.name: pg.drain(md.index, fd) for md in arch.modes}, "counters": counters(arch),
        "ld_lanes": dict(top.ld_lanes), "st_lanes": dict(top.st_lanes),
        "fresh": {md.df.name: list(pg.fresh[md.index]) for md in arch.modes},
        "y_moving": {md.df.name: [bool(md.nets["Y"].M[:, k].any()) for k in range(len(md.df.T))] for md in arch.modes},
        "banks": {t: fb.doc(arch.modes) for t, fb in arch.fused.items()},
        "opcodes": OP, "csr": CSR, "limits": {"addr_bits": ADDR_BITS, "dim_bits": DIM_BITS},
        "design_hash": design_hash,
    }


def generate_prog(workload: str, array: str | None, dataflows: tuple[str, ...], bits: int, spad_kib, acc_kib,
                  dram_bits: int | None, opt: bool, out: Path, force: bool = False,
                  outstanding: int | None = None) -> dict:
    from ..generate import to_verilog
    from .rtl import ProgTop

    check_target(out, force)
    if workload not in IM2COL:
        raise LegoError(f"--workload: the programmable array (--scratchpad-kib) runs {', '.join(IM2COL)} "
                        f"(not '{workload}')")
    if not opt:
        raise LegoError("--no-opt: the programmable array is LP-scheduled only")
    if bits not in (8, 16):
        raise LegoError(f"--bits: the programmable array moves whole bytes (allowed: 8, 16; got {bits})")
    dram_bits = 64 if dram_bits is None else dram_bits
    if dram_bits not in DRAM_BITS:
        raise LegoError(f"--dram-bits: {dram_bits} is not one of {', '.join(map(str, DRAM_BITS))}")
    outstanding = DRAM_OUTSTANDING if outstanding is None else outstanding
    if not isinstance(outstanding, int) or not 1 <= outstanding <= MAX_OUTSTANDING:
        raise LegoError(f"--dram-outstanding: {outstanding} is not an integer in 1..{MAX_OUTSTANDING} "
                        f"(read bursts the load DMA keeps in flight, write bursts the store DMA keeps "
                        f"unacknowledged)")
    spad, acc = _kib(spad_kib, "--scratchpad-kib"), _kib(acc_kib, "--accumulator-kib")
    R, C = parse_array(array, PROG_MAX_ARRAY)
    if len(dataflows) > 1 and max(R, C) > MAX_ARRAY:
        raise LegoError(f"--array: {R}x{C} is out of range for fused dataflows (1..{MAX_ARRAY} per side; "
                        f"a single --dataflow allows 1..{PROG_MAX_ARRAY})")
    if len(dataflows) > 4:
        raise LegoError("--dataflow: at most 4 fused dataflows (the command's mode field has 2 bits)")
    b = build_prog(workload, R, C, dataflows, bits, spad, acc, dram_bits, outstanding)
    w, arch, pg, d, top, box, used_spad, used_acc = (b.arch.workload, b.arch, b.pg, b.design, b.top, b.box,
                                                     b.used_spad, b.used_acc)
    X, Wt = w.inputs
    fb = arch.fused
    frag = Fragment.get(top, None)
    verilog = to_verilog(top, TOP, frag)
    design_hash = hashlib.sha256(verilog.encode()).hexdigest()
    prog = prog_doc(b, design_hash)
    prog.update(scratchpad_kib=spad // 1024, accumulator_kib=acc // 1024)
    drains = prog["drain"]
    ins = set(ProgTop.INPUTS)
    ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1}]
    ports += [{"name": s.name, "direction": "in" if s.name in ins else "out", "width": len(s)} for s in top.ports()]
    man = {"workload": workload, "shape": None, "dataflows": prog["dataflows"], "array": [R, C], "bits": bits,
           "opt": True, "ports": ports,
           "tensors": {"X": {"shape": [box["M"], box["K"]], "dtype": X.dtype, "role": "input", "bits": X.bits},
                       "W": {"shape": [box["K"], box["N"]], "dtype": Wt.dtype, "role": "input", "bits": Wt.bits},
                       "Y": {"shape": [box["M"], box["N"]], "dtype": "int32", "role": "output", "bits": 32}},
           "modes": prog["modes"], "layouts": layout_doc(arch), "prog": prog,
           "spec": {"workload": workload, "array": [R, C], "dataflows": list(dataflows), "bits": bits,
                    "scratchpad_kib": spad // 1024, "accumulator_kib": acc // 1024, "dram_bits": dram_bits,
                    "dram_outstanding": outstanding},
           "host_protocol": "docs/programmable.md: DRAM behind the AXI4 master m_axi_*, commands on "
                            "cmd_valid/cmd_ready/cmd_data, done after END"}
    rep = {"fus": len(arch.fus), "array": [R, C], "box": box,
           "memory": {"banks": {t.name: fb[t.name].nbanks for t in w.tensors},
                      "depth": {t.name: fb[t.name].depth for t in w.tensors},
                      "buffers": 2, "scratchpad_bytes": used_spad, "accumulator_bytes": used_acc},
           "registers": {"lp_bits": d.lp_bits, "emitted_bits": top.core.emitted_bits},
           "lp": {k: d.lp_stats.get(k) for k in ("variables", "constraints", "solve_seconds", "solver")},
           "drain": drains, "passes": list(pg.passes), "primitives": pg.stats()}
    here = Path(__file__).resolve().parent
    tb = {"tb/prog_bench.py": (here / "bench.py").read_text()}
    write_design(out, top=TOP, kind="programmable", sources={f"{TOP}.v": verilog}, manifest=man, report=rep,
                 tb=tb, lint=PROG_LINT, extra={design_file.FILE: design_file.dumps(d)}, force=force,
                 description=f"lego programmable {workload} on {R}x{C} ({', '.join(dataflows)})")
    return {"top": TOP, "dir": str(out), "box": box, "design_hash": design_hash,
            "summary": f"top {TOP}, {len(arch.fus)} FUs, tile box M={box['M']} N={box['N']} K={box['K']}, "
                       f"scratchpad {used_spad} B, accumulator {used_acc} B, {dram_bits}-bit AXI, "
                       f"{outstanding} read and write burst{'s' if outstanding > 1 else ''} outstanding"}

"""PointAcc matrix unit: lego's programmable GEMM array (``lego.prog``, docs/programmable.md) on an R x C array,
generated from the configuration, and the *gather stager* that writes the MMU's gathered feature rows into the
DRAM where the array's load DMA reads them.

The array is the one ``lego gen --workload gemm --array RxC --dataflow D --scratchpad-kib S --accumulator-kib A
--dram-bits B --dram-outstanding N`` makes (``lego.prog.generate.build_prog``: the same front end, banking, LP and
``ProgTop``), with ``R x C = mxu_rows x mxu_cols``, ``D = mxu_dataflow``, ``S = weight_buffer_bytes`` (the X and W
scratchpad), ``A = acc_buffer_bytes`` (the int32 accumulator), ``B = mxu_dram_bits`` and ``N = mxu_outstanding``.
Its module is named ``pointacc_mxu`` (FU modules ``pointacc_mxu_fu*``). One design runs any GEMM; only the
program changes: ``lego.prog.compiler.compile_gemm`` writes it, ``lego.prog.timing`` times it exactly.

A gather-GEMM (a sparse-convolution offset, the set-abstraction layer): the host places the layer's weights (K x N
int8, row-major) in DRAM; an MMU gather of the map's rows with ``mxu_stage`` = 1 writes gathered row ``tag`` to
DRAM byte address ``mxu_stage_base + tag * R`` through the stager's write port (``stg_*``, always accepted, one row
a cycle, in the cycle of the MMU's ``out_valid``), so the rows form the GEMM's X (M x K, row stride R bytes);
then the host feeds the GEMM program on ``mxu_cmd_*`` and the array reads X and W, and writes Y (M x N int32),
through its AXI4 master ``mxu_m_axi_*``.
"""
from __future__ import annotations

import functools

from amaranth.hdl import Elaboratable, Module, Signal

from lego.prog.compiler import compile_gemm
from lego.prog.generate import ProgBuild, build_prog, prog_doc
from lego.prog.rtl import ProgTop
from lego.prog.spec import ADDR_BITS

__all__ = ["MatrixUnit", "MXU_TOP", "mxu_build", "mxu_prog", "gemm_program", "mxu_gemm", "pack_int8"]

MXU_TOP = "pointacc_mxu"


def mxu_build(cfg) -> ProgBuild:
    """The programmable array of ``cfg`` (not elaborated)."""
    return build_prog("gemm", cfg.mxu_rows, cfg.mxu_cols, (cfg.mxu_dataflow,), 8, cfg.weight_buffer_bytes,
                      cfg.acc_buffer_bytes, cfg.mxu_dram_bits, cfg.mxu_outstanding, name=MXU_TOP)


@functools.lru_cache(maxsize=8)
def mxu_prog(cfg) -> dict:
    """The array's ``prog`` manifest section (tile box, drains, counters, lanes: what the compiler and the exact
    timing read), from the configuration alone (``design_hash`` empty; ``lego gen`` records the real one)."""
    b = mxu_build(cfg)
    _silence(b.top)
    return prog_doc(b, "")


def _silence(top) -> None:
    """A ``ProgTop`` built for its parameters only (not elaborated): no UnusedElaboratable warning."""
    top.core._MustUse__silence = True
    top._MustUse__silence = True


def gemm_program(prog: dict, m: int, k: int, n: int, latency: int, base: int = 0) -> dict:
    """The fastest program of ``Y[m x n] = X[m x k] W[k x n]`` (``compile_gemm``) with every DRAM address moved by
    ``base`` bytes: ``words``, ``names`` (one per command), ``cycles`` (exact, at DRAM ``latency``) and ``dram``
    (``X``, ``W``, ``Y``: addr, shape, stride, bytes; addresses moved)."""
    from lego.prog.model import relocate
    header, words, cmds = compile_gemm({"prog": prog}, {"M": m, "N": n, "K": k}, latency=latency)
    words, cmds = relocate(words, cmds, base)
    dram = {t: {**v, "addr": v["addr"] + base} for t, v in header["dram"].items()}
    return {"words": words, "names": [" ".join(f"{a}={b}" for a, b in c.items()) for c in cmds],
            "cycles": int(header["predicted"]["cycles"]), "dram": dram, "mode": header["mode"],
            "tile": header["tile"], "dram_bytes": int(header["dram_bytes"]) + base}


@functools.lru_cache(maxsize=65536)
def mxu_gemm(cfg, m: int, k: int, n: int, latency: int) -> tuple[int, str, tuple]:
    """(exact cycles, mode, tile) of the fastest program of an m x k by k x n GEMM on ``cfg``'s array at DRAM
    ``latency`` (``gemm_program``; memoized: the network model asks for few distinct shapes)."""
    g = gemm_program(mxu_prog(cfg), m, k, n, latency)
    return g["cycles"], g["mode"], tuple(sorted(g["tile"].items()))


class MatrixUnit(Elaboratable):
    """The programmable array (``prog``: ``ProgTop``) and the gather stager; see the module docstring.

    Stager ports: ``stage`` (In, 1), ``stage_base`` (In, 32: byte address of X), ``row_valid``/``row_data``/
    ``row_tag`` (In: the MMU's gather output), ``stg_valid`` (Out, 1), ``stg_addr`` (Out, 32), ``stg_data``
    (Out, R*8: lane i = bits [8i, 8i+8))."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.build = mxu_build(cfg)
        self.prog = self.build.top
        R = cfg.mxu_rows
        self.stage = Signal(name="stage")
        self.stage_base = Signal(ADDR_BITS, name="stage_base")
        self.row_valid = Signal(name="row_valid")
        self.row_data = Signal(R * 8, name="row_data")
        self.row_tag = Signal(16, name="row_tag")
        self.stg_valid = Signal(name="stg_valid")
        self.stg_addr = Signal(ADDR_BITS, name="stg_addr")
        self.stg_data = Signal(R * 8, name="stg_data")

    def silence(self) -> None:
        """Built for its ports and parameters only (not elaborated): no UnusedElaboratable warning."""
        _silence(self.prog)
        self._MustUse__silence = True

    def prog_ports(self) -> list[tuple[Signal, str]]:
        """The array's ports with their directions ("i"/"o"), in ``ProgTop.ports()`` order."""
        ins = set(ProgTop.INPUTS)
        return [(s, "i" if s.name in ins else "o") for s in self.prog.ports()]

    def modules(self):
        return self.prog.modules()

    def text_modules(self):
        return self.prog.text_modules()

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = self.prog
        m.d.comb += [self.stg_valid.eq(self.stage & self.row_valid),
                     self.stg_addr.eq(self.stage_base + self.row_tag * self.cfg.mxu_rows),
                     self.stg_data.eq(self.row_data)]
        return m


def pack_int8(values) -> int:
    """Lane i of the word = int8 values[i] (two's complement), lane 0 lowest."""
    w = 0
    for i, v in enumerate(values):
        w |= (int(v) & 0xFF) << (8 * i)
    return w

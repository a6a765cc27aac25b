"""The generation pipeline (Calyx-style named passes): spec → Workload/Dataflow IR → ArchGraph →
PrimGraph → scheduled PrimGraph → Amaranth → Verilog."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .affine.dataflow import make_dataflow
from .affine.library import ARRAY_WORKLOADS, WORKLOADS, builtin_workload, parse_shape
from .affine.widths import acc_bits
from .affine.workload import Workload, parse_workload_file
from .arch.graph import ArchGraph, build_arch
from .errors import LegoError
from .prim.graph import PrimGraph
from .prim.lower import frame_delay, lower
from .prim.passes import PIPELINES

MAX_ARRAY = 64
# A fixed-shape design keeps every tensor whole in its banks: refuse, before building anything, designs
# whose banks would hold more words than this (64 Mi words: 2048^3 GEMM needs 12.6 Mi).
MAX_BANK_WORDS = 1 << 26


@dataclass(frozen=True)
class GenSpec:
    workload: str = "attention"
    shape: str | None = None
    array: tuple[int, int] = (4, 4)
    dataflows: tuple[str, ...] = ("os",)
    bits: int = 8
    opt: bool = True


@dataclass
class ArrayDesign:
    """One generated spatial array (a single affine nest, possibly with fused dataflows)."""
    workload: Workload
    arch: ArchGraph
    pg: PrimGraph          # the scheduled graph that is emitted
    naive_bits: int
    lp_bits: int
    lp_stats: dict = field(default_factory=dict)

    @property
    def cycles(self) -> list[int]:
        fd = frame_delay(self.arch)
        return [m.df.steps + self.pg.drain(m.index, fd) for m in self.arch.modes]


def parse_array(text: str | None, limit: int = MAX_ARRAY) -> tuple[int, int]:
    """``RxC`` (e.g. 4x8) -> (R, C), each side in 1..limit; None -> the default 4x4. The one parser of
    --array (generation, model runs, exploration)."""
    if text is None:
        return (4, 4)
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise LegoError(f"--array: '{text}' is not RxC (e.g. 4x8)")
    r, c = int(m.group(1)), int(m.group(2))
    if not (1 <= r <= limit and 1 <= c <= limit):
        raise LegoError(f"--array: {r}x{c} is out of range (1..{limit} per side)")
    return r, c


def load_workload(name: str, shape: str | None, bits: int) -> Workload:
    if bits not in (4, 8, 12, 16):
        raise LegoError(f"--bits: {bits} is not supported (allowed: 4, 8, 12, 16)")
    if name in ARRAY_WORKLOADS:
        return check_size(builtin_workload(name, parse_shape(shape, name), bits), "--shape")
    if name.endswith((".yaml", ".yml", ".json")) or os.path.sep in name:
        if shape:
            raise LegoError("--shape: not allowed with a workload file (extents are in the file)")
        return check_size(parse_workload_file(Path(name)), "tensors")
    raise LegoError(f"--workload: unknown workload '{name}' (built-in: {', '.join(WORKLOADS)}; or a .yaml/.json file)")


def check_size(w: Workload, field: str) -> Workload:
    """Refuse a workload whose tensors would not fit this generator's banks (``MAX_BANK_WORDS``)."""
    words = sum(int(np.prod(t.shape, dtype=object)) for t in w.tensors)
    if words > MAX_BANK_WORDS:
        raise LegoError(f"{field}: the tensors of {w.name} hold {words:,} words, more than the {MAX_BANK_WORDS:,} "
                        f"a fixed-shape design keeps in its banks")
    return w


def build_array(w: Workload, array: tuple[int, int], dataflows: tuple[str, ...], opt: bool = True) -> ArrayDesign:
    return build_design(w, [make_dataflow(w, d, array) for d in dataflows], opt)


def build_design(w: Workload, dfs: list, opt: bool = True, narrow: bool = True) -> ArrayDesign:
    """Checked dataflows -> ArchGraph -> PrimGraph through the naive and the optimizing pipelines.
    ``narrow``: accumulate at ``widths.acc_bits(w)`` (no partial sum can wrap) instead of the output width;
    both pipelines get the same widths, so ``--no-opt`` differs only in the back end's choices."""
    arch = build_arch(w, dfs)
    pg0 = lower(arch, acc_bits(w) if narrow else None)
    naive = pg0
    for p in PIPELINES["naive"]:
        naive = p(naive)
    best = pg0
    for p in PIPELINES["opt"]:
        best = p(best)
    stats = dict(best.lp)
    d = ArrayDesign(w, arch, best if opt else naive, naive.register_bits(), best.register_bits(), stats)
    for m, c in zip(arch.modes, d.cycles):
        if c >= 1 << 32:
            raise LegoError(f"--shape: a run in {m.df.name} takes {c:,} cycles, more than the 32-bit cycles "
                            f"register counts")
    return d

"""A Gemmini-like baseline, modelled in the same simulator as lego designs.

Fixed 16 x 16 weight-stationary systolic array (Gemmini's default ``meshRows x tileRows = 16``),
256 KiB scratchpad for inputs and weights, 64 KiB accumulator (Gemmini's default ``acc_capacity``),
16 GB/s DRAM. Gemmini executes every layer as a GEMM:

* conv2d is lowered with im2col (Gemmini's LoopConv / im2col unit): M = n*h*w output pixels,
  N = output channels, K = c*r*s. The im2col expansion happens on chip, so DRAM traffic is that
  of the stored input tensor.
* dwconv2d runs one GEMM per channel (as gemmini-rocc-tests' ``conv_dw`` does): G = c groups of
  M = n*h*w, N = 1, K = r*s, which leaves 15 of 16 columns idle.
* gemm / bmm map directly.

WS cycle formula (one invocation): ``steps = ceil(K/16) * ceil(N/16) * M`` (times G) and
``cycles = steps + 15 + 15 + pipeline_depth``, the same convention as lego designs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lego.errors import LegoError
from simulator.mapping import CONTROL_SYSTOLIC, KIB, PIPELINE_DEPTH, ArrayConfig, map_layer
from simulator.memory import DramConfig
from simulator.models import Layer, bmm, gemm
from simulator.report import Report


@dataclass(frozen=True)
class GemminiConfig:
    dim: int = 16
    spad_bytes: int = 256 * KIB
    acc_bytes: int = 64 * KIB
    dram: DramConfig = field(default_factory=DramConfig)
    pipeline_depth: int = PIPELINE_DEPTH
    in_bits: int = 8
    acc_bits: int = 32
    out_bits: int = 8
    double_buffered: bool = True
    spad_banks: int = 4                    # Gemmini default sp_banks, one DIM-byte row per access
    acc_banks: int = 2                     # Gemmini default acc_banks, DIM x 32-bit rows

    def __post_init__(self) -> None:
        if not isinstance(self.dim, int) or self.dim <= 0:
            raise LegoError(f"dim: {self.dim!r} must be a positive integer")

    def array_config(self) -> ArrayConfig:
        return ArrayConfig(rows=self.dim, cols=self.dim, dataflows=("ws",),
                           control=CONTROL_SYSTOLIC, pipeline_depth=self.pipeline_depth,
                           in_bits=self.in_bits, acc_bits=self.acc_bits, out_bits=self.out_bits,
                           spad_bytes=self.spad_bytes, acc_bytes=self.acc_bytes,
                           double_buffered=self.double_buffered, dram=self.dram,
                           spad_banks=self.spad_banks, spad_width_bits=self.dim * self.in_bits,
                           acc_banks=self.acc_banks, acc_width_bits=self.dim * self.acc_bits,
                           name="gemmini")


def lower(layer: Layer) -> Layer:
    """The GEMM (or per-channel batched GEMM) Gemmini runs for ``layer``."""
    G, M, N, K = layer.gemm_view()
    if layer.op == "gemm":
        return layer
    if layer.op == "conv2d":
        return gemm(layer.name, M, N, K)
    return bmm(layer.name, G, M, N, K)


def gemmini_layer(layer: Layer, cfg: GemminiConfig | None = None) -> Report:
    """Run one layer on the Gemmini-like baseline."""
    cfg = cfg or GemminiConfig()
    return map_layer(layer, cfg.array_config(), "ws", compute_layer=lower(layer))


def ws_gemm_cycles(m: int, n: int, k: int, dim: int = 16,
                   pipeline_depth: int = PIPELINE_DEPTH) -> int:
    """Hand formula of one WS invocation on a dim x dim systolic array (no memory stalls)."""
    return -(-k // dim) * -(-n // dim) * m + 2 * (dim - 1) + pipeline_depth

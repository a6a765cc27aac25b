"""SpAtten hardware configuration: one frozen dataclass on the accelerators' config scaffold
(``accelerators/config.py``: type checks, YAML in and out, ``preset: NAME`` as a file's base), two presets.

Presets (see docs/spatten.md for provenance):
- ``full``: the authors' RTL defaults: 512 Q.K + 512 P.V multipliers, 256 buffer lines, 16 HBM2
  channels of 32 GB/s (512 GB/s) at a 1 GHz core clock.
- ``eighth``: "SpAtten1/8": 64 + 64 multipliers, 2048 buffer lines, top-k parallelism 16, 1/8 of
  the DRAM bandwidth (2 channels, 64 GB/s).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import Config, need


def _pow2(x: int) -> bool:
    return x > 0 and (x & (x - 1)) == 0


@dataclass(frozen=True)
class SpAttenConfig(Config):
    name: str = "full"
    # compute
    qk_multipliers: int = 512          # multipliers of the Q.K dot-product array
    pv_multipliers: int = 512          # multipliers of the P.V array
    head_dim: int = 64                 # D
    clock_ghz: float = 1.0
    # buffers and top-k
    buffer_lines: int = 256            # K (and V) buffer lines, each qk_multipliers wide
    topk_parallelism: int = 16         # comparators / zero-eliminator lanes of the top-k engine
    topk_max_n: int = 1024             # capacity of the RTL top-k engine (elements per request)
    max_heads: int = 16                # heads the RTL head pruner holds (GPT-2/BERT-base: 12)
    # DRAM
    dram_channels: int = 16
    dram_bandwidth_gbps: float = 512.0  # total, GB/s
    dram_transaction_bytes: int = 32
    # numerics (bit-accurate with sw_reference.spatten)
    q_bits: int = 12                   # signed query
    kv_bits: int = 10                  # signed K/V, MSB part + LSB part
    kv_msb_bits: int = 6               # fetched first
    prob_bits: int = 16                # softmax output, unsigned Q0.16
    exp_lut_bits: int = 8              # exp LUT has 2**exp_lut_bits entries
    exp_lut_frac_bits: int = 4         # LUT step is 2**-frac in the exponent
    recip_bits: int = 40               # reciprocal = floor(2**recip_bits / sum)
    dequant_shift: int = 24            # LUT index = (max - s) * dequant_scale >> dequant_shift
    importance_bits: int = 32          # token/head importance accumulators
    requant_threshold: float = 0.05    # need LSBs when max prob < threshold
    requant_values: bool = False       # traces refetch K LSBs only ("inc4_k")
    # energy estimate (simulator/energy.py; its logic and SRAM rows are Horowitz's 45 nm figures)
    node_nm: float = 45.0              # technology node the on-chip energy is scaled to (DRAM is not)

    # ---- derived -------------------------------------------------------------------------------
    @property
    def kv_lsb_bits(self) -> int:
        return self.kv_bits - self.kv_msb_bits

    @property
    def keys_per_cycle(self) -> int:
        """Keys the Q.K array consumes per cycle (= number of softmax units)."""
        return self.qk_multipliers // self.head_dim

    @property
    def values_per_cycle(self) -> int:
        return self.pv_multipliers // self.head_dim

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_bandwidth_gbps / self.clock_ghz

    @property
    def threshold_q(self) -> int:
        """Requant threshold in the probability's fixed point (Q0.prob_bits)."""
        return int(math.floor(self.requant_threshold * (1 << self.prob_bits) + 0.5))

    @property
    def score_bits(self) -> int:
        """Q.K score: a q_bits x kv_bits product (q_bits + kv_bits - 1 bits) summed over D terms."""
        return self.q_bits + self.kv_bits + max(1, (self.head_dim - 1).bit_length())

    @property
    def pv_acc_bits(self) -> int:
        """The P.V accumulator (``out_data`` lanes of spatten_top): an unsigned prob_bits x signed kv_bits
        product (prob_bits + kv_bits bits) summed over up to topk_max_n V rows, plus one spare bit."""
        return self.prob_bits + self.kv_bits + self.topk_max_n.bit_length() + 1

    # ---- presets --------------------------------------------------------------------------------
    @classmethod
    def presets(cls) -> dict[str, "SpAttenConfig"]:
        return {"full": cls(),
                "eighth": cls(name="eighth", qk_multipliers=64, pv_multipliers=64, buffer_lines=2048,
                              topk_parallelism=16, dram_channels=2, dram_bandwidth_gbps=64.0)}

    # ---- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        need(self, bool(self.name), "name", "must be a non-empty string")
        need(self, 1 <= self.head_dim <= 1024 and _pow2(self.head_dim), "head_dim",
             "must be a power of two in 1..1024")
        for m in ("qk_multipliers", "pv_multipliers"):
            need(self, getattr(self, m) >= self.head_dim and getattr(self, m) % self.head_dim == 0, m,
                 f"must be a positive multiple of head_dim={self.head_dim}")
        need(self, 0 < self.clock_ghz <= 10, "clock_ghz", "must be in (0, 10]")
        need(self, 1 <= self.buffer_lines <= 1 << 20, "buffer_lines", "must be in 1..1048576")
        need(self, _pow2(self.topk_parallelism) and 2 <= self.topk_parallelism <= 256, "topk_parallelism",
             "must be a power of two in 2..256")
        need(self, self.topk_max_n >= self.topk_parallelism and self.topk_max_n % self.topk_parallelism == 0
             and self.topk_max_n <= 65536, "topk_max_n",
             f"must be a multiple of topk_parallelism={self.topk_parallelism}, at most 65536")
        need(self, 1 <= self.max_heads <= 256, "max_heads", "must be in 1..256")
        need(self, 1 <= self.dram_channels <= 256, "dram_channels", "must be in 1..256")
        need(self, self.dram_bandwidth_gbps > 0, "dram_bandwidth_gbps", "must be > 0")
        need(self, _pow2(self.dram_transaction_bytes) and self.dram_transaction_bytes <= 4096,
             "dram_transaction_bytes", "must be a power of two up to 4096")
        need(self, 2 <= self.q_bits <= 32, "q_bits", "must be in 2..32")
        need(self, 2 <= self.kv_bits <= 32, "kv_bits", "must be in 2..32")
        need(self, 1 <= self.kv_msb_bits <= self.kv_bits, "kv_msb_bits", f"must be in 1..kv_bits={self.kv_bits}")
        need(self, 8 <= self.prob_bits <= 24, "prob_bits", "must be in 8..24")
        need(self, 2 <= self.exp_lut_bits <= 12, "exp_lut_bits", "must be in 2..12")
        need(self, 0 <= self.exp_lut_frac_bits <= 8, "exp_lut_frac_bits", "must be in 0..8")
        need(self, self.prob_bits + 8 <= self.recip_bits <= 64, "recip_bits", "must be in prob_bits+8..64")
        need(self, 4 <= self.dequant_shift <= 32, "dequant_shift", "must be in 4..32")
        need(self, 16 <= self.importance_bits <= 64, "importance_bits", "must be in 16..64")
        need(self, 0.0 < self.requant_threshold < 1.0, "requant_threshold", "must be in (0, 1)")
        need(self, 5.0 <= self.node_nm <= 180.0, "node_nm", "must be in 5..180 (nm)")

"""The attention accelerator's configuration (``lego gen --workload attention``'s options as a frozen
dataclass): problem size, array, dataflows, input width, back-end pipeline."""
from __future__ import annotations

from dataclasses import dataclass

from lego.affine.dataflow import PRESETS
from lego.design import MAX_ARRAY

from ..config import Config, need


@dataclass(frozen=True)
class AttentionConfig(Config):
    L: int = 12                               # tokens (rows of Q, K, V)
    D: int = 8                                # head dimension
    array: tuple[int, int] = (4, 4)           # FU array of each of the two generated arrays
    dataflows: tuple[str, ...] = ("os",)      # fused dataflows of both arrays (a mode input selects)
    bits: int = 8                             # Q, K, V input width (P is 16-bit with 15 fraction bits)
    opt: bool = True                          # LP delay matching (False: the naive ASAP pipeline)

    def validate(self) -> None:
        need(self, 1 <= self.L <= 1024, "L", "must be in 1..1024")
        need(self, 1 <= self.D <= 1024, "D", "must be in 1..1024")
        need(self, all(1 <= x <= MAX_ARRAY for x in self.array), "array", f"sides must be in 1..{MAX_ARRAY}")
        need(self, self.bits == 8, "bits", "attention supports 8-bit Q/K/V only")
        need(self, len(self.dataflows) >= 1 and all(d in PRESETS for d in self.dataflows)
             and len(set(self.dataflows)) == len(self.dataflows), "dataflows",
             f"must be distinct presets of {', '.join(PRESETS)}")

"""The one report type every engine returns (cycle model, Icarus, Verilator, accelerator models)."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class Report:
    """Result of simulating a design or a model.

    Units are in the field names: cycles, bytes, pJ, um^2, seconds.
    ``outputs`` maps tensor name -> numpy array (not serialized by ``to_csv``).
    """

    engine: str
    cycles: int
    stall_cycles: int = 0
    sram_reads: dict[str, int] = field(default_factory=dict)    # per tensor, element accesses
    sram_writes: dict[str, int] = field(default_factory=dict)
    dram_bytes: dict[str, int] = field(default_factory=dict)    # per tensor
    energy_pj: dict[str, float] = field(default_factory=dict)   # per component
    area_um2: dict[str, float] = field(default_factory=dict)    # per component
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    sim_seconds: float = 0.0
    match: bool | None = None
    max_abs_err: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.sim_seconds if self.sim_seconds > 0 else float("inf")

    @property
    def total_energy_pj(self) -> float:
        return float(sum(self.energy_pj.values()))

    @property
    def total_area_um2(self) -> float:
        return float(sum(self.area_um2.values()))

    @property
    def total_dram_bytes(self) -> int:
        return int(sum(self.dram_bytes.values()))

    def to_dict(self, with_outputs: bool = True) -> dict[str, Any]:
        d = asdict(self)
        d.pop("outputs")
        if with_outputs:
            d["outputs"] = {k: np.asarray(v).tolist() for k, v in self.outputs.items()}
        cps = self.cycles_per_second
        d["cycles_per_second"] = cps if np.isfinite(cps) else None
        d["energy_pj_total"] = self.total_energy_pj
        d["area_um2_total"] = self.total_area_um2
        d["dram_bytes_total"] = self.total_dram_bytes
        return d

    def summary(self) -> dict[str, Any]:
        """Scalar totals and per-component breakdowns, plus ``extra`` at the top level: the JSON of
        ``lego sim --accelerator`` (units in the key names)."""
        out: dict[str, Any] = {"engine": self.engine, "cycles": self.cycles, "stall_cycles": self.stall_cycles,
                               "dram_bytes": self.total_dram_bytes, "energy_pj": self.total_energy_pj,
                               "area_um2": self.total_area_um2, "sim_seconds": self.sim_seconds,
                               "dram_bytes_by_tensor": dict(self.dram_bytes),
                               "energy_pj_by_component": dict(self.energy_pj),
                               "area_um2_by_component": dict(self.area_um2)}
        if self.match is not None:
            out["match"] = self.match
        out.update(self.extra)
        return out

    def to_json(self, with_outputs: bool = True) -> str:
        return json.dumps(self.to_dict(with_outputs), sort_keys=True)

    def breakdown_columns(self, parts=("sram_reads", "sram_writes", "dram_bytes", "energy_pj", "area_um2")) -> dict:
        """Per-tensor / per-component figures as flat columns named ``<field>_<key>`` (units in names)."""
        return {f"{p}_{k}": v for p in parts for k, v in sorted(getattr(self, p).items())}

    def to_csv(self) -> str:
        """One row: scalar fields plus flattened per-tensor/per-component columns with units."""
        row: dict[str, Any] = {
            "engine": self.engine,
            "cycles": self.cycles,
            "stall_cycles": self.stall_cycles,
            "sim_seconds": self.sim_seconds,
            "energy_pj": self.total_energy_pj,
            "area_um2": self.total_area_um2,
            "dram_bytes": self.total_dram_bytes,
        }
        row.update(self.breakdown_columns())
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
        return buf.getvalue()

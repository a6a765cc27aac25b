"""PointAcc hardware configuration: one frozen dataclass, presets ``server`` and ``edge``, YAML in.

Provenance of each default is given next to the field: "paper" is PointAcc (Lin et al., MICRO 2021,
arXiv 2110.07600) as summarized in the team's study notes, where every figure is marked "recalled,
verify"; "unverified" means nobody has checked it against the PDF; "ours" is our own choice. No
value here has been checked against the paper. The shared scaffold ``accelerators.config.Config``
does not exist on this branch, so this is a plain frozen dataclass with ``validate()``,
``from_dict`` and ``from_yaml``; unknown keys and wrong types raise ``LegoError('<field>: ...')``.

The RTL generators take their parameters from here: ``mapping_params()`` for
``accelerators.pointacc.mapping.MappingUnit`` and ``mmu_params()`` for
``accelerators.pointacc.mmu.MMU``.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lego.errors import LegoError

__all__ = ["PointAccConfig", "PRESETS", "preset"]


def _pow2(v: int) -> bool:
    return v >= 1 and v & (v - 1) == 0


@dataclass(frozen=True)
class PointAccConfig:
    """One PointAcc configuration. Units are in the field names."""

    name: str = "server"
    # ---- mapping unit ----
    sorter_width: int = 16          # W, entries per bitonic sorter block; ours (paper: "verify in the PDF")
    point_buffer: int = 8192        # points the on-chip point buffer holds; ours, unverified
    distance_lanes: int = 8         # L, squared distances per cycle; ours, unverified
    max_neighbors: int = 64         # ball-query K capacity; ours, from PointNet++ SSG (K = 32, 64)
    coord_bits: int = 21            # signed coordinate width; from sw_reference.pointacc (2**20 range)
    max_kernel_size: int = 7        # sparse-conv kernel K <= 7; from sw_reference.pointacc.kernel_map
    # ---- memory management unit (feature cache) ----
    feature_row_bytes: int = 64     # one feature row (64 channels x int8); ours
    cache_bytes: int = 65536        # cache capacity; ours, unverified (paper: configurable caching)
    cache_block_rows: int = 4       # rows per cache block; ours
    cache_ways: int = 4             # associativity (LRU); ours
    # ---- matrix unit and system ----
    mxu_rows: int = 64              # systolic array rows; paper (recalled 64x64, unverified)
    mxu_cols: int = 64              # paper (recalled, unverified)
    clock_ghz: float = 1.0          # paper (recalled 1 GHz in 40 nm, unverified)
    dram_latency_cycles: int = 100  # fixed DRAM read latency in cycles; ours, unverified
    dram_gbps: float = 256.0        # DRAM bandwidth in GB/s; HBM2 (paper recalls HBM2), unverified

    def __post_init__(self) -> None:
        self.validate()

    # ---- derived ----
    @property
    def cache_sets(self) -> int:
        return self.cache_bytes // (self.feature_row_bytes * self.cache_block_rows * self.cache_ways)

    def mapping_params(self) -> dict[str, int]:
        """Keyword arguments of ``MappingUnit``."""
        return {"capacity": self.point_buffer, "lanes": self.distance_lanes, "sorter_width": self.sorter_width,
                "max_neighbors": self.max_neighbors, "coord_bits": self.coord_bits}

    def mmu_params(self) -> dict[str, int]:
        """Keyword arguments of ``MMU`` (rows of feature_row_bytes bytes, 8-bit lanes)."""
        return {"lanes": self.feature_row_bytes, "lane_bits": 8, "block_rows": self.cache_block_rows,
                "sets": self.cache_sets, "ways": self.cache_ways}

    # ---- validation ----
    def validate(self) -> None:
        _check_types(self)

        def need(cond: bool, f: str, msg: str) -> None:
            if not cond:
                raise LegoError(f"{f}: {msg}, got {getattr(self, f)!r}")

        need(bool(self.name), "name", "must be a non-empty string")
        need(self.sorter_width >= 2 and _pow2(self.sorter_width), "sorter_width", "must be a power of two >= 2")
        need(_pow2(self.distance_lanes), "distance_lanes", "must be a power of two")
        need(self.distance_lanes <= self.sorter_width, "distance_lanes", "must be <= sorter_width")
        need(self.point_buffer >= 1 and self.point_buffer % self.sorter_width == 0, "point_buffer",
             "must be a positive multiple of sorter_width")
        need(self.point_buffer <= 1 << 20, "point_buffer", "must be <= 2**20 points")
        need(self.max_neighbors >= 1 and self.max_neighbors % self.distance_lanes == 0, "max_neighbors",
             "must be a positive multiple of distance_lanes")
        need(2 <= self.coord_bits <= 21, "coord_bits", "must be in 2..21 (the golden models' range is 21 bits)")
        need(1 <= self.max_kernel_size <= 7, "max_kernel_size", "must be in 1..7")
        need(self.feature_row_bytes >= 1, "feature_row_bytes", "must be positive")
        need(_pow2(self.cache_block_rows), "cache_block_rows", "must be a power of two")
        need(self.cache_ways >= 1, "cache_ways", "must be positive")
        unit = self.feature_row_bytes * self.cache_block_rows * self.cache_ways
        need(self.cache_bytes % unit == 0 and _pow2(self.cache_bytes // unit), "cache_bytes",
             f"must be a power-of-two multiple of feature_row_bytes*cache_block_rows*cache_ways = {unit}")
        need(self.mxu_rows >= 1, "mxu_rows", "must be positive")
        need(self.mxu_cols >= 1, "mxu_cols", "must be positive")
        need(self.clock_ghz > 0, "clock_ghz", "must be positive")
        need(self.dram_latency_cycles >= 1, "dram_latency_cycles", "must be positive")
        need(self.dram_gbps > 0, "dram_gbps", "must be positive")

    # ---- in/out ----
    def replace(self, **kw: Any) -> "PointAccConfig":
        return PointAccConfig.from_dict({**self.to_dict(), **kw})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any, base: "PointAccConfig | None" = None) -> "PointAccConfig":
        """Fields from ``d`` over ``base`` (default: the defaults). Unknown keys and wrong types raise."""
        if not isinstance(d, dict):
            raise LegoError(f"config: expected a mapping of fields, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in d if k not in names)
        if unknown:
            raise LegoError(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(names))})")
        kw = {**(base.to_dict() if base else {}), **d}
        for f in fields(cls):
            if f.name in kw and f.type in ("float", float) and _is_int(kw[f.name]):
                kw[f.name] = float(kw[f.name])
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PointAccConfig":
        """A YAML mapping of fields; ``preset: server|edge`` (optional) picks the base."""
        import yaml
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except OSError as e:
            raise LegoError(f"config: {p}: {e.strerror or e}") from None
        except yaml.YAMLError as e:
            raise LegoError(f"config: {p}: not valid YAML ({' '.join(str(e).split())})") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise LegoError(f"config: {p}: expected a mapping of fields")
        data = dict(data)
        base = preset(data.pop("preset")) if "preset" in data else None
        return cls.from_dict(data, base)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_types(cfg: PointAccConfig) -> None:
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        t = f.type if isinstance(f.type, str) else f.type.__name__
        if t == "int":
            ok = _is_int(v)
        elif t == "float":
            ok = isinstance(v, float)
        else:
            ok = isinstance(v, str)
        if not ok:
            raise LegoError(f"{f.name}: must be {'an' if t == 'int' else 'a'} {t}, got {v!r}")


PRESETS: dict[str, PointAccConfig] = {
    "server": PointAccConfig(),
    # PointAcc.Edge (paper recalls about 16x16 with DDR-class memory, unverified); other sizes ours
    "edge": PointAccConfig(name="edge", sorter_width=8, point_buffer=4096, distance_lanes=4, max_neighbors=32,
                           cache_bytes=16384, cache_block_rows=4, cache_ways=2, mxu_rows=16, mxu_cols=16,
                           clock_ghz=1.0, dram_latency_cycles=100, dram_gbps=25.6),
}


def preset(name: str) -> PointAccConfig:
    """The preset ``server`` or ``edge``."""
    if name not in PRESETS:
        raise LegoError(f"preset: unknown preset {name!r} (allowed: {', '.join(PRESETS)})")
    return PRESETS[name]

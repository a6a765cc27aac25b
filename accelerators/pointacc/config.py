"""PointAcc hardware configuration: one frozen dataclass on the accelerators' config scaffold
(``accelerators/config.py``: type checks, YAML in and out with ``preset: NAME`` as a file's base,
``replace``), presets ``server``, ``edge`` and ``tiny``.

Provenance of each default is given next to the field and, with the search behind it, in
docs/pointacc.md ("Configuration provenance"). "recalled" means a figure the team's study notes
recall from PointAcc (Lin et al., MICRO 2021, arXiv 2110.07600) and mark "verify"; "ours" is our own
choice. The paper's body (its configuration and evaluation sections) is in none of the sources we
hold (searched 2026-12-06: only the abstract and project pages), so no value here is confirmed by
the paper; the abstract confirms only the structure (a ranking-based mapping kernel, configurable
caching, temporal fusion of dense layers) and third-party work names a server and an edge version.

The RTL generators take their parameters from here: ``mapping_params()`` for
``accelerators.pointacc.mapping.MappingUnit``, ``mmu_params()`` for ``accelerators.pointacc.mmu.MMU``
and the ``mxu_*``, ``acc_buffer_bytes`` and ``weight_buffer_bytes`` fields for the programmable array of
``accelerators.pointacc.matrix.MatrixUnit``. One gathered feature row is one row of the array's X (K = ``mxu_rows``
int8 lanes), so ``feature_row_bytes`` equals ``mxu_rows``.
"""
from __future__ import annotations

from dataclasses import dataclass

from lego.errors import LegoError
from lego.prog.generate import DRAM_BITS, KIB_MAX, MAX_OUTSTANDING, PROG_MAX_ARRAY, tile_box

from ..config import Config, need

__all__ = ["PointAccConfig", "DRAM_ENERGY_ROWS"]

# rows of simulator/energy.py's table that price one DRAM byte
DRAM_ENERGY_ROWS = ("hbm2_byte", "dram_byte")
MXU_DATAFLOWS = ("ws", "os", "is")


def _pow2(v: int) -> bool:
    return v >= 1 and v & (v - 1) == 0


@dataclass(frozen=True)
class PointAccConfig(Config):
    """One PointAcc configuration. Units are in the field names."""

    name: str = "server"
    # ---- mapping unit ----
    sorter_width: int = 32          # W, entries per bitonic sorter block; ours (>= 20: DGCNN's k in one block)
    sorter_stages_per_cycle: int = 1  # sorter pipelining: latency ceil(S / this); ours
    point_buffer: int = 16384       # points the on-chip point buffer holds; ours (FPS 16k -> 4k fits)
    distance_lanes: int = 8         # L, squared distances per cycle; ours
    max_neighbors: int = 64         # ball-query K capacity; ours, from PointNet++ SSG (K = 32, 64)
    coord_bits: int = 21            # signed coordinate width; from sw_reference.pointacc (2**20 range)
    max_kernel_size: int = 7        # sparse-conv kernel K <= 7; from sw_reference.pointacc.kernel_map
    knn_merge_stages: int = 0       # KS, kNN merge stages (KS*W neighbours a pass; 1 = multi-pass only; 0 = auto:
    #                                 ceil(max(W, max_neighbors) / W), every k in one pass); ours
    # ---- feature-space kNN (OP_KNNF, accelerators/pointacc/featdist.py); the paper's values are in no source held
    feature_dims: int = 128         # C capacity; ours, from DGCNN's widest kNN input (EdgeConv 4: 128 channels)
    feature_bits: int = 8           # signed feature width; ours, int8 like the matrix unit and sw_reference edge_conv
    feature_lanes: int = 64         # FL, features per cycle; ours (= feature_row_bytes: one gathered row per cycle)
    feature_points: int = 1024      # NF, points of the feature buffer (0: no feature path); ours, DGCNN's 1024 points
    # ---- memory management unit (feature cache) ----
    feature_row_bytes: int = 64     # one feature row = one matrix-unit input vector (int8 lanes); ours
    cache_bytes: int = 65536        # cache capacity; ours (paper: "configurable caching", no size found)
    cache_block_rows: int = 4       # rows per cache block; ours
    cache_ways: int = 4             # associativity (true LRU); ours
    mmu_mshrs: int = 16             # MMU misses in flight (1 = the blocking MMU); ours, see docs/pointacc.md
    mmu_queue: int = 64             # in-order return queue of a gather, entries (a power of two); ours
    # ---- matrix unit and on-chip buffers ----
    mxu_rows: int = 64              # array rows (K per pass); recalled 64x64, not found in any source held
    mxu_cols: int = 64              # array columns (N per pass); recalled, not found in any source held
    mxu_dataflow: str = "ws"        # the programmable array's dataflow (ws, os or is); ours: an offset's weights
    #                                 stay while its gathered rows stream
    mxu_dram_bits: int = 256        # the array's AXI4 data width (64, 128 or 256); ours
    mxu_outstanding: int = 16       # read / write bursts the array's DMA keeps in flight (1..16); ours: the most,
    #                                 since its bursts are one matrix row (K or N bytes) and the latency 100 cycles
    acc_buffer_bytes: int = 65536   # the array's int32 accumulator (two Y tiles), whole KiB; ours
    weight_buffer_bytes: int = 262144   # the array's scratchpad (two X and W tiles), whole KiB; ours
    fusion_buffer_bytes: int = 262144   # intermediate activations kept on chip by temporal fusion; ours
    # ---- system ----
    clock_ghz: float = 1.0          # recalled 1 GHz, not found in any source held
    dram_latency_cycles: int = 100  # fixed DRAM read latency in cycles; ours
    dram_gbps: float = 256.0        # GB/s; ours: one HBM2 stack (1024 bit x 2 Gb/s); HBM2 recalled
    dram_energy: str = "hbm2_byte"  # the simulator/energy.py row that prices a DRAM byte
    node_nm: float = 40.0           # logic/SRAM energy scaled to this node; recalled 40 nm, not found

    # ---- derived ----
    @property
    def cache_sets(self) -> int:
        return self.cache_bytes // (self.feature_row_bytes * self.cache_block_rows * self.cache_ways)

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_gbps / self.clock_ghz

    def mapping_params(self) -> dict[str, int]:
        """Keyword arguments of ``MappingUnit``."""
        return {"capacity": self.point_buffer, "lanes": self.distance_lanes, "sorter_width": self.sorter_width,
                "max_neighbors": self.max_neighbors, "coord_bits": self.coord_bits,
                "sorter_stages_per_cycle": self.sorter_stages_per_cycle, "feature_dims": self.feature_dims,
                "feature_bits": self.feature_bits, "feature_lanes": self.feature_lanes,
                "feature_points": self.feature_points, "knn_merge_stages": self.merge_stages}

    @property
    def merge_stages(self) -> int:
        """KS of the RTL: ``knn_merge_stages``, 0 resolved to ceil(max(W, max_neighbors) / W)."""
        return self.knn_merge_stages or -(-max(self.sorter_width, self.max_neighbors) // self.sorter_width)

    def mmu_params(self) -> dict[str, int]:
        """Keyword arguments of ``MMU`` (rows of feature_row_bytes int8 lanes)."""
        return {"lanes": self.feature_row_bytes, "lane_bits": 8, "block_rows": self.cache_block_rows,
                "sets": self.cache_sets, "ways": self.cache_ways, "addr_bits": 24,
                "mshrs": self.mmu_mshrs, "queue": self.mmu_queue}

    # ---- presets ----
    @classmethod
    def presets(cls) -> dict[str, "PointAccConfig"]:
        return {
            "server": cls(),
            # PointAcc.Edge: 16x16 and DDR-class memory recalled, not found in any source held; 25.6 GB/s is
            # ours (one 64-bit DDR4-3200 channel); other sizes ours
            "edge": cls(name="edge", sorter_width=16, point_buffer=4096, distance_lanes=4, max_neighbors=64,
                        feature_lanes=16, feature_row_bytes=16, cache_bytes=16384, cache_block_rows=4, cache_ways=2, mxu_rows=16,
                        mxu_cols=16, mxu_dram_bits=256, acc_buffer_bytes=16384, weight_buffer_bytes=65536,
                        fusion_buffer_bytes=65536, dram_gbps=25.6, dram_energy="dram_byte"),
            # small RTL for fast benches and FPGA fits (ours)
            # (knn_merge_stages 1: the iCE40 fit keeps the multi-pass kNN, no cascade area)
            "tiny": cls(name="tiny", sorter_width=4, point_buffer=64, distance_lanes=2, max_neighbors=8,
                        knn_merge_stages=1,
                        coord_bits=12, feature_dims=8, feature_lanes=2, feature_points=16, feature_row_bytes=4, cache_bytes=64, cache_block_rows=2, cache_ways=2,
                        mxu_rows=4, mxu_cols=4, mxu_dram_bits=64, mxu_outstanding=4, mmu_mshrs=4, mmu_queue=8, acc_buffer_bytes=1024, weight_buffer_bytes=4096,
                        fusion_buffer_bytes=4096, dram_latency_cycles=8, dram_gbps=4.0, dram_energy="dram_byte"),
        }

    # ---- validation ----
    def validate(self) -> None:
        need(self, bool(self.name), "name", "must be a non-empty string")
        need(self, self.sorter_width >= 2 and _pow2(self.sorter_width), "sorter_width",
             "must be a power of two >= 2")
        need(self, self.sorter_width <= 256, "sorter_width", "must be <= 256")
        need(self, 1 <= self.sorter_stages_per_cycle <= 64, "sorter_stages_per_cycle", "must be in 1..64")
        need(self, _pow2(self.distance_lanes), "distance_lanes", "must be a power of two")
        need(self, self.distance_lanes <= self.sorter_width, "distance_lanes", "must be <= sorter_width")
        need(self, self.point_buffer >= 1 and self.point_buffer % self.sorter_width == 0, "point_buffer",
             "must be a positive multiple of sorter_width")
        need(self, self.point_buffer <= 1 << 20, "point_buffer", "must be <= 2**20 points")
        need(self, self.max_neighbors >= 1 and self.max_neighbors % self.distance_lanes == 0, "max_neighbors",
             "must be a positive multiple of distance_lanes")
        need(self, 2 <= self.coord_bits <= 21, "coord_bits", "must be in 2..21 (the golden models' range is 21 bits)")
        need(self, 1 <= self.max_kernel_size <= 7, "max_kernel_size", "must be in 1..7")
        ks_max = -(-max(self.sorter_width, self.max_neighbors) // self.sorter_width)
        need(self, 0 <= self.knn_merge_stages <= ks_max, "knn_merge_stages",
             f"must be in 0..{ks_max} (0: auto, ceil(max(sorter_width, max_neighbors) / sorter_width))")
        need(self, 1 <= self.feature_dims <= 1024, "feature_dims", "must be in 1..1024")
        need(self, 2 <= self.feature_bits <= 16, "feature_bits", "must be in 2..16")
        need(self, 1 <= self.feature_lanes <= self.feature_dims, "feature_lanes",
             f"must be in 1..feature_dims ({self.feature_dims})")
        need(self, 0 <= self.feature_points <= self.point_buffer, "feature_points",
             f"must be in 0..point_buffer ({self.point_buffer}) (0: no feature kNN path)")
        fdb = (self.feature_dims * ((1 << self.feature_bits) - 1) ** 2).bit_length()
        need(self, self.feature_points == 0 or fdb <= 3 * self.coord_bits, "feature_bits",
             f"distances of {fdb} bits exceed the sort key of 3*coord_bits = {3 * self.coord_bits} bits")
        need(self, 2 <= self.mxu_rows <= PROG_MAX_ARRAY, "mxu_rows", f"must be in 2..{PROG_MAX_ARRAY}")
        need(self, 2 <= self.mxu_cols <= PROG_MAX_ARRAY, "mxu_cols", f"must be in 2..{PROG_MAX_ARRAY}")
        need(self, self.mxu_dataflow in MXU_DATAFLOWS, "mxu_dataflow", f"must be one of {', '.join(MXU_DATAFLOWS)}")
        need(self, self.mxu_dram_bits in DRAM_BITS, "mxu_dram_bits", f"must be one of {', '.join(map(str, DRAM_BITS))}")
        need(self, 1 <= self.mxu_outstanding <= MAX_OUTSTANDING, "mxu_outstanding",
             f"must be in 1..{MAX_OUTSTANDING}")
        need(self, self.feature_row_bytes == self.mxu_rows, "feature_row_bytes",
             f"must equal mxu_rows = {self.mxu_rows} (one gathered row is one matrix-unit input vector)")
        # pointacc_top fills the feature buffer by MMU gathers (map_fld_src = 1): one gathered row per
        # feature-buffer row, its tag the buffer row (the MMU's 16-bit m_tag)
        fbits = self.feature_lanes * self.feature_bits
        need(self, self.feature_points == 0 or fbits <= 8 * self.feature_row_bytes, "feature_lanes",
             f"feature_lanes * feature_bits = {fbits} bits exceed one gathered MMU row of 8 * feature_row_bytes = "
             f"{8 * self.feature_row_bytes} bits (the feature buffer is filled by MMU gathers)")
        frows = self.feature_points * -(-self.feature_dims // self.feature_lanes)
        need(self, frows <= 1 << 16, "feature_points",
             f"{frows} feature-buffer rows (feature_points * ceil(feature_dims / feature_lanes)) exceed the "
             "MMU's 16-bit gather tag (65536 rows)")
        need(self, _pow2(self.cache_block_rows), "cache_block_rows", "must be a power of two")
        need(self, self.cache_ways >= 1, "cache_ways", "must be positive")
        unit = self.feature_row_bytes * self.cache_block_rows * self.cache_ways
        need(self, self.cache_bytes % unit == 0 and _pow2(self.cache_bytes // unit), "cache_bytes",
             f"must be a power-of-two multiple of feature_row_bytes*cache_block_rows*cache_ways = {unit}")
        need(self, 1 <= self.mmu_mshrs <= 64, "mmu_mshrs", "must be in 1..64 (1 = the blocking MMU)")
        need(self, 2 <= self.mmu_queue <= 256 and _pow2(self.mmu_queue), "mmu_queue",
             "must be a power of two in 2..256")
        need(self, self.mmu_mshrs <= self.mmu_queue, "mmu_mshrs", f"must be <= mmu_queue = {self.mmu_queue}")
        for name in ("acc_buffer_bytes", "weight_buffer_bytes"):
            v = getattr(self, name)
            need(self, v % 1024 == 0 and 1 <= v // 1024 <= KIB_MAX, name, f"must be a whole number of KiB in 1..{KIB_MAX}")
        try:
            tile_box(self.mxu_rows, self.mxu_cols, self.weight_buffer_bytes, self.acc_buffer_bytes, 1)
        except LegoError as e:
            field = "acc_buffer_bytes" if str(e).startswith("--accumulator-kib") else "weight_buffer_bytes"
            need(self, False, field, str(e).split(": ", 1)[1])
        need(self, self.fusion_buffer_bytes >= 1, "fusion_buffer_bytes", "must be positive")
        need(self, self.clock_ghz > 0, "clock_ghz", "must be positive")
        need(self, self.dram_latency_cycles >= 1, "dram_latency_cycles", "must be positive")
        need(self, self.dram_gbps > 0, "dram_gbps", "must be positive")
        need(self, self.dram_energy in DRAM_ENERGY_ROWS, "dram_energy", f"must be one of {', '.join(DRAM_ENERGY_ROWS)}")
        need(self, 5.0 <= self.node_nm <= 180.0, "node_nm", "must be in 5..180 (nm)")

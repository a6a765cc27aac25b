"""Memory system: on-chip SRAM banks, double buffering, and an off-chip DRAM model.

Times are in accelerator clock cycles. The DRAM model converts bytes to cycles with a bandwidth
(GB/s, default 16) and a fixed access latency (ns), at the accelerator clock (GHz, default 1).
An optional bank/row model adds row-activation penalties for streaming transfers.

Tile pipeline (``pipeline_cycles``): a layer split into ``n`` on-chip tiles runs, per tile, a load
(DRAM -> SRAM), a compute and a store (SRAM -> DRAM). Loads and stores share one DRAM channel.

* single buffered: tiles run back to back, ``sum(L_i + C_i + S_i)``;
* double buffered: while tile i computes, tile i+1 loads and tile i-1 stores, so
  ``L_0 + sum_i max(C_i, L_{i+1} + S_{i-1}) + S_{n-1}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from lego.errors import LegoError


@dataclass(frozen=True)
class RowModel:
    """Optional DRAM bank/row model (DDR4-like defaults).

    A streaming transfer opens ceil(bytes / row_bytes) rows; each activation costs
    ``row_miss_ns`` (tRP + tRCD) but activations to different banks overlap, so the visible
    penalty per row is ``row_miss_ns / min(banks, rows)``.
    """

    row_bytes: int = 2048
    banks: int = 16
    row_miss_ns: float = 27.5      # tRP + tRCD of DDR4-3200 (13.75 ns each)

    def __post_init__(self) -> None:
        if self.row_bytes <= 0:
            raise LegoError(f"row_bytes: {self.row_bytes} must be > 0")
        if self.banks <= 0:
            raise LegoError(f"banks: {self.banks} must be > 0")
        if self.row_miss_ns < 0:
            raise LegoError(f"row_miss_ns: {self.row_miss_ns} must be >= 0")


@dataclass(frozen=True)
class DramConfig:
    """Off-chip DRAM: bandwidth, latency, clock of the accelerator, optional row model."""

    gbps: float = 16.0             # GB/s (1e9 bytes per second)
    latency_ns: float = 100.0      # first-byte latency of one transfer
    freq_ghz: float = 1.0          # accelerator clock
    row: RowModel | None = None

    def __post_init__(self) -> None:
        if not self.gbps > 0:
            raise LegoError(f"dram_gbps: {self.gbps} must be > 0 (GB/s)")
        if self.latency_ns < 0:
            raise LegoError(f"dram_latency_ns: {self.latency_ns} must be >= 0")
        if not self.freq_ghz > 0:
            raise LegoError(f"freq_ghz: {self.freq_ghz} must be > 0")

    @property
    def bytes_per_cycle(self) -> float:
        return self.gbps / self.freq_ghz

    @property
    def latency_cycles(self) -> int:
        return math.ceil(self.latency_ns * self.freq_ghz)


def dram_cycles(nbytes: float, dram: DramConfig, transfers: int = 1) -> int:
    """Cycles to move ``nbytes`` in ``transfers`` back-to-back transfers (0 bytes -> 0 cycles).

    Latency is paid once per call (requests of one transfer set are pipelined); the streaming
    part is bytes / bandwidth; the optional row model adds activation penalties.
    """
    if nbytes < 0:
        raise LegoError(f"nbytes: {nbytes} must be >= 0")
    if nbytes == 0:
        return 0
    cycles = dram.latency_cycles + nbytes / dram.bytes_per_cycle
    if dram.row is not None:
        rows = max(math.ceil(nbytes / dram.row.row_bytes), transfers)
        overlap = min(dram.row.banks, rows)
        cycles += rows * dram.row.row_miss_ns * dram.freq_ghz / overlap
    return math.ceil(cycles)


def dram_cycles_array(nbytes, dram: DramConfig):
    """``dram_cycles`` over a numpy array of byte counts (one transfer each)."""
    import numpy as np

    b = np.asarray(nbytes, dtype=float)
    cycles = dram.latency_cycles + b / dram.bytes_per_cycle
    if dram.row is not None:
        rows = np.maximum(np.ceil(b / dram.row.row_bytes), 1)
        cycles = cycles + rows * dram.row.row_miss_ns * dram.freq_ghz / np.minimum(dram.row.banks,
                                                                                   rows)
    return np.where(b > 0, np.ceil(cycles), 0)


@dataclass(frozen=True)
class SramBank:
    """One on-chip SRAM bank."""

    capacity_bytes: int
    width_bits: int = 128
    read_ports: int = 1
    write_ports: int = 1

    def __post_init__(self) -> None:
        for f in ("capacity_bytes", "width_bits", "read_ports", "write_ports"):
            v = getattr(self, f)
            if not isinstance(v, int) or v <= 0:
                raise LegoError(f"{f}: {v!r} must be a positive integer")


@dataclass(frozen=True)
class Buffer:
    """A banked on-chip buffer; ``double_buffered`` halves the usable capacity per tile."""

    name: str
    capacity_bytes: int
    banks: int = 1
    width_bits: int = 128
    read_ports: int = 1
    write_ports: int = 1
    double_buffered: bool = True

    def __post_init__(self) -> None:
        for f in ("capacity_bytes", "banks", "width_bits", "read_ports", "write_ports"):
            v = getattr(self, f)
            if not isinstance(v, int) or v <= 0:
                raise LegoError(f"{self.name}.{f}: {v!r} must be a positive integer")
        if self.capacity_bytes % self.banks:
            raise LegoError(f"{self.name}.banks: {self.banks} must divide capacity "
                            f"{self.capacity_bytes}")

    @property
    def bank(self) -> SramBank:
        return SramBank(self.capacity_bytes // self.banks, self.width_bits,
                        self.read_ports, self.write_ports)

    @property
    def tile_bytes(self) -> int:
        """Bytes one tile may use (half the buffer when double buffered)."""
        return self.capacity_bytes // 2 if self.double_buffered else self.capacity_bytes

    def words_per_cycle(self, write: bool = False) -> int:
        """Peak accesses of ``width_bits`` words per cycle over all banks and ports."""
        return self.banks * (self.write_ports if write else self.read_ports)


def port_stall_factor(demand_bits_per_cycle: float, buf: Buffer, write: bool = False) -> float:
    """Slow-down >= 1 when the array needs more bits per cycle than the banks' ports give."""
    if demand_bits_per_cycle < 0:
        raise LegoError(f"demand_bits_per_cycle: {demand_bits_per_cycle} must be >= 0")
    supply = buf.words_per_cycle(write) * buf.width_bits
    return max(1.0, demand_bits_per_cycle / supply)


def banks_for(elements_per_cycle: int, elem_bits: int, width_bits: int, ports: int = 1) -> int:
    """Minimum banks so that ``elements_per_cycle`` elements are served in one cycle."""
    if elements_per_cycle < 0 or elem_bits <= 0 or width_bits <= 0 or ports <= 0:
        raise LegoError("banks_for: elements_per_cycle >= 0, elem_bits/width_bits/ports > 0")
    per_word = max(1, width_bits // elem_bits)
    return max(1, math.ceil(elements_per_cycle / (per_word * ports)))


@dataclass(frozen=True)
class PipelineResult:
    cycles: int
    compute_cycles: int
    stall_cycles: int          # cycles - compute_cycles
    load_cycles: int
    store_cycles: int


def pipeline_cycles(compute: list[int], load: list[int], store: list[int],
                    double_buffered: bool = True) -> PipelineResult:
    """Total cycles of a tile sequence; see the module docstring for the two policies."""
    n = len(compute)
    if n == 0 or len(load) != n or len(store) != n:
        raise LegoError("pipeline: compute/load/store must be equal-length, non-empty lists")
    if min(compute) < 0 or min(load) < 0 or min(store) < 0:
        raise LegoError("pipeline: cycle counts must be >= 0")
    if not double_buffered:
        total = sum(compute) + sum(load) + sum(store)
    else:
        total = load[0] + store[-1]
        for i in range(n):
            nxt = load[i + 1] if i + 1 < n else 0
            prev = store[i - 1] if i > 0 else 0
            total += max(compute[i], nxt + prev)
    c = sum(compute)
    return PipelineResult(total, c, total - c, sum(load), sum(store))


def uniform_pipeline_cycles(n: int, compute: int, load: int, store: int,
                            double_buffered: bool = True) -> PipelineResult:
    """Closed form of ``pipeline_cycles`` for ``n`` identical tiles (O(1))."""
    if n <= 0:
        raise LegoError(f"tiles: {n} must be > 0")
    if min(compute, load, store) < 0:
        raise LegoError("pipeline: cycle counts must be >= 0")
    if not double_buffered:
        total = n * (compute + load + store)
    elif n == 1:
        total = load + compute + store
    else:
        # first tile: no store in flight; last tile: no load; middle tiles: both.
        total = (load + store + max(compute, load) + max(compute, store)
                 + (n - 2) * max(compute, load + store))
    return PipelineResult(total, n * compute, total - n * compute, n * load, n * store)

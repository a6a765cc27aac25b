"""Python model of the MMU's feature cache (``accelerators.pointacc.mmu.MMU``): hits, misses,
write-backs and the DRAM traffic, access by access.

Organization: feature rows are grouped in blocks of ``block_rows`` consecutive rows (block address
``row // block_rows``); a block lives in set ``block % sets`` under tag ``block // sets``; each set
has ``ways`` ways. Policy:

- **LRU** replacement with true ages: each set keeps a permutation of ages 0..ways-1 (0 = most
  recent; after reset way w has age w). An access to way a makes it 0 and ages by one every way
  younger than a. The victim of a miss is the lowest-numbered invalid way, else the oldest way.
- **Write-allocate, write-back**: a scatter (or scatter-add) that misses fetches the block first;
  a scatter marks the block dirty; a dirty victim is written back (all its rows) before the fill.
- ``flush()`` writes back every dirty block (sets in order, ways in order) and invalidates all;
  the ages are kept.

``access(row, write)`` returns an ``Event`` (hit, writeback block or None, filled block or None);
``stats`` counts hits, misses, write-backs. ``data`` mode (``CacheModel(..., track_data=True)``)
also applies gathers/scatters to a dict DRAM image so that the model predicts the data as well.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CacheModel", "Event", "Stats"]


@dataclass
class Event:
    hit: bool
    writeback: int | None = None      # block address written back before the fill
    fill: int | None = None           # block address fetched


@dataclass
class Stats:
    hits: int = 0
    misses: int = 0
    writebacks: int = 0
    events: list = field(default_factory=list)


class CacheModel:
    """Set-associative LRU write-back cache of feature-row blocks."""

    def __init__(self, sets: int, ways: int, block_rows: int):
        if sets < 1 or sets & (sets - 1):
            raise ValueError(f"cache_sets: must be a power of two, got {sets}")
        if ways < 1:
            raise ValueError(f"cache_ways: must be positive, got {ways}")
        if block_rows < 1 or block_rows & (block_rows - 1):
            raise ValueError(f"cache_block_rows: must be a power of two, got {block_rows}")
        self.sets, self.ways, self.block_rows = sets, ways, block_rows
        self.valid = [[False] * ways for _ in range(sets)]
        self.dirty = [[False] * ways for _ in range(sets)]
        self.tag = [[0] * ways for _ in range(sets)]
        self.age = [list(range(ways)) for _ in range(sets)]
        self.stats = Stats()

    def reset_stats(self) -> None:
        self.stats = Stats()

    def _touch(self, s: int, w: int) -> None:
        a = self.age[s]
        aw = a[w]
        for i in range(self.ways):
            if a[i] < aw:
                a[i] += 1
        a[w] = 0

    def lookup(self, row: int) -> tuple[int, int, int | None]:
        blk = row // self.block_rows
        s, t = blk % self.sets, blk // self.sets
        for w in range(self.ways):
            if self.valid[s][w] and self.tag[s][w] == t:
                return s, t, w
        return s, t, None

    def access(self, row: int, write: bool) -> Event:
        s, t, w = self.lookup(row)
        if w is not None:
            ev = Event(True)
            self.stats.hits += 1
        else:
            self.stats.misses += 1
            inval = [i for i in range(self.ways) if not self.valid[s][i]]
            w = inval[0] if inval else self.age[s].index(self.ways - 1)
            ev = Event(False, fill=t * self.sets + s)
            if self.valid[s][w] and self.dirty[s][w]:
                ev.writeback = self.tag[s][w] * self.sets + s
                self.stats.writebacks += 1
            self.valid[s][w], self.dirty[s][w], self.tag[s][w] = True, False, t
        self._touch(s, w)
        if write:
            self.dirty[s][w] = True
        self.stats.events.append(ev)
        return ev

    def flush(self) -> list[int]:
        """Write back the dirty blocks (set-major, then way) and invalidate all; returns the blocks."""
        out = []
        for s in range(self.sets):
            for w in range(self.ways):
                if self.valid[s][w] and self.dirty[s][w]:
                    out.append(self.tag[s][w] * self.sets + s)
                    self.stats.writebacks += 1
                self.valid[s][w] = self.dirty[s][w] = False
        return out

    def dirty_blocks(self) -> int:
        return sum(self.valid[s][w] and self.dirty[s][w] for s in range(self.sets) for w in range(self.ways))

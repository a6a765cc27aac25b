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
    evict: int | None = None          # block address evicted (clean or dirty), None when a way was free


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
            if self.valid[s][w]:
                ev.evict = self.tag[s][w] * self.sets + s
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


class ReadStreamCache:
    """The ``CacheModel`` policy on read-only row streams (gathers), fast: the hits and misses of
    ``CacheModel.access(row, write=False)`` over the same rows, exactly, for streams of millions of rows.

    Exactness: with true LRU and no invalidation, a set holds its ``ways`` most recently used distinct
    blocks, so an access hits iff its block is among them, whatever way it sits in (the victim rule only
    picks *where* a block goes). Sets are independent, so the stream is split by set; an access to the
    block the set touched last is a hit that changes nothing (it is already the youngest), so runs of
    those are counted at once (numpy) and the rest goes through a short per-set list in MRU order.
    State carries over between ``run`` calls, like the cache's.

    ``run(rows, repeat=r)`` reads the stream r times back to back. Exact shortcut: after one pass a set
    holds the stream's most recent distinct blocks of that set in recency order, followed by what it held
    before and the stream did not touch; a second pass leaves exactly the same state, so every pass after
    the first behaves like the second (two passes are simulated, the rest counted).
    """

    def __init__(self, sets: int, ways: int, block_rows: int):
        CacheModel(sets, ways, block_rows)              # the same argument checks
        self.sets, self.ways, self.block_rows = sets, ways, block_rows
        self.lbr = block_rows.bit_length() - 1
        self.mru: list[list[int]] = [[] for _ in range(sets)]
        self.hits = self.misses = 0

    def run(self, rows, repeat: int = 1) -> tuple[int, int]:
        """Read ``rows`` in order, ``repeat`` times; returns (hits, misses) of all passes (also added to the
        totals)."""
        if repeat < 1:
            return 0, 0
        h1, m1 = self._run(rows)
        if repeat == 1:
            return h1, m1
        h2, m2 = self._run(rows)
        h, m = h1 + (repeat - 1) * h2, m1 + (repeat - 1) * m2
        self.hits += (repeat - 2) * h2
        self.misses += (repeat - 2) * m2
        return h, m

    def events(self, rows):
        """Read ``rows`` once, like ``run``, and return each access's timing class in stream order: (kinds,
        dists) as ``dram.nb_stream_cycles`` takes them (kind 0 hit, 1 miss; dist: how many accesses back the
        evicted block was last read, 0 when the miss evicted nothing)."""
        import numpy as np
        r = np.asarray(rows, dtype=np.int64).ravel()
        kinds = np.zeros(r.size, dtype=np.int8)
        dists = np.zeros(r.size, dtype=np.int32)
        if r.size:
            self._run(r, (kinds, dists))
        return kinds, dists

    def _run(self, rows, out=None) -> tuple[int, int]:
        import numpy as np
        r = np.asarray(rows, dtype=np.int64).ravel()
        if r.size == 0:
            return 0, 0
        blk = r >> self.lbr
        st = blk & (self.sets - 1)
        order = np.argsort(st, kind="stable")
        b, s = blk[order], st[order]
        new = np.ones(b.size, dtype=bool)
        new[1:] = (b[1:] != b[:-1]) | (s[1:] != s[:-1])
        hits = int(b.size - new.sum())
        misses = 0
        kb, ks = b[new], s[new]
        cuts = np.flatnonzero(np.diff(ks)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [kb.size]])
        ways = self.ways
        if out is not None:
            return self._run_events(kb, ks, starts, ends, order, new, hits, out)
        for a, e in zip(starts.tolist(), ends.tolist()):
            lst = self.mru[int(ks[a])]
            for x in kb[a:e].tolist():
                if lst and lst[0] == x:
                    hits += 1
                elif x in lst:
                    lst.remove(x)
                    lst.insert(0, x)
                    hits += 1
                else:
                    misses += 1
                    lst.insert(0, x)
                    if len(lst) > ways:
                        lst.pop()
        self.hits += hits
        self.misses += misses
        return hits, misses

    def _run_events(self, kb, ks, starts, ends, order, new, hits, out) -> tuple[int, int]:
        """``_run``'s per-set loop, also recording each miss and the distance back to the last access of the
        block it evicts (into ``out`` = (kinds, dists), indexed by stream position)."""
        import numpy as np
        kinds, dists = out
        new_idx = np.flatnonzero(new)
        first = order[new_idx]                                              # stream index of each run's start
        last = order[np.concatenate([new_idx[1:], [new.size]]) - 1]         # ... and of its end
        miss_at, miss_dist = [], []
        misses, ways = 0, self.ways
        for a, e in zip(starts.tolist(), ends.tolist()):
            lst = self.mru[int(ks[a])]
            seen: dict[int, int] = {}
            for x, i0, i1 in zip(kb[a:e].tolist(), first[a:e].tolist(), last[a:e].tolist()):
                if lst and lst[0] == x:
                    hits += 1
                elif x in lst:
                    lst.remove(x)
                    lst.insert(0, x)
                    hits += 1
                else:
                    misses += 1
                    lst.insert(0, x)
                    miss_at.append(i0)
                    if len(lst) > ways:
                        y = lst.pop()
                        miss_dist.append(i0 - seen[y] if y in seen else 0)
                    else:
                        miss_dist.append(0)
                seen[x] = i1
        if miss_at:
            kinds[np.asarray(miss_at)] = 1
            dists[np.asarray(miss_at)] = np.asarray(miss_dist, dtype=np.int64).clip(0, 2**31 - 1)
        self.hits += hits
        self.misses += misses
        return hits, misses

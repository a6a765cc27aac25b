"""The fixed-latency DRAM of the PointAcc benches and the MMU's timing (gathers, scatters, scatter-adds), shared by the cocotb benches
(``FixedLatencyDram`` answers the MMU's requests) and the cycle model (``cycles.mmu_cycles``,
``costs.Costs.gather``).

DRAM: a read request (a block of ``block_rows`` rows) seen in cycle t is answered with the rows in cycles
t+LAT .. t+LAT+B-1, one per cycle; a write request writes its row at once. Reads must not overlap in
their beats (the MMU spaces them B cycles apart).

MMU timing (the same for gathers, scatters and scatter-adds). An op's entries are classified by the cache
model, in map order: kind 0 a hit, 1 a miss with a clean (or invalid) victim, 2 a miss with a dirty victim;
``dist`` (kinds 1, 2) is the distance i - j to
the last earlier entry j of the same op that referenced the evicted block (0: none). Cycles are numbered
from the op's first cycle after the start edge (1); an op's cycles (the ``cycles`` port) are the cycle of
its DRAIN state. Entry i is accepted in cycle a_i and leaves the in-order return queue (read from the
data store) in cycle p_i:

    blocking MMU (mshrs = 1):  cycles = 1 + sum over entries of 1 (hit), LAT + B + 2 (clean miss),
                                LAT + 2B + 3 (dirty miss)
    non-blocking (mshrs M >= 2, queue Q):
        a_i >= a_{i-1} + 1, a_i >= p_{i-Q} + 1                       (queue not full)
        kinds 1, 2: a_i >= t_{k-1} + B + w_{k-1}                     (DRAM beats do not overlap; w = 1
                                                                      after a dirty miss: its B write-back
                                                                      requests hold the request port)
                a_i >= t_{k-M} + LAT + B                             (a free MSHR)
                a_i >= p_{i-dist} + 1                                (the victim line is not queued)
                t_k = a_i (the read is issued in the accepting cycle), ready r_i = a_i + LAT + B,
                w_k = 1 for kind 2 (its write-back runs in a_i + 1 .. a_i + B beside the queue), else 0
        kind 0: r_i = a_i + 1
        p_i = max(p_{i-1} + 1, r_i);   cycles = p_{n-1} + 1 (1 for an empty op)

with a_i the least cycle meeting its constraints (t_k: the issue cycle of the op's k-th kind-1 miss).

API: ``blocking_gather_cycles(kinds, lat, br)``, ``nb_gather_cycles(kinds, dists, lat, br, mshrs, queue)``
(one op, plain Python, the reference), ``nb_stream_cycles(kinds, dists, starts, lat, br, mshrs, queue)``
(many ops back to back: the sum of their cycles; compiled C when a C compiler is found, else the
reference), ``FixedLatencyDram``.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["FixedLatencyDram", "blocking_gather_cycles", "nb_gather_cycles", "nb_stream_cycles",
           "HIT", "CLEAN_MISS", "DIRTY_MISS"]

HIT, CLEAN_MISS, DIRTY_MISS = 0, 1, 2


class FixedLatencyDram:
    """DRAM rows (``read_row(addr)`` until written) behind the fixed-latency protocol above."""

    def __init__(self, latency: int, block_rows: int, read_row):
        self.lat, self.br, self.read_row = latency, block_rows, read_row
        self.mem: dict[int, int] = {}
        self.pending: dict[int, int] = {}       # cycle -> row address of the beat answered then

    def row(self, addr: int) -> int:
        return self.mem.get(addr, self.read_row(addr))

    def read(self, cycle: int, addr: int) -> None:
        for r in range(self.br):
            assert cycle + self.lat + r not in self.pending, "overlapping DRAM reads"
            self.pending[cycle + self.lat + r] = addr + r

    def write(self, addr: int, value: int) -> None:
        self.mem[addr] = value

    def beat(self, cycle: int):
        """The row answered in ``cycle`` (popped), or None."""
        a = self.pending.pop(cycle, None)
        return None if a is None else self.row(a)


def blocking_gather_cycles(kinds, lat: int, br: int) -> int:
    k = np.asarray(kinds, dtype=np.int64)
    return int(1 + np.count_nonzero(k == HIT) + np.count_nonzero(k == CLEAN_MISS) * (lat + br + 2)
               + np.count_nonzero(k == DIRTY_MISS) * (lat + 2 * br + 3))


def _check(lat, br, mshrs, queue):
    if lat < 1 or br < 1 or mshrs < 2 or queue < 2:
        raise ValueError(f"non-blocking timing needs LAT, B >= 1, mshrs, queue >= 2; got {lat}, {br}, {mshrs}, "
                         f"{queue}")


def nb_gather_cycles(kinds, dists, lat: int, br: int, mshrs: int, queue: int) -> int:
    """Cycles of one non-blocking gather op (the reference recurrence of the module docstring)."""
    _check(lat, br, mshrs, queue)
    kinds, dists = list(kinds), list(dists)
    if not kinds:
        return 1
    pops: list[int] = []
    t: list[int] = []
    ap = pp = wlast = 0
    for i, k in enumerate(kinds):
        a = ap + 1
        if i >= queue:
            a = max(a, pops[i - queue] + 1)
        if k != HIT:
            if t:
                a = max(a, t[-1] + br + wlast)
            if len(t) >= mshrs:
                a = max(a, t[len(t) - mshrs] + lat + br)
            d = dists[i]
            if 0 < d <= i:
                a = max(a, pops[i - d] + 1)
            t.append(a)
            wlast = 1 if k == DIRTY_MISS else 0
            ready = a + lat + br
        else:
            ready = a + 1
        pp = max(pp + 1, ready)
        ap = a
        pops.append(pp)
    return pp + 1


_C_SRC = r"""
#include <stdint.h>
int64_t nb_stream(const int8_t *kind, const int32_t *dist, int64_t n, const int64_t *starts, int64_t nops,
                  int64_t lat, int64_t br, int64_t M, int64_t Q, int64_t *pop, int64_t *t) {
    int64_t total = 0;
    for (int64_t o = 0; o < nops; o++) {
        int64_t s = starts[o], e = o + 1 < nops ? starts[o + 1] : n;
        int64_t ap = 0, pp = 0, nm = 0, wl = 0, a, x, ready;
        for (int64_t i = s; i < e; i++) {
            int64_t j = i - s;
            a = ap + 1;
            if (j >= Q) { x = pop[j % Q] + 1; if (x > a) a = x; }
            if (kind[i] != 0) {
                if (nm) { x = t[(nm - 1) % M] + br + wl; if (x > a) a = x; }
                if (nm >= M) { x = t[nm % M] + lat + br; if (x > a) a = x; }
                int64_t d = dist[i];
                if (d > 0 && d <= j && d < Q) { x = pop[(j - d) % Q] + 1; if (x > a) a = x; }
                t[nm % M] = a; nm++;
                wl = kind[i] == 2;
                ready = a + lat + br;
            } else {
                ready = a + 1;
            }
            pp = pp + 1 > ready ? pp + 1 : ready;
            ap = a;
            pop[j % Q] = pp;
        }
        total += pp + 1;
    }
    return total;
}
"""
_lib = None


def _load():
    """The compiled recurrence (cached by source hash), or False when no C compiler works."""
    global _lib
    if _lib is None:
        _lib = False
        h = hashlib.sha256(_C_SRC.encode()).hexdigest()[:16]
        d = Path(tempfile.gettempdir()) / f"lego-pointacc-{os.getuid()}"
        so = d / f"nb_{h}.so"
        try:
            if not so.exists():
                d.mkdir(parents=True, exist_ok=True)
                c = d / f"nb_{h}_{os.getpid()}.c"
                c.write_text(_C_SRC)
                tmp = d / f"nb_{h}_{os.getpid()}.so"
                subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-o", str(tmp), str(c)],
                               check=True, capture_output=True, timeout=60)
                os.replace(tmp, so)
                c.unlink()
            lib = ctypes.CDLL(str(so))
            f = lib.nb_stream
            P = ctypes.c_void_p
            f.argtypes = [P, P, ctypes.c_int64, P, ctypes.c_int64] + [ctypes.c_int64] * 4 + [P, P]
            f.restype = ctypes.c_int64
            _lib = f
        except (OSError, subprocess.SubprocessError):
            _lib = False
    return _lib


def nb_stream_cycles(kinds, dists, starts, lat: int, br: int, mshrs: int, queue: int, use_c: bool = True) -> int:
    """Sum of ``nb_gather_cycles`` over ops back to back: op o is entries starts[o] .. starts[o+1]-1 (the
    last to the end); ``starts`` strictly increasing from 0, or empty ops allowed as repeated starts."""
    _check(lat, br, mshrs, queue)
    k = np.ascontiguousarray(kinds, dtype=np.int8)
    d = np.ascontiguousarray(dists, dtype=np.int32)
    s = np.ascontiguousarray(starts, dtype=np.int64)
    if k.size != d.size or (s.size and (s[0] != 0 or (np.diff(s) < 0).any() or s[-1] > k.size)):
        raise ValueError("nb_stream_cycles: bad kinds/dists/starts")
    f = _load() if use_c else False
    if f:
        pop = np.zeros(queue, dtype=np.int64)
        t = np.zeros(mshrs, dtype=np.int64)
        return int(f(k.ctypes.data, d.ctypes.data, k.size, s.ctypes.data, s.size, lat, br, mshrs, queue,
                     pop.ctypes.data, t.ctypes.data))
    ends = list(s[1:]) + [k.size]
    return sum(nb_gather_cycles(k[a:b].tolist(), d[a:b].tolist(), lat, br, mshrs, queue)
               for a, b in zip(s.tolist(), ends))

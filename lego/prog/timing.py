"""The exact timing of a command stream on the programmable array (docs/programmable.md, "Timing").

Edges are counted from the rising edge that accepts the first command (edge 0). One command is dispatched
per edge at most, in order; a LOAD, COMPUTE or STORE is dispatched when its unit is idle and no busy unit
holds one of its buffers; a unit that is busy up to edge ``f`` (its busy flag falls there) frees its
buffers for a dispatch at edge ``f + 1``; END is dispatched when every unit is idle and is the run's last
edge (``cycles``). The busy time of each unit comes in closed form from its command:

* COMPUTE: the steps (product of the counter extents) plus the mode's drain (pipeline depth);
* LOAD: per INCR burst, the first beat is captured ``3 + L`` edges after the edge that raised ARVALID
  (``L``: the DRAM latency of the bench's DRAM), later beats as the scatter into the banks frees the beat
  register: a beat with ``v`` valid lanes takes ``ceil(v / P)`` cycles (``P``: the tensor's ``ld_lanes``,
  elements written per cycle, per tensor and mode), and the next beat is captured with its last lane group; with
  one burst outstanding the next burst's ARVALID rises with the capture of RLAST; with ``N``
  (``prog.dram_outstanding``) it rises in the edge after the previous one's handshake, or with the RLAST of
  the burst ``N`` back, whichever is later, and the first beat also waits for the previous burst's last
  write. Per burst this is closed form (first beat, ``beats - 2`` full beats of ``E / P`` cycles, last beat);
* STORE: one accumulator read per element, the write response ``2 + L`` edges after the burst's last W
  beat. With one burst outstanding a beat of ``v`` elements takes ``v + 2`` edges (read, then the W
  handshake, before the next beat's reads) and the next burst starts with the response
  (``elements + 2·beats + 2 + L`` a burst); with ``N`` the reads stream across beats and bursts (the last
  W beat 2 edges after the last read) and the next burst starts with the previous one's last read or
  with the response of the burst ``N`` back, whichever is later.

The cycle engine (simulator/program.py) and the compiler use this module; the RTL is checked against it.
"""
from __future__ import annotations

from functools import lru_cache

from .spec import BUF_BIT, CSR_NAME, PAGE, bursts

UNITS = ("ld", "cp", "st")
UNIT_OF = {"LOAD": "ld", "COMPUTE": "cp", "STORE": "st"}


@lru_cache(maxsize=1 << 16)
def _row_load(off: int, cols: int, eb: int, bb: int, latency: int, P: int, d: int) -> tuple[int, int]:
    """One row of a LOAD whose first byte sits ``off`` bytes into a 4 KiB page, entered ``d`` edges after the
    last ARVALID rose (``d = free - ar``): (edges the row adds to ``free``, ``d`` after it). Its bursts
    are ``spec.bursts`` of that row; everything is relative to ``free``, so rows at the same page offset
    entered with the same ``d`` take the same time."""
    E = bb // eb
    free, ar = 0, -d
    for b in bursts(off, 1, cols, 0, eb, bb)[0]:
        c0 = max(ar + 3 + latency, free)            # edge that captures the first beat
        first = min(E - b.off, b.elems)             # valid lanes of the first beat
        if b.beats == 1:
            g_last = groups = -(-first // P)
        else:
            g_last = -(-((b.off + b.elems - 1) % E + 1) // P)
            groups = -(-first // P) + (b.beats - 2) * (E // P) + g_last
        free = c0 + groups                          # edge of the burst's last write
        ar = free - g_last                          # RLAST captured: the next ARVALID rises
    return free, free - ar


def _groups(b, E: int, P: int) -> tuple[int, int]:
    """(write cycles of burst ``b``, cycles of its last beat)."""
    first = min(E - b.off, b.elems)
    if b.beats == 1:
        return -(-first // P), -(-first // P)
    g_last = -(-((b.off + b.elems - 1) % E + 1) // P)
    return -(-first // P) + (b.beats - 2) * (E // P) + g_last, g_last


@lru_cache(maxsize=1 << 16)
def _row_load_n(off: int, cols: int, eb: int, bb: int, latency: int, P: int, N: int,
                state: tuple) -> tuple[int, tuple]:
    """One row of a LOAD with up to ``N`` read bursts outstanding (``N > 1``). ``state = (dv, lcs)``
    relative to ``free`` (the edge of the last write so far): ``dv``, the edge that raised the last ARVALID;
    ``lcs``, the edges that captured the RLAST of the last ``N`` bursts (oldest first; clipped from below at
    ``dv + 1``, where they no longer bind). Burst k: ARVALID rises at ``v_k = max(v_{k-1} + 1,
    rlast_{k-N})``, its first beat is captured at ``max(v_k + 3 + L, free)``. -> (edges the row adds to
    ``free``, the state after it)."""
    E = bb // eb
    dv, lcs = state
    free, v, lcs = 0, dv, list(lcs)
    for b in bursts(off, 1, cols, 0, eb, bb)[0]:
        v = max(v + 1, lcs.pop(0))
        c0 = max(v + 3 + latency, free)
        groups, g_last = _groups(b, E, P)
        free = c0 + groups
        lcs.append(free - g_last)
    return free, (v - free, tuple(max(x, v + 1) - free for x in lcs))


def load_cycles(addr: int, rows: int, cols: int, stride: int, eb: int, bb: int, latency: int, lanes: int = 1,
                outstanding: int = 1) -> int:
    """Edges a LOAD keeps the load unit busy with up to ``outstanding`` read bursts in flight (``N``; the
    DRAM: every read address accepted at once, its first beat ``2 + L`` edges after acceptance and after the
    previous burst's last beat, one beat per cycle in order)."""
    if outstanding == 1:
        return _load_cycles_1(addr, rows, cols, stride, eb, bb, latency, lanes)
    return _load_cycles_n(addr, rows, cols, stride, eb, bb, latency, lanes, outstanding)


def _rows_skipping_periods(addr: int, rows: int, stride: int, st, row) -> int:
    """Edges the load unit is busy over ``rows`` rows one after another, ``row(page offset, state)`` giving
    a row's edges and the next state. The state takes finitely many values, so once a (page offset, state)
    recurs the rows between repeat exactly: whole periods are skipped in one step."""
    free, r = 1, 0
    seen: dict = {}
    while r < rows:
        off = (addr + r * stride) % PAGE
        key = (off, st)
        if key in seen:
            r0, f0 = seen.pop(key)
            period = r - r0
            n = (rows - r) // period
            free += n * (free - f0)
            r += n * period
            seen.clear()
            if r >= rows:
                break
            off = (addr + r * stride) % PAGE
        else:
            seen[key] = (r, free)
        df, st = row(off, st)
        free += df
        r += 1
    return free


@lru_cache(maxsize=1 << 16)
def _load_cycles_n(addr: int, rows: int, cols: int, stride: int, eb: int, bb: int, latency: int, lanes: int,
                   N: int) -> int:
    """``load_cycles`` for ``N > 1``: rows one after another (``_row_load_n``), whole periods of a recurring
    row state (page offset, ``_row_load_n``'s state) skipped in one step."""
    E = bb // eb
    P = lanes
    assert P >= 1 and E % P == 0 and N > 1, (E, P, N)
    # before the first burst: v_0 = -1 (so v_1 = 0, the dispatch edge), free = 1, no RLAST binds
    return _rows_skipping_periods(addr, rows, stride, (-2, (-1,) * N),
                                  lambda off, st: _row_load_n(off, cols, eb, bb, latency, P, N, st))


@lru_cache(maxsize=1 << 16)
def _load_cycles_1(addr: int, rows: int, cols: int, stride: int, eb: int, bb: int, latency: int, lanes: int = 1) -> int:
    """Edges a LOAD keeps the load unit busy (one burst outstanding): rows one after another (``_row_load``,
    state ``d``), whole periods of a recurring row state skipped in one step."""
    E = bb // eb
    P = lanes
    assert P >= 1 and E % P == 0, (E, P)
    return _rows_skipping_periods(addr, rows, stride, 1,
                                  lambda off, d: _row_load(off, cols, eb, bb, latency, P, d))


def store_cycles(addr: int, rows: int, cols: int, stride: int, bb: int, latency: int, outstanding: int = 1) -> int:
    """Edges a STORE keeps the store unit busy with up to ``outstanding`` write bursts unacknowledged
    (``N``, ``prog.dram_outstanding``; the DRAM: every write address and beat accepted at once, the write
    response ``2 + L`` edges after the burst's last W beat). With ``N = 1`` each burst costs
    ``elems + 2·beats + 2 + L`` (a beat of ``v`` elements is sent ``v + 2`` edges after its gather starts,
    the next burst starts with the response). With ``N > 1`` the gather streams one element per edge across
    beats and bursts: burst k starts (AWVALID, gather) at ``s_k = max(e_{k-1}, b_{k-N})`` (``s_1``:
    dispatch; ``e``: the edge that reads a burst's last element, ``e_k = s_k + elems``; ``b``: the edge
    that captures a burst's write response, ``b_k = e_k + 4 + L``: its last W beat at ``e_k + 2``); busy
    ends at the last ``b``."""
    if outstanding == 1:
        return _store_cycles_1(addr, rows, cols, stride, bb, latency)
    return _store_cycles_n(addr, rows, cols, stride, bb, latency, outstanding)


@lru_cache(maxsize=1 << 16)
def _store_cycles_1(addr: int, rows: int, cols: int, stride: int, bb: int, latency: int) -> int:
    return sum(b.elems + 2 * b.beats + 2 + latency for row in bursts(addr, rows, cols, stride, 4, bb) for b in row)


@lru_cache(maxsize=1 << 16)
def _row_store_n(off: int, cols: int, bb: int, latency: int, N: int, bs: tuple) -> tuple[int, tuple]:
    """One row of a STORE with up to ``N`` write bursts outstanding (``N > 1``), entered at ``e`` (the edge
    that read the last element so far, or the dispatch): ``bs``, the edges of the last ``N`` write responses
    relative to ``e`` (oldest first; clipped from below at 0, where they no longer bind). -> (edges the row
    adds to ``e``, the state after it)."""
    e, bs = 0, list(bs)
    for b in bursts(off, 1, cols, 0, 4, bb)[0]:
        e = max(e, bs.pop(0)) + b.elems
        bs.append(e + 4 + latency)
    return e, tuple(max(x - e, 0) for x in bs)


@lru_cache(maxsize=1 << 16)
def _store_cycles_n(addr: int, rows: int, cols: int, stride: int, bb: int, latency: int, N: int) -> int:
    """``store_cycles`` for ``N > 1``: rows one after another (``_row_store_n``), whole periods of a
    recurring (page offset, state) skipped in one step. (``_rows_skipping_periods`` counts from 1: it
    walks ``e + 1``.) Busy ends with the last burst's response, ``4 + L`` after its last element's read."""
    assert N > 1, N
    return _rows_skipping_periods(addr, rows, stride, (0,) * N,
                                  lambda off, st: _row_store_n(off, cols, bb, latency, N, st)) + 3 + latency


def compute_cycles(ext: list[int], drain: int) -> int:
    n = 1
    for e in ext:
        n *= e
    return n + drain


def buffers(cmd: dict) -> int:
    op = cmd["op"]
    if op == "LOAD":
        return 1 << BUF_BIT[(cmd["tensor"], cmd["buf"])]
    if op == "COMPUTE":
        return (1 << BUF_BIT[("X", cmd["xbuf"])]) | (1 << BUF_BIT[("W", cmd["wbuf"])]) | (1 << BUF_BIT[("Y", cmd["ybuf"])])
    if op == "STORE":
        return 1 << BUF_BIT[("Y", cmd["buf"])]
    return 0


class Overrun(Exception):
    """Raised by ``Timeline.step`` once the run has passed its ``bound`` (the compiler's tile search stops
    a candidate there: its cycles can only grow)."""


class Timeline:
    """Dispatch edges and unit busy spans of a decoded command stream (``prog``: manifest['prog']).

    ``csr`` is the shadow register file the durations read; the compiler's emitter shares its own dict
    here, so a stream is timed while it is written (``step_set`` for a SET whose value it has stored).
    ``bound``: raise ``Overrun`` as soon as the dispatch edge passes it."""

    def __init__(self, prog: dict, latency: int, csr: dict | None = None, bound: int | None = None):
        self.prog, self.latency = prog, latency
        self.eb, self.bb = prog["bits"] // 8, prog["dram_bits"] // 8
        self.names = list(prog["dataflows"])
        self.lanes = prog.get("ld_lanes", {})
        self.outstanding = prog.get("dram_outstanding", 1)
        self.t = -1
        self.fall = {u: -1 for u in UNITS}
        self.mask = {u: 0 for u in UNITS}
        self.busy_cycles = {u: 0 for u in UNITS}
        self.csr = {n: 0 for n in CSR_NAME.values()} if csr is None else csr
        self.bound = bound
        self.commands = 0
        self._ext = {name: [f"EXT{k}" for k in range(len(prog["counters"][name]))] for name in self.names}

    def duration(self, cmd: dict) -> int:
        c, op = self.csr, cmd["op"]
        if op == "LOAD":
            return load_cycles(c["LD_ADDR"], c["LD_ROWS"], c["LD_COLS"], c["LD_STRIDE"], self.eb, self.bb, self.latency,
                               self.lanes.get(cmd["tensor"], {}).get(self.names[cmd["mode"]], 1), self.outstanding)
        if op == "STORE":
            return store_cycles(c["ST_ADDR"], c["ST_ROWS"], c["ST_COLS"], c["ST_STRIDE"], self.bb, self.latency,
                                self.outstanding)
        name = self.names[cmd["mode"]]
        return compute_cycles([c[r] for r in self._ext[name]], self.prog["drain"][name])

    def step_set(self) -> int:
        """A SET whose value is already in ``csr``: it takes its own edge and waits for nothing."""
        self.t += 1
        self.commands += 1
        if self.bound is not None and self.t > self.bound:
            raise Overrun(self.t)
        return self.t

    def step(self, cmd: dict) -> int:
        op = cmd["op"]
        if op == "SET":
            self.csr[cmd["reg"]] = cmd["value"]
            return self.step_set()
        e = self.t + 1
        if op in UNIT_OF:
            u, need = UNIT_OF[op], buffers(cmd)
            fall, mask = self.fall, self.mask
            for v in UNITS:
                if (v == u or mask[v] & need) and fall[v] >= e:
                    e = fall[v] + 1
            d = self.duration(cmd)
            fall[u], mask[u] = e + d, need
            self.busy_cycles[u] += d
        elif op == "END":
            e = max([e] + [f + 1 for f in self.fall.values()])
        self.t = e
        self.commands += 1
        if self.bound is not None and e > self.bound:
            raise Overrun(e)
        return e

    @property
    def cycles(self) -> int:
        return self.t


def program_cycles(prog: dict, cmds: list[dict], latency: int) -> Timeline:
    tl = Timeline(prog, latency)
    for c in cmds:
        tl.step(c)
    return tl

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
  write. Per burst this is closed form (first beat, ``beats - 2`` full beats of ``E / P`` cycles, last beat).
  A windowed LOAD (bit 56) walks the segments of ``spec.window_segments`` exactly as a plain LOAD's rows
  (``window_load_cycles``);
* STORE: one accumulator read cycle per lane group of ``P`` elements of a beat (``P``: ``st_lanes`` of the
  mode; a beat of ``v`` elements takes ``g = ceil(v / P)`` read cycles, below "elements" counts those), the
  write response ``2 + L`` edges after the burst's last W beat. With one burst outstanding a beat takes
  ``g + 2`` edges (reads, then the W handshake, before the next beat's reads) and the next burst starts
  with the response (``elements + 2·beats + 2 + L`` a burst); with ``N`` the reads stream across beats and
  bursts (the last W beat 2 edges after the last read) and the next burst starts with the previous one's last read or
  with the response of the burst ``N`` back, whichever is later. With a write bandwidth below the bus
  width (``--dram-bw``: the DRAM takes a W beat ``D`` edges after the previous one at the earliest) a beat's
  handshake also waits for that, and with ``N`` the gather waits for a free beat slot (two: assembly and W).

The cycle engine (simulator/program.py) and the compiler use this module; the RTL is checked against it.
"""
from __future__ import annotations

from functools import lru_cache

from .spec import BUF_BIT, CSR_NAME, PAGE, WIN_CSR, bursts, window_segments

UNITS = ("ld", "cp", "st")
UNIT_OF = {"LOAD": "ld", "COMPUTE": "cp", "STORE": "st"}


def _span(b, E: int, P: int, D: int) -> tuple[int, int]:
    """(edges from the capture of burst ``b``'s first beat to the capture of its last, lane-group cycles of its
    last beat). The DMA captures the next beat in the cycle of the held beat's last lane group, the DRAM shows
    a beat no earlier than ``D`` edges after the previous capture (``D = 1``: one beat per cycle), so
    consecutive captures are ``max(groups of the earlier beat, D)`` edges apart."""
    first = min(E - b.off, b.elems)
    g0 = -(-first // P)
    if b.beats == 1:
        return 0, g0
    g_last = -(-((b.off + b.elems - 1) % E + 1) // P)
    return max(g0, D) + (b.beats - 2) * max(E // P, D), g_last


@lru_cache(maxsize=1 << 16)
def _row_load(off: int, cols: int, eb: int, bb: int, latency: int, P: int, D: int, state: tuple) -> tuple[int, tuple]:
    """One row of a LOAD whose first byte sits ``off`` bytes into a 4 KiB page (one burst outstanding).
    ``state = (d, s)`` relative to ``free`` (the edge of the last write so far): the last ARVALID rose ``d``
    edges before it, and the DRAM can show the next beat ``s`` edges after it at the earliest (the read
    bandwidth, ``D`` edges per beat; ``s = 0`` with ``D = 1``). -> (edges the row adds to ``free``, the
    state after it). Its bursts are ``spec.bursts`` of that row; everything is relative to ``free``, so rows
    at the same page offset entered in the same state take the same time."""
    E = bb // eb
    d, s = state
    free, ar, nxt = 0, -d, s
    for b in bursts(off, 1, cols, 0, eb, bb)[0]:
        c0 = max(ar + 3 + latency, nxt)            # edge that captures the first beat
        span, g_last = _span(b, E, P, D)
        cl = c0 + span                              # edge that captures RLAST: the next ARVALID rises
        free = cl + g_last                          # edge of the burst's last write
        ar, nxt = cl, cl + max(g_last, D)
    return free, (free - ar, nxt - free)


@lru_cache(maxsize=1 << 16)
def _row_load_n(off: int, cols: int, eb: int, bb: int, latency: int, P: int, N: int, D: int,
                state: tuple) -> tuple[int, tuple]:
    """One row of a LOAD with up to ``N`` read bursts outstanding (``N > 1``). ``state = (dv, lcs, s)``
    relative to ``free`` (the edge of the last write so far): ``dv``, the edge that raised the last ARVALID;
    ``lcs``, the edges that captured the RLAST of the last ``N`` bursts (oldest first; clipped from below at
    ``dv + 1``, where they no longer bind); ``s``, the earliest edge the DRAM can show the next beat (``D``
    edges per beat). Burst k: ARVALID rises at ``v_k = max(v_{k-1} + 1, rlast_{k-N})``, its first beat is
    captured at ``max(v_k + 3 + L, s)``. -> (edges the row adds to ``free``, the state after it)."""
    E = bb // eb
    dv, lcs, s = state
    free, v, lcs, nxt = 0, dv, list(lcs), s
    for b in bursts(off, 1, cols, 0, eb, bb)[0]:
        v = max(v + 1, lcs.pop(0))
        c0 = max(v + 3 + latency, nxt)
        span, g_last = _span(b, E, P, D)
        cl = c0 + span
        free = cl + g_last
        nxt = cl + max(g_last, D)
        lcs.append(cl)
    return free, (v - free, tuple(max(x, v + 1) - free for x in lcs), nxt - free)


def load_cycles(addr: int, rows: int, cols: int, stride: int, eb: int, bb: int, latency: int, lanes: int = 1,
                outstanding: int = 1, beat_cycles: int = 1) -> int:
    """Edges a LOAD keeps the load unit busy with up to ``outstanding`` read bursts in flight (``N``; the
    DRAM: every read address accepted at once, its first beat ``2 + L`` edges after acceptance and after the
    previous burst's last beat, beats in order, each captured at least ``beat_cycles`` edges after the
    previous one: the read bandwidth, ``bus words / beat_cycles`` 64-bit words per cycle)."""
    assert 1 <= beat_cycles <= MAX_BEAT_CYCLES, beat_cycles
    addr %= PAGE        # only the page offset matters (rows are walked by it): one cache entry per offset
    if outstanding == 1:
        return _load_cycles_1(addr, rows, cols, stride, eb, bb, latency, lanes, beat_cycles)
    return _load_cycles_n(addr, rows, cols, stride, eb, bb, latency, lanes, outstanding, beat_cycles)


def window_load_cycles(segments, eb: int, bb: int, latency: int, lanes: int = 1, outstanding: int = 1,
                       beat_cycles: int = 1) -> int:
    """Edges a windowed LOAD keeps the load unit busy: its ``segments`` (``spec.window_segments``: per row,
    ``(byte address, elements)``), all of them in order, each timed exactly as a row of a plain LOAD at page
    offset ``addr % PAGE`` with ``cols = elements`` (the DMA issues a segment's bursts as a plain row's,
    ``bursts(addr, 1, elements, 0, eb, bb)``), the state carried from segment to segment as ``_walk_rows``
    carries it from row to row (the same start state, ``free`` from 1). A plain per-segment walk: no
    period skipping (segments of one row differ)."""
    assert 1 <= beat_cycles <= MAX_BEAT_CYCLES, beat_cycles
    E, P, N, D = bb // eb, lanes, outstanding, beat_cycles
    assert P >= 1 and E % P == 0, (E, P)
    if N == 1:
        st, row = (1, 0), (lambda off, n, st: _row_load(off, n, eb, bb, latency, P, D, st))
    else:
        st, row = (-2, (-1,) * N, 0), (lambda off, n, st: _row_load_n(off, n, eb, bb, latency, P, N, D, st))
    free = 1
    for segs in segments:
        for addr, n in segs:
            df, st = row(addr % PAGE, n, st)
            free += df
    return free


# the registers a windowed LOAD's segments depend on; LD_ADDR and WIN_ZERO only through their page offset
_WIN_KEY = ("LD_ROWS", "LD_COLS") + tuple(n for n in WIN_CSR if n != "WIN_ZERO")


@lru_cache(maxsize=1 << 14)
def _window_cycles_cached(key: tuple, eb: int, bb: int, latency: int, lanes: int, outstanding: int,
                          beat_cycles: int) -> int:
    csr = dict(zip(("LD_ADDR", "WIN_ZERO") + _WIN_KEY, key))
    return window_load_cycles(window_segments(csr, eb), eb, bb, latency, lanes, outstanding, beat_cycles)


def window_cycles(csr: dict, eb: int, bb: int, latency: int, lanes: int = 1, outstanding: int = 1,
                  beat_cycles: int = 1) -> int:
    """``window_load_cycles`` of the windowed LOAD that the registers ``csr`` describe. Every address of
    ``window_segments`` is LD_ADDR or WIN_ZERO plus register sums modulo 2**32, and ``PAGE`` divides
    2**32, so the page offsets (all the timing reads) depend on LD_ADDR and WIN_ZERO only modulo PAGE:
    cached on that key (an X tile is loaded again for every output column tile)."""
    key = (csr.get("LD_ADDR", 0) % PAGE, csr.get("WIN_ZERO", 0) % PAGE) + tuple(csr.get(n, 0) for n in _WIN_KEY)
    return _window_cycles_cached(key, eb, bb, latency, lanes, outstanding, beat_cycles)


# The DRAM's bandwidth (``--dram-bw W``, 64-bit words per cycle, each direction: AXI's read and write channels
# are independent): a read beat of the ``B``-word bus is shown ``D = B / W`` edges after the previous capture at
# the earliest, and a W beat accepted ``D`` edges after the previous accepted one at the earliest, D a whole
# number 1..4. With D <= 5 the pacing never binds across LOADs (the next LOAD's first beat comes >= 5 + L edges
# after the previous LOAD's last capture) nor across STOREs (the next STORE's first W beat comes >= 6 + L edges
# after the previous STORE's last), so a LOAD's or STORE's time depends on its own registers alone.
MAX_BEAT_CYCLES = 4


def with_dram_bw(man: dict, text) -> dict:
    """A copy of manifest ``man`` whose ``prog`` carries the run-time DRAM bandwidth ``--dram-bw`` as
    ``dram_beat_cycles`` (what ``Timeline`` and the compiler's ``tile_busy`` read; not a design property, never
    in manifest.json). ``None``: ``man`` itself (the bus width)."""
    if text is None:
        return man
    return {**man, "prog": {**man["prog"], "dram_beat_cycles": beat_cycles(text, man["prog"]["dram_bits"])}}


def dram_bw_words(prog: dict) -> float:
    """The DRAM bandwidth (each direction) a (``with_dram_bw``) design's ``prog`` runs at, in 64-bit words
    per cycle: the bus's words over ``dram_beat_cycles`` (the bus width without ``--dram-bw``)."""
    return prog["dram_bits"] // 64 / prog.get("dram_beat_cycles", 1)


def beat_cycles(text, dram_bits: int) -> int:
    """``--dram-bw`` (64-bit words per cycle: an integer, a fraction ``a/b`` or a decimal) on a bus of
    ``dram_bits`` -> ``D``, edges per beat; ``None`` -> 1 (the bus width, one beat per cycle)."""
    from fractions import Fraction

    from lego.errors import LegoError
    if text is None:
        return 1
    words = dram_bits // 64
    try:
        w = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise LegoError(f"--dram-bw: '{text}' is not a number of 64-bit words per cycle (e.g. 2, 1, 1/2)") from None
    allowed = ", ".join(str(Fraction(words, d)) for d in range(1, MAX_BEAT_CYCLES + 1))
    if w <= 0:
        raise LegoError(f"--dram-bw: {text} must be > 0 (64-bit words per cycle; allowed: {allowed})")
    if w > words:
        raise LegoError(f"--dram-bw: {text} is above the {dram_bits}-bit bus's {words} words per cycle "
                        f"(allowed: {allowed})")
    d = Fraction(words) / w
    if d.denominator != 1 or d > MAX_BEAT_CYCLES:
        raise LegoError(f"--dram-bw: {text} is not the {dram_bits}-bit bus's {words} words per cycle over 1..."
                        f"{MAX_BEAT_CYCLES} cycles per beat (allowed: {allowed})")
    return int(d)


def _rows_skipping_periods(addr: int, rows: int, stride: int, st, row) -> int:
    """Edges the load unit is busy over ``rows`` rows one after another, ``row(page offset, state)`` giving
    a row's edges and the next state. The state takes finitely many values, so once a (page offset, state)
    recurs the rows between repeat exactly: whole periods are skipped in one step."""
    return _walk_rows(addr, rows, stride, st, row)[0]


def _walk_rows(addr: int, rows: int, stride: int, st, row) -> tuple[int, tuple]:
    """``_rows_skipping_periods`` with the state after the last row: (edges, state)."""
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
    return free, st


@lru_cache(maxsize=1 << 16)
def _load_cycles_n(addr: int, rows: int, cols: int, stride: int, eb: int, bb: int, latency: int, lanes: int,
                   N: int, D: int = 1) -> int:
    """``load_cycles`` for ``N > 1``: rows one after another (``_row_load_n``), whole periods of a recurring
    row state (page offset, ``_row_load_n``'s state) skipped in one step."""
    E = bb // eb
    P = lanes
    assert P >= 1 and E % P == 0 and N > 1, (E, P, N)
    # before the first burst: v_0 = -1 (so v_1 = 0, the dispatch edge), free = 1, no RLAST binds
    return _rows_skipping_periods(addr, rows, stride, (-2, (-1,) * N, 0),
                                  lambda off, st: _row_load_n(off, cols, eb, bb, latency, P, N, D, st))


@lru_cache(maxsize=1 << 16)
def _load_cycles_1(addr: int, rows: int, cols: int, stride: int, eb: int, bb: int, latency: int, lanes: int = 1,
                   D: int = 1) -> int:
    """Edges a LOAD keeps the load unit busy (one burst outstanding): rows one after another (``_row_load``,
    state ``d``), whole periods of a recurring row state skipped in one step."""
    E = bb // eb
    P = lanes
    assert P >= 1 and E % P == 0, (E, P)
    return _rows_skipping_periods(addr, rows, stride, (1, 0),
                                  lambda off, st: _row_load(off, cols, eb, bb, latency, P, D, st))


def store_cycles(addr: int, rows: int, cols: int, stride: int, bb: int, latency: int, outstanding: int = 1,
                 beat_cycles: int = 1, lanes: int = 1) -> int:
    """Edges a STORE keeps the store unit busy with up to ``outstanding`` write bursts unacknowledged
    (``N``, ``prog.dram_outstanding``; the DRAM: every write address accepted at once, a W beat accepted
    (WREADY) no earlier than ``beat_cycles`` (``D``) edges after the previous accepted one (the write
    bandwidth, ``bus words / D`` 64-bit words per cycle; ``D = 1``: every beat at once), the write response
    ``2 + L`` edges after the burst's last W beat). With ``N = 1`` each burst costs ``elems + 2·beats + 2 + L``
    (a beat of ``v`` elements is sent ``v + 2`` edges after its gather starts, the next burst starts with the
    response) plus ``D - v - 2`` for each later beat of the burst with ``v + 2 < D``. With ``N > 1`` and
    ``D = 1`` the gather streams one element per edge across beats and bursts: burst k starts (AWVALID,
    gather) at ``s_k = max(e_{k-1}, b_{k-N})`` (``s_1``: dispatch; ``e``: the edge that reads a burst's last
    element, ``e_k = s_k + elems``; ``b``: the edge that captures a burst's write response, ``b_k = e_k + 4 +
    L``: its last W beat at ``e_k + 2``); busy ends at the last ``b``. With ``D > 1`` see ``_row_store_nd``.

    ``lanes`` (``P``, a power of two dividing ``E``): accumulator elements the gather reads per cycle, a lane
    group of ``min(P, left in the beat)`` consecutive elements of one beat from its first lane on; everything
    above holds with a beat's ``v`` elements counted as its ``ceil(v / P)`` read cycles (``P = 1``: one
    element per cycle)."""
    assert 1 <= beat_cycles <= MAX_BEAT_CYCLES, beat_cycles
    E = bb // 4
    assert lanes >= 1 and E % lanes == 0, (E, lanes)
    addr %= PAGE        # as in load_cycles: only the page offset matters
    if outstanding == 1:
        return _store_cycles_1(addr, rows, cols, stride, bb, latency, beat_cycles, lanes)
    if beat_cycles == 1:
        return _store_cycles_n(addr, rows, cols, stride, bb, latency, outstanding, lanes)
    return _store_cycles_nd(addr, rows, cols, stride, bb, latency, outstanding, beat_cycles, lanes)


def _groups(b, E: int, P: int) -> int:
    """Read cycles of burst ``b``'s gather: per beat, ``ceil(v / P)`` for its ``v`` elements."""
    if P == 1:
        return b.elems
    return sum(n * -(-v // P) for v, n in _beat_runs(b, E))


def _short_beats(b, E: int, D: int, P: int = 1) -> int:
    """Edges the write bandwidth adds to a burst sent one beat at a time (N = 1): a beat after the first is
    offered ``g + 2`` edges after the previous handshake (``g``: its read cycles, ``ceil(v / P)``) and taken
    ``D`` edges after it at the earliest."""
    if b.beats == 1:
        return 0
    return sum(n * max(0, D - -(-v // P) - 2) for v, n in _beat_runs(b, E)[1:])


@lru_cache(maxsize=1 << 16)
def _store_cycles_1(addr: int, rows: int, cols: int, stride: int, bb: int, latency: int, D: int = 1,
                    P: int = 1) -> int:
    E = bb // 4
    return sum(_groups(b, E, P) + 2 * b.beats + 2 + latency + _short_beats(b, E, D, P)
               for row in bursts(addr, rows, cols, stride, 4, bb) for b in row)


def _beat_runs(b, E: int) -> tuple:
    """A burst's beats as (elements, count) runs: the first beat, the full middle beats, the last beat."""
    first = min(E - b.off, b.elems)
    if b.beats == 1:
        return ((first, 1),)
    return ((first, 1), (E, b.beats - 2), ((b.off + b.elems - 1) % E + 1, 1))


def _send_beats(e: int, h1: int, h2: int, v: int, n: int, D: int) -> tuple[int, int, int]:
    """``n`` beats of ``v`` elements each (``_row_store_nd``'s rule) from (last read ``e``, last two W
    handshakes ``h1``, ``h2``). The rule is invariant under shifting all three edges, so once a beat leaves
    their differences unchanged every later beat moves them by the same amount: skipped in one step."""
    while n > 0:
        before = (h1 - e, h2 - e)
        lr = max(e + 1, h2) + v - 1
        h1, h2 = max(lr + 2, h1 + D), h1
        step, e, n = lr - e, lr, n - 1
        if (h1 - e, h2 - e) == before and n:
            e, h1, h2, n = e + n * step, h1 + n * step, h2 + n * step, 0
    return e, h1, h2


@lru_cache(maxsize=1 << 16)
def _row_store_nd(off: int, cols: int, bb: int, latency: int, N: int, D: int, state: tuple,
                  P: int = 1) -> tuple[int, tuple]:
    """One row of a STORE with up to ``N > 1`` write bursts outstanding and a write bandwidth of one beat every
    ``D`` edges, beat by beat. ``state = (h1, h2, bs)`` relative to ``e`` (the edge that read the last element
    so far, or the dispatch): the W handshakes of the last two beats (``h2`` clipped from below at 1, where it
    no longer binds) and the edges of the last ``N`` write responses (clipped at 0). Burst k starts at
    ``s_k = max(e, b_{k-N})``; beat i's first read is at ``max(e + 1, h_{i-2})`` (after its start, one read an
    edge, and one of two beat slots free: the slot of beat i-2 is freed by its handshake), its ``ceil(v_i / P)``
    reads (lane groups) end at ``lr_i``, its W handshake is at ``h_i = max(lr_i + 2, h_{i-1} + D)``; a burst's response at its
    last ``h + 2 + L``. -> (edges the row adds to ``e``, the state after it)."""
    E = bb // 4
    h1, h2, bs = state
    e, bs = 0, list(bs)
    for b in bursts(off, 1, cols, 0, 4, bb)[0]:
        e = max(e, bs.pop(0))                       # the burst's start: its reads from e + 1
        for v, n in _beat_runs(b, E):
            e, h1, h2 = _send_beats(e, h1, h2, -(-v // P), n, D)
        bs.append(h1 + 2 + latency)
    return e, (h1 - e, max(h2 - e, 1), tuple(max(x - e, 0) for x in bs))


@lru_cache(maxsize=1 << 16)
def _store_cycles_nd(addr: int, rows: int, cols: int, stride: int, bb: int, latency: int, N: int, D: int,
                     P: int = 1) -> int:
    """``store_cycles`` for ``N > 1``, ``D > 1`` (also exact at ``D = 1``, where the burst formula is faster):
    rows one after another (``_row_store_nd``), whole periods skipped; busy ends with the last burst's
    response (the last of the state's ``bs``, relative to ``e``)."""
    assert N > 1 and D >= 1, (N, D)
    walk, st = _walk_rows(addr, rows, stride, (-D, 1, (0,) * N),
                          lambda off, st: _row_store_nd(off, cols, bb, latency, N, D, st, P))
    return walk - 1 + st[2][-1]


@lru_cache(maxsize=1 << 16)
def _row_store_n(off: int, cols: int, bb: int, latency: int, N: int, bs: tuple, P: int = 1) -> tuple[int, tuple]:
    """One row of a STORE with up to ``N`` write bursts outstanding (``N > 1``), entered at ``e`` (the edge
    that read the last element so far, or the dispatch): ``bs``, the edges of the last ``N`` write responses
    relative to ``e`` (oldest first; clipped from below at 0, where they no longer bind). -> (edges the row
    adds to ``e``, the state after it). A burst reads for ``_groups`` edges (its elements, with ``P = 1``)."""
    E = bb // 4
    e, bs = 0, list(bs)
    for b in bursts(off, 1, cols, 0, 4, bb)[0]:
        e = max(e, bs.pop(0)) + _groups(b, E, P)
        bs.append(e + 4 + latency)
    return e, tuple(max(x - e, 0) for x in bs)


@lru_cache(maxsize=1 << 16)
def _store_cycles_n(addr: int, rows: int, cols: int, stride: int, bb: int, latency: int, N: int, P: int = 1) -> int:
    """``store_cycles`` for ``N > 1``: rows one after another (``_row_store_n``), whole periods of a
    recurring (page offset, state) skipped in one step. (``_rows_skipping_periods`` counts from 1: it
    walks ``e + 1``.) Busy ends with the last burst's response, ``4 + L`` after its last element's read."""
    assert N > 1, N
    return _rows_skipping_periods(addr, rows, stride, (0,) * N,
                                  lambda off, st: _row_store_n(off, cols, bb, latency, N, st, P)) + 3 + latency


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
        self.st_lanes = prog.get("st_lanes", {})                # absent: one element a cycle
        self.outstanding = prog.get("dram_outstanding", 1)
        self.beat_cycles = prog.get("dram_beat_cycles", 1)      # run-time DRAM bandwidth (with_dram_bw)
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
        if op == "LOAD" and cmd.get("window"):
            return window_cycles(c, self.eb, self.bb, self.latency,
                                 self.lanes.get("X", {}).get(self.names[cmd["mode"]], 1), self.outstanding,
                                 self.beat_cycles)
        if op == "LOAD":
            return load_cycles(c["LD_ADDR"], c["LD_ROWS"], c["LD_COLS"], c["LD_STRIDE"], self.eb, self.bb, self.latency,
                               self.lanes.get(cmd["tensor"], {}).get(self.names[cmd["mode"]], 1), self.outstanding,
                               self.beat_cycles)
        if op == "STORE":
            return store_cycles(c["ST_ADDR"], c["ST_ROWS"], c["ST_COLS"], c["ST_STRIDE"], self.bb, self.latency,
                                self.outstanding, self.beat_cycles, self.st_lanes.get(self.names[cmd["mode"]], 1))
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

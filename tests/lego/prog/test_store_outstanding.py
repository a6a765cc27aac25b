"""timing.store_cycles with several write bursts outstanding (``prog.dram_outstanding``, N) against
independent cycle-by-cycle simulations of the store DMA and the bench's write side, written out here from
docs/programmable.md ("AXI4 subset", "Timing", the bench's ``PipelinedWrite``). The DRAM accepts every
address at once and a W beat (WREADY high) from ``D`` edges after the previous W handshake on (the write
bandwidth, ``--dram-bw``; ``D = 1``: every beat at once), and answers each burst ``2 + L`` edges after its
last W beat (BVALID shown in the cycle before), in order; busy ends with the last response.

* ``N = 1`` (``simulate_serial``): the DMA starts a burst (raises AWVALID and gathers) at dispatch; it
  reads one accumulator element per cycle, the element's data arrives one cycle after its read and the beat
  is offered (WVALID) in the cycle after its last element's data, taken at the next edge; the next beat's
  reads start after that handshake, the next burst with the write response.
* ``N > 1`` (``simulate_stream``): reads stream one per cycle across beats and bursts; a beat is assembled
  from its elements' data and moves to the W register with its last element's data when that register is
  free (else it waits in the assembly register), a beat holding one of two slots from its first read to its
  W handshake (a first read waits for a slot); the next burst starts in the edge of the previous burst's
  last read if fewer than N bursts are unacknowledged once that edge's write response is counted, else
  with the response that makes room.

Random tiles (bursts cut at rows, 4 KiB pages and 256 beats), buses, latencies and N."""
import numpy as np

from lego.prog.spec import bursts
from lego.prog.timing import store_cycles


def _beats(addr, rows, cols, stride, bb):
    """Per burst, per beat: the elements it carries."""
    E = bb // 4
    beats = []
    for row in bursts(addr, rows, cols, stride, 4, bb):
        for b in row:
            per, lo, left = [], b.off, b.elems
            for _ in range(b.beats):
                n = min(E - lo, left)
                per.append(n)
                left -= n
                lo = 0
            assert left == 0 and min(per) >= 1
            beats.append(per)
    return beats


def simulate(addr, rows, cols, stride, bb, latency, N, D=1, P=1):
    return (simulate_serial if N == 1 else simulate_stream)(addr, rows, cols, stride, bb, latency, N, D, P)


def simulate_stream(addr, rows, cols, stride, bb, latency, N, D=1, P=1):
    """Edges from dispatch (edge 0) to the store's last write response, N > 1; WREADY high from ``D`` edges
    after the previous W handshake; a read takes the next ``min(P, left)`` elements of the beat."""
    beats = _beats(addr, rows, cols, stride, bb)
    nb = len(beats)
    k, beat, left = 0, 0, beats[0][0]           # the burst being read, its beat, elements left in the beat
    reading, all_read = True, False
    first = True                                # the next read is a beat's first
    slots = 0
    p = None                                    # the read whose data arrives this cycle: (beat's last, burst's last)
    asm_full, asm_wlast = False, False
    wvalid, wlast = False, False
    unacked, started = 1, 1
    resp = []
    t, last_w = 0, -D
    while True:
        w_hs = wvalid and t + 1 >= last_w + D
        b_hs = bool(resp) and resp[0] == t + 1
        room = unacked - b_hs < N
        rd = reading and (not first or slots - w_hs < 2)
        t += 1
        if b_hs:
            resp.pop(0)
            unacked -= 1
            if all_read and unacked == 0:
                assert not wvalid and not asm_full and p is None
                return t
        out_free = not wvalid or w_hs
        if w_hs:
            last_w = t
            slots -= 1
            if wlast:
                resp.append(t + 2 + latency)
            wvalid = False
        if p is not None and p[0]:              # a beat's last element: to W, or held
            if out_free:
                assert not asm_full
                wvalid, wlast = True, p[1]
            else:
                asm_full, asm_wlast = True, p[1]
        elif asm_full and out_free:
            wvalid, wlast, asm_full = True, asm_wlast, False
        p = None
        if rd:
            if first:
                slots += 1
                assert slots <= 2
            left -= min(P, left)
            first = left == 0
            p = (left == 0, left == 0 and beat == len(beats[k]) - 1)
            if left == 0:
                beat += 1
                if beat == len(beats[k]):       # the burst's last element
                    reading = False
                    if started == nb:
                        all_read = True
                    elif room:
                        k, beat, left, reading = started, 0, beats[started][0], True
                        started += 1
                        unacked += 1
                else:
                    left = beats[k][beat]
        elif not reading and not all_read and room:
            k, beat, left, reading, first = started, 0, beats[started][0], True, True
            started += 1
            unacked += 1


def simulate_serial(addr, rows, cols, stride, bb, latency, N, D=1, P=1):
    """Edges from dispatch (edge 0) to the store's last write response, one burst at a time; WREADY high
    from ``D`` edges after the previous W handshake; a read takes the next ``min(P, left)`` elements."""
    E = bb // 4
    beats = _beats(addr, rows, cols, stride, bb)  # per burst, per beat: elements gathered
    nb = len(beats)
    # DMA state
    gathering, k, beat, left = True, 0, 0, beats[0][0]   # a burst in gather: its index, beat, elements left
    pdata = False                               # an accumulator read in flight (its data next cycle)
    pend_last = False                           # that read is the beat's last element
    wvalid = False
    unacked = 1                                 # bursts started whose response is not captured
    started = 1
    # DRAM state: edges at which the pending responses are captured
    resp = []
    t, last_w = 0, -D
    while True:
        issue = gathering and left > 0
        w_hs = wvalid and t + 1 >= last_w + D   # WREADY: D edges after the previous W handshake
        b_hs = bool(resp) and resp[0] == t + 1  # BVALID shown in the cycle before its edge, BREADY high
        t += 1
        # edge t
        if b_hs:
            resp.pop(0)
            unacked -= 1
            if started == nb and unacked == 0:
                return t
        new_wvalid = wvalid and not w_hs
        if pdata and pend_last:
            new_wvalid = True
        pdata, pend_last = issue, False
        if issue:
            left -= min(P, left)
            pend_last = left == 0
        start_next = False
        if w_hs:
            last_w = t
            if beat == len(beats[k]) - 1:       # the burst's last W beat: its response in 2 + L edges
                resp.append(t + 2 + latency)
                gathering = False
                start_next = started < nb
            else:
                beat += 1
                left = beats[k][beat]
        elif not gathering and started < nb and not issue and not pdata and not wvalid:
            start_next = True                   # waiting for room
        if start_next and unacked < N:
            k, beat, gathering = started, 0, True
            left = beats[k][0]
            started += 1
            unacked += 1
        wvalid = new_wvalid


def test_store_cycles_n1_is_the_serial_formula():
    # one burst outstanding: each burst costs elems + 2 beats + 2 + L, also in the simulation
    rng = np.random.default_rng(3)
    for _ in range(100):
        bb = int(rng.choice([8, 16, 32]))
        cols, rows, lat = int(rng.integers(1, 300)), int(rng.integers(1, 20)), int(rng.integers(0, 120))
        stride = 4 * cols + 4 * int(rng.choice([0, 1, 7, 1024]))
        addr = 4 * int(rng.integers(0, 1 << 18))
        expect = sum(b.elems + 2 * b.beats + 2 + lat for row in bursts(addr, rows, cols, stride, 4, bb) for b in row)
        assert store_cycles(addr, rows, cols, stride, bb, lat) == expect == simulate(addr, rows, cols, stride, bb,
                                                                                       lat, 1)


def _random_store(rng, cols: int, rows: int, lat: int) -> tuple:
    """(addr, rows, cols, stride, bb, latency) of a random STORE: 64/128/256-bit bus, rows up to ``cols``
    int32 with a stride of 0..1024 words more, up to ``rows`` rows, latency below ``lat``."""
    bb = int(rng.choice([8, 16, 32]))
    c = int(rng.integers(1, cols))
    stride = 4 * c + 4 * int(rng.choice([0, 0, 1, 3, 64, 1024, 1023]))
    r = int(rng.integers(1, rows))
    addr = 4 * int(rng.integers(0, 1 << 18))
    return (addr, r, c, stride, bb, int(rng.integers(0, lat)))


def test_outstanding_store_cycles_equal_the_cycle_simulation():
    rng = np.random.default_rng(11)
    for _ in range(400):
        args = _random_store(rng, cols=100, rows=40, lat=120)
        N = int(rng.integers(1, 17))
        assert store_cycles(*args, outstanding=N) == simulate(*args, N), (args, N)


def test_long_bursts_and_long_periodic_stores():
    # rows of several bursts (4 KiB page and 256-beat cuts), and 20k rows (the period skip)
    for args in [(4096 - 40, 3, 1500, 8192, 8, 20), (24, 6, 3000, 12004, 16, 100),
                 (4 * 4096 + 24, 2000, 16, 4096 + 64, 8, 20), (8, 20_000, 16, 64, 8, 100)]:
        for N in (1, 2, 4, 16):
            assert store_cycles(*args, outstanding=N) == simulate(*args, N), (args, N)


def test_more_outstanding_never_slower_and_shares_the_latency():
    a = (0, 64, 16, 64, 8, 20)          # 16 int32 a row: 8 beats; N = 1: 32 cycles a burst, then 22 of response
    c = [store_cycles(*a, outstanding=n) for n in (1, 2, 4, 8, 16)]
    assert c == sorted(c, reverse=True) and c[0] == 64 * (16 + 16 + 22), c
    assert c[2] == 64 * 16 + 4 + 20     # N = 4: the reads stream, one element a cycle, the responses hidden
    b = (0, 64, 2, 64, 8, 100)          # 1 beat a row: 4 cycles a burst, 102 of response
    c = [store_cycles(*b, outstanding=n) for n in (1, 2, 4, 8, 16)]
    assert c == sorted(c, reverse=True) and c[0] == 64 * 106 and c[0] > 7 * c[4], c


def test_write_bandwidth_store_cycles_equal_the_cycle_simulation():
    # --dram-bw below the bus width: a W beat taken D = 1..4 edges after the previous one, N = 1..4 outstanding
    rng = np.random.default_rng(29)
    slower = 0
    for _ in range(400):
        args = _random_store(rng, cols=80, rows=24, lat=60)
        N, D = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        got = store_cycles(*args, outstanding=N, beat_cycles=D)
        assert got == simulate(*args, N, D), (args, N, D)
        slower += got > store_cycles(*args, outstanding=N)
    assert slower > 50, slower                  # the limit binds in many of them


def test_write_bandwidth_long_and_periodic_stores():
    # several bursts a row, 20k rows (the period skip); D = 1 through the beat-by-beat path equals the burst formula
    from lego.prog.timing import _store_cycles_nd
    for args in [(4096 - 40, 3, 1500, 8192, 8, 20), (24, 6, 300, 12004, 16, 100),
                 (4 * 4096 + 24, 500, 16, 4096 + 64, 8, 20), (8, 20_000, 16, 64, 8, 100), (4, 3000, 5, 4096 + 4, 32, 7)]:
        for N in (1, 2, 4):
            for D in (1, 2, 3, 4):
                assert store_cycles(*args, outstanding=N, beat_cycles=D) == simulate(*args, N, D), (args, N, D)
            if N > 1:
                assert _store_cycles_nd(*args, N, 1) == store_cycles(*args, outstanding=N), (args, N)


def test_write_bandwidth_on_a_64_bit_bus():
    # 2 int32 a beat, read one a cycle: a beat every 2 edges at most; at D = 4 (1/4 word a cycle) one every 4
    a = (0, 64, 16, 64, 8, 20)                  # 8 full beats a row, one burst a row
    assert store_cycles(*a, outstanding=4, beat_cycles=2) == store_cycles(*a, outstanding=4) == 64 * 16 + 4 + 20
    assert store_cycles(*a, outstanding=4, beat_cycles=4) == 4 * 64 * 8 + 2 + 20 == simulate(*a, 4, 4)
    # one burst at a time: v + 2 = 4 edges a full beat, so D = 4 binds only on a 1-element last beat
    assert store_cycles(*a, beat_cycles=4) == store_cycles(*a) == 64 * (16 + 16 + 22)
    b = (0, 10, 3, 64, 8, 20)                   # 2 beats a row: 2 elements, then 1
    assert store_cycles(*b, beat_cycles=4) == store_cycles(*b) + 10 == simulate(*b, 1, 4)


def _lanes(bb, rng):
    """A lane count P > 1 of the bus (a power of two dividing E = bb / 4)."""
    E = bb // 4
    return int(rng.choice([p for p in (2, 4, 8) if p <= E]))


def test_lane_group_store_cycles_equal_the_cycle_simulation():
    # the gather reads P elements a cycle (a full 64/128/256-bit beat at P = E): N 1..4, D 1..4, odd row widths
    rng = np.random.default_rng(41)
    faster = 0
    for _ in range(500):
        bb = int(rng.choice([8, 16, 32]))
        P = _lanes(bb, rng)
        cols = int(rng.integers(1, 80)) | 1 if rng.random() < 0.5 else int(rng.integers(1, 80))
        stride = 4 * cols + 4 * int(rng.choice([0, 0, 1, 3, 64, 1024, 1023]))
        rows = int(rng.integers(1, 24))
        addr = 4 * int(rng.integers(0, 1 << 18))
        lat = int(rng.integers(0, 60))
        N, D = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        args = (addr, rows, cols, stride, bb, lat)
        got = store_cycles(*args, outstanding=N, beat_cycles=D, lanes=P)
        assert got == simulate(*args, N, D, P), (args, N, D, P)
        faster += got < store_cycles(*args, outstanding=N, beat_cycles=D)
    assert faster > 250, faster                 # fewer cycles than one element a cycle in most of them


def test_lane_groups_long_and_periodic_stores():
    from lego.prog.timing import _store_cycles_nd
    for args in [(4096 - 40, 3, 1500, 8192, 8, 20), (24, 6, 300, 12004, 16, 100), (4 * 4096 + 24, 500, 16, 4096 + 64, 8, 20),
                 (8, 20_000, 16, 64, 8, 100), (4, 3000, 5, 4096 + 4, 32, 7), (12, 400, 37, 4 * 37, 32, 20)]:
        E = args[4] // 4
        for P in (p for p in (2, 4, 8) if p <= E):
            for N in (1, 2, 4):
                for D in (1, 2, 4):
                    got = store_cycles(*args, outstanding=N, beat_cycles=D, lanes=P)
                    assert got == simulate(*args, N, D, P), (args, N, D, P)
                if N > 1:
                    assert _store_cycles_nd(*args, N, 1, P) == store_cycles(*args, outstanding=N, lanes=P)


def test_full_beat_a_cycle_hand_counts():
    # 64-bit bus, P = E = 2: 8 full beats a row of 16 int32, one burst a row
    a = (0, 64, 16, 64, 8, 20)
    assert store_cycles(*a, outstanding=4, lanes=2) == 64 * 8 + 4 + 20      # a beat a cycle, responses hidden
    assert store_cycles(*a, lanes=2) == 64 * (8 + 16 + 22)                   # N = 1: 1 read + 2 edges a beat
    # N = 1 at D = 4: every beat after a burst's first waits 4 - 1 - 2 = 1 edge for WREADY
    assert store_cycles(*a, beat_cycles=4, lanes=2) == 64 * (8 + 16 + 22 + 7) == simulate(*a, 1, 4, 2)
    # N = 4 at D = 2: the W channel bounds it: first beat read at edge 1, taken at 3, then one every 2 edges
    assert store_cycles(*a, outstanding=4, beat_cycles=2, lanes=2) == 3 + 2 * (64 * 8 - 1) + 2 + 20 == simulate(*a, 4, 2, 2)
    # an unaligned odd row: 3 columns from lane 1 of a 256-bit beat, P = 8: one read a row
    b = (4, 10, 3, 64, 32, 20)
    assert store_cycles(*b, outstanding=2, lanes=8) == simulate(*b, 2, 1, 8)

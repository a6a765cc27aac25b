"""timing.load_cycles with several read bursts outstanding (``prog.dram_outstanding``, N) against an
independent cycle-by-cycle simulation of the load DMA and the pipelined-latency DRAM written out here from
docs/programmable.md ("DMA load", "Timing"): the DMA raises ARVALID at dispatch and again at once after each
handshake while fewer than N bursts are raised and not ended by RLAST; the DRAM accepts every address at
the edge after ARVALID rises and can show a burst's first beat for capture ``2 + L`` edges after that, in
order, one beat per cycle; the DMA captures a beat when its beat register is empty or in the cycle of the
held beat's last lane group, and writes one group per cycle; with a read bandwidth below the bus width
(``--dram-bw``, ``D`` edges per beat) the DRAM shows no beat before ``D`` edges after the previous capture
(RVALID low in between). Random tiles (bursts cut at rows, 4 KiB pages and 256 beats), buses, lanes,
latencies, N and D."""
import numpy as np

from lego.prog.spec import bursts
from lego.prog.timing import load_cycles


def simulate(addr, rows, cols, stride, eb, bb, latency, P, N, D=1):
    """Edges from dispatch (edge 0) to the load's last scratchpad write."""
    E = bb // eb
    beats = []                                  # per burst, per beat: lane groups
    for row in bursts(addr, rows, cols, stride, eb, bb):
        for b in row:
            lanes, lo, left = [], b.off, b.elems
            for _ in range(b.beats):
                n = min(E - lo, left)
                lanes.append(-(-n // P))
                left -= n
                lo = 0
            assert left == 0
            beats.append(lanes)
    nb = len(beats)
    accepted = []                               # edge of each AR handshake
    arvalid, raised, nxt = True, 1, 0          # ARVALID, bursts raised and not ended by RLAST, next AR
    have, grp = False, 0                        # beat register full, its lane groups left
    rb, rbeat = 0, 0                            # burst and beat of the next capture
    last_cap = -10 ** 9                         # edge of the last beat captured
    t = 0
    while True:
        # combinational values in the cycle before edge t + 1
        rready = (not have) or grp == 1
        rvalid = (rb < len(accepted) and (rbeat > 0 or t + 1 >= accepted[rb] + 2 + latency)
                  and t + 1 >= last_cap + D)
        ar_hs, cap = arvalid, rvalid and rready
        t += 1
        if have:                                # one lane group written at this edge
            grp -= 1
            if grp == 0:
                have = False
                if rb == nb and not cap:
                    return t
        rl = False
        if cap:
            last_cap = t
            have, grp = True, beats[rb][rbeat]
            rbeat += 1
            if rbeat == len(beats[rb]):
                rb, rbeat, rl = rb + 1, 0, True
        if ar_hs:
            accepted.append(t)
            nxt += 1
            if nxt < nb and raised - rl < N:
                raised += 1 - rl
            else:
                arvalid, raised = False, raised - rl
        elif not arvalid and nxt < nb and raised - rl < N:
            arvalid, raised = True, raised + 1 - rl
        else:
            raised -= rl


def random_load(rng) -> tuple:
    """A random LOAD: (addr, rows, cols, stride, element bytes, bus bytes, latency, lanes P)."""
    eb = int(rng.choice([1, 2, 4]))
    bb = int(rng.choice([8, 16, 32]))
    P = int(rng.choice([p for p in (1, 2, 4, 8, 16, 32) if p <= bb // eb]))
    cols = int(rng.integers(1, 80))
    stride = eb * cols + int(rng.choice([0, 0, 1, 3, 64, 4096, 4093])) * eb
    rows = int(rng.integers(1, 40))
    addr = int(rng.integers(0, 1 << 20)) * eb
    lat = int(rng.integers(0, 120))
    return addr, rows, cols, stride, eb, bb, lat, P


def test_outstanding_load_cycles_equal_the_cycle_simulation():
    rng = np.random.default_rng(7)
    for _ in range(600):
        args = random_load(rng)
        N = int(rng.choice([1, 2, 3, 4, 8, 16]))
        assert load_cycles(*args, outstanding=N) == simulate(*args, N), (args, N)


def test_long_bursts_and_long_periodic_loads():
    # rows of several bursts (4 KiB page and 256-beat cuts), and 20k rows (the period skip)
    for args in [(4096 - 40, 3, 5000, 8192, 1, 8, 20, 8), (24, 6, 3000, 3001, 2, 16, 100, 2),
                 (4 * 4096 + 24, 2000, 16, 4096 + 16, 1, 8, 20, 8), (8, 20_000, 16, 16, 1, 8, 100, 8)]:
        for N in (1, 2, 4, 16):
            assert load_cycles(*args, outstanding=N) == simulate(*args, N), (args, N)


def test_read_bandwidth_load_cycles_equal_the_cycle_simulation():
    # --dram-bw below the bus width: D = 2..4 edges per beat (and D = 1, the bus width), 400 random loads
    rng = np.random.default_rng(11)
    for i in range(400):
        args = random_load(rng)
        N = int(rng.integers(1, 17))
        D = 1 + i % 4
        assert load_cycles(*args, outstanding=N, beat_cycles=D) == simulate(*args, N, D), (args, N, D)


def test_read_bandwidth_long_loads_and_the_limit():
    # several bursts per row, 20k rows (the period skip), at D = 2, 3, 4
    for args in [(4096 - 40, 3, 5000, 8192, 1, 8, 20, 8), (24, 6, 3000, 3001, 2, 16, 100, 2),
                 (4 * 4096 + 24, 2000, 16, 4096 + 16, 1, 8, 20, 8), (8, 20_000, 16, 16, 1, 8, 100, 8)]:
        for N in (1, 4, 16):
            for D in (2, 3, 4):
                assert load_cycles(*args, outstanding=N, beat_cycles=D) == simulate(*args, N, D), (args, N, D)
    # D = 1 is the bus width (the default); a streaming load at D edges per beat takes about D x the beats
    a = (0, 64, 256, 256, 1, 32, 20, 32)            # 64 rows of 8 full 32-byte beats, one element group a beat
    c = {d: load_cycles(*a, outstanding=16, beat_cycles=d) for d in (1, 2, 4)}
    assert c[1] == load_cycles(*a, outstanding=16)
    assert 64 * 8 <= c[1] < c[2] < c[4] and 4 * 64 * 8 <= c[4] <= 4 * 64 * 8 + 200, c


def test_dram_bw_values():
    from lego.errors import LegoError
    from lego.prog.timing import beat_cycles
    assert [beat_cycles(w, 256) for w in (None, "4", "2", "4/3", "1", 1, "1.0")] == [1, 1, 2, 3, 4, 4, 4]
    assert [beat_cycles(w, 64) for w in ("1", "1/2", "0.5", "0.25", "1/3")] == [1, 2, 2, 4, 3]
    for w, bits, why in (("0", 64, "> 0"), ("-1", 128, "> 0"), ("x", 64, "not a number"), ("1/0", 64, "not a number"),
                         ("8", 256, "above"), ("2", 64, "above"), ("3", 256, "1...4 cycles per beat"),
                         ("1/8", 64, "1...4 cycles per beat")):
        try:
            beat_cycles(w, bits)
        except LegoError as e:
            assert str(e).startswith("--dram-bw: ") and why in str(e), (w, e)
        else:
            raise AssertionError(w)


def test_more_outstanding_never_slower_and_n1_is_serial():
    # N = 1 is the serial recurrence; 16-byte rows at L = 20: N bursts share one latency
    a = (0, 64, 16, 16, 1, 8, 20, 8)
    c = [load_cycles(*a, outstanding=n) for n in (1, 2, 4, 8, 16)]
    assert c == sorted(c, reverse=True) and c[0] > 2 * c[2], c


def test_gen_option_manifest_hash_and_bad_values(tmp_path, capsys):
    import json

    from lego.cli import main
    base = ["gen", "--workload", "gemm", "--array", "2x2", "--scratchpad-kib", "1", "--accumulator-kib", "4"]
    for bad in ("0", "17", "-1", "x"):
        out = tmp_path / f"bad{bad}"
        rc = main(base + ["--dram-outstanding", bad, "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "--dram-outstanding" in err[0], (bad, rc, err)
        assert not out.exists()
    prog = {}
    for n in (None, 1, 2, 3):
        out = tmp_path / f"n{n}"
        assert main(base + ([] if n is None else ["--dram-outstanding", str(n)]) + ["--out", str(out)]) == 0
        prog[n] = json.loads((out / "manifest.json").read_text())["prog"]
        v = (out / "lego_gemm_prog.v").read_text()
        assert ("ld_q_n" in v) == (prog[n]["dram_outstanding"] > 1)
    capsys.readouterr()
    assert [prog[n]["dram_outstanding"] for n in (None, 1, 2, 3)] == [4, 1, 2, 3]
    # the design hash (of the Verilog, which the program header carries) differs with N
    assert len({p["design_hash"] for p in prog.values()}) == 4
    p4 = tmp_path / "p.prog"
    assert main(["compile", str(tmp_path / "nNone"), "--layer", "gemm:M=8,N=8,K=8", "--out", str(p4)]) == 0
    capsys.readouterr()
    rc = main(["sim", str(tmp_path / "n1"), "--program", str(p4)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--program" in err[0] and "another design" in err[0], err


"""Streaming datapaths (lego/stream.py, lego/emit/stream.py): random streams of random length with random
bubbles, bit-exact against a numpy evaluation of the affine workload, and out_valid exactly ``latency``
cycles after the beat that produced it. (The cocotb benches of SpAtten run the same cores under Icarus
and Verilator.)"""
import itertools

import numpy as np
import pytest
from amaranth.sim import Simulator

from lego.affine.workload import Affine, Tensor, Workload, validate
from lego.emit.stream import StreamCore
from lego.errors import LegoError
from lego.stream import StreamDatapath, build_stream, stream_dataflow


def qk(n, d, qb="int12", kb="int10"):
    return validate(Workload("qk", ("j", "d"), (n, d), (
        Tensor("Q", "input", qb, (Affine((0, 1)),), (d,)),
        Tensor("K", "input", kb, (Affine((1, 0)), Affine((0, 1))), (n, d)),
        Tensor("S", "output", "int28", (Affine((1, 0)),), (n,)))))


def pv(n, d, pb="uint16", vb="int10"):
    return validate(Workload("pv", ("j", "d"), (n, d), (
        Tensor("P", "input", pb, (Affine((1, 0)),), (n,)),
        Tensor("V", "input", vb, (Affine((1, 0)), Affine((0, 1))), (n, d)),
        Tensor("O", "output", "int34", (Affine((0, 1)),), (d,)))))


def outer(n, r, c):
    """Y[j, a, b] = X[j, a] * W[j, b]: a 2-D spatial array, every lane an output each beat."""
    return validate(Workload("outer", ("j", "a", "b"), (n, r, c), (
        Tensor("X", "input", "int8", (Affine((1, 0, 0)), Affine((0, 1, 0))), (n, r)),
        Tensor("W", "input", "uint8", (Affine((1, 0, 0)), Affine((0, 0, 1))), (n, c)),
        Tensor("Y", "output", "int32", (Affine((1, 0, 0)), Affine((0, 1, 0)), Affine((0, 0, 1))), (n, r, c)))))


def rand(t, shape, rng):
    lo, hi = (-(1 << (t.bits - 1)), 1 << (t.bits - 1)) if t.signed else (0, 1 << t.bits)
    return rng.integers(lo, hi, shape)


def reference(w, data, n):
    """The workload over the stream prefix j < n (j is iterator 0)."""
    Y = w.output
    out = np.zeros(Y.shape, dtype=object)
    X, W = w.inputs
    for it in itertools.product(*(range(e) for e in w.extents)):
        if it[0] >= n:
            continue
        i = np.array(it)
        idx = {t.name: tuple(int(x) for x in w.access(t.name)[0] @ i + w.access(t.name)[1]) for t in w.tensors}
        out[idx[Y.name]] += int(data[X.name][idx[X.name]]) * int(data[W.name][idx[W.name]])
    return out


def pack(vals, bits):
    word = 0
    for k, v in enumerate(vals):
        word |= (int(v) & ((1 << bits) - 1)) << (k * bits)
    return word


def unpack(word, n, bits):
    out = []
    for k in range(n):
        v = (word >> (k * bits)) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out


def run_streams(w, stream_lens, seed, bubble=0.3):
    rng = np.random.default_rng(seed)
    sd = build_stream(w, "j", tuple(w.iterators[1:]))
    dp = StreamDatapath(sd)
    c = dp.core
    Y = w.output
    expected, got, beats = [], [], []
    streams = []
    for n in stream_lens:
        data = {t.name: rand(t, t.shape, rng) for t in w.inputs}
        streams.append((n, data))
        ref = reference(w, data, n)
        for t in range(n):
            if not c.stationary[Y.name] or t == n - 1:
                expected.append([int(ref[c.lane_index(Y.name, b, t)]) for b in range(c.lanes(Y.name))])

    async def tb(ctx):
        cyc = 0
        sched = []
        for n, data in streams:
            for t in range(n):
                while rng.random() < bubble:
                    sched.append(None)
                sched.append((t, n, data))
        sched += [None] * (dp.latency + 2)
        for item in sched:
            if item is None:
                ctx.set(dp.in_valid, 0)
            else:
                t, n, data = item
                ctx.set(dp.in_valid, 1)
                ctx.set(dp.in_first, int(t == 0))
                ctx.set(dp.in_last, int(t == n - 1))
                for tn, sig in dp.inputs.items():
                    tt = w.tensor(tn)
                    lanes = [data[tn][c.lane_index(tn, b, t)] for b in range(c.lanes(tn))]
                    ctx.set(sig, pack(lanes, tt.bits))
                if not c.stationary[Y.name] or t == n - 1:
                    beats.append(cyc)
            await ctx.tick()
            cyc += 1
            if ctx.get(dp.out_valid):
                got.append((cyc - 1, unpack(ctx.get(dp.output), c.lanes(Y.name), Y.bits)))

    sim = Simulator(dp)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return dp, expected, got, beats


CASES = [
    ("qk-d8", qk(6, 8), [6, 1, 3]),
    ("qk-d5-nonpow2", qk(9, 5), [9, 4]),
    ("pv-d8", pv(6, 8), [6, 2, 1, 5]),
    ("pv-d3", pv(5, 3, "int17", "int8"), [5, 3]),
    ("outer-3x4", outer(4, 3, 4), [4, 2]),
]


@pytest.mark.parametrize("name,w,lens", CASES, ids=[c[0] for c in CASES])
def test_stream_bit_exact_with_bubbles(name, w, lens):
    dp, expected, got, beats = run_streams(w, lens, seed=len(name))
    assert [g for _, g in got] == expected
    # every result leaves exactly `latency` cycles after its beat (the output register included)
    assert [cy for cy, _ in got] == [b + dp.latency - 1 for b in beats]


def test_stationary_tensor_is_held_from_the_first_beat():
    w = qk(4, 4)
    sd = build_stream(w, "j", ("d",))
    c = StreamCore(sd.arch, sd.pg)
    assert c.stationary == {"Q": True, "K": False, "S": False}
    assert sd.lp_bits < sd.naive_bits


def test_stream_dataflow_errors():
    w = qk(4, 4)
    with pytest.raises(LegoError, match="unknown iterator"):
        stream_dataflow(w, "x", ("d",))
    with pytest.raises(LegoError, match="one stream loop and 1-2 spatial loops"):
        stream_dataflow(w, "j", ("j",))

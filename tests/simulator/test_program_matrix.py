"""The verification matrix of the programmable arrays (docs/programmable.md, "Verification matrix").

Every case generates (once per module, shared by the cases of the same design) a programmable design, compiles
one layer with ``lego compile DIR --layer ...`` (gemm; conv2d with stride 1/2 and padding 0/1; dwconv2d; bmm),
and runs the program on the cycle engine, Icarus and Verilator. Each case checks:

* the layer moves at least 8x the scratchpad: the bytes of X (for conv: the host's im2col'd input on a GEMM design,
  the NHWC image on an im2col design, whose windowed LOADs read it through the DMA's window generator), W and the
  int32 Y, each counted once, against the scratchpad KiB asked for (``--scratchpad-kib``, >= the bytes used);
* Icarus and Verilator outputs are bit-exact equal to each other, to the cycle engine's and to sw_reference
  (``rep.match``: the GEMM per group); for conv and dwconv layers the inputs are a real image and kernel
  through the host's im2col, and the output read back as [N, K, Ho, Wo] equals ``sw_reference.ops.conv2d`` /
  ``dwconv2d`` of the image;
* RTL cycles (bench edges) == the RTL's own ``cycles`` register == the cycle engine's cycles (no cycle number
  is written here: the test holds for any timing the engine and the RTL agree on).

Covering design, not a cross product: each value of each axis (workload, array 2x2..8x8 and a 16x16 fused design (groups of 16, slow), scratchpad 1..16
KiB, DRAM latency 1/20/100, DRAM width 64/128/256 bits = 1/2/4 64-bit words per cycle, DRAM bandwidth (reads
and writes) below the bus width (--dram-bw 1, 2, 1/2 on 128/256-bit buses, 1/4 on 64-bit; store-bound cases
where the write limit binds, at N = 1, 2, 4 and 16), mode ws/os/is, read bursts outstanding 1/2/4/16
against the bench's pipelined-latency DRAM, the same N write bursts unacknowledged; store-bound layers at N = 2
and 4, latency 20 and 100) appears at least once, and the pairs that interact appear together (stride 2 with pad 1, latency 100 with
the 256-bit bus). The default set (``rtl``) is small; ``-m slow`` runs the rest. ``DILATED``: dilated conv2d layers
on conv designs, one through the host's im2col (``--im2col host``), one through the window generator (WIN_DH /
WIN_DW, ``--im2col hardware``), on Icarus and the cycle engine against a direct dilated convolution written here.
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from lego.cli import main
from lego.prog.compiler import parse_layer
from lego.prog.lower import conv_output, conv_weights, im2col
from simulator.program import simulate_program
from tests.conv_oracle import direct_conv
from sw_reference.ops import conv2d as ref_conv2d
from sw_reference.ops import dwconv2d as ref_dwconv2d

# design: (array, dataflows, scratchpad KiB, accumulator KiB, DRAM bits[, read bursts outstanding]). The
# accumulators are large enough for wide output tiles (fewer row bursts per byte: the runs stay short); the 8x
# rule is on the scratchpad. Without the sixth field a design keeps one read burst outstanding
# (--dram-outstanding 1, the DMA before outstanding bursts); the "-oN" designs keep N in flight.
DESIGNS = {
    "2x2-ws-1k-64b": ("2x2", ("ws",), 1, 4, 64),
    "3x2-is+os-1k-128b": ("3x2", ("is", "os"), 1, 4, 128),
    "2x4-os-1k-256b": ("2x4", ("os",), 1, 16, 256),
    "4x4-ws+os-4k-128b": ("4x4", ("ws", "os"), 4, 16, 128),
    "4x4-is-2k-64b": ("4x4", ("is",), 2, 8, 64),
    "8x4-os+is-8k-256b": ("8x4", ("os", "is"), 8, 32, 256),
    "8x8-ws-16k-256b": ("8x8", ("ws",), 16, 32, 256),
    # fused modes whose port counts differ (X 2/2/8, W 8/4/4, Y 4/8/2 banks in ws/os/is): capacity-preserving
    # grouped banks (lego.prog.banks), groups of 1, 2 and 4 physical banks
    "2x4-ws+os+is-1k-128b": ("2x4", ("ws", "os", "is"), 1, 4, 128),
    # groups of 8 (X 8/8/64, W 64/8/8, Y 8/64/8 banks in ws/os/is)
    "8x8-ws+os+is-4k-128b": ("8x8", ("ws", "os", "is"), 4, 16, 128),
    # groups of 16 (X 16/16/256, W 256/16/16, Y 16/256/16 banks in ws/os/is), four read bursts outstanding
    "16x16-ws+os+is-8k-128b-o4": ("16x16", ("ws", "os", "is"), 8, 64, 128, 4),
    # several read bursts outstanding against the pipelined-latency DRAM
    "2x2-ws-1k-64b-o4": ("2x2", ("ws",), 1, 4, 64, 4),
    "2x4-ws+os+is-1k-128b-o2": ("2x4", ("ws", "os", "is"), 1, 4, 128, 2),
    "3x2-is+os-1k-256b-o16": ("3x2", ("is", "os"), 1, 4, 256, 16),
    "4x4-ws+os-4k-128b-o4": ("4x4", ("ws", "os"), 4, 16, 128, 4),
    "2x4-os-1k-256b-o4": ("2x4", ("os",), 1, 16, 256, 4),
    # im2col designs (lego gen --workload conv2d): conv layers read their NHWC input through the load DMA's
    # window address generator (windowed LOADs, docs/programmable.md "Hardware im2col"); the seventh field is
    # the workload
    "2x2-ws-1k-64b-o4-im2col": ("2x2", ("ws",), 1, 4, 64, 4, "conv2d"),
    "3x2-is+os-1k-128b-im2col": ("3x2", ("is", "os"), 1, 4, 128, 1, "dwconv2d"),
    "4x4-ws+os-4k-128b-o4-im2col": ("4x4", ("ws", "os"), 4, 16, 128, 4, "conv2d"),
    "8x4-os+is-8k-256b-o2-im2col": ("8x4", ("os", "is"), 8, 32, 256, 2, "conv2d"),
}

# case id: (design, layer (lego compile --layer), mode, DRAM latency[, DRAM bandwidth]); the fifth field is
# --dram-bw (64-bit words per cycle each direction, below the bus width: the bench's DRAM shows a read beat and
# takes a W beat every bus words / bw cycles at most); without it the DRAM streams one beat per cycle (the bus width)
DEFAULT = {
    "conv-s2p1-2x2-1k-64b-lat20-ws": ("2x2-ws-1k-64b", "conv2d:C=2,H=17,W=17,K=22,R=3,S=3,STRIDE=2,PAD=1", "ws", 20),
    "dwconv-p1-3x2-1k-128b-lat1-os": ("3x2-is+os-1k-128b", "dwconv2d:C=4,H=12,W=12,R=4,S=4,PAD=1", "os", 1),
    "bmm-2x4-1k-256b-lat100-os": ("2x4-os-1k-256b", "bmm:B=2,M=24,N=44,K=4", "os", 100),
    "gemm-3x2-1k-128b-lat20-is": ("3x2-is+os-1k-128b", "gemm:M=36,N=54,K=6", "is", 20),
    "gemm-2x4-fused-1k-128b-lat20-ws": ("2x4-ws+os+is-1k-128b", "gemm:M=48,N=40,K=24", "ws", 20),
    "gemm-2x4-fused-1k-128b-lat20-is": ("2x4-ws+os+is-1k-128b", "gemm:M=44,N=40,K=22", "is", 20),
    "conv-s2p1-2x2-1k-64b-o4-lat100-ws": ("2x2-ws-1k-64b-o4", "conv2d:C=2,H=17,W=17,K=22,R=3,S=3,STRIDE=2,PAD=1",
                                          "ws", 100),
    "gemm-3x2-1k-256b-o16-lat20-is": ("3x2-is+os-1k-256b-o16", "gemm:M=36,N=54,K=6", "is", 20),
    "gemm-3x2-1k-256b-o16-bw1-lat1-is": ("3x2-is+os-1k-256b-o16", "gemm:M=36,N=54,K=6", "is", 1, "1"),
    # store-bound (K = 2: the int32 Y is most of the traffic), several write bursts unacknowledged
    "gemm-store-2x2-1k-64b-o4-lat20-ws": ("2x2-ws-1k-64b-o4", "gemm:M=44,N=48,K=2", "ws", 20),
    # store-bound below the bus width (the write bandwidth binds: the store unit is busier than at the bus
    # width). The gather reads one int32 a cycle, so full beats of E >= D elements are not slowed: on 128/256-bit
    # buses the limit binds on the short beats of unaligned rows (N = 45), on the 64-bit bus at 1/4 on every beat
    "gemm-store-2x4-fused-1k-128b-o2-bw1-lat20-os": ("2x4-ws+os+is-1k-128b-o2", "gemm:M=48,N=45,K=2", "os", 20, "1"),
    "gemm-store-3x2-1k-256b-o16-bw2-lat1-is": ("3x2-is+os-1k-256b-o16", "gemm:M=48,N=45,K=2", "is", 1, "2"),
    "gemm-store-2x2-1k-64b-o4-bwquarter-lat20-ws": ("2x2-ws-1k-64b-o4", "gemm:M=44,N=48,K=2", "ws", 20, "1/4"),
    "gemm-store-2x2-1k-64b-bwquarter-lat20-ws": ("2x2-ws-1k-64b", "gemm:M=44,N=47,K=2", "ws", 20, "1/4"),
    # hardware im2col: stride 2 with pad 1, depthwise with pad 1, and a plain GEMM on an im2col design
    "hwconv-s2p1-2x2-1k-64b-o4-lat20-ws": ("2x2-ws-1k-64b-o4-im2col",
                                           "conv2d:C=3,H=23,W=23,K=24,R=3,S=3,STRIDE=2,PAD=1", "ws", 20),
    "hwdwconv-p1-3x2-1k-128b-lat1-os": ("3x2-is+os-1k-128b-im2col", "dwconv2d:C=6,H=17,W=17,R=3,S=3,PAD=1", "os",
                                        1),
    "hwgemm-3x2-1k-128b-lat100-is": ("3x2-is+os-1k-128b-im2col", "gemm:M=36,N=54,K=6", "is", 100),
}
SLOW = {
    "gemm-2x2-1k-64b-o4-lat20-ws": ("2x2-ws-1k-64b-o4", "gemm:M=44,N=44,K=10", "ws", 20),
    "gemm-2x4-fused-1k-128b-lat1-os": ("2x4-ws+os+is-1k-128b", "gemm:M=40,N=48,K=20", "os", 1),
    "conv-s1p0-4x4-4k-128b-lat20-ws": ("4x4-ws+os-4k-128b", "conv2d:C=4,H=18,W=18,K=32,R=3,S=3", "ws", 20),
    "conv-s1p1-4x4-4k-128b-lat1-os": ("4x4-ws+os-4k-128b", "conv2d:C=3,H=16,W=16,K=32,R=3,S=3,PAD=1", "os", 1),
    "conv-s2p0-g2-8x4-8k-256b-lat20-os": ("8x4-os+is-8k-256b",
                                           "conv2d:N=2,C=8,H=21,W=21,K=64,R=3,S=3,STRIDE=2,GROUPS=2", "os", 20),
    "bmm-8x4-8k-256b-lat20-is": ("8x4-os+is-8k-256b", "bmm:B=4,M=64,N=64,K=8", "is", 20),
    "dwconv-s2p1-4x4-2k-64b-lat1-is": ("4x4-is-2k-64b", "dwconv2d:N=2,C=12,H=15,W=15,R=3,S=3,STRIDE=2,PAD=1", "is",
                                        1),
    "gemm-2x2-1k-64b-lat1-ws": ("2x2-ws-1k-64b", "gemm:M=44,N=44,K=10", "ws", 1),
    "gemm-8x8-16k-256b-lat1-ws": ("8x8-ws-16k-256b", "gemm:M=128,N=256,K=64", "ws", 1),
    "gemm-8x8-fused-4k-128b-lat20-ws": ("8x8-ws+os+is-4k-128b", "gemm:M=96,N=88,K=40", "ws", 20),
    "gemm-8x8-fused-4k-128b-lat1-os": ("8x8-ws+os+is-4k-128b", "gemm:M=88,N=96,K=36", "os", 1),
    "gemm-8x8-fused-4k-128b-lat20-is": ("8x8-ws+os+is-4k-128b", "gemm:M=96,N=96,K=32", "is", 20),
    "conv-s1p1-4x4-4k-128b-o4-lat100-os": ("4x4-ws+os-4k-128b-o4", "conv2d:C=3,H=16,W=16,K=32,R=3,S=3,PAD=1",
                                           "os", 100),
    "gemm-2x4-fused-1k-128b-o2-lat20-is": ("2x4-ws+os+is-1k-128b-o2", "gemm:M=44,N=40,K=22", "is", 20),
    "gemm-2x4-fused-1k-128b-o2-lat100-os": ("2x4-ws+os+is-1k-128b-o2", "gemm:M=40,N=48,K=20", "os", 100),
    "gemm-3x2-1k-256b-o16-bw2-lat1-is": ("3x2-is+os-1k-256b-o16", "gemm:M=36,N=54,K=6", "is", 1, "2"),
    "bmm-2x4-1k-256b-o4-bw1-lat1-os": ("2x4-os-1k-256b-o4", "bmm:B=2,M=24,N=44,K=4", "os", 1, "1"),
    "bmm-2x4-1k-256b-o4-bw2-lat100-os": ("2x4-os-1k-256b-o4", "bmm:B=2,M=24,N=44,K=4", "os", 100, "2"),
    "gemm-2x4-fused-1k-128b-o2-bw1-lat100-is": ("2x4-ws+os+is-1k-128b-o2", "gemm:M=44,N=40,K=22", "is", 100, "1"),
    "gemm-2x4-fused-1k-128b-o2-bw1-lat20-ws": ("2x4-ws+os+is-1k-128b-o2", "gemm:M=48,N=40,K=24", "ws", 20, "1"),
    "gemm-2x4-fused-1k-128b-o2-bwhalf-lat20-ws": ("2x4-ws+os+is-1k-128b-o2", "gemm:M=48,N=40,K=24", "ws", 20, "1/2"),
    "gemm-store-2x4-fused-1k-128b-o2-lat100-os": ("2x4-ws+os+is-1k-128b-o2", "gemm:M=48,N=44,K=2", "os", 100),
    "gemm-store-2x2-1k-64b-o4-lat100-ws": ("2x2-ws-1k-64b-o4", "gemm:M=44,N=48,K=2", "ws", 100),
    "gemm-16x16-fused-8k-128b-o4-lat20-ws": ("16x16-ws+os+is-8k-128b-o4", "gemm:M=160,N=168,K=48", "ws", 20),
    "gemm-16x16-fused-8k-128b-o4-lat100-os": ("16x16-ws+os+is-8k-128b-o4", "gemm:M=168,N=160,K=44", "os", 100),
    "gemm-16x16-fused-8k-128b-o4-lat1-is": ("16x16-ws+os+is-8k-128b-o4", "gemm:M=160,N=160,K=52", "is", 1),
    "hwconv-s1p0-4x4-4k-128b-o4-lat100-ws": ("4x4-ws+os-4k-128b-o4-im2col", "conv2d:C=8,H=20,W=20,K=32,R=3,S=3",
                                             "ws", 100),
    "hwconv-s1p1-4x4-4k-128b-o4-lat20-os": ("4x4-ws+os-4k-128b-o4-im2col",
                                            "conv2d:C=5,H=18,W=18,K=32,R=3,S=3,PAD=1", "os", 20),
    "hwconv-s2p0-g2-8x4-8k-256b-o2-lat1-is": ("8x4-os+is-8k-256b-o2-im2col",
                                              "conv2d:N=2,C=8,H=25,W=25,K=64,R=3,S=3,STRIDE=2,GROUPS=2", "is", 1),
    "hwdwconv-s2p1-8x4-8k-256b-o2-lat20-os": ("8x4-os+is-8k-256b-o2-im2col",
                                              "dwconv2d:N=2,C=20,H=31,W=31,R=3,S=3,STRIDE=2,PAD=1", "os", 20),
}
# dilated conv (``DIL``) on conv designs: (design, layer, mode, latency, --im2col), the host's im2col and the window
# generator's dilation; run on Icarus and the cycle engine (not Verilator) against a direct dilated convolution
# written here
DILATED = {
    "hwdilconv-d3s2p2-3x2-1k-128b-lat1-os": ("3x2-is+os-1k-128b-im2col",
                                             "conv2d:N=2,C=3,H=16,W=15,K=16,R=3,S=2,STRIDE=2,PAD=2,DIL=3", "os", 1,
                                             "hardware"),
    "dilconv-d2p2-2x2-1k-64b-o4-lat20-ws": ("2x2-ws-1k-64b-o4-im2col",
                                            "conv2d:C=2,H=15,W=15,K=20,R=3,S=3,PAD=2,DIL=2", "ws", 20, "host"),
}
CASES = {**{k: pytest.param(k, marks=pytest.mark.rtl, id=k) for k in DEFAULT},
         **{k: pytest.param(k, marks=[pytest.mark.rtl, pytest.mark.slow], id=k) for k in SLOW}}
ALL = {**DEFAULT, **SLOW}
_designs: dict = {}


def design(tmp_path_factory, name: str) -> Path:
    """The design ``name``, generated once per test session through ``lego gen``."""
    if name not in _designs:
        array, dfs, spad, acc, bits, *o = DESIGNS[name]
        d = tmp_path_factory.mktemp("matrix") / name
        argv = ["gen", "--workload", o[1] if len(o) > 1 else "gemm", "--array", array, "--scratchpad-kib", str(spad),
                "--accumulator-kib", str(acc), "--dram-bits", str(bits), "--dram-outstanding", str(o[0] if o else 1),
                "--out", str(d)]
        for df in dfs:
            argv += ["--dataflow", df]
        assert main(argv) == 0
        _designs[name] = d
    return _designs[name]


def expected_st_lanes(array: str, mode: str, dram_bits: int) -> int:
    """The store gather's elements per cycle (docs/programmable.md, "DMA store"), written out for these arrays:
    ws and os bank a row of Y over the array's C columns, is keeps it in one bank; P is the largest power of
    two <= min(C, E), E = the int32 of a beat."""
    C = int(array.split("x")[1])
    if mode == "is":
        return 1
    p = 1
    while 2 * p <= min(C, dram_bits // 32):
        p *= 2
    return p


def layer_bytes(header: dict) -> int:
    """Bytes the layer moves between DRAM and the array, each tensor once: X (conv: after im2col), W, Y (int32)."""
    recs = header["layers"] if header.get("format") == 2 else [{"dram": header["dram"]}]
    return sum(r["dram"][t]["bytes"] for r in recs for t in "XWY")


def conv_inputs(spec, seed: int):
    """A real image and kernel (int8) for conv layer ``spec``, and the program's inputs (host im2col)."""
    rng = np.random.default_rng(seed)
    d, g = spec.dims, spec.groups
    x = rng.integers(-128, 128, size=(d["N"], d["C"], d["H"], d["W"]), dtype=np.int64)
    w = rng.integers(-128, 128, size=(d["K"], d["C"] // g, d["R"], d["S"]), dtype=np.int64)
    return x, w, {"X": im2col(x, spec), "W": conv_weights(w, spec)}


def hw_conv_inputs(spec, x, w) -> dict:
    """The program's inputs on an im2col design: the image NHWC, the kernel [G, R, S, C/G, K/G]."""
    g, r, s = spec.groups, spec.dims["R"], spec.dims["S"]
    kg, cg = w.shape[0] // g, w.shape[1]
    return {"X": x.transpose(0, 2, 3, 1), "W": w.reshape(g, kg, cg, r, s).transpose(0, 3, 4, 2, 1)}


def conv_reference(spec, x, w) -> np.ndarray:
    """sw_reference's conv of the image (groups: one conv2d per group; depthwise: dwconv2d)."""
    s, p = spec.stride[0], spec.pads[0]
    if spec.op == "dwconv2d":
        return ref_dwconv2d(x, w[:, 0], s, p)
    g, cg, kg = spec.groups, spec.dims["C"] // spec.groups, spec.dims["K"] // spec.groups
    return np.concatenate([ref_conv2d(x[:, i * cg:(i + 1) * cg], w[i * kg:(i + 1) * kg], s, p) for i in range(g)],
                          axis=1)


def test_matrix_is_covering():
    """Each value of each axis appears, and the interacting pairs appear together."""
    axes = {"array": set(), "spad": set(), "bits": set(), "lat": set(), "mode": set(), "kind": set()}
    pairs, bws = set(), set()
    for dname, layer, mode, lat, *bw in ALL.values():
        array, dfs, spad, _, bits, *_ = DESIGNS[dname]
        assert mode in dfs
        spec = parse_layer(layer)
        kind = spec.op if spec.op != "conv2d" else f"conv2d-s{spec.stride[0]}p{spec.pads[0]}"
        for ax, v in (("array", array), ("spad", spad), ("bits", bits), ("lat", lat), ("mode", mode),
                      ("kind", kind)):
            axes[ax].add(v)
        pairs.add((lat, bits))
        if bw:
            bws.add((bw[0], bits, lat))
    assert axes["kind"] >= {"gemm", "bmm", "dwconv2d", "conv2d-s1p0", "conv2d-s1p1", "conv2d-s2p0", "conv2d-s2p1"}
    # hardware im2col: every conv kind, on every dataflow, by default too
    hw = {(parse_layer(layer).op, parse_layer(layer).stride[0], parse_layer(layer).pads[0], mode)
          for d, layer, mode, *_ in ALL.values() if len(DESIGNS[d]) > 6}
    assert {(op, st, p) for op, st, p, _ in hw if op == "conv2d"} >= {("conv2d", 1, 0), ("conv2d", 1, 1),
                                                                      ("conv2d", 2, 0), ("conv2d", 2, 1)}
    assert {op for op, *_ in hw} == {"conv2d", "dwconv2d", "gemm"} and {m for *_, m in hw} == {"ws", "os", "is"}
    assert {parse_layer(layer).op for d, layer, *_ in DEFAULT.values() if len(DESIGNS[d]) > 6} >= {"conv2d",
                                                                                                   "dwconv2d"}
    assert axes["array"] >= {"2x2", "3x2", "2x4", "4x4", "8x4", "8x8"}
    assert axes["spad"] >= {1, 2, 4, 8, 16}
    assert axes["bits"] == {64, 128, 256} and axes["lat"] == {1, 20, 100} and axes["mode"] == {"ws", "os", "is"}
    assert (100, 256) in pairs
    # the default set alone has every workload kind class, latency and bus width
    # the default set has one outstanding read burst and several, at latency 20 and 100
    many = {(DESIGNS[d][5:] > (1,), lat) for d, _, _, lat, *_ in DEFAULT.values()}
    assert many >= {(False, 20), (True, 20), (True, 100)}
    # store-bound layers with several write bursts unacknowledged: N = 2 and 4, latency 20 and 100, one by default
    stores = {((DESIGNS[d][5:] or (1,))[0], lat) for k, (d, _, _, lat, *_) in ALL.items() if k.startswith("gemm-store")}
    assert {n for n, _ in stores} >= {2, 4} and {lat for _, lat in stores} >= {20, 100}
    assert any(k.startswith("gemm-store") for k in DEFAULT)
    dflt = [(DESIGNS[d][4], lat, parse_layer(layer).op) for d, layer, _, lat, *_ in DEFAULT.values()]
    assert {b for b, _, _ in dflt} == {64, 128, 256} and {lat for _, lat, _ in dflt} == {1, 20, 100}
    assert {op for _, _, op in dflt} == {"gemm", "bmm", "conv2d", "dwconv2d"}
    # bandwidths of 1 and 2 words per cycle below the bus width (128 and 256 bits), 1/4 on the 64-bit bus, at
    # every latency; in the default set: store-bound cases on every bus width, one and several write bursts
    assert all(eval(w) < b // 64 for w, b, _ in bws)
    assert {w for w, _, _ in bws} >= {"1", "2", "1/4"} and {b for _, b, _ in bws} == {64, 128, 256}
    assert {lat for _, _, lat in bws} == {1, 20, 100}
    wst = [(DESIGNS[d][4], DESIGNS[d][5:] or (1,)) for k, (d, _, _, _, *bw) in DEFAULT.items()
           if bw and k.startswith("gemm-store")]
    assert {b for b, _ in wst} == {64, 128, 256} and {n[0] for _, n in wst} >= {1, 2, 4, 16}


@pytest.mark.parametrize("case", list(CASES.values()))
def test_matrix_rtl_equals_cycle_engine_and_reference(case, tmp_path_factory, tmp_path, capsys):
    dname, layer, mode, lat, *bw = ALL[case]
    bwopt = ["--dram-bw", bw[0]] if bw else []
    bw = bw[0] if bw else None
    d = design(tmp_path_factory, dname)
    man = json.loads((d / "manifest.json").read_text())
    arr, dfs, _, _, dbits = DESIGNS[dname][:5]
    assert man["prog"]["st_lanes"] == {m: expected_st_lanes(arr, m, dbits) for m in dfs}
    prog = tmp_path / "p.prog"
    hw = len(DESIGNS[dname]) > 6
    assert main(["compile", str(d), "--layer", layer, "--mode", mode, "--dram-latency", str(lat), *bwopt,
                 *(["--im2col", "hardware"] if hw else []), "--out", str(prog)]) == 0
    capsys.readouterr()
    header = json.loads(Path(str(prog) + ".json").read_text())
    spad = man["prog"]["scratchpad_kib"] * 1024
    assert spad >= man["prog"]["scratchpad_bytes"]
    assert layer_bytes(header) >= 8 * spad, (layer_bytes(header), spad)
    spec = parse_layer(layer)
    seed = int(re.sub(r"\D", "", case) or 0) % 1000
    inputs, conv = None, None
    assert header.get("im2col") == ("hardware" if hw and spec.op in ("conv2d", "dwconv2d") else
                                    header.get("im2col"))
    if spec.op in ("conv2d", "dwconv2d"):
        x, w, inputs = conv_inputs(spec, seed)
        conv = conv_reference(spec, x, w)
        if hw:
            inputs = hw_conv_inputs(spec, x, w)
    cyc = simulate_program(d, prog, "cycle", inputs=inputs, seed=seed, latency=lat, dram_bw=bw)
    assert cyc.match
    assert cyc.cycles == header["predicted"]["cycles"]
    if bw is not None:      # the limit binds: the same program is slower than at the bus width
        full = simulate_program(d, prog, "cycle", inputs=inputs, seed=seed, latency=lat)
        assert cyc.cycles > full.cycles
        if case.startswith("gemm-store"):   # the write limit binds: the store unit is busier
            assert cyc.extra["busy_cycles"]["st"] > full.extra["busy_cycles"]["st"]
    if conv is not None:
        got = cyc.outputs["Y"].transpose(0, 3, 1, 2) if hw else conv_output(cyc.outputs["Y"], spec)
        assert np.array_equal(got, conv)
    for engine in ("icarus", "verilator"):
        rep = simulate_program(d, prog, engine, inputs=inputs, seed=seed, latency=lat, dram_bw=bw)
        assert rep.match, engine
        assert rep.outputs.keys() == cyc.outputs.keys()
        for k in cyc.outputs:
            assert np.array_equal(rep.outputs[k], cyc.outputs[k]), (engine, k)
        assert rep.cycles == rep.extra["cycles_register"] == cyc.cycles, (engine, rep.cycles,
                                                                           rep.extra["cycles_register"], cyc.cycles)
        for row in rep.extra.get("layers", []):
            assert row["cycles"] == row["cycles_register"] == row["cycles_predicted"], (engine, row)
        if conv is not None:
            got = rep.outputs["Y"].transpose(0, 3, 1, 2) if hw else conv_output(rep.outputs["Y"], spec)
            assert np.array_equal(got, conv), engine


def dilated_conv(x, w, stride: int, pad: int, dil: int) -> np.ndarray:
    """Direct dilated convolution (no groups; tests/conv_oracle.py), one stride, pad and dilation for both axes."""
    return direct_conv(x, w, (stride, stride), (pad,) * 4, (dil, dil))


@pytest.mark.rtl
@pytest.mark.parametrize("case,engine", [(c, "icarus") for c in DILATED] + [
    pytest.param(c, "verilator", marks=pytest.mark.slow, id=f"{c}-verilator") for c in DILATED if c.startswith("hw")])
def test_matrix_dilated_conv_icarus_equals_cycle_engine_and_oracle(case, engine, tmp_path_factory, tmp_path, capsys):
    """A dilated conv2d on a conv design through the host's im2col or the window generator (``--im2col``):
    the RTL (Icarus; the window case under Verilator too, slow) and the cycle engine bit-exact against
    ``dilated_conv`` above, cycles (bench edges, the ``cycles`` register, the engine, the compiler's prediction)
    equal."""
    dname, layer, mode, lat, who = DILATED[case]
    d = design(tmp_path_factory, dname)
    man = json.loads((d / "manifest.json").read_text())
    assert man["prog"]["im2col"]
    prog = tmp_path / "p.prog"
    assert main(["compile", str(d), "--layer", layer, "--mode", mode, "--dram-latency", str(lat),
                 "--im2col", who, "--out", str(prog)]) == 0
    capsys.readouterr()
    header = json.loads(Path(str(prog) + ".json").read_text())
    spec = parse_layer(layer)
    assert header["im2col"] == who and header["layers"][0]["shape"]["dilation"] == list(spec.dilation)
    assert spec.dilation != (1, 1)
    assert layer_bytes(header) >= 8 * man["prog"]["scratchpad_kib"] * 1024
    x, w, inputs = conv_inputs(spec, 7)
    if who == "hardware":
        inputs = hw_conv_inputs(spec, x, w)
    want = dilated_conv(x, w, spec.stride[0], spec.pads[0], spec.dilation[0])

    def image(y):           # the output read back as [N, K, Ho, Wo]
        return y.transpose(0, 3, 1, 2) if who == "hardware" else conv_output(y, spec)
    cyc = simulate_program(d, prog, "cycle", inputs=inputs, latency=lat)
    assert cyc.match and cyc.cycles == header["predicted"]["cycles"]
    assert np.array_equal(image(cyc.outputs["Y"]), want)
    rep = simulate_program(d, prog, engine, inputs=inputs, latency=lat)
    assert rep.match and np.array_equal(rep.outputs["Y"], cyc.outputs["Y"])
    assert rep.cycles == rep.extra["cycles_register"] == cyc.cycles, (rep.cycles, rep.extra["cycles_register"],
                                                                      cyc.cycles)
    assert np.array_equal(image(rep.outputs["Y"]), want)

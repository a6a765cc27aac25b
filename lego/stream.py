"""Streaming datapaths: an affine workload whose one temporal loop is a run-time-length stream, mapped by
a broadcast space-time map (c = 0) onto an array sized to its spatial loops, and emitted without banks
(lego/emit/stream.py). Used by accelerators that embed lego arrays in their own pipelines.

    sd = build_stream(workload, stream="j", spatial=("d",))
    core = StreamDatapath(sd)       # Amaranth: in_valid/in_first/in_last, in_<T>, out_valid, out_<Y>

The same passes as ``lego gen`` run on it (reuse analysis, arborescence, banking into lanes, lowering,
reduction-tree extraction, LP delay matching), so the register count is LP-minimal.
"""
from __future__ import annotations

from amaranth.hdl import Elaboratable, Module

from .affine.dataflow import Dataflow, check_dataflow
from .affine.workload import Workload
from .design import ArrayDesign, build_design
from .errors import LegoError


def stream_dataflow(w: Workload, stream: str, spatial: tuple[str, ...]) -> Dataflow:
    """``stream`` -> the temporal loop; ``spatial`` (1 or 2 iterators) -> the array axes, full extent."""
    its = list(w.iterators)
    ext = dict(zip(w.iterators, w.extents))
    if stream not in ext or any(s not in ext for s in spatial):
        raise LegoError(f"stream: unknown iterator in stream={stream!r} spatial={spatial!r} of {w.name}")
    if not 1 <= len(spatial) <= 2 or stream in spatial or set(its) != {stream, *spatial}:
        raise LegoError(f"stream: {w.name} needs its iterators split into one stream loop and 1-2 "
                        f"spatial loops, got stream={stream!r} spatial={spatial!r}")
    axes = (None,) * (2 - len(spatial)) + tuple(spatial)
    P = tuple(1 if a is None else ext[a] for a in axes)
    A_T = tuple((int(it == stream),) for it in its)
    A_S = tuple(tuple(int(it == a) for a in axes) for it in its)
    df = Dataflow(f"stream-{stream}", A_T, A_S, (0,) * len(its), (ext[stream],), P, (0, 0), (stream,))
    return check_dataflow(w, df)


def build_stream(w: Workload, stream: str, spatial: tuple[str, ...], opt: bool = True) -> ArrayDesign:
    # a stream's length is set at run time, so its reduction count is unknown here: accumulate at the
    # output width (no width inference)
    return build_design(w, [stream_dataflow(w, stream, tuple(spatial))], opt, narrow=False)


class StreamDatapath(Elaboratable):
    """Amaranth wrapper around StreamCore; ports are attributes (see StreamCore)."""

    def __init__(self, design: ArrayDesign, prefix: str = ""):
        from .emit.stream import StreamCore
        self.design = design
        self.core = StreamCore(design.arch, design.pg, prefix)
        c = self.core
        self.in_valid, self.in_first, self.in_last = c.in_valid, c.in_first, c.in_last
        self.inputs, self.output, self.out_valid = c.inputs, c.output, c.out_valid
        self.latency = c.latency

    def elaborate(self, platform):
        m = Module()
        self.core.elaborate_into(m)
        return m

"""What the row units (``SoftmaxUnit``, ``LayerNormUnit``) share: their port signature and the phase
counter of their FSMs.

A row unit takes a row of n elements, one per accepted cycle (``in_valid & in_ready``), on ``in_data``
(and any further ``in_*`` operands beside it), and returns n results in order on ``out_data`` with
``out_index`` = 0..n-1; ``busy`` is high while a row is in flight. Its FSM walks through phases of a
fixed number of cycles, counted by one counter that each phase runs from 0 and clears on leaving.
"""
from __future__ import annotations

from amaranth.hdl import Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bits import C


class RowUnit(wiring.Component):
    """Ports ``in_valid``, ``inputs`` (name -> shape, ``in_data`` first), ``in_ready``, ``out_valid``,
    ``out_data`` (shape ``out_data``), ``out_index`` (``idx_bits`` = max(1, ceil(log2 n)) bits) and
    ``busy``. A subclass sets ``row_cycles`` (n -> cycles from the first accept to the cycle after the
    last out_valid)."""

    row_cycles = None

    def __init__(self, n: int, inputs: dict, out_data):
        self.row_length = n
        self.idx_bits = max(1, (n - 1).bit_length())
        super().__init__({
            "in_valid": In(1),
            **{name: In(shape) for name, shape in inputs.items()},
            "in_ready": Out(1),
            "out_valid": Out(1),
            "out_data": Out(out_data),
            "out_index": Out(unsigned(self.idx_bits)),
            "busy": Out(1),
        })

    @property
    def cycles(self) -> int:
        return type(self).row_cycles(self.row_length)


def advance(m, cnt: Signal, done, nxt: str, *also) -> None:
    """One cycle of a counted phase: where ``done`` (a Value, or an int: ``cnt`` equals it) holds, clear
    ``cnt``, do the sync statements ``also`` and go to state ``nxt``; else count ``cnt`` up by one."""
    w = len(cnt)
    if isinstance(done, int):
        done = cnt == C(done, w)
    with m.If(done):
        m.d.sync += [cnt.eq(C(0, w)), *also]
        m.next = nxt
    with m.Else():
        m.d.sync += cnt.eq((cnt + C(1, w))[:w])

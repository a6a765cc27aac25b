"""Exact cycle model of ``lego_dota`` (the benches check the RTL's ``cycles`` register against it).

A job starts in the cycle ``start`` is seen (cycle 0); ``cycles`` is the index of the job's last cycle
(its FINISH state), ``done`` rises the cycle after. Phases, back to back:

* GEMM with G row groups, J column chunks, S steps: G*J*S issue cycles (one step per cycle, all tiles
  in parallel), then ``drain`` = 3 + the accumulator array's latency cycles until the last output block is
  written (buffer read, DAC staging, ADC code register, the lego stream);
* softmax epilogue (attention): per row of S, n2 = L cycles into the unit, then until its last output:
  a row period of ``softmax_cycles(L) + 1`` (the read ahead of the unit); one more cycle writes the last
  packed word of P;
* LayerNorm epilogue: per column of Y, ``layernorm_cycles(n1) + 1``, then one cycle;
* GELU epilogue: n1*n2 cycles (one element per cycle), then ``GELU_DRAIN`` = 5 (read, 3 pipeline stages,
  the packed word written).

    linear:    1 + GEMM + [epilogue]            attention: 1 + GEMM0 + softmax + GEMM1
"""
from __future__ import annotations

from lego.units.layernorm import layernorm_cycles
from lego.units.softmax import softmax_cycles

from .geometry import Geometry
from .top import GELU_DRAIN, PIPE


def gemm_cycles(G: int, J: int, S: int, acc_latency: int) -> int:
    return G * J * S + PIPE + acc_latency


def softmax_epilogue(n1: int, L: int) -> int:
    return n1 * (softmax_cycles(L) + 1) + 1


def layernorm_epilogue(n2: int, n: int) -> int:
    return n2 * (layernorm_cycles(n) + 1) + 1


def gelu_epilogue(n1: int, n2: int) -> int:
    return n1 * n2 + GELU_DRAIN


def job_cycles(geo: Geometry, job: dict, acc_latency: int) -> int:
    """The ``cycles`` register after ``job`` (the register values of ``host.Job.regs``)."""
    r = job
    total = 1 + gemm_cycles(r["g0"], r["j0"], r["s0"], acc_latency)
    if r["kind"] == 1:
        total += softmax_epilogue(r["n1"], geo.L) + gemm_cycles(r["g1"], r["j1"], r["s1"], acc_latency)
    elif r["post"] == 1:
        total += gelu_epilogue(r["n1"], r["n2"])
    elif r["post"] == 2:
        total += layernorm_epilogue(r["n2"], r["n1"])
    return total

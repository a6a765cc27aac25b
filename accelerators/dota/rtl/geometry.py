"""What the generated DOTA RTL is, as numbers: geometry, widths, buffer layouts and the units' constants,
derived from one ``DotaConfig`` (its core geometry, bits, sharing flags and ``rtl`` section). The RTL
(``top.py``), the host driver (``host.py``) and the exact cycle model (``cycles.py``) all read this.

Layouts (element -> where it lives; ``//`` floor division, ``%`` remainder):

* M1 (weights or Q or P; rows i, reduction d): tile ``(i // Nh) % T``, row group ``g = i // (T*Nh)``, node
  row ``r = i % Nh``; chunk ``q = d // Nl``, core ``c = q % C``, step ``k = q // C``, lane ``d % Nl``.
  M1 local buffer of that tile: bank ``c*Nh + r``, address ``g*KD + k``, one word = Nl codes.
* M2 (activations, K^T or V; reduction d, columns j) in region R (0 or 1): column chunk ``jc = j // Nw``,
  node column ``w = j % Nw``; bank ``c*Nw + w``, address ``R*R1 + jc*KD + k``, lane ``d % Nl``. The shared
  M2 buffer (one for all tiles: the operand is broadcast).
* Y (outputs of a GEMM with J column chunks): output buffer of tile ``(i // Nh) % T``, bank ``r``,
  address ``g*J + jc``, lane ``w`` (one word = Nw accumulators).
* LayerNorm parameters: address i (gamma in the low 8 bits, beta above).

KD = ceil(max_d / (Nl*C)) words per row and core (= the most steps of one output), R1 = JMAX*KD.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from lego.errors import LegoError
from sw_reference import dota_fx as fx
from sw_reference.gelu_fx import check_params, gelu_params
from sw_reference.softmax_fx import softmax_params

from ..config import DotaConfig

GAMMA_BITS = 8
BETA_BITS = 24
LN_EPS = 1
MAX_TILES_RTL = 16


def clog2(n: int) -> int:
    return max(1, (max(n, 1) - 1).bit_length())


@dataclass(frozen=True)
class Geometry:
    T: int          # tiles in the RTL
    C: int          # cores per tile
    NH: int
    NW: int
    NL: int
    TAU: int
    B: int          # DAC bits (in_bits = w_bits)
    A: int          # ADC bits (act_bits)
    share_in: bool
    share_adc: bool
    L: int          # softmax row length (attention tokens)
    ln_n: int
    max_n1: int
    max_d: int
    max_n2: int
    softmax_scale: float
    gelu_in_scale: float
    gelu_out_scale: float
    ln_frac: int
    ln_gamma_frac: int
    ln_out_shift: int

    # ---------------------------------------------------------------- derived sizes
    @property
    def KD(self) -> int:
        return fx.cdiv(self.max_d, self.NL * self.C)

    @property
    def GMAX(self) -> int:
        return fx.cdiv(self.max_n1, self.T * self.NH)

    @property
    def JMAX(self) -> int:
        return fx.cdiv(self.max_n2, self.NW)

    @property
    def R1(self) -> int:
        return self.JMAX * self.KD

    @property
    def M1_DEPTH(self) -> int:
        return self.GMAX * self.KD

    @property
    def M2_DEPTH(self) -> int:
        return 2 * self.R1

    @property
    def OB_DEPTH(self) -> int:
        return self.GMAX * self.JMAX

    @property
    def WORD(self) -> int:
        return self.NL * self.B

    @property
    def IB(self) -> int:
        """Integrator width of the twin (signed)."""
        return fx.integ_bits(self.B, self.NL, self.C, self.TAU, self.share_adc)

    @property
    def SHIFT_BITS(self) -> int:
        return clog2(self.IB + 1)

    @property
    def CONV_MAX(self) -> int:
        return fx.conversions(self.max_d, self.NL, self.C, self.TAU, self.share_adc)

    @property
    def CODE(self) -> int:
        """Width of the read-out code into the accumulators (C codes summed without ADC sharing)."""
        return self.A if self.share_adc else self.A + fx.bitlen(self.C)

    @property
    def ACC(self) -> int:
        # at least the width of the lego MAC's product: CODE x the strobe (uint1 in a signed 2-bit container)
        return max(fx.acc_bits(self.A, self.CONV_MAX), self.CODE + 2)

    # ---------------------------------------------------------------- unit constants
    @property
    def softmax_mult(self) -> int:
        return softmax_params(self.softmax_scale)

    @property
    def gelu(self) -> tuple[int, int, int, int]:
        p = gelu_params(self.gelu_in_scale, self.gelu_out_scale)
        check_params(*p, fx.GELU_IN_BITS, self.B)
        return tuple(p)

    @property
    def ln(self) -> dict:
        return {"out_shift": self.ln_out_shift, "frac_bits": self.ln_frac, "eps": LN_EPS}

    # ---------------------------------------------------------------- layouts (see the docstring)
    def m1_place(self, i: int, d: int) -> tuple[int, int, int, int]:
        """(tile, bank, address, lane) of M1[i, d]."""
        q = d // self.NL
        return ((i // self.NH) % self.T, (q % self.C) * self.NH + i % self.NH,
                (i // (self.T * self.NH)) * self.KD + q // self.C, d % self.NL)

    def m2_place(self, d: int, j: int, region: int) -> tuple[int, int, int]:
        """(bank, address, lane) of M2[d, j] in ``region``."""
        q = d // self.NL
        return ((q % self.C) * self.NW + j % self.NW, region * self.R1 + (j // self.NW) * self.KD + q // self.C,
                d % self.NL)

    def y_place(self, i: int, j: int, n2: int) -> tuple[int, int, int, int]:
        """(tile, bank, address, lane) of Y[i, j] of a GEMM with n2 columns."""
        J = fx.cdiv(n2, self.NW)
        return ((i // self.NH) % self.T, i % self.NH, (i // (self.T * self.NH)) * J + j // self.NW, j % self.NW)

    def counts(self, n1: int, d: int, n2: int) -> tuple[int, int, int]:
        """(G, J, S): row groups, column chunks and steps of a GEMM [n1 x d] . [d x n2]."""
        return (fx.cdiv(n1, self.T * self.NH), fx.cdiv(n2, self.NW), fx.steps(d, self.NL, self.C))

    def check_gemm(self, n1: int, d: int, n2: int, what: str) -> None:
        for name, v, cap in (("n1", n1, self.max_n1), ("d", d, self.max_d), ("n2", n2, self.max_n2)):
            if not 1 <= v <= cap:
                raise LegoError(f"{what}: {name} = {v} is outside 1..{cap} (the generated buffers; rtl.max_{name})")

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d.update(KD=self.KD, GMAX=self.GMAX, JMAX=self.JMAX, R1=self.R1, WORD=self.WORD, IB=self.IB,
                 CODE=self.CODE, ACC=self.ACC, CONV_MAX=self.CONV_MAX, softmax_mult=self.softmax_mult,
                 gelu=list(self.gelu))
        return d


def geometry(cfg: DotaConfig) -> Geometry:
    """The RTL geometry of ``cfg`` (LegoError naming the field when the config has no RTL)."""
    if cfg.kind != "dota":
        raise LegoError(f"kind: the RTL is DOTA's periphery; the {cfg.kind} baseline has none")
    tau, share_in, share_adc, xbar = cfg.dataflow()
    if not xbar:
        raise LegoError("arch: the RTL implements the crossbar topology (arch all or crossbar), got 'broadcast'")
    if cfg.in_bits != cfg.w_bits:
        raise LegoError(f"w_bits: the RTL's DAC words are one width; needs w_bits == in_bits, got {cfg.w_bits}")
    r = cfg.rtl
    T = r.tiles or cfg.tiles
    if T > MAX_TILES_RTL:
        raise LegoError(f"rtl.tiles: at most {MAX_TILES_RTL} tiles in generated RTL, got {T}")
    A, B = cfg.act_bits, cfg.in_bits
    full_a, full_b = 4.0 / 2 ** (A - 1), 4.0 / 2 ** (B - 1)
    os_ = r.ln_out_shift if r.ln_out_shift >= 0 else r.ln_frac_bits + r.ln_gamma_frac - (B - 3)
    g = Geometry(T=T, C=cfg.cores_per_tile, NH=cfg.nh, NW=cfg.nw, NL=cfg.n_lambda, TAU=tau, B=B, A=A,
                 share_in=share_in, share_adc=share_adc, L=r.tokens, ln_n=r.ln_n, max_n1=r.max_n1,
                 max_d=r.max_d, max_n2=r.max_n2, softmax_scale=r.softmax_scale or full_a,
                 gelu_in_scale=r.gelu_in_scale or full_a, gelu_out_scale=r.gelu_out_scale or full_b,
                 ln_frac=r.ln_frac_bits, ln_gamma_frac=r.ln_gamma_frac, ln_out_shift=max(os_, 0))
    # what the fixed-size units and buffers must hold
    for f, v, cap, why in (("rtl.tokens", r.tokens, min(r.max_n1, r.max_d, r.max_n2), "an attention head needs L <= "
                            "max_n1, max_d and max_n2"),
                           ("rtl.head_dim", r.head_dim, min(r.max_d, r.max_n2), "needs head_dim <= max_d, max_n2"),
                           ("rtl.ln_n", r.ln_n, min(r.max_n1, r.max_d), "LayerNorm rows are a GEMM's n1 and the next "
                            "layer's d: needs ln_n <= max_n1, max_d"),
                           ("rtl.linear_n1", r.linear_n1, min(r.max_n1, r.max_d), "needs linear_n1 <= max_n1, max_d "
                            "(the epilogue writes the next layer's d)"),
                           ("rtl.linear_d", r.linear_d, r.max_d, "needs linear_d <= max_d"),
                           ("rtl.linear_n2", r.linear_n2, r.max_n2, "needs linear_n2 <= max_n2")):
        if v > cap:
            raise LegoError(f"{f}: {why}, got {v} (limit {cap})")
    if r.tokens > 4096 or r.ln_n > 4096:
        raise LegoError(f"rtl.tokens: the softmax and LayerNorm units hold at most 4096, got {max(r.tokens, r.ln_n)}")
    if g.ACC > 32:
        raise LegoError(f"rtl.max_d: the accumulators need {g.ACC} bits (more than 32, the softmax/LayerNorm "
                        f"input limit); lower max_d or act_bits")
    if g.IB > 62:
        raise LegoError(f"n_lambda: the twin's integrator needs {g.IB} bits (more than 62)")
    try:
        g.gelu
        softmax_params(g.softmax_scale)
    except ValueError as e:
        raise LegoError(f"rtl.gelu_in_scale: {e}") from None
    if not math.isfinite(g.softmax_scale):
        raise LegoError(f"rtl.softmax_scale: must be finite, got {g.softmax_scale}")
    return g

"""The digital twin of one DOTA tile's photonic cores, its time integrators and its ADCs (behavioural: it
stands where the optics and the mixed-signal converters are; it is not periphery and is never counted as
such). Bit-exact with ``sw_reference.dota_fx`` at zero noise.

Per step (``valid``), with the staged DAC words of the C cores (M1: Nh rows x Nl codes per core, M2: Nw
columns x Nl codes per core):

    p[c][r][w] = sum_l m1[c][r][l] * m2[c][w][l]          (M1 codes unsigned when ``m1_unsigned``)
    ADC sharing: x[r][w] = sum_c p[c][r][w]; the integrator v[r][w] = (wfirst ? 0 : v) + x
    else:        one integrator and ADC per core: v[c][r][w] = (wfirst ? 0 : v) + p[c][r][w]
    on ``conv``: code = clamp(rne(v_new / 2**shift), A bits), registered (the ADC's output register)

Ports (all registered outputs change one cycle after a ``valid`` step):
    m1      In  C*Nh words of Nl*B bits (core c, row r at word c*Nh + r)
    m2      In  C*Nw words (core c, column w at word c*Nw + w)
    m1_unsigned, valid, wfirst, conv   In 1
    shift   In  SHIFT_BITS
    code    Out Nh*Nw codes of A bits (node r, w at lane r*Nw + w); without sharing C such blocks
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal, signed, unsigned

from .geometry import Geometry


def rne_clamp(m: Module, v, shift, bits: int, width: int, name: str):
    """clamp(rne(v / 2**shift)) to signed ``bits`` (v signed ``width``, shift unsigned) as a new Signal."""
    q = Signal(signed(width), name=f"{name}_q")
    rem = Signal(unsigned(width), name=f"{name}_rem")          # v - q * 2**shift, in [0, 2**shift)
    rem2 = Signal(unsigned(width + 1), name=f"{name}_rem2")    # 2 * rem, compared with 2**shift
    full = Signal(unsigned(width + 1), name=f"{name}_full")
    m.d.comb += [q.eq(v >> shift),
                 rem.eq((v - (q << shift))[:width]),
                 rem2.eq(Cat(Const(0, 1), rem)),
                 full.eq(Const(1, unsigned(width + 1)) << shift)]
    up = (rem2 > full) | ((rem2 == full) & q[0])               # above half, or a tie to an odd q
    r = Signal(signed(width + 1), name=f"{name}_r")
    m.d.comb += r.eq(q + up)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = Signal(signed(bits), name=name)
    m.d.comb += out.eq(Mux(r > hi, hi, Mux(r < lo, lo, r)))
    return out


class PhotonicTwin(Elaboratable):
    def __init__(self, geo: Geometry, name: str = "twin"):
        g = self.geo = geo
        self.name = name
        self.m1 = Signal(g.C * g.NH * g.WORD, name=f"{name}_m1")
        self.m2 = Signal(g.C * g.NW * g.WORD, name=f"{name}_m2")
        self.m1_unsigned = Signal(name=f"{name}_m1_unsigned")
        self.valid = Signal(name=f"{name}_valid")
        self.wfirst = Signal(name=f"{name}_wfirst")
        self.conv = Signal(name=f"{name}_conv")
        self.shift = Signal(g.SHIFT_BITS, name=f"{name}_shift")
        self.blocks = 1 if g.share_adc else g.C
        self.code = Signal(self.blocks * g.NH * g.NW * g.A, name=f"{name}_code")

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        B, NL = g.B, g.NL

        def code_of(word, l, unsigned_ok):
            raw = word[l * B:(l + 1) * B]
            if unsigned_ok:
                return Mux(self.m1_unsigned, raw.as_unsigned(), raw.as_signed())
            return raw.as_signed()

        m1w = [self.m1[i * g.WORD:(i + 1) * g.WORD] for i in range(g.C * g.NH)]
        m2w = [self.m2[i * g.WORD:(i + 1) * g.WORD] for i in range(g.C * g.NW)]
        codes = []
        for blk in range(self.blocks):
            cores = range(g.C) if g.share_adc else (blk,)
            for r in range(g.NH):
                for w in range(g.NW):
                    terms = []
                    for c in cores:
                        a, b = m1w[c * g.NH + r], m2w[c * g.NW + w]
                        for l in range(NL):
                            ext = Signal(signed(B + 1), name=f"x_{blk}_{r}_{w}_{c}_{l}")
                            m.d.comb += ext.eq(code_of(a, l, True))
                            terms.append(ext * b[l * B:(l + 1) * B].as_signed())
                    p = Signal(signed(g.IB), name=f"p_{blk}_{r}_{w}")
                    m.d.comb += p.eq(sum(terms[1:], terms[0]))
                    v = Signal(signed(g.IB), name=f"v_{blk}_{r}_{w}")
                    nv = Signal(signed(g.IB), name=f"nv_{blk}_{r}_{w}")
                    m.d.comb += nv.eq(Mux(self.wfirst, 0, v) + p)
                    q = rne_clamp(m, nv, self.shift, g.A, g.IB, f"adc_{blk}_{r}_{w}")
                    code = Signal(signed(g.A), name=f"code_{blk}_{r}_{w}")
                    with m.If(self.valid):
                        m.d.sync += v.eq(nv)
                        with m.If(self.conv):
                            m.d.sync += code.eq(q)
                    codes.append(code)
        m.d.comb += self.code.eq(Cat(*codes))
        return m

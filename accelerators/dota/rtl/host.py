"""Host driver of ``lego_dota``: turns a job (an attention head or a linear layer, integer DAC codes) into
what the bench drives (buffer loads, the job's registers) and what it checks (the words it reads back and
their expected values from ``sw_reference.dota_fx``, the exact cycles from ``cycles``).

The host plays the calibrated ADC gain: each GEMM's ``adc_shift`` is the smallest shift at which no
conversion clamps (``dota_fx.auto_adc_shift``), computed from the job's own data. Every buffer word a job
reads is written first (zeros where the layouts pad), so no unloaded word reaches an output.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lego.errors import LegoError
from lego.units.lanes import pack, unpack
from sw_reference import dota_fx as fx

from .cycles import job_cycles
from .geometry import BETA_BITS, GAMMA_BITS, Geometry
from .top import KIND, LD_SEL, POST, RD_SEL


@dataclass
class Job:
    name: str
    regs: dict                                   # port name -> value (sampled on start)
    loads: list = field(default_factory=list)    # (ld_sel, ld_tile, ld_bank, ld_addr, ld_data)
    reads: list = field(default_factory=list)    # (tensor, rd_sel, rd_tile, rd_bank, rd_addr)
    expected: list = field(default_factory=list)  # the words of ``reads``, in order
    cycles: int = 0
    golden: dict = field(default_factory=dict)    # every stage of the golden model (arrays)
    outputs: tuple = ()                           # the tensors the job reads back

    def plan(self) -> dict:
        """What tb/tb_dota.py drives (plain JSON)."""
        return {"name": self.name, "regs": self.regs, "loads": self.loads,
                "reads": [list(r[1:]) for r in self.reads], "expected": self.expected,
                "tensors": [r[0] for r in self.reads], "cycles": self.cycles}


def _geo_kw(geo: Geometry) -> dict:
    return dict(n_lambda=geo.NL, cores=geo.C, tau=geo.TAU, adc_bits=geo.A, adc_share=geo.share_adc)


def _check_codes(name: str, a: np.ndarray, bits: int, signed: bool = True) -> np.ndarray:
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.integer):
        raise LegoError(f"--inputs: tensor '{name}' must hold integers (DAC codes), got dtype {a.dtype}")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise LegoError(f"--inputs: tensor '{name}' must hold {'' if signed else 'u'}int{bits} codes "
                        f"({lo}..{hi}), got {int(a.min())}..{int(a.max())}")
    return a.astype(np.int64)


# ------------------------------------------------------------------------------------------ loads
def m1_loads(geo: Geometry, M1: np.ndarray) -> list:
    """Every word of every M1 buffer (the rows of M1, zeros elsewhere)."""
    words = {}
    for t in range(geo.T):
        for b in range(geo.C * geo.NH):
            for a in range(geo.M1_DEPTH):
                words[t, b, a] = [0] * geo.NL
    n1, d = M1.shape
    for i in range(n1):
        for dd in range(d):
            t, b, a, lane = geo.m1_place(i, dd)
            words[t, b, a][lane] = int(M1[i, dd])
    return [(LD_SEL["M1"], t, b, a, pack(v, geo.B)) for (t, b, a), v in sorted(words.items())]


def m2_loads(geo: Geometry, regions: dict) -> list:
    """Every word of the M2 buffer: ``regions`` {0: M2 [d x n2], 1: ...}, zeros elsewhere."""
    words = {(b, a): [0] * geo.NL for b in range(geo.C * geo.NW) for a in range(geo.M2_DEPTH)}
    for reg, M2 in regions.items():
        d, n2 = M2.shape
        for dd in range(d):
            for j in range(n2):
                b, a, lane = geo.m2_place(dd, j, reg)
                words[b, a][lane] = int(M2[dd, j])
    return [(LD_SEL["M2"], 0, b, a, pack(v, geo.B)) for (b, a), v in sorted(words.items())]


def ln_loads(geo: Geometry, gamma: np.ndarray, beta: np.ndarray) -> list:
    mask = (1 << BETA_BITS) - 1
    return [(LD_SEL["LN"], 0, 0, i, (int(gamma[i]) & 0xFF) | ((int(beta[i]) & mask) << GAMMA_BITS))
            for i in range(geo.ln_n)]


# ------------------------------------------------------------------------------------------ reads
def y_reads(geo: Geometry, name: str, Y: np.ndarray) -> tuple[list, list]:
    """The output-buffer words holding Y [n1 x n2] (all lanes of each word) and their expected values."""
    n1, n2 = Y.shape
    words: dict = {}
    for i in range(n1):
        for j in range(n2):
            t, b, a, lane = geo.y_place(i, j, n2)
            words.setdefault((t, b, a), {})[lane] = int(Y[i, j])
    reads, exp = [], []
    for (t, b, a), lanes in sorted(words.items()):
        reads.append((name, RD_SEL["Y"], t, b, a))
        exp.append(pack([lanes.get(w, 0) for w in range(geo.NW)], geo.ACC))    # padded lanes hold 0
    return reads, exp


def m1_reads(geo: Geometry, name: str, M1: np.ndarray) -> tuple[list, list]:
    """The M1-buffer words an epilogue wrote (rows of M1 [n1 x d]): every lane, zeros beyond d."""
    n1, d = M1.shape
    words: dict = {}
    for i in range(n1):
        for dd in range(fx.cdiv(d, geo.NL) * geo.NL):
            t, b, a, lane = geo.m1_place(i, dd)
            words.setdefault((t, b, a), {})[lane] = int(M1[i, dd]) if dd < d else 0
    reads = [(name, RD_SEL["M1"], t, b, a) for (t, b, a) in sorted(words)]
    return reads, [pack([words[k].get(x, 0) for x in range(geo.NL)], geo.B) for k in sorted(words)]


def m2_reads(geo: Geometry, name: str, M2: np.ndarray, region: int) -> tuple[list, list]:
    d, n2 = M2.shape
    words: dict = {}
    for dd in range(fx.cdiv(d, geo.NL) * geo.NL):
        for j in range(n2):
            b, a, lane = geo.m2_place(dd, j, region)
            words.setdefault((b, a), {})[lane] = int(M2[dd, j]) if dd < d else 0
    reads = [(name, RD_SEL["M2"], 0, b, a) for (b, a) in sorted(words)]
    return reads, [pack([words[k].get(x, 0) for x in range(geo.NL)], geo.B) for k in sorted(words)]


def decode(geo: Geometry, job: Job, words: list[int]) -> dict[str, np.ndarray]:
    """The tensors of a job from the words the bench read (the inverse of the ``*_reads`` layouts)."""
    out = {}
    for name in job.outputs:
        ref = job.golden[name]
        arr = np.zeros(ref.shape, np.int64)
        out[name] = arr
    idx = {}
    for (name, sel, t, b, a), w in zip(job.reads, words):
        idx[name, sel, t, b, a] = w
    for name, arr in out.items():
        if name in ("O", "Y"):
            n1, n2 = arr.shape
            for i in range(n1):
                for j in range(n2):
                    t, b, a, lane = geo.y_place(i, j, n2)
                    w = idx[name, RD_SEL["Y"], t, b, a]
                    arr[i, j] = unpack(w, geo.NW, geo.ACC)[lane]
        elif name == "Pc":
            n1, d = arr.shape
            for i in range(n1):
                for dd in range(d):
                    t, b, a, lane = geo.m1_place(i, dd)
                    arr[i, dd] = unpack(idx[name, RD_SEL["M1"], t, b, a], geo.NL, geo.B, signed=False)[lane]
        elif name == "Z":
            n1, n2 = arr.shape                      # Z [n1 x n2] is the next layer's M2 [d x n2]
            for i in range(n1):
                for j in range(n2):
                    b, a, lane = geo.m2_place(i, j, 1)
                    arr[i, j] = unpack(idx[name, RD_SEL["M2"], 0, b, a], geo.NL, geo.B)[lane]
    return out


# ------------------------------------------------------------------------------------------ jobs
def attention_job(geo: Geometry, Q, K, V, acc_latency: int) -> Job:
    """One head: Q, K, V [L x dh] signed DAC codes (L = the generated softmax length)."""
    B = geo.B
    Q, K, V = (_check_codes(n, a, B) for n, a in (("Q", Q), ("K", K), ("V", V)))
    if Q.ndim != 2 or Q.shape != K.shape or Q.shape != V.shape:
        raise LegoError(f"--inputs: Q, K, V must be [L x dh] of one shape, got {Q.shape}, {K.shape}, {V.shape}")
    L, dh = Q.shape
    if L != geo.L:
        raise LegoError(f"--inputs: Q has {L} rows; the design's softmax unit is generated for L = {geo.L} "
                        f"(rtl.tokens)")
    geo.check_gemm(L, dh, L, "Q")
    geo.check_gemm(L, L, dh, "V")
    kw = _geo_kw(geo)
    sh0 = fx.auto_adc_shift(Q, K.T, **kw)
    S = fx.crossbar_gemm_fx(Q, K.T, adc_shift=sh0, **kw)
    from sw_reference.softmax_fx import softmax_fx
    Pc = fx.requant_unsigned(softmax_fx(S, geo.softmax_mult, pb=fx.PB), fx.PB, B)
    sh1 = fx.auto_adc_shift(Pc, V, **kw)
    gold = fx.attention_head_fx(Q, K, V, in_bits=B, adc_shift_qk=sh0, adc_shift_pv=sh1, mult=geo.softmax_mult, **kw)
    g0, j0, s0 = geo.counts(L, dh, L)
    g1, j1, s1 = geo.counts(L, L, dh)
    regs = dict(kind=KIND["attention"], post=0, g0=g0, j0=j0, s0=s0, sh0=sh0, g1=g1, j1=j1, s1=s1, sh1=sh1,
                n1=L, n2=L)
    job = Job("attention", regs, golden=gold, outputs=("O", "Pc"))
    job.loads = m1_loads(geo, Q) + m2_loads(geo, {0: K.T, 1: V})
    r1, e1 = y_reads(geo, "O", gold["O"])
    r2, e2 = m1_reads(geo, "Pc", gold["Pc"])
    job.reads, job.expected = r1 + r2, e1 + e2
    job.cycles = job_cycles(geo, regs, acc_latency)
    return job


def linear_job(geo: Geometry, W, X, acc_latency: int, post: str | None = None,
               gamma=None, beta=None) -> Job:
    """Y = W.X (W [n1 x d] weights, X [d x n2] activations, signed DAC codes), then ``post``."""
    B = geo.B
    W, X = _check_codes("W", W, B), _check_codes("X", X, B)
    if W.ndim != 2 or X.ndim != 2 or W.shape[1] != X.shape[0]:
        raise LegoError(f"--inputs: W [n1 x d] and X [d x n2] do not chain, got {W.shape} and {X.shape}")
    n1, d = W.shape
    n2 = X.shape[1]
    geo.check_gemm(n1, d, n2, "W")
    if post is not None and n1 > geo.max_d:
        raise LegoError(f"W: n1 = {n1} rows exceed max_d = {geo.max_d} (the epilogue writes the next layer's d)")
    kw = _geo_kw(geo)
    sh0 = fx.auto_adc_shift(W, X, **kw)
    ln = None
    if post == "layernorm":
        if n1 != geo.ln_n:
            raise LegoError(f"W: a LayerNorm epilogue needs n1 = rtl.ln_n = {geo.ln_n} rows, got {n1}")
        gamma = _check_codes("gamma", gamma, GAMMA_BITS)
        beta = _check_codes("beta", beta, BETA_BITS)
        ln = dict(gamma=gamma, beta=beta, **geo.ln)
    gold = fx.linear_fx(W, X, in_bits=B, adc_shift=sh0, post=post, gelu=geo.gelu, ln=ln, **kw)
    g0, j0, s0 = geo.counts(n1, d, n2)
    regs = dict(kind=KIND["linear"], post=POST[post], g0=g0, j0=j0, s0=s0, sh0=sh0, g1=0, j1=0, s1=0, sh1=0,
                n1=n1, n2=n2)
    job = Job(f"linear{'+' + post if post else ''}", regs, golden=gold, outputs=("Y",) + (("Z",) if post else ()))
    job.loads = m1_loads(geo, W) + m2_loads(geo, {0: X})
    if post == "layernorm":
        job.loads += ln_loads(geo, gamma, beta)
    reads, exp = y_reads(geo, "Y", gold["Y"])
    if post:
        r2, e2 = m2_reads(geo, "Z", gold["Z"], 1)
        reads, exp = reads + r2, exp + e2
    job.reads, job.expected = reads, exp
    job.cycles = job_cycles(geo, regs, acc_latency)
    return job


def default_inputs(geo: Geometry, head_dim: int, shape: tuple[int, int, int], seed: int) -> dict:
    """Random DAC codes for ``lego sim DIR``: Q, K, V [L x head_dim], W [n1 x d], X [d x n2], and LayerNorm
    parameters (gamma about 1.0 in int8 with ``ln_gamma_frac`` fraction bits, beta small) for n1 = ln_n."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (geo.B - 1)), 1 << (geo.B - 1)
    n1, d, n2 = shape
    one = 1 << geo.ln_gamma_frac
    return {"Q": rng.integers(lo, hi, (geo.L, head_dim)), "K": rng.integers(lo, hi, (geo.L, head_dim)),
            "V": rng.integers(lo, hi, (geo.L, head_dim)), "W": rng.integers(lo, hi, (n1, d)),
            "X": rng.integers(lo, hi, (d, n2)),
            "gamma": np.clip(rng.integers(one - one // 4, one + one // 4 + 1, geo.ln_n), -128, 127),
            "beta": rng.integers(-(1 << (geo.ln_frac + geo.ln_gamma_frac - 2)),
                                 1 << (geo.ln_frac + geo.ln_gamma_frac - 2), geo.ln_n)}


def default_jobs(geo: Geometry, ins: dict, acc_latency: int) -> list[Job]:
    """What ``lego sim DIR`` runs: the attention head, the linear layer with GELU, and (when W has ln_n
    rows) with LayerNorm."""
    jobs = [attention_job(geo, ins["Q"], ins["K"], ins["V"], acc_latency),
            linear_job(geo, ins["W"], ins["X"], acc_latency, "gelu")]
    if np.asarray(ins["W"]).shape[0] == geo.ln_n:
        jobs.append(linear_job(geo, ins["W"], ins["X"], acc_latency, "layernorm", ins["gamma"], ins["beta"]))
    return jobs

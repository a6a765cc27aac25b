"""Built-in workloads: gemm, conv2d, dwconv2d, bmm (single affine nests) and attention (two nests
joined by the fixed-point softmax unit; see lego/design.py)."""
from __future__ import annotations

from ..errors import LegoError
from .workload import Affine, Tensor, Workload, dtype_for, validate

DEFAULTS: dict[str, dict[str, int]] = {
    "gemm": {"M": 16, "N": 16, "K": 16},
    "bmm": {"B": 2, "M": 8, "N": 8, "K": 8},
    "conv2d": {"N": 1, "C": 3, "K": 8, "H": 9, "W": 9, "R": 3, "S": 3, "STRIDE": 1, "PAD": 0},
    "dwconv2d": {"N": 1, "C": 8, "H": 9, "W": 9, "R": 3, "S": 3, "STRIDE": 1, "PAD": 0},
    "attention": {"L": 12, "D": 8},
}
DESCRIPTIONS = {
    "gemm": "Y[i,j] += X[i,k] * W[k,j]",
    "bmm": "Y[b,i,j] += X[b,i,k] * W[b,k,j]",
    "conv2d": "Y[n,k,h,w] += X[n,c,h*STRIDE+r-PAD,w*STRIDE+s-PAD] * W[k,c,r,s]",
    "dwconv2d": "Y[n,c,h,w] += X[n,c,h*STRIDE+r-PAD,w*STRIDE+s-PAD] * W[c,r,s]",
    "attention": "S = Q·Kᵀ (int8) -> fixed-point softmax -> O = P·V",
}
WORKLOADS = tuple(DEFAULTS)
ARRAY_WORKLOADS = ("gemm", "bmm", "conv2d", "dwconv2d")   # single nests; attention is an accelerator


def _acc_bits(bits: int) -> int:
    return 32 if bits <= 12 else 48


def _nest(name, iters, extents, specs, bits, params) -> Workload:
    n = len(iters)
    tensors = []
    for tname, role, index, shape, pad in specs:
        aff = []
        for term in index:
            coeffs = [0] * n
            const = 0
            for it, c in term.items():
                if it == "":
                    const += c
                else:
                    coeffs[iters.index(it)] += c
            aff.append(Affine(tuple(coeffs), const))
        dt = dtype_for(bits) if role == "input" else dtype_for(_acc_bits(bits))
        tensors.append(Tensor(tname, role, dt, tuple(aff), tuple(shape), pad))
    return validate(Workload(name, tuple(iters), tuple(extents), tuple(tensors), "mac",
                             tuple(sorted(params.items()))))


def parse_shape(text: str | None, name: str) -> dict[str, int]:
    shape = dict(DEFAULTS[name])
    if not text:
        return shape
    for item in text.split(","):
        if "=" not in item:
            raise LegoError(f"--shape: '{item}' is not KEY=VALUE (keys for {name}: {', '.join(DEFAULTS[name])})")
        k, v = (s.strip() for s in item.split("=", 1))
        if k not in shape:
            raise LegoError(f"--shape: unknown key '{k}' for {name} (allowed: {', '.join(DEFAULTS[name])})")
        try:
            iv = int(v)
        except ValueError:
            raise LegoError(f"--shape: {k}='{v}' is not an integer") from None
        lo = 0 if k == "PAD" else 1
        if iv < lo or iv > 1 << 20:
            raise LegoError(f"--shape: {k}={iv} is out of range ({lo}..{1 << 20})")
        shape[k] = iv
    return shape


def _conv_out(size: int, r: int, stride: int, pad: int, key: str) -> int:
    o = (size + 2 * pad - r) // stride + 1
    if o < 1:
        raise LegoError(f"--shape: {key}={size} with kernel {r}, STRIDE={stride}, PAD={pad} gives no output")
    return o


def builtin_workload(name: str, shape: dict[str, int], bits: int = 8) -> Workload:
    s = shape
    if name == "gemm":
        return _nest("gemm", ["i", "j", "k"], [s["M"], s["N"], s["K"]], [
            ("X", "input", [{"i": 1}, {"k": 1}], (s["M"], s["K"]), False),
            ("W", "input", [{"k": 1}, {"j": 1}], (s["K"], s["N"]), False),
            ("Y", "output", [{"i": 1}, {"j": 1}], (s["M"], s["N"]), False)], bits, s)
    if name == "bmm":
        return _nest("bmm", ["b", "i", "j", "k"], [s["B"], s["M"], s["N"], s["K"]], [
            ("X", "input", [{"b": 1}, {"i": 1}, {"k": 1}], (s["B"], s["M"], s["K"]), False),
            ("W", "input", [{"b": 1}, {"k": 1}, {"j": 1}], (s["B"], s["K"], s["N"]), False),
            ("Y", "output", [{"b": 1}, {"i": 1}, {"j": 1}], (s["B"], s["M"], s["N"]), False)], bits, s)
    if name in ("conv2d", "dwconv2d"):
        st, pd = s["STRIDE"], s["PAD"]
        oh = _conv_out(s["H"], s["R"], st, pd, "H")
        ow = _conv_out(s["W"], s["S"], st, pd, "W")
        xh = {"h": st, "r": 1, "": -pd}
        xw = {"w": st, "s": 1, "": -pd}
        pad = pd > 0
        if name == "conv2d":
            return _nest("conv2d", ["n", "k", "c", "h", "w", "r", "s"],
                         [s["N"], s["K"], s["C"], oh, ow, s["R"], s["S"]], [
                ("X", "input", [{"n": 1}, {"c": 1}, xh, xw], (s["N"], s["C"], s["H"], s["W"]), pad),
                ("W", "input", [{"k": 1}, {"c": 1}, {"r": 1}, {"s": 1}], (s["K"], s["C"], s["R"], s["S"]), False),
                ("Y", "output", [{"n": 1}, {"k": 1}, {"h": 1}, {"w": 1}], (s["N"], s["K"], oh, ow), False)],
                bits, s)
        return _nest("dwconv2d", ["n", "c", "h", "w", "r", "s"], [s["N"], s["C"], oh, ow, s["R"], s["S"]], [
            ("X", "input", [{"n": 1}, {"c": 1}, xh, xw], (s["N"], s["C"], s["H"], s["W"]), pad),
            ("W", "input", [{"c": 1}, {"r": 1}, {"s": 1}], (s["C"], s["R"], s["S"]), False),
            ("Y", "output", [{"n": 1}, {"c": 1}, {"h": 1}, {"w": 1}], (s["N"], s["C"], oh, ow), False)], bits, s)
    raise LegoError(f"--workload: unknown workload '{name}' (built-in: {', '.join(ARRAY_WORKLOADS)}; or a .yaml/.json file)")


def attention_stages(shape: dict[str, int], bits: int = 8) -> tuple[Workload, Workload]:
    """The two affine nests of attention: S[i,j] = Σ_d Q[i,d]·K[j,d] and O[i,e] = Σ_j P[i,j]·V[j,e]."""
    L, D = shape["L"], shape["D"]
    qk = _nest("attn_qk", ["i", "j", "d"], [L, L, D], [
        ("Q", "input", [{"i": 1}, {"d": 1}], (L, D), False),
        ("K", "input", [{"j": 1}, {"d": 1}], (L, D), False),
        ("S", "output", [{"i": 1}, {"j": 1}], (L, L), False)], bits, {"L": L, "D": D})
    pv = _nest("attn_pv", ["i", "e", "j"], [L, D, L], [
        ("P", "input", [{"i": 1}, {"j": 1}], (L, L), False),
        ("V", "input", [{"j": 1}, {"e": 1}], (L, D), False),
        ("O", "output", [{"i": 1}, {"e": 1}], (L, D), False)], bits, {"L": L, "D": D})
    # P is unsigned with 15 fraction bits (sw_reference.attention.PB): a 16-bit P·V input.
    p = pv.tensor("P")
    pt = type(p)(p.name, p.role, dtype_for(16), p.index, p.shape, p.pad)
    v = pv.tensor("V")
    o = pv.output
    return qk, type(pv)(pv.name, pv.iterators, pv.extents, (pt, v, o),
                        pv.body, pv.params)

"""Transformer workloads as lists of GEMMs, as the DOTA authors' simulator sees them.

A GEMM is [N1 x D] . [D x N2], repeated over ``heads`` (1 for linear layers), ``count`` times per
inference. Linear layers put the weight [out x in] as M1 and the activations [in x tokens] as M2, so
N1 = out_features, D = in_features, N2 = tokens. Q.K^T has N1 = tokens, D = head_dim, N2 = tokens; S.V has
N1 = tokens, D = tokens, N2 = head_dim.

Shapes follow the authors' ``model_zoo`` (``utils/model.py``), not their ``params/models/*.yaml`` tables,
which their simulator never reads and which are wrong (see docs/dota.md):

| model  | E    | heads | tokens | blocks | classes | embed  |
|--------|------|-------|--------|--------|---------|--------|
| deit-t | 192  | 3     | 197    | 12     | 1000    | yes    |
| deit-s | 384  | 6     | 197    | 12     | 1000    | yes    |
| deit-b | 768  | 12    | 197    | 12     | 1000    | yes    |
| bert-b | 768  | 12    | 128    | 12     | 2       | no     |
| bert-l | 1024 | 16    | 320    | 24     | 2       | no     |

Every block op runs 12 * factor times (factor 2 for bert-l: the authors hard-code 12 and ignore depth).
``embed`` (DeiT only) is a linear 768 -> E over a fixed 196 patches; ``head`` is E -> classes with N2 = 1.
The non-GEMM op counts ("others") cover one block only, as in the authors' counter.
BERT-B's default is 128 tokens (the authors' shipped script); pass ``tokens=384`` for their README's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from lego.errors import LegoError

GEMM_KINDS = ("linear", "qk", "sv")
HEAD_DIM = 64
MLP_RATIO = 4
PATCH_DIM = 3 * 16 * 16        # DeiT patch embedding input (patch 16, RGB)
PATCHES = 196                  # the authors fix the embed's N2 at 196, whatever the token count


@dataclass(frozen=True)
class Gemm:
    """[n1 x d] . [d x n2], ``heads`` times; ``count`` instances per inference."""

    name: str
    n1: int
    d: int
    n2: int
    heads: int = 1
    kind: str = "linear"       # linear (weights from DRAM) | qk | sv (activations on chip)
    count: int = 1

    @property
    def macs(self) -> int:
        return self.n1 * self.d * self.n2 * self.heads

    @property
    def is_linear(self) -> bool:
        return self.kind == "linear"


@dataclass(frozen=True)
class NonGemmOps:
    """Element-wise op counts the authors charge as "others" (one block)."""

    softmax: int = 0
    layernorm: int = 0
    residual: int = 0
    gelu: int = 0

    @property
    def total(self) -> int:
        return self.softmax + self.layernorm + self.residual + self.gelu


@dataclass(frozen=True)
class Workload:
    name: str
    tokens: int | None
    gemms: tuple[Gemm, ...]
    others: NonGemmOps = NonGemmOps()
    blocks: int = 0            # count of the repeated block GEMMs (0 for user shapes)

    @property
    def macs(self) -> int:
        return sum(g.macs * g.count for g in self.gemms)


@dataclass(frozen=True)
class ModelShape:
    embed_dim: int
    heads: int
    tokens: int
    factor: int                # blocks = 12 * factor
    classes: int
    has_embed: bool


MODELS: dict[str, ModelShape] = {
    "deit-t": ModelShape(192, 3, 197, 1, 1000, True),
    "deit-s": ModelShape(384, 6, 197, 1, 1000, True),
    "deit-b": ModelShape(768, 12, 197, 1, 1000, True),
    "bert-b": ModelShape(768, 12, 128, 1, 2, False),
    "bert-l": ModelShape(1024, 16, 320, 2, 2, False),
}

# The table bench/dota_table.py sweeps: (model, tokens).
STANDARD = (("deit-t", 197), ("deit-s", 197), ("deit-b", 197), ("bert-b", 128), ("bert-b", 384),
            ("bert-l", 320))


def _pos_int(v: Any, field: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise LegoError(f"{field}: must be a positive integer, got {v!r}")
    return v


def transformer(model: str, tokens: int | None = None) -> Workload:
    """The authors' view of ``model`` (one of ``MODELS``) at ``tokens`` (default: the model's)."""
    if not isinstance(model, str) or model not in MODELS:
        raise LegoError(f"model: unknown model {model!r} (allowed: {', '.join(MODELS)})")
    m = MODELS[model]
    s = m.tokens if tokens is None else _pos_int(tokens, "tokens")
    e, h = m.embed_dim, m.heads
    blocks = 12 * m.factor
    gemms = [
        Gemm("qkv", 3 * e, e, s, count=blocks),
        Gemm("qk", s, HEAD_DIM, s, heads=h, kind="qk", count=blocks),
        Gemm("sv", s, s, HEAD_DIM, heads=h, kind="sv", count=blocks),
        Gemm("proj", e, e, s, count=blocks),
        Gemm("fc1", MLP_RATIO * e, e, s, count=blocks),
        Gemm("fc2", e, MLP_RATIO * e, s, count=blocks),
    ]
    if m.has_embed:
        gemms.insert(0, Gemm("embed", e, PATCH_DIM, PATCHES))
    gemms.append(Gemm("head", m.classes, e, 1))
    others = NonGemmOps(softmax=s * s * h, layernorm=s * (e + 1), residual=2 * s * e, gelu=4 * s * e)
    return Workload(f"{model}@{s}", s, tuple(gemms), others, blocks)


def custom(shapes: Sequence[Any], name: str = "custom") -> Workload:
    """A user's own GEMMs. Each item is a ``Gemm``, a tuple ``(n1, d, n2[, heads[, kind]])`` or a mapping
    with keys ``n1, d, n2`` and optional ``heads, kind, name, count``. No non-GEMM ops are charged."""
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Iterable) or len(shapes) == 0:
        raise LegoError("model: must be a model name or a non-empty list of GEMM shapes")
    out: list[Gemm] = []
    for i, sh in enumerate(shapes):
        where = f"model[{i}]"
        if isinstance(sh, Gemm):
            d = dict(name=sh.name, n1=sh.n1, d=sh.d, n2=sh.n2, heads=sh.heads, kind=sh.kind, count=sh.count)
        elif isinstance(sh, dict):
            allowed = {"name", "n1", "d", "n2", "heads", "kind", "count"}
            for k in sh:
                if k not in allowed:
                    raise LegoError(f"{where}: unknown key {k!r} (allowed: {', '.join(sorted(allowed))})")
            for k in ("n1", "d", "n2"):
                if k not in sh:
                    raise LegoError(f"{where}: missing key '{k}'")
            d = dict(sh)
        elif isinstance(sh, (tuple, list)) and 3 <= len(sh) <= 5:
            d = dict(zip(("n1", "d", "n2", "heads", "kind"), sh))
        else:
            raise LegoError(f"{where}: must be (n1, d, n2[, heads[, kind]]) or a mapping, got {sh!r}")
        for k in ("n1", "d", "n2", "heads", "count"):
            if k in d:
                _pos_int(d[k], f"{where}.{k}")
        kind = d.get("kind", "linear")
        if kind not in GEMM_KINDS:
            raise LegoError(f"{where}.kind: must be one of {', '.join(GEMM_KINDS)}, got {kind!r}")
        nm = d.get("name", f"gemm{i}")
        if not isinstance(nm, str):
            raise LegoError(f"{where}.name: must be a string, got {nm!r}")
        out.append(Gemm(nm, d["n1"], d["d"], d["n2"], d.get("heads", 1), kind, d.get("count", 1)))
    return Workload(name, None, tuple(out))


def get_workload(model: str | Sequence[Any], tokens: int | None = None) -> Workload:
    """A named transformer (``MODELS``) at ``tokens``, or a user's list of GEMM shapes (``custom``)."""
    if isinstance(model, Workload):
        if tokens is not None:
            raise LegoError("tokens: only applies to a named model")
        return model
    if isinstance(model, str):
        return transformer(model, tokens)
    if tokens is not None:
        raise LegoError("tokens: only applies to a named model, not to a list of GEMM shapes")
    return custom(model)

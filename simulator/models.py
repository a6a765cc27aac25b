"""Built-in layer shapes (no weights) of resnet50, mobilenetv2, bert-base (seq 128), gpt2 (decode),
and the Layer type: the four operator kinds the mapper handles, their iterators and tensors."""
from __future__ import annotations

import math
from dataclasses import dataclass

from lego.affine.library import ARRAY_WORKLOADS, DEFAULTS, builtin_workload
from lego.errors import LegoError

def _library() -> tuple[dict, dict]:
    """Iterators and tensor dependences of each op, read from lego's one workload library
    (``lego.affine.library``): the loop order is the library's, outermost first."""
    iters, deps = {}, {}
    for op in ARRAY_WORKLOADS:
        w = builtin_workload(op, DEFAULTS[op])
        iters[op] = w.iterators
        deps[op] = {t.name: frozenset(w.iterators[k] for a in t.index for k, c in enumerate(a.coeffs) if c)
                    for t in w.tensors}
    return iters, deps


OP_ITERS, TENSOR_DEPS = _library()


@dataclass(frozen=True)
class Layer:
    """One layer: ``op`` in OP_ITERS, ``dims`` = ((iterator, extent), ...), conv ``stride``."""

    name: str
    op: str
    dims: tuple[tuple[str, int], ...]
    stride: int = 1

    def __post_init__(self) -> None:
        if self.op not in OP_ITERS:
            raise LegoError(f"op: {self.op!r} unknown, allowed {sorted(OP_ITERS)}")
        names = tuple(n for n, _ in self.dims)
        if set(names) != set(OP_ITERS[self.op]) or len(names) != len(OP_ITERS[self.op]):
            raise LegoError(f"{self.name}.dims: {self.op} needs iterators "
                            f"{list(OP_ITERS[self.op])}, got {list(names)}")
        for n, e in self.dims:
            if not isinstance(e, int) or e <= 0:
                raise LegoError(f"{self.name}.dims.{n}: {e!r} must be a positive integer")
        if not isinstance(self.stride, int) or self.stride <= 0:
            raise LegoError(f"{self.name}.stride: {self.stride!r} must be a positive integer")

    @property
    def ext(self) -> dict[str, int]:
        return dict(self.dims)

    @property
    def macs(self) -> int:
        return math.prod(e for _, e in self.dims)

    def tensor_elems(self) -> dict[str, int]:
        """Elements of X, W, Y as stored in DRAM (conv input includes its halo)."""
        e = self.ext
        if self.op in ("gemm", "bmm"):
            b = e.get("b", 1)
            return {"X": b * e["i"] * e["k"], "W": b * e["k"] * e["j"], "Y": b * e["i"] * e["j"]}
        hin = (e["h"] - 1) * self.stride + e["r"]
        win = (e["w"] - 1) * self.stride + e["s"]
        x = e["n"] * e["c"] * hin * win
        if self.op == "conv2d":
            return {"X": x, "W": e["k"] * e["c"] * e["r"] * e["s"],
                    "Y": e["n"] * e["k"] * e["h"] * e["w"]}
        return {"X": x, "W": e["c"] * e["r"] * e["s"], "Y": e["n"] * e["c"] * e["h"] * e["w"]}

    def gemm_view(self) -> tuple[int, int, int, int]:
        """(G, M, N, K): independent groups and the GEMM each group lowers to (im2col view)."""
        e = self.ext
        if self.op == "gemm":
            return 1, e["i"], e["j"], e["k"]
        if self.op == "bmm":
            return e["b"], e["i"], e["j"], e["k"]
        if self.op == "conv2d":
            return 1, e["n"] * e["h"] * e["w"], e["k"], e["c"] * e["r"] * e["s"]
        return e["c"], e["n"] * e["h"] * e["w"], 1, e["r"] * e["s"]


def gemm(name: str, i: int, j: int, k: int) -> Layer:
    return Layer(name, "gemm", (("i", i), ("j", j), ("k", k)))


def bmm(name: str, b: int, i: int, j: int, k: int) -> Layer:
    return Layer(name, "bmm", (("b", b), ("i", i), ("j", j), ("k", k)))


def conv2d(name: str, n: int, k: int, c: int, h: int, w: int, r: int, s: int,
           stride: int = 1) -> Layer:
    """``h``, ``w`` are output sizes."""
    return Layer(name, "conv2d", (("n", n), ("k", k), ("c", c), ("h", h), ("w", w),
                                  ("r", r), ("s", s)), stride)


def dwconv2d(name: str, n: int, c: int, h: int, w: int, r: int, s: int,
             stride: int = 1) -> Layer:
    return Layer(name, "dwconv2d", (("n", n), ("c", c), ("h", h), ("w", w), ("r", r), ("s", s)),
                 stride)


# ---------------------------------------------------------------- built-in models (shapes only)

def resnet50(batch: int = 1) -> list[Layer]:
    """ResNet-50 v1.5 (torchvision), 224x224 input: stride 2 on the 3x3 conv of each stage's
    first bottleneck. Convolutions and the classifier; pooling, BN, ReLU and adds are not MACs."""
    n = batch
    layers = [conv2d("conv1", n, 64, 3, 112, 112, 7, 7, stride=2)]
    cin, hw = 64, 56                                  # after the 3x3/2 max pool
    for stage, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=2):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 2) else 1
            out_hw = hw // stride
            p = f"res{stage}{chr(ord('a') + b)}"
            layers.append(conv2d(p + "_1x1a", n, width, cin, hw, hw, 1, 1))
            layers.append(conv2d(p + "_3x3", n, width, width, out_hw, out_hw, 3, 3, stride))
            layers.append(conv2d(p + "_1x1b", n, 4 * width, width, out_hw, out_hw, 1, 1))
            if b == 0:
                layers.append(conv2d(p + "_down", n, 4 * width, cin, out_hw, out_hw, 1, 1, stride))
            cin, hw = 4 * width, out_hw
    layers.append(gemm("fc", n, 1000, 2048))
    return layers


def mobilenetv2(batch: int = 1) -> list[Layer]:
    """MobileNetV2 (width 1.0, 224x224): inverted residual blocks (expand 1x1, depthwise 3x3,
    project 1x1), final 1x1 conv to 1280 and the classifier."""
    n = batch
    layers = [conv2d("conv1", n, 32, 3, 112, 112, 3, 3, stride=2)]
    cin, hw = 32, 112
    settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))
    idx = 0
    for t, c, reps, s in settings:
        for r in range(reps):
            stride = s if r == 0 else 1
            hidden, out_hw = cin * t, hw // stride
            p = f"block{idx}"
            if t != 1:
                layers.append(conv2d(p + "_expand", n, hidden, cin, hw, hw, 1, 1))
            layers.append(dwconv2d(p + "_dw", n, hidden, out_hw, out_hw, 3, 3, stride))
            layers.append(conv2d(p + "_project", n, c, hidden, out_hw, out_hw, 1, 1))
            cin, hw = c, out_hw
            idx += 1
    layers.append(conv2d("conv_last", n, 1280, cin, hw, hw, 1, 1))
    layers.append(gemm("fc", n, 1000, 1280))
    return layers


def bert_base(seq: int = 128, batch: int = 1) -> list[Layer]:
    """BERT-base encoder (12 layers, hidden 768, 12 heads, FFN 3072), sequence ``seq``.
    Matmuls only: softmax, layer norm, GELU and the embedding lookup are not modelled."""
    m, d, h, dh, ff = batch * seq, 768, 12, 64, 3072
    layers: list[Layer] = []
    for l in range(12):
        p = f"L{l}"
        layers += [gemm(p + "_qkv", m, 3 * d, d),
                   bmm(p + "_qk", batch * h, seq, seq, dh),
                   bmm(p + "_av", batch * h, seq, dh, seq),
                   gemm(p + "_proj", m, d, d),
                   gemm(p + "_ffn1", m, ff, d),
                   gemm(p + "_ffn2", m, d, ff)]
    return layers


def gpt2(context: int = 128, batch: int = 1) -> list[Layer]:
    """GPT-2 small **decode**: one new token per sequence with a KV cache of ``context`` tokens
    (12 layers, hidden 768, 12 heads, FFN 3072, tied LM head over the 50257-word vocabulary).
    Every weight is read once per token, so this workload is DRAM-bandwidth bound."""
    d, h, dh, ff, vocab = 768, 12, 64, 3072, 50257
    layers: list[Layer] = []
    for l in range(12):
        p = f"L{l}"
        layers += [gemm(p + "_qkv", batch, 3 * d, d),
                   bmm(p + "_qk", batch * h, 1, context, dh),
                   bmm(p + "_av", batch * h, 1, dh, context),
                   gemm(p + "_proj", batch, d, d),
                   gemm(p + "_ffn1", batch, ff, d),
                   gemm(p + "_ffn2", batch, d, ff)]
    layers.append(gemm("lm_head", batch, vocab, d))
    return layers


MODELS = {"resnet50": resnet50, "mobilenetv2": mobilenetv2, "bert-base": bert_base, "gpt2": gpt2}


def get_model(name: str) -> list[Layer]:
    try:
        return MODELS[name]()
    except KeyError:
        raise LegoError(f"model: {name!r} unknown, allowed {sorted(MODELS)}") from None

import pytest

from accelerators.dota.workloads import MODELS, STANDARD, Gemm, custom, get_workload, transformer
from lego.errors import LegoError


def shapes(wl):
    return {g.name: (g.n1, g.d, g.n2, g.heads, g.kind, g.count) for g in wl.gemms}


def test_deit_tiny():
    wl = transformer("deit-t")
    assert wl.tokens == 197 and wl.blocks == 12 and wl.name == "deit-t@197"
    assert shapes(wl) == {
        "embed": (192, 768, 196, 1, "linear", 1),
        "qkv": (576, 192, 197, 1, "linear", 12),
        "qk": (197, 64, 197, 3, "qk", 12),
        "sv": (197, 197, 64, 3, "sv", 12),
        "proj": (192, 192, 197, 1, "linear", 12),
        "fc1": (768, 192, 197, 1, "linear", 12),
        "fc2": (192, 768, 197, 1, "linear", 12),
        "head": (1000, 192, 1, 1, "linear", 1),
    }
    o = wl.others        # one block: softmax s^2 H, LayerNorm s(E+1), residual 2sE, GELU 4sE
    assert (o.softmax, o.layernorm, o.residual, o.gelu) == (197 * 197 * 3, 197 * 193, 2 * 197 * 192, 4 * 197 * 192)


@pytest.mark.parametrize("model,e,h,tokens,blocks,classes", [
    ("deit-s", 384, 6, 197, 12, 1000), ("deit-b", 768, 12, 197, 12, 1000),
    ("bert-b", 768, 12, 128, 12, 2), ("bert-l", 1024, 16, 320, 24, 2),
])
def test_model_zoo(model, e, h, tokens, blocks, classes):
    wl = transformer(model)
    s = shapes(wl)
    assert wl.tokens == tokens and wl.blocks == blocks
    assert s["qkv"] == (3 * e, e, tokens, 1, "linear", blocks)
    assert s["qk"] == (tokens, 64, tokens, h, "qk", blocks)
    assert s["fc2"] == (e, 4 * e, tokens, 1, "linear", blocks)
    assert s["head"] == (classes, e, 1, 1, "linear", 1)
    assert ("embed" in s) == model.startswith("deit")


def test_token_override():
    wl = transformer("bert-b", 384)
    assert wl.tokens == 384 and shapes(wl)["sv"] == (384, 384, 64, 12, "sv", 12)
    d = shapes(transformer("deit-t", 50))
    assert d["embed"][2] == 196 and d["qkv"][2] == 50      # the embed keeps its 196 patches
    assert ("bert-b", 384) in STANDARD and len(MODELS) == 5


def test_custom_shapes():
    wl = get_workload([(64, 32, 16), (8, 64, 8, 4, "qk"), {"n1": 10, "d": 20, "n2": 30, "count": 3, "name": "x"},
                       Gemm("g", 1, 2, 3)])
    assert [(g.name, g.n1, g.d, g.n2, g.heads, g.kind, g.count) for g in wl.gemms] == [
        ("gemm0", 64, 32, 16, 1, "linear", 1), ("gemm1", 8, 64, 8, 4, "qk", 1), ("x", 10, 20, 30, 1, "linear", 3),
        ("g", 1, 2, 3, 1, "linear", 1)]
    assert wl.others.total == 0 and wl.tokens is None
    assert wl.macs == 64 * 32 * 16 + 8 * 64 * 8 * 4 + 3 * 6000 + 6


@pytest.mark.parametrize("call,msg", [
    (lambda: transformer("gpt2"), "model: unknown model 'gpt2' (allowed: deit-t, deit-s, deit-b, bert-b, bert-l)"),
    (lambda: transformer("deit-t", 0), "tokens: must be a positive integer, got 0"),
    (lambda: transformer("deit-t", -5), "tokens: must be a positive integer, got -5"),
    (lambda: transformer("deit-t", 19.5), "tokens: must be a positive integer, got 19.5"),
    (lambda: get_workload([(1, 2, 3)], tokens=10), "tokens: only applies to a named model, not to a list of GEMM shapes"),
    (lambda: custom([]), "model: must be a model name or a non-empty list of GEMM shapes"),
    (lambda: custom([(0, 2, 3)]), "model[0].n1: must be a positive integer, got 0"),
    (lambda: custom([(1, 2, 3), (1, 2)]), "model[1]: must be (n1, d, n2[, heads[, kind]]) or a mapping, got (1, 2)"),
    (lambda: custom([(1, 2, 3, 2, "attn")]), "model[0].kind: must be one of linear, qk, sv, got 'attn'"),
    (lambda: custom([{"n1": 1, "d": 2}]), "model[0]: missing key 'n2'"),
    (lambda: custom([{"n1": 1, "d": 2, "n2": 3, "m": 1}]),
     "model[0]: unknown key 'm' (allowed: count, d, heads, kind, n1, n2, name)"),
])
def test_errors(call, msg):
    with pytest.raises(LegoError) as e:
        call()
    assert str(e.value) == msg

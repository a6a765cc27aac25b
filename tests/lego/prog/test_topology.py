"""lego compile DIR --model FILE|NAME: the SCALE-Sim CSV and ONNX readers against hand-written files, the
per-layer records of the program, and every refusal (exit 2, one line naming the field, nothing written)."""
import json
from pathlib import Path

import numpy as np
import pytest

from lego.cli import main
from lego.prog.generate import generate_prog
from lego.prog.topology import read_csv, read_onnx

CONV_CSV = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
            "Conv1, 12, 10, 3, 3, 3, 8, 1,\n"
            "Conv2, 10, 8, 1, 1, 8, 16, 2,\n")
GEMM_CSV = "Layer, M, N, K,\nqk, 64, 32, 16,\nfc, 1, 10, 7,\n"


@pytest.fixture(scope="module")
def design(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("prog") / "d"
    generate_prog("gemm", "2x2", ("ws", "os"), 8, 1, 1, 64, True, d)
    return d


def _err(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lego: error: "), err
    return err[0]


def test_scalesim_conv_and_gemm_csv(tmp_path):
    (tmp_path / "c.csv").write_text(CONV_CSV.replace("Strides,\n", "Strides, Sparsity,\n")
                                    .replace("1,\nConv2", "1, 1:1,\nConv2"))
    layers, skipped = read_csv(tmp_path / "c.csv")
    assert skipped == [] and [l.name for l in layers] == ["Conv1", "Conv2"]
    assert layers[0].op == "conv2d" and layers[0].dims == {"N": 1, "C": 3, "H": 12, "W": 10, "K": 8, "R": 3, "S": 3}
    assert layers[1].stride == (2, 2) and layers[1].pads == (0, 0, 0, 0)
    (tmp_path / "g.csv").write_text(GEMM_CSV)
    layers, _ = read_csv(tmp_path / "g.csv")
    assert [(l.op, l.dims) for l in layers] == [("gemm", {"M": 64, "N": 32, "K": 16}),
                                                ("gemm", {"M": 1, "N": 10, "K": 7})]


def test_compile_model_csv_records(design, tmp_path, capsys):
    (tmp_path / "c.csv").write_text(CONV_CSV)
    prog = tmp_path / "m.prog"
    assert main(["compile", str(design), "--model", str(tmp_path / "c.csv"), "--out", str(prog)]) == 0
    capsys.readouterr()
    h = json.loads(Path(str(prog) + ".json").read_text())
    # Conv1: Ho=10, Wo=8 -> M=80, K=3*3*3=27, N=8; Conv2: Ho=5, Wo=4 -> M=20, K=8, N=16
    assert [r["gemm"] for r in h["layers"]] == [{"G": 1, "M": 80, "N": 8, "K": 27}, {"G": 1, "M": 20, "N": 16, "K": 8}]
    assert [r["macs"] for r in h["layers"]] == [80 * 8 * 27, 20 * 16 * 8]
    assert h["layers"][0]["lowering"].startswith("host im2col")
    assert h["layers"][0]["dram"]["X"]["shape"] == [1, 80, 27]
    starts = [r["commands"][0] for r in h["layers"]]
    assert starts[0] == 0 and starts[1] == h["layers"][0]["commands"][1]
    assert sum(r["commands"][1] for r in h["layers"]) == len(h["commands"])
    assert h["layers"][1]["dram"]["X"]["addr"] >= h["layers"][0]["dram"]["Y"]["addr"] + 80 * 8 * 4
    assert all(r["dram"][t]["addr"] % 4096 == 0 for r in h["layers"] for t in "XWY")


def _onnx_model(path: Path, ops=("gemm", "conv", "relu")):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits, inputs, outputs = [], [], [], []
    if "gemm" in ops:
        inputs.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, [5, 12]))
        inits.append(numpy_helper.from_array(np.zeros((7, 12), np.float32), "b"))
        nodes.append(helper.make_node("Gemm", ["a", "b"], ["g"], name="fc", transB=1))
        outputs.append(helper.make_tensor_value_info("g", TensorProto.FLOAT, None))
    if "conv" in ops:
        inputs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 9]))
        inits.append(numpy_helper.from_array(np.zeros((6, 2, 3, 3), np.float32), "w"))
        nodes.append(helper.make_node("Conv", ["x", "w"], ["y"], name="conv", strides=[2, 2], pads=[1, 1, 1, 1],
                                      group=2))
        outputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, None))
    if "relu" in ops:
        src = "y" if "conv" in ops else "a"
        if src == "a":
            inputs.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, [5, 12]))
        nodes.append(helper.make_node("Relu", [src], ["z"], name="act"))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "t", inputs, outputs, inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_gemm_conv_relu(design, tmp_path, capsys):
    f = _onnx_model(tmp_path / "m.onnx")
    layers, skipped = read_onnx(f)
    assert [(l.name, l.op) for l in layers] == [("fc", "gemm"), ("conv", "conv2d")]
    assert layers[0].dims == {"M": 5, "N": 7, "K": 12}
    assert layers[1].groups == 2 and layers[1].stride == (2, 2) and layers[1].pads == (1, 1, 1, 1)
    assert [(s["name"], s["op"]) for s in skipped] == [("act", "Relu")]
    prog = tmp_path / "m.prog"
    assert main(["compile", str(design), "--model", str(f), "--out", str(prog)]) == 0
    out = capsys.readouterr().out
    assert "skipped 1: act (Relu)" in out
    h = json.loads(Path(str(prog) + ".json").read_text())
    # conv: Ho = Wo = (9 + 2 - 3) // 2 + 1 = 5 -> G=2, M=25, K=2*3*3=18, N=3
    assert [r["gemm"] for r in h["layers"]] == [{"G": 1, "M": 5, "N": 7, "K": 12}, {"G": 2, "M": 25, "N": 3, "K": 18}]
    assert h["skipped"][0]["op"] == "Relu"


def test_refusals_name_the_field(design, tmp_path, capsys):
    other = tmp_path / "o"
    generate_prog("gemm", "2x2", ("os",), 8, 1, 1, 128, True, other)
    prog = tmp_path / "p.prog"
    base = ["compile", str(design), "--out", str(prog)]
    assert _err(capsys, base + ["--model", "nosuchnet"]) == (
        "lego: error: --model: 'nosuchnet' is not a built-in model (allowed: bert-base, gpt2, mobilenetv2, "
        "resnet50) nor a .csv / .onnx file")
    (tmp_path / "miss.csv").write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                                       "Channels, Strides,\nc, 8, 8, 3, 3, 3, 1,\n")
    assert _err(capsys, base + ["--model", str(tmp_path / "miss.csv")]) == (
        "lego: error: --model: miss.csv: column 'Num Filter' missing (SCALE-Sim conv format: Layer name, "
        "IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides)")
    (tmp_path / "zero.csv").write_text(CONV_CSV.replace("Conv2, 10, 8, 1, 1, 8, 16", "Conv2, 10, 8, 1, 1, 0, 16"))
    assert _err(capsys, base + ["--model", str(tmp_path / "zero.csv")]) == (
        "lego: error: --model: zero.csv row 3 (Conv2), column 'Channels': '0' must be a positive integer")
    (tmp_path / "neg.csv").write_text("Layer, M, N, K,\nq, 4, -2, 8,\n")
    assert _err(capsys, base + ["--model", str(tmp_path / "neg.csv")]) == (
        "lego: error: --model: neg.csv row 2 (q), column 'N': '-2' must be a positive integer")
    f = _onnx_model(tmp_path / "r.onnx", ops=("relu",))
    assert _err(capsys, base + ["--model", str(f)]) == (
        "lego: error: --model: r.onnx: no supported op (Gemm, MatMul, Conv); found: Relu")
    (tmp_path / "g.csv").write_text(GEMM_CSV)
    assert "--tile: M=64 does not fit the design's buffers" in _err(
        capsys, base + ["--model", str(tmp_path / "g.csv"), "--tile", "M=64"])
    (tmp_path / "big.csv").write_text("Layer, M, N, K,\nhuge, 3000000000, 2, 2,\n")
    assert _err(capsys, base + ["--model", str(tmp_path / "big.csv")]).startswith(
        "lego: error: --model: layer 'huge': the tensors need")
    assert _err(capsys, base + ["--layer", "bmm:B=40000,M=300,N=300,K=300"]).startswith(
        "lego: error: --layer: layer 'layer': the tensors need")
    assert not prog.exists() and not Path(str(prog) + ".json").exists()
    assert main(base + ["--model", str(tmp_path / "g.csv")]) == 0
    capsys.readouterr()
    assert "--program: compiled for another design" in _err(capsys, ["sim", str(other), "--program", str(prog)])


def test_builtin_models_lower_as_the_mapper_views_them(design, tmp_path):
    """The built-in table's layers lower to the same (G, M, N, K) as the analytical mapper's im2col view."""
    from simulator.models import MODELS
    from simulator.prog_model import load_model
    from lego.prog.lower import lower
    for name in ("resnet50", "mobilenetv2", "bert-base"):
        _, specs, skipped = load_model(name)
        table = MODELS[name]()
        assert not skipped and len(specs) == len(table)
        for s, l in zip(specs, table):
            low = lower(s)
            assert (low.G, low.M, low.N, low.K) == l.gemm_view(), l.name
            assert low.macs == l.macs


def test_onnx_matmul_batched_and_folded(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    vi = helper.make_tensor_value_info
    g = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"], name="attn"),
         helper.make_node("MatMul", ["p", "w"], ["q"], name="proj"),
         helper.make_node("Softmax", ["c"], ["s"], name="sm")],
        "t", [vi("a", TensorProto.FLOAT, [2, 3, 4, 5]), vi("b", TensorProto.FLOAT, [2, 3, 5, 6]),
              vi("p", TensorProto.FLOAT, [2, 4, 5])],
        [vi("s", TensorProto.FLOAT, None), vi("q", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.zeros((5, 7), np.float32), "w")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    layers, skipped = read_onnx(tmp_path / "m.onnx")
    assert [(l.op, l.dims) for l in layers] == [("bmm", {"B": 6, "M": 4, "N": 6, "K": 5}),
                                                ("gemm", {"M": 8, "N": 7, "K": 5})]
    assert [s["op"] for s in skipped] == ["Softmax"]

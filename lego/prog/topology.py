"""Model files -> layers (``LayerSpec``) for ``lego compile --model FILE`` and ``lego sim --model FILE``.

* SCALE-Sim topology CSV, conv format (``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,
  Channels, Num Filter, Strides,``: IFMAP sizes are the input's, no padding, batch 1) or GEMM format
  (``Layer, M, N, K,``); the trailing comma SCALE-Sim writes and extra columns (e.g. Sparsity) are accepted.
* ONNX (``onnx`` package, shapes by ONNX shape inference): Gemm and MatMul -> gemm (bmm where both operands
  carry batch dimensions), Conv (2-D, grouped, depthwise and dilated included: ``dilations`` per axis) -> conv2d
  (dwconv2d where depthwise); every other node is returned as skipped.

Errors name ``--model``, the file, and the row and column (CSV) or the node (ONNX).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from ..errors import LegoError
from .lower import LayerSpec

FIELD = "--model"
CONV_COLS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
             "Num Filter", "Strides")
GEMM_COLS = ("Layer", "M", "N", "K")


def _norm(s: str) -> str:
    return " ".join(s.strip().lower().split())


def _conv_row(name: str, v: dict) -> LayerSpec:
    dims = {"N": 1, "C": v["Channels"], "H": v["IFMAP Height"], "W": v["IFMAP Width"], "K": v["Num Filter"],
            "R": v["Filter Height"], "S": v["Filter Width"]}
    return LayerSpec(name, "conv2d", dims, (v["Strides"], v["Strides"]))


def _gemm_row(name: str, v: dict) -> LayerSpec:
    return LayerSpec(name, "gemm", {"M": v["M"], "N": v["N"], "K": v["K"]})


CSV_FORMATS = {"conv": (CONV_COLS, _conv_row), "gemm": (GEMM_COLS, _gemm_row)}


def _csv_format(path: Path, header: list[str]) -> tuple[str, dict[str, int]]:
    have = {_norm(h): i for i, h in enumerate(header) if h.strip()}
    kind = "conv" if ("ifmap height" in have or "layer name" in have) else "gemm"
    cols, _ = CSV_FORMATS[kind]
    for c in cols:
        if _norm(c) not in have:
            raise LegoError(f"{FIELD}: {path.name}: column '{c}' missing (SCALE-Sim {kind} format: "
                            f"{', '.join(cols)})")
    return kind, {c: have[_norm(c)] for c in cols}


def read_csv(path: Path) -> tuple[list[LayerSpec], list[dict]]:
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise LegoError(f"{FIELD}: {path.name}: not a readable CSV file ({e})") from None
    rows = [(n, r) for n, r in enumerate(rows, 1) if any(c.strip() for c in r)]
    if not rows:
        raise LegoError(f"{FIELD}: {path.name}: empty (no header row)")
    kind, idx = _csv_format(path, rows[0][1])
    cols, make = CSV_FORMATS[kind]
    layers = []
    for n, r in rows[1:]:
        name = r[idx[cols[0]]].strip() if idx[cols[0]] < len(r) else ""
        vals = {}
        for c in cols[1:]:
            cell = r[idx[c]].strip() if idx[c] < len(r) else ""
            try:
                vals[c] = int(cell)
            except ValueError:
                vals[c] = None
            if vals[c] is None or vals[c] < 1:
                raise LegoError(f"{FIELD}: {path.name} row {n} ({name or '?'}), column '{c}': "
                                f"'{cell}' must be a positive integer")
        layers.append(make(name or f"row{n}", vals))
    return layers, []


# ------------------------------------------------------------------------------------------------ ONNX

def _shapes(model) -> dict[str, list]:
    import onnx
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:                                  # noqa: BLE001 - a model inference cannot type
        pass
    g = model.graph
    out = {t.name: list(t.dims) for t in g.initializer}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            out.setdefault(vi.name, [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim])
    return out


def _attrs(node) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _Skip(Exception):
    pass


def _known(shape, what: str) -> list[int]:
    if shape is None or any(d is None or d < 1 for d in shape):
        raise _Skip(f"{what} shape unknown")
    return [int(d) for d in shape]


def _onnx_gemm(name, node, shp) -> LayerSpec:
    at = _attrs(node)
    a, b = _known(shp.get(node.input[0]), "A"), _known(shp.get(node.input[1]), "B")
    m, k = a[::-1] if at.get("transA", 0) else a
    k2, n = b[::-1] if at.get("transB", 0) else b
    if k != k2:
        raise _Skip(f"inner sizes {k} and {k2} differ")
    return LayerSpec(name, "gemm", {"M": m, "N": n, "K": k})


def _onnx_matmul(name, node, shp) -> LayerSpec:
    a, b = _known(shp.get(node.input[0]), "A"), _known(shp.get(node.input[1]), "B")
    if len(a) < 2 or len(b) < 2:
        raise _Skip("1-D operand")
    (m, k), (k2, n) = a[-2:], b[-2:]
    if k != k2:
        raise _Skip(f"inner sizes {k} and {k2} differ")
    if len(b) == 2:                                   # one weight matrix for every row of every batch
        return LayerSpec(name, "gemm", {"M": math.prod(a[:-1]), "N": n, "K": k})
    batch = math.prod(max(x, y) for x, y in zip([1] * (len(b) - len(a)) + a[:-2], [1] * (len(a) - len(b)) + b[:-2]))
    return LayerSpec(name, "bmm", {"B": batch, "M": m, "N": n, "K": k})


def _same_pads(size: int, k: int, s: int, upper: bool) -> tuple[int, int]:
    total = max((-(-size // s) - 1) * s + k - size, 0)
    lo = total // 2 if upper else total - total // 2
    return lo, total - lo


def _onnx_conv(name, node, shp) -> LayerSpec:
    at = _attrs(node)
    x, w = _known(shp.get(node.input[0]), "X"), _known(shp.get(node.input[1]), "W")
    if len(x) != 4 or len(w) != 4:
        raise _Skip("not a 2-D convolution")
    n, c, h, wd = x
    k, _, r, s = w
    for key in ("strides", "dilations"):
        if len(at.get(key, [1, 1])) != 2:
            raise _Skip(f"{key} {list(at[key])} are not 2 values")
    sh, sw = at.get("strides", [1, 1])
    dh, dw = at.get("dilations", [1, 1])
    auto = at.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):     # ONNX pads SAME for the effective (dilated) kernel
        up = auto == "SAME_UPPER"
        (pt, pb), (pl, pr) = _same_pads(h, (r - 1) * dh + 1, sh, up), _same_pads(wd, (s - 1) * dw + 1, sw, up)
    else:
        pt, pl, pb, pr = at.get("pads", [0, 0, 0, 0]) if auto == "NOTSET" else (0, 0, 0, 0)
    g = at.get("group", 1)
    op = "dwconv2d" if g > 1 and g == c == k else "conv2d"
    return LayerSpec(name, op, {"N": n, "C": c, "H": h, "W": wd, "K": k, "R": r, "S": s}, (sh, sw),
                     (pt, pl, pb, pr), g, (dh, dw))


ONNX_OPS = {"Gemm": _onnx_gemm, "MatMul": _onnx_matmul, "Conv": _onnx_conv}


def read_onnx(path: Path) -> tuple[list[LayerSpec], list[dict]]:
    import onnx
    try:
        model = onnx.load(str(path))
    except Exception:                                  # noqa: BLE001 - protobuf raises many kinds
        raise LegoError(f"{FIELD}: {path.name}: not a readable ONNX model") from None
    shp = _shapes(model)
    layers, skipped = [], []
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        make = ONNX_OPS.get(node.op_type)
        if make is None:
            skipped.append({"name": name, "op": node.op_type, "why": "no GEMM lowering"})
            continue
        try:
            layers.append(make(name, node, shp))
        except _Skip as e:
            skipped.append({"name": name, "op": node.op_type, "why": str(e)})
    if not layers:
        ops = ", ".join(sorted({s["op"] for s in skipped})) or "none"
        raise LegoError(f"{FIELD}: {path.name}: no supported op (Gemm, MatMul, Conv); found: {ops}")
    return layers, skipped


READERS = {".csv": read_csv, ".onnx": read_onnx}


def read_model_file(path: Path) -> tuple[list[LayerSpec], list[dict]]:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise LegoError(f"{FIELD}: '{path}' is neither a SCALE-Sim .csv nor an .onnx file")
    if not path.is_file():
        raise LegoError(f"{FIELD}: file '{path}' not found")
    return reader(path)

"""``DIR/design.json``: the generated design as the engines need it, so that ``lego sim`` reads the design
directory and never re-runs the front end or the LP (the directory is the hand-off from gen to sim).

It holds the three IRs of the ladder, after every pass: the workload (``lego.affine.workload``), the
architecture (``lego.arch.graph``: dataflows, per-tensor nets with their FU forests, ports and layouts)
and the scheduled primitive graph (``lego.prim.graph``, with σ). ``load`` rebuilds the same frozen
dataclasses; emitting Verilog from them gives the generated file byte for byte (a test).

Format (``schema``: ``DESIGN_SCHEMA``; a newer or unknown schema is refused)::

    {"schema": 1, "kind": "array", "workload": {...}, "modes": [{"dataflow": {...}, "nets": {...}}],
     "graph": {"nodes": [...], "edges": [...], "sigma": {...}, ...},
     "naive_bits": int, "lp_bits": int}

FU coordinates are lists, mode keys are decimal strings; everything else is plain JSON.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..affine.dataflow import Dataflow
from ..affine.reuse import Reuse
from ..affine.workload import Affine, Tensor, Workload
from ..arch.banking import Layout, PortAddr
from ..arch.graph import ArchGraph, ModeArch, TensorNet
from ..design import ArrayDesign
from ..errors import LegoError
from ..prim.graph import Edge, Node, PrimGraph

DESIGN_SCHEMA = 1
FILE = "design.json"


def _t(x):
    """A FU coordinate (tuple of ints) or None, from its JSON list."""
    return None if x is None else tuple(int(v) for v in x)


def _tt(x) -> tuple:
    return tuple(tuple(int(v) for v in r) for r in x)


# --------------------------------------------------------------------------- writing

def _workload(w: Workload) -> dict:
    return {"name": w.name, "iterators": list(w.iterators), "extents": list(w.extents), "body": w.body,
            "params": [list(p) for p in w.params],
            "tensors": [{"name": t.name, "role": t.role, "dtype": t.dtype, "shape": list(t.shape), "pad": t.pad,
                         "index": [[list(a.coeffs), a.const] for a in t.index]} for t in w.tensors]}


def _dataflow(df: Dataflow) -> dict:
    return {"name": df.name, "A_T": [list(r) for r in df.A_T], "A_S": [list(r) for r in df.A_S], "b": list(df.b),
            "T": list(df.T), "P": list(df.P), "c": list(df.c), "time_names": list(df.time_names)}


def _port(p: PortAddr) -> dict:
    return {"fu": list(p.fu), "bank": p.bank, "alpha": list(p.alpha), "beta": p.beta, "k": list(p.k)}


def _net(n: TensorNet) -> dict:
    L = n.layout
    return {"tensor": n.tensor, "role": n.role,
            "parent": [[list(s), None if p is None else list(p), int(d)] for s, (p, d) in n.parent.items()],
            "ports": [_port(p) for p in n.ports],
            "layout": {"tensor": L.tensor, "shape": list(L.shape), "g": list(L.g), "B": list(L.B),
                       "replicated": L.replicated, "bank_ids": list(L.bank_ids), "E": list(L.E), "depth": L.depth},
            "reuse": {"spatial": [list(v) for v in n.reuse.spatial], "temporal": [list(v) for v in n.reuse.temporal],
                      "full": [list(v) for v in n.reuse.full], "held": n.reuse.held},
            "M": n.M.tolist(), "N": n.N.tolist(), "k0": n.k0.tolist()}


def _attr(v):
    if isinstance(v, PortAddr):
        return {"__port__": _port(v)}
    if isinstance(v, dict):
        return {"__dict__": [[_attr(k), _attr(x)] for k, x in v.items()]}
    if isinstance(v, tuple):
        return {"__tuple__": [_attr(x) for x in v]}
    if isinstance(v, list):
        return [_attr(x) for x in v]
    return v


def _graph(pg: PrimGraph) -> dict:
    return {"nodes": [{"id": n.id, "kind": n.kind, "width": n.width,
                       "fu": [[m, None if f is None else list(f)] for m, f in n.fu.items()],
                       "lat": n.lat, "delay": n.delay, "attrs": _attr(n.attrs)} for n in pg.nodes.values()],
            "edges": [{"src": e.src, "dst": e.dst, "slot": e.slot, "delta": [[m, d] for m, d in e.delta.items()]}
                      for e in pg.edges],
            "modes": pg.modes, "sigma": pg.sigma, "shared": pg.shared, "passes": list(pg.passes),
            "acc_bits": pg.acc_bits, "fresh": [[m, list(v)] for m, v in pg.fresh.items()],
            # the LP's size and result; its solve time is a measurement (report.json), so the file is
            # the same for the same design
            "lp": {k: v for k, v in pg.lp.items() if k != "solve_seconds"}}


def dump(d: ArrayDesign) -> dict:
    return {"schema": DESIGN_SCHEMA, "kind": "array", "workload": _workload(d.workload),
            "modes": [{"dataflow": _dataflow(m.df), "nets": {k: _net(n) for k, n in m.nets.items()}}
                      for m in d.arch.modes],
            "graph": _graph(d.pg), "naive_bits": d.naive_bits, "lp_bits": d.lp_bits}


def dumps(d: ArrayDesign) -> str:
    return json.dumps(dump(d), separators=(",", ":")) + "\n"


# --------------------------------------------------------------------------- reading

def _load_workload(x: dict) -> Workload:
    ts = tuple(Tensor(t["name"], t["role"], t["dtype"], tuple(Affine(tuple(c), int(k)) for c, k in t["index"]),
                      tuple(t["shape"]), bool(t["pad"])) for t in x["tensors"])
    return Workload(x["name"], tuple(x["iterators"]), tuple(x["extents"]), ts, x["body"],
                    tuple((str(k), int(v)) for k, v in x["params"]))


def _load_df(x: dict) -> Dataflow:
    return Dataflow(x["name"], _tt(x["A_T"]), _tt(x["A_S"]), tuple(x["b"]), tuple(x["T"]), tuple(x["P"]),
                    tuple(x["c"]), tuple(x["time_names"]))


def _load_port(x: dict) -> PortAddr:
    return PortAddr(_t(x["fu"]), int(x["bank"]), tuple(x["alpha"]), int(x["beta"]), tuple(x["k"]))


def _load_net(x: dict) -> TensorNet:
    L = x["layout"]
    lay = Layout(L["tensor"], tuple(L["shape"]), tuple(L["g"]), tuple(L["B"]), bool(L["replicated"]),
                 tuple(L["bank_ids"]), tuple(L["E"]), int(L["depth"]))
    r = x["reuse"]
    reuse = Reuse(x["tensor"], _tt(r["spatial"]), _tt(r["temporal"]), _tt(r["full"]), bool(r["held"]))
    parent = {_t(s): (_t(p), int(d)) for s, p, d in x["parent"]}
    arr = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    M = arr(x["M"]).reshape(len(L["shape"]), -1)
    return TensorNet(x["tensor"], x["role"], parent, tuple(_load_port(p) for p in x["ports"]), lay, reuse, M,
                     arr(x["N"]).reshape(len(L["shape"]), -1), arr(x["k0"]))


def _load_attr(v):
    if isinstance(v, dict):
        if "__port__" in v:
            return _load_port(v["__port__"])
        if "__dict__" in v:
            return {_load_attr(k): _load_attr(x) for k, x in v["__dict__"]}
        if "__tuple__" in v:
            return tuple(_load_attr(x) for x in v["__tuple__"])
    if isinstance(v, list):
        return [_load_attr(x) for x in v]
    return v


def _load_graph(x: dict) -> PrimGraph:
    nodes = {n["id"]: Node(n["id"], n["kind"], int(n["width"]), {int(m): _t(f) for m, f in n["fu"]}, int(n["lat"]),
                           float(n["delay"]), _load_attr(n["attrs"])) for n in x["nodes"]}
    edges = tuple(Edge(e["src"], e["dst"], e["slot"], {int(m): int(d) for m, d in e["delta"]}) for e in x["edges"])
    return PrimGraph(nodes, edges, int(x["modes"]), {k: int(v) for k, v in x["sigma"].items()}, bool(x["shared"]),
                     tuple(x["passes"]), int(x["acc_bits"]), {int(m): tuple(v) for m, v in x["fresh"]}, dict(x["lp"]))


def load(doc: dict) -> ArrayDesign:
    if not isinstance(doc, dict) or doc.get("kind") != "array":
        raise LegoError(f"{FILE}: not an array design")
    if doc.get("schema") != DESIGN_SCHEMA:
        raise LegoError(f"{FILE}: schema {doc.get('schema')!r} is not supported (this lego reads schema "
                        f"{DESIGN_SCHEMA}); regenerate the design with this lego")
    w = _load_workload(doc["workload"])
    modes = tuple(ModeArch(i, _load_df(m["dataflow"]), {k: _load_net(n) for k, n in m["nets"].items()})
                  for i, m in enumerate(doc["modes"]))
    pg = _load_graph(doc["graph"])
    return ArrayDesign(w, ArchGraph(w, modes), pg, int(doc["naive_bits"]), int(doc["lp_bits"]), dict(pg.lp))


def read(design_dir: Path) -> ArrayDesign:
    p = Path(design_dir) / FILE
    if not p.is_file():
        raise LegoError(f"'{design_dir}' has no {FILE} (regenerate it with this lego)")
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError:
        raise LegoError(f"{p}: not valid JSON") from None
    try:
        return load(doc)
    except (KeyError, TypeError, ValueError) as e:
        raise LegoError(f"{p}: malformed ({type(e).__name__}: {e})") from None

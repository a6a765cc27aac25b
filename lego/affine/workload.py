"""Workload IR: an affine loop nest over a box of iterators, with tensors accessed by affine maps.

``d = A_D · i + a_D`` for every tensor D. The body is a functional unit (``mac``: Y += X * W).
User workloads come from YAML/JSON files (safe loader only: tags that build objects are refused).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import LegoError

DTYPES = {"int4": (4, True), "int8": (8, True), "uint8": (8, False), "int12": (12, True),
          "int16": (16, True), "uint16": (16, False), "int32": (32, True), "int48": (48, True),
          "int64": (64, True)}
BODIES = ("mac",)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def dtype_for(bits: int, signed: bool = True) -> str:
    for name, (b, s) in DTYPES.items():
        if b == bits and s == signed:
            return name
    raise LegoError(f"--bits: {bits}-bit {'signed' if signed else 'unsigned'} data is not supported "
                    f"(allowed: 4, 8, 12, 16)")


def dtype_info(name: str) -> tuple[int, bool]:
    """(bits, signed) of a dtype: the user-facing names in DTYPES, or any ``int<N>``/``uint<N>`` (N in
    1..64) that generated datapaths use internally (e.g. SpAtten's int10 K/V, int17 probabilities)."""
    if name in DTYPES:
        return DTYPES[name]
    m = re.fullmatch(r"(u?)int(\d+)", name)
    if m and 1 <= int(m.group(2)) <= 64:
        return int(m.group(2)), not m.group(1)
    raise LegoError(f"dtype: '{name}' is not intN/uintN")


def numpy_dtype(bits: int, signed: bool) -> np.dtype:
    for b in (8, 16, 32, 64):
        if bits <= b:
            return np.dtype(f"{'int' if signed else 'uint'}{b}")
    raise LegoError(f"dtype: {bits} bits is too wide")


@dataclass(frozen=True)
class Affine:
    """``Σ coeffs[k]·i_k + const`` over the workload's iterators."""
    coeffs: tuple[int, ...]
    const: int = 0

    def render(self, names: tuple[str, ...]) -> str:
        parts = []
        for c, n in zip(self.coeffs, names):
            if c:
                parts.append(f"{'' if c == 1 else '-' if c == -1 else str(c) + '*'}{n}")
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts).replace("+ -", "- ")


@dataclass(frozen=True)
class Tensor:
    name: str
    role: str            # "input" | "output"
    dtype: str
    index: tuple[Affine, ...]
    shape: tuple[int, ...]
    pad: bool = False    # inputs only: reads outside ``shape`` return 0 (zero padding)

    @property
    def bits(self) -> int:
        return dtype_info(self.dtype)[0]

    @property
    def signed(self) -> bool:
        return dtype_info(self.dtype)[1]

    @property
    def vbits(self) -> int:
        """Width of the value in a signed two's-complement container (unsigned types need one more bit)."""
        return self.bits + (0 if self.signed else 1)

    @property
    def np_dtype(self) -> np.dtype:
        return numpy_dtype(self.bits, self.signed)


@dataclass(frozen=True)
class Workload:
    name: str
    iterators: tuple[str, ...]
    extents: tuple[int, ...]
    tensors: tuple[Tensor, ...]
    body: str = "mac"
    params: tuple[tuple[str, int], ...] = ()   # the user-facing shape (e.g. M=37), for the manifest

    @cached_property
    def inputs(self) -> tuple[Tensor, ...]:
        return tuple(t for t in self.tensors if t.role == "input")

    @cached_property
    def output(self) -> Tensor:
        return next(t for t in self.tensors if t.role == "output")

    def tensor(self, name: str) -> Tensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def access(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(A_D, a_D) as integer numpy arrays."""
        t = self.tensor(name)
        A = np.array([a.coeffs for a in t.index], dtype=np.int64).reshape(len(t.index), len(self.iterators))
        return A, np.array([a.const for a in t.index], dtype=np.int64)

    @property
    def macs(self) -> int:
        return int(np.prod(self.extents, dtype=np.int64))

    @property
    def shape_dict(self) -> dict[str, int]:
        return dict(self.params) if self.params else dict(zip(self.iterators, self.extents))


def index_range(w: Workload, t: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of each index expression over the iteration box."""
    A = np.array([x.coeffs for x in t.index], dtype=np.int64).reshape(len(t.index), len(w.iterators))
    a = np.array([x.const for x in t.index], dtype=np.int64)
    hi = np.array(w.extents, dtype=np.int64) - 1
    lo = a + np.minimum(A, 0) @ hi
    up = a + np.maximum(A, 0) @ hi
    return lo, up


def validate(w: Workload) -> Workload:
    """Legality checks shared by built-in and user workloads; returns ``w``."""
    if w.body not in BODIES:
        raise LegoError(f"body: unknown functional unit '{w.body}' (allowed: {', '.join(BODIES)})")
    for n, e in zip(w.iterators, w.extents):
        if not _NAME.match(n):
            raise LegoError(f"iterators: '{n}' is not a valid iterator name")
        if e < 1:
            raise LegoError(f"iterators.{n}: extent must be a positive integer, got {e}")
    if len(set(w.iterators)) != len(w.iterators):
        raise LegoError("iterators: duplicate iterator names")
    outs = [t for t in w.tensors if t.role == "output"]
    ins = [t for t in w.tensors if t.role == "input"]
    if len(outs) != 1:
        raise LegoError(f"tensors: a 'mac' workload needs exactly one output tensor, got {len(outs)}")
    if len(ins) != 2:
        raise LegoError(f"tensors: a 'mac' workload needs exactly two input tensors, got {len(ins)}")
    for t in w.tensors:
        if len(t.shape) != len(t.index):
            raise LegoError(f"tensors.{t.name}: shape has rank {len(t.shape)} but index has rank {len(t.index)}")
        lo, up = index_range(w, t)
        for m, (l, u, s) in enumerate(zip(lo, up, t.shape)):
            if s < 1:
                raise LegoError(f"tensors.{t.name}.shape[{m}]: must be positive, got {s}")
            if (l < 0 or u >= s) and not (t.pad and t.role == "input"):
                raise LegoError(f"tensors.{t.name}.index[{m}]: access '{t.index[m].render(w.iterators)}' "
                                f"ranges over [{l}, {u}] but the dimension has size {s} (out-of-range access)")
    o = w.output
    if not o.signed or o.bits < max(i.bits for i in ins):
        raise LegoError(f"tensors.{o.name}.dtype: the output must be a signed type at least as wide as the inputs")
    A, _ = w.access(o.name)
    for k, n in enumerate(w.iterators):
        if not A[:, k].any() and not any(w.access(i.name)[0][:, k].any() for i in ins):
            raise LegoError(f"iterators.{n}: iterator is used by no tensor")
    return w


# ---------------------------------------------------------------- parsing user files

_TERM = re.compile(r"\s*([+-]?)\s*(?:(\d+)\s*\*\s*([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*\*\s*(\d+)|(\d+)|([A-Za-z_]\w*))\s*")


def parse_affine(expr: object, iterators: tuple[str, ...], where: str) -> Affine:
    """Parse ``2*h + r - 1`` style expressions. Anything non-affine is refused."""
    if isinstance(expr, bool):
        raise LegoError(f"{where}: '{expr}' is not an affine index expression")
    if isinstance(expr, int):
        return Affine((0,) * len(iterators), expr)
    if not isinstance(expr, str) or not expr.strip():
        raise LegoError(f"{where}: '{expr}' is not an affine index expression")
    s = expr.strip()
    coeffs = [0] * len(iterators)
    const = 0
    pos = 0
    first = True
    while pos < len(s):
        m = _TERM.match(s, pos)
        if not m or m.end() == pos or (not first and not m.group(1)):
            raise LegoError(f"{where}: '{expr}' is not affine (allowed: integer combinations of "
                            f"iterators {', '.join(iterators)} plus a constant)")
        sign = -1 if m.group(1) == "-" else 1
        first = False
        if m.group(6):
            const += sign * int(m.group(6))
        else:
            name = m.group(3) or m.group(4) or m.group(7)
            c = int(m.group(2) or m.group(5) or 1)
            if name not in iterators:
                raise LegoError(f"{where}: unknown iterator '{name}' in '{expr}' "
                                f"(iterators: {', '.join(iterators)})")
            coeffs[iterators.index(name)] += sign * c
        pos = m.end()
    return Affine(tuple(coeffs), const)


def _safe_load(path: Path) -> object:
    import yaml

    text = path.read_text()
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise LegoError(f"{path.name}: invalid JSON ({e.msg} at line {e.lineno})") from None
    class _Unique(yaml.SafeLoader):
        """safe_load that refuses a key given twice in one mapping (YAML would keep the last silently)."""

    def _mapping(loader, node, deep=False):
        seen = {}
        for k, _ in node.value:
            key = loader.construct_object(k, deep=deep)
            if key in seen:
                raise LegoError(f"{path.name}: '{key}' is declared twice (line {seen[key] + 1} and line "
                                f"{k.start_mark.line + 1})")
            seen[key] = k.start_mark.line
        return yaml.SafeLoader.construct_mapping(loader, node, deep)
    _Unique.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    try:
        return yaml.load(text, Loader=_Unique)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as e:
        raise LegoError(f"{path.name}: YAML tag not allowed ({(e.problem or 'unsafe tag').strip()}); "
                        f"workload files are plain data") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise LegoError(f"{path.name}: invalid YAML{at}") from None


def parse_workload_file(path: Path) -> Workload:
    path = Path(path)
    if not path.is_file():
        raise LegoError(f"--workload: '{path}' is neither a built-in workload nor a readable file")
    doc = _safe_load(path)
    if not isinstance(doc, dict):
        raise LegoError(f"{path.name}: top level must be a mapping with name, iterators, tensors, body")
    unknown = set(doc) - {"name", "iterators", "tensors", "body"}
    if unknown:
        raise LegoError(f"{path.name}: unknown key '{sorted(unknown)[0]}' (allowed: name, iterators, tensors, body)")
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.match(name):
        raise LegoError(f"name: '{name}' must be an identifier")
    its = doc.get("iterators")
    if not isinstance(its, dict) or not its:
        raise LegoError("iterators: must be a non-empty mapping name -> extent")
    for k, v in its.items():
        if not isinstance(v, int) or isinstance(v, bool):
            raise LegoError(f"iterators.{k}: extent must be an integer, got {v!r}")
    iterators = tuple(str(k) for k in its)
    extents = tuple(int(v) for v in its.values())
    tdoc = doc.get("tensors")
    if not isinstance(tdoc, dict) or not tdoc:
        raise LegoError("tensors: must be a non-empty mapping name -> {index, role, dtype}")
    tensors = []
    for tn, spec in tdoc.items():
        if not isinstance(spec, dict):
            raise LegoError(f"tensors.{tn}: must be a mapping with index, role, dtype")
        bad = set(spec) - {"index", "role", "dtype", "shape", "pad"}
        if bad:
            raise LegoError(f"tensors.{tn}: unknown key '{sorted(bad)[0]}' (allowed: index, role, dtype, shape, pad)")
        role = spec.get("role")
        if role not in ("input", "output"):
            raise LegoError(f"tensors.{tn}.role: '{role}' (allowed: input, output)")
        dtype = spec.get("dtype", "int8" if role == "input" else "int32")
        if dtype not in DTYPES:
            raise LegoError(f"tensors.{tn}.dtype: '{dtype}' (allowed: {', '.join(DTYPES)})")
        idx = spec.get("index")
        if not isinstance(idx, list) or not idx:
            raise LegoError(f"tensors.{tn}.index: must be a non-empty list of affine expressions")
        index = tuple(parse_affine(e, iterators, f"tensors.{tn}.index[{m}]") for m, e in enumerate(idx))
        wtmp = Workload(name, iterators, extents, ())
        if "shape" in spec:
            shp = spec["shape"]
            if not isinstance(shp, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in shp):
                raise LegoError(f"tensors.{tn}.shape: must be a list of integers")
            shape = tuple(shp)
        else:
            t0 = Tensor(str(tn), role, dtype, index, (1,) * len(index))
            lo, up = index_range(wtmp, t0)
            if (lo < 0).any():
                m = int(np.argmax(lo < 0))
                raise LegoError(f"tensors.{tn}.index[{m}]: access reaches {lo[m]} < 0 (out-of-range access; "
                                f"give an explicit shape and pad: true for zero padding)")
            shape = tuple(int(u) + 1 for u in up)
        pad = spec.get("pad", False)
        if not isinstance(pad, bool):
            raise LegoError(f"tensors.{tn}.pad: must be true or false")
        tensors.append(Tensor(str(tn), role, dtype, index, shape, pad))
    body = doc.get("body", "mac")
    return validate(Workload(name, iterators, extents, tuple(tensors), body))

"""Property: random affine `mac` workloads, dataflows and shapes generate RTL equal to numpy (Icarus),
with the cycle engine's cycles exact. 50 cases by default, 200 under -m slow. A third of the cases drive
every input at one end of its range, so the sums reach the bound the accumulator width is inferred from."""
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from lego.affine.dataflow import _tiled, check_dataflow
from lego.affine.widths import value_range
from lego.affine.workload import parse_workload_file
from lego.arch import build_arch
from lego.errors import LegoError
from lego.generate import generate
from simulator.engine import get_engine


@st.composite
def cases(draw):
    n = draw(st.integers(3, 4))
    its = [f"i{k}" for k in range(n)]
    ext = {i: draw(st.integers(1, 5)) for i in its}
    out = draw(st.lists(st.sampled_from(its), min_size=1, max_size=2, unique=True))
    rest = [i for i in its if i not in out]
    xa = draw(st.lists(st.sampled_from(its), min_size=1, max_size=2, unique=True))
    wa = sorted(set(rest) - set(xa)) or draw(st.lists(st.sampled_from(its), min_size=1, max_size=2, unique=True))
    window = draw(st.booleans()) and len(xa) >= 1 and rest
    xidx = list(xa)
    if window:                                   # a sliding-window access "a + r"
        r = draw(st.sampled_from(rest))
        xidx[0] = f"{xa[0]} + {r}"
    spec = {"name": "rnd", "iterators": ext,
            "tensors": {"X": {"index": xidx, "role": "input", "dtype": draw(st.sampled_from(["int8", "int4"]))},
                        "W": {"index": wa, "role": "input", "dtype": draw(st.sampled_from(["int8", "uint8"]))},
                        "Y": {"index": out, "role": "output", "dtype": "int32"}}}
    rows = draw(st.sampled_from(its))
    cols = draw(st.sampled_from([i for i in its if i != rows]))
    inner = draw(st.sampled_from(its))
    c = draw(st.sampled_from([(1, 1), (0, 0), (1, 0), (0, 1)]))
    arr = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    corner = draw(st.sampled_from([None, None, (0, 0), (0, 1), (1, 0), (1, 1)]))
    return spec, rows, cols, inner, c, arr, draw(st.integers(0, 1000)), corner


def _corner_inputs(w, corner):
    """Every element of X and W at one end of its range: each output's sum is its term count times one
    extreme product, the largest magnitude the accumulator width (lego/affine/widths.py) must hold."""
    return {t.name: np.full(t.shape, value_range(t)[k], t.np_dtype) for t, k in zip(w.inputs, corner)}


def _run(case):
    spec, rows, cols, inner, c, arr, seed, corner = case
    with tempfile.TemporaryDirectory() as td:
        f = Path(td) / "rnd.yaml"
        f.write_text(yaml.safe_dump(spec))
        try:
            w = parse_workload_file(f)
            df = check_dataflow(w, _tiled(w, "rnd", rows, cols, inner, arr, c))
            build_arch(w, [df])
        except LegoError:
            return "skip"                       # refused with a clear error: not a property failure
        d = Path(td) / "dflow.yaml"
        d.write_text(yaml.safe_dump({"name": "rnd", "spatial": [rows, cols], "inner": inner, "c": list(c)}))
        out = Path(td) / "out"
        generate(str(f), None, f"{arr[0]}x{arr[1]}", (str(d),), 8, True, out)
        inputs = _corner_inputs(w, corner) if corner else None
        rep = get_engine("icarus").run(out, seed=seed, inputs=inputs)
        cyc = get_engine("cycle").run(out, seed=seed, inputs=inputs)
        assert rep.match and cyc.match, (spec, rows, cols, inner, c, arr, corner)
        assert rep.cycles == cyc.cycles == rep.extra["cycles_register"]
        assert np.array_equal(rep.outputs["Y"], cyc.outputs["Y"])
    return "ok"


@pytest.mark.rtl
@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(cases())
def test_random_affine_rtl_equals_numpy(case):
    _run(case)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases())
def test_random_affine_rtl_equals_numpy_slow(case):
    _run(case)

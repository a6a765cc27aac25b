"""lego_dota (lego gen --accelerator dota): generated through lego.cli.main, lint-clean with lego's backend
waivers only, and `lego sim DIR` bit-exact against sw_reference.dota_fx and cycle-exact against the exact
model on the cycle engine, Icarus and Verilator: an attention head (Q.K^T -> softmax -> .V) and a linear
layer with its GELU and LayerNorm epilogues, at 4 and 8 bits, with and without ADC / input sharing. The
default set runs tiny shapes; bigger ones are `slow`."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from accelerators.dota import ACCELERATOR, load_config
from accelerators.dota.rtl import host
from accelerators.dota.rtl.cycles import gemm_cycles, job_cycles
from accelerators.dota.rtl.geometry import geometry
from lego.cli import main
from lego.toolchain import require
from sw_reference import dota_fx as fx

TINY = """nh: 2
nw: 2
n_lambda: 2
tiles: 2
tau: 2
rtl:
  tokens: 4
  head_dim: 3
  max_n1: 8
  max_d: 8
  max_n2: 8
  ln_n: 6
  linear_n1: 6
  linear_d: 7
  linear_n2: 5
"""
# (name, extra YAML): 8 bits with 3 cores, tau 3, no ADC and no input sharing; crossbar (tau 1, no sharing)
VARIANTS = {"4bit": "", "8bit-noshare": "bits: 8\ncores_per_tile: 3\ntau: 3\nadc_sharing: false\n"
                                        "input_sharing: false\ntiles: 1\n",
            "4bit-crossbar": "arch: crossbar\nn_lambda: 3\n"}
# several row groups, column chunks and steps (slow under Verilator)
MEDIUM = "nh: 4\nnw: 4\nn_lambda: 4\ntiles: 2\ntau: 2\n"


def _gen(tmp: Path, text: str, name: str) -> Path:
    (tmp / f"{name}.yaml").write_text(text)
    out = tmp / name
    assert main(["gen", "--accelerator", "dota", "--config", str(tmp / f"{name}.yaml"), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dota")
    return {k: _gen(tmp, TINY + v, k) for k, v in VARIANTS.items()}


def _sim(capsys, d: Path, engine: str, *extra):
    code = main(["sim", str(d), "--engine", engine, "--json", *extra])
    cap = capsys.readouterr()
    return code, (json.loads(cap.out) if cap.out else None), cap.err


def test_manifest_and_files(designs):
    d = designs["4bit"]
    man = json.loads((d / "manifest.json").read_text())
    assert man["top"] == "lego_dota" and man["accelerator"] == "dota" and man["kind"] == "accelerator"
    assert (d / "files.f").read_text() == "lego_dota.v\n"
    for f in ("lego_dota.core", "lint.vlt", "report.json", "config.yaml", "tb/tb_dota.py", "tb/run.py",
              "tb/test_design.py"):
        assert (d / f).is_file(), f
    assert man["jobs"] == ["attention", "linear+gelu", "linear+layernorm"]
    assert {t for t, v in man["tensors"].items() if v["role"] == "input"} == {"Q", "K", "V", "W", "X", "gamma", "beta"}
    assert man["accumulator"]["workload"] == "ACC[r, w] += CODE[k, r, w] * V[k]"
    geo = geometry(load_config(d / "config.yaml"))
    assert man["geometry"]["ACC"] == geo.ACC and man["geometry"]["KD"] == geo.KD == 2
    assert man["cycles_predicted"] == sum(man["cycles_per_job"].values()) \
        == ACCELERATOR.cycles(load_config(d / "config.yaml"))


def test_cycle_model_by_hand():
    """The tiny design's attention job, phase by phase: 1 (start) + GEMM0 + softmax rows + GEMM1."""
    geo = geometry(load_config(nh=2, nw=2, n_lambda=2, tiles=2, tau=2,
                               rtl=dict(tokens=4, head_dim=3, max_n1=8, max_d=8, max_n2=8, ln_n=6, linear_n1=6,
                                        linear_d=7, linear_n2=5)))
    lat = 2                                             # the lego stream's latency (the manifest's acc_latency)
    # Q.K^T: L = 4 rows in groups of T*Nh = 4 -> G = 1; N2 = 4 columns in chunks of 2 -> J = 2; D = 3 in
    # chunks of Nl = 2 over C = 2 cores -> S = 1. P.V: D = 4 -> S = 1, N2 = 3 -> J = 2.
    assert geo.counts(4, 3, 4) == (1, 2, 1) and geo.counts(4, 4, 3) == (1, 2, 1)
    assert gemm_cycles(1, 2, 1, lat) == 2 + 3 + 2
    smc = 3 * 4 + 22                                    # softmax_cycles(4)
    want = 1 + 7 + (4 * (smc + 1) + 1) + 7
    regs = dict(kind=1, post=0, g0=1, j0=2, s0=1, g1=1, j1=2, s1=1, n1=4, n2=4)
    assert job_cycles(geo, regs, lat) == want == 156
    # a linear layer [6 x 7] . [7 x 5]: G = 2, J = 3, S = 2 -> 12 steps; GELU 30 elements + 5; LayerNorm
    # 5 columns of 2*6 + 23 + 1 cycles + 1
    lin = dict(kind=0, post=1, g0=2, j0=3, s0=2, n1=6, n2=5)
    assert job_cycles(geo, lin, lat) == 1 + 12 + 5 + 30 + 5
    assert job_cycles(geo, dict(lin, post=2), lat) == 1 + 12 + 5 + 5 * (2 * 6 + 23 + 1) + 1


def test_lint_clean(designs):
    """verilator --lint-only -Wall with the directory's lint.vlt (lego's backend waivers, nothing added)."""
    from lego.emit.files import LINT_VLT
    for d in designs.values():
        assert (d / "lint.vlt").read_text() == LINT_VLT
        r = subprocess.run([require("verilator"), "--lint-only", "-Wall", "lint.vlt", "-f", "files.f",
                            "--top-module", "lego_dota"], cwd=d, capture_output=True, text=True)
        assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr[-3000:]


def test_cycle_engine(designs, capsys):
    code, res, err = _sim(capsys, designs["4bit"], "cycle")
    assert code == 0 and res["match"] and res["cycles"] == res["cycles_predicted"], err
    assert set(res["outputs"]) == {"O", "Pc", "Y", "Z_gelu", "Z_layernorm"}


@pytest.mark.rtl
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_icarus_bit_and_cycle_exact(designs, capsys, variant):
    d = designs[variant]
    code, res, err = _sim(capsys, d, "icarus")
    assert code == 0, err
    assert res["match"] and res["max_abs_err"] == 0 and res["cycles"] == res["cycles_predicted"]
    _, ref, _ = _sim(capsys, d, "cycle")
    assert res["outputs"] == ref["outputs"]                      # the golden model's, on the same inputs
    o = np.array(res["outputs"]["Pc"])
    assert o.min() >= 0 and o.max() > 0                          # the softmax did produce codes


@pytest.mark.rtl
def test_verilator_bit_and_cycle_exact(designs, capsys):
    code, res, err = _sim(capsys, designs["4bit"], "verilator")
    assert code == 0, err
    assert res["match"] and res["cycles"] == res["cycles_predicted"]


@pytest.mark.rtl
def test_inputs_and_outputs_npz(designs, capsys, tmp_path):
    """--inputs with the manifest's tensors (another seed's codes) and --out: the golden model's outputs."""
    d = designs["4bit"]
    cfg = load_config(d / "config.yaml")
    geo = geometry(cfg)
    ins = host.default_inputs(geo, 3, (6, 7, 5), seed=9)
    np.savez(tmp_path / "in.npz", **ins)
    code, res, err = _sim(capsys, d, "icarus", "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz"))
    assert code == 0 and res["match"], err
    geo_kw = dict(n_lambda=2, cores=2, tau=2, adc_bits=4)
    sh = fx.auto_adc_shift(ins["Q"], ins["K"].T, **geo_kw)
    S = fx.crossbar_gemm_fx(ins["Q"], ins["K"].T, adc_shift=sh, **geo_kw)
    from sw_reference.softmax_fx import softmax_fx
    pc = fx.requant_unsigned(softmax_fx(S, geo.softmax_mult), 15, 4)
    out = np.load(tmp_path / "o.npz")
    assert (out["Pc"] == pc).all()
    assert (out["Y"] == fx.crossbar_gemm_fx(ins["W"], ins["X"], adc_shift=fx.auto_adc_shift(ins["W"], ins["X"], **geo_kw),
                                            **geo_kw)).all()
    bad = dict(ins, Q=ins["Q"][:3])
    np.savez(tmp_path / "bad.npz", **bad)
    code, _, err = _sim(capsys, d, "icarus", "--inputs", str(tmp_path / "bad.npz"))
    assert code == 2 and err.startswith("lego: error: --inputs: tensor 'Q' has shape [3, 3], expected [4, 3]")


def test_standalone_tb(designs):
    """python -m pytest DIR/tb, the directory alone with the installed package (cycle and Icarus here; the
    Verilator case of the same file runs in test_verilator's build cache when both run)."""
    d = designs["4bit"]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tb", "-k", "not verilator"],
                       cwd=d, capture_output=True, text=True)
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


GEN_ERRORS = [
    ("preset: mrr\n", "kind: the RTL is DOTA's periphery; the mrr baseline has none"),
    ("arch: broadcast\n", "arch: the RTL implements the crossbar topology (arch all or crossbar), got 'broadcast'"),
    ("rtl:\n  tokens: 40\n", "rtl.tokens: an attention head needs L <= max_n1, max_d and max_n2, got 40 (limit 24)"),
    ("rtl:\n  ln_n: 30\n", "rtl.ln_n: LayerNorm rows are a GEMM's n1 and the next layer's d"),
    ("rtl:\n  tiles: 17\n", "rtl.tiles: at most 16 tiles in generated RTL, got 17"),
    ("rtl:\n  max_d: 0\n", "rtl.max_d: must be > 0, got 0"),
    ("w_bits: 8\n", "w_bits: the RTL's DAC words are one width; needs w_bits == in_bits, got 8"),
]


@pytest.mark.parametrize("text,msg", GEN_ERRORS, ids=[m.split(":")[0] for _, m in GEN_ERRORS])
def test_gen_refusals(capsys, tmp_path, text, msg):
    (tmp_path / "c.yaml").write_text(text)
    code = main(["gen", "--accelerator", "dota", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"lego: error: {msg}") and err.count("\n") == 1, err
    assert not (tmp_path / "d").exists()


# ------------------------------------------------------------------------------------------ slow
@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dota-medium")
    return {b: _gen(tmp, MEDIUM + f"bits: {b}\n", f"m{b}") for b in (4, 8)}


@pytest.mark.slow
@pytest.mark.rtl
@pytest.mark.parametrize("engine", ["icarus", "verilator"])
@pytest.mark.parametrize("bits", [4, 8])
def test_medium_bit_and_cycle_exact(medium, capsys, engine, bits):
    """4x4 nodes, 4 wavelengths, 2 tiles x 2 cores: L = 12 (3 row groups, 3 column chunks), a linear layer
    24 x 20 x 10 (3 groups x 3 chunks x 3 steps), under both simulators at 4 and 8 bits, two seeds."""
    for seed in (0, 5):
        code, res, err = _sim(capsys, medium[bits], engine, "--seed", str(seed))
        assert code == 0 and res["match"] and res["cycles"] == res["cycles_predicted"], err


@pytest.mark.slow
@pytest.mark.rtl
def test_verilator_variants(designs, capsys):
    for v in ("8bit-noshare", "4bit-crossbar"):
        code, res, err = _sim(capsys, designs[v], "verilator")
        assert code == 0 and res["match"] and res["cycles"] == res["cycles_predicted"], (v, err)


@pytest.mark.slow
def test_synth_clean(designs, capsys, tmp_path):
    """lego synth DIR (generic Yosys): no latch, no combinational loop, check -assert passes; the photonic-core
    twins are black boxes (one per tile) and the rest is exactly the periphery that ``emit(twin=False)``
    writes with ports in their place, synthesized on its own."""
    from accelerators.dota.gen import emit, port_doc
    from accelerators.dota.rtl.top import PERIPHERY_TOP
    from lego.synth import synth
    code = main(["synth", str(designs["4bit"]), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    res = json.loads(out)
    assert res["latches"] == 0 and res["comb_loops"] == 0 and res["check"] == "pass" and res["memory_bits"] > 0
    geo = geometry(load_config(designs["4bit"] / "config.yaml"))
    assert res["blackboxes"] == {f"lego_dota.twin{t}": 1 for t in range(geo.T)}
    text, top = emit(geo, twin=False)
    p = tmp_path / "periphery"
    p.mkdir()
    (p / "p.v").write_text(text)
    (p / "files.f").write_text("p.v\n")
    (p / "manifest.json").write_text(json.dumps({"top": PERIPHERY_TOP, "ports": port_doc(top)}))
    per = synth(p)                      # the API: this bare directory is not a lego design (no schema_version)
    assert (res["cells"], res["flipflops"], res["memory_bits"]) == (per["cells"], per["flipflops"], per["memory_bits"])
    # the twins are synthesizable logic too
    assert main(["synth", str(designs["4bit"]), "--no-blackbox", "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["blackboxes"] == {} and full["latches"] == 0 and full["comb_loops"] == 0
    assert full["cells"] > res["cells"]

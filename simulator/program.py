"""Running a program (``lego compile``) on a programmable design: the cycle engine and the RTL.

The cycle engine runs the command stream through ``lego.prog.timing`` (exact dispatch edges; every unit's
busy time in closed form per command, so nothing inside a tile is stepped) and executes the data path as
blocked matrix products on a DRAM image (LOAD copies a tile, COMPUTE is one ``X_tile @ W_tile`` wrapped to
int32 and accumulated when asked, STORE writes the tile back). The RTL engines run the design's Verilog
under cocotb with the bench's pipelined-latency DRAM model (``DIR/tb/prog_bench.py``). Both return the one
Report; the outputs are checked against ``sw_reference.ops.gemm`` (hardware-im2col conv layers:
``conv_reference``).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from lego.emit.directory import read_manifest
from lego.errors import LegoError
from lego.prog import program as P
from lego.prog.model import layer_records
from lego.prog.spec import CSR, window_segments
from lego.prog.timing import dram_bw_words, program_cycles, with_dram_bw
from sw_reference.ops import conv2d, dwconv2d, gemm, wrap

from .report import Report

DEFAULT_LATENCY = 20
ENGINES = ("cycle", "icarus", "verilator")


def _np_dtype(bits: int) -> np.dtype:
    return np.dtype(f"<i{bits // 8}")


def _key(t: str, i: int, n: int) -> str:
    """npz key of tensor ``t`` of layer ``i`` of ``n``: X, W, Y for one layer, X_i, W_i, Y_i for several."""
    return t if n == 1 else f"{t}_{i}"


def _shape(rec: dict, t: str, squeeze: bool) -> list[int]:
    shape = rec["dram"][t]["shape"]
    return shape[1:] if squeeze else shape


def random_inputs(records: list[dict], bits: int, seed: int, squeeze: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    return {_key(t, i, len(records)): rng.integers(lo, hi, size=_shape(r, t, squeeze), dtype=np.int64)
            for i, r in enumerate(records) for t in ("X", "W")}


def check_inputs(records: list[dict], bits: int, inputs: dict, squeeze: bool = False) -> dict[str, np.ndarray]:
    out = {}
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    names = [_key(t, i, len(records)) for i in range(len(records)) for t in ("X", "W")]
    for i, r in enumerate(records):
        for t in ("X", "W"):
            k = _key(t, i, len(records))
            if k not in inputs:
                raise LegoError(f"--inputs: tensor '{k}' missing (needs {', '.join(names)})")
            a = np.asarray(inputs[k])
            want = _shape(r, t, squeeze)
            if list(a.shape) != list(want):
                raise LegoError(f"--inputs: {k} has shape {list(a.shape)}, the program's layer needs {want}")
            if not np.issubdtype(a.dtype, np.integer) or (a.size and (a.min() < lo or a.max() > hi)):
                raise LegoError(f"--inputs: {k} must hold integers in {lo}..{hi}")
            out[k] = a.astype(np.int64)
    return out


def dram_image(records: list[dict], bits: int, inputs: dict, size: int) -> np.ndarray:
    img = np.zeros(size, np.uint8)
    for i, r in enumerate(records):
        for t in ("X", "W"):
            d = r["dram"][t]
            raw = inputs[_key(t, i, len(records))].astype(_np_dtype(bits)).tobytes()
            img[d["addr"]:d["addr"] + len(raw)] = np.frombuffer(raw, np.uint8)
    return img


def read_y(rec: dict, img: np.ndarray, squeeze: bool = False) -> np.ndarray:
    d = rec["dram"]["Y"]
    return img[d["addr"]:d["addr"] + d["bytes"]].view("<i4").astype(np.int64).reshape(_shape(rec, "Y", squeeze))


def reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sw_reference's GEMM per group (a 2-D pair is one group)."""
    if x.ndim == 2:
        return gemm(x, w)
    return np.stack([gemm(a, b) for a, b in zip(x, w)]) if len(x) else np.zeros((0,), np.int64)


def window_tile(csr: dict, img: np.ndarray, eb: int, dt: np.dtype) -> np.ndarray:
    """The LD_ROWS x LD_COLS tile a windowed LOAD writes: each row the concatenation of its
    ``window_segments`` read from the DRAM image (a padding segment reads the zero region the host keeps
    zero: whatever the image holds there)."""
    rows = []
    for segs in window_segments(csr, eb):
        rows.append(b"".join(img[a:a + n * eb].tobytes() for a, n in segs))
    return np.frombuffer(b"".join(rows), dt).reshape(csr["LD_ROWS"], csr["LD_COLS"]).astype(np.int64)


def _spec(rec: dict):
    """The conv LayerSpec of a program's layer record (its ``shape``)."""
    from lego.prog.lower import LayerSpec
    sh = rec["shape"]
    dims = {k: sh[k] for k in ("N", "C", "H", "W", "K", "R", "S")}
    return LayerSpec(rec["name"], rec["op"], dims, tuple(sh["stride"]), tuple(sh["pads"]), sh["groups"],
                     tuple(sh.get("dilation", (1, 1))))


def conv_reference(rec: dict, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The output NHWC ``[N, Ho, Wo, K]`` of a hardware-im2col conv layer (``lego.prog.conv``'s placement:
    ``x`` NHWC, ``w`` ``[G, R, S, Cg, Kg]``), not by the code under test: ``sw_reference.ops.conv2d`` /
    ``dwconv2d`` per group on the NCHW tensors where stride and pads are one scalar each; otherwise (asymmetric
    stride or pads, which those take no argument for) the host's im2col (``lower.im2col``, channel-major
    columns, an algorithm independent of the window generator) and sw_reference's GEMM per group."""
    from lego.prog.lower import conv_output, conv_weights, im2col
    s = _spec(rec)
    G = s.groups
    xn = x.transpose(0, 3, 1, 2)                                       # NCHW
    _, R, S, cg, kg = w.shape
    wk = w.transpose(0, 4, 3, 1, 2).reshape(G * kg, cg, R, S)          # [K, Cg, R, S]
    if len(set(s.stride)) == 1 and len(set(s.pads)) == 1:
        st, pad, dil = s.stride[0], s.pads[0], s.dilation
        if s.op == "dwconv2d" and kg == 1 and G == s.dims["C"]:
            y = dwconv2d(xn, wk[:, 0], st, pad, dilation=dil)
        else:
            y = np.concatenate([conv2d(xn[:, g * cg:(g + 1) * cg], wk[g * kg:(g + 1) * kg], st, pad, dilation=dil)
                                for g in range(G)], axis=1)
    else:
        cols, wg = im2col(xn, s), conv_weights(wk, s)
        y = conv_output(np.stack([gemm(cols[g], wg[g]) for g in range(G)]), s)
    return y.transpose(0, 2, 3, 1)


def execute(prog: dict, cmds: list[dict], img: np.ndarray) -> np.ndarray:
    """The data path of the program on the DRAM image (in place): blocked matrix products per COMPUTE."""
    box = prog["box"]
    bits = prog["bits"]
    eb = bits // 8
    dt = _np_dtype(bits)
    spad = {(t, b): np.zeros(shape, np.int64) for t, shape in (("X", (box["M"], box["K"])), ("W", (box["K"], box["N"])))
            for b in (0, 1)}
    acc = {b: np.zeros((box["M"], box["N"]), np.int64) for b in (0, 1)}
    csr = {n: 0 for n in CSR}            # the shadow CSRs reset to 0, as the RTL's (and lego.prog.timing's)
    for c in cmds:
        op = c["op"]
        if op == "SET":
            csr[c["reg"]] = c["value"]
        elif op == "LOAD" and c.get("window"):
            spad[(c["tensor"], c["buf"])][:csr["LD_ROWS"], :csr["LD_COLS"]] = window_tile(csr, img, eb, dt)
        elif op == "LOAD":
            a, r, k, s = csr["LD_ADDR"], csr["LD_ROWS"], csr["LD_COLS"], csr["LD_STRIDE"]
            rows = np.lib.stride_tricks.as_strided(img[a:], shape=(r, k * eb), strides=(s, 1))
            spad[(c["tensor"], c["buf"])][:r, :k] = np.ascontiguousarray(rows).view(dt).reshape(r, k)
        elif op == "COMPUTE":
            mt, nt, kt = csr["TILE_I"], csr["TILE_J"], csr["TILE_K"]
            x = spad[("X", c["xbuf"])][:mt, :kt].astype(np.float64)
            w = spad[("W", c["wbuf"])][:kt, :nt].astype(np.float64)
            prod = np.rint(x @ w).astype(np.int64)        # exact: |sum| < 2**53 for 16-bit data, K < 2**20
            y = acc[c["ybuf"]]
            y[:mt, :nt] = wrap(prod + (y[:mt, :nt] if c["acc"] else 0), 32)
        elif op == "STORE":
            a, r, k, s = csr["ST_ADDR"], csr["ST_ROWS"], csr["ST_COLS"], csr["ST_STRIDE"]
            data = acc[c["buf"]][:r, :k].astype("<i4").view(np.uint8).reshape(r, 4 * k)
            for i in range(r):
                img[a + i * s:a + i * s + 4 * k] = data[i]
    return img


def run_rtl(design_dir: Path, engine: str, man: dict, header: dict, words: list[int], cmds: list[dict],
            img: np.ndarray, latency: int, predicted: int, waves: Path | None = None, beat_cycles: int = 1) -> dict:
    from .rtl import build_dir_for, run_bench
    design_dir = Path(design_dir)
    srcs = [design_dir / rel for rel in (design_dir / "files.f").read_text().split()]
    bd = build_dir_for(design_dir, engine)
    bd = bd.with_name(bd.name + "-prog")
    bd.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lego-prog-"))
    try:
        shutil.copy(design_dir / "tb" / "prog_bench.py", work / "prog_bench.py")
        (work / "dram.bin").write_bytes(img.tobytes())
        names = [" ".join(f"{k}={v}" for k, v in c.items()) for c in cmds]
        y = header["dram"]["Y"]
        plan = {"commands": words, "names": names, "dram_size": len(img), "dram_file": str(work / "dram.bin"),
                "latency": latency, "watchdog": 4 * predicted + 1000, "reads": [[y["addr"], y["bytes"]]]}
        if beat_cycles > 1:
            plan["beat_cycles"] = beat_cycles
        (work / "plan.json").write_text(json.dumps(plan))
        return run_bench(bd, work, engine, srcs, man["top"], "prog_bench", waves)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def simulate_program(design_dir: Path, program: Path, engine: str = "cycle", inputs: dict | None = None,
                     seed: int = 0, latency: int = DEFAULT_LATENCY, waves: Path | None = None,
                     dram_bw=None) -> Report:
    """``lego sim DIR --program PROG``: one run of the program; outputs checked against sw_reference.
    ``dram_bw``: the DRAM's bandwidth in 64-bit words per cycle, each direction (``--dram-bw``; None: the bus
    width)."""
    t0 = time.perf_counter()
    design_dir = Path(design_dir)
    man = read_manifest(design_dir)
    if man["kind"] != "programmable":
        raise LegoError(f"--program: '{design_dir}' is not a programmable design (lego gen ... --scratchpad-kib N)")
    if engine not in ENGINES:
        raise LegoError(f"--engine: '{engine}' cannot run a program (allowed: {', '.join(ENGINES)})")
    if not 0 <= latency <= 10_000:
        raise LegoError(f"--dram-latency: {latency} is out of range (0..10000 cycles)")
    man = with_dram_bw(man, dram_bw)
    beat = man["prog"].get("dram_beat_cycles", 1)
    if engine != "cycle" and beat > 1:
        bench = (design_dir / "tb" / "prog_bench.py").read_text()
        if "beat_cycles" not in bench:
            raise LegoError(f"--dram-bw: {design_dir}/tb/prog_bench.py predates the DRAM bandwidth limit "
                            "(lego gen again)")
        if "DRAM_BW_LIMITS" not in bench:
            raise LegoError(f"--dram-bw: {design_dir}/tb/prog_bench.py predates the write bandwidth limit "
                            "(its DRAM limits reads only; lego gen again)")
    import hashlib
    v = design_dir / f"{man['top']}.v"
    if not v.is_file() or hashlib.sha256(v.read_bytes()).hexdigest() != man["prog"]["design_hash"]:
        raise LegoError(f"DIR: {v.name} does not match the design hash in manifest.json (edited after lego gen?)")
    header, cmds = P.read(Path(program), man)
    records = layer_records(header)
    squeeze = header.get("format") != 2              # a one-GEMM program keeps its 2-D tensors
    bits = man["prog"]["bits"]
    ins = (check_inputs(records, bits, inputs, squeeze) if inputs is not None
           else random_inputs(records, bits, seed, squeeze))
    img = dram_image(records, bits, ins, header["dram_bytes"])
    layers, outputs, cycles, pred_total, match, err = [], {}, 0, 0, True, 0.0
    busy = {}
    for i, (first, seg) in enumerate(P.segments(header, cmds)):
        rec = records[i]
        tl = program_cycles(man["prog"], seg, latency)
        row = {"name": rec["name"], "op": rec["op"], "gemm": rec["gemm"], "mode": rec["mode"],
               "cycles_predicted": tl.cycles, "macs": rec["macs"]}
        if engine == "cycle":
            execute(man["prog"], seg, img)
            row["cycles"] = tl.cycles
        else:
            res = run_rtl(design_dir, engine, man, rec, [P.encode(c) for c in seg], seg, img, latency, tl.cycles,
                          waves, beat)
            if res.get("error"):
                raise LegoError(f"sim: layer {rec['name']}: {res['error']}")
            row["cycles"], row["cycles_register"] = int(res["cycles"]), int(res["cycles_reg"])
            y = rec["dram"]["Y"]
            img[y["addr"]:y["addr"] + y["bytes"]] = np.frombuffer(bytes.fromhex(res["reads"][0]), np.uint8)
        k = _key("Y", i, len(records))
        outputs[k] = read_y(rec, img, squeeze)
        xw = ins[_key("X", i, len(records))], ins[_key("W", i, len(records))]
        ref = conv_reference(rec, *xw) if rec.get("im2col") == "hardware" else reference(*xw)
        diff = np.abs(outputs[k] - ref)
        row["match"] = bool((diff == 0).all())
        match &= row["match"]
        err = max(err, float(diff.max()) if diff.size else 0.0)
        cycles += row["cycles"]
        pred_total += tl.cycles
        for u, v in tl.busy_cycles.items():
            busy[u] = busy.get(u, 0) + v
        layers.append(row)
    extra = {"mode": header.get("mode", records[0]["mode"] if len(records) == 1 else "per layer"),
             "tile": header.get("tile", records[0]["tile"] if len(records) == 1 else "per layer"),
             "layer": header.get("layer", header.get("model") or records[0]["name"]), "commands": len(cmds),
             "dram_latency": latency, "dram_bw": dram_bw_words(man["prog"]),
             "cycles_predicted": pred_total, "busy_cycles": busy,
             "macs": sum(r["macs"] for r in records)}
    if engine != "cycle":
        extra["cycles_register"] = sum(r["cycles_register"] for r in layers)
    if header.get("format") == 2:
        extra["layers"] = layers
    rep = Report(engine=engine, cycles=cycles, outputs=outputs, match=match, max_abs_err=err,
                 dram_bytes={t: sum(r["dram"][t]["bytes"] for r in records) for t in "XWY"},
                 sim_seconds=time.perf_counter() - t0, extra=extra)
    return rep


class _ProgramTool:
    """``lego sim DIR --program PROG`` (reached through the ``lego.tools`` registry: lego does not import
    the simulator layer)."""

    def run(self, a) -> tuple[dict, str, int]:
        from lego.api import load_inputs  # noqa: F401  (the same .npz rules as lego sim DIR --inputs)
        ins = None
        if a.inputs:
            ins = _load_npz(Path(a.inputs))
        latency = DEFAULT_LATENCY if a.dram_latency is None else a.dram_latency
        rep = simulate_program(Path(a.dir), Path(a.program), a.engine, inputs=ins, seed=a.seed, latency=latency,
                               dram_bw=a.dram_bw)
        pred = rep.extra["cycles_predicted"]
        reg = rep.extra.get("cycles_register", rep.cycles)
        cycles_ok = rep.cycles == pred == reg and all(
            r["cycles"] == r["cycles_predicted"] == r.get("cycles_register", r["cycles"])
            for r in rep.extra.get("layers", []))
        obj = {"engine": rep.engine, "cycles": rep.cycles, "match": rep.match, "max_abs_err": rep.max_abs_err,
               "sim_seconds": rep.sim_seconds,
               "cycles_per_second": rep.cycles / rep.sim_seconds if rep.sim_seconds else None,
               **{k: v for k, v in rep.extra.items()}}
        if a.out:
            with open(a.out, "wb") as f:
                np.savez(f, **{k: v.astype(np.int32) for k, v in rep.outputs.items()})
        ok = bool(rep.match) and cycles_ok
        layer = rep.extra["layer"]
        if isinstance(layer, dict):            # a format-1 (one GEMM) header: {"op": "gemm", "M": .., ...}
            keys = [k for k in ("M", "N", "K") if k in layer] + sorted(set(layer) - {"op", "M", "N", "K"})
            layer = f"{layer.get('op', 'gemm')}:" + ",".join(f"{k}={layer[k]}" for k in keys)
        text = (f"{'PASS' if ok else 'FAIL'}: {rep.engine} program {layer} mode={rep.extra['mode']} "
                f"cycles={rep.cycles} (predicted {pred}) max_abs_err={rep.max_abs_err} ({rep.sim_seconds:.2f} s)")
        import sys
        if not cycles_ok:
            print(f"lego: check failed: cycles: {rep.engine} counted {rep.cycles} (register {reg}), the cycle "
                  f"engine predicts {pred}", file=sys.stderr)
        elif not rep.match:
            print(f"lego: check failed: outputs: max abs error {rep.max_abs_err} against sw_reference",
                  file=sys.stderr)
        return obj, text, 0 if ok else 1


def _load_npz(path: Path) -> dict:
    if not path.is_file():
        raise LegoError(f"--inputs: file '{path}' not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:
        raise LegoError(f"--inputs: '{path}' is not a readable .npz file") from None


TOOL = _ProgramTool()

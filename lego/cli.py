"""The `lego` command line (contract: docs/ARCHITECTURE.md §2): one argparse tree, one error path.

Engines, accelerators and the model/explore tools are found through the registries (``lego.registry``),
never imported by name. Every failure of the user's input is ``lego: error: <field>: <what>`` on one
line with exit 2; a failed check (an output or cycle mismatch) exits 1; ``--json`` prints one JSON
object on stdout and nothing else there.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

from . import __version__, registry
from .errors import CheckFailed, LegoError

COMMANDS = ("gen", "sim", "compile", "synth", "list", "explore")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *a, **kw):
        kw.setdefault("allow_abbrev", False)
        super().__init__(*a, **kw)

    def error(self, message):          # one line, exit 2, no usage dump
        raise LegoError(message)


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for act in parser._actions for o in act.option_strings]


def _unknown(parser: argparse.ArgumentParser, extra: list[str]) -> None:
    """Refuse unrecognized arguments by name, with argparse's closest option as a suggestion."""
    if not extra:
        return
    bad = extra[0]
    name = bad.split("=", 1)[0]
    if name.startswith("-"):
        close = difflib.get_close_matches(name, _options(parser), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise LegoError(f"{name}: unknown option for lego {parser.prog.split()[-1]}{hint}")
    raise LegoError(f"{bad}: unexpected argument for lego {parser.prog.split()[-1]}")


# ---------------------------------------------------------------------------------------- parsers

def _gen_parser(sub) -> argparse.ArgumentParser:
    g = sub.add_parser("gen", help="generate a design directory (an array, or an accelerator)")
    g.add_argument("--workload", help="built-in workload (lego list) or a .yaml/.json loop-nest file "
                                      "(default: attention)")
    g.add_argument("--accelerator", help="generate a registered accelerator instead (lego list)")
    g.add_argument("--config", help="with --accelerator: a YAML configuration file")
    g.add_argument("--preset", help="with --accelerator: a named configuration (default: the accelerator's)")
    g.add_argument("--shape", help="problem size, KEY=VALUE,... (e.g. M=64,N=64,K=64)")
    g.add_argument("--array", help="FU array RxC (default 4x4)")
    g.add_argument("--dataflow", action="append", help="dataflow preset or file; repeat to fuse (default os)")
    g.add_argument("--bits", type=int, default=8, help="input width: 4, 8, 12 or 16 (default 8)")
    g.add_argument("--no-opt", action="store_true", help="naive ASAP pipelining instead of the LP")
    g.add_argument("--scratchpad-kib", type=int, help="a programmable array (gemm): KiB of X/W scratchpad, "
                                                      "double buffered (with --accumulator-kib; no --shape)")
    g.add_argument("--accumulator-kib", type=int, help="a programmable array: KiB of int32 accumulator, "
                                                       "double buffered")
    g.add_argument("--dram-bits", type=int, help="a programmable array: AXI4 data width, 64, 128 or 256 "
                                                 "(default 64)")
    g.add_argument("--dram-outstanding", type=int, help="a programmable array: read bursts the load DMA keeps "
                                                         "in flight and write bursts the store DMA keeps "
                                                         "unacknowledged, 1..16 (default 4)")
    g.add_argument("--out", help="the design directory to write (required)")
    g.add_argument("--force", action="store_true", help="overwrite a directory lego did not make")
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return g


def _sim_parser(sub, argv: list[str]) -> argparse.ArgumentParser:
    s = sub.add_parser("sim", help="simulate a design directory, a model, or an accelerator")
    s.add_argument("dir", nargs="?", help="a design directory made by lego gen")
    s.add_argument("--engine", default="cycle", help="with DIR: engine (lego list; default cycle)")
    s.add_argument("--mode", help="with DIR: dataflow of a fused design (default: its first)")
    s.add_argument("--inputs", help="with DIR: .npz of input tensors (default: random with --seed)")
    s.add_argument("--program", help="with a programmable DIR: the program to run (lego compile)")
    s.add_argument("--dram-latency", type=int, help="with --program: DRAM latency in cycles (default 20)")
    s.add_argument("--dram-bw", help="with --program or --model M --design DIR (programmable): DRAM bandwidth "
                                     "in 64-bit words per cycle, each direction (reads and writes), the bus's words "
                                     "over 1..4 cycles per beat, e.g. 2, 1, 1/2 (default: the bus width)")
    s.add_argument("--im2col", help="with --model M --design DIR: who expands conv windows (hardware, host or "
                                    "auto; default as lego compile)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    s.add_argument("--out", help="with DIR: .npz of the outputs; with --model: directory for CSV/JSON/PNG")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    s.add_argument("--waves", help="with DIR and an RTL engine: waveform file (.fst Icarus, .vcd Verilator)")
    s.add_argument("--trace", help="with DIR and --engine cycle: per-cycle CSV trace; with --accelerator "
                                   "spatten: the workload trace to replay")
    s.add_argument("--trace-window", help="START:END cycles of the per-cycle trace (default 0:1000)")
    s.add_argument("--model", help="map a model onto a design (lego list) instead of simulating DIR; with "
                                   "--accelerator: the network of its model (e.g. pointacc: pointnet2, dgcnn, "
                                   "minkunet)")
    s.add_argument("--array", help="with --model: FU array RxC (default 16x16)")
    s.add_argument("--dataflow", action="append", help="with --model: dataflows to fuse (default os, ws, is)")
    s.add_argument("--accelerator", help="the accelerator-level model of a registered accelerator")
    s.add_argument("--config", help="with --accelerator: a YAML configuration file")
    s.add_argument("--preset", help="with --accelerator: a named configuration")
    tool = registry.get(registry.TOOLS, "model")
    tool.add_arguments(s.add_argument_group("model runs (with --model)"))
    acc = _peek(argv, "--accelerator")
    if acc:
        registry.get(registry.ACCELERATORS, acc).add_sim_arguments(
            s.add_argument_group(f"{acc} options (with --accelerator {acc})"))
    return s


def _peek(argv: list[str], opt: str) -> str | None:
    for i, a in enumerate(argv):
        if a == opt and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(opt + "="):
            return a.split("=", 1)[1]
    return None


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    argv = argv or []
    p = _Parser(prog="lego", description="LEGO-style spatial accelerator generator: affine workloads -> "
                                         "verified, LP-pipelined RTL")
    p.add_argument("--version", action="version", version=f"lego {__version__}")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser, metavar="{" + ",".join(COMMANDS) + "}")
    _gen_parser(sub)
    if argv[:1] == ["sim"]:
        _sim_parser(sub, argv)
    else:
        sub.add_parser("sim", help="simulate a design directory, a model, or an accelerator")
    c = sub.add_parser("compile", help="compile a layer or a model into a program of a programmable design")
    c.add_argument("dir", nargs="?", help="a programmable design directory (lego gen ... --scratchpad-kib N)")
    c.add_argument("--layer", help="one layer: gemm:M=..,N=..,K=.., bmm:B=..,M=..,N=..,K=.., "
                                   "conv2d:C=..,H=..,W=..,K=..,R=..,S=..[,N=..,STRIDE=..,PAD=..,GROUPS=..,DIL=..], "
                                   "dwconv2d:C=..,H=..,W=..,R=..,S=..[,N=..,STRIDE=..,PAD=..,DIL=..]")
    c.add_argument("--model", help="every layer of a model: a built-in name (lego list), a SCALE-Sim topology "
                                   ".csv or an .onnx file")
    c.add_argument("--out", help="the program file to write (binary; PROG.json beside it) (required)")
    c.add_argument("--mode", help="dataflow of the design to use (default: the fastest)")
    c.add_argument("--tile", help="tile sizes M=..,N=..,K=.. (default: chosen by exact cycles)")
    c.add_argument("--dram-latency", type=int, help="DRAM latency the tile choice assumes (default 20)")
    c.add_argument("--dram-bw", help="DRAM bandwidth (64-bit words per cycle, each direction: reads and "
                                     "writes) the tile choice assumes (default: the bus width)")
    c.add_argument("--im2col", help="who expands a conv layer's windows: hardware (the load DMA's window "
                                    "generator; the default on a design generated for conv), host (the host writes "
                                    "the im2col'd input; the default elsewhere) or auto (the faster per layer, by "
                                    "exact cycles)")
    c.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    y = sub.add_parser("synth", help="Yosys synthesis report of a design directory")
    y.add_argument("dir", help="a design directory made by lego gen")
    y.add_argument("--target", default="generic", help="generic, ice40 or ecp5 (default generic)")
    y.add_argument("--device", help="FPGA part of --target (lego synth DIR --target T --device X)")
    y.add_argument("--yosys", help="a Yosys binary instead of the YoWASP one (e.g. a native 64-bit build for "
                                   "designs that need more than WebAssembly's 4 GiB)")
    y.add_argument("--timeout-s", type=int, default=600, help="time limit for the whole run (default 600 s)")
    y.add_argument("--no-blackbox", action="store_true",
                   help="synthesize the modules the manifest marks as black boxes (macros such as DOTA's "
                        "photonic-core twins) as logic too")
    y.add_argument("--memories", help="generic target: ff (default: memories become flip-flops) or macro (memories "
                                      "kept as SRAM macros, listed apart from the logic)")
    y.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    li = sub.add_parser("list", help="workloads, dataflows, accelerators, engines")
    li.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    e = sub.add_parser("explore", help="design-space exploration (Dask)")
    if argv[:1] == ["explore"]:
        e.add_argument("--model", help="the model to explore (required; lego list)")
        e.add_argument("--out", help="directory for the CSV and PNG (default explore_out)")
        e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        registry.get(registry.TOOLS, "explore").add_arguments(e)
    return p


# ---------------------------------------------------------------------------------------- commands

def _gen(a) -> tuple[dict, str]:
    from .emit.outdir import check_target
    if not a.out:
        raise LegoError("--out: a design directory to write is required")
    out = Path(a.out)
    check_target(out, a.force)
    if a.accelerator:
        if a.workload or a.shape or a.array or a.dataflow or a.no_opt:
            raise LegoError("--accelerator: the accelerator's options come from --config/--preset, not "
                            "--workload/--shape/--array/--dataflow/--no-opt")
        acc = registry.get(registry.ACCELERATORS, a.accelerator)
        res = acc.generate(acc.load_config(a.config, a.preset), out, a.force)
    elif (a.scratchpad_kib is not None or a.accumulator_kib is not None or a.dram_bits is not None
          or a.dram_outstanding is not None):
        if a.shape:
            raise LegoError("--shape: a programmable design (--scratchpad-kib) runs any shape its programs "
                            "give; leave --shape out")
        if a.config or a.preset:
            raise LegoError(f"{'--config' if a.config else '--preset'}: only valid with --accelerator")
        from .prog.generate import generate_prog
        res = generate_prog(a.workload or "gemm", a.array, tuple(a.dataflow or ("os",)), a.bits, a.scratchpad_kib,
                            a.accumulator_kib, a.dram_bits, not a.no_opt, out, a.force, a.dram_outstanding)
    else:
        if a.config or a.preset:
            raise LegoError(f"{'--config' if a.config else '--preset'}: only valid with --accelerator")
        from .generate import generate
        res = generate(a.workload or "attention", a.shape, a.array, tuple(a.dataflow or ("os",)), a.bits,
                       not a.no_opt, out, a.force, progress=not a.json)
    return res, f"lego: wrote {a.out} ({res.get('summary', '')})"


def _check_writable(path: Path, field: str) -> None:
    """Before any simulation runs: ``path`` can be written (by trying, which also holds for root)."""
    parent = path.resolve().parent
    if not parent.is_dir():
        raise LegoError(f"{field}: directory '{parent}' does not exist")
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        raise LegoError(f"{field}: '{path}' is not writable ({e.strerror})") from None
    if not existed:
        path.unlink()


def _sim(a) -> tuple[dict, str, int]:
    if a.model and not a.accelerator:           # with --accelerator, --model is the accelerator's network
        if a.dir:
            raise LegoError("--model: give a model, a design directory or an accelerator, not several")
        obj, text = registry.get(registry.TOOLS, "model").run(a)
        return obj, text, 0
    if a.accelerator:
        if a.dir:
            raise LegoError("--accelerator: simulates the accelerator's model; a design directory is "
                            "simulated with lego sim DIR")
        acc = registry.get(registry.ACCELERATORS, a.accelerator)
        rep = acc.simulate(acc.load_config(a.config, a.preset), a)
        obj = {"accelerator": a.accelerator, **rep.summary()}
        return obj, "\n".join(f"{k:28s} {v}" for k, v in obj.items() if not isinstance(v, (dict, list))), 0
    if not a.dir:
        raise LegoError("sim: a design directory is required (or --model / --accelerator)")
    if a.program or a.dram_latency is not None or a.dram_bw is not None:
        if not a.program:
            raise LegoError(f"--dram-{'latency' if a.dram_latency is not None else 'bw'}: only with --program")
        if a.out:
            _check_writable(Path(a.out), "--out")
        return registry.get(registry.TOOLS, "program").run(a)
    return _sim_dir(a)


def _sim_dir(a) -> tuple[dict, str, int]:
    import numpy as np

    from .api import load_inputs, simulate
    from .emit.directory import read_manifest
    d = Path(a.dir)
    man = read_manifest(d)
    if man["kind"] == "programmable":
        raise LegoError("--program: a programmable design runs a program (lego compile DIR --layer ... --out PROG)")
    registry.get(registry.ENGINES, a.engine)
    ins = load_inputs(Path(a.inputs), man) if a.inputs else None
    out = Path(a.out) if a.out else None
    if out is not None:
        _check_writable(out, "--out")
    waves = Path(a.waves).resolve() if a.waves else None
    if waves is not None:
        _check_writable(waves, "--waves")
    kw = {}
    if a.trace:
        if a.engine != "cycle":
            raise LegoError("--trace: a per-cycle trace comes from the cycle engine (--engine cycle)")
        _check_writable(Path(a.trace), "--trace")
        try:
            lo, _, hi = (a.trace_window or "0:1000").partition(":")
            kw = {"trace": Path(a.trace), "window": (int(lo or 0), int(hi) if hi else None)}
        except ValueError:
            raise LegoError(f"--trace-window: '{a.trace_window}' is not START:END") from None
    elif a.trace_window:
        raise LegoError("--trace-window: only with --trace")
    rep = simulate(d, a.engine, mode=a.mode, inputs=ins, seed=a.seed, waves=waves, **kw)
    if out is not None:
        arrays = {k: np.asarray(v).astype(_np_dtype(man["tensors"][k])) for k, v in rep.outputs.items()}
        with open(out, "wb") as f:                  # the path as given (np.savez would append .npz)
            np.savez(f, **arrays)
    pred = rep.extra.get("cycles_predicted")
    cycles_ok = pred is None or pred == rep.cycles
    obj = {"engine": rep.engine, "cycles": rep.cycles, "match": rep.match, "max_abs_err": rep.max_abs_err,
           "outputs": {k: np.asarray(v).tolist() for k, v in rep.outputs.items()},
           "sim_seconds": rep.sim_seconds,
           "cycles_per_second": rep.cycles / rep.sim_seconds if rep.sim_seconds else None,
           "sram_reads": rep.sram_reads, "sram_writes": rep.sram_writes,
           "mode": rep.extra.get("mode"), "cycles_predicted": pred}
    status = "PASS" if rep.match and cycles_ok else "FAIL"
    text = (f"{status}: {a.engine} mode={rep.extra.get('mode')} cycles={rep.cycles} "
            f"max_abs_err={rep.max_abs_err} ({rep.sim_seconds:.2f} s)")
    if not cycles_ok:
        print(f"lego: check failed: cycles: the RTL counted {rep.cycles}, the design predicts {pred}",
              file=sys.stderr)
    elif not rep.match:
        print(f"lego: check failed: outputs: max abs error {rep.max_abs_err} against sw_reference",
              file=sys.stderr)
    return obj, text, 0 if rep.match and cycles_ok else 1


def _np_dtype(t: dict):
    from .host import dtype_range
    import numpy as np
    bits = t.get("bits", 64)
    unsigned = dtype_range(t)[0] == 0 if "dtype" in t else False
    for b in (8, 16, 32, 64):
        if bits <= b:
            return np.dtype(f"{'u' if unsigned else ''}int{b}")
    return np.dtype("int64")


def _compile(a) -> tuple[dict, str]:
    from .emit.directory import read_manifest
    from .prog import program
    from .prog.compiler import DEFAULT_LATENCY, compile_gemm, parse_layer, parse_tile
    from .prog.model import compile_model
    if not a.dir:
        raise LegoError("DIR: a programmable design directory is required")
    if bool(a.layer) == bool(a.model):
        raise LegoError("--layer: give one layer (gemm:M=..,N=..,K=..) or --model NAME|FILE, not both or neither")
    if not a.out:
        raise LegoError("--out: the program file to write is required")
    man = read_manifest(Path(a.dir))
    if man["kind"] != "programmable":
        raise LegoError(f"DIR: '{a.dir}' is not a programmable design (lego gen ... --scratchpad-kib N "
                        f"--accumulator-kib N)")
    lat = DEFAULT_LATENCY if a.dram_latency is None else a.dram_latency
    if not 0 <= lat <= 10_000:
        raise LegoError(f"--dram-latency: {lat} is out of range (0..10000 cycles)")
    from .prog.timing import dram_bw_words, with_dram_bw
    man = with_dram_bw(man, a.dram_bw)
    tile = parse_tile(a.tile)
    if a.model:
        header, words, cmds = registry.get(registry.TOOLS, "compile-model").compile(a.model, man, a.mode, tile, lat,
                                                                                    quiet=a.json, im2col=a.im2col)
    else:
        spec = parse_layer(a.layer)
        if spec.op == "gemm":
            header, words, cmds = compile_gemm(man, spec.dims, a.mode, tile, lat)
        else:
            header, words, cmds = compile_model(man, [spec], model=a.layer, mode=a.mode, tile=tile, latency=lat,
                                                field="--layer", im2col=a.im2col)
    if a.dram_bw is not None:       # the DRAM bandwidth the tile choice and predicted cycles assume
        header["predicted"]["dram_bw"] = dram_bw_words(man["prog"])
    out = Path(a.out)
    _check_writable(out, "--out")
    program.write(out, header, words, cmds)
    cyc = header["predicted"]["cycles"]
    if header.get("format") == 2:
        skipped = header["skipped"]
        skip = f"; skipped {len(skipped)}: " + ", ".join(f"{x['name']} ({x['op']})" for x in skipped) if skipped else ""
        return ({**header, "out": str(out)},
                f"lego: wrote {out} and {out}.json ({len(header['layers'])} layers, {len(words)} commands, "
                f"{cyc} cycles at DRAM latency {lat}{skip})")
    t = header["tile"]
    return ({**header, "out": str(out)},
            f"lego: wrote {out} and {out}.json ({len(words)} commands, mode {header['mode']}, tile "
            f"M={t['M']} N={t['N']} K={t['K']}, {cyc} cycles at DRAM latency {lat})")


def _synth(a) -> tuple[dict, str]:
    """A design that does not fit its device: exit 2 with the figures on stderr and, with --json, the
    report (``fit: false``) on stdout."""
    from .emit.directory import read_manifest
    from .synth import DoesNotFit, check_device, format_table, synth
    from .synth_memories import check_memories
    device = check_device(a.target, a.device)
    memories = check_memories(a.target, a.memories)
    read_manifest(Path(a.dir))
    if a.timeout_s < 1:
        raise LegoError(f"--timeout-s: must be a positive number of seconds, got {a.timeout_s}")
    try:
        res = synth(Path(a.dir), a.target, device=device, yosys=a.yosys, timeout_s=a.timeout_s,
                    blackbox=not a.no_blackbox, memories=memories)
    except DoesNotFit as e:
        if a.json:
            print(json.dumps(e.result, sort_keys=True))
        raise
    return res, format_table(res)


def _list(a) -> tuple[dict, str]:
    from .affine.dataflow import PRESETS
    from .affine.library import ARRAY_WORKLOADS, DEFAULTS, DESCRIPTIONS
    accs = {n: registry.get(registry.ACCELERATORS, n) for n in registry.names(registry.ACCELERATORS)}
    workloads = {k: {"shape": DEFAULTS[k], "body": DESCRIPTIONS[k]} for k in ARRAY_WORKLOADS}
    for n, acc in accs.items():
        for w in getattr(acc, "workloads", ()):
            workloads[w] = {"shape": DEFAULTS.get(w, {}), "body": DESCRIPTIONS.get(w, acc.description),
                            "accelerator": n}
    info = {"workloads": workloads, "dataflows": list(PRESETS),
            "accelerators": {n: acc.description for n, acc in accs.items()},
            "engines": registry.names(registry.ENGINES)}
    lines = ["workloads:"]
    for k, v in workloads.items():
        lines.append(f"  {k:10s} {v['body']}   defaults: " + ",".join(f"{x}={y}" for x, y in v["shape"].items()))
    lines.append("dataflows:    " + ", ".join(PRESETS) + "   (or a .yaml file with A_T, A_S, T, c)")
    lines.append("accelerators: " + ", ".join(accs))
    lines.append("engines:      " + ", ".join(info["engines"]))
    return info, "\n".join(lines)


def _explore(a) -> tuple[dict, str]:
    if not a.model:
        raise LegoError("--model: the model to explore is required (lego list)")
    return registry.get(registry.TOOLS, "explore").run(a)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        p = parser(argv)
        a, extra = p.parse_known_args(argv)
        if a.cmd is None:
            raise LegoError("a command is required (" + ", ".join(COMMANDS) + ")")
        _unknown(p._subparsers._group_actions[0].choices[a.cmd], extra)
        code = 0
        if a.cmd == "sim":
            obj, text, code = _sim(a)
        else:
            obj, text = {"gen": _gen, "compile": _compile, "synth": _synth, "list": _list, "explore": _explore}[a.cmd](a)
        print(json.dumps(obj, sort_keys=True, default=_jsonable) if getattr(a, "json", False) else text)
        return code
    except LegoError as e:
        print(f"lego: error: {e}", file=sys.stderr)
        return 2
    except CheckFailed as e:
        print(f"lego: check failed: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:            # e.g. `lego ... --json | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("lego: interrupted", file=sys.stderr)
        return 130


def _jsonable(x):
    import numpy as np
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


if __name__ == "__main__":
    sys.exit(main())

"""The `lego` command line (contract: ../shared/ARCHITECTURE.md §2)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .errors import CheckFailed, LegoError


class _Parser(argparse.ArgumentParser):
    def error(self, message):          # one line, exit 2, no usage dump
        raise LegoError(message)


def _gen(a) -> int:
    from .generate import generate
    if a.accelerator:
        from .accel import gen_accelerator
        res = gen_accelerator(a.accelerator, a.config, Path(a.out), a.force)
    else:
        if a.config:
            raise LegoError("--config: only valid with --accelerator")
        res = generate(a.workload or "attention", a.shape, a.array, tuple(a.dataflow or ("os",)), a.bits,
                       not a.no_opt, Path(a.out), a.force)
    if a.json:
        print(json.dumps(res, sort_keys=True))
    else:
        print(f"lego: wrote {a.out} ({res.get('summary', '')})")
    return 0


def _sim(a) -> int:
    import numpy as np
    if a.accelerator:
        from .accel import sim_accelerator
        return sim_accelerator(a.accelerator, a.config, a.trace, a.json)
    if not a.dir:
        raise LegoError("sim: a design directory is required (or --model / --accelerator)")
    from simulator.engine import get_engine, read_manifest
    from simulator.engine import load_inputs
    man = read_manifest(Path(a.dir))
    ins = load_inputs(Path(a.inputs), man) if a.inputs else None
    eng = get_engine(a.engine)
    kw = {}
    if a.trace:
        if a.engine != "cycle":
            raise LegoError("--trace: a per-cycle trace comes from the cycle engine (--engine cycle)")
        try:
            lo, _, hi = (a.trace_window or "0:1000").partition(":")
            kw = {"trace": Path(a.trace), "window": (int(lo or 0), int(hi) if hi else None)}
        except ValueError:
            raise LegoError(f"--trace-window: '{a.trace_window}' is not START:END") from None
    rep = eng.run(Path(a.dir), mode=a.mode, inputs=ins, seed=a.seed,
                  waves=Path(a.waves).resolve() if a.waves else None, **kw)
    if a.out:
        np.savez(a.out, **{k: np.asarray(v) for k, v in rep.outputs.items()})
    if a.json:
        print(json.dumps({"engine": rep.engine, "cycles": rep.cycles, "match": rep.match,
                          "max_abs_err": rep.max_abs_err,
                          "outputs": {k: np.asarray(v).tolist() for k, v in rep.outputs.items()},
                          "sim_seconds": rep.sim_seconds,
                          "cycles_per_second": rep.cycles / rep.sim_seconds if rep.sim_seconds else None,
                          "sram_reads": rep.sram_reads, "sram_writes": rep.sram_writes,
                          "mode": rep.extra.get("mode"), "cycles_predicted": rep.extra.get("cycles_predicted")},
                         sort_keys=True))
    pred = rep.extra.get("cycles_predicted")
    cycles_ok = pred is None or pred == rep.cycles
    if not a.json:
        status = "PASS" if rep.match and cycles_ok else "FAIL"
        print(f"{status}: {a.engine} mode={rep.extra.get('mode')} cycles={rep.cycles} "
              f"max_abs_err={rep.max_abs_err} ({rep.sim_seconds:.2f} s)")
        if not cycles_ok:
            print(f"cycle mismatch: RTL counted {rep.cycles}, the design predicts {pred}", file=sys.stderr)
    return 0 if rep.match and cycles_ok else 1


def _synth(a) -> int:
    from .synth import cli
    return cli(a)


def _list(a) -> int:
    from .affine.dataflow import PRESETS
    from .affine.library import DEFAULTS, DESCRIPTIONS
    from simulator.engine import ENGINES
    info = {"workloads": {k: {"shape": v, "body": DESCRIPTIONS[k]} for k, v in DEFAULTS.items()},
            "dataflows": list(PRESETS), "accelerators": ["spatten", "pointacc", "dota"],
            "engines": list(ENGINES)}
    if a.json:
        print(json.dumps(info, sort_keys=True))
        return 0
    print("workloads:")
    for k, v in info["workloads"].items():
        print(f"  {k:10s} {v['body']}   defaults: " + ",".join(f"{a}={b}" for a, b in v["shape"].items()))
    print("dataflows:    " + ", ".join(PRESETS) + "   (or a .yaml file with A_T, A_S, T, c)")
    print("accelerators: " + ", ".join(info["accelerators"]))
    print("engines:      " + ", ".join(ENGINES))
    return 0


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lego", description="LEGO-style spatial accelerator generator")
    p.add_argument("--version", action="version", version=f"lego {__version__}")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)
    g = sub.add_parser("gen", help="generate RTL")
    g.add_argument("--workload")
    g.add_argument("--accelerator")
    g.add_argument("--config")
    g.add_argument("--shape")
    g.add_argument("--array")
    g.add_argument("--dataflow", action="append")
    g.add_argument("--bits", type=int, default=8)
    g.add_argument("--no-opt", action="store_true")
    g.add_argument("--out", required=True)
    g.add_argument("--force", action="store_true")
    g.add_argument("--json", action="store_true")
    s = sub.add_parser("sim", help="simulate a design (or a model / an accelerator trace)")
    s.add_argument("dir", nargs="?")
    s.add_argument("--engine", default="cycle")
    s.add_argument("--mode")
    s.add_argument("--inputs")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out")
    s.add_argument("--json", action="store_true")
    s.add_argument("--waves")
    s.add_argument("--model")
    s.add_argument("--design")
    s.add_argument("--array")
    s.add_argument("--dataflow", action="append")
    s.add_argument("--accelerator")
    s.add_argument("--config")
    s.add_argument("--trace", help="with --accelerator: the workload trace to replay; with DIR: write a "
                                    "per-cycle CSV trace (cycle engine)")
    s.add_argument("--trace-window", help="START:END cycles of the per-cycle trace (default 0:1000)")
    y = sub.add_parser("synth", help="Yosys synthesis report")
    y.add_argument("dir")
    y.add_argument("--target", default="generic", choices=["generic", "ice40", "ecp5"])
    y.add_argument("--device", help="FPGA part: ice40 hx8k (default), up5k, hx1k; ecp5 25k (default), 45k, 85k")
    y.add_argument("--json", action="store_true")
    li = sub.add_parser("list", help="workloads, dataflows, accelerators, engines")
    li.add_argument("--json", action="store_true")
    e = sub.add_parser("explore", help="design-space exploration (Dask)")
    e.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "sim" and "--model" in argv:
            from simulator.model_run import cli as model_cli
            return model_cli(argv[1:])
        if argv and argv[0] == "explore":
            from simulator.explore import cli as explore_cli
            return explore_cli(argv[1:])
        a = parser().parse_args(argv)
        if a.cmd is None:
            raise LegoError("a command is required (gen, sim, synth, list, explore)")
        return {"gen": _gen, "sim": _sim, "synth": _synth, "list": _list}[a.cmd](a)
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


if __name__ == "__main__":
    sys.exit(main())

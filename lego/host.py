"""The host's view of a generated array, from its ``manifest.json`` alone (docs/host_protocol.md).

This module needs numpy and nothing else: it is copied into every design directory as
``tb/lego_host.py``, where it writes the vectors of the plain Verilog testbench (``python tb/lego_host.py
--help``). The engines use the same functions, so the protocol a user reads is the one that is tested.

* ``place``: where an element of a tensor lives, (bank, address), in one mode's layout.
* ``load_words`` / ``read_words``: the ``ld_*`` writes that fill the input banks, and the ``rd_*`` reads
  that collect the output, in the order of the tensor's elements (row-major).
* ``Banks``: the input banks' contents across a sequence of loads, as the hardware keeps them (runs and
  resets leave them as they are); ``gather`` gives the inputs a run in a given mode computes with.
* ``reference``: the workload's result from the manifest's loop nest (an affine multiply-accumulate),
  wrapped to the accumulator width: the oracle of the vector writer.
* ``write_vectors``: the command file of ``tb/tb_<top>.v``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np


class HostError(ValueError):
    """A request the documented protocol does not allow (the message names the field)."""


# --------------------------------------------------------------------------- layouts

def place(layout: dict, d: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For element coordinates ``d`` (n, rank): one (mask, bank, addr) per copy of the element.

    Cyclic layout: ``bank_m = (d_m // g_m) % B_m``, mixed-radix over B to a cyclic id, mapped to a
    physical bank by its position in ``bank_ids`` (an id not listed holds no element: mask False);
    ``local_m = (d_m // (g_m·B_m))·g_m + d_m % g_m``; ``addr = Σ local_m·stride_m`` with row-major strides
    of ``local_extents``. Replicated layout: every bank holds the whole tensor at its row-major address.
    """
    E = np.array(layout["local_extents"], dtype=np.int64)
    d = np.asarray(d, dtype=np.int64).reshape(-1, len(E))
    st = np.array([int(np.prod(E[m + 1:], dtype=np.int64)) for m in range(len(E))], dtype=np.int64)
    if layout["replicated"]:
        addr = d @ st
        return [(np.ones(len(d), bool), np.full(len(d), b, dtype=np.int64), addr)
                for b in range(layout["banks"])]
    g = np.array(layout["g"], dtype=np.int64)
    B = np.array(layout["B"], dtype=np.int64)
    radix = np.array([int(np.prod(B[m + 1:], dtype=np.int64)) for m in range(len(B))], dtype=np.int64)
    cyc = ((d // g) % B) @ radix
    addr = ((d // (g * B)) * g + d % g) @ st
    lut = np.full(int(np.prod(B, dtype=np.int64)), -1, dtype=np.int64)
    lut[np.array(layout["bank_ids"], dtype=np.int64)] = np.arange(len(layout["bank_ids"]))
    phys = lut[cyc]
    return [(phys >= 0, phys, addr)]


def _mode(man: dict, mode: str | None) -> str:
    if mode is None:
        return man["dataflows"][0]
    if mode not in man["modes"]:
        raise HostError(f"--mode: '{mode}' is not a dataflow of this design (allowed: {', '.join(man['modes'])})")
    return mode


def _coords(shape) -> np.ndarray:
    return np.indices(shape).reshape(len(shape), -1).T


def input_names(man: dict) -> list[str]:
    """Input tensors in ``ld_tensor`` order."""
    return sorted(man["ld_tensor"], key=man["ld_tensor"].get)


def output_name(man: dict) -> str:
    return next(n for n, t in man["tensors"].items() if t["role"] == "output")


def load_words(man: dict, mode: str | None, inputs: dict, tensors=None) -> np.ndarray:
    """(ld_tensor, ld_bank, ld_addr, ld_data) rows, one per write, that load ``tensors`` (default: every
    input) for a run in ``mode``. ``ld_data`` is the element's low ``bits`` bits (two's complement)."""
    mode = _mode(man, mode)
    rows = []
    for name in (input_names(man) if tensors is None else tensors):
        t = man["tensors"][name]
        x = check_tensor(name, t, inputs[name]).reshape(-1)
        data = x & ((1 << t["bits"]) - 1)
        for mask, bank, addr in place(man["layouts"][mode][name], _coords(t["shape"])):
            rows.append(np.stack([np.full(int(mask.sum()), man["ld_tensor"][name]), bank[mask], addr[mask],
                                  data[mask]], axis=1))
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 4), np.int64)


def read_words(man: dict, mode: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(rd_bank, rd_addr) of every output element in row-major order."""
    mode = _mode(man, mode)
    name = output_name(man)
    (mask, bank, addr), = place(man["layouts"][mode][name], _coords(man["tensors"][name]["shape"]))
    assert mask.all(), "every output element has a bank"
    return bank, addr


def dtype_range(t: dict) -> tuple[int, int]:
    bits = t["bits"]
    return (0, (1 << bits) - 1) if t["dtype"].startswith("u") else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def check_tensor(name: str, t: dict, a) -> np.ndarray:
    """``a`` as int64 after checking shape, integer dtype and the manifest dtype's range."""
    a = np.asarray(a)
    if list(a.shape) != list(t["shape"]):
        raise HostError(f"--inputs: tensor '{name}' has shape {list(a.shape)}, expected {t['shape']}")
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        raise HostError(f"--inputs: tensor '{name}' has dtype {a.dtype}, expected {t['dtype']}")
    lo, hi = dtype_range(t)
    a = a.astype(np.int64)
    if a.size and (a.min() < lo or a.max() > hi):
        raise HostError(f"--inputs: tensor '{name}' has values outside {t['dtype']} [{lo}, {hi}]")
    return a


def random_inputs(man: dict, seed: int) -> dict[str, np.ndarray]:
    """Uniform random inputs over each tensor's full dtype range."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in input_names(man):
        t = man["tensors"][name]
        lo, hi = dtype_range(t)
        out[name] = rng.integers(lo, hi + 1, size=t["shape"], dtype=np.int64)
    return out


# --------------------------------------------------------------------------- bank contents

class Banks:
    """The input banks as the hardware keeps them: words written by ``ld_*`` stay until overwritten (a
    run, a mode switch and ``rst`` leave them). A run in mode m reads every input element from where
    m's layout puts it; ``gather`` gives those values, or raises when a word was never written or the
    copies of a replicated element differ (the protocol then defines no result)."""

    def __init__(self, man: dict):
        self.man = man
        self.words: dict[tuple[int, int], np.ndarray] = {}
        self.written: dict[tuple[int, int], np.ndarray] = {}

    def _bank(self, t: int, b: int):
        if (t, b) not in self.words:
            depth = max(2, max(int(L[n]["depth"]) for L in self.man["layouts"].values()
                               for n in self.man["ld_tensor"] if self.man["ld_tensor"][n] == t))
            self.words[(t, b)] = np.zeros(depth, np.int64)
            self.written[(t, b)] = np.zeros(depth, bool)
        return self.words[(t, b)], self.written[(t, b)]

    def write(self, rows: np.ndarray) -> None:
        for t, b, a, v in np.asarray(rows, dtype=np.int64).reshape(-1, 4):
            w, ok = self._bank(int(t), int(b))
            w[a], ok[a] = v, True

    def load(self, mode: str | None, inputs: dict, tensors=None) -> np.ndarray:
        rows = load_words(self.man, mode, inputs, tensors)
        self.write(rows)
        return rows

    def gather(self, mode: str | None) -> dict[str, np.ndarray]:
        mode = _mode(self.man, mode)
        out = {}
        for name in input_names(self.man):
            t = self.man["tensors"][name]
            ti = self.man["ld_tensor"][name]
            lo, _ = dtype_range(t)
            vals = None
            for mask, bank, addr in place(self.man["layouts"][mode][name], _coords(t["shape"])):
                got = np.zeros(len(bank), np.int64)
                ok = np.zeros(len(bank), bool)
                for b in np.unique(bank[mask]):
                    sel = mask & (bank == b)
                    w, wr = self._bank(ti, int(b))
                    got[sel], ok[sel] = w[addr[sel]], wr[addr[sel]]
                if not ok[mask].all():
                    raise HostError(f"{name}: {int((~ok[mask]).sum())} elements were never loaded where mode "
                                    f"{mode} reads them (load {name} in the layout of {mode})")
                if vals is not None and not np.array_equal(vals, got):
                    raise HostError(f"{name}: the copies of a replicated element differ (load {name} in the "
                                    f"layout of {mode})")
                vals = got
            if lo < 0:                    # the bank word holds the low `bits` bits: sign-extend
                bits = t["bits"]
                vals = ((vals + (1 << (bits - 1))) & ((1 << bits) - 1)) - (1 << (bits - 1))
            out[name] = vals.reshape(t["shape"])
        return out


# --------------------------------------------------------------------------- the oracle

_TERM = re.compile(r"\s*([+-]?)\s*(?:(\d+)\s*\*\s*([A-Za-z_]\w*)|([A-Za-z_]\w*)\s*\*\s*(\d+)|(\d+)|([A-Za-z_]\w*))")


def _index(expr: str, iterators: list[str]) -> tuple[np.ndarray, int]:
    """Coefficients and constant of an index expression such as ``2*h + r - 1``."""
    coef = np.zeros(len(iterators), np.int64)
    const, pos, s = 0, 0, str(expr).strip()
    while pos < len(s):
        m = _TERM.match(s, pos)
        if not m or m.end() == pos:
            raise HostError(f"workload: index '{expr}' is not affine")
        sign = -1 if m.group(1) == "-" else 1
        if m.group(6):
            const += sign * int(m.group(6))
        else:
            name = m.group(3) or m.group(4) or m.group(7)
            coef[iterators.index(name)] += sign * int(m.group(2) or m.group(5) or 1)
        pos = m.end()
    return coef, const


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap to ``bits`` (the accumulator's fixed width)."""
    if bits >= 64:
        return np.asarray(x, np.int64)
    h = 1 << (bits - 1)
    return ((np.asarray(x, np.int64) + h) % (1 << bits)) - h


def reference(man: dict, inputs: dict, chunk: int = 1 << 20) -> np.ndarray:
    """``Y[idx_Y(i)] += X[idx_X(i)] · W[idx_W(i)]`` over the manifest's iteration box (reads outside an
    input's shape are 0), wrapped to the output width. Only ``body: mac`` loop nests."""
    wl = man["loop_nest"]
    if wl["body"] != "mac":
        raise HostError(f"workload: body '{wl['body']}' has no numpy oracle here")
    its, ext = list(wl["iterators"]), [int(e) for e in wl["extents"]]
    acc = {}
    for name, t in man["tensors"].items():
        rows = [_index(e, its) for e in wl["index"][name]]
        acc[name] = (np.array([r[0] for r in rows]).reshape(len(rows), len(its)), np.array([r[1] for r in rows]))
    yname = output_name(man)
    Y = man["tensors"][yname]
    out = np.zeros(Y["shape"], np.int64)
    total = int(np.prod(ext, dtype=np.int64))
    for lo in range(0, total, chunk):
        idx = np.stack(np.unravel_index(np.arange(lo, min(total, lo + chunk)), ext), axis=1).astype(np.int64)
        prod = np.ones(len(idx), np.int64)
        for name in input_names(man):
            A, a = acc[name]
            d = idx @ A.T + a
            ok = np.all((d >= 0) & (d < np.array(man["tensors"][name]["shape"])), axis=1)
            v = np.zeros(len(idx), np.int64)
            v[ok] = np.asarray(inputs[name], np.int64)[tuple(d[ok].T)]
            prod *= v
        A, a = acc[yname]
        np.add.at(out, tuple((idx @ A.T + a).T), prod)
    return wrap(out, Y["bits"])


# --------------------------------------------------------------------------- the plain testbench's vectors

def write_vectors(man: dict, jobs: list[dict], path: Path) -> dict:
    """The command file of ``tb/tb_<top>.v``, one command per line::

        X n          hold rst high for n cycles
        L t b a v    write ld_tensor=t, ld_bank=b, ld_addr=a, ld_data=v (one cycle)
        S m c        pulse start in mode m; expect done after c cycles (c < 0: do not check)
        R b a y      read rd_bank=b, rd_addr=a; expect rd_data == y
        E            end

    ``jobs``: ``{"mode": name, "inputs": {tensor: array} (the tensors to load; absent: keep the banks),
    "reset": bool}``. Returns a summary (jobs, loads, reads)."""
    banks = Banks(man)
    lines = ["X 2"]
    nload = nread = 0
    for k, job in enumerate(jobs):
        mode = _mode(man, job.get("mode"))
        if job.get("reset"):
            lines.append("X 2")
        if job.get("inputs"):
            rows = banks.load(mode, job["inputs"], list(job["inputs"]))
            lines += [f"L {t} {b} {a} {v}" for t, b, a, v in rows.tolist()]
            nload += len(rows)
        y = reference(man, banks.gather(mode)).reshape(-1)
        lines.append(f"S {man['modes'][mode]} {man['cycles_predicted'][mode]}")
        bank, addr = read_words(man, mode)
        lines += [f"R {b} {a} {v}" for b, a, v in zip(bank.tolist(), addr.tolist(), y.tolist())]
        nread += len(y)
    lines.append("E")
    Path(path).write_text("\n".join(lines) + "\n")
    return {"jobs": len(jobs), "loads": nload, "reads": nread}


def parse_jobs(text: str, man: dict) -> list[str]:
    """``os,ws,!os``: modes in order; ``!`` before a mode pulses rst before that job."""
    out = []
    for item in text.split(","):
        item = item.strip()
        name = item.lstrip("!")
        _mode(man, name)
        out.append(item)
    return out


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description="Write the vectors of the plain Verilog testbench: loads, runs and "
                                             "expected outputs from the manifest and numpy alone.")
    ap.add_argument("--design", default=str(here.parent), help="design directory (default: this tb/'s parent)")
    ap.add_argument("--jobs", default=None, help="modes to run in order, e.g. os,ws,!os (! = reset first); "
                                                 "default: every mode once")
    ap.add_argument("--inputs", help=".npz with one array per input tensor (default: random per job)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random inputs")
    ap.add_argument("--out", default=None, help="vector file (default: DESIGN/tb/vectors.txt)")
    a = ap.parse_args(argv)
    try:
        man = json.loads((Path(a.design) / "manifest.json").read_text())
        jobs = parse_jobs(a.jobs, man) if a.jobs else list(man["dataflows"])
        fixed = None
        if a.inputs:
            with np.load(a.inputs, allow_pickle=False) as z:
                fixed = {n: z[n] for n in input_names(man)}
        spec = []
        for k, item in enumerate(jobs):
            ins = fixed if fixed is not None else random_inputs(man, a.seed + k)
            spec.append({"mode": item.lstrip("!"), "reset": item.startswith("!"), "inputs": ins})
        out = Path(a.out) if a.out else Path(a.design) / "tb" / "vectors.txt"
        s = write_vectors(man, spec, out)
    except (HostError, KeyError, OSError, ValueError) as e:
        print(f"lego_host: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {s['jobs']} jobs, {s['loads']} loads, {s['reads']} checked reads")
    return 0


if __name__ == "__main__":
    sys.exit(main())

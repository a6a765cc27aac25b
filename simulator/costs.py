"""Energy (pJ) and area (µm²) of a generated array from its own graph, with the per-primitive tables
of simulator/energy.py (Horowitz ISSCC'14 45 nm scaled to 28 nm; NanGate cells; fitted SRAM model)."""
from __future__ import annotations

from .energy import area_um2, energy_pj, sram_access_pj, sram_area_um2


# Logic-area calibration against `lego synth` netlists (bench/area_calibration.py, least squares over
# four designs; the analytic model omits address generators, the controller and bank muxes). Reported
# areas multiply the model's logic by this; SRAM areas come from the fitted SRAM model, unscaled.
LOGIC_AREA_SCALE = 2.149


def design_costs(arch, pg, mode: int, cycles: int, reads: dict, writes: dict,
                 calibrated: bool = True) -> tuple[dict, dict]:
    w = arch.workload
    X, W = w.inputs
    Y = w.output
    mscale = (X.bits * W.bits) / 64                 # multiplier energy/area ~ product of widths
    ascale = Y.bits / 32
    kinds = pg.stats()
    reg_bits = pg.register_bits()
    nadd = kinds.get("add", 0) + kinds.get("acc", 0) + kinds.get("wr", 0)
    energy = {
        "mul": w.macs * energy_pj("mul8") * mscale,
        "add": 2 * w.macs * energy_pj("add32") * ascale,             # reduction/accumulate + RMW
        "registers": reg_bits * cycles * energy_pj("reg_bit"),
    }
    area = {
        "mul": kinds.get("mul", 0) * area_um2("mul8") * mscale,
        "add": nadd * area_um2("add32") * ascale,
        "registers": reg_bits * area_um2("reg_bit"),
        "muxes": arch.mux_inputs() * max(X.bits, W.bits) * area_um2("mux2_bit"),
    }
    if calibrated:
        area = {k: v * LOGIC_AREA_SCALE for k, v in area.items()}
    rmw = pg.rmw
    for t in w.tensors:
        nb, depth = arch.banks(t.name)
        width = pg.acc_bits if t.role == "output" else t.bits
        cap = max(1, depth * width // 8)
        e_acc = sram_access_pj(cap, width)
        energy[f"sram_{t.name}"] = e_acc * (reads.get(t.name, 0) + writes.get(t.name, 0) *
                                            (2 if t.role == "output" and rmw else 1))   # RMW = read + write
        area[f"sram_{t.name}"] = nb * sram_area_um2(cap)
    return energy, area

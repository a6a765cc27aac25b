"""Per-primitive energy and area tables, an SRAM model, and area calibration against Yosys cells.

Every table entry carries its source. Reference node is 45 nm (Horowitz, "Computing's energy
problem (and what we can do about it)", ISSCC 2014, Fig. 1.1.9: energy per operation and area of
arithmetic at 45 nm, 0.9 V). Values are scaled to the target node (default 28 nm, LEGO's TSMC 28 nm
evaluation node) with a stated, simple rule:

* area   ~ (node / 45)^2          (ideal feature-size scaling)
* energy ~ (node / 45)            (C ~ L at constant 0.9 V supply; no voltage scaling assumed)

Entries marked ``source="assumption"`` are order-of-magnitude estimates we chose; they are kept as
named parameters so that a calibrated number can replace them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from lego.errors import LegoError

REF_NODE_NM = 45.0
DEFAULT_NODE_NM = 28.0
HOROWITZ = "Horowitz ISSCC 2014, 45 nm 0.9 V"
NANGATE = "NanGate 45 nm Open Cell Library (X1 cells)"


@dataclass(frozen=True)
class Primitive:
    """One table row at the 45 nm reference node."""

    name: str
    energy_pj: float       # per operation (per bit for *_bit rows, per byte for dram_byte)
    area_um2: float        # per instance (per bit for *_bit rows)
    source: str


PRIMITIVES: dict[str, Primitive] = {p.name: p for p in (
    Primitive("mul8", 0.2, 282.0, HOROWITZ + ": 8-bit int mult 0.2 pJ, 282 um^2"),
    Primitive("mul32", 3.1, 3495.0, HOROWITZ + ": 32-bit int mult 3.1 pJ, 3495 um^2"),
    Primitive("add8", 0.03, 36.0, HOROWITZ + ": 8-bit int add 0.03 pJ, 36 um^2"),
    Primitive("add32", 0.1, 137.0, HOROWITZ + ": 32-bit int add 0.1 pJ, 137 um^2"),
    Primitive("fadd16", 0.4, 1360.0, HOROWITZ + ": 16-bit FP add 0.4 pJ, 1360 um^2"),
    Primitive("fmul16", 1.1, 1640.0, HOROWITZ + ": 16-bit FP mult 1.1 pJ, 1640 um^2"),
    # Flip-flop and mux areas are standard-cell areas; their energies are assumptions.
    Primitive("reg_bit", 0.004, 4.522,
              NANGATE + ": DFF_X1 4.522 um^2; energy assumption (~4 fJ per clocked bit at 45 nm)"),
    Primitive("mux2_bit", 0.001, 1.862,
              NANGATE + ": MUX2_X1 1.862 um^2; energy assumption (~1 fJ per bit)"),
    Primitive("dram_byte", 1950.0 / 8.0, 0.0,
              HOROWITZ + ": DRAM 1.3-2.6 nJ per 64-bit access, midpoint 1.95 nJ / 8 B; "
              "off-chip, not node-scaled"),
    Primitive("hbm2_byte", 3.9 * 8, 0.0,
              "O'Connor et al., 'Fine-Grained DRAM: Energy-Efficient DRAM for Extreme Bandwidth Systems', "
              "MICRO 2017: HBM2 3.9 pJ/bit (row activation, I/O and data movement); off-chip, not node-scaled"),
)}

# Rows that are not scaled with the logic node (off-chip).
UNSCALED = frozenset({"dram_byte", "hbm2_byte"})

# Horowitz ISSCC 2014 SRAM read energy for a 64-bit access at 45 nm: (capacity bytes, pJ).
SRAM_POINTS_45NM = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
SRAM_BITCELL_UM2_28NM = 0.127   # TSMC 28 nm 6T high-density bit cell (published IEDM 2011 figure)


def _check_node(node_nm: float) -> None:
    if not (isinstance(node_nm, (int, float)) and 5 <= node_nm <= 180):
        raise LegoError(f"node_nm: {node_nm!r} is out of range, allowed 5..180 (nm)")


def energy_scale(node_nm: float = DEFAULT_NODE_NM) -> float:
    _check_node(node_nm)
    return node_nm / REF_NODE_NM


def area_scale(node_nm: float = DEFAULT_NODE_NM) -> float:
    _check_node(node_nm)
    return (node_nm / REF_NODE_NM) ** 2


def primitive(name: str) -> Primitive:
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise LegoError(f"primitive: unknown {name!r}, allowed {sorted(PRIMITIVES)}") from None


def energy_pj(name: str, node_nm: float = DEFAULT_NODE_NM) -> float:
    """Energy of one operation of primitive ``name`` at ``node_nm``."""
    p = primitive(name)
    return p.energy_pj if name in UNSCALED else p.energy_pj * energy_scale(node_nm)


def area_um2(name: str, node_nm: float = DEFAULT_NODE_NM) -> float:
    p = primitive(name)
    return p.area_um2 * area_scale(node_nm)


def mul_pj(a_bits: int, b_bits: int, node_nm: float = DEFAULT_NODE_NM) -> float:
    """An ``a_bits`` x ``b_bits`` integer multiplier: the 8-bit row scaled by the partial-product count
    a*b/64 (an array multiplier's energy; Horowitz's 32-bit row, 3.1 pJ, is 15.5x the 8-bit row for 16x
    the partial products)."""
    if a_bits <= 0 or b_bits <= 0:
        raise LegoError(f"a_bits/b_bits: {a_bits}/{b_bits} must be > 0")
    return energy_pj("mul8", node_nm) * a_bits * b_bits / 64.0


def add_pj(bits: int, node_nm: float = DEFAULT_NODE_NM) -> float:
    """A ``bits``-wide integer adder: linear in the width through Horowitz's 8-bit (0.03 pJ) and 32-bit
    (0.1 pJ) rows, extended linearly beyond them (below 8 bits: the 8-bit row per bit)."""
    if bits <= 0:
        raise LegoError(f"bits: {bits} must be > 0")
    e8, e32 = energy_pj("add8", node_nm), energy_pj("add32", node_nm)
    return e8 * bits / 8.0 if bits < 8 else e8 + (e32 - e8) * (bits - 8) / 24.0


# ---------------------------------------------------------------- SRAM model (CACTI-like fit)

def _fit_sram_power_law() -> tuple[float, float]:
    """Least-squares fit E = k * C^a (pJ per 64-bit read, C in bytes) to Horowitz's three points."""
    xs = [math.log(c) for c, _ in SRAM_POINTS_45NM]
    ys = [math.log(e) for _, e in SRAM_POINTS_45NM]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my - a * mx), a


SRAM_K_45NM, SRAM_ALPHA = _fit_sram_power_law()   # about 0.13 pJ * C^0.47


def sram_access_pj(capacity_bytes: int, width_bits: int = 64,
                   node_nm: float = DEFAULT_NODE_NM, banks: int = 1) -> float:
    """Energy of one ``width_bits`` access to an SRAM of ``capacity_bytes`` split in ``banks``.

    CACTI-like fitted model: E_64b(C) = k * C^alpha, fitted (log-log least squares) to Horowitz
    ISSCC 2014's 8 KB / 32 KB / 1 MB points (10 / 20 / 100 pJ per 64-bit read at 45 nm). CACTI's
    bit-line and H-tree energy grow roughly with sqrt(capacity), which the fit reproduces
    (alpha ~ 0.47). Energy is proportional to the access width (bit-line dominated), and a banked
    memory pays the access energy of one bank. Writes are taken equal to reads.
    """
    if capacity_bytes <= 0:
        raise LegoError(f"capacity_bytes: {capacity_bytes} must be > 0")
    if width_bits <= 0:
        raise LegoError(f"width_bits: {width_bits} must be > 0")
    if banks <= 0:
        raise LegoError(f"banks: {banks} must be > 0")
    bank_bytes = max(capacity_bytes / banks, 64.0)
    e64 = SRAM_K_45NM * bank_bytes ** SRAM_ALPHA
    return e64 * (width_bits / 64.0) * energy_scale(node_nm)


def sram_area_um2(capacity_bytes: int, node_nm: float = DEFAULT_NODE_NM, banks: int = 1) -> float:
    """SRAM macro area: bit cells / array efficiency.

    Bit cell 0.127 um^2 at 28 nm (TSMC 6T HD), scaled by (node/28)^2. Array efficiency (cells over
    macro area) is fitted as eff(C) = 0.75 - 0.35 * exp(-C_bank / 16 KiB): small macros are
    periphery-dominated (~40 %), large ones reach ~75 %, the range CACTI reports for 28-45 nm.
    """
    if capacity_bytes <= 0:
        raise LegoError(f"capacity_bytes: {capacity_bytes} must be > 0")
    if banks <= 0:
        raise LegoError(f"banks: {banks} must be > 0")
    _check_node(node_nm)
    bank = capacity_bytes / banks
    eff = 0.75 - 0.35 * math.exp(-bank / 16384.0)
    cell = SRAM_BITCELL_UM2_28NM * (node_nm / 28.0) ** 2
    return banks * bank * 8 * cell / eff


# ---------------------------------------------------------------- PE and array costs

@dataclass(frozen=True)
class PECost:
    """Energy per MAC and area of one processing element (int8 x int8 -> int32)."""

    mac_pj: float
    reg_pj_per_cycle: float   # clocked pipeline registers, paid every cycle (no clock gating)
    area_um2: float


def pe_cost(in_bits: int = 8, acc_bits: int = 32, n_dataflows: int = 1,
            node_nm: float = DEFAULT_NODE_NM) -> PECost:
    """A MAC PE: one multiplier, one accumulator adder, operand/partial-sum registers.

    Registers: two operand registers (in_bits) and one accumulator (acc_bits). A fused design with
    ``n_dataflows`` > 1 adds a 2:1 mux per extra dataflow on each of the three PE ports and one
    extra operand register (a stationary register for the other operand). Multiplier/adder energy
    is scaled linearly with width from the 8/32-bit rows (an approximation: multipliers grow
    ~quadratically, so only the listed widths are exact).
    """
    if in_bits <= 0 or acc_bits <= 0:
        raise LegoError(f"in_bits/acc_bits: {in_bits}/{acc_bits} must be > 0")
    if n_dataflows < 1:
        raise LegoError(f"n_dataflows: {n_dataflows} must be >= 1")
    mul = energy_pj("mul8", node_nm) * (in_bits / 8) ** 2
    add = energy_pj("add32", node_nm) * acc_bits / 32
    reg_bits = 2 * in_bits + acc_bits + (in_bits if n_dataflows > 1 else 0)
    mux_bits = (n_dataflows - 1) * (2 * in_bits + acc_bits)
    area = (area_um2("mul8", node_nm) * (in_bits / 8) ** 2 + area_um2("add32", node_nm) * acc_bits / 32
            + reg_bits * area_um2("reg_bit", node_nm) + mux_bits * area_um2("mux2_bit", node_nm))
    return PECost(mac_pj=mul + add + mux_bits * energy_pj("mux2_bit", node_nm),
                  reg_pj_per_cycle=reg_bits * energy_pj("reg_bit", node_nm),
                  area_um2=area)


# ---------------------------------------------------------------- calibration against Yosys cells

# Yosys generic-library cells (``synth`` without a target) mapped to NanGate 45 nm X1 cell areas.
YOSYS_CELL_AREA_45NM: dict[str, float] = {
    "$_NOT_": 0.532, "$_BUF_": 0.798,
    "$_AND_": 1.064, "$_NAND_": 0.798, "$_OR_": 1.064, "$_NOR_": 0.798,
    "$_XOR_": 1.596, "$_XNOR_": 1.596, "$_ANDNOT_": 1.064, "$_ORNOT_": 1.064,
    "$_MUX_": 1.862, "$_NMUX_": 1.862,
    "$_AOI3_": 1.064, "$_OAI3_": 1.064, "$_AOI4_": 1.330, "$_OAI4_": 1.330,
    "$_DFF_P_": 4.522, "$_DFF_N_": 4.522, "$_DFFE_PP_": 6.384, "$_DFFE_PN_": 6.384,
    "$_SDFF_PP0_": 5.586, "$_SDFF_PP1_": 5.586, "$_SDFFE_PP0P_": 7.448, "$_SDFFE_PP1P_": 7.448,
    "$_SDFFCE_PP0P_": 7.448, "$_DFF_PP0_": 5.320, "$_DFF_PP1_": 5.320,
}
# Generic D flip-flop fallback for any other $_*DFF*_ / $_DLATCH*_ cell.
_FF_FALLBACK_45NM = 5.586


def cell_area_um2(cells: dict[str, int], node_nm: float = DEFAULT_NODE_NM) -> float:
    """Area of a Yosys generic-cell netlist: sum of count x NanGate-equivalent cell area, scaled."""
    total = 0.0
    for name, count in cells.items():
        if not isinstance(count, int) or count < 0:
            raise LegoError(f"cells[{name!r}]: count {count!r} must be a non-negative integer")
        if name in YOSYS_CELL_AREA_45NM:
            a = YOSYS_CELL_AREA_45NM[name]
        elif name.startswith("$_") and ("DFF" in name or "DLATCH" in name):
            a = _FF_FALLBACK_45NM
        else:
            raise LegoError(f"cells: unknown cell type {name!r}, allowed Yosys generic cells "
                            f"{sorted(YOSYS_CELL_AREA_45NM)} (or any $_*DFF*_)")
        total += a * count
    return total * area_scale(node_nm)


@dataclass(frozen=True)
class AreaCalibration:
    """Result of calibrating the analytic area model against synthesized cell counts."""

    model_area_um2: float
    cell_area_um2: float
    scale: float            # multiply model areas by this to match the netlist


def calibrate_area(model_area_um2: float, cells: dict[str, int],
                   node_nm: float = DEFAULT_NODE_NM) -> AreaCalibration:
    """Compare the analytic logic area of a design with its ``lego synth`` cell counts.

    ``cells`` is the {cell_type: count} dict of a Yosys generic synthesis. The returned ``scale``
    corrects the logic-area model (SRAM macros are not in a generic netlist and are not scaled).
    """
    if model_area_um2 <= 0:
        raise LegoError(f"model_area_um2: {model_area_um2} must be > 0")
    cell = cell_area_um2(cells, node_nm)
    if cell <= 0:
        raise LegoError("cells: netlist has zero area, nothing to calibrate against")
    return AreaCalibration(model_area_um2, cell, cell / model_area_um2)


def fit_area_scale(samples: list[tuple[float, dict[str, int]]],
                   node_nm: float = DEFAULT_NODE_NM) -> float:
    """Least-squares scale s minimising sum (s * model - cells)^2 over several designs."""
    if not samples:
        raise LegoError("samples: need at least one (model_area_um2, cells) pair")
    num = den = 0.0
    for model, cells in samples:
        c = cell_area_um2(cells, node_nm)
        num += model * c
        den += model * model
    if den <= 0:
        raise LegoError("samples: model areas must be > 0")
    return num / den

"""DOTA / Lightening-Transformer configuration: one frozen dataclass, presets from the authors' tables, YAML in.

Units are in the field names: mW, GHz, pJ, fJ, um, um^2, dB, dBm, Gbit/s, bytes, ns. Energy per event in
pJ is power in mW divided by frequency in GHz (the authors' convention).

Presets (``PRESETS``), each at 4 or 8 bits, are built the authors' way: ``data/device_params__default.yaml``
deep-merged with one variant file, the variant winning (see ``data/README.md``):

- ``dota-b``: 4 tiles x 2 cores of 12x12 nodes, 12 wavelengths, 5 GHz, tau = 3, both sharing flags on;
- ``dota-l``: the same with 8 tiles;
- ``mrr``: the add-drop microring weight-bank baseline, 7 tiles x 2 cores (same area budget as DOTA-B);
- ``mzi``: the MZI-mesh (Clements) baseline, 4 tiles x 2 cores.

Fields the authors' tables do not have (stall-mode bandwidths, the digital-periphery hook, the noise
sigmas, ``authors_compat``) carry documented defaults; see docs/dota.md.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from lego.errors import LegoError

from ..config import Config, need

DATA = Path(__file__).resolve().parent / "data"
PRESETS = ("dota-b", "dota-l", "mrr", "mzi")
PRESET_BITS = (4, 8)
BITS_RANGE = (2, 8)                 # converter models are 8-bit reference designs scaled down
KINDS = ("dota", "mrr", "mzi")
ARCHS = ("all", "crossbar", "broadcast")
PERIPHERY = ("none", "synth")
_VARIANT_FILE = {"dota-b": "Dota_B", "dota-l": "Dota_L", "mrr": "Bs_mrr_bank", "mzi": "Bs_mzi"}

# Stall-mode bandwidth defaults (Gbit/s), see docs/dota.md "Stall mode".
DRAM_BW_GBPS = 2.0 ** 43 / 1e9                            # authors' HBM: 1 TiB/s = 2^43 bit/s
GB_BW_GBPS = 64 * 64 * 2.0 ** 30 * 8 / 0.604347 / 1e9     # authors' CACTI GB->SRAM: 4 KiB per 0.604347 ns
LB_BW_GBPS = 11520.0   # peak operand demand of one tile of the largest preset: 2 cores x 144 x 8 b x 5 GHz


@dataclass(frozen=True)
class DeviceParams(Config):
    """Device figures. Defaults are the authors' ``default.yaml`` plus the values their code hard-codes.
    Range checks run in ``DotaConfig.validate`` (so errors name ``device.<field>``)."""

    # high-speed MZM (input/operand modulator)
    mzm_energy_fj_per_bit: float = 450.0
    mzm_static_mw: float = 0.0
    mzm_length_um: float = 260.0
    mzm_width_um: float = 20.0
    mzm_il_db: float = 1.2
    # microring modulator (MRR-bank baseline)
    ring_energy_fj_per_bit: float = 42.0
    ring_static_mw: float = 1.2
    ring_length_um: float = 9.66
    ring_width_um: float = 9.66
    ring_il_db: float = 0.95
    ring_il_uc_db: float = 0.1          # uncoupled (pass-by) ring loss
    # MRR router: WDM mux/demux, two per modulated element
    mrr_router_static_mw: float = 0.275
    mrr_router_length_um: float = 4.8
    mrr_router_width_um: float = 4.8
    mrr_router_il_db: float = 0.93
    # phase shifter (non-volatile: 0 mW) and directional coupler of each node
    ps_dynamic_mw: float = 0.0
    ps_static_mw: float = 0.0
    ps_il_db: float = 0.33
    ps_length_um: float = 100.0
    ps_width_um: float = 45.0
    dc_il_db: float = 0.33
    dc_length_um: float = 5.25
    dc_width_um: float = 2.4
    # photodetector (two per node, balanced)
    pd_power_mw: float = 1.1
    pd_sensitivity_dbm: float = -25.0
    pd_length_um: float = 4.0
    pd_width_um: float = 10.0
    # MZI of the MZI-mesh baseline
    mzi_energy_fj_per_bit: float = 450.0
    mzi_static_mw: float = 0.0
    mzi_length_um: float = 180.0
    mzi_width_um: float = 100.0
    mzi_il_db: float = 0.99
    mzi_response_ns: float = 2000.0     # reprogramming time (YAML: 2.0e-3 ms)
    # laser (power is computed from the link budget; the YAML's `power` is ignored), Y-branch, comb
    laser_length_um: float = 400.0
    laser_width_um: float = 300.0
    laser_wall_plug_eff: float = 0.2
    ybranch_il_db: float = 0.1
    ybranch_length_um: float = 1.8
    ybranch_width_um: float = 1.3
    comb_length_um: float = 1184.0
    comb_width_um: float = 1184.0
    # mixed-signal: TIA (YAML core.interface), ADC and DAC reference designs (hard-coded by the authors)
    tia_power_mw: float = 3.0
    tia_area_um2: float = 50.0
    adc_power_mw: float = 14.8          # SAR, 8 b, 10 GS/s
    adc_area_um2: float = 2850.0
    adc_ref_bits: int = 8
    adc_ref_gsps: float = 10.0
    dac_power_mw: float = 50.0          # capacitive, 8 b, 14 GS/s
    dac_area_um2: float = 11000.0
    dac_ref_bits: int = 8
    dac_ref_gsps: float = 14.0
    adder_power_mw: float = 0.2 / 4.39  # ISAAC's adder scaled to 14 nm
    adder_area_um2: float = 0.00024 / 2.7 * 1e6
    # memory energies per 16-bit word (YAML: mJ per 16-bit word); every access scales by bits/16
    dram_pj_per_word16: float = 62.4
    gb_pj_per_word16: float = 1.655     # GB2, 2 MB global buffer of 32 KB banks
    lb_pj_per_word16: float = 0.92      # GB1, 4 KB local buffer
    noc_pj_per_word16: float = 2.0      # Eyeriss
    rf_pj_per_word16: float = 0.073
    # memory sizes, areas and powers (CACTI, authors' entry_area_power_profile)
    lb_bytes: int = 4096                # M2_buffer_size
    gb_area_um2_per_4tiles: float = 14.348352e6   # 2 MB, scaled by tiles/4
    gb_power_mw_per_4tiles: float = 315.2512
    lb_area_um2: float = 0.0683105e6
    lb_power_mw: float = 0.172725
    pebuf_area_um2: float = 0.000305237e6         # 256 B PE operand buffer
    pebuf_power_mw: float = 0.0154
    # non-GEMM ("others") costs
    op_energy_pj: float = 0.1           # elementary digital op (100 fJ)
    softmax_pj_per_byte: float = 1.152  # 51.6/44.8, APCCAS 2018 softmax


@dataclass(frozen=True)
class RtlParams(Config):
    """What ``lego gen --accelerator dota`` generates besides the core geometry (``docs/dota.md``, "RTL").

    The generated design is the digital periphery of ``tiles`` tiles (0: the config's T) around a digital
    twin of the photonic cores, with the config's Nh, Nw, Nlambda, C, tau, bits and sharing flags. Sizes
    fixed at generation: the buffer capacities (``max_n1`` rows of M1, ``max_d`` reduction length,
    ``max_n2`` columns of M2 per job), the softmax row length ``tokens`` (the attention job's L) and the
    LayerNorm row length ``ln_n``. The rest are constants of the units: ``softmax_scale`` (logit units per
    S code; 0: 4 / 2^(act_bits-1), so the ADC's full scale is +-4), ``gelu_in_scale`` / ``gelu_out_scale``
    (real units per accumulator code / per DAC code; 0: the same +-4 full-scale rule), ``ln_frac_bits``,
    ``ln_gamma_frac`` (fraction bits of the int8 gamma) and ``ln_out_shift`` (-1: F + GF - (in_bits - 3),
    so +-4 sigma spans the DAC range). ``head_dim``, ``linear_n1``/``linear_d``/``linear_n2`` are the
    shapes ``lego sim DIR`` runs on default inputs.
    """

    tiles: int = 0
    tokens: int = 12
    head_dim: int = 8
    max_n1: int = 24
    max_d: int = 24
    max_n2: int = 24
    ln_n: int = 24
    linear_n1: int = 24
    linear_d: int = 20
    linear_n2: int = 10
    softmax_scale: float = 0.0
    gelu_in_scale: float = 0.0
    gelu_out_scale: float = 0.0
    ln_frac_bits: int = 10
    ln_gamma_frac: int = 6
    ln_out_shift: int = -1


@dataclass(frozen=True)
class DotaConfig(Config):
    """One photonic accelerator configuration (DOTA or one of the two baselines)."""

    name: str = "dota-b-4bit"
    kind: str = "dota"                  # dota | mrr | mzi
    # core and system
    nh: int = 12                        # core height: rows of nodes (N1 direction, operand M1)
    nw: int = 12                        # core width: columns of nodes (N2 direction, operand M2)
    n_lambda: int = 12                  # WDM wavelengths = reduction elements per node per cycle
    tiles: int = 4                      # T
    cores_per_tile: int = 2             # C
    freq_ghz: float = 5.0
    in_bits: int = 4                    # DAC / operand precision
    w_bits: int = 4
    act_bits: int = 4                   # ADC / output precision (also sets the laser power)
    # DOTA architecture features (the YAML's `arch`)
    tau: int = 3                        # time_accum_factor: cycles integrated before one ADC conversion
    input_sharing: bool = True          # input_mod_sharing_flag: M2 modulated once, broadcast to all tiles
    adc_sharing: bool = True            # adc_share_flag: the C cores of a tile share one ADC/TIA array
    arch: str = "all"                   # all (flags above) | crossbar | broadcast (authors' `-o`)
    full_range_factor: int = 1          # MRR baseline: 2 (inputs split into +/- halves)
    # model variants
    authors_compat: bool = True         # reproduce the authors' quirks (docs/dota.md lists each)
    # stall mode (ours): bandwidths in Gbit/s
    sram_clock_ghz: float = 0.5
    dram_bw_gbps: float = DRAM_BW_GBPS
    gb_bw_gbps: float = GB_BW_GBPS
    lb_bw_gbps: float = LB_BW_GBPS
    # digital periphery (staging, ADC read-out and accumulators, controller, softmax/LayerNorm/GELU):
    # "synth" (the DOTA presets) adds the figures synthesized from our RTL (data/periphery_synth.json,
    # accelerators/dota/periphery.py); "none" (the baselines, and the authors) leaves it out. The two
    # numbers below are added on top either way (a user's own figures; default 0).
    periphery: str = "none"
    periphery_area_um2: float = 0.0
    periphery_power_mw: float = 0.0
    digital_clock_ghz: float = 1.0      # periphery clock: its datapath is replicated ceil(freq / this) times
    # noise (1-sigma values; the authors' CLI takes 2-sigma: 0.03 / 0.05 / 2 deg)
    sigma_in: float = 0.015             # relative input (encoding) noise
    sigma_out: float = 0.025            # relative output (detection) noise
    sigma_phase_deg: float = 1.0        # phase drift, attention
    sigma_phase_linear_deg: float = 2.0  # phase drift, linear layers (hard-coded 2 deg by the authors)
    wdm_spacing_nm: float = 0.4
    device: DeviceParams = DeviceParams()
    rtl: RtlParams = RtlParams()

    # ---- derived -------------------------------------------------------------------------------
    @property
    def cores(self) -> int:
        return self.tiles * self.cores_per_tile

    @property
    def peak_macs_per_s(self) -> float:
        """DOTA peak: T*C*Nh*Nw*Nlambda*f."""
        return self.cores * self.nh * self.nw * self.n_lambda * self.freq_ghz * 1e9

    def dataflow(self) -> tuple[int, bool, bool, bool]:
        """Effective (tau, input_sharing, adc_sharing, crossbar_topology) after the ``arch`` option.

        ``all`` keeps the fields; ``crossbar`` and ``broadcast`` force tau = 1 and both sharing flags off,
        as the authors' ``-o`` does; ``broadcast`` also re-modulates M1 for every output column.
        """
        if self.arch == "all":
            return self.tau, self.input_sharing, self.adc_sharing, True
        return 1, False, False, self.arch == "crossbar"

    # ---- the scaffold: presets, YAML ``preset`` + ``bits`` -----------------------------------------
    @classmethod
    def presets(cls) -> dict[str, "DotaConfig"]:
        """``dota-b``, ``dota-l``, ``mrr``, ``mzi`` (4-bit) and each as ``<name>-<bits>bit``."""
        out = {p: preset_config(p, 4) for p in PRESETS}
        out.update({f"{p}-{b}bit": preset_config(p, b) for p in PRESETS for b in PRESET_BITS})
        return out

    @classmethod
    def _from_mapping(cls, d: Any, where: str = "config", base=None):
        """A YAML mapping: ``preset`` (a name of ``PRESETS``) and ``bits`` (4 or 8) pick the base, the
        other keys are fields (``device`` and ``rtl`` nested), as for every ``Config``."""
        if where == "config" and isinstance(d, dict) and base is None:
            d = dict(d)
            preset = d.pop("preset", "dota-b")
            bits = d.pop("bits", 4)
            if not isinstance(preset, str):
                raise LegoError(f"preset: must be a string, got {preset!r}")
            base = preset_config(preset, bits)
        try:
            return super()._from_mapping(d, where, base)
        except LegoError as e:          # the scaffold lists `preset`; `bits` is ours
            msg = str(e)
            if where == "config" and "unknown DotaConfig field (allowed: preset, " in msg:
                raise LegoError(msg.replace("(allowed: preset, ", "(allowed: preset, bits, ", 1)) from None
            raise

    # ---- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        need(self, bool(self.name), "name", "must be a non-empty string")
        need(self, self.kind in KINDS, "kind", f"must be one of {', '.join(KINDS)}")
        need(self, self.arch in ARCHS, "arch", f"must be one of {', '.join(ARCHS)}")
        if self.kind != "dota":
            need(self, self.arch == "broadcast", "arch", f"the {self.kind} baseline runs 'broadcast' only")
        for f in ("nh", "nw", "n_lambda", "tiles", "cores_per_tile", "tau", "full_range_factor"):
            need(self, getattr(self, f) > 0, f, "must be > 0")
        lo, hi = BITS_RANGE
        for f in ("in_bits", "w_bits", "act_bits"):
            need(self, lo <= getattr(self, f) <= hi, f, f"must be in {lo}..{hi}")
        d = self.device
        need(self, self.freq_ghz > 0, "freq_ghz", "must be > 0")
        need(self, self.freq_ghz <= d.adc_ref_gsps, "freq_ghz",
             f"must be <= {d.adc_ref_gsps:g} (the ADC's sample rate, GS/s)")
        need(self, self.freq_ghz <= d.dac_ref_gsps, "freq_ghz",
             f"must be <= {d.dac_ref_gsps:g} (the DAC's sample rate, GS/s)")
        for f in ("sram_clock_ghz", "dram_bw_gbps", "gb_bw_gbps", "lb_bw_gbps", "wdm_spacing_nm",
                  "digital_clock_ghz"):
            need(self, getattr(self, f) > 0, f, "must be > 0")
        need(self, self.periphery in PERIPHERY, "periphery", f"must be one of {', '.join(PERIPHERY)}")
        if self.periphery == "synth":
            need(self, self.kind == "dota", "periphery",
                 f"'synth' figures are for the DOTA periphery, not the {self.kind} baseline")
        for f in ("periphery_area_um2", "periphery_power_mw"):
            need(self, getattr(self, f) >= 0, f, "must be >= 0")
        for f in ("sigma_in", "sigma_out", "sigma_phase_deg", "sigma_phase_linear_deg"):
            need(self, getattr(self, f) >= 0, f, "must be >= 0")
        for f in fields(d):
            v = getattr(d, f.name)
            if f.name == "pd_sensitivity_dbm":
                continue
            if f.name.endswith("_eff"):
                need(d, 0 < v <= 1, f"device.{f.name}", "must be in (0, 1]")
            elif f.name in ("adc_ref_bits", "dac_ref_bits", "lb_bytes", "adc_ref_gsps", "dac_ref_gsps"):
                need(d, v > 0, f"device.{f.name}", "must be > 0")
            else:
                need(d, v >= 0, f"device.{f.name}", "must be >= 0")
        need(self, self.in_bits <= d.dac_ref_bits, "in_bits", f"must be <= device.dac_ref_bits={d.dac_ref_bits}")
        need(self, self.act_bits <= d.adc_ref_bits, "act_bits", f"must be <= device.adc_ref_bits={d.adc_ref_bits}")
        r = self.rtl
        need(r, r.tiles >= 0, "rtl.tiles", "must be >= 0 (0: the config's tiles)")
        for f in ("tokens", "head_dim", "max_n1", "max_d", "max_n2", "ln_n", "linear_n1", "linear_d", "linear_n2"):
            need(r, getattr(r, f) > 0, f"rtl.{f}", "must be > 0")
        for f in ("softmax_scale", "gelu_in_scale", "gelu_out_scale"):
            need(r, getattr(r, f) >= 0, f"rtl.{f}", "must be >= 0 (0: automatic)")
        need(r, 0 <= r.ln_frac_bits <= 16, "rtl.ln_frac_bits", "must be in 0..16")
        need(r, 0 <= r.ln_gamma_frac <= 7, "rtl.ln_gamma_frac", "must be in 0..7 (gamma is int8)")
        need(r, -1 <= r.ln_out_shift <= 63, "rtl.ln_out_shift", "must be in -1..63 (-1: automatic)")


# ---- presets: the authors' YAML tables ------------------------------------------------------------
# (YAML path) -> (our field, scale). device.* go into DeviceParams; the rest into DotaConfig.
_DEV_MAP: dict[str, tuple[str, float]] = {
    "mzi_modulator.energy_per_bit": ("mzm_energy_fj_per_bit", 1), "mzi_modulator.static_power": ("mzm_static_mw", 1),
    "mzi_modulator.length": ("mzm_length_um", 1), "mzi_modulator.width": ("mzm_width_um", 1),
    "mzi_modulator.insertion_loss": ("mzm_il_db", 1),
    "mrr_modulator.energy_per_bit": ("ring_energy_fj_per_bit", 1), "mrr_modulator.static_power": ("ring_static_mw", 1),
    "mrr_modulator.length": ("ring_length_um", 1), "mrr_modulator.width": ("ring_width_um", 1),
    "mrr_modulator.insertion_loss": ("ring_il_db", 1), "mrr_modulator.insertion_loss_uc": ("ring_il_uc_db", 1),
    "mrr_router.static_power": ("mrr_router_static_mw", 1), "mrr_router.length": ("mrr_router_length_um", 1),
    "mrr_router.width": ("mrr_router_width_um", 1), "mrr_router.insertion_loss": ("mrr_router_il_db", 1),
    "phase_shifter.dynamic_power": ("ps_dynamic_mw", 1), "phase_shifter.static_power": ("ps_static_mw", 1),
    "phase_shifter.insertion_loss": ("ps_il_db", 1), "phase_shifter.length": ("ps_length_um", 1),
    "phase_shifter.width": ("ps_width_um", 1),
    "direction_coupler.insertion_loss": ("dc_il_db", 1), "direction_coupler.length": ("dc_length_um", 1),
    "direction_coupler.width": ("dc_width_um", 1),
    "photo_detector.power": ("pd_power_mw", 1), "photo_detector.sensitivity": ("pd_sensitivity_dbm", 1),
    "photo_detector.length": ("pd_length_um", 1), "photo_detector.width": ("pd_width_um", 1),
    "mzi.energy_per_bit": ("mzi_energy_fj_per_bit", 1), "mzi.static_power": ("mzi_static_mw", 1),
    "mzi.length": ("mzi_length_um", 1), "mzi.width": ("mzi_width_um", 1), "mzi.insertion_loss": ("mzi_il_db", 1),
    "mzi.response_time": ("mzi_response_ns", 1e6),           # ms -> ns
    "laser.length": ("laser_length_um", 1), "laser.width": ("laser_width_um", 1),
    "laser.wall_plug_eff": ("laser_wall_plug_eff", 1),
    "y_branch.insertion_loss": ("ybranch_il_db", 1), "y_branch.length": ("ybranch_length_um", 1),
    "y_branch.width": ("ybranch_width_um", 1),
    "micro_comb.length": ("comb_length_um", 1), "micro_comb.width": ("comb_width_um", 1),
}
_IGNORED = {"mzi_modulator.type", "mrr_modulator.type", "mzi.type",
            "laser.power"}                                   # computed from the link budget instead


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@lru_cache(maxsize=None)
def _preset(preset: str, bits: int) -> DotaConfig:
    import yaml
    base = yaml.safe_load((DATA / "device_params__default.yaml").read_text())
    var = yaml.safe_load((DATA / f"device_params__{_VARIANT_FILE[preset]}_{bits}bit.yaml").read_text())
    flat = _flatten(_merge(base, var))
    dev: dict[str, Any] = {}
    top: dict[str, Any] = {"name": f"{preset}-{bits}bit"}
    core_kind = {"dota": "dota", "mrrbank": "mrr", "mzi": "mzi"}
    dm = {"DRAM": "dram_pj_per_word16", "DRAM_GB": "dram_pj_per_word16", "GB2": "gb_pj_per_word16",
          "GB1": "lb_pj_per_word16", "NoC": "noc_pj_per_word16", "RF": "rf_pj_per_word16"}
    simple = {"core.width": "nw", "core.height": "nh", "core.num_wavelength": "n_lambda",
              "core.work_freq": "freq_ghz", "core.precision.in_bit": "in_bits", "core.precision.w_bit": "w_bits",
              "core.precision.act_bit": "act_bits", "arch.num_tiles": "tiles", "arch.num_pe_per_tile": "cores_per_tile",
              "arch.full_range_support_factor": "full_range_factor", "arch.time_accum_factor": "tau"}
    for k, v in flat.items():
        if k.startswith("device."):
            sub = k[len("device."):]
            if sub in _IGNORED:
                continue
            field, scale = _DEV_MAP[sub]
            dev[field] = v * scale if scale != 1 else v
        elif k == "core.type":
            top["kind"] = core_kind[v]
        elif k in simple:
            top[simple[k]] = v
        elif k in ("arch.input_mod_sharing_flag", "arch.adc_share_flag"):
            top["input_sharing" if "input" in k else "adc_sharing"] = bool(v)
        elif k.startswith("arch.datamovement."):
            dev[dm[k.rsplit(".", 1)[1]]] = round(v * 1e9, 9)   # mJ per 16-bit word -> pJ
        elif k == "arch.memory_size.M2_buffer_size":
            dev["lb_bytes"] = v
        elif k == "core.interface.TIA.power":
            dev["tia_power_mw"] = float(v)
        elif k == "core.interface.TIA.area":
            dev["tia_area_um2"] = float(v)
        elif k in ("core.interface.ADC.choice", "core.interface.DAC.choice", "core.interface.ADC.sharing_factor",
                   "arch.weight_reuse_factor"):
            if v not in (1, -1):        # only the authors' hard-coded converters / fully weight-stationary
                raise LegoError(f"preset: unsupported {k}={v!r} in the {preset} tables")
        else:
            raise LegoError(f"preset: unknown key '{k}' in the {preset} tables")
    if top["kind"] != "dota":
        top["arch"] = "broadcast"       # the authors force the baselines to broadcast, fully weight-stationary
    else:
        top["periphery"] = "synth"      # ours: the synthesized digital periphery (data/periphery_synth.json)
    return DotaConfig(device=DeviceParams(**dev), **top)


def preset_config(name: str = "dota-b", bits: int = 4) -> DotaConfig:
    """One of ``PRESETS`` at 4 or 8 bits, exactly as the authors' tables give it."""
    if name not in PRESETS:
        raise LegoError(f"preset: unknown preset '{name}' (allowed: {', '.join(PRESETS)})")
    if isinstance(bits, bool) or bits not in PRESET_BITS:
        raise LegoError(f"bits: must be 4 or 8 (the authors' tables), got {bits!r}; "
                        "set in_bits/w_bits/act_bits to override")
    return _preset(name, bits)


def load_config(path: str | Path | None = None, preset: str = "dota-b", bits: int = 4,
                **overrides: Any) -> DotaConfig:
    """Preset ``preset`` at ``bits``, then the YAML file at ``path`` (if any), then ``overrides``.

    The YAML is a mapping of ``DotaConfig`` field names, with ``device`` and ``rtl`` nested mappings; it
    may also name ``preset`` and ``bits`` (they replace the arguments). Unknown keys, wrong types and
    out-of-range values raise ``LegoError`` naming the field (the ``accelerators.config`` scaffold).
    """
    if path is not None:
        import yaml
        p = Path(path)
        try:
            d = yaml.safe_load(p.read_text())
        except OSError as e:
            raise LegoError(f"--config: cannot read '{p}' ({e.strerror})") from None
        except yaml.YAMLError as e:
            raise LegoError(f"--config: '{p}' is not valid YAML ({str(e).splitlines()[0]})") from None
        d = {} if d is None else d
        if not isinstance(d, dict):
            raise LegoError(f"config: '{p}' must hold a mapping of DotaConfig fields")
        cfg = DotaConfig.from_dict({"preset": preset, "bits": bits, **d})
    else:
        cfg = preset_config(preset, bits) if isinstance(preset, str) else DotaConfig.from_dict({"preset": preset})
    if overrides:
        cfg = DotaConfig._from_mapping(overrides, base=cfg)
    return cfg

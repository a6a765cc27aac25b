"""DOTA / Lightening-Transformer photonic accelerator (arXiv 2305.19533): analytical latency, energy,
area and power model with the MRR-bank and MZI-mesh baselines, a stall mode, and a numpy noise model.
See docs/dota.md."""
from .config import PRESETS, DeviceParams, DotaConfig, load_config, preset_config
from .model import simulate
from .workloads import MODELS, Gemm, get_workload

__all__ = ["PRESETS", "DeviceParams", "DotaConfig", "load_config", "preset_config", "simulate", "MODELS",
           "Gemm", "get_workload"]

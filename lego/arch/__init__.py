"""Front end, layer 2: FU interconnect (min-cost arborescence), memory banks, address generators,
dataflow fusion → ArchGraph."""
from .graph import ArchGraph, ModeArch, TensorNet, build_arch

__all__ = ["ArchGraph", "ModeArch", "TensorNet", "build_arch"]

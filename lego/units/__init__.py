"""Reusable datapath units (Amaranth components) shared by the generated accelerators."""
from .softmax import SoftmaxUnit, softmax_cycles

__all__ = ["SoftmaxUnit", "softmax_cycles"]

"""Reusable datapath units (Amaranth components) shared by the generated accelerators."""
from .gelu import GELU_LATENCY, GeluUnit, gelu_cycles
from .layernorm import LayerNormUnit, layernorm_cycles
from .softmax import SoftmaxUnit, softmax_cycles

__all__ = ["SoftmaxUnit", "softmax_cycles", "GeluUnit", "gelu_cycles", "GELU_LATENCY", "LayerNormUnit",
           "layernorm_cycles"]

"""Reusable datapath units (Amaranth components) shared by the generated accelerators: the fixed-point
softmax (``softmax``), LayerNorm (``layernorm``) and GELU (``gelu``), the quick-select top-k engine
(``topk``), the bitonic sorter and run merger (``sorter``), bit-vector helpers (``bits``), lane packing for
testbenches (``lanes``, pure Python) and the top-level port wrapper (``wrapper``)."""
from .gelu import GELU_LATENCY, GeluUnit, gelu_cycles
from .layernorm import LayerNormUnit, layernorm_cycles
from .softmax import SoftmaxUnit, softmax_cycles
from .sorter import BitonicSorter, RunMerger
from .topk import TopKEngine
from .wrapper import Wrapper

__all__ = ["SoftmaxUnit", "softmax_cycles", "GeluUnit", "gelu_cycles", "GELU_LATENCY", "LayerNormUnit",
           "layernorm_cycles", "BitonicSorter", "RunMerger", "TopKEngine", "Wrapper"]

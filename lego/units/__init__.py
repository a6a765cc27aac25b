"""Reusable datapath units (Amaranth components) shared by the generated accelerators: the fixed-point
softmax (``softmax``), the quick-select top-k engine (``topk``), the bitonic sorter and run merger
(``sorter``, PointAcc's ranking units), bit-vector helpers (``bits``), lane
packing for testbenches (``lanes``, pure Python) and the top-level port wrapper (``wrapper``)."""
from .softmax import SoftmaxUnit, softmax_cycles
from .sorter import BitonicSorter, RunMerger, sorter_latency
from .topk import TopKEngine
from .wrapper import Wrapper

__all__ = ["SoftmaxUnit", "softmax_cycles", "TopKEngine", "Wrapper", "BitonicSorter", "RunMerger", "sorter_latency"]

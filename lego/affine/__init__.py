"""Front end, layer 1: workloads (affine loop nests) and dataflows (affine space-time maps)."""
from .workload import Affine, Tensor, Workload, parse_workload_file
from .dataflow import Dataflow, make_dataflow, PRESETS
from .library import WORKLOADS, builtin_workload

__all__ = ["Affine", "Tensor", "Workload", "parse_workload_file", "Dataflow", "make_dataflow",
           "PRESETS", "WORKLOADS", "builtin_workload"]

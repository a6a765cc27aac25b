"""PointAcc bit-exact integer golden models (numpy only; see docs/pointacc.md, "Golden models").

- ``quantize``: float -> integer coordinates, voxelization, downsampling, lexicographic sort keys.
- ``neighbors``: FPS, kNN, ball query with exact int64 squared distances and fixed tie rules.
- ``kernel_map``: sparse-conv kernel maps by sort-merge intersection (no hashing).
- ``requant``: int8 x int8/int32 linear layers, int64 accumulation, shift-and-saturate requantization.
- ``layers``: PointNet++ set abstraction, DGCNN EdgeConv, MinkowskiNet sparse convolution.

Bad arguments raise ``ValueError`` whose message starts with the parameter name.
"""
from ._checks import COORD_BITS, COORD_MAX, COORD_MIN
from .kernel_map import (KernelMap, kernel_map, kernel_map_dense, kernel_offsets, merge_intersect,
                         strided_kernel_map, submanifold_kernel_map)
from .layers import (EdgeConvOut, SetAbstractionOut, edge_conv, set_abstraction, set_abstraction_all,
                     sparse_conv)
from .neighbors import ball_query, fps, knn, sqdist
from .quantize import coord_keys, dequantize, downsample, keys_to_coords, quantize, unique_coords, voxelize
from .requant import Layer, linear, mlp, requantize

__all__ = [
    "COORD_BITS", "COORD_MIN", "COORD_MAX",
    "quantize", "dequantize", "coord_keys", "keys_to_coords", "unique_coords", "voxelize", "downsample",
    "sqdist", "fps", "knn", "ball_query",
    "KernelMap", "kernel_offsets", "merge_intersect", "kernel_map", "submanifold_kernel_map",
    "strided_kernel_map", "kernel_map_dense",
    "Layer", "requantize", "linear", "mlp",
    "SetAbstractionOut", "set_abstraction", "set_abstraction_all", "EdgeConvOut", "edge_conv", "sparse_conv",
]

"""Hand-written CUDA reference kernels for the workloads the LEGO accelerators run.

API (each checked against ``sw_reference``; without a GPU each call runs that numpy reference and
the package warns once):

  attention, attention_int8, pruned_attention, token_importance, head_importance,
  select_tokens, compact_kv, topk, pq_gemm, pq_gemm_split, int8_gemm,
  fps, fps_pointnet2_baseline, knn, ball_query, kernel_map

Inputs may be numpy arrays or torch tensors; GPU results come back as torch CUDA tensors for
torch inputs and as numpy arrays for numpy inputs.  See docs/cuda_kernels.md.
"""
from ._attention import (attention, attention_int8, compact_kv, head_importance, pruned_attention,
                         select_tokens, token_importance)
from ._gemm import int8_gemm, pq_gemm, pq_gemm_split
from ._points import ball_query, fps, fps_pointnet2_baseline, kernel_map, knn
from ._runtime import CU_FILES, SRC_DIR, gpu_available
from ._select import topk

__all__ = [
    "attention", "attention_int8", "pruned_attention", "token_importance", "head_importance",
    "select_tokens", "compact_kv", "topk", "pq_gemm", "pq_gemm_split", "int8_gemm", "fps",
    "fps_pointnet2_baseline", "knn", "ball_query", "kernel_map", "gpu_available", "CU_FILES",
    "SRC_DIR",
]

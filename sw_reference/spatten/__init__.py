"""Bit-accurate SpAtten reference: numerics (fixed), selection (topk), pruning algorithms (cascade)."""
from . import cascade, fixed, topk
from .cascade import CascadeState, attention_query_float, attention_query_int, spatten_layer
from .topk import keep_count, topk_engine, topk_reference

__all__ = ["cascade", "fixed", "topk", "CascadeState", "attention_query_float", "attention_query_int",
           "spatten_layer", "keep_count", "topk_engine", "topk_reference"]

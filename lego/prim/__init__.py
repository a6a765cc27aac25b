"""Back end: the primitive graph (mul/add/reg/mux/mem ports) and its named passes."""
from .graph import Edge, Node, PrimGraph
from .lower import lower

__all__ = ["Edge", "Node", "PrimGraph", "lower"]

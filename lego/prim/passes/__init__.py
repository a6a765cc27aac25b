"""Named back-end passes, each a pure function PrimGraph → PrimGraph."""
from .reduction import extract_reduction_trees
from .schedule import schedule_asap, schedule_lp

PIPELINES = {
    "opt": (extract_reduction_trees, schedule_lp),
    "naive": (schedule_asap,),
}

__all__ = ["extract_reduction_trees", "schedule_asap", "schedule_lp", "PIPELINES"]

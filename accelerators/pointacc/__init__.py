"""PointAcc (MICRO 2021) on lego: point-cloud loading and bundled data.

The bit-exact integer golden models live in ``sw_reference.pointacc``; see docs/pointacc.md.
"""
from .cloud import DATA_DIR, load_cloud

__all__ = ["DATA_DIR", "load_cloud"]

"""Shared inputs for the PointAcc golden-model tests: crops of the bundled Ouster frames."""
import numpy as np
import pytest
from pointacc_testdata import CM, FRAMES, crop, load_frame


@pytest.fixture(scope="session", params=FRAMES, ids=["os1", "os2"])
def ouster_crop(request) -> np.ndarray:
    """A 4096-point float32 crop of one Ouster frame (metres)."""
    return crop(load_frame(request.param))


@pytest.fixture(scope="session")
def ouster_crop_cm(ouster_crop) -> np.ndarray:
    """The crop quantized to integer centimetres, int32; every squared distance is exact in float32."""
    q = np.rint(ouster_crop.astype(np.float64) * CM).astype(np.int32)
    span = q.max(axis=0).astype(np.int64) - q.min(axis=0)
    assert int((span ** 2).sum()) < 2 ** 24
    return q

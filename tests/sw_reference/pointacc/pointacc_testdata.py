"""Bundled-data helpers for the PointAcc golden-model tests (numpy only, not the package loader)."""
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[3] / "accelerators" / "pointacc" / "data"
FRAMES = ("ouster_os1_128_frame0.bin", "ouster_os2_128_frame0.bin")
CROP_POINTS = 4096
CM = 100.0  # quantization scale of the crops: centimetres


def load_frame(name: str) -> np.ndarray:
    """x, y, z (float32, metres) of a bundled KITTI-layout frame."""
    return np.fromfile(DATA / name, dtype="<f4").reshape(-1, 4)[:, :3]


def crop(xyz: np.ndarray, n: int = CROP_POINTS) -> np.ndarray:
    """The n points nearest the sensor in the max(|x|, |y|) norm (a centred square box), in file order."""
    keep = np.sort(np.argsort(np.abs(xyz[:, :2]).max(axis=1), kind="stable")[:n])
    return xyz[keep]

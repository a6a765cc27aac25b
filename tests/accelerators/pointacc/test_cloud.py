"""load_cloud: the three formats against plain numpy readers, the bundled data's SHA-256 sums and
package-data, and one-line LegoError messages for every bad input."""
import hashlib
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from accelerators.pointacc import DATA_DIR, load_cloud
from lego.errors import LegoError

REPO = Path(__file__).resolve().parents[3]

SHA256 = {
    "ouster_os1_128_frame0.bin": "4eeeac5c7a036730eb2c5988468e3b2f3326cf7ac2113e21368d5e3d57f20237",
    "ouster_os2_128_frame0.bin": "0336eb8152aebd7f0efae9efa178bb8a52164d474a3716cd1e2f846506a7735b",
    "ouster_os1_128_metadata.json": "3df9e8ebbd62c79aaea34981b0c838d6ada847d9f9b5d0af95770a4036057e49",
    "ouster_os2_128_metadata.json": "7e77f644a80e998a9c60ac67309200c2b299fcaf6a140c8bec209af14372334a",
    "spot_10k_normal.txt": "087e9eeae84337c94d26ca5f06ca502decc66996443dd1135277878c91d93bb7",
    "LICENSE-ouster-sdk-BSD-3-Clause.txt": "a4bbe45cd35bbe91e1f64f47595ce69a99a3ac07bfb590382bde7156c81b0276",
    "LICENSE-spot-CC0-1.0.txt": "6d489af6292662d9e36d34ce49423784984a5f6e41d7b58f49b01264df59fa03",
}


def test_bundled_data_sha256_and_readme():
    readme = (DATA_DIR / "README.md").read_text()
    listed = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M))
    assert listed == SHA256
    for name, digest in SHA256.items():
        assert hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest() == digest, name
    assert {p.name for p in DATA_DIR.iterdir()} == set(SHA256) | {"README.md"}


def test_package_data_ships_the_data():
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    for pattern in ("*.bin", "*.txt", "*.json", "README.md", "LICENSE*"):
        assert pattern in conf


@pytest.mark.parametrize("name,n", [("ouster_os1_128_frame0.bin", 107647), ("ouster_os2_128_frame0.bin", 119682)])
def test_kitti_bin(name, n):
    xyz = load_cloud(DATA_DIR / name)
    raw = np.frombuffer((DATA_DIR / name).read_bytes(), dtype="<f4").reshape(-1, 4)
    assert xyz.shape == (n, 3) and xyz.dtype == np.float32 and xyz.flags.c_contiguous
    assert np.array_equal(xyz, raw[:, :3])
    assert np.ptp(xyz[:, 0]) > 100  # an outdoor scan, not a constant


def test_modelnet_txt():
    xyz = load_cloud(str(DATA_DIR / "spot_10k_normal.txt"))
    rows = [line.split(",") for line in (DATA_DIR / "spot_10k_normal.txt").read_text().splitlines()]
    want = np.array([[float(v) for v in r[:3]] for r in rows], dtype=np.float32)
    assert xyz.shape == (10000, 3) and xyz.dtype == np.float32
    assert np.array_equal(xyz, want)
    assert abs(np.linalg.norm(xyz.astype(np.float64), axis=1).max() - 1.0) < 1e-5  # pc_normalize: max radius 1


@pytest.mark.parametrize("dtype,cols", [(np.float64, 5), (np.float32, 3), (np.int16, 4)])
def test_npy(tmp_path, dtype, cols):
    a = (np.random.default_rng(cols).standard_normal((77, cols)) * 100).astype(dtype)
    f = tmp_path / "cloud.npy"
    np.save(f, a)
    xyz = load_cloud(f)
    assert xyz.dtype == np.float32 and np.array_equal(xyz, a[:, :3].astype(np.float32))


def test_txt_and_bin_written_here(tmp_path):
    a = np.random.default_rng(3).standard_normal((50, 4)).astype(np.float32)
    a.tofile(tmp_path / "x.bin")
    assert np.array_equal(load_cloud(tmp_path / "x.bin"), a[:, :3])
    np.savetxt(tmp_path / "x.txt", a.astype(np.float64), delimiter=",", fmt="%.9g")
    assert np.array_equal(load_cloud(tmp_path / "x.txt"), a[:, :3])


# bad text inputs: kind -> (file text, expected message; None: numpy's wording, checked for the prefix
# (and, for words, the bad token) only)
BAD_TEXT = {
    "empty_txt": ("", "empty cloud (0 points)"),
    "inf_txt": ("0,0,0\n1,inf,2\n", "1 of 2 points have NaN or Inf coordinates (first at row 1)"),
    "suffix": ("0,0,0\n", "unknown suffix '.ply'; expected one of .bin, .txt, .npy"),
    "no_suffix": ("0,0,0\n", "unknown suffix '(none)'; expected one of .bin, .txt, .npy"),
    "two_cols": ("0,1\n2,3\n", "need at least 3 columns (x, y, z), got 2"),
    "words": ("x,y,z\n1,2,3\n", None),
    "ragged": ("1,2,3\n4,5\n", None),
}


def _bad(tmp_path, kind):
    """Write one bad input; returns (path, expected message after '--cloud: <path>: ')."""
    f = tmp_path / {"truncated": "t.bin", "empty_bin": "e.bin", "empty_txt": "e.txt", "nan_npy": "n.npy",
                    "inf_txt": "i.txt", "suffix": "c.ply", "no_suffix": "cloud", "two_cols": "c.txt",
                    "words": "w.txt", "pickle": "p.npy", "npy_3d": "d.npy", "missing": "absent.bin",
                    "dir": "sub.bin", "ragged": "r.txt", "huge": "h.npy"}[kind]
    if kind in BAD_TEXT:
        text, msg = BAD_TEXT[kind]
        f.write_text(text)
        return f, msg
    if kind == "truncated":
        np.zeros(10, np.float32).tofile(f)
        return f, "truncated KITTI .bin: 40 bytes is not a multiple of 16 (float32 x, y, z, intensity per point)"
    if kind == "empty_bin":
        f.write_bytes(b"")
        return f, "empty cloud (0 points)"
    if kind == "nan_npy":
        a = np.zeros((9, 3))
        a[4, 1] = np.nan
        a[7, 2] = -np.inf
        np.save(f, a)
        return f, "2 of 9 points have NaN or Inf coordinates (first at row 4)"
    if kind == "pickle":
        np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        return f, None
    if kind == "npy_3d":
        np.save(f, np.zeros((2, 3, 3)))
        return f, "expected a 2-D (n, 3+) array, got shape (2, 3, 3)"
    if kind == "huge":
        np.save(f, np.full((2, 3), 1e300))
        return f, "coordinates overflow float32"
    if kind == "dir":
        f.mkdir()
        return f, "not a regular file"
    return f, "no such file"


KINDS = ["truncated", "empty_bin", "empty_txt", "nan_npy", "inf_txt", "suffix", "no_suffix", "two_cols", "words",
         "ragged", "pickle", "npy_3d", "huge", "dir", "missing"]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs(tmp_path, kind):
    f, tail = _bad(tmp_path, kind)
    with pytest.raises(LegoError) as e:
        load_cloud(f)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"--cloud: {f}: ")
    if tail is not None:
        assert msg == f"--cloud: {f}: {tail}"
    elif kind in ("ragged", "words"):
        assert msg.startswith(f"--cloud: {f}: not comma-separated numbers (")
        assert kind == "ragged" or "'x'" in msg
    else:
        assert msg.startswith(f"--cloud: {f}: not a readable .npy array (")

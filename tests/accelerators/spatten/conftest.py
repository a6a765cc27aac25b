import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")


def _generate(cfg, out):
    """The directory as `lego gen --accelerator spatten` writes it; returns its manifest."""
    from accelerators.spatten import ACCELERATOR
    ACCELERATOR.generate(cfg, out)
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="session")
def spatten_rtl_dir(tmp_path_factory):
    """The SpAtten RTL generated once per session with the small test config (D = 8, 1 key / 1 V row per
    cycle, top-k capacity 64)."""
    from accelerators.spatten.gen import small_config
    out = tmp_path_factory.mktemp("spatten_rtl") / "d"
    return out, _generate(small_config(), out)


@pytest.fixture(scope="session")
def spatten_rtl_dir_requant_v(tmp_path_factory):
    """Multi-lane RTL (4 keys / 3 V rows per cycle) with requant_values=True (V LSBs refetched on
    requantized rows, R lanes of them)."""
    from accelerators.spatten.gen import lanes_config
    out = tmp_path_factory.mktemp("spatten_rtl_rv") / "d"
    return out, _generate(lanes_config().replace(requant_values=True, topk_max_n=32), out)


@pytest.fixture(scope="session")
def spatten_rtl_dir_lanes(tmp_path_factory):
    """Multi-lane RTL: 4 keys (Q.K) and 3 V rows (P.V) per cycle (gen.lanes_config)."""
    from accelerators.spatten.gen import lanes_config
    out = tmp_path_factory.mktemp("spatten_rtl_lanes") / "d"
    return out, _generate(lanes_config(), out)

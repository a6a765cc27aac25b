"""cocotb bench for tests/units/test_layernorm_rtl.py: drives several LayerNormUnit instances (ports
prefixed ``u<k>_``) concurrently from a JSON stimulus file and records what they did in a JSON result
file. The checks against sw_reference.layernorm_fx are made by the pytest side; this bench only fails on
protocol errors it cannot record (a timeout, a stray out_valid). Same structure as softmax_bench.py,
with gamma and beta driven beside each x.

The row streamer, its timing convention and the stimulus/result files: _bench.py.
"""
from __future__ import annotations

import cocotb
from _bench import load_stim, save_result, stream_rows


@cocotb.test()
async def layernorm_rows(dut):
    inputs = {"in_data": "rows", "in_gamma": "gammas", "in_beta": "betas"}
    result = await stream_rows(dut, load_stim("layernorm"), "N", inputs, signed_out=True)
    save_result("layernorm", result)

"""cocotb bench for tests/units/test_softmax_rtl.py: drives several SoftmaxUnit instances (ports
prefixed ``u<k>_``) concurrently from a JSON stimulus file and records what they did in a JSON result
file. The checks against sw_reference.softmax_fx are made by the pytest side; this bench only fails on
protocol errors it cannot record (a timeout, a stray out_valid).

The row streamer, its timing convention and the stimulus/result files: _bench.py.
"""
from __future__ import annotations

import cocotb
from _bench import load_stim, save_result, stream_rows


@cocotb.test()
async def softmax_rows(dut):
    result = await stream_rows(dut, load_stim("softmax"), "L", {"in_data": "rows"}, signed_out=False)
    save_result("softmax", result)

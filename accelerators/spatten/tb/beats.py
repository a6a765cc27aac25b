"""The K/V memory beats of spatten_top, for the cocotb benches: spatten_top moves K keys / R V rows per beat
(``<m>req_count`` tokens on ``<m>req_index`` lanes 0..count-1, answered by one ``<m>resp`` beat carrying
their rows on the same lanes). Lane packing itself is ``lego.units.lanes``."""
from lego.units.lanes import pack, unpack


def request_beat(dut, mem, index_bits):
    """The token indices of the ``mem`` ('k' or 'v') request beat seen this cycle."""
    count = int(getattr(dut, f"{mem}req_count").value)
    return unpack(int(getattr(dut, f"{mem}req_index").value), count, index_bits, signed=False)


def response_beat(rows, idxs, bits):
    """The packed rows of tokens ``idxs`` for a response beat (unused lanes stay 0)."""
    return pack([x for j in idxs for x in rows[j]], bits)

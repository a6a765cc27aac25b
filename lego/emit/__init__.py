"""Emission: PrimGraph → Amaranth → Verilog-2005, plus manifest, report, file list, FuseSoC core, bench."""

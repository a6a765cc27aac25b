"""Hand-built Amaranth units of the SpAtten pipeline."""

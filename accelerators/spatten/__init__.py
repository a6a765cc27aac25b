"""SpAtten (HPCA 2021) on lego: config, generated RTL (special units + a pluggable dot-product datapath)."""
from .config import SpAttenConfig

__all__ = ["SpAttenConfig"]

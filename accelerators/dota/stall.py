"""Stall mode (ours, not the authors'): walk DOTA's output-stationary mapping step by step and let the
DRAM, global-buffer (GB) and local-buffer (LB) bandwidths stall the photonic core.

Mapping. A GEMM runs as steps (head, row group g, column chunk j). Row group g covers T*Nh rows of M1,
one Nh-row block per tile; column chunk j is Nw columns of M2, broadcast to the tiles (or copied to each
tile without input sharing). Within a step the C cores of a tile split the iter_D = ceil(D/Nl) reduction
chunks, so a step takes c = ceil(iter_D / C) core cycles. Summed, this is the mapping's own cycle count;
the overlapped mode's ceil(iter_N1*iter_N2*iter_D*h / (T*C)) packs the tiles perfectly and is a lower
bound, equal when T*Nh divides N1 and C divides iter_D.

Buffers decide what overlaps. Each tile's LB holds its Nh x D block of M1 (``device.lb_bytes``):
- room for two blocks (ping-pong): the next group's block streams in spread over the current group;
- room for one: the block is loaded in one burst at j = 0 that the core waits for (exposed);
- no room: the block streams from the GB again at every step.
The GB (2 MB) holds two groups' weights, so the DRAM -> GB weight fetch of linear layers (each weight
once) is always spread over a group's steps. Attention operands are on chip: no DRAM traffic.

Traffic of one step, in words (times in_bits), each level streaming in parallel:
- DRAM (linear layers): r_g * D / iter_N2, r_g being the group's rows.
- GB, one port for reads and writes: the M1 fill (as above), the DRAM fill, the M2 chunk D * w_j (once
  with input sharing, else once per active tile) and the outputs r_g * w_j.
- LB, ping-pong, so reads and writes proceed in parallel, each at ``lb_bw_gbps``; the busiest of the
  T tile LBs and the shared M2 LB counts. A tile reads its M1 block (Nh * D, or Nh * D * w_j in
  broadcast mode) and writes the M1 fill and its outputs (Nh * w_j); the M2 chunk is written and read
  once (in the shared LB with input sharing, else in every tile LB).

Timing. Loads run one step ahead: the data of step s moves while step s-1 computes, so step s waits
max(0, load_s - c_{s-1}) cycles, plus any exposed burst. The inference is a stream of steps (embed,
12*factor blocks, head), and back-to-back inferences wrap it around: the first step's loads overlap the
previous inference's last step. ``stall_cycles`` sums the waits, per GEMM whose data is loading.
Energy is unchanged (it counts events, and stalls add none).

Defaults (Gbit/s): DRAM 2^43 bit/s and GB 4 KiB per 0.604347 ns are the authors' figures; the LB's
11,520 per port is the peak operand read demand of one tile of the largest preset (2 cores x 144
elements x 8 b x 5 GHz).
"""
from __future__ import annotations

import math

import numpy as np

from .config import DotaConfig
from .workloads import Gemm, Workload


def _ceil(a: float) -> int:
    return int(math.ceil(a - 1e-12))


def gemm_steps(cfg: DotaConfig, g: Gemm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(compute, overlapped load, exposed load) core cycles of every step of one instance of ``g``."""
    T, C, nh, nw, nl, b = cfg.tiles, cfg.cores_per_tile, cfg.nh, cfg.nw, cfg.n_lambda, cfg.in_bits
    _, share_in, _, xbar = cfg.dataflow()
    G, it2, itd = _ceil(g.n1 / (T * nh)), _ceil(g.n2 / nw), _ceil(g.d / nl)
    c = _ceil(itd / C)
    dd = g.d
    r = np.minimum(T * nh, g.n1 - np.arange(G) * T * nh)[:, None].astype(float)       # rows of group g
    act = np.ceil(r / nh)                                                               # active tiles
    rows_t = np.minimum(nh, r)                                                          # busiest tile
    w = np.minimum(nw, g.n2 - np.arange(it2) * nw)[None, :].astype(float)              # cols of chunk j
    first = np.broadcast_to((np.arange(it2) == 0)[None, :], (G, it2))
    blocks_in_lb = cfg.device.lb_bytes // max(1, _ceil(nh * dd * b / 8))
    # M1 fill of the group's block, per step: spread over the group (ping-pong LB), one exposed burst at
    # j = 0 (room for one block only), or streamed at every step (the block does not fit).
    if blocks_in_lb >= 2:
        fill_share, exposed_fill, stream = 1.0 / it2, False, False
    elif blocks_in_lb == 1:
        fill_share, exposed_fill, stream = 0.0, True, False
    else:
        fill_share, exposed_fill, stream = 1.0, False, True
    fill = np.full((G, it2), fill_share) if not stream else np.ones((G, it2))
    dram = (r * dd / it2) * np.ones((1, it2)) if g.is_linear else np.zeros((G, it2))   # GB holds 2 groups
    m2_gb = dd * w * (1.0 if share_in else act)
    gb = fill * r * dd + dram + m2_gb + r * w
    t_read = rows_t * dd * (1.0 if xbar else w)
    t_write = fill * rows_t * dd + rows_t * w
    if share_in:
        lb_rd, lb_wr = np.maximum(t_read, dd * w), np.maximum(t_write, dd * w)
    else:
        lb_rd, lb_wr = t_read + dd * w, t_write + dd * w
    f = cfg.freq_ghz
    bpc = {"dram": cfg.dram_bw_gbps / f, "gb": cfg.gb_bw_gbps / f, "lb": cfg.lb_bw_gbps / f}  # bits/cycle
    load = np.maximum.reduce([dram * b / bpc["dram"], gb * b / bpc["gb"],
                              np.maximum(lb_rd, lb_wr) * b / bpc["lb"]])
    exposed = np.zeros((G, it2))
    if exposed_fill:
        exposed = np.where(first, np.maximum(r * dd * b / bpc["gb"], rows_t * dd * b / bpc["lb"]), 0.0)
    load, exposed = np.tile(load.ravel(), g.heads), np.tile(exposed.ravel(), g.heads)
    return np.full(load.shape, c, dtype=float), load, exposed


def stall_schedule(cfg: DotaConfig, wl: Workload) -> list[tuple[int, int]]:
    """(compute cycles, stall cycles) per GEMM of ``wl`` (totals over its ``count`` instances).

    Block GEMMs (``count`` = the workload's ``blocks``) run interleaved block by block; the others, and
    every GEMM of a user's list, run their instances back to back, in list order.
    """
    per = [gemm_steps(cfg, g) for g in wl.gemms]
    order: list[int] = []
    blk = [i for i, g in enumerate(wl.gemms) if wl.blocks and g.count == wl.blocks]
    i = 0
    while i < len(wl.gemms):
        if blk and i == blk[0]:
            order += blk * wl.blocks
            i = blk[-1] + 1
        else:
            order += [i] * wl.gemms[i].count
            i += 1
    comp = np.concatenate([per[k][0] for k in order])
    load = np.concatenate([per[k][1] for k in order])
    exposed = np.concatenate([per[k][2] for k in order])
    owner = np.concatenate([np.full(per[k][0].shape, k) for k in order])
    prev_c = np.roll(comp, 1)                       # step s's loads overlap step s-1 (wrapping around)
    stall = np.ceil(np.maximum(load - prev_c, 0.0) + exposed - 1e-9)
    n = len(wl.gemms)
    comp_g = np.bincount(owner, weights=comp, minlength=n)
    stall_g = np.bincount(owner, weights=stall, minlength=n)
    return [(int(round(comp_g[k])), int(round(stall_g[k]))) for k in range(n)]

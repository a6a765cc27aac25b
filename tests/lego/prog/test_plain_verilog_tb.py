"""A programmable design driven as an integrator would drive it: a plain Verilog-2005 testbench written from
docs/programmable.md alone (Ports, AXI4 subset, Commands, Programs) and the DRAM model described in the
bench's docstring (lego/prog/bench.py: ``PipelinedRead``/``PipelinedWrite``), here an AXI4 slave in Verilog
over a byte array, run by Icarus (``iverilog -g2005``) and by Verilator (``--binary --timing``) with no
cocotb and no lego code in the loop.

One simulation runs several programs on one design, the way a system would. On a fused ws+os design (emitted
flat): a ws layer, then an os layer of another shape with no reset between (a mode switch), then an os layer
aborted by a reset in the middle of its DMA traffic (the slave is reset with it, as a system's interconnect
would be), and the same os layer run again from its first command, then the first ws layer again. On a
single-dataflow ws design (emitted hierarchically) the same sequence with two ws layers of different shapes. On a
conv design (hardware im2col) a strided padded conv, a grouped conv in the other mode, aborted and rerun, and a
GEMM, each from the DRAM layout docs/programmable.md gives (NHWC input, zero region, [G, R, S, Cg, Kg] kernel).
Every run's Y is read back from the DRAM image and compared with numpy's ``X @ W`` (a direct convolution for
the conv layers) on random int8 data (an independent oracle), and the
design's ``cycles`` register with the cycle engine's prediction that ``lego compile`` wrote beside the
program (the same DRAM latency), exactly."""
import json
import subprocess

import numpy as np
import pytest

from lego.cli import main
from lego.toolchain import require

LAT = 7
BB = 8                                  # 64-bit AXI: bytes per beat

TB = r"""
`timescale 1ns/1ps
module tb;
  localparam BB = %(BB)d, SIZE = %(SIZE)d, L = %(LAT)d, Q = 4096;
  reg clk = 0, rst = 1;
  always #5 clk = ~clk;
  reg [7:0] mem [0:SIZE-1];
  reg [63:0] cmds [0:4095];
  reg cmd_valid = 0;
  reg [63:0] cmd_data = 0;
  wire cmd_ready, busy, done;
  wire [31:0] cycles;
  wire arid, awid, arvalid, rready, awvalid, wvalid, wlast, bready;
  wire [31:0] araddr, awaddr;
  wire [7:0] arlen, awlen;
  wire [2:0] arsize, awsize;
  wire [1:0] arburst, awburst;
  wire [BB*8-1:0] wdata;
  wire [BB-1:0] wstrb;
  reg arready = 0, rvalid = 0, rlast = 0, awready = 0, wready = 0, bvalid = 0;
  reg [BB*8-1:0] rdata = 0;
  %(TOP)s dut(.clk(clk), .rst(rst), .cmd_valid(cmd_valid), .cmd_ready(cmd_ready), .cmd_data(cmd_data),
    .busy(busy), .done(done), .cycles(cycles),
    .m_axi_arid(arid), .m_axi_araddr(araddr), .m_axi_arlen(arlen), .m_axi_arsize(arsize),
    .m_axi_arburst(arburst), .m_axi_arvalid(arvalid), .m_axi_arready(arready), .m_axi_rid(1'b0),
    .m_axi_rdata(rdata), .m_axi_rresp(2'b00), .m_axi_rlast(rlast), .m_axi_rvalid(rvalid), .m_axi_rready(rready),
    .m_axi_awid(awid), .m_axi_awaddr(awaddr), .m_axi_awlen(awlen), .m_axi_awsize(awsize),
    .m_axi_awburst(awburst), .m_axi_awvalid(awvalid), .m_axi_awready(awready), .m_axi_wdata(wdata),
    .m_axi_wstrb(wstrb), .m_axi_wlast(wlast), .m_axi_wvalid(wvalid), .m_axi_wready(wready),
    .m_axi_bid(1'b0), .m_axi_bresp(2'b00), .m_axi_bvalid(bvalid), .m_axi_bready(bready));

  // ---- the DRAM: read addresses accepted at once, a burst's first beat capturable L + 2 edges after its
  // address, beats in order one per cycle; write beats taken while a burst is open, the response L + 2
  // edges after the last beat, in order
  integer t, i, errors;
  integer rq_t [0:Q-1]; integer rq_a [0:Q-1]; integer rq_n [0:Q-1]; integer rh, rt;
  integer wq_a [0:Q-1]; integer wq_n [0:Q-1]; integer wh, wt;
  integer bq [0:Q-1]; integer bh, bt;
  reg ar_hs, r_hs, aw_hs, w_hs, b_hs;
  always @(posedge clk) begin
    if (rst) begin
      rh = 0; rt = 0; wh = 0; wt = 0; bh = 0; bt = 0; t = 0;
      arready <= 1; awready <= 1; rvalid <= 0; rlast <= 0; wready <= 0; bvalid <= 0;
    end else begin
      ar_hs = arvalid & arready; r_hs = rvalid & rready; aw_hs = awvalid & awready;
      w_hs = wvalid & wready; b_hs = bvalid & bready;
      t = t + 1;
      if (ar_hs) begin
        if (arburst != 2'd1 || (1 << arsize) != BB || arid != 0) begin
          $display("ERROR AR burst %%0d size %%0d id %%0d", arburst, arsize, arid); errors = errors + 1;
        end
        rq_t[rt %% Q] = t + 2 + L; rq_a[rt %% Q] = araddr; rq_n[rt %% Q] = arlen + 1; rt = rt + 1;
      end
      if (r_hs) begin
        rq_a[rh %% Q] = rq_a[rh %% Q] + BB; rq_n[rh %% Q] = rq_n[rh %% Q] - 1;
        if (rq_n[rh %% Q] == 0) rh = rh + 1;
      end
      if (rh != rt && rq_t[rh %% Q] <= t + 1) begin
        rvalid <= 1; rlast <= rq_n[rh %% Q] == 1;
        for (i = 0; i < BB; i = i + 1) rdata[8*i +: 8] <= mem[rq_a[rh %% Q] + i];
      end else begin
        rvalid <= 0; rlast <= 0;
      end
      if (w_hs) begin
        for (i = 0; i < BB; i = i + 1) if (wstrb[i]) mem[wq_a[wh %% Q] + i] = wdata[8*i +: 8];
        wq_a[wh %% Q] = wq_a[wh %% Q] + BB; wq_n[wh %% Q] = wq_n[wh %% Q] - 1;
        if (wlast != (wq_n[wh %% Q] == 0)) begin $display("ERROR WLAST"); errors = errors + 1; end
        if (wq_n[wh %% Q] == 0) begin
          wh = wh + 1;
          bq[bt %% Q] = (bh != bt && bq[(bt - 1) %% Q] + 1 > t + 2 + L) ? bq[(bt - 1) %% Q] + 1 : t + 2 + L;
          bt = bt + 1;
        end
      end
      if (aw_hs) begin
        if (awburst != 2'd1 || (1 << awsize) != BB || awid != 0) begin
          $display("ERROR AW burst %%0d size %%0d id %%0d", awburst, awsize, awid); errors = errors + 1;
        end
        wq_a[wt %% Q] = awaddr; wq_n[wt %% Q] = awlen + 1; wt = wt + 1;
      end
      if (b_hs) bh = bh + 1;
      bvalid <= bh != bt && bq[bh %% Q] <= t + 1;
      wready <= wh != wt;
    end
  end

  // ---- the host: a command presented in the cycle after the previous one was accepted
  integer idx, ncmd, run, k;
  reg running = 0;
  reg [8*64-1:0] fname;
  always @(posedge clk) if (running && !rst && cmd_valid && cmd_ready) begin
    idx = idx + 1;
    if (idx < ncmd) cmd_data <= cmds[idx]; else cmd_valid <= 0;
  end

  task start(input integer n);
    begin
      @(negedge clk);
      ncmd = n; idx = 0; cmd_data = cmds[0]; cmd_valid = 1; running = 1;
    end
  endtask

  task finish_run(input integer r);
    begin
      k = 0;
      while (!(idx == ncmd && done) && k < 200000) begin @(negedge clk); k = k + 1; end
      running = 0;
      if (k >= 200000) begin $display("TIMEOUT run %%0d idx %%0d", r, idx); errors = errors + 1; end
      $display("RUN %%0d cycles %%0d busy %%0d", r, cycles, busy);
      $sformat(fname, "out%%0d.hex", r);
      $writememh(fname, mem);
    end
  endtask

  task reset(input integer n);
    begin
      @(negedge clk); rst = 1; running = 0; cmd_valid = 0;
      repeat (n) @(negedge clk);
      rst = 0;
    end
  endtask

  initial begin
    errors = 0;
%(BODY)s
    $display("ERRORS %%0d", errors);
    $finish;
  end
endmodule
"""


def _compile(d, layer, mode, out):
    assert main(["compile", str(d), "--layer", layer, "--mode", mode, "--dram-latency", str(LAT),
                 "--out", str(out)]) == 0
    return json.loads(out.with_name(out.name + ".json").read_text())


def _dram(prog, rng):
    """The program's DRAM image with random int8 X and W at the placement it names."""
    mem = np.zeros(prog["dram_bytes"], np.uint8)
    mats = {}
    for t in ("X", "W"):
        p = prog["dram"][t]
        a = rng.integers(-128, 128, p["shape"], dtype=np.int8)
        for r in range(a.shape[0]):
            mem[p["addr"] + r * p["stride"]:][:a.shape[1]] = a[r].view(np.uint8)
        mats[t] = a
    return mem, mats


def _layer(prog):
    """The one layer record of a format-2 (conv) program, None for a GEMM program."""
    return prog["layers"][0] if prog.get("format") == 2 else None


def _dram_conv(prog, rng):
    """A conv program's DRAM image (docs/programmable.md, "DRAM layout of a conv layer"): random int8 input NHWC
    and kernel [G, R, S, Cg, Kg], each contiguous at its address; the zero region stays zero."""
    mem = np.zeros(prog["dram_bytes"], np.uint8)
    mats = {}
    for t in ("X", "W"):
        p = _layer(prog)["dram"][t]
        a = rng.integers(-128, 128, p["shape"], dtype=np.int8)
        mem[p["addr"]:p["addr"] + a.size] = a.ravel().view(np.uint8)
        mats[t] = a
    return mem, mats


def _conv_oracle(rec, x, w):
    """Direct convolution (loops over output pixels and taps, zero outside the image), NHWC int32."""
    sh, sw = rec["shape"]["stride"]
    pt, pl = rec["shape"]["pads"][:2]
    n, ho, wo, k = rec["dram"]["Y"]["shape"]
    g, r_, s_, cg, kg = w.shape
    x, w = x.astype(np.int64), w.astype(np.int64)
    y = np.zeros((n, ho, wo, k), np.int64)
    for oh in range(ho):
        for ow in range(wo):
            for r in range(r_):
                for s in range(s_):
                    ih, iw = oh * sh - pt + r, ow * sw - pl + s
                    if 0 <= ih < x.shape[1] and 0 <= iw < x.shape[2]:
                        for gi in range(g):
                            y[:, oh, ow, gi * kg:(gi + 1) * kg] += x[:, ih, iw, gi * cg:(gi + 1) * cg] @ w[gi, r, s]
    return y


def _y(mem, prog):
    if _layer(prog) is not None:
        p = _layer(prog)["dram"]["Y"]
        return mem[p["addr"]:p["addr"] + p["bytes"]].view("<i4").reshape(p["shape"])
    p = prog["dram"]["Y"]
    m, n = p["shape"]
    rows = [mem[p["addr"] + r * p["stride"]:][:4 * n].view("<i4") for r in range(m)]
    return np.stack(rows)


def _simulate(sim: str, tmp_path, sources: list[str]) -> str:
    """Build and run tb.v with the design's sources as a user would: ``iverilog -g2005`` + ``vvp``, or
    ``verilator --binary --timing`` (the tb's delays and event controls need Verilator's timing support)."""
    if sim == "icarus":
        subprocess.run([require("iverilog"), "-g2005", "-o", str(tmp_path / "sim.vvp"), str(tmp_path / "tb.v"),
                        *sources],
                       check=True, cwd=tmp_path)
        cmd = [require("vvp"), "-n", str(tmp_path / "sim.vvp")]
    else:
        subprocess.run([require("verilator"), "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                        "--top-module", "tb", "-o", "simv", str(tmp_path / "tb.v"), *sources], check=True,
                       cwd=tmp_path, capture_output=True)
        cmd = [str(tmp_path / "obj_dir" / "simv")]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600).stdout


# (design, layers, runs): runs are (program, reset before it, abort after this many cycles or None)
DESIGNS = {
    # fused ws+os (emitted flat): a mode switch with no reset between, an os run aborted by a reset mid-way
    "2x4-ws-os": (["--dataflow", "ws", "--dataflow", "os", "--dram-outstanding", "2"],
                  [("gemm:M=11,N=13,K=37", "ws"), ("gemm:M=19,N=6,K=23", "os")],
                  [(0, True, None), (1, False, None), (1, False, 120), (1, True, None), (0, False, None)]),
    # single-dataflow ws (emitted hierarchically: FU-type modules under a structural array module, whose
    # bound-check pipelines must reset with the rest)
    "2x4-ws-hier": (["--dataflow", "ws"], [("gemm:M=11,N=13,K=37", "ws"), ("gemm:M=5,N=9,K=70", "ws")],
                    [(0, True, None), (1, False, None), (0, False, 120), (0, True, None), (1, False, None)]),
    # a conv design (hardware im2col: windowed LOADs from the NHWC input): a strided, padded conv in ws, a grouped
    # conv in os with no reset between, that one aborted mid-run by a reset and run again, then a GEMM in ws
    "2x4-conv-ws-os": (["--workload", "conv2d", "--dataflow", "ws", "--dataflow", "os", "--dram-outstanding", "4"],
                       [("conv2d:C=3,H=9,W=8,K=5,R=3,S=3,STRIDE=2,PAD=1", "ws"),
                        ("conv2d:N=2,C=4,H=6,W=5,K=6,R=2,S=3,PAD=1,GROUPS=2", "os"), ("gemm:M=11,N=13,K=37", "ws")],
                       [(0, True, None), (1, False, None), (1, False, 150), (1, True, None), (2, False, None),
                        (0, False, None)]),
}


@pytest.mark.rtl
@pytest.mark.parametrize("design", sorted(DESIGNS))
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_plain_verilog_testbench_runs_programs_back_to_back_with_a_mid_run_reset(tmp_path, sim, design):
    flags, layers, runs = DESIGNS[design]
    d = tmp_path / "d"
    wl = [] if "--workload" in flags else ["--workload", "gemm"]
    assert main(["gen", *wl, "--array", "2x4", *flags, "--scratchpad-kib", "1",
                 "--accumulator-kib", "1", "--out", str(d)]) == 0
    hier = "module lego_gemm_prog_fu_array(" in (d / "lego_gemm_prog.v").read_text()
    assert hier == design.endswith("-hier")
    assert ("csr_win_cg" in (d / "lego_gemm_prog.v").read_text()) == ("conv2d" in flags)
    top = "lego_gemm_prog"                                    # docs/programmable.md; files.f lists its file
    rng = np.random.default_rng(2026)
    progs, mats = [], []
    for k, (layer, mode) in enumerate(layers):
        progs.append(_compile(d, layer, mode, tmp_path / f"p{k}.bin"))
        mem, mm = (_dram_conv if _layer(progs[-1]) else _dram)(progs[-1], rng)
        mats.append(mm)
        (tmp_path / f"dram{k}.hex").write_text("\n".join(f"{b:02x}" for b in mem) + "\n")
        (tmp_path / f"cmds{k}.hex").write_text("\n".join(c["word"][2:] for c in progs[-1]["commands"]) + "\n")
    size = max(p["dram_bytes"] for p in progs)
    body = []
    for r, (k, rst, abort) in enumerate(runs):
        if rst:                        # reset first: an aborted program's DMA must not write the new image
            body.append("    reset(3);")
        body.append(f'    $readmemh("dram{k}.hex", mem);')
        body.append(f'    $readmemh("cmds{k}.hex", cmds, 0, {len(progs[k]["commands"]) - 1});')
        body.append(f"    start({len(progs[k]['commands'])});")
        if abort is None:
            body.append(f"    finish_run({r});")
        else:
            body.append(f"    repeat ({abort}) @(negedge clk);")
            body.append(f'    $display("ABORT {r} idx %0d busy %0d", idx, busy);')
    (tmp_path / "tb.v").write_text(TB % {"BB": BB, "SIZE": size, "LAT": LAT, "TOP": top, "BODY": "\n".join(body)})
    sources = [str(d / line.strip()) for line in (d / "files.f").read_text().split() if line.strip()]
    out = _simulate(sim, tmp_path, sources)
    assert "ERRORS 0" in out, out
    cyc = {int(x.split()[1]): int(x.split()[3]) for x in out.splitlines() if x.startswith("RUN ")}
    assert sorted(cyc) == [r for r, (_, _, a) in enumerate(runs) if a is None], out
    aborted = [x for x in out.splitlines() if x.startswith("ABORT ")]
    assert len(aborted) == 1 and " busy 1" in aborted[0], out          # the reset hit a running program
    for r, c in cyc.items():
        k = runs[r][0]
        prog = progs[k]
        assert c == prog["predicted"]["cycles"], (r, c, prog["predicted"])
        img = np.array([int(x, 16) for x in (tmp_path / f"out{r}.hex").read_text().splitlines()
                        if x.strip() and not x.startswith("//")], np.uint8)
        if _layer(prog) is not None:
            assert _layer(prog)["im2col"] == "hardware"
            want = _conv_oracle(_layer(prog), mats[k]["X"], mats[k]["W"])
        else:
            want = mats[k]["X"].astype(np.int64) @ mats[k]["W"].astype(np.int64)
        np.testing.assert_array_equal(_y(img, prog), want, err_msg=f"run {r}")

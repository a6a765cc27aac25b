"""cocotb bench of a programmable lego array (copied into DIR/tb/prog_bench.py): the DRAM on the design's AXI4
master port is one byte array (``Dram``) behind ``PipelinedWrite`` (every write address accepted at once,
every W beat at once or, with ``beat_cycles`` D > 1, D edges after the previous one; each burst's response
``latency`` extra cycles after its last beat, pipelined, in order) and ``PipelinedRead`` (every read address
accepted at once, its data ``latency`` extra cycles later, in order; with D > 1 a beat D edges after the
previous one); the command stream is fed on cmd_valid/cmd_ready, the next command presented in the cycle after the previous one was accepted. A watchdog fails a run where no command is accepted for
``watchdog`` cycles and names the last accepted command and the one it waits on.

Plan (``LEGO_PLAN``, JSON): {"commands": [int...], "names": [str...], "dram_size": int,
"dram_file": path (bytes loaded at address 0), "latency": int, "watchdog": int, "reads": [[addr, n]...],
"beat_cycles": int (optional, default 1: the DRAM bandwidth, per direction: a read beat shown and a write beat
accepted at most every ``beat_cycles`` cycles)}.

Environment (tests only): ``LEGO_BENCH_STALL=SEED`` (see ``PipelinedWrite``); ``LEGO_BENCH_DRAM=axiram`` puts
cocotbext-axi's ``AxiRam`` (reads and writes, over the same ``Dram`` bytes) on the port instead of the pipelined
models, with the latency added as ``add_latency`` says (at one burst outstanding the timing equals the pipelined
models'; AxiRam serializes bursts, so at N > 1 it is slower; with ``beat_cycles`` D > 1 its R and W channels
are paced to the same token rule, ``ChannelPacer``, and ``TokenMonitor`` fails the run on a violation), and
``LEGO_BENCH_DRAM=axiram-pause:SEED`` also pauses its AR, R, AW, W and B channels at random (cocotbext-axi's seeded
pause generators, or-ed into the pacing; the cycles then differ from the engine's). The default (unset, or
``pipelined``) is ``PipelinedRead`` + ``PipelinedWrite``.
Result (``LEGO_RESULT``): {"cycles": int, "cycles_reg": int, "accepted": int, "reads": [hex...],
"error": str | null}.
"""
import json
import os
import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

# the directions ``beat_cycles`` paces (simulator/program.py refuses --dram-bw on a bench without this line)
DRAM_BW_LIMITS = ("read", "write")


class Dram:
    """The DRAM's bytes, from address 0."""

    def __init__(self, size: int):
        self.mem = bytearray(size)

    def read(self, addr: int, n: int) -> bytes:
        return bytes(self.mem[addr:addr + n])

    def write(self, addr: int, data: bytes):
        assert 0 <= addr and addr + len(data) <= len(self.mem), (addr, len(data))
        self.mem[addr:addr + len(data)] = data


class PipelinedWrite:
    """The DRAM's write side, with pipelined response latency (docs/programmable.md, "AXI4 subset"): AWREADY
    stays high (up to ``depth`` bursts accepted and not answered), so every write address is accepted at the
    edge after AWVALID rises; WREADY is high while an accepted burst still takes beats (bursts in order, single
    ID) and, with ``beat_cycles`` D > 1 (a write bandwidth of bus words / D 64-bit words per cycle,
    ``--dram-bw``), from D edges after the previous beat's handshake on (low in between, within a burst and
    across bursts), and a beat's bytes enabled by WSTRB are written at its handshake edge; the response of a burst whose
    last beat is taken at edge ``w`` is shown (BVALID) in the cycle before edge ``w + 2 + latency`` at the
    earliest and after the previous burst's response was taken, one at a time while BREADY is high
    (``bid = bresp = 0``). WLAST must mark the burst's last beat (AWLEN).

    ``stall`` (a seed; ``LEGO_BENCH_STALL`` in the environment, tests only): AWREADY and WREADY also drop
    in a random quarter of the cycles and each response comes 0..7 cycles later still (in order), so the
    DMA's handshakes are exercised under backpressure; the cycle counts then differ from the engine's."""

    def __init__(self, dut, clk, mem, latency: int, depth: int = 256, prefix: str = "m_axi", stall=None,
                 beat_cycles: int = 1):
        self.dut, self.clk, self.mem, self.latency, self.depth = dut, clk, mem, latency, depth
        self.beat_cycles = beat_cycles
        self.rng = None if stall is None else random.Random(stall)
        self.s = {n: getattr(dut, f"{prefix}_{n}") for n in ("awvalid", "awready", "awaddr", "awlen", "wvalid",
                                                                "wready", "wdata", "wstrb", "wlast", "bvalid",
                                                                "bready", "bid", "bresp")}
        self.bb = len(self.s["wdata"]) // 8

    async def run(self):
        s, bb = self.s, self.bb
        s["awready"].value = 1
        s["wready"].value = 0
        s["bvalid"].value = 0
        s["bid"].value = 0
        s["bresp"].value = 0
        aw = deque()                    # [next beat address, beats left] of accepted bursts still taking beats
        bq = deque()                    # per burst whose beats are all taken: the earliest edge of its response
        t = 0
        last = -self.beat_cycles        # edge of the last W handshake
        while True:
            await ReadOnly()
            try:
                a = int(s["awvalid"].value) == 1 and int(s["awready"].value) == 1
                w = int(s["wvalid"].value) == 1 and int(s["wready"].value) == 1
                b = int(s["bvalid"].value) == 1 and int(s["bready"].value) == 1
                req = (int(s["awaddr"].value), int(s["awlen"].value) + 1) if a else None
                beat = (int(s["wdata"].value), int(s["wstrb"].value), int(s["wlast"].value)) if w else None
            except ValueError:          # X/Z during reset
                a = w = b = False
            await RisingEdge(self.clk)
            t += 1
            if w:
                last = t
                addr, (data, strb, wlast) = aw[0][0], beat
                raw = data.to_bytes(bb, "little")
                for i in range(bb):
                    if strb >> i & 1:
                        self.mem.write(addr + i, raw[i:i + 1])
                aw[0][0] += bb
                aw[0][1] -= 1
                assert wlast == (aw[0][1] == 0), f"WLAST {wlast} with {aw[0][1]} beats of the burst left"
                if not aw[0][1]:
                    aw.popleft()
                    extra = self.rng.randrange(8) if self.rng else 0
                    bq.append(max(t + 2 + self.latency + extra, bq[-1] + 1 if bq else 0))
            if a:
                aw.append([req[0], req[1]])
            if b:
                bq.popleft()
            s["bvalid"].value = int(bool(bq) and bq[0] <= t + 1)
            pause = (lambda: self.rng.randrange(4) == 0) if self.rng else (lambda: False)
            s["wready"].value = int(bool(aw) and t + 1 >= last + self.beat_cycles and not pause())
            s["awready"].value = int(len(aw) + len(bq) < self.depth and not pause())


class PipelinedRead:
    """The DRAM's read side, with pipelined latency: ARREADY stays high (up to ``depth`` bursts queued), so
    every read address is accepted at the edge after ARVALID rises; the first beat of a burst accepted at
    edge ``a`` can be captured at edge ``a + 2 + latency`` at the earliest and after the previous burst's
    last beat; beats go in order (single ID), one per cycle while RREADY is high, RVALID stays high through
    a burst once its first beat is shown. With ``beat_cycles`` D > 1 (a read bandwidth of bus words / D
    64-bit words per cycle, ``--dram-bw``) no beat is shown before D edges after the previous beat's capture
    (RVALID low in between, within a burst too); once shown, RVALID stays high until the beat is captured.
    ``mem``: bytes at address 0 (``read(addr, n)``)."""

    def __init__(self, dut, clk, mem, latency: int, depth: int = 256, prefix: str = "m_axi", beat_cycles: int = 1):
        self.dut, self.clk, self.mem, self.latency, self.depth = dut, clk, mem, latency, depth
        self.beat_cycles = beat_cycles
        self.s = {n: getattr(dut, f"{prefix}_{n}") for n in ("arvalid", "arready", "araddr", "arlen", "rvalid",
                                                                "rready", "rdata", "rlast", "rid", "rresp")}
        self.bb = len(self.s["rdata"]) // 8

    async def run(self):
        s, bb = self.s, self.bb
        s["arready"].value = 1
        s["rvalid"].value = 0
        s["rlast"].value = 0
        s["rdata"].value = 0
        s["rid"].value = 0
        s["rresp"].value = 0
        q = deque()                     # [edge the first beat may be captured, next beat address, beats left]
        t = 0
        last = -self.beat_cycles        # edge of the last beat's capture
        while True:
            await ReadOnly()
            try:
                ar = int(s["arvalid"].value) == 1 and int(s["arready"].value) == 1
                r = int(s["rvalid"].value) == 1 and int(s["rready"].value) == 1
                req = (int(s["araddr"].value), int(s["arlen"].value) + 1) if ar else None
            except ValueError:          # X/Z during reset
                ar = r = False
            await RisingEdge(self.clk)
            t += 1
            if ar:
                q.append([t + 2 + self.latency, req[0], req[1]])
            if r:
                last = t
                q[0][1] += bb
                q[0][2] -= 1
                if not q[0][2]:
                    q.popleft()
            if q and q[0][0] <= t + 1 and t + 1 >= last + self.beat_cycles:
                s["rvalid"].value = 1
                s["rdata"].value = int.from_bytes(self.mem.read(q[0][1], bb), "little")
                s["rlast"].value = int(q[0][2] == 1)
            else:
                s["rvalid"].value = 0
                s["rlast"].value = 0
            s["arready"].value = int(len(q) < self.depth)


def add_latency(ram, clk, latency: int):
    """cocotbext-axi's ``AxiRam`` with the DRAM latency ``latency`` (the earlier benches' hook): its read process
    awaits ``latency`` rising edges after taking each read address before it sends the burst's data, and its
    write process awaits ``latency`` rising edges after a burst's last beat before it sends the response. AxiRam
    has one read and one write process, so the latency is paid once per burst, serialized."""
    if not latency:
        return
    rd, wr = ram.read_if, ram.write_if
    recv, send = rd.ar_channel.recv, wr.b_channel.send

    async def delayed_recv():
        ar = await recv()
        await ClockCycles(clk, latency)
        return ar

    async def delayed_send(b):
        await ClockCycles(clk, latency)
        await send(b)
    rd.ar_channel.recv = delayed_recv
    wr.b_channel.send = delayed_send


def pause_generator(seed: str):
    """An endless seeded pause pattern for one cocotbext-axi channel: paused in a random quarter of the cycles."""
    rng = random.Random(seed)
    while True:
        yield rng.randrange(4) == 0


def token_held(edge: int, last: int, beat_cycles: int) -> bool:
    """The DRAM bandwidth's token rule (docs/programmable.md, "DRAM bandwidth"): a handshake at ``edge`` is held
    off when the previous one was at ``last`` and ``edge < last + beat_cycles`` (one beat per ``beat_cycles``
    edges, no credit saved while idle)."""
    return edge < last + beat_cycles


def handshake(valid, ready) -> bool:
    """``valid & ready`` as sampled now (X/Z, during reset, reads as no handshake)."""
    try:
        return int(valid.value) == 1 and int(ready.value) == 1
    except ValueError:
        return False


class ChannelPacer:
    """Paces one of ``AxiRam``'s data channels to the token rule through cocotbext-axi's ``pause`` (the public
    ``StreamPause`` property): the R channel's source (``sink=False``) or the W channel's sink (``sink=True``).
    Each cycle it samples the channel's handshake that the coming rising edge completes (``valid & ready``,
    settled: ``ReadOnly`` after the falling edge). Not ``set_pause_generator``: that updates ``pause`` at each
    rising edge, in the time step in which the source and the sink sample it, so which value they see would
    depend on the order cocotb runs the tasks.

    * R (``StreamSource``): the source reads ``pause`` at the rising edge at which it would show the next
      beat, so ``pause`` is set before each edge ``k`` to ``token_held(k + 1, ...)``: RVALID shown from ``D``
      edges after the previous capture on, as ``PipelinedRead``.
    * W (``StreamSink``): the sink sets WREADY at edge ``k`` to ``not (full() or p)``, ``p`` being ``pause`` as
      it last sampled it (after its previous edge, or when woken: ``pause`` changed, WVALID rose, a beat left
      its queue), too early to see the handshake at ``k``. So the sink holds one beat
      (``queue_occupancy_limit = 1``): WREADY drops at the handshake edge ``h`` itself (AxiRam's write process
      takes the beat in that time step: at ``N = 1`` it always waits on it), and ``pause`` keeps it low from
      ``h + 1``: raised before ``h`` (the sink, not waiting on it then, samples it at ``h``) and lowered in the
      time step of edge ``h + D - 2`` (``token_held(k + 2, ...)`` set at each rising edge ``k``; the sink,
      waiting on it, or sampling it after that edge or after WVALID rose, in either task order, raises WREADY
      at ``h + D - 1``): WREADY high from ``D`` edges after the previous W handshake on, as ``PipelinedWrite``.

    ``rng`` (``axiram-pause``): a seeded ``pause_generator``'s pattern, or-ed in (paused if either says so)."""

    def __init__(self, channel, clk, valid, ready, beat_cycles: int, sink: bool, rng=None):
        self.ch, self.clk, self.valid, self.ready = channel, clk, valid, ready
        self.beat_cycles, self.sink, self.rng = beat_cycles, sink, rng
        if sink:
            channel.queue_occupancy_limit = 1

    def shaken(self) -> bool:
        return handshake(self.valid, self.ready)

    def random(self) -> bool:
        return next(self.rng) if self.rng is not None else False

    async def run(self):
        edge, last, D = 0, -self.beat_cycles, self.beat_cycles
        while True:
            await FallingEdge(self.clk)
            await ReadOnly()
            edge += 1                   # the rising edge to come
            if self.shaken():
                last = edge
            if not self.sink:
                self.ch.pause = token_held(edge + 1, last, D) or self.random()
            elif last == edge and token_held(edge + 2, last, D):
                self.ch.pause = True
            await RisingEdge(self.clk)
            if self.sink:
                self.ch.pause = token_held(edge + 2, last, D) or self.random()


class TokenMonitor:
    """Checks the token rule on the bus, apart from the pacers: R captures (``rvalid & rready``) and W
    handshakes (``wvalid & wready``) sampled each cycle (``ReadOnly`` after the falling edge); ``violation``:
    the first pair of one channel's handshakes fewer than ``beat_cycles`` edges apart (None: none)."""

    def __init__(self, dut, clk, beat_cycles: int, prefix: str = "m_axi"):
        self.clk, self.beat_cycles, self.violation = clk, beat_cycles, None
        self.s = {ch: (getattr(dut, f"{prefix}_{ch}valid"), getattr(dut, f"{prefix}_{ch}ready")) for ch in "rw"}

    async def run(self):
        edge, last = 0, {ch: None for ch in self.s}
        while True:
            await FallingEdge(self.clk)
            await ReadOnly()
            edge += 1
            for ch, (valid, ready) in self.s.items():
                if not handshake(valid, ready):
                    continue
                if last[ch] is not None and edge - last[ch] < self.beat_cycles and self.violation is None:
                    self.violation = (f"DRAM bandwidth: {ch.upper()} handshakes at edges {last[ch]} and {edge}, "
                                      f"fewer than {self.beat_cycles} apart")
                last[ch] = edge


def start_axiram(dut, ram: Dram, latency: int, pause=None, beat_cycles: int = 1):
    """cocotbext-axi's ``AxiRam`` on the ``m_axi`` port over ``ram``'s bytes, with ``add_latency``; ``pause``
    (a seed): each of its AR, R, AW, W and B channels gets its own seeded ``pause_generator``; ``beat_cycles``
    D > 1 (``--dram-bw``): its R and W channels paced to the token rule by ``ChannelPacer`` (with ``pause``,
    the R and W patterns are drawn by the pacers and or-ed in)."""
    import logging

    from cocotbext.axi import AxiBus, AxiRam
    axi = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=len(ram.mem), mem=ram.mem)
    for side in (axi.read_if, axi.write_if):
        side.log.setLevel(logging.WARNING)
    add_latency(axi, dut.clk, latency)
    chans = {"ar": axi.read_if.ar_channel, "r": axi.read_if.r_channel, "aw": axi.write_if.aw_channel,
             "w": axi.write_if.w_channel, "b": axi.write_if.b_channel}
    paced = ("r", "w") if beat_cycles > 1 else ()
    for name in paced:
        rng = None if pause is None else pause_generator(f"{pause}-{name}")
        pacer = ChannelPacer(chans[name], dut.clk, getattr(dut, f"m_axi_{name}valid"),
                             getattr(dut, f"m_axi_{name}ready"), beat_cycles, sink=name == "w", rng=rng)
        cocotb.start_soon(pacer.run())
    monitor = None
    if beat_cycles > 1:
        monitor = TokenMonitor(dut, dut.clk, beat_cycles)
        cocotb.start_soon(monitor.run())
    if pause is not None:
        for name, ch in chans.items():
            if name not in paced:
                ch.set_pause_generator(pause_generator(f"{pause}-{name}"))
    return axi, monitor


async def run_commands(dut, cmds: list[int], names: list[str], watchdog: int, prefix: str = ""):
    """Feed a program on ``{prefix}cmd_valid``/``cmd_data`` (entered at a falling edge; the next command in the
    cycle after the previous one was accepted) until ``{prefix}done`` after the last one. Returns (cycles:
    edges from the first acceptance, exclusive, to END's, inclusive; commands accepted; error or None: the
    watchdog's, when no command is accepted for ``watchdog`` cycles). Leaves the simulator at a ReadOnly
    phase after END's edge."""
    sig = lambda n: getattr(dut, prefix + n)   # noqa: E731
    n, counted, started, idle, error = 0, 0, False, 0, None
    while True:
        if n < len(cmds):
            sig("cmd_valid").value = 1
            sig("cmd_data").value = cmds[n]
        else:
            sig("cmd_valid").value = 0
        await ReadOnly()
        accept = n < len(cmds) and int(sig("cmd_ready").value) == 1
        await RisingEdge(dut.clk)
        if started:
            counted += 1
        if accept:
            started = True
            n += 1
            idle = 0
        else:
            idle += 1
        await ReadOnly()
        if n == len(cmds) and int(sig("done").value) == 1:
            break
        if idle > watchdog:
            last = f"#{n - 1} {names[n - 1]}" if n else "none"
            wait = f"#{n} {names[n]}" if n < len(cmds) else "done"
            units = []
            for u in ("ld_busy", "cp_busy", "st_busy"):
                try:
                    units.append(f"{u}={int(getattr(dut, prefix + u).value)}")
                except (AttributeError, ValueError):
                    pass
            error = (f"watchdog: no command accepted for {watchdog} cycles; last accepted command {last}, "
                     f"waiting on {wait} ({', '.join(units)})")
            break
        await FallingEdge(dut.clk)
    return counted, n, error


@cocotb.test()
async def run_program(dut):
    with open(os.environ["LEGO_PLAN"]) as f:
        plan = json.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.cmd_valid.value = 0
    dut.cmd_data.value = 0
    dut.rst.value = 1
    ram = Dram(plan["dram_size"])
    with open(plan["dram_file"], "rb") as f:
        ram.write(0, f.read())
    stall = os.environ.get("LEGO_BENCH_STALL")
    kind = os.environ.get("LEGO_BENCH_DRAM") or "pipelined"
    monitor = None
    if kind == "pipelined":
        cocotb.start_soon(PipelinedWrite(dut, dut.clk, ram, plan["latency"],
                                         stall=None if stall is None else int(stall),
                                         beat_cycles=plan.get("beat_cycles", 1)).run())
        cocotb.start_soon(PipelinedRead(dut, dut.clk, ram, plan["latency"],
                                        beat_cycles=plan.get("beat_cycles", 1)).run())
    elif kind == "axiram" or kind.startswith("axiram-pause:"):
        assert stall is None, "LEGO_BENCH_STALL is for the pipelined DRAM, not LEGO_BENCH_DRAM=axiram"
        _, monitor = start_axiram(dut, ram, plan["latency"], pause=kind.split(":", 1)[1] if ":" in kind else None,
                                  beat_cycles=plan.get("beat_cycles", 1))
    else:
        raise ValueError(f"LEGO_BENCH_DRAM={kind!r}: allowed pipelined, axiram, axiram-pause:SEED")
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    counted, n, error = await run_commands(dut, plan["commands"], plan["names"], plan["watchdog"])
    if error is None and monitor is not None:
        error = monitor.violation
    cycles_reg = int(dut.cycles.value)
    reads = [ram.read(a, k).hex() for a, k in plan["reads"]] if error is None else []
    if os.environ.get("LEGO_RESULT"):
        with open(os.environ["LEGO_RESULT"], "w") as f:
            json.dump({"cycles": counted, "cycles_reg": cycles_reg, "accepted": n, "reads": reads, "error": error}, f)
    assert error is None, error

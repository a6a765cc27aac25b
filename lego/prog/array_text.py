"""The instance level of the hierarchical programmable array as plain structural Verilog-2005 text.

Amaranth's conversion costs per netlist object: 16,384 FU instances with their wires and the bound checks'
pipeline registers take minutes there, and seconds as text. This module is only wiring: FU-type instances
(whose modules Amaranth converts), the wires between them, and chains of 1-bit registers (synchronous reset
to 0, initial value 0: what Amaranth emits for a ``Signal()`` of the sync domain).
"""
from __future__ import annotations


def _decl(kind: str, net: str, width: int) -> str:
    return f"  {kind} {net};" if width == 1 else f"  {kind} [{width - 1}:0] {net};"


def fu_array_verilog(name: str, inputs: list, outputs: list, wires: list, chains: list, instances: list) -> str:
    """``inputs``/``outputs``/``wires``: [(net, width)]; ``chains``: [(head net, [register nets])], each register
    the previous one (the head first) delayed by a cycle; ``instances``: [(module, instance, [(port, net)])].
    ``clk`` and ``rst`` are the first two ports and go to every instance."""
    ports = ["clk", "rst"] + [n for n, _ in inputs] + [n for n, _ in outputs]
    out = [f"module {name}({', '.join(ports)});", "  input clk;", "  input rst;"]
    out += [_decl("input", n, w) for n, w in inputs]
    out += [_decl("output", n, w) for n, w in outputs]
    out += [_decl("wire", n, w) for n, w in wires]
    regs = [r for _, rs in chains for r in rs]
    out += [f"  reg {r} = 1'h0;" for r in regs]
    if regs:
        out += ["  always @(posedge clk) begin", "    if (rst) begin"]
        out += [f"      {r} <= 1'h0;" for r in regs]
        out += ["    end else begin"]
        for head, rs in chains:
            prev = head
            for r in rs:
                out.append(f"      {r} <= {prev};")
                prev = r
        out += ["    end", "  end"]
    for mod, inst, conns in instances:
        args = ",\n".join(f"    .{p}({n})" for p, n in [("clk", "clk"), ("rst", "rst")] + conns)
        out.append(f"  {mod} {inst} (\n{args}\n  );")
    out.append("endmodule")
    return "\n".join(out) + "\n"

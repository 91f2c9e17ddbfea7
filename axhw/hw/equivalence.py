"""Equivalence of the synthesized netlist with its RTL, by exhaustive simulation.

One Icarus run instantiates the RTL (the source of the database product table)
and the gate-level netlist (with the library's Verilog cell models, zero-delay) side
by side and applies every operand pair; any pair where the outputs differ (``!==``:
X or Z counts as a difference) fails the check, and the error names the first such
pair with both products.

A sign-magnitude wrapper around an unsigned core (:func:`~axhw.hw.design.signed_wrapper`)
is not compared with its own generated RTL but with what the emulator uses: the stored
signed-index table of the database entry (``design.reference``, loaded into the bench
with ``$readmemh``), or, for a design without one, ``sign(a·b)·M(|a|, |b|)`` computed
in the bench from the core's RTL ``M`` with integer arithmetic (0 when a or b is 0),
as :func:`axhw.library.sign_magnitude` defines it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from axhw.errors import SynthesisError
from axhw.io import atomic_write_json, atomic_write_text
from axhw.records import PortSpec
from axhw.hw._tools import run_tool
from axhw.hw.design import Design
from axhw.hw.synthesis import SynthesisResult

__all__ = ["EquivalenceError", "check_equivalence", "MAX_EXHAUSTIVE_BITS"]

#: Designs with more operand bits than this are not simulated exhaustively (error).
MAX_EXHAUSTIVE_BITS = 20


class EquivalenceError(SynthesisError):
    """The gate-level netlist computes a different product than the RTL for some operands."""


def _signed(value: int, bits: int, signed: bool) -> int:
    return value - (1 << bits) if signed and value >> (bits - 1) & 1 else value


def _bench(ports: PortSpec, gl_module: str) -> str:
    aw, bw, yw = ports.a_width, ports.b_width, ports.y_width
    params = ", ".join(f".{k}({int(v)})" for k, v in sorted(ports.parameters.items()))
    rtl_inst = f"{ports.module} {'#(' + params + ') ' if params else ''}rtl"
    conn = f"(.{ports.a}(a), .{ports.b}(b), .{ports.y}"
    return f"""`timescale 1ns/1ps
module axhw_miter;
  reg [{aw - 1}:0] a;
  reg [{bw - 1}:0] b;
  wire [{yw - 1}:0] y_rtl, y_gl;
  {rtl_inst} {conn}(y_rtl));
  {gl_module} gl {conn}(y_gl));
""" + _loop(ports, "y_rtl")


def _loop(ports: PortSpec, expected: str, setup: str = "") -> str:
    return f"""  integer i, errors;
  initial begin
    errors = 0;
    for (i = 0; i < {1 << (ports.a_width + ports.b_width)}; i = i + 1) begin
      {{a, b}} = i;
{setup}      #1;
      if ({expected} !== y_gl) begin
        if (errors == 0) $display("AXHW_MISMATCH %b %b %b %b", a, b, {expected}, y_gl);
        errors = errors + 1;
      end
    end
    $display("AXHW_DONE %0d %0d", i, errors);
    $finish;
  end
endmodule
"""


def _wrapped_bench(design: Design, gl_module: str, work: Path) -> str:
    """Miter of a sign-magnitude wrapper's netlist against the stored table or the core RTL."""
    ports, core = design.ports, design.core.ports
    aw, bw, yw = ports.a_width, ports.b_width, ports.y_width
    head = f"""`timescale 1ns/1ps
module axhw_miter;
  reg [{aw - 1}:0] a;
  reg [{bw - 1}:0] b;
  wire [{yw - 1}:0] y_gl;
  {gl_module} gl (.{ports.a}(a), .{ports.b}(b), .{ports.y}(y_gl));
"""
    if design.reference is not None:
        # reference[a + 2^(aw-1), b + 2^(bw-1)] -> word at address {a, b} (two's-complement codes).
        ref = np.asarray(design.reference, dtype=np.int64)
        rows = np.roll(np.arange(1 << aw), 1 << (aw - 1))  # code 0..2^aw-1 -> row a + 2^(aw-1)
        cols = np.roll(np.arange(1 << bw), 1 << (bw - 1))
        words = ref[np.ix_(rows, cols)].ravel() & ((1 << yw) - 1)
        digits = (yw + 3) // 4
        atomic_write_text(work / "reference.hex", "\n".join(format(int(w), f"0{digits}x") for w in words) + "\n")
        return head + f"""  reg [{yw - 1}:0] table_ref [0:{(1 << (aw + bw)) - 1}];
  initial $readmemh("reference.hex", table_ref);
  wire [{yw - 1}:0] y_ref = table_ref[{{a, b}}];
""" + _loop(ports, "y_ref")
    params = ", ".join(f".{k}({int(v)})" for k, v in sorted(core.parameters.items()))
    inst = f"{core.module} {'#(' + params + ') ' if params else ''}rtl"
    return head + f"""  reg [{core.a_width - 1}:0] ma;
  reg [{core.b_width - 1}:0] mb;
  wire [{yw - 1}:0] p;
  reg [{yw - 1}:0] y_ref;
  integer sa, sb;
  {inst} (.{core.a}(ma), .{core.b}(mb), .{core.y}(p));
  always @* y_ref = (sa == 0 || sb == 0) ? {yw}'d0 : (((sa < 0) != (sb < 0)) ? -p : p);
""" + _loop(ports, "y_ref", """      sa = $signed(a);
      sb = $signed(b);
      ma = sa < 0 ? -sa : sa;
      mb = sb < 0 ? -sb : sb;
""")


def check_equivalence(design: Design, synth: SynthesisResult, models: Path, work: Path) -> int:
    """Simulate RTL and netlist on every operand pair; return the number of pairs checked.

    Args:
        design: the RTL design.
        synth: its synthesis result (the netlist module ``<module>_gl``).
        models: Verilog models of the library cells.
        work: folder for the bench, the compiled simulation and the logs; a passed
            check is remembered there (``equivalence.json``) and not re-run.

    Raises:
        EquivalenceError: the first operand pair (a, b) where the products differ.
        SynthesisError: the simulation could not be compiled or run.
    """
    done = work / "equivalence.json"
    if done.is_file():
        return int(json.loads(done.read_text())["vectors"])
    ports = design.ports
    if ports.a_width + ports.b_width > MAX_EXHAUSTIVE_BITS:
        raise SynthesisError(f"{design.name}: {ports.a_width}x{ports.b_width}-bit operands are too many for an "
                             f"exhaustive equivalence check (at most {MAX_EXHAUSTIVE_BITS} operand bits)")
    bench = work / "miter.v"
    if design.core is not None:
        atomic_write_text(bench, _wrapped_bench(design, synth.module, work))
        sources = [] if design.reference is not None else [str(s) for s in design.core.sources]
    else:
        atomic_write_text(bench, _bench(ports, synth.module))
        sources = [str(design.rtl)]
    includes = [f"-I{d}" for d in design.include_dirs]
    run_tool(["iverilog", "-g2012", *includes, "-o", "miter.vvp", "-s", "axhw_miter", str(bench), *sources,
              str(synth.netlist), str(models)], work / "equivalence_compile.log",
             f"iverilog compiling the equivalence bench of {design.name}", cwd=work)
    out = run_tool(["vvp", "-n", "miter.vvp"], work / "equivalence.log",
                   f"gate-level simulation of {design.name}", cwd=work)
    done_match = re.search(r"AXHW_DONE (\d+) (\d+)", out)
    if done_match is None:
        raise SynthesisError(f"equivalence simulation of {design.name} ended early; see {work / 'equivalence.log'}")
    mismatch = re.search(r"AXHW_MISMATCH (\S+) (\S+) (\S+) (\S+)", out)
    if mismatch:
        a_bits, b_bits, y_rtl, y_gl = mismatch.groups()
        a = _signed(int(a_bits, 2), ports.a_width, ports.signed)
        b = _signed(int(b_bits, 2), ports.b_width, ports.signed)

        def show(bits: str) -> str:
            return str(_signed(int(bits, 2), ports.y_width, ports.signed)) if set(bits) <= {"0", "1"} else bits

        what, source = "the RTL", "RTL"
        if design.core is not None:
            source = "reference"
            what = ("the stored sign-magnitude table" if design.reference is not None
                    else "sign(a·b)·M(|a|, |b|) of the core RTL")
        raise EquivalenceError(f"{design.name}: the synthesized netlist differs from {what} on "
                               f"{done_match.group(2)} of {done_match.group(1)} operand pairs; first at "
                               f"a={a}, b={b}: {source} gives {show(y_rtl)}, netlist gives {show(y_gl)} "
                               f"(netlist: {synth.netlist}; log: {work / 'equivalence.log'})")
    atomic_write_json(done, {"vectors": int(done_match.group(1))})
    return int(done_match.group(1))

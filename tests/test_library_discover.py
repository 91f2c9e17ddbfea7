"""Discovery of a multiplier in Verilog: ports, widths, signedness, and every bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from axhw.discover import discover
from axhw.errors import ToolMissingError, VerilogError
from axhw.paths import rtl_dir

GOOD = """module mul(input signed [7:0] a, input signed [7:0] b, output signed [15:0] y);
  assign y = a * b;
endmodule
"""


def write(tmp_path: Path, text: str, name: str = "design.v") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_discovers_bundled_exact():
    spec = discover(rtl_dir() / "exact.v")
    assert (spec.module, spec.a, spec.b, spec.y) == ("exact", "a", "b", "y")
    assert (spec.a_width, spec.b_width, spec.y_width, spec.signed) == (8, 8, 16, True)


def test_parameters_are_effective_values_and_unsigned_is_inferred():
    assert discover(rtl_dir() / "drum.v", parameters={"K": 3}).parameters == {"K": 3}
    assert discover(rtl_dir() / "drum.v").parameters == {"K": 4}
    assert discover(rtl_dir() / "kulkarni.v").signed is False  # helper modules are not tops


def test_non_ansi_ports_and_product_name(tmp_path):
    path = write(tmp_path, """module m(x1, x2, prod);
  input [7:0] x1;
  input [7:0] x2;
  output [15:0] prod;
  assign prod = x1 * x2;
endmodule
""")
    spec = discover(path)
    assert (spec.a, spec.b, spec.y, spec.signed) == ("x1", "x2", "prod", False)


def test_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "module m(input [7:0] a, input [7:0] b, output [15:0] y);\n\n  assign y = a * ;\nendmodule\n")
    with pytest.raises(VerilogError, match=rf"{path.name}:3: syntax error"):
        discover(path)


def test_no_module(tmp_path):
    with pytest.raises(VerilogError, match="no module found"):
        discover(write(tmp_path, "// nothing here\n"))


def test_several_modules_need_top(tmp_path):
    text = GOOD + GOOD.replace("module mul", "module mul2")
    path = write(tmp_path, text)
    with pytest.raises(VerilogError, match=r"several top-level modules \(mul, mul2\).*--top"):
        discover(path)
    assert discover(path, top="mul2").module == "mul2"
    with pytest.raises(VerilogError, match="no module named 'nope'"):
        discover(path, top="nope")


def test_wide_operands_rejected(tmp_path):
    path = write(tmp_path, "module m(input [15:0] a, input [15:0] b, output [31:0] y);\n  assign y = a * b;\nendmodule\n")
    with pytest.raises(VerilogError, match=r"only 8-bit operands are supported: found a\[15:0\]"):
        discover(path)


def test_output_narrower_than_needed(tmp_path):
    path = write(tmp_path, "module m(input [7:0] a, input [7:0] b, output [7:0] y);\n  assign y = a * b;\nendmodule\n")
    with pytest.raises(VerilogError, match=r"output y\[7:0\] is 8 bits, narrower than needed.*16-bit product"):
        discover(path)


def test_sequential_design_rejected(tmp_path):
    path = write(tmp_path, """module m(input clk, input [7:0] a, input [7:0] b, output reg [15:0] y);
  always @(posedge clk) y <= a * b;
endmodule
""")
    with pytest.raises(VerilogError, match=r"design.v:2: combinational designs only.*posedge clk"):
        discover(path)


def test_ambiguous_ports_need_overrides(tmp_path):
    text = """module m(input [7:0] p, input [7:0] q, input [7:0] r, output [15:0] s, output [15:0] t);
  assign s = p * q;
  assign t = q * r;
endmodule
"""
    path = write(tmp_path, text)
    with pytest.raises(VerilogError, match="--a and --b"):
        discover(path)
    with pytest.raises(VerilogError, match="--y"):
        discover(path, a="p", b="q")
    with pytest.raises(VerilogError, match="inputs besides the operands"):
        discover(path, a="p", b="q", y="s")
    with pytest.raises(VerilogError, match="has no port 'zz'"):
        discover(path, a="zz", b="q", y="s")


def test_sidecar_overrides(tmp_path):
    text = """module m(input [7:0] p, input [7:0] q, output [15:0] s, output [15:0] t);
  assign s = p * q;
  assign t = p + q;
endmodule
"""
    path = write(tmp_path, text)
    (tmp_path / "design.ports.json").write_text(json.dumps({"a": "q", "b": "p", "y": "s", "signed": True}))
    spec = discover(path)
    assert (spec.a, spec.b, spec.y, spec.signed) == ("q", "p", "s", True)
    assert discover(path, y="t").y == "t"  # explicit arguments win over the sidecar
    (tmp_path / "design.ports.json").write_text('{"a": "q",\n "bogus": 1}')
    with pytest.raises(VerilogError, match="bogus"):
        discover(path)
    (tmp_path / "design.ports.json").write_text('{"a": "q",\n oops}')
    with pytest.raises(VerilogError, match=r"design.ports.json:2: invalid JSON"):
        discover(path)


def test_unknown_parameter(tmp_path):
    with pytest.raises(VerilogError, match="has no parameter Q; its parameters: K=4"):
        discover(rtl_dir() / "drum.v", parameters={"Q": 1})


def test_iverilog_missing_points_to_doctor(monkeypatch, tmp_path):
    import axhw.discover as mod

    monkeypatch.setattr(mod.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match="axhw doctor"):
        discover(write(tmp_path, GOOD))


def test_parser_tables_stay_out_of_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    discover(write(tmp_path, GOOD))
    assert sorted(os.listdir(tmp_path)) == ["design.v"]

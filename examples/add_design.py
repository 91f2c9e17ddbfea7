"""Add a design: a tiny Verilog multiplier, characterized into a throw-away database.

The multiplier below drops the 4 lowest bits of the exact product (a truncated
multiplier). ``axhw.library.add`` finds its module and ports, simulates all 65,536
operand pairs with cocotb + Icarus, and stores the 256x256 product table with its
error metrics. ``AXHW_DB`` points at a temporary folder, so your own database and the
bundled one are not touched (``AXHW_DB`` replaces both layers; docs/environment.md).

Run:  .venv/bin/python examples/add_design.py
Needs the system tools of ``axhw doctor`` (iverilog).
"""

import os
import tempfile
from pathlib import Path

from axhw import library
from axhw.threads import apply_threads

VERILOG = """\
// 8x8 signed multiplier that clears the 4 least significant product bits.
module trunc4_mul (
    input  signed [7:0]  a,
    input  signed [7:0]  b,
    output signed [15:0] y
);
    wire signed [15:0] p = a * b;
    assign y = {p[15:4], 4'b0000};
endmodule
"""


def main() -> None:
    apply_threads()
    with tempfile.TemporaryDirectory(prefix="axhw-example-") as tmp:
        os.environ["AXHW_DB"] = str(Path(tmp) / "db")
        source = Path(tmp) / "trunc4_mul.v"
        source.write_text(VERILOG)

        mult = library.add(source, name="my_trunc4", family="truncation", description="a*b with the 4 low bits cleared")
        m = mult.metrics
        print(f"added {mult.name}: module {mult.ports.module}, signed={mult.signed}")
        print(f"  MAE {m.mae:.2f}  WCE {m.wce:.0f}  error rate {m.error_rate:.4f}  bias {m.bias:+.2f}  (product units)")

        again = library.load("my_trunc4")
        print(f"  reloaded: lut{tuple(again.lut.shape)}, 7 x 5 -> {again.lut[7 + 128, 5 + 128]} (exact 35)")
        print(library.list_table(["my_trunc4"]))


if __name__ == "__main__":
    main()

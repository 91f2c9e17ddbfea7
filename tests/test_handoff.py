"""The report's hardware hand-off builds and computes the products the model was emulated with.

A fresh database holds a signed exact design and two unsigned entries of one core module
with different parameters (so their wrappers would share a name), one of them with a
non-zero product by 0 (so its wrapper needs the zero gate).  The hand-off must ship the
sign-magnitude wrappers, elaborate with Icarus from ``filelist.f`` as one top, and give,
for every operand pair, the product table stored in the database.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from axhw.records import HW_FLOW_VERSION, HardwareCost
from axhw.report import write_report
from axhw.search.result import Evaluation, SearchResult

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None or shutil.which("vvp") is None, reason="needs Icarus Verilog")

COSTS = {"exact": (1.0, 5000.0), "ut_k2": (0.6, 3000.0), "ut_k4": (0.4, 2000.0)}  # test values: pJ, µm²


@dataclasses.dataclass(frozen=True)
class _Op:
    name: str
    kind: str
    macs_per_image: int


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    from axhw import library

    root = tmp_path_factory.mktemp("handoff")
    rtl = root / "rtl"
    rtl.mkdir()
    (rtl / "exact.v").write_text("module exact_mul(input signed [7:0] a, input signed [7:0] b, output signed [15:0] y);\n"
                                 "  assign y = a * b;\nendmodule\n")
    (rtl / "utrunc.v").write_text("module utrunc #(parameter K = 2) (input [7:0] a, input [7:0] b, output [15:0] y);\n"
                                  "  wire [15:0] p = a * b;\n  assign y = ((p >> K) << K) | (K == 4);\nendmodule\n")
    with pytest.MonkeyPatch.context() as mp:
        _use(mp, root)
        for name, path, params in (("exact", "exact.v", {}), ("ut_k2", "utrunc.v", {"K": 2}), ("ut_k4", "utrunc.v", {"K": 4})):
            library.add(rtl / path, name=name, parameters=params)
            energy, area = COSTS[name]
            cost = HardwareCost(area_um2=area, cell_count=10, delay_ns=2.0, power_mw=energy / 10, energy_pj=energy,
                                clock_ns=10.0, liberty="osu018", liberty_sha256=_liberty_sha(), tools={"yosys": "test"})
            library.update_hw_file(name, lambda old, key, cost=cost: json.dumps(
                {"schema": 2, "key": key, "costs": [{**cost.to_json(), "flow": HW_FLOW_VERSION}]}).encode())
    return root


def _liberty_sha() -> str:
    from axhw.doctor import find_liberty
    from axhw.io import sha256_file

    path = find_liberty("osu018")
    return sha256_file(path) if path is not None else "0" * 64


def _use(mp: pytest.MonkeyPatch, root: Path) -> None:
    mp.setenv("AXHW_DB", str(root / "db"))
    mp.setenv("AXHW_CACHE", str(root / "cache"))
    mp.setattr("axhw.paths.rtl_dir", lambda: root / "rtl")
    mp.setattr("axhw.library.rtl_dir", lambda: root / "rtl")
    mp.setattr("axhw.hw.design.rtl_dir", lambda: root / "rtl")


@pytest.fixture()
def report(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _use(monkeypatch, root)
    ops = [_Op("blocks.0.attn.qkv", "linear", 1000), _Op("blocks.0.mlp.fc1", "linear", 3000), _Op("head", "linear", 500)]
    config = {"blocks.0.attn.qkv": "ut_k2", "blocks.0.mlp.fc1": "ut_k4", "head": "exact"}
    energy = {n: COSTS[n][0] for n in COSTS}
    power = sum(o.macs_per_image * energy[config[o.name]] for o in ops) / sum(o.macs_per_image for o in ops)
    history = [Evaluation(0, "reference", {o.name: "exact" for o in ops}, 0.9, 1.0, 1.0, None),
               Evaluation(1, "mcts", config, 0.89, power, power, None)]
    result = SearchResult(model_name="default", dataset="digits", ops=ops, candidates=list(COSTS), method="mcts", seed=0,
                          max_accuracy_drop=2.0, fp32_accuracy=0.9, int8_accuracy=0.9, history=history,
                          settings={"liberty": "osu018"}, versions={})
    assert result.best().index == 1
    return write_report(result, tmp_path / "rep").out_dir


def test_handoff_ships_wrappers_and_a_top_that_elaborates(report: Path) -> None:
    filelist = (report / "filelist.f").read_text()
    files = [line for line in filelist.splitlines() if line and not line.startswith("//")]
    assert files == ["rtl/utrunc.v", "rtl/exact.v", "rtl/axhw_sm_utrunc.v", "rtl/axhw_sm_utrunc_ut_k4.v", "rtl/axhw_handoff_top.v"]
    k2, k4 = (report / "rtl/axhw_sm_utrunc.v").read_text(), (report / "rtl/axhw_sm_utrunc_ut_k4.v").read_text()
    assert "a == 8'd0 || b == 8'd0" not in k2 and "a == 8'd0 || b == 8'd0" in k4  # zero gate only where M(0, y) != 0
    assert ".K(2)" in k2 and ".K(4)" in k4
    build = subprocess.run(["iverilog", "-o", "top.vvp", "-s", "axhw_handoff_top", "-c", "filelist.f"], cwd=report,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    modules = {m["name"]: m for m in json.loads((report / "config.json").read_text())["modules"]}
    assert modules["exact"]["wrapper"] is None and modules["ut_k4"]["wrapper"]["module"] == "axhw_sm_utrunc_ut_k4"
    assert modules["ut_k2"]["wrapper"]["sha256"] == modules["ut_k2"]["wrapper"]["costed_sha256"]  # shipped as costed


def test_handoff_top_computes_the_database_tables(report: Path) -> None:
    """Every instance of the top, driven with all 65,536 operand pairs, gives the stored table."""
    from axhw import library

    names = ["exact", "ut_k2", "ut_k4"]
    bench = ["module tb;", "  reg [7:0] a, b;", *[f"  wire [15:0] y_{n};" for n in names],
             "  axhw_handoff_top top(" + ", ".join(f".{n}_a(a), .{n}_b(b), .{n}_y(y_{n})" for n in names) + ");",
             "  integer i, j;", "  initial begin",
             "    for (i = 0; i < 256; i = i + 1) for (j = 0; j < 256; j = j + 1) begin",
             "      a = i; b = j; #1;", '      $display("%0d %0d %0d", ' + ", ".join(f"y_{n}" for n in names) + ");",
             "    end", "  end", "endmodule"]
    (report / "tb.v").write_text("\n".join(bench) + "\n")
    build = subprocess.run(["iverilog", "-o", "tb.vvp", "-s", "tb", "-c", "filelist.f", "tb.v"], cwd=report,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["vvp", "-n", "tb.vvp"], cwd=report, capture_output=True, text=True, timeout=300)
    got = np.array([[int(x) for x in line.split()] for line in run.stdout.splitlines() if re.fullmatch(r"[\d ]+", line)])
    assert got.shape == (65536, 3)
    got = got.astype(np.uint16).view(np.int16).reshape(256, 256, 3)  # [a bits, b bits, instance]
    order = np.r_[128:256, 0:128]  # bit pattern 128..255 is -128..-1: signed index a + 128
    for k, name in enumerate(names):
        np.testing.assert_array_equal(got[np.ix_(order, order)][:, :, k], library.load(name).lut, err_msg=name)


def test_handoff_table_has_absolute_costs_and_fits_the_page(report: Path) -> None:
    md = (report / "report.md").read_text()
    section = md[md.index("## Hardware hand-off"):]
    section = section[:section.index("\n## ", 5)]
    total = next(line for line in section.splitlines() if line.startswith("| total"))
    cells = [c.strip() for c in total.strip("|").split("|")]
    assert cells[6] == "10000.0"  # area, µm²: one instance each
    assert cells[8] == f"{(1.0 + 0.6 + 0.4) / 10:.4g}"  # power, mW
    assert float(cells[10]) == pytest.approx((1000 * 0.6 + 3000 * 0.4 + 500 * 1.0) / 1e6)  # µJ per image
    totals = json.loads((report / "config.json").read_text())["handoff"]["totals"]
    assert totals["area_um2"] == 10000.0 and totals["energy_per_image_pj"] == pytest.approx(2300.0)
    assert "axhw_sm_*" in section and "wrapper" in section
    html = (report / "report.html").read_text()
    table = html[html.index('id="handoff"'):]
    table = table[table.index("<table>"):table.index("</table>")]
    # Width bound: the longest text of each column at ~8 px a character plus padding, within 1,400 px.
    rows = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)]
    widths = [max(len(re.sub(r"<[^>]+>", "", row[c])) for row in rows) for c in range(len(rows[0]))]
    assert sum(8 * w + 20 for w in widths) < 1400, widths
    assert ".table{max-width:100%;overflow-x:auto}" in html and '<div class="table">' in html

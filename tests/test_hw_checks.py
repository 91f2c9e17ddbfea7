"""Hardware-cost flow on tiny hand-written designs: equivalence, activity, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from axhw import hw
from axhw.cli import main
from axhw.errors import ConfigError, DataError, SynthesisError
from axhw.hw import cache
from axhw.records import PortSpec

PORTS8 = PortSpec("tiny", "a", "b", "y", 8, 8, 16, True)


def _design(tmp_path: Path, body: str, ports: PortSpec = PORTS8, name: str = "tiny") -> hw.Design:
    aw, bw, yw = ports.a_width, ports.b_width, ports.y_width
    path = tmp_path / f"{name}.v"
    path.write_text(f"module {ports.module}(input signed [{aw - 1}:0] a, input signed [{bw - 1}:0] b, "
                    f"output signed [{yw - 1}:0] y);\n{body}\nendmodule\n")
    return hw.Design.from_verilog(path, ports, name=name)


# Top three bits of each operand only: a 3x3 signed multiplier, a few dozen cells.
TINY = "  assign y = $signed({a[7:5], 5'b0}) * $signed({b[7:5], 5'b0});"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AXHW_DB", str(tmp_path / "db"))


@pytest.fixture
def osu018() -> hw.Liberty:
    return hw.resolve_liberty("osu018")


def test_tiny_design_costs_and_cache(tmp_path, osu018, monkeypatch):
    design = _design(tmp_path, TINY)
    first = hw.cost(design, clock_ns=10.0)
    assert 0 < first.area_um2 < 5000 and first.cell_count > 0
    assert first.area_um2 == pytest.approx(osu018.area_of(first.cell_mix))
    assert 0 < first.delay_ns < 10 and first.power_mw > 0
    assert first.energy_pj == pytest.approx(first.power_mw * 10.0, rel=1e-5)
    assert first.operand_stream == "uniform" and set(first.tools) == {"yosys", "iverilog", "sta"}

    # A second call is answered from hw.json without running any tool.
    monkeypatch.setattr(hw.flow, "run_flow", lambda *a, **k: pytest.fail("cache miss"))
    assert hw.cost(design, clock_ns=10.0) == first
    assert hw.load_costs(design) == [first]
    monkeypatch.undo()

    # Changing the RTL makes the cached cost stale.
    design.rtl.write_text(design.rtl.read_text().replace("5'b0", "5'b1"))
    changed = hw.Design.from_verilog(design.rtl, PORTS8, name="tiny")
    assert cache.lookup(changed, osu018.sha256, first.operands_sha256, 10.0) is None


def test_activity_matches_functional_toggles(tmp_path, osu018):
    """Zero-delay simulation: output toggles and duty equal those computed from the products."""
    design = _design(tmp_path, TINY)
    work = cache.build_dir(design.design_sha256, osu018.sha256)
    synth = hw.synthesize(design, osu018, work)
    models, timed = hw.cell_models(osu018, set(synth.cell_mix), work)
    assert timed  # the OSU Verilog models carry specify delays
    ops = hw.uniform_operands(300, seed=1)
    activity = hw.simulate_activity(design, synth, models, False, ops, work / "zero-delay")
    a, b = (ops[:, i].astype(np.int64) & 0xE0 for i in (0, 1))
    y = ((a - ((a & 0x80) << 1)) * (b - ((b & 0x80) << 1))) & 0xFFFF
    bits = (y[:, None] >> np.arange(16)) & 1
    assert [activity.toggles[f"y[{i}]"] for i in range(16)] == list((np.diff(bits, axis=0) != 0).sum(0))
    np.testing.assert_allclose([activity.duty[f"y[{i}]"] for i in range(16)], bits[1:].mean(0), atol=1e-9)
    assert activity.cycles == 299


def test_equivalence_names_first_mismatch(tmp_path, osu018):
    # yosys defines SYNTHESIS, Icarus does not: the netlist and the RTL disagree on one pair.
    body = """`ifdef SYNTHESIS
  assign y = a * b;
`else
  assign y = (a == 4'sd3 && b == -4'sd5) ? -8'sd14 : a * b;
`endif"""
    ports = PortSpec("odd", "a", "b", "y", 4, 4, 8, True)
    design = _design(tmp_path, body, ports, name="odd")
    work = tmp_path / "work"
    synth = hw.synthesize(design, osu018, work)
    models, _ = hw.cell_models(osu018, set(synth.cell_mix), work)
    with pytest.raises(hw.EquivalenceError, match=r"1 of 256 operand pairs; first at a=3, b=-5: RTL gives -14, "
                                                  r"netlist gives -15"):
        hw.check_equivalence(design, synth, models, work)


def test_constant_design_warns(tmp_path):
    design = _design(tmp_path, "  assign y = 16'sd0;")
    with pytest.warns(hw.ConstantDesignWarning, match="synthesizes to constants"):
        result = hw.cost(design)
    assert result.cell_count == 0 and result.area_um2 == 0 and result.delay_ns == 0
    assert result.power_mw == pytest.approx(0, abs=1e-9)


def test_yosys_failure_shows_log_tail(tmp_path):
    design = _design(tmp_path, "  assign y = a * ;")
    with pytest.raises(SynthesisError, match=r"yosys synthesis of tiny .* failed") as info:
        hw.cost(design)
    message = str(info.value)
    assert "last lines of the log" in message and "syntax error" in message
    log = Path(message.rsplit("full log: ", 1)[1].strip())
    assert log.is_file() and "syntax error" in log.read_text()


def test_sta_failure_shows_log_tail(tmp_path, osu018):
    design = _design(tmp_path, TINY)
    synth = hw.synthesize(design, osu018, tmp_path / "work")
    synth.netlist.write_text("module tiny_gl(a, b, y);\n  this is not a netlist\nendmodule\n")
    with pytest.raises(SynthesisError, match=r"OpenSTA timing .* failed .*Error:") as info:
        hw.critical_path(synth, osu018, 10.0, tmp_path / "work")
    assert "full log: " in str(info.value) and (tmp_path / "work" / "timing.log").is_file()


@pytest.mark.parametrize("operands, message", [
    (np.array([[200, 1], [1, 1]]), r"outside int8 .* first: a=200 in pair 0"),
    (np.array([[1, 1], [3, -129]]), r"first: b=-129 in pair 1"),
    (np.zeros((5, 3), dtype=np.int8), r"shape \(N, 2\)"),
    (np.array([[0.5, 1.0], [1.0, 2.0]]), r"integers"),
    (np.zeros((1, 2), dtype=np.int8), r"at least 2 pairs"),
])
def test_bad_operand_streams(tmp_path, operands, message):
    design = _design(tmp_path, TINY)
    with pytest.raises(DataError, match=message):
        hw.cost(design, operands=operands)


def test_missing_liberty(tmp_path):
    design = _design(tmp_path, TINY)
    with pytest.raises(ConfigError, match=r"Liberty file '.*nowhere.lib' not found; give one of osu018"):
        hw.cost(design, liberty=tmp_path / "nowhere.lib")
    not_liberty = tmp_path / "bad.lib"
    not_liberty.write_text("this is not a cell library\n")
    with pytest.raises(ConfigError, match="is not a Liberty file"):
        hw.resolve_liberty(not_liberty)


def test_cli_bad_liberty_exits_2_without_traceback(capsys):
    assert main(["characterize", "--hw", "--liberty", "/no/such.lib", "--all"]) == 2
    err = capsys.readouterr().err
    assert "axhw characterize: error: Liberty file '/no/such.lib' not found" in err and "Traceback" not in err


def test_liberty_by_name_and_osu050_file_name():
    lib = hw.resolve_liberty("osu018")
    assert lib.name == "osu018" and lib.supply_v == pytest.approx(1.8) and lib.cell_areas["INVX1"] == 16
    if Path("/usr/share/qflow/tech/osu050").is_dir():
        assert hw.resolve_liberty("osu050").supply_v == pytest.approx(5.0)

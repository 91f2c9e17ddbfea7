"""Unsigned designs are costed as the signed sign-magnitude datapath the emulator uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from axhw import hw, library
from axhw.hw import cache
from axhw.records import PortSpec

UNSIGNED4 = PortSpec("core4", "x", "z", "p", 4, 4, 8, False)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def osu018() -> hw.Liberty:
    return hw.resolve_liberty("osu018")


def _netlist(design: hw.Design, liberty: hw.Liberty, work: Path) -> tuple[hw.SynthesisResult, Path]:
    synth = hw.synthesize(design, liberty, work)
    models, _ = hw.cell_models(liberty, set(synth.cell_mix), work)
    return synth, models


def _core4(tmp_path: Path, expr: str, **kwargs) -> hw.Design:
    path = tmp_path / f"core4_{abs(hash(expr))}.v"
    path.write_text(f"module core4(input [3:0] x, input [3:0] z, output [7:0] p);\n  assign p = {expr};\nendmodule\n")
    return hw.Design.from_verilog(path, UNSIGNED4, name="core4", **kwargs)


def test_unsigned_database_entries_are_wrapped():
    unsigned = [name for name in library.names() if not library.load(name).signed]
    assert unsigned, "the bundled library has unsigned designs (exact_u, kulkarni)"
    for name in unsigned:
        mult = library.load(name)
        design = hw.as_design(mult)
        assert design.core is not None and design.core.ports == mult.ports, name
        assert design.ports.signed and design.ports.module == f"axhw_sm_{mult.ports.module}"
        assert design.rtl_sha256 == mult.rtl_sha256 and design.hw_json == design.core.hw_json
        np.testing.assert_array_equal(design.reference, mult.lut)
        assert design.design_sha256 != design.core.design_sha256
    assert hw.as_design(library.load("exact")).core is None  # signed designs are costed as they are


def test_exact_u_wrapper_matches_stored_lut_and_adds_conversion(tmp_path, osu018):
    mult = library.load("exact_u")
    wrapped = hw.as_design(mult)
    bare = hw.Design.from_verilog(wrapped.core.rtl, mult.ports, name="exact_u", sign_magnitude=False)
    assert bare.core is None and not bare.ports.signed

    synth, models = _netlist(wrapped, osu018, tmp_path / "wrapped")
    assert hw.check_equivalence(wrapped, synth, models, tmp_path / "wrapped") == 65536
    core = hw.synthesize(bare, osu018, tmp_path / "bare")
    # The conversions (two negations in, one out) are real cells on top of the core.
    assert synth.area_um2 > core.area_um2 and synth.cell_count > core.cell_count

    # The check reads the stored table: one wrong entry is found and named.
    wrong = np.array(mult.lut)
    wrong[0, 0] -= 1  # a = b = -128
    corrupt = hw.signed_wrapper(wrapped.core, zero_gate=False, reference=wrong)
    synth, models = _netlist(corrupt, osu018, tmp_path / "corrupt")
    with pytest.raises(hw.EquivalenceError, match=r"stored sign-magnitude table on 1 of 65536 operand pairs; "
                                                  r"first at a=-128, b=-128: reference gives 16383, "
                                                  r"netlist gives 16384"):
        hw.check_equivalence(corrupt, synth, models, tmp_path / "corrupt")


def test_wrapper_without_table_is_checked_against_core_rtl(tmp_path, osu018):
    exact = _core4(tmp_path, "x * z", zero_gate=False)
    assert exact.core is not None and exact.reference is None and exact.ports.signed
    synth, models = _netlist(exact, osu018, tmp_path / "exact")
    assert hw.check_equivalence(exact, synth, models, tmp_path / "exact") == 256

    # M(0, z) = 1: sign(a·b) = 0 must override M, which only the zero gate does.
    odd = _core4(tmp_path, "(x * z) | 8'd1", zero_gate=False)
    synth, models = _netlist(odd, osu018, tmp_path / "odd")
    with pytest.raises(hw.EquivalenceError, match=r"sign\(a·b\)·M\(\|a\|, \|b\|\) of the core RTL on 31 of 256 "
                                                  r"operand pairs; first at a=0, b=0: reference gives 0, "
                                                  r"netlist gives 1"):
        hw.check_equivalence(odd, synth, models, tmp_path / "odd")
    gated = _core4(tmp_path, "(x * z) | 8'd1", zero_gate=True)
    assert gated.design_sha256 != odd.design_sha256
    synth, models = _netlist(gated, osu018, tmp_path / "gated")
    assert hw.check_equivalence(gated, synth, models, tmp_path / "gated") == 256


def test_wrapper_is_driven_by_signed_codes(tmp_path, osu018):
    """The wrapper sees the two's-complement stream (as signed designs do), a bare core the magnitudes."""
    wrapped = hw.as_design(library.load("exact_u"))
    bare = hw.Design.from_verilog(wrapped.core.rtl, wrapped.core.ports, name="exact_u", sign_magnitude=False)
    ops = np.array([[-1, 2], [-128, -128]], dtype=np.int8)
    for design, words in [(wrapped, ["ff02", "8080"]), (bare, ["0102", "8080"])]:
        hw.power._write_stimulus(design, ops, tmp_path / "ops.hex")
        assert (tmp_path / "ops.hex").read_text().split() == words
    assert cache.build_dir(wrapped.design_sha256, osu018.sha256) != cache.build_dir(bare.design_sha256, osu018.sha256)

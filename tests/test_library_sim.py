"""Exhaustive characterization of Verilog designs with cocotb + Icarus.

A few designs only (each sweep simulates all 65,536 pairs); the whole library is
characterized by ``axhw rebuild`` / ``benchmarks/characterize.py``.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from axhw import library
from axhw.cli import main
from axhw.discover import discover
from axhw.errors import CharacterizationError, ToolMissingError
from axhw.exact import exact_lut
from axhw.paths import rtl_dir
from axhw.simulate import sweep

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog not installed")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A database holding the exact signed and exact unsigned bundled designs."""
    root = tmp_path_factory.mktemp("simdb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AXHW_DB", str(root / "db"))
        mp.setenv("AXHW_CACHE", str(root / "cache"))
        for name in ("exact", "exact_u"):
            entry = next(e for e in library.manifest() if e.name == name)
            library.add(rtl_dir() / entry.file, name=name, family=entry.family, description=entry.description)
        yield root / "db"


@pytest.fixture()
def use_db(db, monkeypatch):
    monkeypatch.setenv("AXHW_DB", str(db))
    monkeypatch.setenv("AXHW_CACHE", str(db.parent / "cache"))
    return db


def test_exact_design_equals_product_for_every_pair(use_db):
    # family "exact" made the bench assert y == a*b for each of the 65,536 pairs, too
    mult = library.load("exact")
    np.testing.assert_array_equal(mult.lut, exact_lut())
    assert mult.metrics.wce == 0 and mult.signed


def test_unsigned_design_in_sign_magnitude_form(use_db):
    mult = library.load("exact_u")
    assert not mult.signed
    np.testing.assert_array_equal(mult.lut, exact_lut())  # includes (-128) * (-128) = 16384
    raw = np.load(use_db / "exact_u" / "lut.npy")
    np.testing.assert_array_equal(raw, exact_lut(signed=False))


def test_recharacterizing_gives_byte_identical_files(use_db):
    before = {n: ((use_db / n / "lut.npy").read_bytes(), (use_db / n / "record.json").read_bytes())
              for n in ("exact", "exact_u")}
    assert library.rebuild(["exact", "exact_u"], force=True, progress=False) == ["exact", "exact_u"]
    after = {n: ((use_db / n / "lut.npy").read_bytes(), (use_db / n / "record.json").read_bytes())
             for n in ("exact", "exact_u")}
    assert after == before


def test_cli_add_parameterized_design(use_db, tmp_path, capsys):
    assert main(["add", str(rtl_dir() / "drum.v"), "--param", "K=3", "--family", "drum"]) == 0
    assert "added drum_k3" in capsys.readouterr().out
    mult = library.load("drum_k3")
    assert mult.ports.parameters == {"K": 3} and mult.rtl_path == "drum.v"
    assert 0 < mult.metrics.mre < 0.2 and abs(mult.metrics.bias) < 1  # DRUM is unbiased
    assert mult.lut[128 + 5, 128 + 6] == 30  # operands below 2^K are exact


def test_xz_output_names_the_first_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "xz.v"
    path.write_text("module xz(input signed [7:0] a, input signed [7:0] b, output signed [15:0] y);\n"
                    "  assign y = (a == 8'sd3 && b == 8'sd5) ? 16'bx : a * b;\nendmodule\n")
    with pytest.raises(CharacterizationError, match=r"output y of xz is X/Z .* for a=3, b=5"):
        sweep(path, discover(path))


def test_elaboration_error_names_file_and_log(tmp_path, monkeypatch):
    monkeypatch.setenv("AXHW_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "unbound.v"
    path.write_text("module unbound(input [7:0] a, input [7:0] b, output [15:0] y);\n  assign y = a * c;\nendmodule\n")
    with pytest.raises(CharacterizationError, match=r"unbound.v: Icarus could not build module unbound.*build.log"):
        sweep(path, discover(path))


def test_simulator_missing_points_to_doctor(tmp_path, monkeypatch):
    import axhw.simulate as simulate

    spec = discover(rtl_dir() / "exact.v")
    monkeypatch.setattr(simulate.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match="axhw doctor"):
        sweep(rtl_dir() / "exact.v", spec)

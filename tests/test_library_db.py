"""The multiplier database: records, integrity checks, staleness, C models, metrics, export, CLI.

Entries here come from C models (compiled and swept in milliseconds), so these tests
need no HDL simulation; ``test_library_sim.py`` covers the Verilog path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from axhw import library
from axhw.cli import main
from axhw.errors import CharacterizationError, ConfigError, DatabaseError, ToolMissingError
from axhw.exact import exact_lut
from axhw.metrics import error_metrics
from axhw.records import HardwareCost

C_SOURCE = """#include <stdint.h>
/* unsigned exact, EvoApproxLib-style signature */
uint16_t mul8u_exact(uint8_t A, uint8_t B)
{
  return (uint16_t)A * (uint16_t)B;
}

int16_t mul8s_floor16(int8_t a, int8_t b) { return (int16_t)((a * b) & ~0xF); }
"""

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


@pytest.fixture()
def c_file(tmp_path) -> Path:
    path = tmp_path / "models.c"
    path.write_text(C_SOURCE)
    return path


@pytest.fixture()
def entries(db, c_file):
    """Two entries from C models: an unsigned exact one and a signed floor-to-16 one."""
    library.add(c_file, function="mul8u_exact", family="exact")
    library.add(c_file, function="mul8s_floor16", name="floor16")
    return db


# --------------------------------------------------------------------------- metrics and tables


def test_metrics_of_exact_are_zero():
    m = error_metrics(exact_lut())
    assert (m.mae, m.mse, m.wce, m.mre, m.error_rate, m.bias, m.std, m.wre) == (0, 0, 0, 0, 0, 0, 0, 0)
    assert sum(m.histogram["counts"]) == 65536


def test_metrics_formulas_on_a_known_error():
    lut = exact_lut().copy()
    lut[128 + 2, 128 + 3] += 4  # one pair off by +4 (exact 6)
    lut[128 + 0, 128 + 5] -= 2  # exact 0: counts in MAE, not in MRE
    m = error_metrics(lut)
    assert m.mae == pytest.approx(6 / 65536)
    assert m.mse == pytest.approx(20 / 65536)
    assert m.wce == 4
    assert m.bias == pytest.approx(2 / 65536)
    assert m.error_rate == pytest.approx(2 / 65536)
    nonzero = np.count_nonzero(exact_lut())
    assert m.mre == pytest.approx((4 / 6) / nonzero)
    assert m.wre == pytest.approx(4 / 6)
    assert m.wce_percent == pytest.approx(100 * 4 / 2**16)  # EvoApproxLib's base: the 2^16 output range
    assert m.relative_bias == pytest.approx((4 / 6) / nonzero)
    assert m.mae_reachable == pytest.approx(6 / 255**2) and m.wce_reachable == 4
    assert m.zero_preserving is False and m.unsigned is None
    assert error_metrics(exact_lut()).zero_preserving is True


def test_reachable_domain_leaves_out_minus_128():
    lut = exact_lut().copy()
    lut[0, :] += 100  # a = -128 only
    m = error_metrics(lut)
    assert m.wce == 100 and m.wce_reachable == 0 and m.mae_reachable == 0


def test_relative_bias_exposes_a_scaling_error_that_bias_hides():
    values = np.arange(-128, 128)
    exact = np.multiply.outer(values, values)
    scaled = np.trunc(exact * 0.9).astype(np.int32)  # magnitudes 10 % short, symmetric in sign
    m = error_metrics(scaled)
    assert abs(m.bias) < 1e-3 * m.mae  # plain bias: about 0
    assert m.relative_bias == pytest.approx(-0.1, abs=2e-3)


def test_unsigned_domain_metrics():
    unsigned = exact_lut(signed=False).copy()
    unsigned[255, 255] -= 1000  # outside the magnitudes sign-magnitude use (0..128)
    m = error_metrics(library.sign_magnitude(unsigned), unsigned_table=unsigned)
    assert m.wce == 0
    assert m.unsigned.wce == 1000 and m.unsigned.mae == pytest.approx(1000 / 65536)
    assert m.unsigned.mae_percent == pytest.approx(100 * 1000 / 65536 / 65536)


def test_schema_1_metrics_migrate():
    from axhw.records import ErrorMetrics

    old = {"schema": 1, "mae": 4.0, "mse": 20.0, "wce": 64.0, "mre": 0.1, "error_rate": 0.5, "bias": 0.0,
           "std": 1.0, "wre": 1.0, "mae_percent": 100 * 4 / 2**14, "wce_percent": 100 * 64 / 2**14, "histogram": {}}
    m = ErrorMetrics.from_json(old)
    assert m.mae_percent == pytest.approx(100 * 4 / 2**16) and m.wce_percent == pytest.approx(100 * 64 / 2**16)
    assert m.zero_preserving is None and m.mae_reachable is None
    again = ErrorMetrics.from_json(error_metrics(exact_lut(), unsigned_table=exact_lut(signed=False)).to_json())
    assert again.unsigned.mae == 0 and again.zero_preserving is True


def test_sign_magnitude_handles_minus_128():
    wrapped = library.sign_magnitude(exact_lut(signed=False))
    np.testing.assert_array_equal(wrapped, exact_lut())
    assert wrapped[0, 0] == 16384 and wrapped[0, 255] == -128 * 127


# --------------------------------------------------------------------------- C models


@needs_cc
def test_c_models_are_swept_and_loaded(entries):
    assert library.names() == ["floor16", "mul8u_exact"]
    unsigned = library.load("mul8u_exact")
    assert unsigned.signed is False and unsigned.ports.y == "return"
    np.testing.assert_array_equal(unsigned.lut, exact_lut())
    floor16 = library.load("floor16")
    assert floor16.lut.dtype == np.int32 and floor16.lut.shape == (256, 256)
    assert floor16.lut[128 + 3, 128 + 7] == 16 and floor16.lut[128 - 1, 128 + 1] == -16
    assert 0 < floor16.metrics.mae < 16 and floor16.metrics.bias < 0


@needs_cc
def test_c_model_errors(db, c_file, tmp_path):
    with pytest.raises(ConfigError, match="no definition of function 'mul8u_nope'.*mul8s_floor16, mul8u_exact"):
        library.add(c_file, function="mul8u_nope")
    with pytest.raises(ConfigError, match="needs the function.*mul8s_floor16, mul8u_exact"):
        library.add(c_file)
    with pytest.raises(ConfigError, match="parameters only apply to Verilog designs"):
        library.add(c_file, function="mul8u_exact", parameters={"K": 1})
    three = tmp_path / "three.c"
    three.write_text("#include <stdint.h>\nint32_t mul3(int8_t a, int8_t b, int c) { return a * b; }\n")
    with pytest.raises(ConfigError, match=r"three.c:2: mul3 must take two integer operands"):
        library.add(three, function="mul3")
    broken = tmp_path / "broken.c"
    broken.write_text("#include <stdint.h>\nuint16_t m(uint8_t a, uint8_t b) {\n  return a * b\n}\n")
    with pytest.raises(CharacterizationError, match=r"broken.c:\d+.*error"):
        library.add(broken, function="m")


def test_c_compiler_missing(db, c_file, monkeypatch):
    import axhw.cmodel as cmodel

    monkeypatch.setattr(cmodel.shutil, "which", lambda name: None)
    with pytest.raises(ToolMissingError, match="axhw doctor"):
        library.add(c_file, function="mul8u_exact")


# --------------------------------------------------------------------------- integrity


def test_unknown_name_lists_available(entries):
    with pytest.raises(DatabaseError, match="no multiplier named 'nope'.*available: floor16, mul8u_exact"):
        library.load("nope")


@needs_cc
def test_truncated_table_is_never_loaded(entries):
    lut = entries / "floor16" / "lut.npy"
    lut.write_bytes(lut.read_bytes()[:1000])
    with pytest.raises(DatabaseError, match="corrupt product table"):
        library.load("floor16")
    assert library.status("floor16") == "corrupt"
    assert "(corrupt)" in library.list_table()
    assert library.rebuild(["floor16"], progress=False) == ["floor16"]
    assert library.load("floor16").lut[128 + 3, 128 + 7] == 16


@needs_cc
def test_wrong_shape_with_matching_hash_is_rejected(entries):
    from axhw.io import atomic_save_npy, sha256_file

    folder = entries / "floor16"
    atomic_save_npy(folder / "lut.npy", np.zeros((255, 256), dtype=np.int32))
    record = json.loads((folder / "record.json").read_text())
    record["lut"]["sha256"] = sha256_file(folder / "lut.npy")
    (folder / "record.json").write_text(json.dumps(record))
    # A writer that got everything consistent but the shape: the digest matches, the shape check does not.
    digest = {"schema": 1, "files": {f: sha256_file(folder / f) for f in ("record.json", "lut.npy")}}
    (folder / "digest.json").write_text(json.dumps(digest))
    with pytest.raises(DatabaseError, match=r"shape \(255, 256\).*expected \(256, 256\) int32"):
        library.load("floor16")


@needs_cc
def test_corrupt_record_json_names_line(entries):
    record = entries / "floor16" / "record.json"
    record.write_text(record.read_text()[:200])
    with pytest.raises(DatabaseError, match=r"record.json: corrupt record \(its sha256 differs from digest.json"):
        library.load("floor16")


@needs_cc
def test_stale_entry_is_reported_and_rebuilt(entries, c_file):
    c_file.write_text(C_SOURCE.replace("~0xF", "~0x1F"))
    assert library.status("floor16") == "stale"
    with pytest.raises(DatabaseError, match="stale entry.*axhw rebuild floor16"):
        library.load("floor16")
    assert library.rebuild(["floor16"], progress=False) == ["floor16"]
    assert library.load("floor16").lut[128 + 3, 128 + 7] == 0


@needs_cc
def test_name_clash_and_bad_names(entries, tmp_path):
    other = tmp_path / "other.c"
    other.write_text(C_SOURCE)
    with pytest.raises(DatabaseError, match="already exists"):
        library.add(other, function="mul8s_floor16", name="floor16")
    with pytest.raises(ConfigError, match="invalid multiplier name"):
        library.add(other, function="mul8s_floor16", name="../escape")


# --------------------------------------------------------------------------- hardware columns, export, CLI


@needs_cc
def test_hw_costs_come_from_hw_json(entries):
    cost = HardwareCost(area_um2=100.0, cell_count=10, delay_ns=1.5, power_mw=0.5, energy_pj=5.0, clock_ns=10.0,
                        liberty="osu018", liberty_sha256="x")

    def hw_json(key):
        return json.dumps({"schema": 2, "key": key, "costs": [{**cost.to_json(), "flow": key["flow"]}]}).encode()

    library.update_hw_file("floor16", lambda old, key: hw_json(key))
    assert library.load("floor16").hw == cost
    table = library.list_table()
    assert "area_um2" in table and "saving_vs_" in table and "vs_exact%" in table
    # A cost computed for other parameters (or another flow) is refused by the writer and every reader.
    _, key = library.read_hw_file("floor16")
    with pytest.raises(DatabaseError, match="refusing.*stale.*parameters"):
        library.update_hw_file("floor16", lambda old, k: hw_json({**k, "parameters": {"K": 7}}))
    from axhw import entries as entries_mod

    folder = entries / "floor16"
    with entries_mod.write_lock(folder.parent):
        files = entries_mod.read_files(folder)
        entries_mod.commit(folder.parent, "floor16", {**files, "hw.json": hw_json({**key, "flow": key["flow"] + 1})})
    assert library.load("floor16").hw is None
    assert "stale (flow changed" in library.show("floor16")
    # Written by hand, outside the digest: the whole entry is corrupt, never loaded.
    (folder / "hw.json").write_bytes(hw_json(key))
    with pytest.raises(DatabaseError, match="hw.json: corrupt hardware cost"):
        library.load("floor16")


@needs_cc
def test_export_c_header_compiles_and_matches(entries, tmp_path):
    header = library.export("floor16", "c-header", tmp_path / "floor16.h")
    program = tmp_path / "main.c"
    program.write_text('#include <stdio.h>\n#include "floor16.h"\n'
                       "int main(void) { printf(\"%d %d\\n\", axhw_floor16(-128, -128), axhw_floor16(3, 7)); return 0; }\n")
    subprocess.run(["cc", "-o", str(tmp_path / "main"), str(program)], check=True, cwd=tmp_path)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["16384", "16"] and header.name == "floor16.h"
    npy = library.export("floor16", "npy", tmp_path / "f.npy")
    np.testing.assert_array_equal(np.load(npy), library.load("floor16").lut)
    with pytest.raises(ConfigError, match="unknown export format"):
        library.export("floor16", "csv")


@needs_cc
def test_cli_commands(entries, c_file, tmp_path, capsys):
    assert main(["add", str(c_file), "--function", "mul8s_floor16", "--name", "cli_floor"]) == 0
    assert "added cli_floor" in capsys.readouterr().out
    assert main(["list"]) == 0
    assert "cli_floor" in capsys.readouterr().out
    png = tmp_path / "map.png"
    assert main(["show", "cli_floor", "--heatmap", str(png)]) == 0
    assert "MAE" in capsys.readouterr().out and png.read_bytes()[:4] == b"\x89PNG"
    assert main(["export", "cli_floor", "--format", "npy", "--out", str(tmp_path / "x.npy")]) == 0
    capsys.readouterr()
    assert main(["show", "nope", "--no-heatmap"]) == 2
    err = capsys.readouterr().err
    assert "no multiplier named 'nope'" in err and "Traceback" not in err
    assert main(["add", str(c_file), "--param", "K"]) == 2
    assert "expected NAME=INTEGER" in capsys.readouterr().err


def test_bench_module_imports_outside_the_simulator():
    from axhw.rtl import bench

    env = bench.bench_env(True, "/o.npy", "/s.json", check_exact=True)
    assert env["AXHW_BENCH_SIGNED"] == "1" and env["AXHW_BENCH_CHECK"] == "exact"
    assert not hasattr(bench, "sweep")
    text = bench.wrapper_source("drum", "x", "z", "p", 16, {"K": 3}, lanes=4)
    assert "drum #(.K(3)) dut (.x(a), .z(b[8*k +: 8]), .p(y[Y_WIDTH*k +: Y_WIDTH]));" in text


def test_bundled_library_is_characterized_and_up_to_date(monkeypatch):
    """Every design of rtl/library.json is in multipliers_db/ with metrics (run `axhw rebuild` if not)."""
    monkeypatch.delenv("AXHW_DB", raising=False)
    states = {e.name: library.status(e.name) for e in library.manifest()}
    assert all(state == "ok" for state in states.values()), states
    exact = library.load("exact")
    np.testing.assert_array_equal(exact.lut, exact_lut())
    assert len(states) >= 12

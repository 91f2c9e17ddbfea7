"""Hardware cost of the bundled designs: exact vs truncated, data-aware power, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from axhw import hw, library
from axhw.cli import main
from axhw.discover import discover
from axhw.paths import rtl_dir


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    """``exact`` and the first bundled truncated design, from rtl/ (not the database), private cache."""
    entries = {e.name: e for e in library.manifest()}
    truncated = sorted(name for name, e in entries.items() if e.family == "truncation")
    assert "exact" in entries and truncated, "rtl/library.json lists exact and truncated designs"
    root = tmp_path_factory.mktemp("hw")
    if "exact" in library.names():  # for the CLI test: the database entry, without its costs
        from axhw import entries as db_entries

        files = db_entries.read_files(library.entry_dir("exact"))
        with db_entries.write_lock(root / "db") as db:
            db_entries.commit(db, "exact", {f: data for f, data in files.items() if f != "hw.json"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AXHW_CACHE", str(root / "cache"))
        mp.setenv("AXHW_DB", str(root / "db"))
        chosen = {}
        for name in ["exact", truncated[0]]:
            e = entries[name]
            ports = discover(rtl_dir() / e.file, top=e.top, signed=e.signed, parameters=e.parameters)
            chosen[name] = hw.Design.from_verilog(rtl_dir() / e.file, ports, name=name)
        yield chosen


@pytest.fixture(scope="module")
def costs(designs):
    return {name: hw.cost(design) for name, design in designs.items()}


def test_exact_costs_more_than_truncated(costs):
    exact = costs["exact"]
    for name, trunc in costs.items():
        if name == "exact":
            continue
        assert trunc.area_um2 < exact.area_um2, name
        assert trunc.power_mw < exact.power_mw, name
        assert trunc.energy_pj < exact.energy_pj, name


def test_skewed_operands_change_power(designs, costs):
    exact, uniform = designs["exact"], costs["exact"]
    rng = np.random.default_rng(0)
    # Small non-negative activations (after GELU/softmax) times small signed weights.  (Small
    # values of both signs would not do: two's-complement sign extension toggles like uniform.)
    small = np.stack([rng.integers(0, 16, 2048), rng.integers(-8, 8, 2048)], axis=1).astype(np.int8)
    skewed = hw.cost(exact, operands=small, stream="small")
    assert skewed.operand_stream == "small" and skewed.operands_sha256 != uniform.operands_sha256
    assert skewed.area_um2 == uniform.area_um2 and skewed.delay_ns == uniform.delay_ns
    assert skewed.power_mw < 0.7 * uniform.power_mw
    # Same stream, same result (seeded and cached); the cache keeps both costs.
    assert hw.cost(exact, operands=small, stream="small") == skewed
    assert {c.operand_stream for c in hw.load_costs(exact)} == {"uniform", "small"}


def test_cli_characterize_hw_prints_table(designs, costs, capsys):
    assert main(["characterize", "--hw", "exact"]) == 0
    out = capsys.readouterr().out
    assert "area µm²" in out and "exact" in out and "energy pJ" in out
    assert library.load("exact").hw == costs["exact"]

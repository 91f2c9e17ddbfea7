"""The reference of every saving: the cheapest zero-error design, named where a saving is printed."""

from __future__ import annotations

import pytest

from axhw import hw, library
from axhw.emulator import OpInfo
from axhw.errors import DatabaseError
from axhw.search import SearchSpace


def _zero_error_costs() -> dict[str, float]:
    out = {}
    for name in library.names():
        m = library.load(name)
        if m.metrics.error_rate == 0 and m.hw is not None:
            out[name] = m.hw.energy_pj
    return out


def test_best_exact_is_the_cheapest_zero_error_entry():
    costs = _zero_error_costs()
    base = hw.best_exact()
    assert base.name == min(costs, key=costs.get)
    assert base.compared == pytest.approx(costs)
    assert library.load(base.name).metrics.mae == 0
    # the behavioural `exact` is one of the candidates, not the reference by fiat
    assert "exact" in base.compared and base.energy_pj <= base.compared["exact"]


def test_best_exact_without_candidates_says_how_to_fix():
    with pytest.raises(DatabaseError, match="characterize"):
        hw.best_exact(names=["trunc_k4", "drum_k4"])  # no zero-error design among them
    with pytest.raises(DatabaseError, match="no zero-error"):
        hw.best_exact(liberty="no_such_library")


def test_list_and_cost_tables_name_the_reference():
    base = hw.best_exact()
    table = library.list_table()
    assert f"saving_vs_{base.name}%" in table and "vs_exact%" in table and base.label() in table
    line = next(row for row in table.splitlines() if row.startswith("trunc_k4 "))
    trunc = library.load("trunc_k4").hw.energy_pj
    assert f"{100 * (1 - trunc / base.energy_pj):.1f}" in line.split()
    costs = {n: library.load(n).hw for n in ("exact", base.name, "trunc_k4")}
    text = hw.format_table(costs)
    assert f"saving % vs {base.name}" in text and text.splitlines()[-1].startswith(f"savings: energy per multiplication against {base.name}")


def test_search_space_measures_power_against_the_reference():
    ops = [OpInfo("fc1", "linear", 100), OpInfo("fc2", "linear", 300)]
    space = SearchSpace.from_library(ops, ["trunc_k4", "exact"])
    base = hw.best_exact()
    assert space.candidates[0] == space.reference == base.name
    assert space.power_rel(space.exact_config()) == pytest.approx(1.0)
    exact = library.load("exact").hw.energy_pj
    assert space.power_rel(space.uniform_config("exact")) == pytest.approx(exact / base.energy_pj)
    trunc = library.load("trunc_k4").hw.energy_pj
    assert space.power_rel(space.uniform_config("trunc_k4")) == pytest.approx(trunc / base.energy_pj)
    assert space.uniform_energy_pj["trunc_k4"] == pytest.approx(trunc)


def test_workload_cost_keeps_the_order_and_stays_out_of_the_database():
    import shutil

    import numpy as np

    if shutil.which("yosys") is None or shutil.which("sta") is None:
        pytest.skip("yosys/OpenSTA not installed")
    design = hw.as_design("trunc_k4")
    before = design.hw_json.read_bytes()
    rng = np.random.default_rng(0)
    # a held weight with activations streaming past it, vs the same pairs shuffled
    ordered = np.stack([rng.integers(-20, 20, 256), np.repeat([37, -91, 5, 120], 64)], axis=1)
    shuffled = ordered[rng.permutation(len(ordered))]
    a = hw.workload_cost(design, ordered, stream="test-ordered")
    b = hw.workload_cost(design, shuffled, stream="test-shuffled")
    assert a.operands_sha256 != b.operands_sha256 and a.energy_pj < b.energy_pj  # the held weight switches less
    assert hw.workload_cost(design, ordered, stream="test-ordered") == a  # cached by content hash
    assert design.hw_json.read_bytes() == before

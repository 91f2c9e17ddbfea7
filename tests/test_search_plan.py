"""Dominated candidates left out, a cap on multiplier types, and the cost stated before a search."""

from __future__ import annotations

import numpy as np
import pytest
from _search_doubles import SyntheticTask, make_space

from axhw.errors import ConfigError
from axhw.search import Evaluator, run_on_space
from axhw.search.plan import SearchCost, cap_types, dominated, estimate_cost, prune_candidates

V = np.arange(-128, 128, dtype=np.int64)
EXACT = np.outer(V, V)


def _truncated(bits: int) -> np.ndarray:
    return np.sign(EXACT) * ((np.abs(EXACT) >> bits) << bits)


def test_dominance_needs_no_more_error_everywhere_and_no_more_energy() -> None:
    luts = {"exact": EXACT, "exact_u": EXACT.copy(), "t2": _truncated(2), "t4": _truncated(4), "odd": EXACT + (V[:, None] == 5)}
    energy = {"exact": 1.0, "exact_u": 0.7, "t2": 0.8, "t4": 0.5, "odd": 0.6}
    found = dominated(luts, energy)
    assert found == {"exact": "exact_u", "t2": "exact_u"}  # same table, or more error, for more energy
    # t4 errs more but costs less; `odd` errs on one row only, costs less than exact_u: both kept
    energy["odd"] = 0.9  # now exact_u has no more error (none) for less energy
    assert dominated(luts, energy)["odd"] == "exact_u"
    tie = dominated({"b": EXACT, "a": EXACT.copy()}, {"a": 1.0, "b": 1.0}, {"a": 5.0, "b": 4.0})
    assert tie == {"a": "b"}  # equal energy: the smaller area stays
    assert dominated({"b": EXACT, "a": EXACT.copy()}, {"a": 1.0, "b": 1.0}) == {"b": "a"}  # all equal: first name


def test_prune_candidates_on_the_database_keeps_the_reference() -> None:
    from axhw import library

    names = [n for n in ("exact", "exact_u", "trunc_k4", "drum_k4") if n in library.names()]
    if not {"exact", "exact_u"} <= set(names):
        pytest.skip("the bundled database lacks exact/exact_u")
    kept, dropped = prune_candidates(names, keep=["exact"])
    assert "exact" in kept and "exact" not in dropped
    for name, by in dropped.items():
        a, b = library.load(name), library.load(by)
        assert np.all(np.abs(b.lut.astype(np.int64) - EXACT) <= np.abs(a.lut.astype(np.int64) - EXACT))
        assert b.hw.energy_pj <= a.hw.energy_pj
    kept_all, dropped_all = prune_candidates(names)
    if library.load("exact_u").hw.energy_pj < library.load("exact").hw.energy_pj:
        assert dropped_all["exact"] == "exact_u"


def test_cap_types_keeps_the_heaviest_types_and_moves_ops_to_the_least_sensitive() -> None:
    macs = np.array([100.0, 100.0, 50.0, 10.0, 5.0])
    S = np.array([[0, 1, 2, 3], [0, 1, 2, 3], [0, 5, 1, 0.5], [0, 0.2, 9, 9], [0, 3, 0.1, 9]], dtype=float)
    E = np.tile([1.0, 0.8, 0.6, 0.4], (5, 1))
    x = np.array([1, 1, 2, 3, 0])
    capped = cap_types(x, 2, macs, S, E)
    assert set(capped) == {1, 2}  # 200 MACs on 1, 50 on 2
    assert list(capped) == [1, 1, 2, 1, 2]  # op 3: sensitivity 0.2 on 1; op 4: 0.1 on 2
    assert cap_types(x, 4, macs, S, E) is not x and list(cap_types(x, 4, macs, S, E)) == list(x)


@pytest.mark.parametrize("method", ["mcts", "random", "greedy", "nsga2"])
def test_search_respects_max_types(method: str) -> None:
    space = make_space(8)
    task = SyntheticTask(space.op_names)
    result = run_on_space(space, Evaluator(task, "serial", cache_dir=False), method=method, budget=20, seed=1,
                          max_accuracy_drop=1.5, max_types=2)
    assert all(len(set(e.config.values())) <= 2 for e in result.history)
    assert result.settings["max_types"] == 2 and len(result.history) > 5
    with pytest.raises(ConfigError, match="max_types"):
        run_on_space(space, Evaluator(task, "serial", cache_dir=False), budget=20, max_types=0)


def test_cost_is_stated_before_the_search() -> None:
    space = make_space(8)
    task = SyntheticTask(space.op_names)
    evaluator = Evaluator(task, "serial", cache_dir=False)
    cost = estimate_cost(space, evaluator, 20, {"m9": "m1"})
    assert (cost.profiling, cost.search, cost.evaluations) == (8 * 5, 20, 61)
    assert task.calls == 3 and cost.seconds_per_evaluation >= 0  # the reference, two profile configurations
    text = cost.describe()
    assert "8 ops x 5 candidates besides the reference = 40 profiling evaluations + 20 search evaluations" in text and "m9 (by m1)" in text
    again = estimate_cost(space, evaluator, 20)  # both are cached now: the task itself is timed
    assert task.calls == 4 and again.to_json()["profiling_evaluations"] == 40
    assert SearchCost(25, 27, 650, 40, 0.5, 2, {}).seconds == pytest.approx(691 * 0.5 / 2)

"""Search records, Pareto/hypervolume, design space and power model, surrogate conventions."""

from __future__ import annotations

from types import SimpleNamespace

import json

import numpy as np
import pytest
from _search_doubles import ENERGY, FakeOp, make_ops, make_space
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from axhw.errors import ConfigError, DatabaseError, DataError
from axhw.search import (
    AccuracySurrogate,
    ConfigFeatures,
    Evaluation,
    SearchResult,
    SearchSpace,
    hypervolume,
    make_surrogate,
    pareto_front,
    surrogate_metrics,
)


def _result(accs_powers, int8=0.9, max_drop=1.0, ops=None):
    from axhw.emulator import OpInfo

    ops = ops or [OpInfo("a", "linear", 10), OpInfo("b", "qk", 30)]
    history = [Evaluation(i, "test", {"a": "exact", "b": "exact"}, acc, p) for i, (acc, p) in enumerate(accs_powers)]
    return SearchResult("m", "digits", ops, ["exact", "m1"], "test", 0, max_drop, 0.91, int8, history,
                        sensitivity={"a": {"exact": 0.0, "m1": 0.3}, "b": {"exact": 0.0, "m1": 1.2}},
                        settings={"budget": 3})


def test_result_pareto_best_and_json_roundtrip(tmp_path):
    r = _result([(0.90, 1.0), (0.895, 0.7), (0.88, 0.5), (0.86, 0.6), (0.70, 0.2)])
    assert [e.index for e in r.pareto()] == [4, 2, 1, 0]  # (0.86, 0.6) is dominated by (0.88, 0.5)
    assert r.best().index == 1  # drop 0.5 <= 1.0 at power 0.7; index 2 has drop 2.0
    assert r.best(2.0).index == 2
    assert r.accuracy_drop(r.history[2]) == pytest.approx(2.0)
    path = r.save(tmp_path / "r.json")
    back = SearchResult.load(path)
    assert back.to_json() == r.to_json()
    assert back.ops[0].kind == "linear" and back.history[1].power_saving == pytest.approx(0.3)


def test_result_reference_fp32_and_unmet_constraint():
    r = _result([(0.90, 1.0), (0.85, 0.5)], max_drop=0.5)
    r.settings["reference"] = "fp32"  # fp32 0.91: even all-exact drops 1 point
    assert not r.constraint_met()
    assert r.best().index == 0  # the closest: highest accuracy


def test_result_load_errors(tmp_path):
    r = _result([(0.9, 1.0)])
    path = r.save(tmp_path / "r.json")
    path.write_text(path.read_text()[:200])
    with pytest.raises(DataError, match="not valid JSON"):
        SearchResult.load(path)
    data = r.to_json()
    data["schema"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="schema 99"):
        SearchResult.load(path)
    with pytest.raises(DataError, match="cannot read"):
        SearchResult.load(tmp_path / "missing.json")
    with pytest.raises(DataError, match="no evaluations"):
        _result([]).best()


def test_pareto_front_and_hypervolume():
    pts = [(1.0, 0.0), (0.5, 1.0), (0.6, 1.5), (0.2, 3.0)]
    assert pareto_front(pts) == [3, 1, 0]
    # reference (1, 2): only (0.5, 1.0) counts (1.0 is not < r_p, 3.0 not < r_d): 0.5 * 1.0 / 2
    assert hypervolume(pts, (1.0, 2.0)) == pytest.approx(0.25)
    assert hypervolume([(0.5, 1.0), (0.25, 1.5)], (1.0, 2.0)) == pytest.approx((0.25 * 0.5 + 0.5 * 1.0) / 2)
    assert hypervolume([], (1.0, 2.0)) == 0.0


def test_space_power_model_matches_formula():
    space = make_space(6)
    assert space.candidates[0] == "exact" and space.n_candidates == 6
    rng = np.random.default_rng(0)
    x = rng.integers(0, space.n_candidates, size=space.n_ops)
    macs = np.array([op.macs_per_image for op in space.ops], float)
    e = np.array([ENERGY[space.candidates[j]] for j in x])
    assert space.power_rel(x) == pytest.approx((macs * e).sum() / (macs * ENERGY["exact"]).sum())
    assert space.power_rel(space.exact_config()) == pytest.approx(1.0)
    assert np.allclose(space.power_rel(np.stack([x, x])), space.power_rel(x))
    assert space.saving[:, 1:].sum(axis=0) == pytest.approx(1.0 - np.array([space.power_rel(space.uniform_config(j))
                                                                             for j in range(1, 6)]))
    assert space.area_rel(space.uniform_config("m5")) == pytest.approx(ENERGY["m5"])
    config = space.decode(x)
    assert np.array_equal(space.encode(config), x)
    with pytest.raises(ConfigError, match="not an approximable op"):
        space.encode({"nope": "m1"})
    with pytest.raises(ConfigError, match="not a candidate"):
        space.encode({space.op_names[0]: "zzz"})


def test_space_per_op_energy():
    ops = [FakeOp("a", "linear", 100), FakeOp("b", "linear", 300)]
    energy = {"a": {"exact": 1.0, "m1": 0.5}, "b": {"exact": 2.0, "m1": 0.5}}
    space = SearchSpace(ops, ["m1"], energy)
    assert space.per_op_energy
    assert space.power_rel([1, 0]) == pytest.approx((100 * 0.5 + 300 * 2.0) / (100 * 1.0 + 300 * 2.0))


def test_space_bad_input():
    ops = make_ops(3)
    with pytest.raises(ConfigError, match="candidate set is empty"):
        SearchSpace(ops, [], ENERGY)
    with pytest.raises(DatabaseError, match="axhw characterize --hw m9"):
        SearchSpace(ops, ["m1", "m9"], ENERGY)
    with pytest.raises(ConfigError, match="no approximable ops"):
        SearchSpace([], ["m1"], ENERGY)


def test_from_library_reports_missing_cost(monkeypatch):
    from axhw import library
    from axhw.search import space as space_mod

    class NoCost:
        name = "nocost"
        hw = None
        costs = ()
        metrics = SimpleNamespace(error_rate=0.0, mae=0.0)
        ports = SimpleNamespace(a_width=8, b_width=8)

    with pytest.raises(DatabaseError, match="axhw characterize --hw nocost"):
        space_mod.hardware_cost(NoCost())
    monkeypatch.setattr(library, "load", lambda name: NoCost())
    with pytest.raises(DatabaseError, match="characterize"):
        SearchSpace.from_library(make_ops(2), ["nocost"])
    with pytest.raises(ConfigError, match="empty"):
        SearchSpace.from_library(make_ops(2), [])


@parametrize_with_checks([AccuracySurrogate(random_state=0), AccuracySurrogate(n_estimators=0)])
def test_surrogate_follows_sklearn_conventions(estimator, check):
    check(estimator)


def test_surrogate_pipeline_cross_validates():
    space = make_space(8)
    rng = np.random.default_rng(0)
    S = np.abs(rng.normal(size=(space.n_ops, space.n_candidates))) * np.arange(space.n_candidates)
    X = rng.integers(0, space.n_candidates, size=(60, space.n_ops))
    y = S[np.arange(space.n_ops), X].sum(axis=1) * 1.1 + 0.05 * rng.normal(size=60)
    pipe = make_surrogate(space, S, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.8
    again = clone(pipe).fit(X, y)
    assert np.array_equal(again.predict(X), clone(pipe).fit(X, y).predict(X))  # same seed, same model
    feats = ConfigFeatures(sensitivity=S, mac_share=space.mac_share, error_features=space.error_features,
                           kinds=[op.kind for op in space.ops]).fit(X)
    assert feats.transform(X).shape[0] == 60
    with pytest.raises(ValueError, match="candidate indices"):
        feats.transform(np.full((1, space.n_ops), 99))


def test_surrogate_metrics():
    m = surrogate_metrics([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 4.0])
    assert m["kendall_tau"] == pytest.approx(1.0) and m["rmse"] == pytest.approx(0.5)
    assert surrogate_metrics([1.0], [2.0])["rmse"] is None

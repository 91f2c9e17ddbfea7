"""Search methods on a synthetic evaluator: budget, determinism, bad input, checkpoint/resume, executors."""

from __future__ import annotations

import numpy as np
import pytest
from _search_doubles import SyntheticTask, make_problem, make_space

from axhw.errors import ConfigError
from axhw.search import (
    METHODS,
    ConstraintWarning,
    Evaluator,
    SearchProblem,
    hypervolume_curve,
    profile_sensitivity,
    rollout_policy,
    run_on_space,
)

N_OPS = 8
BUDGET = 10


def _history(result):
    return [(e.method, tuple(sorted(e.config.items())), e.accuracy) for e in result.history]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_respects_budget_and_is_deterministic(method):
    space, task, evaluator = make_problem(N_OPS)
    a = run_on_space(space, evaluator, method=method, budget=BUDGET, seed=3)
    n_new = len(a.history) - 1
    limit = space.n_candidates - 1 if method == "uniform" else BUDGET
    assert 0 < n_new <= limit
    assert a.history[0].method == "reference" and a.history[0].power_rel == pytest.approx(1.0)
    assert {e.method for e in a.history[1:]} == {method}
    assert len({tuple(sorted(e.config.items())) for e in a.history}) == len(a.history)  # no repeats
    assert [e.index for e in a.history] == list(range(len(a.history)))
    # sensitivity: one true evaluation per (op, approximate candidate), plus the reference; a search
    # evaluation equal to a single-op profile comes from the evaluator's cache
    assert task.calls <= 1 + space.n_ops * (space.n_candidates - 1) + n_new
    assert evaluator.n_computed + evaluator.n_cached == 1 + space.n_ops * (space.n_candidates - 1) + n_new
    space2, _, evaluator2 = make_problem(N_OPS)
    b = run_on_space(space2, evaluator2, method=method, budget=BUDGET, seed=3)
    assert _history(a) == _history(b)
    assert a.best().power_rel <= 1.0
    curve = hypervolume_curve(a)
    assert np.all(np.diff(curve) >= -1e-12)


def test_mcts_records_rewards_predictions_and_policy():
    space, task, evaluator = make_problem(N_OPS)
    r = run_on_space(space, evaluator, method="mcts", budget=BUDGET, seed=0)
    assert len(r.mcts_rewards) > 0
    assert all(e.predicted_accuracy is not None for e in r.history[1:])
    assert r.surrogate_metrics["protocol"].startswith("prospective")
    assert r.surrogate_metrics["n"] == BUDGET and r.surrogate_metrics["rmse"] is not None
    assert r.settings["method_params"]["policy"] == "hardware"
    # the hardware policy prefers cheap designs where the op is insensitive
    space2, _, ev2 = make_problem(N_OPS)
    int8 = ev2.evaluate([space2.decode(space2.exact_config())])[0]
    S = profile_sensitivity(space2, ev2, int8)
    problem = SearchProblem(space2, ev2, reference_accuracy=int8, int8_accuracy=int8, max_accuracy_drop=1.0,
                            sensitivity=S, budget=BUDGET)
    p = rollout_policy(problem, "hardware", target=1.0)
    assert np.allclose(p.sum(axis=1), 1.0)
    expected = float((p * np.clip(S, 0, None)).sum())
    assert expected == pytest.approx(1.0, rel=1e-3) or expected < 1.0
    assert np.allclose(rollout_policy(problem, "uniform"), 1.0 / space2.n_candidates)


def test_bad_input():
    space, task, evaluator = make_problem(N_OPS)
    with pytest.raises(ConfigError, match="smaller than the number of approximable ops"):
        run_on_space(space, evaluator, budget=N_OPS - 1)
    with pytest.raises(ConfigError, match="unknown search method"):
        run_on_space(space, evaluator, method="annealing", budget=BUDGET)
    with pytest.raises(ConfigError, match="bad settings"):
        run_on_space(space, evaluator, method="mcts", budget=BUDGET, method_params={"gamma": 1})
    with pytest.raises(ConfigError, match="candidate set is empty"):
        make_space(N_OPS, candidates=())


def test_unreachable_constraint_says_so_and_returns_closest():
    space, task, evaluator = make_problem(N_OPS)
    # drops measured from fp32, which is 1 point above int8: nothing can lose <= 0.5 points
    with pytest.warns(ConstraintWarning, match="no evaluated configuration meets"):
        r = run_on_space(space, evaluator, method="greedy", budget=BUDGET, max_accuracy_drop=0.5, reference="fp32")
    assert not r.constraint_met()
    assert r.best().accuracy == max(e.accuracy for e in r.history)


def test_checkpoint_resume_does_not_repeat_true_evaluations(tmp_path):
    space, task, evaluator = make_problem(N_OPS)
    full = run_on_space(space, evaluator, method="mcts", budget=BUDGET, seed=1)
    n_setup = 1 + space.n_ops * (space.n_candidates - 1)

    ckpt = tmp_path / "search.ckpt.json"
    space1 = make_space(N_OPS)
    crashing = SyntheticTask(space1.op_names, fail_after=n_setup + 5)  # dies on the 5th search evaluation
    with pytest.raises(KeyboardInterrupt):
        run_on_space(space1, Evaluator(crashing, "serial", cache_dir=False), method="mcts", budget=BUDGET, seed=1,
                     checkpoint=ckpt)
    assert ckpt.is_file()

    space2 = make_space(N_OPS)
    fresh = SyntheticTask(space2.op_names)
    resumed = run_on_space(space2, Evaluator(fresh, "serial", cache_dir=False), method="mcts", budget=BUDGET,
                           seed=1, checkpoint=ckpt)
    assert fresh.calls == BUDGET - 4  # 4 search evaluations (and the whole set-up) came from the checkpoint
    assert resumed.settings["replayed_from_checkpoint"] == 4
    assert _history(resumed) == _history(full)

    # a finished search resumes for free, and a larger budget extends it
    again = SyntheticTask(space2.op_names)
    more = run_on_space(make_space(N_OPS), Evaluator(again, "serial", cache_dir=False), method="mcts",
                        budget=BUDGET + 2, seed=1, checkpoint=ckpt)
    assert again.calls == 2 and _history(more)[: BUDGET + 1] == _history(full)

    with pytest.raises(ConfigError, match="other settings"):
        run_on_space(make_space(N_OPS), Evaluator(SyntheticTask(space2.op_names), "serial", cache_dir=False),
                     method="mcts", budget=BUDGET, seed=2, checkpoint=ckpt)


def test_evaluator_disk_cache(tmp_path):
    space, task, _ = make_problem(N_OPS)
    configs = [space.decode(space.uniform_config(j)) for j in range(space.n_candidates)]
    first = Evaluator(task, "serial", cache_dir=tmp_path, lut_sha256={"m1": "aa"})
    values = first.evaluate(configs + configs[:2])
    assert task.calls == len(configs) and first.n_computed == len(configs)
    second = Evaluator(task, "serial", cache_dir=tmp_path, lut_sha256={"m1": "aa"})
    assert second.evaluate(configs) == values[: len(configs)] and task.calls == len(configs)
    changed = Evaluator(task, "serial", cache_dir=tmp_path, lut_sha256={"m1": "bb"})  # m1 re-characterized
    changed.evaluate(configs)
    assert changed.n_computed == sum("m1" in c.values() for c in configs)


def test_process_pool_executor_gives_the_serial_answers():
    space, task, serial = make_problem(N_OPS)
    configs = [space.decode(np.random.default_rng(k).integers(0, space.n_candidates, N_OPS)) for k in range(6)]
    with Evaluator(task, "process", n_workers=2, cache_dir=False) as pooled:
        assert pooled.evaluate(configs) == serial.evaluate(configs)


def test_ray_executor_local_instance():
    ray = pytest.importorskip("ray")
    import _search_doubles
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(_search_doubles)  # workers need not import the tests folder
    space, task, serial = make_problem(N_OPS)
    configs = [space.decode(space.uniform_config(j)) for j in range(space.n_candidates)]
    try:
        with Evaluator(task, "ray", n_workers=1, cache_dir=False) as remote:
            assert remote.evaluate(configs) == serial.evaluate(configs)
    finally:
        cloudpickle.unregister_pickle_by_value(_search_doubles)
        if ray.is_initialized():
            ray.shutdown()

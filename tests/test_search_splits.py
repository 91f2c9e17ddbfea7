"""Split discipline: no search or retraining choice reads the test split; bounds, intervals and --device flow."""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pytest
import torch

from _search_doubles import make_space

import axhw.data
from axhw.search import Evaluator, ResolutionWarning, run_on_space


class ReadTestSplit(AssertionError):
    """Raised by the guard when something reads the test split while it is locked."""


@pytest.fixture()
def test_split_guard(monkeypatch):
    """Wraps every way a split is loaded; reading ``test`` while ``guard["locked"]`` raises.

    Yields the guard dict: ``reads`` lists every split read, in order.
    """
    guard = {"locked": True, "reads": []}
    real_get_dataset = axhw.data.get_dataset
    real_digits_init = axhw.data.DigitsDataset.__init__

    def check(split: str) -> None:
        guard["reads"].append(split)
        if split == "test" and guard["locked"]:
            raise ReadTestSplit("the test split was read while choices were still being made")

    def get_dataset(spec="digits", split="test", *args, **kwargs):
        check(split)
        return real_get_dataset(spec, split, *args, **kwargs)

    def digits_init(self, split="test", *args, **kwargs):
        check(split)
        real_digits_init(self, split, *args, **kwargs)

    monkeypatch.setattr(axhw.data, "get_dataset", get_dataset)
    monkeypatch.setattr(axhw.data.DigitsDataset, "__init__", digits_init)
    return guard


def _candidate() -> str:
    from axhw import library
    from axhw.errors import DatabaseError

    names = []
    for name in library.names():
        try:
            m = library.load(name)
        except DatabaseError:
            continue
        if name != "exact" and m.hw is not None and m.metrics.mae > 0:
            names.append((m.metrics.mae, name))
    if not names:
        pytest.skip("no approximate multiplier with a hardware-cost record in the database")
    return min(names)[1]


@pytest.mark.slow  # a real search on the default model (about 30 s on two busy cores)
def test_search_reads_test_only_after_every_choice(test_split_guard, monkeypatch):
    import axhw.search.workflow as workflow
    from axhw.models import default_model

    real = workflow.run_on_space

    def run_then_unlock(*args, **kwargs):
        result = real(*args, **kwargs)  # the test split is locked for the whole search
        test_split_guard["locked"] = False
        return result

    monkeypatch.setattr(workflow, "run_on_space", run_then_unlock)
    model = default_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = workflow.run(model, "digits", [_candidate()], budget=25, eval_size=48, calib_size=32, executor="serial",
                          cache_dir=False, progress=False, device="cpu")
    assert "test" in test_split_guard["reads"] and "search" in test_split_guard["reads"]
    assert test_split_guard["reads"].index("test") > test_split_guard["reads"].index("search")
    # the caller's model is neither moved nor changed, and the device was recorded
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).device.type == "cpu" and not model.training
    assert result.settings["device"] == "cpu" and result.eval_split == "search"
    # every history accuracy is on the 48 search images; the reported ones are re-measured on all test images
    assert {e.n_images for e in result.history} == {48}
    held = result.holdout_evaluation(result.best())
    assert held is not None and held["split"] == "test" and held["n_images"] == len(axhw.data.get_dataset("digits", "test"))
    assert held["interval"][0] <= held["accuracy"] <= held["interval"][1]
    assert held["drop"].lower <= held["drop"].drop <= held["drop"].upper
    assert set(result.holdout["evaluations"]) >= {str(e.index) for e in result.pareto() if e.index}


def test_search_refuses_to_select_on_test_or_train():
    from axhw.errors import ConfigError
    from axhw.search import run

    for split in ("test", "train", "calib"):
        with pytest.raises(ConfigError, match="cannot be searched on"):
            run("default", "digits", ["exact"], eval_split=split, progress=False)
    with pytest.raises(ConfigError, match="holdout_split"):
        run("default", "digits", ["exact"], eval_split="val", holdout_split="val", progress=False)
    with pytest.raises(ConfigError, match="run: model must be a torch nn.Module, got int"):
        run(3, "digits", ["exact"], progress=False)


def test_retraining_flow_never_reads_test(test_split_guard, tmp_path):
    from axhw.emulator import retrain_config

    report = retrain_config(_candidate(), grads=("ste",), steps=2, batch_size=32, eval_size=48, calib_batches=1,
                            report_split="search", out_dir=tmp_path, progress=False, device="cpu")
    assert "test" not in test_split_guard["reads"]
    assert {"train", "val", "search", "calib"} <= set(test_split_guard["reads"])
    assert report.split == "search" and report.n_images == 48
    lo, hi = report.interval("ste")
    assert lo <= report.retrained_accuracy["ste"] <= hi
    drop = report.drop("approx")
    assert drop.drop == pytest.approx(100 * (report.int8_accuracy - report.approx_accuracy))
    assert "top-1 on search" in report.table()


def test_device_flows_through_both_commands(monkeypatch, tmp_path):
    import axhw.emulator.retraining
    import axhw.search
    from axhw.cli import main

    seen = {}

    class Stop(Exception):
        pass

    def capture(name):
        def fake(*args, **kwargs):
            seen[name] = kwargs
            raise Stop

        return fake

    monkeypatch.setattr(axhw.search, "run", capture("search"))
    monkeypatch.setattr(axhw.emulator.retraining, "retrain_config", capture("retrain"))
    with pytest.raises(Stop):
        main(["search", "--device", "cuda", "--bound", "upper", "--quiet", "-o", str(tmp_path / "r.json")])
    assert seen["search"]["device"] == "cuda" and seen["search"]["bound"] == "upper"
    assert seen["search"]["eval_split"] == "search" and seen["search"]["holdout_split"] == "test"
    with pytest.raises(Stop):
        main(["retrain", "--multiplier", "exact", "--device", "cuda", "--quiet", "--out", str(tmp_path)])
    assert seen["retrain"]["device"] == "cuda" and seen["retrain"]["report_split"] == "test"


# --------------------------------------------------------------- bounds on a task with per-image outcomes
class OutcomeTask:
    """Each op's approximation flips a fixed, seeded set of images from right to wrong."""

    def __init__(self, op_names: list[str], n_images: int = 200, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.op_names = list(op_names)
        self.base = rng.random(n_images) < 0.9
        self.flips = {(op, j): rng.random(n_images) < 0.004 * j for op in op_names for j in range(1, 6)}
        self.fingerprint = f"outcome-task:{seed}:{n_images}"

    def outcomes(self, config: Mapping[str, str]) -> np.ndarray:
        correct = self.base.copy()
        for op, m in config.items():
            if m != "exact":
                correct &= ~self.flips[(op, int(m[1:]))]
        return correct

    def __call__(self, config: Mapping[str, str]) -> float:
        return float(self.outcomes(config).mean())


def test_upper_bound_is_conservative_and_point_warns_under_resolution():
    space = make_space(8)
    task = OutcomeTask(space.op_names)
    evaluator = Evaluator(task, "serial", cache_dir=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        point = run_on_space(space, evaluator, method="random", budget=40, seed=0, max_accuracy_drop=3.0)
    assert any(issubclass(w.category, ResolutionWarning) for w in caught)  # 3 points is under 200 images' error
    upper = run_on_space(space, evaluator, method="random", budget=40, seed=0, max_accuracy_drop=3.0, bound="upper")
    assert upper.bound == "upper" and point.bound == "point"
    assert [e.config for e in upper.history] == [e.config for e in point.history]  # same search, another check
    assert upper.feasible()
    for e in upper.feasible():
        assert upper.drop_estimate(e).upper <= 3.0 + 1e-9
    assert len(upper.feasible()) < len(point.feasible())
    assert upper.best().power_rel >= point.best().power_rel
    est = point.drop_estimate(point.best())
    assert est.drop == pytest.approx(point.accuracy_drop(point.best()))
    lo, hi = point.accuracy_interval(point.history[0])
    assert lo < point.int8_accuracy < hi


def test_bound_needs_outcomes():
    from _search_doubles import make_problem

    from axhw.errors import ConfigError

    space, _, evaluator = make_problem(6)
    with pytest.raises(ConfigError, match="per-image outcomes"):
        run_on_space(space, evaluator, method="random", budget=10, bound="upper")
    with pytest.raises(ConfigError, match="bound must be"):
        run_on_space(space, evaluator, method="random", budget=10, bound="median")

"""The search primitive :func:`run_on_space` (any space, any evaluator); the end-to-end
run from a model and a data spec is :func:`axhw.search.workflow.run`.

It profiles the sensitivity table, runs one method from :data:`METHODS` on a
:class:`~axhw.search.problem.SearchProblem` with a budget of true evaluations, and
return a :class:`~axhw.search.result.SearchResult`.  With ``checkpoint=PATH`` every
true evaluation is saved as it is made, and running the same call again resumes
where an interrupted run stopped without repeating any of them (a larger budget
extends a finished search).
"""

from __future__ import annotations

import inspect
import math
import os
import platform
import warnings
from typing import Any, Callable, Mapping

import numpy as np

from axhw.errors import ConfigError
from axhw.io import sha256_bytes
from axhw.stats import BOUNDS, resolution_points, wilson_interval
from axhw.search.baselines import NSGA2, GreedySensitivity, Knapsack, RandomSearch, UniformSweep
from axhw.search.evaluate import Evaluator
from axhw.search.mcts import MCTS
from axhw.search.plan import check_max_types
from axhw.search.problem import SearchProblem
from axhw.search.result import SearchResult
from axhw.search.sensitivity import profile_sensitivity, sensitivity_samples, sensitivity_to_dict
from axhw.search.space import SearchSpace
from axhw.search.surrogate import make_surrogate, surrogate_metrics

__all__ = ["run_on_space", "METHODS", "ConstraintWarning", "ResolutionWarning", "cross_validated_surrogate_metrics"]


class ConstraintWarning(UserWarning):
    """No evaluated configuration meets the accuracy constraint (the closest is returned)."""


class ResolutionWarning(UserWarning):
    """The accuracy limit is finer than the sampling error of the images the search selects on."""


def _mcts(**kw: Any) -> MCTS:
    return MCTS(policy="hardware", **kw)


def _mcts_uniform(**kw: Any) -> MCTS:
    return MCTS(policy="uniform", **kw)


#: Method name -> factory taking ``random_state=`` and the method's keyword settings.
METHODS: dict[str, Callable[..., Any]] = {
    "mcts": _mcts,
    "mcts_uniform": _mcts_uniform,
    "random": RandomSearch,
    "greedy": GreedySensitivity,
    "knapsack": Knapsack,
    "nsga2": NSGA2,
    "uniform": UniformSweep,
}


def _params(algo: Any) -> dict[str, Any]:
    names = [p for p in inspect.signature(type(algo).__init__).parameters if p != "self"]
    out = {}
    for name in names:
        value = getattr(algo, name, None)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("axhw", "torch", "timm", "numpy", "scipy", "scikit-learn", "pymoo", "ray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def cross_validated_surrogate_metrics(space: SearchSpace, sensitivity: np.ndarray, X: np.ndarray, drops: np.ndarray,
                                      *, n_splits: int = 5, history_weight: int = 3, random_state: int = 0,
                                      offset: float = 0.0) -> dict[str, Any]:
    """RMSE and Kendall τ of the surrogate on held-out folds of true evaluations.

    Each fold's configurations are predicted by a surrogate fitted on the sensitivity
    table plus the other folds (``drops`` are in points below int8; ``offset`` shifts
    both predicted and true values to the reporting reference).
    """
    from sklearn.model_selection import KFold

    n = len(X)
    if n < max(3, n_splits):
        return surrogate_metrics([], [], protocol=f"{n_splits}-fold cross-validation")
    X_s, y_s = sensitivity_samples(space, sensitivity)
    predicted = np.zeros(n)
    for train, test in KFold(n_splits, shuffle=True, random_state=random_state).split(X):
        model = make_surrogate(space, sensitivity, random_state=random_state)
        model.fit(np.vstack([X_s] + [X[train]] * history_weight),
                  np.concatenate([y_s] + [drops[train]] * history_weight))
        predicted[test] = model.predict(X[test])
    return surrogate_metrics(predicted + offset, drops + offset, protocol=f"{n_splits}-fold cross-validation")


def _check_settings(space: SearchSpace, evaluator: Evaluator, method: str, budget: Any, reference: str,
                    max_accuracy_drop: float, bound: str) -> None:
    """Refuse settings a search cannot run with (one clear line each)."""
    if method not in METHODS:
        raise ConfigError(f"unknown search method {method!r}; choose one of {', '.join(METHODS)}")
    if reference not in ("int8", "fp32"):
        raise ConfigError(f"reference must be 'int8' or 'fp32', got {reference!r}")
    if bound not in BOUNDS:
        raise ConfigError(f"bound must be one of {', '.join(BOUNDS)}, got {bound!r}")
    if bound != "point" and (reference != "int8" or not callable(getattr(evaluator.task, "outcomes", None))):
        raise ConfigError(f"bound {bound!r} checks the paired interval of the drop below the int8 model, which needs "
                          "reference='int8' and an evaluation task that keeps per-image outcomes (ModelTask does)")
    if not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ConfigError(f"budget must be a positive number of true evaluations, got {budget!r}")
    if budget < space.n_ops:
        raise ConfigError(f"budget {budget} is smaller than the number of approximable ops ({space.n_ops}): "
                          f"the tree assigns ops one by one and greedy/knapsack refine op by op, so give at least "
                          f"--budget {space.n_ops} true evaluations (the sensitivity profile is not counted)")
    if not math.isfinite(float(max_accuracy_drop)):
        raise ConfigError(f"max_accuracy_drop must be a finite number of points, got {max_accuracy_drop!r}")


def _references(space: SearchSpace, evaluator: Evaluator, saved: Mapping[str, Any], fingerprint: str,
                progress: bool) -> tuple[float, float, np.ndarray]:
    """``(int8, fp32, sensitivity table)``: from the checkpoint of the same search, else measured."""
    if saved and saved.get("fingerprint") == fingerprint and "int8_accuracy" in saved:
        return (float(saved["int8_accuracy"]), float(saved["fp32_accuracy"]),
                np.asarray(saved["sensitivity"], dtype=float))
    int8 = evaluator.evaluate([space.decode(space.exact_config())])[0]
    fp32_fn = getattr(evaluator.task, "float_accuracy", None)
    fp32 = float(fp32_fn()) if callable(fp32_fn) else int8
    return int8, fp32, profile_sensitivity(space, evaluator, int8, progress=progress)


def _run_surrogate_metrics(algo: Any, problem: SearchProblem, space: SearchSpace, S: np.ndarray, seed: int,
                           offset: float) -> dict[str, Any]:
    """Prospective surrogate metrics when the method predicted before evaluating, else cross-validated."""
    predictions = getattr(algo, "predictions_", None)
    if predictions:
        pred, true = zip(*predictions)
        return surrogate_metrics(pred, true, protocol="prospective: predicted before each true evaluation")
    X, drops = problem.training_data()
    return cross_validated_surrogate_metrics(space, S, X[1:], drops[1:] - offset, random_state=int(seed),
                                             offset=offset)


def _run_settings(space: SearchSpace, evaluator: Evaluator, problem: SearchProblem, budget: int, reference: str,
                  bound: str, params: Mapping[str, Any], checkpoint: Any) -> dict[str, Any]:
    return {
        "budget": int(budget),
        "reference": reference,
        "bound": bound,
        "method_params": dict(params),
        "liberty": space.liberty,
        "power_model": ("per-op workload streams (weight-stationary)" if space.per_op_energy
                        else "uniform operands"),
        "power_reference": space.reference,
        "uniform_energy_pj": getattr(space, "uniform_energy_pj", None),
        "executor": getattr(evaluator.executor, "name", type(evaluator.executor).__name__),
        "n_workers": evaluator.n_workers,
        "true_evaluations": problem.n_spent,
        "sensitivity_evaluations": space.n_ops * (space.n_candidates - 1),
        "replayed_from_checkpoint": problem.n_replayed,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "energy_pj": space.energy_table(),
        "lut_sha256": dict(space.lut_sha256),
        "multipliers": {m: {"rtl_sha256": space.rtl_sha256.get(m, ""), "lut_sha256": space.lut_sha256.get(m, "")}
                        for m in space.candidates},
    }


def _warn_resolution(result: SearchResult) -> None:
    """Warn when the limit is finer than the sampling error of the split the search selects on."""
    n = result.history[0].n_images or result.settings.get("eval_images")
    if not n or result.bound != "point":
        return
    lo, hi = wilson_interval(int(round(result.int8_accuracy * int(n))), int(n))
    half = 100.0 * (hi - lo) / 2.0
    if result.max_accuracy_drop < half:
        warnings.warn(
            f"the limit of {result.max_accuracy_drop:g} points is under the resolution of the "
            f"{result.eval_split!r} split ({int(n)} images: one image is {resolution_points(int(n)):.2f} points, the "
            f"95 % interval of the int8 accuracy is ±{half:.2f} points); a configuration that meets it may not on "
            "other images: use more images, or bound='upper' to check the paired interval's upper end",
            ResolutionWarning, stacklevel=3)


# Long only by its docstring (one Args entry per option); the body is 40 lines.
def run_on_space(
    space: SearchSpace,
    evaluator: Evaluator,
    *,
    method: str = "mcts",
    budget: int = 40,
    seed: int = 0,
    max_accuracy_drop: float = 1.0,
    reference: str = "int8",
    bound: str = "point",
    checkpoint: str | os.PathLike | None = None,
    progress: bool = False,
    method_params: Mapping[str, Any] | None = None,
    model_name: str = "model",
    dataset: str = "",
    settings: Mapping[str, Any] | None = None,
    max_types: int | None = None,
) -> SearchResult:
    """Search ``space`` with true evaluations from ``evaluator``.

    Args:
        space: the design space (ops, candidates, energies).
        evaluator: true evaluator of configurations (on the ``search`` split: the
            images every choice is made on).
        method: a name from :data:`METHODS`.
        budget: true evaluations of full configurations the method may make (the
            sensitivity profile and the all-exact reference are not counted).
        seed: random seed; the same seed and settings give the same history.
        max_accuracy_drop: constraint, accuracy points below the reference.
        reference: ``"int8"`` (the all-exact int8 model) or ``"fp32"`` (the float model).
        bound: what the constraint is checked against when choosing the result:
            ``"point"`` (the measured drop; a :class:`ResolutionWarning` when the limit
            is under the split's sampling error), ``"upper"`` (the upper end of the
            drop's paired 95 % interval: conservative) or ``"lower"`` (its lower end).
        checkpoint: JSON file to save progress to and resume from.
        progress: tqdm bars for the sensitivity profile and the true evaluations.
        method_params: keyword settings of the method (e.g. ``{"alpha": 2.0}``).
        model_name, dataset: recorded in the result.
        settings: extra settings recorded in the result (``eval_split``, ...).
        max_types: at most this many distinct multiplier types per configuration, the
            reference included (``None``: no cap; see :func:`axhw.search.plan.cap_types`).

    Raises:
        ConfigError: unknown method, reference or bound, a budget below ``n_ops``, a
            non-finite constraint, bad method settings, or a checkpoint of another search.
    """
    _check_settings(space, evaluator, method, budget, reference, max_accuracy_drop, bound)
    try:
        algo = METHODS[method](random_state=seed, **dict(method_params or {}))
    except TypeError as exc:
        raise ConfigError(f"bad settings for method {method!r}: {exc}") from exc
    params = _params(algo)
    fingerprint = sha256_bytes(repr((space.fingerprint(), evaluator.task.fingerprint, method, int(seed),
                                     round(float(max_accuracy_drop), 9), reference,
                                     sorted((k, repr(v)) for k, v in params.items()))
                               + ((("max_types", check_max_types(max_types)),) if max_types is not None else ())).encode())
    int8, fp32, S = _references(space, evaluator, _read_checkpoint_extra(checkpoint), fingerprint, progress)
    ref_acc = fp32 if reference == "fp32" else int8
    problem = SearchProblem(
        space, evaluator, reference_accuracy=ref_acc, int8_accuracy=int8, max_accuracy_drop=max_accuracy_drop,
        sensitivity=S, budget=int(budget), checkpoint=checkpoint, fingerprint=fingerprint, progress=progress,
        checkpoint_extra={"int8_accuracy": int8, "fp32_accuracy": fp32, "sensitivity": S.tolist()},
        max_types=max_types,
    )
    try:
        problem.save_checkpoint()
        algo.run(problem)
    finally:
        problem.close()
    result = SearchResult(
        model_name=model_name, dataset=dataset, ops=list(space.ops), candidates=list(space.candidates),
        method=method, seed=int(seed), max_accuracy_drop=float(max_accuracy_drop), fp32_accuracy=float(fp32),
        int8_accuracy=float(int8), history=list(problem.history), sensitivity=sensitivity_to_dict(space, S),
        surrogate_metrics=_run_surrogate_metrics(algo, problem, space, S, seed, 100.0 * (ref_acc - int8)),
        mcts_rewards=[float(r) for r in getattr(algo, "rewards_", [])],
        settings={**_run_settings(space, evaluator, problem, budget, reference, bound, params, checkpoint),
                  "max_types": max_types, **dict(settings or {})},
        versions=_versions(),
    )
    _warn_resolution(result)
    if not result.constraint_met():
        closest = result.best()
        warnings.warn(
            f"no evaluated configuration meets the constraint (accuracy drop <= {max_accuracy_drop:g} points below "
            f"{reference}, checked at bound {bound!r}); the closest has a drop of {result.accuracy_drop(closest):.2f} "
            f"points at {100 * closest.power_rel:.1f}% power; result.best() returns it",
            ConstraintWarning, stacklevel=2)
    return result


def _read_checkpoint_extra(checkpoint: str | os.PathLike | None) -> dict[str, Any]:
    import json
    from pathlib import Path

    if checkpoint is None or not Path(checkpoint).is_file():
        return {}
    try:
        data = json.loads(Path(checkpoint).read_text())
    except (OSError, ValueError):
        return {}  # SearchProblem reports the damaged file
    return data if isinstance(data, dict) else {}

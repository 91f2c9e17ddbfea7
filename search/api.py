"""One-call search: :func:`run` (a model and a data spec) and :func:`run_on_space` (any evaluator).

Both profile the sensitivity table, run one method from :data:`METHODS` on a
:class:`~axhw.search.problem.SearchProblem` with a budget of true evaluations, and
return a :class:`~axhw.search.result.SearchResult`.  With ``checkpoint=PATH`` every
true evaluation is saved as it is made, and running the same call again resumes
where an interrupted run stopped without repeating any of them (a larger budget
extends a finished search).
"""

from __future__ import annotations

import fnmatch
import inspect
import math
import os
import platform
import sys
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DatabaseError
from ..io import sha256_bytes
from .baselines import NSGA2, GreedySensitivity, Knapsack, RandomSearch, UniformSweep
from .evaluate import Evaluator, ModelTask
from .mcts import MCTS
from .plan import check_max_types, estimate_cost, prune_candidates
from .problem import SearchProblem
from .result import SearchResult
from .sensitivity import profile_sensitivity, sensitivity_samples, sensitivity_to_dict
from .space import EXACT, SearchSpace, hardware_cost
from .surrogate import make_surrogate, surrogate_metrics

__all__ = ["run", "run_on_space", "METHODS", "ConstraintWarning", "cross_validated_surrogate_metrics"]


class ConstraintWarning(UserWarning):
    """No evaluated configuration meets the accuracy constraint (the closest is returned)."""


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


def run_on_space(
    space: SearchSpace,
    evaluator: Evaluator,
    *,
    method: str = "mcts",
    budget: int = 40,
    seed: int = 0,
    max_accuracy_drop: float = 1.0,
    reference: str = "int8",
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
        evaluator: true evaluator of configurations.
        method: a name from :data:`METHODS`.
        budget: true evaluations of full configurations the method may make (the
            sensitivity profile and the all-exact reference are not counted).
        seed: random seed; the same seed and settings give the same history.
        max_accuracy_drop: constraint, accuracy points below the reference.
        reference: ``"int8"`` (the all-exact int8 model) or ``"fp32"`` (the float model).
        checkpoint: JSON file to save progress to and resume from.
        progress: tqdm bars for the sensitivity profile and the true evaluations.
        method_params: keyword settings of the method (e.g. ``{"alpha": 2.0}``).
        model_name, dataset: recorded in the result.
        settings: extra settings recorded in the result.
        max_types: at most this many distinct multiplier types per configuration, the
            reference included (``None``: no cap; see :func:`axhw.search.plan.cap_types`).

    Raises:
        ConfigError: unknown method or reference, a budget below ``n_ops``, a
            non-finite constraint, bad method settings, or a checkpoint of another search.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown search method {method!r}; choose one of {', '.join(METHODS)}")
    if reference not in ("int8", "fp32"):
        raise ConfigError(f"reference must be 'int8' or 'fp32', got {reference!r}")
    if not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ConfigError(f"budget must be a positive number of true evaluations, got {budget!r}")
    if budget < space.n_ops:
        raise ConfigError(f"budget {budget} is smaller than the number of approximable ops ({space.n_ops}): "
                          f"the tree assigns ops one by one and greedy/knapsack refine op by op, so give at least "
                          f"--budget {space.n_ops} true evaluations (the sensitivity profile is not counted)")
    if not math.isfinite(float(max_accuracy_drop)):
        raise ConfigError(f"max_accuracy_drop must be a finite number of points, got {max_accuracy_drop!r}")
    try:
        algo = METHODS[method](random_state=seed, **dict(method_params or {}))
    except TypeError as exc:
        raise ConfigError(f"bad settings for method {method!r}: {exc}") from exc
    params = _params(algo)
    fingerprint = sha256_bytes(repr((space.fingerprint(), evaluator.task.fingerprint, method, int(seed),
                                     round(float(max_accuracy_drop), 9), reference,
                                     sorted((k, repr(v)) for k, v in params.items()))
                               + ((("max_types", check_max_types(max_types)),) if max_types is not None else ())).encode())

    saved = _read_checkpoint_extra(checkpoint)
    if saved and saved.get("fingerprint") == fingerprint and "int8_accuracy" in saved:
        int8 = float(saved["int8_accuracy"])
        fp32 = float(saved["fp32_accuracy"])
        S = np.asarray(saved["sensitivity"], dtype=float)
    else:
        int8 = evaluator.evaluate([space.decode(space.exact_config())])[0]
        fp32_fn = getattr(evaluator.task, "float_accuracy", None)
        fp32 = float(fp32_fn()) if callable(fp32_fn) else int8
        S = profile_sensitivity(space, evaluator, int8, progress=progress)
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

    offset = 100.0 * (ref_acc - int8)
    predictions = getattr(algo, "predictions_", None)
    if predictions:
        pred, true = zip(*predictions)
        metrics = surrogate_metrics(pred, true, protocol="prospective: predicted before each true evaluation")
    else:
        X, drops = problem.training_data()
        metrics = cross_validated_surrogate_metrics(space, S, X[1:], drops[1:] - offset, random_state=int(seed),
                                                    offset=offset)
    result = SearchResult(
        model_name=model_name,
        dataset=dataset,
        ops=list(space.ops),
        candidates=list(space.candidates),
        method=method,
        seed=int(seed),
        max_accuracy_drop=float(max_accuracy_drop),
        fp32_accuracy=float(fp32),
        int8_accuracy=float(int8),
        history=list(problem.history),
        sensitivity=sensitivity_to_dict(space, S),
        surrogate_metrics=metrics,
        mcts_rewards=[float(r) for r in getattr(algo, "rewards_", [])],
        settings={
            "budget": int(budget),
            "reference": reference,
            "method_params": params,
            "liberty": space.liberty,
            "power_model": ("per-op workload streams (weight-stationary)" if space.per_op_energy
                            else "uniform operands"),
            "power_reference": space.reference,
            "uniform_energy_pj": getattr(space, "uniform_energy_pj", None),
            "executor": getattr(evaluator.executor, "name", type(evaluator.executor).__name__),
            "n_workers": evaluator.n_workers,
            "true_evaluations": problem.n_spent,
            "sensitivity_evaluations": space.n_ops * (space.n_candidates - 1),
            "max_types": max_types,
            "replayed_from_checkpoint": problem.n_replayed,
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "energy_pj": space.energy_table(),
            "lut_sha256": dict(space.lut_sha256),
            "multipliers": {m: {"rtl_sha256": space.rtl_sha256.get(m, ""), "lut_sha256": space.lut_sha256.get(m, "")}
                            for m in space.candidates},
            **dict(settings or {}),
        },
        versions=_versions(),
    )
    if not result.constraint_met():
        closest = result.best()
        warnings.warn(
            f"no evaluated configuration meets the constraint (accuracy drop <= {max_accuracy_drop:g} points below "
            f"{reference}); the closest has a drop of {result.accuracy_drop(closest):.2f} points at "
            f"{100 * closest.power_rel:.1f}% power; result.best() returns it",
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


def _load_split(spec: str, split: str, limit: int | None) -> tuple[Any, Any]:
    import torch

    from ..data import get_loader

    images, labels = [], []
    for x, y in get_loader(spec, split=split, batch_size=512, limit=limit):
        images.append(x)
        labels.append(y)
    return torch.cat(images), torch.cat(labels)


def run(
    model: Any = "default",
    data: str | tuple[Any, Any] = "digits",
    candidates: Sequence[str] | None = None,
    max_accuracy_drop: float = 1.0,
    budget: int = 40,
    method: str = "mcts",
    seed: int = 0,
    *,
    executor: str = "process",
    n_workers: int | None = None,
    address: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    eval_split: str = "test",
    eval_size: int | None = None,
    calib_size: int = 128,
    calibration: Any = None,
    liberty: str = "osu018",
    power: str = "operands",
    backend: str = "auto",
    reference: str = "int8",
    cache_dir: str | os.PathLike | None | bool = None,
    progress: bool = True,
    method_params: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    settings: Mapping[str, Any] | None = None,
    prune: bool = True,
    max_types: int | None = None,
) -> SearchResult:
    """Search a per-op multiplier assignment for ``model`` on the accuracy/power front.

    Args:
        model: an ``nn.Module``, or a name for :func:`axhw.models.load_model`
            (``"default"``: the embedded digits ViT).
        data: a data spec (``"digits"``, ``"imagefolder:PATH"``) whose ``eval_split``
            is the held-out evaluation subset and ``calib`` split the calibration set,
            or an ``(images, labels)`` pair of tensors (then ``calibration`` or the
            first ``calib_size`` images calibrate).
        candidates: candidate multiplier names (the cheapest zero-error design, the power
            reference, is always added first); ``None``: every database multiplier with a
            hardware-cost record.
        max_accuracy_drop: constraint, in accuracy points below ``reference``.
        budget: true evaluations of full configurations (at least the number of ops).
        method: one of :data:`METHODS`: ``"mcts"`` (hardware-driven policy),
            ``"mcts_uniform"``, ``"random"``, ``"greedy"``, ``"knapsack"``, ``"nsga2"``, ``"uniform"``.
        seed: random seed (same seed, same history).
        executor: ``"process"`` (local pool), ``"ray"`` or ``"serial"``.
        n_workers: parallel evaluations (``None``: 1 for ``"process"``, all CPUs of a local Ray).
        address: Ray cluster address (``None``: start a local instance).
        checkpoint: JSON file for checkpoint/resume.
        eval_split: split of ``data`` used as the held-out evaluation subset.
        eval_size: first images of that split to use (``None``: all).
        calib_size: calibration images (from the ``calib`` split).
        calibration: calibration images tensor, overriding the ``calib`` split.
        liberty: cell library of the hardware costs.
        power: ``"operands"`` (default: per-op energy on each op's own operand stream,
            collected on the calibration images in weight-stationary order and
            costed per (op, multiplier), cached by content hash) or ``"uniform"``
            (per-multiplier energy on uniform operands).
        backend: kernel backend of the emulator.
        reference: ``"int8"`` or ``"fp32"``, the accuracy drops are measured from.
        cache_dir: evaluation cache folder (``None``: default; ``False``: no disk cache).
        progress: tqdm bars.
        method_params: keyword settings of the method.
        model_name: name recorded in the result (default: the model name or class).
        settings: extra settings recorded in the result (e.g. ``{"command": "axhw search ..."}``).
        prune: leave out dominated candidates before profiling (see :mod:`axhw.search.plan`).
        max_types: at most this many distinct multiplier types per configuration.

    Returns:
        The :class:`SearchResult`; ``result.best()`` is the lowest-power configuration
        meeting the constraint (or the closest, with a :class:`ConstraintWarning`).

    Raises:
        ConfigError: empty candidate set, budget below the number of ops, unknown
            method/executor, bad settings.
        DatabaseError: an unknown multiplier, or one without a hardware-cost record.
        DataError: the model or data cannot be loaded.
    """
    import torch

    from .. import library
    from ..emulator import DEFAULT_EXCLUDE
    from ..emulator import layers as emulator_layers

    if candidates is not None and len(list(candidates)) == 0:
        raise ConfigError("the candidate set is empty; pass at least one multiplier name "
                          "(see `axhw.library.names()` for what the database holds)")
    if power not in ("uniform", "operands"):
        raise ConfigError(f"power must be 'uniform' or 'operands', got {power!r}")
    for name in candidates or ():
        hardware_cost(library.load(name), liberty)  # fail early on unknown or uncosted designs
    if isinstance(model, str):
        from ..models import load_model

        name = model
        model = load_model(model)
    else:
        name = model_name or type(model).__name__
    model = model.cpu().eval()
    if candidates is None:
        candidates = []
        for n in library.names():
            try:
                if n != EXACT and library.load(n).hw is not None:
                    candidates.append(n)
            except DatabaseError:
                continue  # a stale or damaged entry is not a candidate
        if not candidates:
            raise ConfigError("no database multiplier has a hardware-cost record; characterize some with "
                              "`axhw characterize --hw NAME`, or pass candidates explicitly")

    if isinstance(data, str):
        images, labels = _load_split(data, eval_split, eval_size)
        calib = calibration if calibration is not None else _load_split(data, "calib", calib_size)[0]
        dataset = data
    else:
        images, labels = (torch.as_tensor(t) for t in data)
        if eval_size is not None:
            images, labels = images[:eval_size], labels[:eval_size]
        calib = calibration if calibration is not None else images[:calib_size]
        dataset = "tensors"
        eval_split = "given"

    ops = [op for op in emulator_layers(model) if not any(fnmatch.fnmatchcase(op.name, p) for p in DEFAULT_EXCLUDE)]
    task = ModelTask(model, images, labels, calib, backend=backend)
    operands = None
    if power == "operands":
        from torch.utils.data import DataLoader, TensorDataset

        from ..emulator import collect_operands

        loader = DataLoader(TensorDataset(task.calib_images, torch.zeros(len(task.calib_images), dtype=torch.long)),
                            batch_size=128)
        operands = collect_operands(task.approximated({op.name: EXACT for op in ops}), loader, seed=seed)
    check_max_types(max_types)
    if prune:  # the power reference (the cheapest exact design) stays: every saving is measured against it
        from ..hw.baseline import best_exact

        candidates, pruned = prune_candidates(list(candidates), liberty, keep=[best_exact(liberty).name])
    else:
        candidates, pruned = list(candidates), {}
    space = SearchSpace.from_library(ops, list(candidates), liberty=liberty, operands=operands, progress=progress)
    if executor == "process" and n_workers is None:
        n_workers = 1
    evaluator = Evaluator(task, executor, n_workers=n_workers, address=address, cache_dir=cache_dir,
                          lut_sha256=space.lut_sha256)
    try:
        if isinstance(budget, (int, np.integer)) and budget >= space.n_ops:  # else run_on_space refuses it first
            cost = estimate_cost(space, evaluator, budget, pruned)
            if progress:
                print(cost.describe(), file=sys.stderr, flush=True)
            settings = {"cost_estimate": cost.to_json(), **dict(settings or {})}
        return run_on_space(
            space, evaluator, method=method, budget=budget, seed=seed, max_accuracy_drop=max_accuracy_drop,
            reference=reference, checkpoint=checkpoint, progress=progress, method_params=method_params,
            model_name=name, dataset=dataset, max_types=max_types,
            settings={"eval_split": eval_split, "eval_images": int(len(images)), "calib_images": int(len(calib)),
                      "backend": backend, "power": power, **dict(settings or {})},
        )
    finally:
        evaluator.close()

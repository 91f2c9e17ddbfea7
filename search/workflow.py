"""The end-to-end search run: a model and a data spec in, a :class:`SearchResult` with held-out scores out.

:func:`run` composes the primitives in four steps, each its own function here:

1. the data (:func:`load_split`): calibration images from ``calib`` (a piece of
   ``train``), every search evaluation on the ``search`` split (neither train nor
   test);
2. the space and the evaluator (a :class:`ModelTask` over a private copy of the
   model, so the caller's model is neither moved nor changed);
3. the search itself (:func:`axhw.search.api.run_on_space`);
4. the final figures (:func:`score_holdout`): once every choice is made, the
   reported configurations (the best at the limit and the Pareto front) and the
   int8 reference are measured on the ``test`` split, which nothing before read.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Any, Mapping, Sequence

from axhw.errors import ConfigError, DatabaseError
from axhw.records import DEFAULT_LIBERTY
from axhw.stats import pack_outcomes
from axhw.search.api import run_on_space
from axhw.search.evaluate import Evaluator, ModelTask
from axhw.search.plan import announce_cost, check_max_types, prune_for_search
from axhw.search.result import SearchResult
from axhw.search.space import EXACT, SearchSpace, hardware_cost

__all__ = ["run", "load_split", "score_holdout", "SELECTION_SPLITS"]

#: Splits a search may select on: never the images it reports (test) nor those it fits on (train, calib).
SELECTION_SPLITS = ("search", "val")


def load_split(spec: str, split: str, limit: int | None = None, image_size: int | None = None,
               channels: int | None = None) -> tuple[Any, Any]:
    """``(images, labels)`` tensors of the first ``limit`` images of ``split`` of a data spec."""
    import torch

    from axhw.data import get_loader

    images, labels = [], []
    for x, y in get_loader(spec, split=split, batch_size=512, limit=limit, image_size=image_size, channels=channels):
        images.append(x)
        labels.append(y)
    return torch.cat(images), torch.cat(labels)


def _check_splits(eval_split: str, holdout_split: str | None) -> None:
    if eval_split not in SELECTION_SPLITS:
        raise ConfigError(f"eval_split {eval_split!r} cannot be searched on: the search selects on its images, so it "
                          f"must be one of {', '.join(SELECTION_SPLITS)} (train fits the model, test reports it)")
    if holdout_split is not None and holdout_split == eval_split:
        raise ConfigError(f"holdout_split {holdout_split!r} is the split the search selects on; the final figure "
                          "must come from images no choice has seen (default 'test')")


def _resolve_model(model: Any, model_name: str | None) -> tuple[str, Any]:
    if isinstance(model, str):
        from axhw.models import load_model

        return model, load_model(model)
    from axhw.emulator.conversion import check_model

    check_model(model, "run")
    return model_name or type(model).__name__, model


def _resolve_candidates(candidates: Sequence[str] | None, liberty: str) -> list[str]:
    """The candidate names: checked when given, else every database design with a cost record."""
    from axhw import library

    if candidates is not None:
        names = list(candidates)
        if not names:
            raise ConfigError("the candidate set is empty; pass at least one multiplier name "
                              "(see `axhw.library.names()` for what the database holds)")
        for name in names:
            hardware_cost(library.load(name), liberty)  # fail early on unknown or uncosted designs
        return names
    names = []
    for n in library.names():
        try:
            if n != EXACT and library.load(n).hw is not None:
                names.append(n)
        except DatabaseError:
            continue  # a stale or damaged entry is not a candidate
    if not names:
        raise ConfigError("no database multiplier has a hardware-cost record; characterize some with "
                          "`axhw characterize --hw NAME`, or pass candidates explicitly")
    return names


def _input_shape(model: Any) -> tuple[int | None, int | None]:
    from axhw.emulator import model_input_size

    try:
        channels, height, _ = model_input_size(model)
    except Exception:  # a model without a readable input size: the data source's defaults
        return None, None
    return height, channels


def _space(model: Any, task: ModelTask, candidates: list[str], liberty: str, power: str, seed: int,
           progress: bool) -> SearchSpace:
    """The design space over the model's approximable ops (operand-aware energies when asked)."""
    import torch

    from axhw.emulator import DEFAULT_EXCLUDE
    from axhw.emulator import list_ops as emulator_layers

    ops = [op for op in emulator_layers(model) if not any(fnmatch.fnmatchcase(op.name, p) for p in DEFAULT_EXCLUDE)]
    operands = None
    if power == "operands":
        from torch.utils.data import DataLoader, TensorDataset

        from axhw.emulator import collect_operands

        loader = DataLoader(TensorDataset(task.calib_images, torch.zeros(len(task.calib_images), dtype=torch.long)),
                            batch_size=128)
        operands = collect_operands(task.approximated({op.name: EXACT for op in ops}), loader, seed=seed)
    return SearchSpace.from_library(ops, candidates, liberty=liberty, operands=operands, progress=progress)


def score_holdout(result: SearchResult, task: ModelTask, split: str, indices: Sequence[int] | None = None) -> None:
    """Measure reported configurations on held-out images and record them in ``result.holdout``.

    Args:
        result: the finished search (every choice already made).
        task: a :class:`ModelTask` over the held-out images (same model and calibration).
        split: name of the held-out split (recorded).
        indices: history indices to score; ``None``: the best at the limit and the Pareto front.
    """
    if indices is None:
        indices = sorted({result.best().index, *(e.index for e in result.pareto())} - {0})
    reference = task.outcomes(result.history[0].config)
    scored = {}
    for index in indices:
        correct = task.outcomes(result.history[index].config)
        scored[str(index)] = {"accuracy": float(correct.mean()), "correct": pack_outcomes(correct)}
    result.holdout = {
        "split": split,
        "n_images": int(reference.size),
        "fp32_accuracy": float(task.float_accuracy()),
        "reference": {"accuracy": float(reference.mean()), "correct": pack_outcomes(reference)},
        "evaluations": scored,
    }


# Long only by its docstring (one Args entry per option); the body is 42 lines.
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
    eval_split: str = "search",
    eval_size: int | None = None,
    holdout_split: str | None = "test",
    calib_size: int = 128,
    calibration: Any = None,
    liberty: str = DEFAULT_LIBERTY,
    power: str = "operands",
    backend: str = "auto",
    reference: str = "int8",
    bound: str = "point",
    device: str | None = None,
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
        model: an ``nn.Module`` (copied, never moved or changed), or a name for
            :func:`axhw.models.load_model` (``"default"``: the embedded digits ViT).
        data: a data spec (``"digits"``, ``"imagefolder:PATH"``): ``calib`` calibrates,
            ``eval_split`` is searched on, ``holdout_split`` gives the final figures;
            or an ``(images, labels)`` pair of tensors to search on (then
            ``calibration`` or its first ``calib_size`` images calibrate, and no
            held-out figure is measured).
        candidates: candidate multiplier names (the cheapest zero-error design, the power
            reference, is always added first); ``None``: every database multiplier with a
            hardware-cost record.
        max_accuracy_drop: constraint, in accuracy points below ``reference``.
        budget: true evaluations of full configurations (at least the number of ops).
        method: one of :data:`axhw.search.METHODS`.
        seed: random seed (same seed, same history).
        executor: ``"process"`` (local pool), ``"ray"`` or ``"serial"``.
        n_workers: parallel evaluations (``None``: 1 for ``"process"``, all CPUs of a local Ray).
        address: Ray cluster address (``None``: start a local instance).
        checkpoint: JSON file for checkpoint/resume.
        eval_split: the split every search evaluation (and the sensitivity profile)
            reads: ``"search"`` (default) or ``"val"``; never ``train`` or ``test``.
        eval_size: first images of that split to use (``None``: all).
        holdout_split: split the reported configurations are finally scored on
            (``None``: not scored); must differ from ``eval_split``.
        calib_size: calibration images (from the ``calib`` split).
        calibration: calibration images tensor, overriding the ``calib`` split.
        liberty: cell library of the hardware costs.
        power: ``"operands"`` (default: per-op energy on each op's own operand stream,
            collected on the calibration images in weight-stationary order and
            costed per (op, multiplier), cached by content hash) or ``"uniform"``
            (per-multiplier energy on uniform operands).
        backend: kernel backend of the emulator.
        reference: ``"int8"`` or ``"fp32"``, the accuracy drops are measured from.
        bound: ``"point"``, ``"upper"`` or ``"lower"``: see :func:`run_on_space`.
        device: where evaluations run (``None``: CPU; ``"cuda"`` when asked).
        cache_dir: evaluation cache folder (``None``: default; ``False``: no disk cache).
        progress: tqdm bars.
        method_params: keyword settings of the method.
        model_name: name recorded in the result (default: the model name or class).
        settings: extra settings recorded in the result (e.g. ``{"command": "axhw search ..."}``).
        prune: leave out dominated candidates before profiling (:mod:`axhw.search.plan`; printed).
        max_types: at most this many distinct multiplier types per configuration.

    Returns:
        The :class:`SearchResult`; ``result.best()`` is the lowest-power configuration
        meeting the constraint on the search split (or the closest, with a
        :class:`~axhw.search.api.ConstraintWarning`), and ``result.holdout_evaluation(e)``
        its accuracy and paired drop on the held-out split.

    Raises:
        ConfigError: empty candidate set, budget below the number of ops, a split that
            would select on reported images, unknown method/executor/bound, bad settings.
        DatabaseError: an unknown multiplier, or one without a hardware-cost record.
        DataError: the model or data cannot be loaded, or a split is missing.
    """
    import torch

    if power not in ("uniform", "operands"):
        raise ConfigError(f"power must be 'uniform' or 'operands', got {power!r}")
    _check_splits(eval_split, holdout_split)
    candidate_names = _resolve_candidates(candidates, liberty)
    check_max_types(max_types)
    candidate_names, pruned = prune_for_search(candidate_names, liberty) if prune else (candidate_names, {})
    name, model = _resolve_model(model, model_name)
    if isinstance(data, str):
        size, channels = _input_shape(model)
        images, labels = load_split(data, eval_split, eval_size, size, channels)
        calib = calibration if calibration is not None else load_split(data, "calib", calib_size, size, channels)[0]
        dataset = data
    else:
        images, labels = (torch.as_tensor(t) for t in data)
        if eval_size is not None:
            images, labels = images[:eval_size], labels[:eval_size]
        calib = calibration if calibration is not None else images[:calib_size]
        dataset, eval_split, holdout_split = "tensors", "given", None
    task = ModelTask(model, images, labels, calib, backend=backend, device=device)
    space = _space(task.model, task, candidate_names, liberty, power, seed, progress)
    if executor == "process" and n_workers is None:
        n_workers = 1
    evaluator = Evaluator(task, executor, n_workers=n_workers, address=address, cache_dir=cache_dir,
                          lut_sha256=space.lut_sha256)
    try:
        planned = announce_cost(space, evaluator, budget, pruned, progress)  # what it will cost, before it starts
        result = run_on_space(
            space, evaluator, method=method, budget=budget, seed=seed, max_accuracy_drop=max_accuracy_drop,
            reference=reference, bound=bound, checkpoint=checkpoint, progress=progress, method_params=method_params,
            model_name=name, dataset=dataset, max_types=max_types,
            settings={**planned, "eval_split": eval_split, "eval_images": int(len(images)), "calib_images": int(len(calib)),
                      "calib_split": "given" if calibration is not None or dataset == "tensors" else "calib",
                      "holdout_split": holdout_split, "backend": backend, "power": power,
                      "device": str(device or "cpu"), **dict(settings or {})},
        )
    finally:
        evaluator.close()
    if holdout_split is not None:
        size, channels = _input_shape(model)
        test_images, test_labels = load_split(dataset, holdout_split, None, size, channels)
        score_holdout(result, ModelTask(task.model, test_images, test_labels, calib, backend=backend, device=device),
                      holdout_split)
    return result

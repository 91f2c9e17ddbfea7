"""Sensitivity profiling: the accuracy drop when one op alone uses one candidate.

``S[i, j] = 100 × (acc(all exact) - acc(op i uses candidate j, every other op exact))``
in accuracy points; ``S[:, 0] = 0`` (the exact column).  That is
``n_ops × (n_candidates - 1)`` true evaluations, run as one batch through the
:class:`~axhw.search.evaluate.Evaluator`, so they are parallel and cached on disk by
content hash: a second profile of the same model, data and multipliers is free.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from axhw.search.evaluate import Evaluator
from axhw.search.space import SearchSpace

__all__ = ["sensitivity_configs", "sensitivity_samples", "profile_sensitivity", "sensitivity_to_dict",
           "sensitivity_from_dict", "rank1_sensitivity"]


def sensitivity_configs(space: SearchSpace) -> list[tuple[int, int, np.ndarray]]:
    """``(op index, candidate index, configuration)`` of every single-op profile, op-major."""
    out = []
    for i in range(space.n_ops):
        for j in range(1, space.n_candidates):
            x = space.exact_config()
            x[i] = j
            out.append((i, j, x))
    return out


def sensitivity_samples(space: SearchSpace, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The single-op profiles as surrogate training data: ``(X (n, n_ops), drops (n,))``."""
    single = sensitivity_configs(space)
    X = np.array([x for _, _, x in single], dtype=np.int64).reshape(-1, space.n_ops)
    return X, np.array([table[i, j] for i, j, _ in single])


def profile_sensitivity(space: SearchSpace, evaluator: Evaluator, int8_accuracy: float, *,
                        progress: bool = False, chunk: int | None = None) -> np.ndarray:
    """The ``(n_ops, n_candidates)`` sensitivity table in points (see the module docstring).

    Args:
        space: the design space.
        evaluator: true evaluator (its cache makes a repeated profile free).
        int8_accuracy: accuracy of the all-exact configuration on the same evaluator.
        progress: show a tqdm bar.
        chunk: configurations per evaluator call (``None``: 4 per worker), so the bar
            moves and finished chunks are cached even if the run is interrupted.
    """
    jobs = sensitivity_configs(space)
    table = np.zeros((space.n_ops, space.n_candidates))
    if not jobs:
        return table
    size = chunk or max(1, 4 * evaluator.n_workers)
    bar: Any = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="sensitivity", unit="eval")
    try:
        for start in range(0, len(jobs), size):
            part = jobs[start:start + size]
            accuracies = evaluator.evaluate([space.decode(x) for _, _, x in part])
            for (i, j, _), acc in zip(part, accuracies):
                table[i, j] = 100.0 * (int8_accuracy - acc)
            if bar is not None:
                bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    return table


def sensitivity_to_dict(space: SearchSpace, table: np.ndarray) -> dict[str, dict[str, float]]:
    """``{op name: {multiplier: drop}}`` form stored in :class:`~axhw.search.result.SearchResult`."""
    return {op: {m: float(table[i, j]) for j, m in enumerate(space.candidates)} for i, op in enumerate(space.op_names)}


def sensitivity_from_dict(space: SearchSpace, data: dict[str, dict[str, float]]) -> np.ndarray:
    """Inverse of :func:`sensitivity_to_dict` (missing entries are 0)."""
    table = np.zeros((space.n_ops, space.n_candidates))
    for i, op in enumerate(space.op_names):
        for j, m in enumerate(space.candidates):
            table[i, j] = float(data.get(op, {}).get(m, 0.0))
    return table


def rank1_sensitivity(table: np.ndarray, n_iter: int = 50) -> np.ndarray:
    """Rank-one non-negative fit ``R[i, j] = a_i · e_j`` of ``max(S, 0)`` (op sensitivity × design error).

    Measured drops are multiples of one test image (0.28-0.5 points on the digits
    subsets): many small single-op drops read 0, yet add up when many ops are
    approximated.  The rank-one fit, by alternating non-negative least squares from
    ``e_j = mean_i S[i, j]``, spreads each op's and each design's measured drops over
    the pairs below resolution.  ``R[:, 0] = 0`` when the exact column is zero.
    """
    S = np.clip(np.asarray(table, dtype=float), 0.0, None)
    e = S.mean(axis=0)
    a = np.zeros(S.shape[0])
    if not np.any(e > 0):
        return np.zeros_like(S)
    for _ in range(n_iter):
        a = np.clip(S @ e / max(float(e @ e), 1e-12), 0.0, None)
        if not np.any(a > 0):
            break
        e = np.clip(a @ S / max(float(a @ a), 1e-12), 0.0, None)
    return np.outer(a, e)
